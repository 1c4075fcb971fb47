"""The API's resources, named as the product docs name them. Each method describes
its call; the client runs it (at once, or as an awaitable on the async client)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from . import types as t

__all__ = [
    "Organizations",
    "OrgConfigs",
    "Members",
    "Invitations",
    "Teams",
    "TeamMembers",
    "Keys",
    "Agents",
    "Billing",
    "Usage",
    "Logs",
    "Tokens",
    "Users",
    "Models",
    "FxRates",
    "AuditLog",
    "Explain",
]


def _p(value: str) -> str:
    """A path segment: ids are opaque, so escape whatever they hold."""
    return quote(str(value), safe="")


class _Resource:
    def __init__(self, client: Any) -> None:
        self._client = client

    def _call(self, method: str, path: str, model: Any = None, **kw: Any) -> Any:
        from ._client import _Call

        return self._client._run(_Call(method, path, model, **kw))


class Organizations(_Resource):
    """Organizations: the tenants."""

    def list(self, *, limit: int | None = None) -> Any:
        """Organizations the caller may see (platform admins: all), page by page."""
        return self._call("GET", "/api/organizations", t.OrgView, params={"limit": limit}, page=True)

    def create(self, *, name: str, **fields: Any) -> Any:
        """Create an organization (platform admins): slug, contact_name, contact_email,
        description, billing_rate_per_agent, currency, active."""
        return self._call("POST", "/api/organizations", t.OrgView, body={"name": name, **fields})

    def retrieve(self, org_id: str) -> Any:
        return self._call("GET", f"/api/organizations/{_p(org_id)}", t.OrgView)

    def update(self, org_id: str, **fields: Any) -> Any:
        """Change fields; ``None`` clears a nullable one."""
        return self._call("PATCH", f"/api/organizations/{_p(org_id)}", t.OrgView, body=fields)

    def toggle(self, org_id: str) -> Any:
        return self._call("POST", f"/api/organizations/{_p(org_id)}/toggle", t.OrgView)

    def delete(self, org_id: str, *, confirm: bool | None = None) -> None:
        """Delete an organization without agents; ``confirm=True`` when it has billing history."""
        return self._call("DELETE", f"/api/organizations/{_p(org_id)}", params={"confirm": confirm})


class OrgConfigs(_Resource):
    """An organization's gateway config: providers, routing, caching, limits, budgets."""

    def retrieve(self, *, org_id: str) -> Any:
        """The config; provider credentials are never returned, only ``api_key_set``."""
        return self._call("GET", f"/api/organizations/{_p(org_id)}/config", t.ConfigView)

    def update(self, *, org_id: str, config: dict[str, Any]) -> Any:
        """Merge ``config`` into the stored one (JSON merge patch: ``None`` removes)."""
        return self._call(
            "PATCH", f"/api/organizations/{_p(org_id)}/config", t.ConfigView, body={"config": config}
        )

    def replace(self, *, org_id: str, config: dict[str, Any]) -> Any:
        """Replace the whole config."""
        return self._call(
            "PUT", f"/api/organizations/{_p(org_id)}/config", t.ConfigView, body={"config": config}
        )


class Members(_Resource):
    """Members of an organization and their roles."""

    def list(self, *, org_id: str, limit: int | None = None) -> Any:
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/members", t.MemberView,
            params={"limit": limit}, page=True,
        )

    def add(self, *, org_id: str, role: str, user_id: str | None = None, email: str | None = None) -> Any:
        """Add an existing user (platform admins); org admins invite instead."""
        body = {"role": role, "user_id": user_id, "email": email}
        return self._call(
            "POST", f"/api/organizations/{_p(org_id)}/members", t.MemberView,
            body={k: v for k, v in body.items() if v is not None},
        )

    def update(self, *, org_id: str, user_id: str, role: str) -> Any:
        return self._call(
            "PATCH", f"/api/organizations/{_p(org_id)}/members/{_p(user_id)}", t.MemberView,
            body={"role": role},
        )

    def remove(self, *, org_id: str, user_id: str, transfer_keys_to: str | None = None) -> Any:
        """Remove a member: their keys here are revoked, or handed to ``transfer_keys_to``."""
        return self._call(
            "DELETE", f"/api/organizations/{_p(org_id)}/members/{_p(user_id)}", t.Removed,
            params={"transfer_keys_to": transfer_keys_to},
        )


class Invitations(_Resource):
    """Invitations by email; the secret goes only to the invitee."""

    def create(self, *, org_id: str, email: str, role: str, expires_in_hours: int | None = None) -> Any:
        body: dict[str, Any] = {"email": email, "role": role}
        if expires_in_hours is not None:
            body["expires_in_hours"] = expires_in_hours
        return self._call("POST", f"/api/organizations/{_p(org_id)}/invitations", t.InvitationView, body=body)

    def list(self, *, org_id: str, limit: int | None = None) -> Any:
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/invitations", t.InvitationView,
            params={"limit": limit}, page=True,
        )

    def revoke(self, invitation_id: str) -> None:
        return self._call("DELETE", f"/api/invitations/{_p(invitation_id)}")

    def accept(self, *, token: str, authenticated: bool = False) -> Any:
        """Accept with the emailed secret; ``authenticated=True`` sends this client's
        token too (an existing user joining), otherwise a new user gets a token once."""
        return self._call("POST", "/api/invitations/accept", t.Accepted, body={"token": token}, auth=authenticated)


class TeamMembers(_Resource):
    """Members of a team (org members only)."""

    def list(self, *, team_id: str, limit: int | None = None) -> Any:
        return self._call(
            "GET", f"/api/teams/{_p(team_id)}/members", t.TeamMemberView, params={"limit": limit}, page=True
        )

    def add(self, *, team_id: str, user_id: str) -> Any:
        return self._call("POST", f"/api/teams/{_p(team_id)}/members", t.TeamMemberView, body={"user_id": user_id})

    def remove(self, *, team_id: str, user_id: str) -> None:
        return self._call("DELETE", f"/api/teams/{_p(team_id)}/members/{_p(user_id)}")


class Teams(_Resource):
    """Teams: groups of keys with their own limits, budget and model grants."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.members = TeamMembers(client)

    def create(self, *, org_id: str, name: str, **fields: Any) -> Any:
        """allowed_models, rate_limit_rpm/tpm/rph/rpd/tpd, budget."""
        return self._call(
            "POST", f"/api/organizations/{_p(org_id)}/teams", t.TeamView, body={"name": name, **fields}
        )

    def list(self, *, org_id: str, limit: int | None = None) -> Any:
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/teams", t.TeamView, params={"limit": limit}, page=True
        )

    def retrieve(self, team_id: str) -> Any:
        return self._call("GET", f"/api/teams/{_p(team_id)}", t.TeamView)

    def update(self, team_id: str, **fields: Any) -> Any:
        return self._call("PATCH", f"/api/teams/{_p(team_id)}", t.TeamView, body=fields)

    def delete(self, team_id: str) -> None:
        return self._call("DELETE", f"/api/teams/{_p(team_id)}")


class Keys(_Resource):
    """Virtual keys (``sk-tg-…``): the full key is returned once, at create and rotate."""

    def create(self, *, org_id: str, name: str, **fields: Any) -> Any:
        """team_id, agent_id, allowed_models, ip_allow, ip_deny, rate_limit_rpm/tpm/rph/rpd/tpd,
        budget ({"limit", "period"}), expires_at (RFC 3339)."""
        return self._call(
            "POST", f"/api/organizations/{_p(org_id)}/keys", t.KeyView, body={"name": name, **fields}
        )

    def list(self, *, org_id: str, limit: int | None = None) -> Any:
        """The key inventory: names and ``key_prefix``, never the keys."""
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/keys", t.KeyView, params={"limit": limit}, page=True
        )

    def retrieve(self, key_id: str) -> Any:
        return self._call("GET", f"/api/keys/{_p(key_id)}", t.KeyView)

    def update(self, key_id: str, **fields: Any) -> Any:
        """Change fields; ``None`` clears a nullable one (limits, budget, expiry, team)."""
        return self._call("PATCH", f"/api/keys/{_p(key_id)}", t.KeyView, body=fields)

    def rotate(self, key_id: str, *, grace_seconds: int | None = None) -> Any:
        """A new secret, returned once in ``.key``; the old one works ``grace_seconds`` more."""
        body = {} if grace_seconds is None else {"grace_seconds": grace_seconds}
        return self._call("POST", f"/api/keys/{_p(key_id)}/rotate", t.KeyView, body=body)

    def delete(self, key_id: str) -> Any:
        """Revoke the key; returns it with ``status == "revoked"``."""
        return self._call("DELETE", f"/api/keys/{_p(key_id)}", t.KeyView)


class Agents(_Resource):
    """AI agents, billed per agent per month to the organization they are assigned to."""

    def list(self, *, org_id: str | None = None, limit: int | None = None) -> Any:
        return self._call("GET", "/api/agents", t.AgentView, params={"org_id": org_id, "limit": limit}, page=True)

    def create(self, *, name: str, **fields: Any) -> Any:
        """org_id, billing_rate, active."""
        return self._call("POST", "/api/agents", t.AgentView, body={"name": name, **fields})

    def retrieve(self, agent_id: str) -> Any:
        return self._call("GET", f"/api/agents/{_p(agent_id)}", t.AgentView)

    def update(self, agent_id: str, **fields: Any) -> Any:
        """name, active, billingRate with billingRateEffectiveFrom."""
        return self._call("PATCH", f"/api/agents/{_p(agent_id)}", t.AgentView, body=fields)

    def assign_org(self, agent_id: str, *, org_id: str) -> Any:
        return self._call("POST", f"/api/agents/{_p(agent_id)}/assign-org", t.AgentView, body={"org_id": org_id})

    def unassign_org(self, agent_id: str) -> Any:
        return self._call("POST", f"/api/agents/{_p(agent_id)}/unassign-org", t.AgentView)


def _range(from_: str | None, to: str | None) -> dict[str, Any]:
    return {"from": from_, "to": to}


class Billing(_Resource):
    """Monthly revenue, token cost and margin (owners)."""

    def summary(self, *, org_id: str, from_: str | None = None, to: str | None = None) -> Any:
        """Months ``YYYY-MM`` from ``from_`` to ``to``."""
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/billing-summary", t.BillingSummary, params=_range(from_, to)
        )

    def records(self, *, org_id: str, from_: str | None = None, to: str | None = None) -> Any:
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/billing", t.BillingRecords, params=_range(from_, to)
        )

    def export_csv(self, *, org_id: str, from_: str | None = None, to: str | None = None) -> Any:
        """The billing records as CSV text."""
        return self._call(
            "GET", f"/api/organizations/{_p(org_id)}/billing.csv", params=_range(from_, to), raw_text=True
        )


class Usage(_Resource):
    """Usage per day, model, key, agent or team."""

    def retrieve(
        self, *, org_id: str, from_: str | None = None, to: str | None = None,
        group_by: str | None = None, **filters: Any,
    ) -> Any:
        """``group_by``: day, model, key, agent or team; filters key_id, agent_id, team_id, model."""
        params = {**_range(from_, to), "group_by": group_by, **filters}
        return self._call("GET", f"/api/organizations/{_p(org_id)}/usage", t.UsageReport, params=params)


class Logs(_Resource):
    """Request logs, newest first."""

    def list(self, *, org_id: str, from_: str | None = None, to: str | None = None, **filters: Any) -> Any:
        """Filters: key_id, team_id, agent_id, model, provider, status, code, cached, denied, limit."""
        params = {**_range(from_, to), **filters}
        return self._call("GET", f"/api/organizations/{_p(org_id)}/logs", t.LogEntry, params=params, page=True)

    def content(self, *, org_id: str, event_id: str) -> Any:
        """Stored request and response bodies of one entry (while the org keeps content)."""
        return self._call("GET", f"/api/organizations/{_p(org_id)}/logs/{_p(event_id)}/content", t.LogContent)


class Tokens(_Resource):
    """API tokens of the admin API; the secret is returned once."""

    def list(self, *, limit: int | None = None) -> Any:
        return self._call("GET", "/api/tokens", t.TokenView, params={"limit": limit}, page=True)

    def create(self, *, name: str | None = None, expires_at: str | None = None) -> Any:
        body = {k: v for k, v in {"name": name, "expires_at": expires_at}.items() if v is not None}
        return self._call("POST", "/api/tokens", t.TokenView, body=body)

    def revoke(self, token_id: str) -> None:
        return self._call("DELETE", f"/api/tokens/{_p(token_id)}")

    def list_for_user(self, user_id: str, *, limit: int | None = None) -> Any:
        return self._call("GET", f"/api/users/{_p(user_id)}/tokens", t.TokenView, params={"limit": limit}, page=True)

    def create_for_user(self, user_id: str, *, name: str | None = None, expires_at: str | None = None) -> Any:
        body = {k: v for k, v in {"name": name, "expires_at": expires_at}.items() if v is not None}
        return self._call("POST", f"/api/users/{_p(user_id)}/tokens", t.TokenView, body=body)


class Users(_Resource):
    """Users (platform admins) and the caller."""

    def me(self) -> Any:
        return self._call("GET", "/api/me", t.Me)

    def list(self, *, limit: int | None = None) -> Any:
        return self._call("GET", "/api/users", t.UserView, params={"limit": limit}, page=True)

    def create(self, *, email: str) -> Any:
        return self._call("POST", "/api/users", t.UserView, body={"email": email})


class Models(_Resource):
    """The model catalog: prices per 1M tokens and access groups."""

    def list(self, *, limit: int | None = None) -> Any:
        return self._call("GET", "/api/models", t.ModelView, params={"limit": limit}, page=True)

    def create(self, *, name: str, **fields: Any) -> Any:
        return self._call("POST", "/api/models", t.ModelView, body={"name": name, **fields})

    def retrieve(self, name: str) -> Any:
        return self._call("GET", f"/api/models/{_p(name)}", t.ModelView)

    def update(self, name: str, **fields: Any) -> Any:
        return self._call("PATCH", f"/api/models/{_p(name)}", t.ModelView, body=fields)

    def delete(self, name: str) -> None:
        return self._call("DELETE", f"/api/models/{_p(name)}")


class FxRates(_Resource):
    """Exchange rates from catalog prices into org currencies."""

    def list(self) -> Any:
        from ._client import _Call

        return self._client._run(_Call("GET", "/api/fx-rates", _FxList))

    def set(self, *, from_: str, to: str, rate: str) -> Any:
        return self._call("PUT", f"/api/fx-rates/{_p(from_)}/{_p(to)}", t.FxRateView, body={"rate": rate})

    def delete(self, *, from_: str, to: str) -> None:
        return self._call("DELETE", f"/api/fx-rates/{_p(from_)}/{_p(to)}")


class _FxList:
    """Reads the (unpaged) list of exchange rates."""

    @staticmethod
    def model_validate(data: Any) -> Any:
        return [t.FxRateView.model_validate(r) for r in data]


class AuditLog(_Resource):
    """The audit log, newest first: an org's (admins), or everything (platform admins)."""

    def list(self, *, org_id: str | None = None, **filters: Any) -> Any:
        """Filters: actor, action, from, to, limit."""
        path = f"/api/organizations/{_p(org_id)}/audit-log" if org_id else "/api/audit-log"
        return self._call("GET", path, t.AuditEntry, params=filters, page=True)


class Explain(_Resource):
    """Why denied: the edge's own policy decision for a key, model and client IP."""

    def create(self, *, org_id: str, **request: Any) -> Any:
        """key_id or key_prefix, model, ip."""
        return self._call("POST", f"/api/organizations/{_p(org_id)}/explain", t.Explanation, body=request)
