// Answer quality in production: the quality signals of each answer (finish reason, empty
// answers, refusals, redactions, length, speed) in the log line and /metrics; user
// feedback (POST /v1/feedback) from the principal that made the request and nobody
// else, once per request, in /metrics, /v1/usage and /admin/usage; and the in-flight
// gauge while a stream is open.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { adminRequest, chat, parseEvents, startGateway } from "../support/gateway.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";
import { parsePrometheus } from "../support/prometheus.mjs";
import { upstreamConfig } from "../support/scenarios.mjs";

const ADMIN_TOKEN = "admin-token-for-tests-0123456789abcdef";
const hello = [{ role: "user", content: "Hello there" }];

describe("answer quality, feedback and the in-flight gauge", () => {
  let upstream;
  let gateway;
  const keys = {};

  before(async () => {
    upstream = await startMockOpenAI();
    const config = upstreamConfig(upstream.url, {
      RATE_LIMITS: JSON.stringify({ tiers: { free: { requests: { limit: 1000, window_s: 60 } } } }),
      ANONYMOUS_MODELS: "",
      REDACT_PII: "output",
      METRICS_SHARDS: "2",
    });
    config.secrets.ADMIN_TOKEN = ADMIN_TOKEN;
    gateway = await startGateway(config);
    for (const [name, team] of [["alice", "acme"], ["bob", "acme"]]) {
      const response = await adminRequest(gateway.url, ADMIN_TOKEN, "POST", "/admin/keys", { principal: name, tier: "free", team });
      keys[name] = (await response.json()).key;
    }
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  const as = (name) => ({ headers: { authorization: `Bearer ${keys[name]}` } });
  const metrics = async () => {
    const response = await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/metrics");
    assert.equal(response.status, 200);
    return parsePrometheus(await response.text());
  };
  const feedback = (name, body) =>
    fetch(`${gateway.url}/v1/feedback`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${keys[name]}` },
      body: JSON.stringify(body),
    });
  /** Rates a request just answered: its caller is remembered in the background, so a
   * rating that comes first is repeated (bounded) until the request is known. */
  async function rate(name, body) {
    for (let attempt = 0; ; attempt++) {
      const response = await feedback(name, body);
      if (response.status !== 404 || attempt === 50) return response;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  test("each answer's quality signals are in its log line and the metrics", async () => {
    const cut = await chat(gateway.url, { model: "ok", messages: hello, metadata: { finish: "length" } }, as("alice"));
    assert.equal(cut.status, 200);
    const refusal = { role: "assistant", content: null, refusal: "I can't help with that." };
    const refused = await chat(gateway.url, { model: "ok", messages: hello, metadata: { message: JSON.stringify(refusal) } }, as("alice"));
    assert.equal(refused.status, 200);
    const empty = await chat(gateway.url, { model: "ok", messages: hello, stream: true, metadata: { deltas: "[]" } }, as("alice"));
    assert.equal(empty.status, 200);
    await empty.text();
    const personal = JSON.stringify(["Write to ", "jane.doe@example.com", " or call +1 415 555 0134."]);
    const redacted = await chat(gateway.url, { model: "ok", messages: hello, stream: true, metadata: { words: personal } }, as("alice"));
    const events = parseEvents(await redacted.text());
    const text = events.filter((e) => e !== "[DONE]").map((e) => e.choices[0]?.delta?.content ?? "").join("");
    assert.match(text, /\[REDACTED_EMAIL\]/);

    const line = (response) => gateway.logFor(response.headers.get("x-request-id"));
    const cutLine = await line(cut);
    assert.equal(cutLine.finish_reason, "length");
    assert.equal(cutLine.answer_bytes, "Hello from the mock upstream".length);
    assert.equal(cutLine.answer_prompt_ratio, Number((5 / 11).toFixed(3)));
    // 5 completion tokens over the request's time (absent when it took no measurable time).
    const speed = cutLine.latency_ms > 0 ? Math.round((5_000 / cutLine.latency_ms) * 1000) / 1000 : undefined;
    assert.equal(cutLine.tokens_per_second, speed, JSON.stringify(cutLine));
    assert.equal(cutLine.refused, undefined);
    const refusedLine = await line(refused);
    assert.equal(refusedLine.refused, true);
    assert.equal(refusedLine.empty_answer, undefined, "a refusal is not empty");
    const emptyLine = await line(empty);
    assert.equal(emptyLine.empty_answer, true);
    assert.equal(emptyLine.answer_bytes, 0);
    const redactedLine = await line(redacted);
    assert.equal(redactedLine.redacted_output, 2, JSON.stringify(redactedLine));
    assert.ok(redactedLine.ttfb_ms !== undefined);
    for (const entry of [cutLine, refusedLine, emptyLine, redactedLine]) {
      assert.ok(!JSON.stringify(entry).includes("jane.doe"), "no answer text in the log");
    }

    const samples = await metrics();
    const get = (key) => samples.get(key) ?? 0;
    assert.equal(get('gateway_answers_total{route="chat_completions",model="ok",finish_reason="length"}'), 1);
    assert.equal(get('gateway_answers_total{route="chat_completions",model="ok",finish_reason="stop"}'), 3);
    assert.equal(get('gateway_refusals_total{model="ok"}'), 1);
    assert.equal(get('gateway_empty_answers_total{model="ok"}'), 1);
    assert.equal(get('gateway_output_redactions_total{model="ok"}'), 2);
    assert.equal(get('gateway_answer_tokens_count{model="ok"}'), 4);
    assert.equal(get('gateway_answer_prompt_ratio_count{model="ok"}'), 4);
    assert.equal(get('gateway_time_to_first_token_seconds_count{model="ok"}'), 2);
  });

  test("a user rates its own answer once: a second rating replaces the first", async () => {
    const answered = await chat(gateway.url, { model: "ok", messages: hello }, as("alice"));
    const requestId = answered.headers.get("x-request-id");
    const first = await rate("alice", { request_id: requestId, score: 2, tags: ["slow"], comment: "took a while" });
    assert.equal(first.status, 200);
    assert.deepEqual(await first.json(), {
      object: "feedback",
      request_id: requestId,
      route: "chat_completions",
      model: "ok",
      score: 2,
      thumbs: null,
      tags: ["slow"],
      replaced: false,
    });
    const second = await feedback("alice", { response_id: `chatcmpl-${requestId}`, thumbs: "up", tags: ["helpful"] });
    assert.equal(second.status, 200);
    const kept = await second.json();
    assert.equal(kept.score, 5);
    assert.equal(kept.replaced, true);
    const line = await gateway.logFor(second.headers.get("x-request-id"));
    assert.equal(line.route, "feedback");
    assert.deepEqual(line.feedback, { request_id: requestId, route: "chat_completions", score: 5, tags: ["helpful"], replaced: true });
    assert.ok(!JSON.stringify(gateway.requestLogs()).includes("took a while"), "comments are never logged");

    const samples = await metrics();
    const labels = 'route="chat_completions",model="ok"';
    assert.equal(samples.get(`gateway_user_satisfaction_count{${labels}}`), 2);
    assert.equal(samples.get(`gateway_user_satisfaction_sum{${labels}}`), 7);
    assert.equal(samples.get(`gateway_user_satisfaction_bucket{${labels},le="2"}`), 1);
    assert.equal(samples.get(`gateway_user_satisfaction_replaced_count{${labels}}`), 1);
    assert.equal(samples.get(`gateway_user_satisfaction_replaced_sum{${labels}}`), 2);
    assert.equal(samples.get('gateway_feedback_tags_total{tag="slow"}'), 1);
    assert.equal(samples.get('gateway_feedback_tags_total{tag="helpful"}'), 1);

    const usage = await (await fetch(`${gateway.url}/v1/usage`, as("alice"))).json();
    assert.deepEqual(usage.satisfaction, { today: { ok: { mean_score: 5, ratings: 1 } }, month: { ok: { mean_score: 5, ratings: 1 } } });
  });

  test("nobody else can rate a request, and bad ratings are refused with a clear error", async () => {
    const answered = await chat(gateway.url, { model: "ok", messages: hello }, as("alice"));
    const requestId = answered.headers.get("x-request-id");
    assert.equal((await rate("alice", { request_id: requestId, score: 4 })).status, 200);
    const stranger = await feedback("bob", { request_id: requestId, score: 1 });
    assert.equal(stranger.status, 404);
    assert.equal((await stranger.json()).error.code, "request_not_found");
    const unknown = await feedback("alice", { request_id: "0123456789abcdef0123456789abcdef", score: 3 });
    assert.equal(unknown.status, 404);
    for (const [body, param] of [
      [{ request_id: requestId }, "score"],
      [{ request_id: requestId, score: 0 }, "score"],
      [{ request_id: requestId, thumbs: "sideways" }, "thumbs"],
      [{ request_id: requestId, score: 3, tags: ["Not A Tag"] }, "tags[0]"],
      [{ score: 3 }, "request_id"],
    ]) {
      const refused = await feedback("alice", body);
      assert.equal(refused.status, 400, JSON.stringify(body));
      const { error } = await refused.json();
      assert.equal(error.param, param);
    }
    const anonymous = await fetch(`${gateway.url}/v1/feedback`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ request_id: requestId, score: 5 }) });
    assert.equal(anonymous.status, 401);
    // Failed requests are not remembered: there is no answer to rate.
    const failed = await chat(gateway.url, { model: "error-400", messages: hello }, as("alice"));
    assert.equal(failed.status, 400);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await feedback("alice", { request_id: failed.headers.get("x-request-id"), score: 1 })).status, 404);
  });

  test("a Responses answer is rated by its response id, and the team's mean score shows in /admin/usage", async () => {
    const response = await fetch(`${gateway.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${keys.bob}` },
      body: JSON.stringify({ model: "ok", input: "Hello", store: false }),
    });
    assert.equal(response.status, 200);
    const { id } = await response.json();
    const rated = await rate("bob", { response_id: id, score: 3 });
    assert.equal(rated.status, 200);
    assert.equal((await rated.json()).route, "responses");
    const team = await (await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/admin/usage?team=acme")).json();
    // alice's standing 5 and 4 (chat) and bob's 3 (responses), all on the alias "ok".
    assert.deepEqual(team.satisfaction.today, { ok: { mean_score: 4, ratings: 3 } });
    assert.ok(team.today.requests >= 3);
    const principal = await (await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/admin/usage?principal=bob")).json();
    assert.deepEqual(principal.satisfaction.month, { ok: { mean_score: 3, ratings: 1 } });
  });

  test("open streams are counted in gateway_requests_in_flight until they end", async () => {
    const held = await chat(gateway.url, { model: "hold", messages: hello, stream: true }, as("alice"));
    assert.equal(held.status, 200);
    const reader = held.body.getReader();
    await reader.read();
    const open = await metrics();
    assert.equal(open.get('gateway_requests_in_flight{model="hold"}'), 1);
    upstream.release();
    while (!(await reader.read()).done);
    await gateway.logFor(held.headers.get("x-request-id"));
    const closed = await metrics();
    assert.equal(closed.get('gateway_requests_in_flight{model="hold"}'), undefined);
  });
});
