// API keys and the admin API in workerd, with the real local KV: deny by default, create →
// use → change → revoke → refused, and admin and user credentials never crossing.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { adminRequest, chat, startGateway } from "../support/gateway.mjs";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";
const hello = { model: "mock", messages: [{ role: "user", content: "hi" }] };

async function errorOf(response) {
  return (await response.json()).error;
}

describe("API keys", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({
      vars: { MOCK_CHUNK_DELAY_MS: "0", TEAMS: JSON.stringify({ frozen: { models: [] } }) },
      secrets: { ADMIN_TOKEN },
    });
  });
  after(() => gateway?.close());

  const admin = (method, path, body, token = ADMIN_TOKEN) => adminRequest(gateway.url, token, method, path, body);
  const withKey = (key, body = hello) => chat(gateway.url, body, { headers: { authorization: `Bearer ${key}` } });

  test("deny by default: no key, a malformed key or an unknown key all get the same 401", async () => {
    const unknownKey = `sk-gw-${"0".repeat(48)}`;
    const responses = [
      await chat(gateway.url, hello),
      await withKey("not-a-key"),
      await withKey(unknownKey),
      await fetch(`${gateway.url}/v1/models`),
    ];
    const messages = new Set();
    assert.equal(responses[0].headers.get("www-authenticate"), 'Bearer realm="gateway"', "no error code without credentials");
    assert.equal(responses[1].headers.get("www-authenticate"), 'Bearer realm="gateway", error="invalid_token"');
    for (const response of responses) {
      assert.equal(response.status, 401);
      assert.match(response.headers.get("www-authenticate"), /^Bearer /);
      const error = await errorOf(response);
      assert.equal(error.code, "invalid_api_key");
      assert.equal(error.type, "authentication_error");
      messages.add(error.message);
    }
    assert.equal(messages.size, 1, "the message never tells the cases apart");
  });

  test("requests refused before their body is read do not lose their connection", async () => {
    // Behind the static-assets router an unread body used to reset the connection now and
    // then; the gateway drains it. 300 refusals in a row must all arrive as 401s.
    const body = { ...hello, messages: [{ role: "user", content: "x".repeat(20_000) }] };
    const statuses = new Set();
    for (let i = 0; i < 300; i++) {
      const response = await chat(gateway.url, body);
      statuses.add(response.status);
      await response.arrayBuffer();
    }
    assert.deepEqual([...statuses], [401]);
  });

  test("create → use → restrict → widen → revoke → refused", async () => {
    const created = await admin("POST", "/admin/keys", { principal: "user-42", tier: "pro", team: "red", models: ["mock"] });
    assert.equal(created.status, 201);
    const key = await created.json();
    assert.match(key.key, /^sk-gw-[0-9a-f]{48}$/);
    assert.match(key.id, /^key_[0-9a-f]{16}$/);
    assert.equal(key.principal, "user-42");
    assert.equal(key.hash, undefined);

    const answer = await withKey(key.key);
    assert.equal(answer.status, 200);
    assert.equal((await answer.json()).object, "chat.completion");
    const log = await gateway.logFor(answer.headers.get("x-request-id"));
    assert.equal(log.principal, "key:user-42", "named by where it comes from");

    const models = await (await fetch(`${gateway.url}/v1/models`, { headers: { authorization: `Bearer ${key.key}` } })).json();
    assert.deepEqual(models.data.map((m) => m.id), ["mock"]);

    const narrowed = await admin("PATCH", `/admin/keys/${key.id}`, { models: ["gpt-4o"] });
    assert.equal(narrowed.status, 200);
    const refused = await withKey(key.key);
    assert.equal(refused.status, 403);
    assert.equal((await errorOf(refused)).code, "model_not_allowed");

    const widened = await admin("PATCH", `/admin/keys/${key.id}`, { models: null, tier: "enterprise" });
    assert.equal((await widened.json()).tier, "enterprise");
    assert.equal((await withKey(key.key)).status, 200);

    const listed = await (await admin("GET", "/admin/keys")).json();
    const entry = listed.data.find((k) => k.id === key.id);
    assert.equal(entry.principal, "user-42");
    assert.equal(entry.key, undefined, "the key is shown once, at creation");
    assert.equal(entry.hash, undefined);
    assert.equal((await (await admin("GET", `/admin/keys/${key.id}`)).json()).team, "red");

    const revoked = await admin("DELETE", `/admin/keys/${key.id}`);
    assert.equal(revoked.status, 200);
    assert.equal(typeof (await revoked.json()).revoked_at, "number");
    const afterRevoke = await withKey(key.key);
    assert.equal(afterRevoke.status, 401);
    assert.equal((await errorOf(afterRevoke)).code, "invalid_api_key");

    assert.ok(!gateway.logs.join("\n").includes(key.key), "the plaintext key is never logged");
  });

  test("revocation is final: a change is refused and a stale write cannot bring the key back", async () => {
    const key = await (await admin("POST", "/admin/keys", { principal: "leaver", tier: "pro" })).json();
    assert.equal((await withKey(key.key)).status, 200);
    const kv = await gateway.kv();
    // What a PATCH that read the record before the revocation would write back.
    const stale = await kv.get(`apikey:id:${key.id}`);
    assert.equal((await admin("DELETE", `/admin/keys/${key.id}`)).status, 200);
    const patched = await admin("PATCH", `/admin/keys/${key.id}`, { tier: "enterprise" });
    assert.equal(patched.status, 409);
    assert.equal((await errorOf(patched)).code, "key_revoked");
    const record = JSON.parse(stale);
    assert.equal(record.revoked_at, null);
    await kv.put(`apikey:hash:${record.hash}`, stale);
    await kv.put(`apikey:id:${key.id}`, stale);
    const refused = await withKey(key.key);
    assert.equal(refused.status, 401, "the tombstone still revokes it");
    assert.equal(typeof (await (await admin("GET", `/admin/keys/${key.id}`)).json()).revoked_at, "number");
  });

  test("team settings narrow what members may use", async () => {
    const key = await (await admin("POST", "/admin/keys", { principal: "member", team: "frozen" })).json();
    const response = await withKey(key.key);
    assert.equal(response.status, 403);
    assert.equal((await errorOf(response)).code, "model_not_allowed");
  });

  test("an expired key is refused", async () => {
    const key = await (await admin("POST", "/admin/keys", { principal: "temp", expires_at: Math.floor(Date.now() / 1000) - 1 })).json();
    assert.equal((await withKey(key.key)).status, 401);
  });

  test("admin routes refuse user keys and bad tokens; user routes refuse the admin token", async () => {
    const key = await (await admin("POST", "/admin/keys", { principal: "user-7" })).json();
    for (const token of [key.key, "wrong", ""]) {
      const response = await admin("GET", "/admin/keys", undefined, token);
      assert.equal(response.status, 401, `token ${token}`);
    }
    assert.equal((await withKey(ADMIN_TOKEN)).status, 401);
  });

  test("key listings come in pages", async () => {
    for (let i = 0; i < 3; i++) await admin("POST", "/admin/keys", { principal: `paged-${i}` });
    const seen = new Set();
    let cursor = null;
    let pages = 0;
    do {
      const query = `?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page = await (await admin("GET", `/admin/keys${query}`)).json();
      assert.ok(page.data.length <= 2);
      for (const key of page.data) seen.add(key.id);
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    const all = await (await admin("GET", "/admin/keys?limit=1000")).json();
    assert.equal(all.next_cursor, null);
    assert.equal(seen.size, all.data.length);
    assert.ok(pages >= 2);
    assert.equal((await admin("GET", "/admin/keys?limit=0")).status, 400);
  });

  test("admin requests are validated and unknown ids are 404", async () => {
    const bad = await admin("POST", "/admin/keys", { principal: "", models: "all" });
    assert.equal(bad.status, 400);
    assert.equal((await admin("GET", "/admin/keys/key_doesnotexist")).status, 404);
    assert.equal((await admin("PATCH", "/admin/keys/key_doesnotexist", { tier: "x" })).status, 404);
  });
});

describe("without an ADMIN_TOKEN", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway();
  });
  after(() => gateway?.close());

  test("the admin API is disabled", async () => {
    const response = await fetch(`${gateway.url}/admin/keys`, { headers: { authorization: "Bearer anything" } });
    assert.equal(response.status, 403);
    assert.equal((await errorOf(response)).code, "admin_disabled");
  });
});
