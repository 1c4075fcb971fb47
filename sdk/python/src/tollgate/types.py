# Generated from sdk/openapi.json by sdk/python/generate_types.sh; do not edit.

from __future__ import annotations

from datetime import date
from enum import Enum
from ipaddress import IPv4Address, IPv6Address
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    confloat,
    constr,
)


class AcceptInvitation(BaseModel):
    """
    Body of `POST /api/invitations/accept`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    token: str


class Model(RootModel[str]):
    root: str = Field(
        ...,
        description='A model name, or a pattern where `*` matches any run of characters',
        max_length=256,
        min_length=1,
        pattern='^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$',
    )


class AccessConfig(BaseModel):
    """
    The organization's asset universe; teams and keys only narrow it.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    access_groups: list[str] | None = Field(
        None,
        description='Access groups: every catalog model labelled with one of them.',
    )
    models: list[Model] | None = None
    route_groups: list[str] | None = Field(
        None, description='Route groups (resolved to their models at compile time).'
    )


class AccessGroupView(BaseModel):
    """
    An access group: a label and the catalog models carrying it.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    models: list[str] = Field(..., description='Models labelled with it.')
    name: str = Field(..., description='Label.')


class Email(RootModel[str]):
    root: str = Field(
        ...,
        description='Email address',
        max_length=254,
        pattern='^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$',
    )


class AddTeamMember(BaseModel):
    """
    Body of `POST /api/teams/{id}/members`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    user_id: str


class AssignOrg(BaseModel):
    """
    Body of `POST /api/agents/{id}/assign-org`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    org_id: str


class AuditConfig(BaseModel):
    """
    Audit settings.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    retention_days: int | None = Field(
        None,
        description='Days stored bodies are kept; required while `store_content` is on.',
        ge=0,
    )
    store_content: bool | None = Field(
        None,
        description='Whether request and response bodies (the first 32 KiB of each) are kept\nwith the request logs, readable by admins.',
    )


class AuditEntry(BaseModel):
    """
    One audit entry.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    action: str = Field(
        ...,
        description='What: `<entity>.<create|update|delete>` (`key.update`, `member.delete`).',
    )
    actor: str = Field(
        ...,
        description="Who: a user id, a platform admin's token id, `anonymous` or `system`.",
    )
    after: Any | None = Field(None, description='The entity after (secrets left out).')
    at: str = Field(..., description='When.')
    before: Any | None = Field(
        None, description='The entity before (secrets left out).'
    )
    entity_id: str | None = Field(None, description="The entity's id.")
    id: int = Field(..., description='Sequence number.')
    org_id: str | None = Field(None, description='Its organization, if any.')


class Period(Enum):
    """
    When the budget resets: daily, weekly (Mondays) or monthly, at 00:00 in the budget's UTC offset
    """

    daily = 'daily'
    weekly = 'weekly'
    monthly = 'monthly'


class CachingConfig(BaseModel):
    """
    Response caching settings: the edge's exact-match cache of non-streamed answers.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    enabled: bool | None = Field(None, description='Whether caching is on.')
    ttl_seconds: int | None = Field(
        None,
        description='Time to live of a cached response (default\n[`policy::cache::DEFAULT_TTL_SECONDS`]).',
        ge=0,
    )


class CreateAgent(BaseModel):
    """
    Body of `POST /api/agents`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    active: bool | None = None
    billing_rate: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$')
        | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0)
        | None
    ) = None
    name: str = Field(..., max_length=200, min_length=1, pattern='\\S')
    org_id: str | None = None


class AllowedModel(RootModel[str]):
    root: str = Field(
        ...,
        description='A model name, or a pattern where `*` matches any run of characters',
        max_length=256,
        min_length=1,
        pattern='^[^\\s\\x00-\\x1f\\x7f-\\x9f]+$',
    )


class AccessGroup(RootModel[str]):
    root: str = Field(..., max_length=64, min_length=1, pattern='^[a-z0-9._-]+$')


class Currency(Enum):
    """
    ISO 4217 currency code
    """

    USD = 'USD'
    EUR = 'EUR'
    GBP = 'GBP'
    NGN = 'NGN'
    CAD = 'CAD'
    AUD = 'AUD'


class ContactEmail(RootModel[str]):
    root: str = Field(
        ...,
        description='Email address',
        max_length=254,
        pattern='^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$',
    )


class Slug(RootModel[str]):
    root: str = Field(..., max_length=64, pattern='^[a-z0-9]+(-[a-z0-9]+)*$')


class CreateOrg(BaseModel):
    """
    Body of `POST /api/organizations`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    active: bool | None = None
    billing_rate_per_agent: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$')
        | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0)
        | None
    ) = Field(
        None,
        description='Decimal amount: answered as a string ("99.00"); a string or a number is accepted, at most 2 decimal places',
        examples=['99.00'],
    )
    contact_email: ContactEmail | None = None
    contact_name: str | None = None
    currency: Currency | None = None
    description: str | None = None
    name: str = Field(..., max_length=200, min_length=1, pattern='\\S')
    slug: Slug | None = None


class CreateRouteGroup(BaseModel):
    """
    Body of `POST /api/route-groups`.
    """

    model_config = ConfigDict(
        extra='ignore',
        regex_engine="python-re",
    )
    models: list[Model]
    name: str = Field(
        ...,
        description='An exact model name (no `*`)',
        max_length=256,
        min_length=1,
        pattern='^(?!group:)[^\\s\\x00-\\x1f\\x7f-\\x9f*]+$',
    )


class CreateToken(BaseModel):
    """
    Body of `POST /api/tokens` and `POST /api/users/{id}/tokens`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    expires_at: AwareDatetime | None = Field(
        None, description='RFC 3339 expiry; absent: never expires (revoke it instead).'
    )
    name: str | None = Field(None, max_length=200, min_length=1, pattern='\\S')


class CreateUser(BaseModel):
    """
    Body of `POST /api/users`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    email: str = Field(
        ...,
        description='Email address',
        max_length=254,
        pattern='^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$',
    )


class ErrorDetail(BaseModel):
    """
    The error itself.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    code: str = Field(
        ..., description='Machine-readable reason (`invalid_value`, `duplicate`, ...).'
    )
    field: str | None = Field(
        None,
        description='Path of the offending field (`ip_allow[2]`, `config.budgets.period`), or `null`.',
    )
    message: str = Field(
        ..., description='Human-readable message; names the field when one is at fault.'
    )
    type: str = Field(
        ...,
        description='Broad class: `invalid_request_error`, `authentication_error`, `permission_error`,\n`not_found_error`, `conflict_error`, `rate_limit_error` or `api_error`.',
    )


class ExplainRequest(BaseModel):
    """
    Body of `POST /api/organizations/{id}/explain`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    ip: IPv4Address | IPv6Address | None = None
    key_id: str | None = Field(None, description="The key's id; or")
    key_prefix: str | None = Field(
        None, description='its `key_prefix` (as the inventory shows it).'
    )
    model: str | None = Field(None, description='The model the request would name.')


class Explanation(BaseModel):
    """
    The edge's decision and the rule that made it.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    allowed: bool = Field(
        ..., description='Whether the edge would forward the request.'
    )
    code: str | None = Field(
        None,
        description="The rule that denied, as the edge's error `code` (`model_not_allowed`,\n`ip_not_allowed`, `key_revoked`, …); `null` when allowed.",
    )
    ip: str | None = Field(None, description='The address asked about.')
    key_id: str = Field(..., description='The key asked about.')
    message: str | None = Field(
        None, description='The message the edge would give; `null` when allowed.'
    )
    model: str | None = Field(None, description='The model asked about.')
    status: int = Field(
        ...,
        description='The HTTP status the edge answers with (200 when allowed).',
        ge=0,
    )


class FxRateView(BaseModel):
    """
    An exchange rate as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    from_: str = Field(..., alias='from', description='Currency of the catalog price.')
    rate: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(..., description='Units of `to` per unit of `from`.', examples=['99.00'])
    to: str = Field(..., description='Currency of the org.')
    updated_at: str = Field(..., description='Last change.')


class GroupBy(Enum):
    """
    What usage rows are grouped by.
    """

    day = 'day'
    model = 'model'
    key = 'key'
    agent = 'agent'
    team = 'team'


class LogContent(BaseModel):
    """
    The stored bodies of one request.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    event_id: str = Field(..., description='The request-log entry they belong to.')
    expires_at: str = Field(..., description='When the retention job deletes them.')
    request: str = Field(
        ..., description="The client's request body (its first 32 KiB)."
    )
    response: str = Field(
        ..., description='The answer relayed to the client (its first 32 KiB).'
    )
    truncated: bool = Field(
        ..., description='Whether either body was longer and was cut off.'
    )


class ModelView(BaseModel):
    """
    A catalog model as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    access_groups: list[str] = Field(..., description='Access-group labels.')
    created_at: str = Field(..., description='Creation time.')
    currency: str = Field(..., description='Currency of the prices.')
    input_price_per_1m: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(
        ..., description='Price per one million input tokens.', examples=['99.00']
    )
    name: str = Field(..., description='Public model name.')
    output_price_per_1m: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(
        ..., description='Price per one million output tokens.', examples=['99.00']
    )
    updated_at: str = Field(..., description='Last change.')


class ProviderView(BaseModel):
    """
    A provider as clients read it: the credential replaced by whether one is stored.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    api_key_set: bool = Field(
        ..., description='Whether a credential is stored (it is never returned).'
    )
    base_url: str = Field(..., description='OpenAI-compatible base URL.')
    models: list[Model]
    name: str = Field(..., description='Operator-chosen name, unique in the org.')
    weight: int | None = Field(
        None, description='Share of requests under the `weighted` strategy.', ge=0
    )


class RateLimiting(BaseModel):
    """
    Org-wide rate limits, shared by all its teams and keys.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    enabled: bool | None = Field(
        None,
        description='Configured limits are enforced unless this is an explicit `false` (the seed:\n"only configured limits are enforced"); a limit stored but off is a trap.',
    )
    rpd: int | None = Field(None, description='Requests per day.', ge=0)
    rph: int | None = Field(None, description='Requests per hour.', ge=0)
    rpm: int | None = Field(None, description='Requests per minute.', ge=0)
    tpd: int | None = Field(None, description='Tokens per day.', ge=0)
    tpm: int | None = Field(None, description='Tokens per minute.', ge=0)


class Removed(BaseModel):
    """
    What removing a member did to the keys they created in the org.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    revoked_keys: list[str] = Field(..., description='Keys revoked (the default).')
    transferred_keys: list[str] = Field(
        ..., description='Keys handed to `transfer_keys_to`.'
    )
    user_id: str = Field(..., description='The removed user.')


class RingView(BaseModel):
    """
    One key ring as the key status shows it: ids only, never key bytes.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    configured: bool = Field(..., description='Whether any key is configured.')
    current: str | None = Field(None, description='The key that seals.')
    key_ids: list[str] = Field(..., description='Every key id, the sealing one first.')


class Role(Enum):
    """
    A member's role in one organization, most powerful first.
    """

    owner = 'owner'
    admin = 'admin'
    member = 'member'
    viewer = 'viewer'


class RotateKey(BaseModel):
    """
    Body of `POST /api/keys/{id}/rotate` (optional: no body is a grace of 0).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    grace_seconds: int | None = Field(None, ge=0, le=604800)


class RouteGroupView(BaseModel):
    """
    A route group as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    created_at: str = Field(..., description='Creation time.')
    models: list[Model]
    name: str = Field(..., description='Callable name of the group.')


class RoutingStrategy(Enum):
    """
    How requests pick a provider.
    """

    priority = 'priority'
    weighted = 'weighted'


class SetRate(BaseModel):
    """
    Body of `PUT /api/fx-rates/{from}/{to}`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    rate: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(
        ...,
        description='Units of `to` per unit of `from`, up to 6 decimals.',
        examples=['99.00'],
    )


class SinkStatus(BaseModel):
    """
    Replication state of one sink.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    last_error: str | None = Field(
        None, description='The last push error, cleared by the next success.'
    )
    last_error_at: str | None = Field(None, description='When the last error happened.')
    last_success_at: str | None = Field(
        None, description='When the last batch was acknowledged.'
    )
    name: str = Field(..., description='Sink name (`sqlite:<path>`).')
    pending: int = Field(..., description='Outbox entries not yet acknowledged.')
    position: int = Field(..., description='Last outbox id the sink acknowledged.')


class SyncStatus(BaseModel):
    """
    `GET /api/sync/status` body.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    outbox_head: int = Field(..., description='Newest outbox id.')
    sinks: list[SinkStatus] = Field(..., description='Per-sink state.')


class TeamMemberView(BaseModel):
    """
    A member of a team.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    created_at: str = Field(..., description='When they joined the team.')
    email: str = Field(..., description="The user's email.")
    role: Role = Field(..., description="The user's role in the team's org.")
    team_id: str = Field(..., description='Team.')
    user_id: str = Field(..., description='User.')


class TokenView(BaseModel):
    """
    A token as listed: who, what, when; never the secret.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    bootstrap: bool = Field(
        ...,
        description='Whether it is the bootstrap token (`TOLLGATE_ADMIN_TOKEN` or the generated one).',
    )
    created_at: str = Field(..., description='Issue time.')
    expires_at: str | None = Field(None, description='Expiry, if any.')
    id: str = Field(..., description='Id (used to revoke).')
    last_used_at: str | None = Field(
        None, description='Last request made with it (minute resolution).'
    )
    name: str = Field(..., description='Name given at issue.')
    platform_admin: bool = Field(
        ..., description='Whether it is a platform-admin token.'
    )
    prefix: str = Field(
        ..., description='First characters of the token, to recognise it.'
    )
    revoked_at: str | None = Field(None, description='Revocation time.')
    status: str = Field(..., description='`active`, `expired` or `revoked`.')
    token: str | None = Field(
        None, description='The bearer secret: only in the issue response.'
    )
    user_id: str | None = Field(
        None, description='The user it authenticates; `null` for platform-admin tokens.'
    )


class UpdateAgent(BaseModel):
    """
    Body of `PATCH /api/agents/{id}`: `billingRate` (as in the AgenticMail API; `null`
    reverts to the org's default rate) from `billingRateEffectiveFrom` (a day of the
    current UTC month, default today), `name`, `active`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    active: bool | None = None
    billingRate: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$')
        | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0)
        | None
    ) = None
    billingRateEffectiveFrom: date | None = None
    name: str | None = Field(None, max_length=200, min_length=1, pattern='\\S')


class UpdateMember(BaseModel):
    """
    Body of `PATCH /api/organizations/{id}/members/{user_id}`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    role: Role


class UpdateModel(BaseModel):
    """
    Body of `PATCH /api/models/{name}`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    access_groups: list[AccessGroup] | None = None
    currency: Currency | None = Field(None, description='ISO 4217 currency code')
    input_price_per_1m: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$')
        | confloat(ge=0.0, multiple_of=1e-06, lt=1000000000000.0)
        | None
    ) = Field(
        None,
        description='Decimal amount: answered as a string ("99.00"); a string or a number is accepted, at most 6 decimal places',
        examples=['99.00'],
    )
    output_price_per_1m: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$')
        | confloat(ge=0.0, multiple_of=1e-06, lt=1000000000000.0)
        | None
    ) = Field(
        None,
        description='Decimal amount: answered as a string ("99.00"); a string or a number is accepted, at most 6 decimal places',
        examples=['99.00'],
    )


class UpdateOrg(BaseModel):
    """
    Body of `PATCH /api/organizations/{id}`; `null` clears an optional field.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    active: bool | None = None
    billing_rate_effective_from: date | None = Field(
        None,
        description='First day (UTC, this month) the new `billing_rate_per_agent` bills at.',
    )
    billing_rate_per_agent: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$')
        | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0)
        | None
    ) = Field(
        None,
        description='Decimal amount: answered as a string ("99.00"); a string or a number is accepted, at most 2 decimal places',
        examples=['99.00'],
    )
    contact_email: ContactEmail | None = None
    contact_name: str | None = None
    currency: Currency | None = Field(None, description='ISO 4217 currency code')
    description: str | None = None
    name: str | None = Field(None, max_length=200, min_length=1, pattern='\\S')
    slug: str | None = Field(None, max_length=64, pattern='^[a-z0-9]+(-[a-z0-9]+)*$')


class UpdateRouteGroup(BaseModel):
    """
    Body of `PATCH /api/route-groups/{name}`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    models: list[Model]


class UsageRow(BaseModel):
    """
    Totals of one group.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    cached_requests: int = Field(
        ...,
        description='Of those, requests answered from the response cache (cost 0, no tokens).',
        ge=0,
    )
    cost: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(..., description="Cost in the org's currency.", examples=['99.00'])
    denied: int = Field(
        ...,
        description='Requests the edge denied after their key resolved (no tokens, no cost).',
        ge=0,
    )
    group: str | None = Field(
        None,
        description="The group's value (day, model, key id, agent id, team id; `null` if none).",
    )
    input_tokens: int = Field(..., description='Prompt tokens.', ge=0)
    output_tokens: int = Field(..., description='Completion tokens.', ge=0)
    requests: int = Field(
        ...,
        description='Forwarded requests (denied ones are not requests here; see `denied`).',
        ge=0,
    )


class UserView(BaseModel):
    """
    A user as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    created_at: str = Field(..., description='Creation time.')
    email: str = Field(..., description='Email (lower-cased).')
    id: str = Field(..., description='Id.')


class Accepted(BaseModel):
    """
    Result of accepting: the membership and a user API token, shown once.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    email: str = Field(..., description='Their email.')
    org_id: str = Field(..., description='The organization joined.')
    role: Role = Field(..., description='The role granted.')
    token: str | None = Field(
        None,
        description='For a user created by this acceptance: a bearer token (`tg-user-…`), shown\nonly now. Existing users accept with their own token and get none.',
    )
    user_id: str = Field(..., description='The (possibly new) user.')


class AddMember(BaseModel):
    """
    Body of `POST /api/organizations/{id}/members`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    email: Email | None = None
    role: Role
    user_id: str | None = None


class AgentBilling(BaseModel):
    """
    One agent's billing in one month.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    agent_id: str = Field(..., description='The agent.')
    agent_name: str = Field(..., description='Its name.')
    days_assigned: int = Field(
        ...,
        description='Days of the month the agent belonged to this org (a move day counts for the new org).',
    )
    days_in_month: int = Field(..., description='Days in the month.')
    input_tokens: int = Field(
        ..., description='Prompt tokens of its usage in this org.', ge=0
    )
    margin: str = Field(
        ..., description='`revenue − token_cost`.', pattern='^-?[0-9]+(\\.[0-9]+)?$'
    )
    month: str = Field(
        ..., description='The month.', pattern='^[0-9]{4}-(0[1-9]|1[0-2])$'
    )
    output_tokens: int = Field(
        ..., description='Completion tokens of its usage in this org.', ge=0
    )
    rate: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$') | confloat(
        ge=0.0, multiple_of=0.01, lt=1000000000000.0
    ) = Field(
        ...,
        description="Monthly rate in force on the agent's last billed day of the month: its own\n`billingRate`, else the org's default (revenue follows each day's rate).",
        examples=['99.00'],
    )
    revenue: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$') | confloat(
        ge=0.0, multiple_of=0.01, lt=1000000000000.0
    ) = Field(
        ...,
        description="Sum over the days assigned of that day's rate, `/ days_in_month`, rounded\nhalf up to the minor unit (`rate × days_assigned / days_in_month` while the\nrate holds).",
        examples=['99.00'],
    )
    token_cost: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(..., description='Token cost of that usage.', examples=['99.00'])


class AgentView(BaseModel):
    """
    An agent as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    active: bool = Field(..., description='Suspended agents are denied at the edge.')
    billing_rate: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$')
        | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0)
        | None
    ) = None
    created_at: str = Field(..., description='Creation time.')
    effective_billing_rate: constr(
        pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$'
    ) | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0) = Field(
        ...,
        description="The rate that applies: custom if set, else the org's `billing_rate_per_agent`.",
        examples=['99.00'],
    )
    id: str = Field(..., description='Id.')
    name: str = Field(..., description='Display name.')
    org_id: str = Field(..., description='Current organization.')
    updated_at: str = Field(..., description='Last change.')


class BillingRecords(BaseModel):
    """
    Body of `GET /api/organizations/{id}/billing`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    currency: str = Field(..., description='Currency of every amount.')
    org_id: str = Field(..., description='The organization.')
    records: list[AgentBilling] = Field(
        ..., description='One record per agent and month, oldest month first.'
    )


class BudgetInput(BaseModel):
    """
    A spend cap, in the org's currency (`limit` is a decimal: `500.00`).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    limit: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(..., description='The cap.', examples=['99.00'])
    period: Period = Field(
        ...,
        description="When the budget resets: daily, weekly (Mondays) or monthly, at 00:00 in the budget's UTC offset",
    )
    utc_offset_minutes: int | None = Field(
        None,
        description='Calendar boundaries are at midnight in this UTC offset.',
        ge=-1080,
        le=1080,
    )


class CreateInvitation(BaseModel):
    """
    Body of `POST /api/organizations/{id}/invitations`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    email: str = Field(
        ...,
        description='Email address',
        max_length=254,
        pattern='^[^@\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f.][^@\\s\\x00-\\x1f\\x7f-\\x9f]*\\.[^@\\s\\x00-\\x1f\\x7f-\\x9f]*[^@\\s\\x00-\\x1f\\x7f-\\x9f.]$',
    )
    expires_in_hours: int | None = Field(None, ge=1, le=2160)
    role: Role


class CreateKey(BaseModel):
    """
    Body of `POST /api/organizations/{id}/keys`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    agent_id: str | None = None
    allowed_models: list[AllowedModel] | None = None
    budget: BudgetInput | None = None
    expires_at: AwareDatetime | None = None
    ip_allow: list[str] | None = None
    ip_deny: list[str] | None = None
    name: str = Field(..., max_length=200, min_length=1, pattern='\\S')
    rate_limit_rpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rph: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rpm: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpm: int | None = Field(None, ge=0, le=9007199254740991)
    team_id: str | None = None


class CreateModel(BaseModel):
    """
    Body of `POST /api/models`.
    """

    model_config = ConfigDict(
        extra='ignore',
        regex_engine="python-re",
    )
    access_groups: list[AccessGroup] | None = None
    currency: Currency | None = None
    input_price_per_1m: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$')
        | confloat(ge=0.0, multiple_of=1e-06, lt=1000000000000.0)
        | None
    ) = Field(
        None,
        description='Decimal amount: answered as a string ("99.00"); a string or a number is accepted, at most 6 decimal places',
        examples=['99.00'],
    )
    name: str = Field(
        ...,
        description='An exact model name (no `*`)',
        max_length=256,
        min_length=1,
        pattern='^(?!group:)[^\\s\\x00-\\x1f\\x7f-\\x9f*]+$',
    )
    output_price_per_1m: (
        constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$')
        | confloat(ge=0.0, multiple_of=1e-06, lt=1000000000000.0)
        | None
    ) = Field(
        None,
        description='Decimal amount: answered as a string ("99.00"); a string or a number is accepted, at most 6 decimal places',
        examples=['99.00'],
    )


class CreateTeam(BaseModel):
    """
    Body of `POST /api/organizations/{id}/teams`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    allowed_models: list[AllowedModel] | None = None
    budget: BudgetInput | None = None
    name: str = Field(..., max_length=200, min_length=1, pattern='\\S')
    rate_limit_rpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rph: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rpm: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpm: int | None = Field(None, ge=0, le=9007199254740991)


class DefaultPrice(BaseModel):
    """
    The price of routable models the catalog does not price, per million tokens.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    input_per_1m: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(
        ...,
        description='Price of one million input (prompt) tokens.',
        examples=['99.00'],
    )
    output_per_1m: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(
        ...,
        description='Price of one million output (completion) tokens.',
        examples=['99.00'],
    )


class Error(BaseModel):
    """
    The body of every error response.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    error: ErrorDetail = Field(..., description='What went wrong.')


class InvitationView(BaseModel):
    """
    An invitation as listed (never with its token).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    created_at: str = Field(..., description='Creation time.')
    email: str = Field(..., description='Invitee.')
    expires_at: str = Field(..., description='Expiry.')
    id: str = Field(..., description='Id.')
    org_id: str = Field(..., description='Organization.')
    role: Role = Field(..., description='Role granted on acceptance.')
    status: str = Field(
        ..., description='`pending`, `accepted`, `expired` or `revoked`.'
    )


class KeyStatus(BaseModel):
    """
    `GET /api/platform/keys` body.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    data_keys_by_master_key: dict[str, int] = Field(
        ..., description='Data keys per id of the master key wrapping them.'
    )
    edge: RingView = Field(..., description='The edge key ring.')
    master: RingView = Field(..., description='The master key ring.')
    records_sealed_under: str | None = Field(
        None, description='The edge key the pushed org records were last sealed under.'
    )


class KeyView(BaseModel):
    """
    A key as returned by the API (never the secret, except `key` at creation).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    agent_id: str | None = Field(None, description='Bound agent.')
    allowed_models: list[str] | None = Field(
        None, description='Model grants; `null` inherits team and org.'
    )
    budget: BudgetInput | None = None
    created_at: str = Field(..., description='Creation time.')
    created_by: str | None = Field(
        None,
        description='The user who created the key (members may edit, rotate and revoke only\ntheir own); `null` for keys made with a platform-admin token.',
    )
    expires_at: str | None = Field(None, description='Expiry.')
    id: str = Field(..., description='Id (used to revoke).')
    ip_allow: list[str] = Field(..., description='CIDRs allowed (empty: any).')
    ip_deny: list[str] = Field(..., description='CIDRs denied.')
    key: str | None = Field(
        None, description='The full key: only in the creation response.'
    )
    key_prefix: str = Field(
        ..., description='First characters of the key, to recognise it.'
    )
    name: str = Field(..., description='Display name.')
    org_id: str = Field(..., description='Owning org.')
    rate_limit_rpd: int | None = Field(None, description='Requests per day.', ge=0)
    rate_limit_rph: int | None = Field(None, description='Requests per hour.', ge=0)
    rate_limit_rpm: int | None = Field(None, description='Requests per minute.', ge=0)
    rate_limit_tpd: int | None = Field(None, description='Tokens per day.', ge=0)
    rate_limit_tpm: int | None = Field(None, description='Tokens per minute.', ge=0)
    revoked_at: str | None = Field(None, description='Revocation time.')
    status: str = Field(..., description='`active` or `revoked`.')
    team_id: str | None = Field(None, description='Team.')


class LogEntry(BaseModel):
    """
    One request as the edge logged it.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    agent_id: str | None = Field(None, description='Agent of the key, if any.')
    at: str = Field(..., description='When the request arrived (RFC 3339).')
    cached: bool = Field(..., description="Answered from the edge's cache.")
    code: str | None = Field(
        None, description='Error code of a denied or failed request.'
    )
    cost: constr(pattern=r'^[0-9]{1,12}(\.[0-9]{0,6}0*)?$') | confloat(
        ge=0.0, multiple_of=1e-06, lt=1000000000000.0
    ) = Field(..., description="Cost in the org's currency.", examples=['99.00'])
    denied: bool = Field(
        ..., description='Denied by the edge before any provider call.'
    )
    event_id: str = Field(..., description='The event id (unique per request).')
    input_tokens: int = Field(..., description='Prompt tokens.', ge=0)
    key_id: str = Field(..., description='Virtual key.')
    latency_ms: int = Field(
        ..., description='From arrival to the last byte relayed, in milliseconds.', ge=0
    )
    model: str = Field(
        ..., description='Model requested (empty when the body named none).'
    )
    output_tokens: int = Field(..., description='Completion tokens.', ge=0)
    provider: str | None = Field(
        None, description='Provider that served; `null` when none was called.'
    )
    route_group: str | None = Field(
        None, description='Route group the client named, if any.'
    )
    status: int = Field(..., description='HTTP status the client got.', ge=0)
    team_id: str | None = Field(None, description='Team of the key, if any.')


class MemberView(BaseModel):
    """
    A member of an organization.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    created_at: str = Field(..., description='When the membership started.')
    email: str = Field(..., description='User email.')
    role: Role = Field(..., description='Role in this org.')
    user_id: str = Field(..., description='User id.')


class MonthSummary(BaseModel):
    """
    One month of an org's billing.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    agents: list[AgentBilling] = Field(..., description='Per-agent breakdown.')
    input_tokens: int = Field(..., description='Prompt tokens.', ge=0)
    margin: str = Field(
        ..., description='`revenue − token_cost`.', pattern='^-?[0-9]+(\\.[0-9]+)?$'
    )
    margin_percent: str | None = Field(
        None,
        description='Margin as a percentage of revenue, one decimal (`null` without revenue).',
    )
    month: str = Field(
        ..., description='The month.', pattern='^[0-9]{4}-(0[1-9]|1[0-2])$'
    )
    output_tokens: int = Field(..., description='Completion tokens.', ge=0)
    revenue: str = Field(
        ...,
        description="Sum of the agents' revenue.",
        examples=['99.00'],
        pattern='^[0-9]+\\.[0-9]{2}$',
    )
    token_cost: str = Field(
        ...,
        description="Token cost of all the org's usage that month (agents' and agent-less keys').",
        examples=['99.00'],
        pattern='^[0-9]+\\.[0-9]{2,6}$',
    )
    unattributed_token_cost: str = Field(
        ...,
        description='Part of `token_cost` from keys bound to no agent.',
        examples=['99.00'],
        pattern='^[0-9]+\\.[0-9]{2,6}$',
    )


class MyMembership(BaseModel):
    """
    One membership of the caller.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    org_id: str = Field(..., description='Organization id.')
    role: Role = Field(..., description='Role there.')
    slug: str = Field(..., description='Organization slug.')


class OrgView(BaseModel):
    """
    An organization as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    active: bool = Field(..., description='Inactive orgs are suspended at the edge.')
    agent_count: int = Field(..., description='Number of agents assigned.')
    agents: list[AgentView] | None = Field(
        None, description='Linked agents (detail view only).'
    )
    billing_rate_per_agent: constr(
        pattern=r'^[0-9]{1,12}(\.[0-9]{0,2}0*)?$'
    ) | confloat(ge=0.0, multiple_of=0.01, lt=1000000000000.0) = Field(
        ...,
        description='Default monthly rate per agent, a decimal string (`"99.00"`).',
        examples=['99.00'],
    )
    contact_email: str | None = Field(None, description='Primary contact email.')
    contact_name: str | None = Field(None, description='Primary contact.')
    created_at: str = Field(..., description='Creation time.')
    currency: str = Field(..., description='ISO 4217 code.')
    description: str | None = Field(None, description='Description.')
    id: str = Field(..., description='Id.')
    is_internal: bool = Field(
        ..., description='Whether this is the internal org of unassigned agents.'
    )
    name: str = Field(..., description='Display name.')
    role: Role | None = None
    slug: str = Field(..., description='Immutable URL-safe identifier.')
    team_count: int = Field(
        ..., description="Number of teams (the admin UI's team count)."
    )
    updated_at: str = Field(..., description='Last change.')


class ProviderConfig(BaseModel):
    """
    One upstream provider of an organization.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    api_key: str | None = None
    base_url: str = Field(..., description='OpenAI-compatible base URL.')
    models: list[Model] | None = None
    name: str = Field(..., description='Operator-chosen name, unique in the org.')
    weight: int | None = Field(
        None,
        description='Share of requests under the `weighted` strategy (1 when unset); refused\nunder `priority`, where nothing would act on it.',
        ge=0,
    )


class RoutingConfig(BaseModel):
    """
    Routing settings.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    cooldown_failures: int | None = Field(
        None,
        description='Consecutive failures after which a provider is skipped for\n`cooldown_seconds`; set both or neither.',
        ge=0,
    )
    cooldown_seconds: int | None = Field(
        None,
        description='How long a provider is skipped once it failed `cooldown_failures` times in a row.',
        ge=0,
    )
    max_attempts: int | None = Field(
        None,
        description='Most provider calls per request, failover included (1 = no failover);\nunset: every provider serving the model, once.',
        ge=0,
    )
    provider_order: list[str] | None = Field(
        None,
        description='Provider names in routing order; providers not named follow in list order.',
    )
    strategy: RoutingStrategy | None = Field(None, description='Strategy.')


class TeamView(BaseModel):
    """
    A team as returned by the API.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    allowed_models: list[str] | None = Field(
        None,
        description="Model grants (names, patterns, route groups); `null` inherits the org's.",
    )
    budget: BudgetInput | None = None
    created_at: str = Field(..., description='Creation time.')
    id: str = Field(..., description='Id.')
    name: str = Field(..., description='Name, unique in the org.')
    org_id: str = Field(..., description='Owning org.')
    rate_limit_rpd: int | None = Field(None, description='Requests per day.', ge=0)
    rate_limit_rph: int | None = Field(None, description='Requests per hour.', ge=0)
    rate_limit_rpm: int | None = Field(None, description='Requests per minute.', ge=0)
    rate_limit_tpd: int | None = Field(None, description='Tokens per day.', ge=0)
    rate_limit_tpm: int | None = Field(None, description='Tokens per minute.', ge=0)
    updated_at: str = Field(..., description='Last change.')


class UpdateKey(BaseModel):
    """
    Body of `PATCH /api/keys/{id}`: the create fields; `null` clears (grants: back
    to inheriting the team's or org's).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    agent_id: str | None = None
    allowed_models: list[AllowedModel] | None = None
    budget: BudgetInput | None = None
    expires_at: AwareDatetime | None = None
    ip_allow: list[str] | None = None
    ip_deny: list[str] | None = None
    name: str | None = Field(None, max_length=200, min_length=1, pattern='\\S')
    rate_limit_rpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rph: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rpm: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpm: int | None = Field(None, ge=0, le=9007199254740991)
    team_id: str | None = None


class UpdateTeam(BaseModel):
    """
    Body of `PATCH /api/teams/{id}`; `null` clears (grants: back to inheriting).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    allowed_models: list[AllowedModel] | None = None
    budget: BudgetInput | None = None
    name: str | None = Field(None, max_length=200, min_length=1, pattern='\\S')
    rate_limit_rpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rph: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_rpm: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpd: int | None = Field(None, ge=0, le=9007199254740991)
    rate_limit_tpm: int | None = Field(None, ge=0, le=9007199254740991)


class UsageReport(BaseModel):
    """
    Body of `GET /api/organizations/{id}/usage`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    currency: str = Field(..., description='Currency of `cost`.')
    group_by: GroupBy = Field(..., description='Grouping of `rows`.')
    org_id: str = Field(..., description='The organization.')
    rows: list[UsageRow] = Field(
        ..., description='One row per group, ordered by group.'
    )
    totals: UsageRow = Field(..., description='Sum of all rows.')


class BillingSummary(BaseModel):
    """
    Body of `GET /api/organizations/{id}/billing-summary`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    currency: str = Field(..., description='Currency of every amount.')
    months: list[MonthSummary] = Field(..., description='Months, oldest first.')
    org_id: str = Field(..., description='The organization.')


class Me(BaseModel):
    """
    `GET /api/me`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    memberships: list[MyMembership] = Field(..., description="The user's memberships.")
    platform_admin: bool = Field(
        ..., description="Whether the token is a platform admin's."
    )
    user: UserView | None = None


class OrgConfig(BaseModel):
    """
    The whole org config as stored (credentials included).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    access: AccessConfig | None = None
    audit: AuditConfig | None = Field(None, description='Audit storage.')
    budgets: BudgetInput | None = None
    caching: CachingConfig | None = Field(None, description='Caching.')
    client_ip_header: str | None = Field(
        None, description='Trusted forwarding header carrying the client IP.'
    )
    default_max_output_tokens: int | None = Field(
        None,
        description='Output tokens the edge reserves against budgets for a request that sets no\n`max_tokens` (per completion; 1024 when unset).',
        ge=1,
        le=10000000,
    )
    default_price: DefaultPrice | None = None
    max_in_flight: int | None = Field(
        None,
        description="Requests of the org an edge node runs at once (streams included); absent:\nthe edge's `--org-max-in-flight` default.",
        ge=1,
        le=10000,
    )
    providers: list[ProviderConfig] | None = Field(
        None, description='Upstream providers.'
    )
    rate_limiting: RateLimiting | None = Field(
        None, description='Org-scope rate limits.'
    )
    routing: RoutingConfig | None = Field(None, description='Routing.')


class OrgConfigView(BaseModel):
    """
    The org config as clients read it ([`OrgConfig`] with providers' credentials
    replaced by `api_key_set`).
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    access: AccessConfig | None = None
    audit: AuditConfig = Field(
        ..., description='Request logging and content retention.'
    )
    budgets: BudgetInput | None = None
    caching: CachingConfig = Field(..., description='Response cache.')
    client_ip_header: str | None = Field(
        None, description='Header the edge reads the client IP from.'
    )
    default_max_output_tokens: int | None = Field(
        None,
        description='Output tokens reserved when a request sets no `max_tokens`.',
        ge=0,
    )
    default_price: DefaultPrice | None = None
    max_in_flight: int | None = Field(
        None,
        description='Requests in flight at once for the org at each edge node.',
        ge=0,
    )
    providers: list[ProviderView] = Field(..., description='Upstream providers.')
    rate_limiting: RateLimiting = Field(..., description='Org-wide rate limits.')
    routing: RoutingConfig = Field(..., description='Routing.')


class ConfigBody(BaseModel):
    """
    Body of `PATCH`/`PUT /api/organizations/{id}/config`.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    config: OrgConfig = Field(
        ...,
        description='The config (a merge patch for PATCH, the whole document for PUT).',
    )


class ConfigView(BaseModel):
    """
    Config as returned to clients.
    """

    model_config = ConfigDict(
        extra='ignore',
    )
    config: OrgConfigView = Field(..., description='The config, credentials redacted.')
    org_id: str = Field(..., description='Organization id.')
    updated_at: str = Field(..., description='Last change.')
    warnings: list[str] = Field(
        ...,
        description='What the edge will refuse because of this config (e.g. unpriced models\nunder a budget); empty when nothing.',
    )
