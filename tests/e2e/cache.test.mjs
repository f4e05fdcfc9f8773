// The response cache end to end, in workerd with its real local KV: misses then hits
// (the upstream sees one call), stream replay, Cache-Control, tenant isolation, what is
// never cached, concurrent misses, the admin purge, and hits served from KV alone.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { adminRequest, chat, parseEvents } from "../support/gateway.mjs";
import { UPSTREAM_KEY, upstreamConfig, useGatewayWith } from "../support/scenarios.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A gateway on the mock OpenAI upstream with keys, an admin token and these vars. */
function useCacheGateway(vars = {}) {
  return useGatewayWith(startMockOpenAI, (url) => {
    const config = upstreamConfig(url, {
      RATE_LIMITS: JSON.stringify({ tiers: { free: { requests: { limit: 10000, window_s: 60 } } } }),
      ...vars,
    });
    config.secrets.ADMIN_TOKEN = ADMIN_TOKEN;
    config.vars.ANONYMOUS_MODELS = "";
    return config;
  });
}

/** Helpers bound to a fixture: keys per principal, requests with them. */
function helpers(fixture) {
  const admin = (method, path, body) => adminRequest(fixture.gateway.url, ADMIN_TOKEN, method, path, body);
  return {
    admin,
    async keyFor(principal, team) {
      const response = await admin("POST", "/admin/keys", { principal, ...(team ? { team } : {}) });
      assert.equal(response.status, 201);
      return (await response.json()).key;
    },
    ask(key, body, headers = {}) {
      return chat(fixture.gateway.url, { model: "ok", temperature: 0, ...body }, { headers: { authorization: `Bearer ${key}`, ...headers } });
    },
    calls: (model = "ok") => fixture.upstream.callsFor(model).length,
  };
}

const say = (text) => ({ messages: [{ role: "user", content: text }] });

describe("the response cache", () => {
  const fixture = useCacheGateway();
  const { admin, keyFor, ask, calls } = helpers(fixture);
  let alice;
  let bob;

  test("a deterministic request misses, then hits without calling the upstream", async () => {
    alice = await keyFor("alice");
    bob = await keyFor("bob");
    const before = calls();
    const first = await ask(alice, say("miss then hit"));
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-cache"), "MISS");
    const key = first.headers.get("x-cache-key");
    assert.match(key, /^[0-9a-f]{64}$/);
    const miss = await first.json();
    const missLog = await fixture.gateway.logFor(first.headers.get("x-request-id"));
    assert.equal(missLog.cache_stored, true);

    const second = await ask(alice, say("miss then hit"));
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-cache"), "HIT");
    assert.equal(second.headers.get("x-cache-key"), key);
    assert.equal(second.headers.get("age"), "0");
    const hit = await second.json();
    assert.equal(calls(), before + 1, "the upstream saw one call");
    assert.equal(hit.choices[0].message.content, miss.choices[0].message.content);
    assert.deepEqual(hit.usage, miss.usage);
    assert.equal(hit.model, miss.model);
    assert.equal(hit.id, `chatcmpl-${second.headers.get("x-request-id")}`, "a fresh id per response");
    const hitLog = await fixture.gateway.logFor(second.headers.get("x-request-id"));
    assert.equal(hitLog.cache, "hit");
    assert.equal(hitLog.attempts, undefined, "no upstream call");
  });

  test("key order, whitespace and irrelevant fields do not change the key", async () => {
    const body = `{ "temperature" : 0.0, "messages": [ { "content": "miss then hit", "role": "user" } ],
      "user": "someone", "model": "ok" }`;
    const response = await chat(fixture.gateway.url, body, { headers: { authorization: `Bearer ${alice}` } });
    assert.equal(response.headers.get("x-cache"), "HIT");
    await response.arrayBuffer();
  });

  test("a hit counts as a request for rate limits, and costs no tokens", async () => {
    const usage = async () => (await (await fetch(`${fixture.gateway.url}/v1/usage`, { headers: { authorization: `Bearer ${alice}` } })).json()).today;
    const before = await usage();
    const response = await ask(alice, say("miss then hit"));
    assert.equal(response.headers.get("x-cache"), "HIT");
    await response.arrayBuffer();
    let after = await usage();
    for (let i = 0; i < 50 && after.requests === before.requests; i++) {
      await sleep(20);
      after = await usage();
    }
    assert.equal(after.requests, before.requests + 1);
    assert.equal(after.prompt_tokens, before.prompt_tokens);
    assert.equal(after.completion_tokens, before.completion_tokens);
  });

  test("a streamed miss is recorded and replayed as proper SSE, for stream and JSON clients", async () => {
    const before = calls();
    const body = { ...say("stream me"), stream: true, stream_options: { include_usage: true } };
    const first = await ask(alice, body);
    assert.equal(first.headers.get("x-cache"), "MISS");
    const original = parseEvents(await first.text());
    const text = (events) => events.slice(0, -1).flatMap((e) => e.choices).map((c) => c.delta.content ?? "").join("");
    assert.equal(text(original), "Hello from the mock upstream");
    const missLog = await fixture.gateway.logFor(first.headers.get("x-request-id"));
    assert.equal(missLog.cache_stored, true);

    const second = await ask(alice, body);
    assert.equal(second.headers.get("x-cache"), "HIT");
    assert.match(second.headers.get("content-type"), /^text\/event-stream/);
    const raw = await second.text();
    const id = `chatcmpl-${second.headers.get("x-request-id")}`;
    // Byte for byte: role and text, finish, usage, [DONE], each a `data:` event.
    const chunk = (choices, usage) =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: JSON.parse(raw.slice(6, raw.indexOf("\n"))).created, model: original[0].model, choices, ...(usage ? { usage } : {}) })}\n\n`;
    const usage = original.at(-2).usage;
    const expected =
      chunk([{ index: 0, delta: { role: "assistant", content: "Hello from the mock upstream" }, finish_reason: null }]) +
      chunk([{ index: 0, delta: {}, finish_reason: "stop" }]) +
      chunk([], usage) +
      "data: [DONE]\n\n";
    assert.equal(raw, expected);
    assert.equal(calls(), before + 1);

    // The stream flag is not part of the key: a JSON client gets the same answer.
    const json = await ask(alice, say("stream me"));
    assert.equal(json.headers.get("x-cache"), "HIT");
    assert.equal((await json.json()).choices[0].message.content, "Hello from the mock upstream");
  });

  test("answers are per principal by default", async () => {
    const response = await ask(bob, say("miss then hit"));
    assert.equal(response.headers.get("x-cache"), "MISS", "bob never sees alice's answer");
    await response.arrayBuffer();
  });

  test("Cache-Control: no-store bypasses the cache entirely", async () => {
    const before = calls();
    for (let i = 0; i < 2; i++) {
      const response = await ask(alice, say("no store"), { "cache-control": "no-store" });
      assert.equal(response.headers.get("x-cache"), "BYPASS");
      await response.arrayBuffer();
    }
    const after = await ask(alice, say("no store"));
    assert.equal(after.headers.get("x-cache"), "MISS", "nothing was stored");
    await after.arrayBuffer();
    assert.equal(calls(), before + 3);
  });

  test("Cache-Control: no-cache skips the read but refreshes the entry", async () => {
    const first = await ask(alice, say("refresh me"));
    await first.arrayBuffer();
    await sleep(1100);
    const refreshed = await ask(alice, say("refresh me"), { "cache-control": "no-cache" });
    assert.equal(refreshed.headers.get("x-cache"), "MISS");
    await refreshed.arrayBuffer();
    const log = await fixture.gateway.logFor(refreshed.headers.get("x-request-id"));
    assert.equal(log.cache_stored, true);
    const hit = await ask(alice, say("refresh me"));
    assert.equal(hit.headers.get("x-cache"), "HIT");
    assert.equal(hit.headers.get("age"), "0", "the refreshed entry is served");
    await hit.arrayBuffer();
  });

  test("Cache-Control: max-age refuses older entries and caps the stored lifetime", async () => {
    const first = await ask(alice, say("max age"), { "cache-control": "max-age=1" });
    assert.equal(first.headers.get("x-cache"), "MISS");
    await first.arrayBuffer();
    const young = await ask(alice, say("max age"));
    assert.equal(young.headers.get("x-cache"), "HIT");
    await young.arrayBuffer();
    await sleep(1300);
    // Stored for at most 1 s: gone for every request now.
    const expired = await ask(alice, say("max age"));
    assert.equal(expired.headers.get("x-cache"), "MISS");
    await expired.arrayBuffer();
    await sleep(1100);
    const old = await ask(alice, say("max age"), { "cache-control": "max-age=0" });
    assert.equal(old.headers.get("x-cache"), "MISS", "an entry over a second old is refused");
    await old.arrayBuffer();
    const fresh = await ask(alice, say("max age"), { "cache-control": "max-age=5" });
    assert.equal(fresh.headers.get("x-cache"), "HIT");
    await fresh.arrayBuffer();
  });

  test("non-deterministic requests bypass the cache unless they opt in", async () => {
    const warm = await ask(alice, { ...say("warm"), temperature: 0.8 });
    assert.equal(warm.headers.get("x-cache"), "BYPASS");
    const log = await fixture.gateway.logFor(warm.headers.get("x-request-id"));
    assert.equal(log.cache_bypass, "not_deterministic");
    await warm.arrayBuffer();
    const first = await ask(alice, { ...say("warm"), temperature: 0.8 }, { "x-gateway-cache": "on" });
    assert.equal(first.headers.get("x-cache"), "MISS");
    await first.arrayBuffer();
    const second = await ask(alice, { ...say("warm"), temperature: 0.8 }, { "x-gateway-cache": "on" });
    assert.equal(second.headers.get("x-cache"), "HIT");
    await second.arrayBuffer();
  });

  test("errors, cut streams and answers cut by max_tokens are never stored", async () => {
    for (const [model, body] of [
      ["error-500", {}],
      ["break", { stream: true }],
      ["truncate", { stream: true }],
    ]) {
      const before = calls(model);
      for (let i = 0; i < 2; i++) {
        const response = await ask(alice, { model, ...say(`never ${model}`), ...body });
        assert.equal(response.headers.get("x-cache"), "MISS", model);
        await response.arrayBuffer();
      }
      assert.ok(calls(model) >= before + 2, `${model}: the upstream is called every time`);
    }
    // The built-in mock cuts at max_tokens with finish_reason "length".
    for (let i = 0; i < 2; i++) {
      const response = await ask(alice, { model: "mock", max_tokens: 2, ...say("cut short") });
      assert.equal((await response.json()).choices[0].finish_reason, "length");
      assert.equal(response.headers.get("x-cache"), "MISS");
    }
  });

  test("concurrent identical misses store the answer once", async () => {
    fixture.upstream.script("ok", Array.from({ length: 5 }, () => ({ drip: 50 })));
    const responses = await Promise.all(Array.from({ length: 5 }, () => ask(alice, { ...say("all at once"), stream: true })));
    for (const response of responses) {
      assert.equal(response.headers.get("x-cache"), "MISS");
      await response.text();
    }
    const logs = await Promise.all(responses.map((response) => fixture.gateway.logFor(response.headers.get("x-request-id"))));
    assert.equal(logs.filter((log) => log.cache_stored).length, 1, "one write");
    const next = await ask(alice, say("all at once"));
    assert.equal(next.headers.get("x-cache"), "HIT");
    await next.arrayBuffer();
  });

  test("the admin API purges one entry or a whole namespace", async () => {
    const first = await ask(bob, say("purge one"));
    const key = first.headers.get("x-cache-key");
    await first.arrayBuffer();
    const other = await ask(bob, say("purge all"));
    await other.arrayBuffer();
    const one = await admin("DELETE", `/admin/cache/principal:bob?key=${key}`);
    assert.equal(one.status, 200);
    // `principal:bob` names the key principal `bob`, whose full id is `key:bob`.
    assert.deepEqual(await one.json(), { namespace: "principal:key:bob", key, purged: 1 });
    const purged = await ask(bob, say("purge one"));
    assert.equal(purged.headers.get("x-cache"), "MISS");
    await purged.arrayBuffer();
    const stillThere = await ask(bob, say("purge all"));
    assert.equal(stillThere.headers.get("x-cache"), "HIT");
    await stillThere.arrayBuffer();

    const all = await admin("DELETE", "/admin/cache/principal%3Abob");
    assert.equal(all.status, 200);
    assert.ok((await all.json()).purged >= 2);
    for (const text of ["purge one", "purge all"]) {
      const response = await ask(bob, say(text));
      assert.equal(response.headers.get("x-cache"), "MISS", text);
      await response.arrayBuffer();
    }
    const alicesHit = await ask(alice, say("miss then hit"));
    assert.equal(alicesHit.headers.get("x-cache"), "HIT", "other namespaces are untouched");
    await alicesHit.arrayBuffer();

    assert.equal((await admin("DELETE", "/admin/cache/everyone")).status, 400);
    assert.equal((await admin("DELETE", "/admin/cache/global?key=xyz")).status, 400);
    assert.equal((await chat(fixture.gateway.url, {}, { headers: { authorization: `Bearer ${alice}` } })).status, 400);
    const asUser = await fetch(`${fixture.gateway.url}/admin/cache/global`, { method: "DELETE", headers: { authorization: `Bearer ${alice}` } });
    assert.equal(asUser.status, 401);
  });
});

describe("a global cache served from KV alone", () => {
  // No isolate level: every hit is read from KV.
  const fixture = useCacheGateway({ CACHE_SCOPE: "global", CACHE_L1_BYTES: "0" });
  const { keyFor, ask, calls } = helpers(fixture);

  test("one principal's answer serves another, from KV", async () => {
    const carol = await keyFor("carol");
    const dave = await keyFor("dave");
    const before = calls();
    const first = await ask(carol, say("shared"));
    assert.equal(first.headers.get("x-cache"), "MISS");
    const miss = await first.json();
    // The KV write runs after the response: wait until it is visible.
    let hit;
    for (let i = 0; i < 50; i++) {
      hit = await ask(dave, say("shared"));
      if (hit.headers.get("x-cache") === "HIT") break;
      await hit.arrayBuffer();
      await sleep(20);
    }
    assert.equal(hit.headers.get("x-cache"), "HIT");
    assert.equal((await hit.json()).choices[0].message.content, miss.choices[0].message.content);
    assert.ok(calls() <= before + 2);
    assert.ok(!JSON.stringify(miss).includes(UPSTREAM_KEY));
  });
});
