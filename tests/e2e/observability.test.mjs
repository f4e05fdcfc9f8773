// Observability end to end: after a known mix of requests (successes, 400s, a 429, a cache
// hit, an upstream failure with a retry, a stream), /metrics counts match exactly and parse
// as Prometheus text; usage and cost per principal and team equal what the mock upstream
// reported at the configured prices; log lines carry cost and attribution, follow
// LOG_LEVEL, and never contain a secret or an API key.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { adminRequest, chat, parseEvents, startGateway } from "../support/gateway.mjs";
import { parsePrometheus } from "../support/prometheus.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";
import { UPSTREAM_KEY, upstreamConfig } from "../support/scenarios.mjs";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";
// USD per million tokens: $1 per prompt token-million, $2 per completion token-million.
const PRICES = { ok: { input: 1, output: 2 } };
const costOf = ({ prompt_tokens, completion_tokens }) => (prompt_tokens * 1 + completion_tokens * 2) / 1e6;
const hello = [{ role: "user", content: "Hello there" }];

describe("metrics, usage, cost and logs", () => {
  let upstream;
  let gateway;
  const keys = {};
  const reported = { alice: [], bob: [] };

  before(async () => {
    upstream = await startMockOpenAI();
    const config = upstreamConfig(upstream.url, {
      RATE_LIMITS: JSON.stringify({ tiers: { free: { requests: { limit: 1000, window_s: 60 } }, tight: { requests: { limit: 2, window_s: 3600 } } } }),
      PRICES: JSON.stringify(PRICES),
      UPSTREAM_RETRIES: "1",
      RETRY_BASE_DELAY_MS: "10",
      METRICS_SHARDS: "3",
      ANONYMOUS_MODELS: "",
      // The template token below is flagged, not blocked, and shows in the guard's counter.
      PROMPT_INJECTION: "flag",
    });
    config.secrets.ADMIN_TOKEN = ADMIN_TOKEN;
    gateway = await startGateway(config);
    for (const [name, tier, team] of [["alice", "free", "acme"], ["bob", "tight", "acme"], ["carol", "free", undefined]]) {
      const response = await adminRequest(gateway.url, ADMIN_TOKEN, "POST", "/admin/keys", { principal: name, tier, ...(team ? { team } : {}) });
      keys[name] = (await response.json()).key;
    }
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  const ask = (who, body) => chat(gateway.url, { model: "ok", messages: hello, ...body }, { headers: { authorization: `Bearer ${keys[who]}` } });

  test("a known mix of requests", async () => {
    for (let i = 0; i < 3; i++) {
      // The first one carries two invisible characters and a template token.
      const messages = i === 0 ? [{ role: "user", content: "Hel\u200Blo <|im_start|>the\u2060re" }] : hello;
      const response = await ask("alice", { messages });
      assert.equal(response.status, 200);
      reported.alice.push((await response.json()).usage);
    }
    const miss = await ask("alice", { temperature: 0 });
    assert.equal(miss.headers.get("x-cache"), "MISS");
    reported.alice.push((await miss.json()).usage);
    const hit = await ask("alice", { temperature: 0 });
    assert.equal(hit.headers.get("x-cache"), "HIT");
    await hit.arrayBuffer();
    for (let i = 0; i < 2; i++) {
      const invalid = await chat(gateway.url, "{", { headers: { authorization: `Bearer ${keys.alice}` } });
      assert.equal(invalid.status, 400);
      await invalid.arrayBuffer();
    }
    const stream = await ask("alice", { stream: true, stream_options: { include_usage: true } });
    const events = parseEvents(await stream.text());
    reported.alice.push(events.at(-2).usage);
    for (const expected of [200, 200, 429]) {
      const response = await ask("bob", {});
      assert.equal(response.status, expected);
      if (expected === 200) reported.bob.push((await response.json()).usage);
      else await response.arrayBuffer();
    }
    const failed = await ask("carol", { model: "error-500" });
    assert.equal(failed.status, 502);
    await failed.arrayBuffer();
  });

  test("/metrics counts them exactly, in valid Prometheus text", async () => {
    const unauthorized = await fetch(`${gateway.url}/metrics`, { headers: { authorization: `Bearer ${keys.alice}` } });
    assert.equal(unauthorized.status, 401);
    const response = await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/metrics");
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
    const m = parsePrometheus(await response.text());
    const chat = (labels) => m.get(`gateway_requests_total{route="chat_completions",${labels}}`);
    assert.equal(chat('status="200",provider="up",model="ok",cache="bypass"'), 6);
    assert.equal(chat('status="200",provider="up",model="ok",cache="miss"'), 1);
    assert.equal(chat('status="200",provider="",model="ok",cache="hit"'), 1);
    // Refused before the route resolved: the model is `unknown`, whatever was sent.
    assert.equal(chat('status="400",provider="",model="unknown",cache=""'), 2);
    assert.equal(chat('status="429",provider="",model="ok",cache="bypass"'), 1);
    assert.equal(chat('status="502",provider="up",model="error-500",cache="bypass"'), 1);
    assert.equal(m.get('gateway_requests_total{route="admin_create_key",status="201",provider="",model="",cache=""}'), 3);
    assert.equal(m.get('gateway_request_duration_seconds_count{route="chat_completions"}'), 12);
    assert.equal(m.get('gateway_time_to_first_token_seconds_count{model="ok"}'), 1);
    assert.equal(m.get('gateway_errors_total{code="invalid_json"}'), 2);
    assert.equal(m.get('gateway_errors_total{code="rate_limit_exceeded"}'), 1);
    assert.equal(m.get('gateway_errors_total{code="upstream_error"}'), 1);
    assert.equal(m.get('gateway_rate_limited_total{limit="requests"}'), 1);
    assert.equal(m.get('gateway_upstream_calls_total{target="up/ok",outcome="ok"}'), 7);
    assert.equal(m.get('gateway_upstream_calls_total{target="up/error-500",outcome="500"}'), 2);
    assert.equal(m.get('gateway_upstream_retries_total{target="up/error-500"}'), 1);
    assert.equal(m.get('gateway_cache_total{result="hit"}'), 1);
    assert.equal(m.get('gateway_cache_total{result="miss"}'), 1);
    assert.equal(m.get('gateway_cache_total{result="bypass"}'), 8);
    assert.equal(m.get('gateway_guard_removed_total{kind="characters"}'), 2);
    assert.equal(m.get('gateway_guard_removed_total{kind="template_tokens"}'), 1);
    assert.equal(m.get('gateway_guard_injections_total{action="flagged",category="template_injection"}'), 1);
    const all = [...reported.alice, ...reported.bob];
    const sum = (field) => all.reduce((total, usage) => total + usage[field], 0);
    assert.equal(m.get('gateway_tokens_total{model="ok",kind="prompt"}'), sum("prompt_tokens"));
    assert.equal(m.get('gateway_tokens_total{model="ok",kind="completion"}'), sum("completion_tokens"));
    const cost = all.reduce((total, usage) => total + costOf(usage), 0);
    assert.ok(Math.abs(m.get('gateway_cost_usd_total{model="ok"}') - cost) < 1e-12, `${m.get('gateway_cost_usd_total{model="ok"}')} vs ${cost}`);
  });

  test("usage and cost per principal and per team equal what the upstream reported", async () => {
    const alice = await (await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/admin/usage?principal=alice")).json();
    const tokens = (list, field) => list.reduce((total, usage) => total + usage[field], 0);
    assert.equal(alice.today.prompt_tokens, tokens(reported.alice, "prompt_tokens"));
    assert.equal(alice.today.completion_tokens, tokens(reported.alice, "completion_tokens"));
    const aliceCost = reported.alice.reduce((total, usage) => total + costOf(usage), 0);
    assert.ok(Math.abs(alice.today.cost_usd - aliceCost) < 1e-9, `${alice.today.cost_usd} vs ${aliceCost}`);

    const acme = await (await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/admin/usage?team=acme")).json();
    const both = [...reported.alice, ...reported.bob];
    assert.equal(acme.team, "acme");
    assert.equal(acme.today.requests, 8, "alice's 5 upstream answers and her cache hit, bob's 2");
    assert.equal(acme.today.prompt_tokens, tokens(both, "prompt_tokens"));
    assert.equal(acme.today.completion_tokens, tokens(both, "completion_tokens"));
    const cost = both.reduce((total, usage) => total + costOf(usage), 0);
    assert.ok(Math.abs(acme.today.cost_usd - cost) < 1e-12);
    assert.deepEqual(acme.month, acme.today);
    assert.equal((await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/admin/usage")).status, 400);
  });

  test("log lines carry cost, attribution and level, and never a secret or an API key", async () => {
    const lines = gateway.requestLogs().filter((line) => line.route === "chat_completions");
    const answered = lines.find((line) => line.principal === "key:alice" && line.status === 200 && line.cache === "bypass" && !line.stream);
    assert.equal(answered.team, "acme");
    assert.match(answered.key_id, /^key_/);
    assert.equal(answered.level, "info");
    assert.ok(Math.abs(answered.cost_usd - costOf({ prompt_tokens: answered.prompt_tokens, completion_tokens: answered.completion_tokens })) < 1e-12);
    const hit = lines.find((line) => line.cache === "hit");
    assert.equal(hit.cost_usd, 0);
    assert.equal(lines.find((line) => line.status === 429).level, "warn");
    assert.equal(lines.find((line) => line.status === 502).level, "error");
    const everything = gateway.logs.join("\n");
    for (const secret of [UPSTREAM_KEY, ADMIN_TOKEN, ...Object.values(keys)]) {
      assert.ok(!everything.includes(secret), `a log line contains ${secret.slice(0, 8)}...`);
    }
  });
});

describe("LOG_LEVEL", () => {
  let upstream;
  let gateway;
  before(async () => {
    upstream = await startMockOpenAI();
    gateway = await startGateway(upstreamConfig(upstream.url, { LOG_LEVEL: "warn" }));
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  test("warn keeps 4xx and 5xx lines and drops the rest", async () => {
    const ok = await chat(gateway.url, { model: "ok", messages: hello });
    const bad = await chat(gateway.url, { model: "ok", messages: [] });
    assert.equal(ok.status, 200);
    assert.equal(bad.status, 400);
    await ok.arrayBuffer();
    await bad.arrayBuffer();
    await gateway.logFor(bad.headers.get("x-request-id"));
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(gateway.requestLogs().find((line) => line.request_id === ok.headers.get("x-request-id")), undefined);
  });
});
