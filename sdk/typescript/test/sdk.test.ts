// The TypeScript SDK against a live admin API (scripts/with-tollgate sets the env):
// the seeds' calls, every resource, paging, and one error class per status.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import Tollgate, {
  APIConnectionError,
  APIConnectionTimeoutError,
  AuthenticationError,
  ConflictError,
  NotFoundError,
  PermissionDeniedError,
  UnprocessableEntityError,
} from "../src/index.js";

const unique = () => randomUUID().slice(0, 8);
const admin = () => new Tollgate();
async function newOrg(client: Tollgate) {
  return client.organizations.create({ name: `TS ${unique()}` });
}

test("the seed calls work verbatim", async () => {
  const org = await newOrg(admin());
  const orgId = org.id;
  // The product docs' snippet, with the class name changed.
  const client = new Tollgate({
    apiKey: process.env.TOLLGATE_API_KEY,
    baseUrl: process.env.TOLLGATE_EDGE_URL,
    controlPlaneUrl: process.env.TOLLGATE_CONTROL_PLANE_URL,
  });
  const config = await client.orgConfigs.retrieve({
    orgId: orgId,
  });
  await client.orgConfigs.update({
    orgId: orgId,
    config: {
      rate_limiting: {
        enabled: true,
        rpm: 1000,
      },
      budgets: {
        limit: 500.0,
        period: "monthly",
      },
    },
  });
  const after = await client.orgConfigs.retrieve({ orgId });
  assert.notEqual(config.config.rate_limiting.rpm, 1000);
  assert.equal(after.config.rate_limiting.rpm, 1000);
  assert.equal(after.config.budgets?.limit, "500.00");
  assert.equal(client.baseUrl, process.env.TOLLGATE_EDGE_URL);
});

test("keys are shown once, listed by prefix, edited, rotated and revoked", async () => {
  const client = admin();
  const org = await newOrg(client);
  const key = await client.keys.create({
    orgId: org.id,
    name: "backend-service",
    rate_limit_rpm: 100,
    allowed_models: ["gpt-4o", "gpt-4o-mini"],
  });
  assert.ok(key.key?.startsWith(key.key_prefix));
  const listed = [];
  for await (const k of client.keys.list({ orgId: org.id })) listed.push(k);
  assert.equal(listed.length, 1);
  assert.equal(listed[0].key, undefined);
  const edited = await client.keys.update({ keyId: key.id, rate_limit_rpm: null, name: "svc" });
  assert.equal(edited.rate_limit_rpm, null);
  const rotated = await client.keys.rotate({ keyId: key.id, graceSeconds: 60 });
  assert.ok(rotated.key && rotated.key !== key.key);
  const revoked = await client.keys.delete({ keyId: key.id });
  assert.equal(revoked.status, "revoked");
});

test("lists page through every item", async () => {
  const client = admin();
  const org = await newOrg(client);
  const made = new Set<string>();
  for (let i = 0; i < 5; i++) made.add((await client.keys.create({ orgId: org.id, name: `k${i}` })).id);
  const first = await client.keys.list({ orgId: org.id, limit: 2 });
  assert.equal(first.data.length, 2);
  assert.ok(first.hasNextPage());
  const seen: string[] = [];
  for await (const k of client.keys.list({ orgId: org.id, limit: 2 })) seen.push(k.id);
  assert.deepEqual(new Set(seen), made);
  const sizes = [];
  for await (const page of first.iterPages()) sizes.push(page.data.length);
  assert.deepEqual(sizes, [2, 2, 1]);
});

test("organizations, members, invitations, teams, agents, billing, usage, logs, tokens", async () => {
  const client = admin();
  const u = unique();
  const org = await client.organizations.create({ name: `Acme ${u}`, currency: "EUR" });
  assert.equal((await client.organizations.retrieve({ orgId: org.id })).currency, "EUR");
  assert.equal((await client.organizations.update({ orgId: org.id, description: "d" })).description, "d");
  const user = await client.users.create({ email: `u${u}@example.com` });
  assert.equal((await client.members.add({ orgId: org.id, userId: user.id, role: "member" })).role, "member");
  assert.equal((await client.members.update({ orgId: org.id, userId: user.id, role: "viewer" })).role, "viewer");
  const inv = await client.invitations.create({ orgId: org.id, email: `i${u}@example.com`, role: "member" });
  assert.deepEqual((await client.invitations.list({ orgId: org.id })).data.map((i) => i.id), [inv.id]);
  await client.invitations.revoke({ invitationId: inv.id });
  const team = await client.teams.create({ orgId: org.id, name: "core" });
  await client.teams.members.add({ teamId: team.id, userId: user.id });
  assert.deepEqual((await client.teams.members.list({ teamId: team.id })).data.map((m) => m.user_id), [user.id]);
  await client.teams.delete({ teamId: team.id });
  const agent = await client.agents.create({ name: "helper", billing_rate: "10.00" });
  assert.equal((await client.agents.assignOrg({ agentId: agent.id, orgId: org.id })).org_id, org.id);
  assert.notEqual((await client.agents.unassignOrg({ agentId: agent.id })).org_id, org.id);
  assert.equal((await client.billing.summary({ orgId: org.id })).currency, "EUR");
  assert.match(await client.billing.exportCsv({ orgId: org.id }), /^month/);
  assert.deepEqual((await client.usage.retrieve({ orgId: org.id, group_by: "model" })).rows, []);
  assert.deepEqual((await client.logs.list({ orgId: org.id })).data, []);
  const tok = await client.tokens.create({ name: `ci ${u}` });
  assert.ok(tok.token);
  await client.tokens.revoke({ tokenId: tok.id });
  assert.ok((await client.users.me()).platform_admin);
  assert.ok(Array.isArray(await client.fxRates.list()));
  assert.ok((await client.auditLog.list()).data.length > 0);
  const removed = await client.members.remove({ orgId: org.id, userId: user.id });
  assert.equal(removed.user_id, user.id);
});

test("each error status has its class", async () => {
  const client = admin();
  const u = unique();
  const org = await newOrg(client);
  const other = await newOrg(client);
  const user = await client.users.create({ email: `v${u}@example.com` });
  await client.members.add({ orgId: org.id, userId: user.id, role: "viewer" });
  const tok = await client.tokens.createForUser({ userId: user.id, name: "viewer" });
  const viewer = new Tollgate({ apiKey: tok.token! });
  await assert.rejects(viewer.keys.list({ orgId: other.id }), (e: unknown) => e instanceof NotFoundError && e.status === 404);
  await assert.rejects(viewer.keys.create({ orgId: org.id, name: "nope" }), PermissionDeniedError);
  await assert.rejects(
    client.keys.create({ orgId: org.id, name: "bad", ip_allow: ["not-a-cidr"] }),
    (e: unknown) => e instanceof UnprocessableEntityError && e.field === "ip_allow[0]" && e.message.includes("ip_allow[0]"),
  );
  await assert.rejects(
    new Tollgate({ apiKey: "tg-wrong" }).users.me(),
    (e: unknown) => e instanceof AuthenticationError && !e.message.includes("tg-wrong"),
  );
  await assert.rejects(client.organizations.create({ name: `Dup ${u}`, slug: other.slug }), ConflictError);
  await assert.rejects(
    new Tollgate({ controlPlaneUrl: "http://127.0.0.1:9", maxRetries: 0 }).users.me(),
    APIConnectionError,
  );
});

test("a slow answer is a timeout error", async () => {
  // A server that accepts and never answers.
  const server = createServer(() => {});
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  try {
    const client = new Tollgate({ controlPlaneUrl: `http://127.0.0.1:${port}`, timeout: 200, maxRetries: 0 });
    await assert.rejects(client.organizations.retrieve({ orgId: "org_x" }), APIConnectionTimeoutError);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test("a missing API key is refused at construction", () => {
  const saved = process.env.TOLLGATE_API_KEY;
  delete process.env.TOLLGATE_API_KEY;
  try {
    assert.throws(() => new Tollgate(), /TOLLGATE_API_KEY/);
  } finally {
    process.env.TOLLGATE_API_KEY = saved;
  }
});
