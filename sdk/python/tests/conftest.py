"""The tests run against a live `tollgate up` (scripts/with-tollgate sets the env)."""

import os
import uuid

import pytest

from tollgate import Tollgate


def pytest_configure(config):
    for var in ("TOLLGATE_BASE_URL", "TOLLGATE_API_KEY"):
        if not os.environ.get(var):
            raise pytest.UsageError(f"{var} is unset: run through scripts/with-tollgate")


@pytest.fixture
def client():
    with Tollgate() as c:
        yield c


@pytest.fixture
def org(client):
    return client.organizations.create(name=f"SDK {uuid.uuid4().hex[:8]}")


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:8]
