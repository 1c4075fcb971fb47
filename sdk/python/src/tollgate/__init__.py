"""Python client of the Tollgate admin API.

    from tollgate import Tollgate
    client = Tollgate(api_key="tg-…", control_plane_url="http://127.0.0.1:8081")
    key = client.keys.create(org_id=org.id, name="backend-service", rate_limit_rpm=100)
    print(key.key)  # the full key, shown only at creation
"""

from . import types
from ._client import DEFAULT_BASE_URL, AsyncPage, AsyncTollgate, SyncPage, Tollgate
from ._errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    TollgateError,
    UnprocessableEntityError,
)

__version__ = "0.1.0"

__all__ = [
    "Tollgate",
    "AsyncTollgate",
    "SyncPage",
    "AsyncPage",
    "DEFAULT_BASE_URL",
    "types",
    "TollgateError",
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RequestTooLargeError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
]
