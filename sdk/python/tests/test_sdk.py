"""The Python SDK against a live admin API: the seeds' calls, every resource, paging,
and one exception class per error status."""

import os
import uuid
from decimal import Decimal

import httpx
import pytest

import tollgate
from tollgate import AsyncTollgate, Tollgate
from tollgate._errors import status_error


def test_the_seed_calls_work_verbatim(client, org):
    # The product docs' snippet, with the class name changed.
    client = Tollgate(
        api_key=os.environ["TOLLGATE_API_KEY"],
        base_url=os.environ["TOLLGATE_EDGE_URL"],
        control_plane_url=os.environ["TOLLGATE_CONTROL_PLANE_URL"],
    )
    org_id = org.id
    # Get org config
    config = client.org_configs.retrieve(org_id=org_id)
    # Update org config
    client.org_configs.update(
        org_id=org_id,
        config={
            "rate_limiting": {
                "enabled": True,
                "rpm": 1000,
            },
            "budgets": {
                "limit": 500.00,
                "period": "monthly",
            },
        },
    )
    # List keys for an org
    keys = client.keys.list(org_id=org_id)
    for key in keys:
        print(f"{key.name}: {key.key_prefix}...")
    # Create a new key
    new_key = client.keys.create(
        org_id=org_id,
        name="backend-service",
        rate_limit_rpm=100,
        allowed_models=["gpt-4o", "gpt-4o-mini"],
    )
    print(f"Key: {new_key.key}")  # full key shown only at creation
    # Revoke a key
    client.keys.delete(key_id=new_key.id)

    after = client.org_configs.retrieve(org_id=org_id)
    assert config.config.rate_limiting.rpm != 1000
    assert after.config.rate_limiting.rpm == 1000
    assert Decimal(after.config.budgets.limit) == Decimal("500")
    assert new_key.key.startswith("sk-tg-") and new_key.key.startswith(new_key.key_prefix)
    assert client.keys.retrieve(new_key.id).status == "revoked"
    assert client.base_url == os.environ["TOLLGATE_EDGE_URL"]


def test_the_environment_configures_the_client(monkeypatch):
    c = Tollgate()
    assert c.control_plane_url == os.environ["TOLLGATE_BASE_URL"]
    # A root given with /api works the same.
    c = Tollgate(base_url=os.environ["TOLLGATE_BASE_URL"] + "/api/")
    assert c.users.me().platform_admin
    monkeypatch.delenv("TOLLGATE_API_KEY")
    with pytest.raises(tollgate.TollgateError, match="TOLLGATE_API_KEY"):
        Tollgate()


def test_keys_are_shown_once_listed_by_prefix_edited_and_rotated(client, org):
    k = client.keys.create(org_id=org.id, name="svc", rate_limit_rpm=10, budget={"limit": "5.00", "period": "daily"})
    assert k.key and k.rate_limit_rpm == 10
    listed = [x for x in client.keys.list(org_id=org.id) if x.id == k.id][0]
    assert listed.key is None and listed.key_prefix == k.key_prefix
    assert client.keys.retrieve(k.id).key is None
    edited = client.keys.update(k.id, rate_limit_rpm=None, name="svc2")
    assert edited.rate_limit_rpm is None and edited.name == "svc2"
    rotated = client.keys.rotate(k.id, grace_seconds=60)
    assert rotated.key and rotated.key != k.key


def test_lists_page_through_every_item(client, org):
    made = {client.keys.create(org_id=org.id, name=f"k{i}").id for i in range(5)}
    first = client.keys.list(org_id=org.id, limit=2)
    assert len(first.data) == 2 and first.has_next_page()
    seen = [k.id for k in client.keys.list(org_id=org.id, limit=2)]
    assert set(seen) == made and len(seen) == 5
    pages = list(client.keys.list(org_id=org.id, limit=2).iter_pages())
    assert [len(p.data) for p in pages] == [2, 2, 1]


def test_organizations_members_invitations_and_teams(client, unique):
    o = client.organizations.create(name=f"Acme {unique}", currency="EUR")
    assert o.currency == "EUR" and o.slug
    assert client.organizations.retrieve(o.id).name == f"Acme {unique}"
    assert client.organizations.update(o.id, description="d").description == "d"
    assert client.organizations.toggle(o.id).active is False
    assert any(x.id == o.id for x in client.organizations.list())

    user = client.users.create(email=f"u{unique}@example.com")
    m = client.members.add(org_id=o.id, user_id=user.id, role="member")
    assert m.role.value == "member"
    assert client.members.update(org_id=o.id, user_id=user.id, role="viewer").role.value == "viewer"
    assert {x.user_id for x in client.members.list(org_id=o.id)} >= {user.id}

    inv = client.invitations.create(org_id=o.id, email=f"i{unique}@example.com", role="member")
    assert [i.id for i in client.invitations.list(org_id=o.id)] == [inv.id]
    client.invitations.revoke(inv.id)

    team = client.teams.create(org_id=o.id, name="core", rate_limit_rpm=50)
    client.teams.members.add(team_id=team.id, user_id=user.id)
    assert [x.user_id for x in client.teams.members.list(team_id=team.id)] == [user.id]
    client.teams.members.remove(team_id=team.id, user_id=user.id)
    assert client.teams.update(team.id, name="core2").name == "core2"
    client.teams.delete(team.id)
    with pytest.raises(tollgate.NotFoundError):
        client.teams.retrieve(team.id)
    removed = client.members.remove(org_id=o.id, user_id=user.id)
    assert removed is not None
    client.organizations.delete(o.id)
    with pytest.raises(tollgate.NotFoundError):
        client.organizations.retrieve(o.id)


def test_agents_billing_usage_logs_tokens_and_catalog(client, org, unique):
    a = client.agents.create(name="helper", billing_rate="10.00")
    moved = client.agents.assign_org(a.id, org_id=org.id)
    assert moved.org_id == org.id
    assert [x.id for x in client.agents.list(org_id=org.id)] == [a.id]
    assert client.agents.update(a.id, name="helper2").name == "helper2"
    assert client.agents.unassign_org(a.id).org_id != org.id

    summary = client.billing.summary(org_id=org.id)
    assert summary.org_id == org.id and summary.currency == org.currency
    records = client.billing.records(org_id=org.id)
    assert records.org_id == org.id
    assert client.billing.export_csv(org_id=org.id).splitlines()[0].startswith("month")
    usage = client.usage.retrieve(org_id=org.id, group_by="model")
    assert usage.rows == []
    assert list(client.logs.list(org_id=org.id)) == []

    tok = client.tokens.create(name=f"ci {unique}")
    assert tok.token and any(t.id == tok.id for t in client.tokens.list())
    client.tokens.revoke(tok.id)

    model = client.models.create(name=f"m-{unique}", input_price_per_1m="1.50", output_price_per_1m=2)
    assert model.input_price_per_1m == "1.50" and model.output_price_per_1m == "2.00"
    assert client.models.update(model.name, output_price_per_1m="3").output_price_per_1m == "3.00"
    assert any(m.name == model.name for m in client.models.list())
    client.models.delete(model.name)
    assert isinstance(client.fx_rates.list(), list)
    assert any(e.action for e in client.audit_log.list())
    key = client.keys.create(org_id=org.id, name="why")
    verdict = client.explain.create(org_id=org.id, key_id=key.id, model="gpt-4o")
    assert verdict.allowed in (True, False) and verdict.code is not None or verdict.allowed


def test_each_error_status_has_its_class(client, org, unique):
    other = client.organizations.create(name=f"Other {unique}")
    # A viewer of `org` sees nothing of another tenant, and may not write.
    user = client.users.create(email=f"v{unique}@example.com")
    client.members.add(org_id=org.id, user_id=user.id, role="viewer")
    viewer_token = client.tokens.create_for_user(user.id, name="viewer").token
    viewer = Tollgate(api_key=viewer_token)
    with pytest.raises(tollgate.NotFoundError) as e:
        viewer.keys.list(org_id=other.id).data
    assert e.value.status_code == 404 and e.value.code == "not_found"
    with pytest.raises(tollgate.PermissionDeniedError):
        viewer.keys.create(org_id=org.id, name="nope")
    with pytest.raises(tollgate.UnprocessableEntityError) as e:
        client.keys.create(org_id=org.id, name="bad", ip_allow=["not-a-cidr"])
    assert e.value.field == "ip_allow[0]" and "ip_allow[0]" in e.value.message
    with pytest.raises(tollgate.AuthenticationError) as e:
        Tollgate(api_key="tg-wrong").users.me()
    assert "tg-wrong" not in str(e.value)
    with pytest.raises(tollgate.ConflictError):
        client.organizations.create(name=f"Dup {unique}", slug=other.slug)
    with pytest.raises(tollgate.APIConnectionError):
        Tollgate(control_plane_url="http://127.0.0.1:9", max_retries=0).users.me()


def test_timeouts_raise_their_own_class(client):
    def hang(request):
        raise httpx.ReadTimeout("timed out", request=request)

    c = Tollgate(max_retries=1, http_client=httpx.Client(transport=httpx.MockTransport(hang)))
    with pytest.raises(tollgate.APITimeoutError):
        c.organizations.list()


async def test_the_async_client_has_the_same_resources(org):
    async with AsyncTollgate() as client:
        k = await client.keys.create(org_id=org.id, name="async", rate_limit_rpm=5)
        assert k.key and k.rate_limit_rpm == 5
        for i in range(3):
            await client.keys.create(org_id=org.id, name=f"a{i}")
        names = [x.name async for x in await client.keys.list(org_id=org.id, limit=2)]
        assert sorted(names) == ["a0", "a1", "a2", "async"]
        cfg = await client.org_configs.retrieve(org_id=org.id)
        assert cfg.org_id == org.id
        with pytest.raises(tollgate.NotFoundError):
            await client.keys.retrieve(f"key_{uuid.uuid4().hex[:16]}")


def test_only_idempotent_requests_are_retried_on_429_and_5xx():
    # The live server cannot be made to fail on demand, so a transport answers here.
    seen = []

    def flaky(request):
        seen.append(request.method)
        if len(seen) == 1:
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "busy"}})
        if request.method == "POST":
            return httpx.Response(429, json={"error": {"code": "rate_limited", "message": "slow"}})
        return httpx.Response(200, json=[])

    c = Tollgate(max_retries=2, http_client=httpx.Client(transport=httpx.MockTransport(flaky)))
    assert list(c.organizations.list()) == []
    assert seen == ["GET", "GET"]
    seen.clear()
    with pytest.raises(tollgate.InternalServerError) as e:
        c.organizations.create(name="once")
    assert seen == ["POST"] and e.value.status_code == 503
    with pytest.raises(tollgate.RateLimitError):
        c.organizations.create(name="twice")
    assert seen == ["POST", "POST"]


def test_a_malformed_body_is_a_bad_request(client, org):
    r = client._http.post(
        client.control_plane_url + f"/api/organizations/{org.id}/keys",
        content=b"{not json",
        headers={"authorization": f"Bearer {client.api_key}", "content-type": "application/json"},
    )
    with pytest.raises(tollgate.BadRequestError) as e:
        raise status_error(r)
    assert e.value.status_code == 400
