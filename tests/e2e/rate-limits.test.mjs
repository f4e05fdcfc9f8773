// Rate limits and budgets in workerd, with the real local Durable Objects (SQLite storage
// and alarms): exact admission under concurrency, windows that reset, token reservations
// and refunds, concurrency leases released on disconnect and expired when never settled,
// budgets, isolation between principals, headers, /v1/usage, the admin API and the
// failure policy.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, test } from "node:test";
import { adminRequest, chat, startGateway } from "../support/gateway.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";
import { upstreamConfig, useGatewayWith } from "../support/scenarios.mjs";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";
const hello = [{ role: "user", content: "hi" }];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A day-long token window refills 1000 tokens per 86.4 s: well under one token during a
// test, so token figures can be asserted exactly.
const TIERS = {
  free: { requests: { limit: 1000, window_s: 60 } },
  burst: { requests: { limit: 10, window_s: 60 } },
  short: { requests: { limit: 10, window_s: 2 } },
  tokens: { tokens: { limit: 1000, window_s: 86400 } },
  single: { concurrent: 1 },
  budget: { daily_usd: 0.002 },
};
// $100 per million tokens: each mock token costs $0.0001.
const PRICES = { mock: { input: 100, output: 100 }, hold: { input: 0, output: 0 } };

function limitedConfig(upstreamUrl, rateLimits = {}) {
  const config = upstreamConfig(upstreamUrl, {
    RATE_LIMITS: JSON.stringify({ tiers: TIERS, lease_ttl_s: 60, ...rateLimits }),
    PRICES: JSON.stringify(PRICES),
  });
  config.secrets.ADMIN_TOKEN = ADMIN_TOKEN;
  return config;
}

/** Admin-API helpers and per-principal keys for the gateway in `fixture`. */
function helpers(fixture) {
  const admin = (method, path, body) => adminRequest(fixture.gateway.url, ADMIN_TOKEN, method, path, body);
  return {
    admin,
    /** A new key for a new principal of `tier`. */
    async keyFor(tier, principal = `${tier}-${Math.random().toString(16).slice(2)}`) {
      const response = await admin("POST", "/admin/keys", { principal, tier });
      assert.equal(response.status, 201);
      return { key: (await response.json()).key, principal };
    },
    ask(key, body = {}, init = {}) {
      return chat(
        fixture.gateway.url,
        { model: "mock", messages: hello, ...body },
        { ...init, headers: { authorization: `Bearer ${key}` } },
      );
    },
    async usage(key) {
      const response = await fetch(`${fixture.gateway.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(response.status, 200);
      return response.json();
    },
  };
}

async function statuses(responses) {
  const counts = {};
  for (const response of responses) {
    counts[response.status] = (counts[response.status] ?? 0) + 1;
    await response.arrayBuffer();
  }
  return counts;
}

describe("rate limits", () => {
  const fixture = useGatewayWith(startMockOpenAI, (url) => limitedConfig(url));
  const { admin, keyFor, ask, usage } = helpers(fixture);

  test("with 10 requests per minute, 50 concurrent requests admit exactly 10", async () => {
    const { key } = await keyFor("burst");
    const responses = await Promise.all(Array.from({ length: 50 }, () => ask(key)));
    const refused = responses.filter((response) => response.status === 429);
    for (const response of refused) {
      assert.equal(response.headers.get("x-ratelimit-limit-requests"), "10");
      assert.equal(response.headers.get("x-ratelimit-remaining-requests"), "0");
      const retryMs = Number(response.headers.get("retry-after-ms"));
      assert.ok(retryMs > 5_000 && retryMs <= 6_000, `one request's share of the minute, got ${retryMs}`);
      assert.equal(response.headers.get("retry-after"), String(Math.ceil(retryMs / 1000)));
    }
    const error = (await refused[0].clone().json()).error;
    assert.equal(error.code, "rate_limit_exceeded");
    assert.equal(error.type, "rate_limit_error");
    assert.match(error.message, /10 requests per 60 s/);
    assert.deepEqual(await statuses(responses), { 200: 10, 429: 40 });
  });

  test("a short window admits a full burst again once it has passed", async () => {
    // 10 per 2 s refills one request every 200 ms, so a burst that takes `ms` to be decided
    // may admit up to ms / 200 more than 10: the bound is computed from the measured time.
    const { key } = await keyFor("short");
    const burst = async () => {
      const start = Date.now();
      const counts = await statuses(await Promise.all(Array.from({ length: 50 }, () => ask(key))));
      const refills = Math.floor((Date.now() - start) / 200);
      assert.ok(counts[200] >= 10 && counts[200] <= 10 + refills, `${counts[200]} admitted, ${refills} refills`);
      assert.equal(counts[200] + counts[429], 50);
    };
    await burst();
    await sleep(2_000);
    await burst();
  });

  test("two principals do not affect each other", async () => {
    const a = await keyFor("burst");
    const b = await keyFor("burst");
    await statuses(await Promise.all(Array.from({ length: 12 }, () => ask(a.key))));
    assert.equal((await ask(a.key)).status, 429);
    const other = await ask(b.key);
    assert.equal(other.status, 200);
    assert.equal(other.headers.get("x-ratelimit-remaining-requests"), "9");
  });

  test("headers are on every response and count down consistently", async () => {
    const { key } = await keyFor("burst");
    const seen = [];
    for (let i = 0; i < 3; i++) {
      const response = await ask(key);
      assert.equal(response.status, 200);
      seen.push(Number(response.headers.get("x-ratelimit-remaining-requests")));
      assert.match(response.headers.get("x-ratelimit-reset-requests"), /^\d+(\.\d+)?(ms|s)$/);
      assert.equal(response.headers.get("x-ratelimit-limit-tokens"), null, "no token limit in this tier");
      await response.arrayBuffer();
    }
    assert.deepEqual(seen, [9, 8, 7]);
    // Errors and other endpoints report the standing too, without spending a request.
    const invalid = await ask(key, { messages: [] });
    assert.equal(invalid.status, 400);
    const models = await fetch(`${fixture.gateway.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    const usage = await fetch(`${fixture.gateway.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
    for (const response of [invalid, models, usage]) {
      assert.equal(response.headers.get("x-ratelimit-limit-requests"), "10");
      assert.ok(Number(response.headers.get("x-ratelimit-remaining-requests")) >= 7);
    }
  });

  test("tokens: a request reserves prompt + max_tokens and gets back what it did not use", async () => {
    const { key } = await keyFor("tokens");
    const first = await ask(key, { max_tokens: 600 });
    assert.equal(first.status, 200);
    const { usage: used } = await first.json();
    const reserved = Number(first.headers.get("x-ratelimit-limit-tokens")) - Number(first.headers.get("x-ratelimit-remaining-tokens"));
    assert.equal(reserved, 600 + used.prompt_tokens, "the reservation is the estimated prompt plus max_tokens");
    assert.ok(used.total_tokens < reserved);
    // Settlement runs after the response: poll until the unused reservation is back.
    let report;
    for (let i = 0; i < 50; i++) {
      report = await usage(key);
      if (report.tokens.remaining === 1000 - used.total_tokens) break;
      await sleep(20);
    }
    assert.equal(report.tokens.remaining, 1000 - used.total_tokens, "only the tokens really used are charged");
    assert.equal(report.today.prompt_tokens, used.prompt_tokens);
    assert.equal(report.today.completion_tokens, used.completion_tokens);
    // A reservation larger than what is left waits; one larger than the limit never fits.
    const wait = await ask(key, { max_tokens: report.tokens.remaining });
    assert.equal(wait.status, 429);
    const waitError = (await wait.json()).error;
    assert.equal(waitError.code, "rate_limit_exceeded");
    assert.match(waitError.message, /1000 tokens per 86400 s/);
    assert.ok(Number(wait.headers.get("retry-after-ms")) > 0);
    const tooLarge = await ask(key, { max_tokens: 5000 });
    assert.equal(tooLarge.status, 429);
    assert.match((await tooLarge.json()).error.message, /request too large.*lower max_tokens/);
  });

  test("concurrency: a slot is held while a stream runs and released when its client disconnects", async () => {
    const { key } = await keyFor("single");
    const controller = new AbortController();
    const stream = await ask(key, { model: "hold", stream: true, metadata: { chunks: "40" } }, { signal: controller.signal });
    assert.equal(stream.status, 200);
    const reader = stream.body.getReader();
    await reader.read();
    const second = await ask(key);
    assert.equal(second.status, 429);
    const error = (await second.json()).error;
    assert.equal(error.code, "rate_limit_exceeded");
    assert.match(error.message, /concurrency limit reached: 1 /);
    assert.ok(Number(second.headers.get("retry-after-ms")) > 0);
    controller.abort();
    // workerd notices the disconnect at the next write, once the upstream sends more.
    fixture.upstream.release();
    let admitted;
    for (let i = 0; i < 100 && admitted !== 200; i++) {
      await sleep(20);
      const response = await ask(key);
      admitted = response.status;
      await response.arrayBuffer();
    }
    assert.equal(admitted, 200, "the slot came back long before the 60 s lease would expire");
  });

  test("budget: spend is counted at the model's price and exhaustion is 429 insufficient_quota", async () => {
    const { key } = await keyFor("budget");
    let spentTokens = 0;
    let refusal;
    for (let i = 0; i < 30 && !refusal; i++) {
      const response = await ask(key, { max_tokens: 4 });
      if (response.status === 429) {
        refusal = response;
        break;
      }
      assert.equal(response.status, 200);
      spentTokens += (await response.json()).usage.total_tokens;
      // Let the settlement land before the next admission so spend is exact.
      for (let j = 0; j < 50 && (await usage(key)).today.prompt_tokens === 0; j++) await sleep(10);
    }
    assert.ok(refusal, "the budget ran out");
    const error = (await refusal.json()).error;
    assert.equal(error.code, "insufficient_quota");
    assert.equal(error.type, "insufficient_quota");
    assert.match(error.message, /daily budget of \$0.002/);
    const untilMidnight = 86_400_000 - (Date.now() % 86_400_000);
    assert.ok(Math.abs(Number(refusal.headers.get("retry-after-ms")) - untilMidnight) < 5_000);
    const report = await usage(key);
    assert.equal(report.object, "usage");
    assert.equal(report.today.limit_usd, 0.002);
    assert.ok(Math.abs(report.today.cost_usd - spentTokens * 0.0001) < 1e-12, `${report.today.cost_usd} vs ${spentTokens} tokens`);
    assert.ok(report.today.cost_usd <= 0.002, "held estimates keep spend within the budget");
    assert.equal(report.month.cost_usd, report.today.cost_usd);
  });

  test("admin: read any principal's standing and reset it", async () => {
    const { key, principal } = await keyFor("burst");
    await statuses(await Promise.all(Array.from({ length: 10 }, () => ask(key))));
    assert.equal((await ask(key)).status, 429);
    const read = await admin("GET", `/admin/limits/${encodeURIComponent(principal)}`);
    assert.equal(read.status, 200);
    const before = await read.json();
    assert.equal(before.principal, `key:${principal}`, "a bare name is a key's principal");
    assert.equal(before.requests.remaining, 0);
    assert.equal(before.today.requests, 10);
    const reset = await admin("DELETE", `/admin/limits/${encodeURIComponent(principal)}`);
    assert.equal(reset.status, 200);
    assert.equal((await reset.json()).requests.remaining, 10);
    assert.equal((await ask(key)).status, 200);
    // A user key is not an admin token.
    const denied = await fetch(`${fixture.gateway.url}/admin/limits/${principal}`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(denied.status, 401);
  });
});

describe("concurrency leases that are never settled", () => {
  const fixture = useGatewayWith(startMockOpenAI, (url) => limitedConfig(url, { lease_ttl_s: 1 }));
  const { keyFor, ask } = helpers(fixture);

  test("expire by the object's alarm, freeing the slot", async () => {
    const { key } = await keyFor("single");
    // A stream that outlives its lease stands in for an isolate that died mid-stream: its
    // slot must come back when the lease expires, not when (if ever) it settles.
    const held = await ask(key, { model: "hold", stream: true });
    const reader = held.body.getReader();
    await reader.read();
    assert.equal((await ask(key)).status, 429);
    await sleep(1_300);
    const after = await ask(key);
    assert.equal(after.status, 200, "the alarm took the expired lease's slot back");
    fixture.upstream.release();
    await reader.cancel();
  });
});

describe("limiter state", () => {
  test("survives a restart of the runtime", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-restart-"));
    const options = {
      vars: { RATE_LIMITS: JSON.stringify({ tiers: TIERS }), MOCK_CHUNK_DELAY_MS: "0" },
      secrets: { ADMIN_TOKEN },
      persistTo: dir,
    };
    let gateway = await startGateway(options);
    try {
      const fixture = { gateway };
      const { keyFor, ask } = helpers(fixture);
      const { key } = await keyFor("burst");
      assert.deepEqual(await statuses(await Promise.all(Array.from({ length: 12 }, () => ask(key)))), { 200: 10, 429: 2 });
      // Counts reach storage within a second of the change.
      await sleep(1_500);
      await gateway.close();
      gateway = await startGateway(options);
      fixture.gateway = gateway;
      const after = await ask(key);
      assert.equal(after.status, 429, "the exhausted bucket is still exhausted after the restart");
      assert.equal(after.headers.get("x-ratelimit-remaining-requests"), "0");
    } finally {
      await gateway.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("when the rate limiter cannot be reached", () => {
  const body = { model: "mock", messages: hello };

  test("the default policy fails closed: 503 rate_limiter_unavailable", async () => {
    const gateway = await startGateway({ vars: { ANONYMOUS_MODELS: "mock" }, withoutDurableObjects: ["RATE_LIMITER"] });
    try {
      const response = await chat(gateway.url, body);
      assert.equal(response.status, 503);
      assert.equal((await response.json()).error.code, "rate_limiter_unavailable");
    } finally {
      await gateway.close();
    }
  });

  test("fail open serves the request and says so in the log line", async () => {
    const gateway = await startGateway({
      vars: { ANONYMOUS_MODELS: "mock", RATE_LIMITS: JSON.stringify({ tiers: TIERS, failure_mode: "open" }) },
      withoutDurableObjects: ["RATE_LIMITER"],
    });
    try {
      const response = await chat(gateway.url, body);
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-ratelimit-limit-requests"), null);
      const log = await gateway.logFor(response.headers.get("x-request-id"));
      assert.equal(log.rate_limiter_failed_open, true);
    } finally {
      await gateway.close();
    }
  });
});
