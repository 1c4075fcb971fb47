// TypeScript client of the Tollgate admin API. No runtime dependencies: global fetch.
// Types come from src/schema.d.ts, generated from sdk/openapi.json (npm run generate).

import type { components } from "./schema.js";

type S = components["schemas"];
export type Organization = S["OrgView"];
export type OrgConfig = S["ConfigView"];
export type Member = S["MemberView"];
export type Removed = S["Removed"];
export type Invitation = S["InvitationView"];
export type Accepted = S["Accepted"];
export type Team = S["TeamView"];
export type TeamMember = S["TeamMemberView"];
export type Key = S["KeyView"];
export type Agent = S["AgentView"];
export type BillingSummary = S["BillingSummary"];
export type BillingRecords = S["BillingRecords"];
export type UsageReport = S["UsageReport"];
export type LogEntry = S["LogEntry"];
export type LogContent = S["LogContent"];
export type Token = S["TokenView"];
export type User = S["UserView"];
export type Me = S["Me"];
export type Model = S["ModelView"];
export type FxRate = S["FxRateView"];
export type AuditEntry = S["AuditEntry"];
export type Explanation = S["Explanation"];
export type { components } from "./schema.js";

/** The admin API root when nothing else names one. */
export const DEFAULT_BASE_URL = "http://127.0.0.1:8081";
const NEXT_CURSOR = "x-next-cursor";
const IDEMPOTENT = new Set(["GET", "PUT", "DELETE"]);

/** Every error this package throws. */
export class TollgateError extends Error {}

/** A request to the admin API failed. */
export class APIError extends TollgateError {}

/** The API could not be reached. */
export class APIConnectionError extends APIError {}

/** The API did not answer within the timeout. */
export class APIConnectionTimeoutError extends APIConnectionError {}

/** The API answered with an error status; `code` and `field` say what to fix. */
export class APIStatusError extends APIError {
  readonly status: number;
  readonly type: string | null;
  readonly code: string | null;
  readonly field: string | null;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    const err = (body as { error?: Record<string, unknown> } | null)?.error ?? {};
    super((err.message as string | undefined) ?? `HTTP ${status}`);
    this.status = status;
    this.body = body;
    this.type = (err.type as string | undefined) ?? null;
    this.code = (err.code as string | undefined) ?? null;
    this.field = (err.field as string | undefined) ?? null;
  }
}
/** 400: the body is not JSON. */
export class BadRequestError extends APIStatusError {}
/** 401: no token, or an unknown, revoked or expired one. */
export class AuthenticationError extends APIStatusError {}
/** 403: the token's role may not do this. */
export class PermissionDeniedError extends APIStatusError {}
/** 404: no such object, or one of another organization. */
export class NotFoundError extends APIStatusError {}
/** 409: the write conflicts with what is stored. */
export class ConflictError extends APIStatusError {}
/** 413: the body is larger than the API accepts. */
export class RequestTooLargeError extends APIStatusError {}
/** 422: a field is invalid; `field` names it. */
export class UnprocessableEntityError extends APIStatusError {}
/** 429: too many attempts. */
export class RateLimitError extends APIStatusError {}
/** 5xx: the server failed. */
export class InternalServerError extends APIStatusError {}

const BY_STATUS: Record<number, typeof APIStatusError> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: RequestTooLargeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
};

/** Options of the client. */
export interface ClientOptions {
  /** A platform-admin or user token; default `TOLLGATE_API_KEY`. */
  apiKey?: string;
  /** The inference gateway (the admin API too when `controlPlaneUrl` is unset). */
  baseUrl?: string;
  /** The admin API root; default `TOLLGATE_CONTROL_PLANE_URL`, then `baseUrl`. */
  controlPlaneUrl?: string;
  /** Milliseconds per request (default 30000). */
  timeout?: number;
  /** Retries of idempotent requests on connection errors, 429 and 5xx (default 2). */
  maxRetries?: number;
  /** A fetch implementation (default the global one). */
  fetch?: typeof fetch;
}

type Query = Record<string, string | number | boolean | null | undefined>;

interface Call {
  method: string;
  path: string;
  query?: Query;
  body?: unknown;
  text?: boolean;
  auth?: boolean;
}

function env(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return p?.env?.[name] || undefined;
}

function seg(v: string): string {
  return encodeURIComponent(v);
}

/** One page of a list; `for await` over it walks every page, fetching as it goes. */
export class Page<T> implements AsyncIterable<T> {
  constructor(
    private readonly client: Tollgate,
    private readonly call: Call,
    /** The items of this page. */
    readonly data: T[],
    /** The cursor of the next page, `null` on the last. */
    readonly nextCursor: string | null,
  ) {}

  hasNextPage(): boolean {
    return this.nextCursor !== null;
  }

  async getNextPage(): Promise<Page<T>> {
    if (this.nextCursor === null) throw new TollgateError("this is the last page");
    return this.client._page<T>({ ...this.call, query: { ...this.call.query, cursor: this.nextCursor } });
  }

  async *iterPages(): AsyncGenerator<Page<T>> {
    let page: Page<T> = this;
    for (;;) {
      yield page;
      if (!page.hasNextPage()) return;
      page = await page.getNextPage();
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.iterPages()) yield* page.data;
  }
}

/** A list call: await it for the first page, or `for await` it for every item. */
export class PagePromise<T> implements Promise<Page<T>>, AsyncIterable<T> {
  private readonly first: Promise<Page<T>>;
  constructor(client: Tollgate, call: Call) {
    this.first = client._page<T>(call);
  }
  then<A = Page<T>, B = never>(
    ok?: ((p: Page<T>) => A | PromiseLike<A>) | null,
    err?: ((e: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.first.then(ok, err);
  }
  catch<B = never>(err?: ((e: unknown) => B | PromiseLike<B>) | null): Promise<Page<T> | B> {
    return this.first.catch(err);
  }
  finally(f?: (() => void) | null): Promise<Page<T>> {
    return this.first.finally(f);
  }
  readonly [Symbol.toStringTag] = "PagePromise";
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    yield* await this.first;
  }
}

abstract class Resource {
  constructor(protected readonly client: Tollgate) {}
  protected req<T>(call: Call): Promise<T> {
    return this.client._request<T>(call);
  }
  protected paged<T>(call: Call): PagePromise<T> {
    return new PagePromise<T>(this.client, call);
  }
}

type Body = Record<string, unknown>;

/** Organizations: the tenants. */
class Organizations extends Resource {
  list(p: { limit?: number } = {}) {
    return this.paged<Organization>({ method: "GET", path: "/api/organizations", query: { limit: p.limit } });
  }
  create(p: { name: string } & Body) {
    return this.req<Organization>({ method: "POST", path: "/api/organizations", body: p });
  }
  retrieve(p: { orgId: string }) {
    return this.req<Organization>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}` });
  }
  update({ orgId, ...fields }: { orgId: string } & Body) {
    return this.req<Organization>({ method: "PATCH", path: `/api/organizations/${seg(orgId)}`, body: fields });
  }
  toggle(p: { orgId: string }) {
    return this.req<Organization>({ method: "POST", path: `/api/organizations/${seg(p.orgId)}/toggle` });
  }
  delete(p: { orgId: string; confirm?: boolean }) {
    return this.req<void>({ method: "DELETE", path: `/api/organizations/${seg(p.orgId)}`, query: { confirm: p.confirm } });
  }
}

/** An organization's gateway config. */
class OrgConfigs extends Resource {
  retrieve(p: { orgId: string }) {
    return this.req<OrgConfig>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/config` });
  }
  /** Merge `config` into the stored one (JSON merge patch: `null` removes). */
  update(p: { orgId: string; config: Body }) {
    return this.req<OrgConfig>({ method: "PATCH", path: `/api/organizations/${seg(p.orgId)}/config`, body: { config: p.config } });
  }
  /** Replace the whole config. */
  replace(p: { orgId: string; config: Body }) {
    return this.req<OrgConfig>({ method: "PUT", path: `/api/organizations/${seg(p.orgId)}/config`, body: { config: p.config } });
  }
}

/** Members of an organization. */
class Members extends Resource {
  list(p: { orgId: string; limit?: number }) {
    return this.paged<Member>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/members`, query: { limit: p.limit } });
  }
  add({ orgId, ...body }: { orgId: string; role: string; userId?: string; email?: string }) {
    const b: Body = { role: body.role };
    if (body.userId) b.user_id = body.userId;
    if (body.email) b.email = body.email;
    return this.req<Member>({ method: "POST", path: `/api/organizations/${seg(orgId)}/members`, body: b });
  }
  update(p: { orgId: string; userId: string; role: string }) {
    return this.req<Member>({ method: "PATCH", path: `/api/organizations/${seg(p.orgId)}/members/${seg(p.userId)}`, body: { role: p.role } });
  }
  remove(p: { orgId: string; userId: string; transferKeysTo?: string }) {
    return this.req<Removed>({
      method: "DELETE",
      path: `/api/organizations/${seg(p.orgId)}/members/${seg(p.userId)}`,
      query: { transfer_keys_to: p.transferKeysTo },
    });
  }
}

/** Invitations by email. */
class Invitations extends Resource {
  create({ orgId, ...body }: { orgId: string; email: string; role: string; expires_in_hours?: number }) {
    return this.req<Invitation>({ method: "POST", path: `/api/organizations/${seg(orgId)}/invitations`, body });
  }
  list(p: { orgId: string; limit?: number }) {
    return this.paged<Invitation>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/invitations`, query: { limit: p.limit } });
  }
  revoke(p: { invitationId: string }) {
    return this.req<void>({ method: "DELETE", path: `/api/invitations/${seg(p.invitationId)}` });
  }
  accept(p: { token: string; authenticated?: boolean }) {
    return this.req<Accepted>({ method: "POST", path: "/api/invitations/accept", body: { token: p.token }, auth: !!p.authenticated });
  }
}

/** Members of a team. */
class TeamMembers extends Resource {
  list(p: { teamId: string; limit?: number }) {
    return this.paged<TeamMember>({ method: "GET", path: `/api/teams/${seg(p.teamId)}/members`, query: { limit: p.limit } });
  }
  add(p: { teamId: string; userId: string }) {
    return this.req<TeamMember>({ method: "POST", path: `/api/teams/${seg(p.teamId)}/members`, body: { user_id: p.userId } });
  }
  remove(p: { teamId: string; userId: string }) {
    return this.req<void>({ method: "DELETE", path: `/api/teams/${seg(p.teamId)}/members/${seg(p.userId)}` });
  }
}

/** Teams of an organization. */
class Teams extends Resource {
  readonly members = new TeamMembers(this.client);
  create({ orgId, ...body }: { orgId: string; name: string } & Body) {
    return this.req<Team>({ method: "POST", path: `/api/organizations/${seg(orgId)}/teams`, body });
  }
  list(p: { orgId: string; limit?: number }) {
    return this.paged<Team>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/teams`, query: { limit: p.limit } });
  }
  retrieve(p: { teamId: string }) {
    return this.req<Team>({ method: "GET", path: `/api/teams/${seg(p.teamId)}` });
  }
  update({ teamId, ...body }: { teamId: string } & Body) {
    return this.req<Team>({ method: "PATCH", path: `/api/teams/${seg(teamId)}`, body });
  }
  delete(p: { teamId: string }) {
    return this.req<void>({ method: "DELETE", path: `/api/teams/${seg(p.teamId)}` });
  }
}

/** Virtual keys: the full key is returned once, at create and rotate. */
class Keys extends Resource {
  create({ orgId, ...body }: { orgId: string; name: string } & Body) {
    return this.req<Key>({ method: "POST", path: `/api/organizations/${seg(orgId)}/keys`, body });
  }
  list(p: { orgId: string; limit?: number }) {
    return this.paged<Key>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/keys`, query: { limit: p.limit } });
  }
  retrieve(p: { keyId: string }) {
    return this.req<Key>({ method: "GET", path: `/api/keys/${seg(p.keyId)}` });
  }
  /** Change fields; `null` clears a nullable one. */
  update({ keyId, ...body }: { keyId: string } & Body) {
    return this.req<Key>({ method: "PATCH", path: `/api/keys/${seg(keyId)}`, body });
  }
  rotate(p: { keyId: string; graceSeconds?: number }) {
    const body = p.graceSeconds === undefined ? {} : { grace_seconds: p.graceSeconds };
    return this.req<Key>({ method: "POST", path: `/api/keys/${seg(p.keyId)}/rotate`, body });
  }
  /** Revoke the key; resolves to it with `status: "revoked"`. */
  delete(p: { keyId: string }) {
    return this.req<Key>({ method: "DELETE", path: `/api/keys/${seg(p.keyId)}` });
  }
}

/** AI agents. */
class Agents extends Resource {
  list(p: { orgId?: string; limit?: number } = {}) {
    return this.paged<Agent>({ method: "GET", path: "/api/agents", query: { org_id: p.orgId, limit: p.limit } });
  }
  create(body: { name: string } & Body) {
    return this.req<Agent>({ method: "POST", path: "/api/agents", body });
  }
  retrieve(p: { agentId: string }) {
    return this.req<Agent>({ method: "GET", path: `/api/agents/${seg(p.agentId)}` });
  }
  update({ agentId, ...body }: { agentId: string } & Body) {
    return this.req<Agent>({ method: "PATCH", path: `/api/agents/${seg(agentId)}`, body });
  }
  assignOrg(p: { agentId: string; orgId: string }) {
    return this.req<Agent>({ method: "POST", path: `/api/agents/${seg(p.agentId)}/assign-org`, body: { org_id: p.orgId } });
  }
  unassignOrg(p: { agentId: string }) {
    return this.req<Agent>({ method: "POST", path: `/api/agents/${seg(p.agentId)}/unassign-org` });
  }
}

type Range = { orgId: string; from?: string; to?: string };

/** Revenue, token cost and margin (owners). */
class Billing extends Resource {
  summary(p: Range) {
    return this.req<BillingSummary>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/billing-summary`, query: { from: p.from, to: p.to } });
  }
  records(p: Range) {
    return this.req<BillingRecords>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/billing`, query: { from: p.from, to: p.to } });
  }
  exportCsv(p: Range) {
    return this.req<string>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/billing.csv`, query: { from: p.from, to: p.to }, text: true });
  }
}

/** Usage per day, model, key, agent or team. */
class Usage extends Resource {
  retrieve({ orgId, ...query }: { orgId: string } & Query) {
    return this.req<UsageReport>({ method: "GET", path: `/api/organizations/${seg(orgId)}/usage`, query });
  }
}

/** Request logs, newest first. */
class Logs extends Resource {
  list({ orgId, ...query }: { orgId: string } & Query) {
    return this.paged<LogEntry>({ method: "GET", path: `/api/organizations/${seg(orgId)}/logs`, query });
  }
  content(p: { orgId: string; eventId: string }) {
    return this.req<LogContent>({ method: "GET", path: `/api/organizations/${seg(p.orgId)}/logs/${seg(p.eventId)}/content` });
  }
}

/** API tokens; the secret is returned once. */
class Tokens extends Resource {
  list(p: { limit?: number } = {}) {
    return this.paged<Token>({ method: "GET", path: "/api/tokens", query: { limit: p.limit } });
  }
  create(body: { name?: string; expires_at?: string } = {}) {
    return this.req<Token>({ method: "POST", path: "/api/tokens", body });
  }
  revoke(p: { tokenId: string }) {
    return this.req<void>({ method: "DELETE", path: `/api/tokens/${seg(p.tokenId)}` });
  }
  createForUser({ userId, ...body }: { userId: string; name?: string; expires_at?: string }) {
    return this.req<Token>({ method: "POST", path: `/api/users/${seg(userId)}/tokens`, body });
  }
}

/** Users and the caller. */
class Users extends Resource {
  me() {
    return this.req<Me>({ method: "GET", path: "/api/me" });
  }
  list(p: { limit?: number } = {}) {
    return this.paged<User>({ method: "GET", path: "/api/users", query: { limit: p.limit } });
  }
  create(p: { email: string }) {
    return this.req<User>({ method: "POST", path: "/api/users", body: p });
  }
}

/** The model catalog. */
class Models extends Resource {
  list(p: { limit?: number } = {}) {
    return this.paged<Model>({ method: "GET", path: "/api/models", query: { limit: p.limit } });
  }
  create(body: { name: string } & Body) {
    return this.req<Model>({ method: "POST", path: "/api/models", body });
  }
  retrieve(p: { name: string }) {
    return this.req<Model>({ method: "GET", path: `/api/models/${seg(p.name)}` });
  }
  update({ name, ...body }: { name: string } & Body) {
    return this.req<Model>({ method: "PATCH", path: `/api/models/${seg(name)}`, body });
  }
  delete(p: { name: string }) {
    return this.req<void>({ method: "DELETE", path: `/api/models/${seg(p.name)}` });
  }
}

/** Exchange rates. */
class FxRates extends Resource {
  list() {
    return this.req<FxRate[]>({ method: "GET", path: "/api/fx-rates" });
  }
  set(p: { from: string; to: string; rate: string }) {
    return this.req<FxRate>({ method: "PUT", path: `/api/fx-rates/${seg(p.from)}/${seg(p.to)}`, body: { rate: p.rate } });
  }
  delete(p: { from: string; to: string }) {
    return this.req<void>({ method: "DELETE", path: `/api/fx-rates/${seg(p.from)}/${seg(p.to)}` });
  }
}

/** The audit log. */
class AuditLog extends Resource {
  list({ orgId, ...query }: { orgId?: string } & Query = {}) {
    const path = orgId ? `/api/organizations/${seg(orgId)}/audit-log` : "/api/audit-log";
    return this.paged<AuditEntry>({ method: "GET", path, query });
  }
}

/** Why denied: the edge's own decision for a key, model and client IP. */
class Explain extends Resource {
  create({ orgId, ...body }: { orgId: string } & Body) {
    return this.req<Explanation>({ method: "POST", path: `/api/organizations/${seg(orgId)}/explain`, body });
  }
}

/** Client of the Tollgate admin API. */
export class Tollgate {
  readonly apiKey: string;
  readonly controlPlaneUrl: string;
  readonly baseUrl: string | undefined;
  readonly timeout: number;
  readonly maxRetries: number;
  private readonly fetchImpl: typeof fetch;

  readonly organizations = new Organizations(this);
  readonly orgConfigs = new OrgConfigs(this);
  readonly members = new Members(this);
  readonly invitations = new Invitations(this);
  readonly teams = new Teams(this);
  readonly keys = new Keys(this);
  readonly agents = new Agents(this);
  readonly billing = new Billing(this);
  readonly usage = new Usage(this);
  readonly logs = new Logs(this);
  readonly tokens = new Tokens(this);
  readonly users = new Users(this);
  readonly models = new Models(this);
  readonly fxRates = new FxRates(this);
  readonly auditLog = new AuditLog(this);
  readonly explain = new Explain(this);

  constructor(opts: ClientOptions = {}) {
    const apiKey = opts.apiKey ?? env("TOLLGATE_API_KEY");
    if (!apiKey) {
      throw new TollgateError("no API key: pass apiKey or set TOLLGATE_API_KEY (a platform-admin or user token)");
    }
    this.apiKey = apiKey;
    this.baseUrl = opts.baseUrl ?? env("TOLLGATE_BASE_URL");
    let root = opts.controlPlaneUrl ?? env("TOLLGATE_CONTROL_PLANE_URL") ?? this.baseUrl ?? DEFAULT_BASE_URL;
    root = root.replace(/\/+$/, "");
    if (root.endsWith("/api")) root = root.slice(0, -4);
    this.controlPlaneUrl = root;
    this.timeout = opts.timeout ?? 30_000;
    this.maxRetries = opts.maxRetries ?? 2;
    this.fetchImpl = opts.fetch ?? globalThis.fetch;
  }

  /** @internal */
  async _send(call: Call): Promise<Response> {
    const url = new URL(this.controlPlaneUrl + call.path);
    for (const [k, v] of Object.entries(call.query ?? {})) {
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    }
    const headers: Record<string, string> = { accept: "application/json" };
    if (call.auth !== false) headers.authorization = `Bearer ${this.apiKey}`;
    let body: string | undefined;
    if (call.body !== undefined) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(call.body);
    }
    for (let attempt = 0; ; attempt++) {
      const retryable = IDEMPOTENT.has(call.method) && attempt < this.maxRetries;
      let res: Response;
      try {
        res = await this.fetchImpl(url, { method: call.method, headers, body, signal: AbortSignal.timeout(this.timeout) });
      } catch (e) {
        if (retryable) {
          await backoff(attempt);
          continue;
        }
        const name = (e as { name?: string }).name;
        if (name === "TimeoutError" || name === "AbortError") {
          throw new APIConnectionTimeoutError(`request timed out after ${this.timeout} ms`);
        }
        throw new APIConnectionError(`connection error: ${(e as Error).message}`);
      }
      if (retryable && (res.status === 429 || res.status >= 500)) {
        await backoff(attempt);
        continue;
      }
      return res;
    }
  }

  /** @internal */
  async _request<T>(call: Call): Promise<T> {
    const res = await this._send(call);
    await raiseFor(res);
    if (call.text) return (await res.text()) as T;
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** @internal */
  async _page<T>(call: Call): Promise<Page<T>> {
    const res = await this._send(call);
    await raiseFor(res);
    return new Page<T>(this, call, (await res.json()) as T[], res.headers.get(NEXT_CURSOR));
  }
}

async function raiseFor(res: Response): Promise<void> {
  if (res.status < 400) return;
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  const cls = BY_STATUS[res.status] ?? (res.status >= 500 ? InternalServerError : APIStatusError);
  throw new cls(res.status, body);
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(500 * 2 ** attempt, 8000) * (0.75 + Math.random() / 2);
  return new Promise((r) => setTimeout(r, ms));
}

export default Tollgate;
