// Health, readiness, model listing, routing errors and the per-request log line, against
// the real Worker in workerd.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startGateway } from "../support/gateway.mjs";
import { UPSTREAM_KEY, useUpstreamGateway } from "../support/scenarios.mjs";

async function errorOf(response) {
  const body = await response.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);
  return body.error;
}

describe("with the default configuration, mock open to anonymous callers", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({ vars: { ANONYMOUS_MODELS: "mock" } });
  });
  after(() => gateway?.close());

  test("healthz answers ok", async () => {
    const response = await fetch(`${gateway.url}/healthz`);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { status: "ok" });
  });

  test("readyz is ready and warns that the openai provider has no key", async () => {
    const response = await fetch(`${gateway.url}/readyz`);
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.status, "ready");
    assert.match(body.warnings.join(), /openai.*not set/);
  });

  test("models lists the usable aliases in the OpenAI list shape", async () => {
    const response = await fetch(`${gateway.url}/v1/models`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /application\/json/);
    assert.deepEqual(await response.json(), {
      object: "list",
      data: [{ id: "mock", object: "model", created: 0, owned_by: "mock", surfaces: ["chat.completions", "responses", "messages", "embeddings"] }],
    });
  });

  test("unknown routes are 404 and wrong methods 405, as OpenAI errors", async () => {
    const missing = await fetch(`${gateway.url}/v1/audio/speech`, { method: "POST" });
    assert.equal(missing.status, 404);
    assert.equal((await errorOf(missing)).code, "not_found");

    const wrong = await fetch(`${gateway.url}/v1/chat/completions`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "POST");
    const error = await errorOf(wrong);
    assert.equal(error.code, "method_not_allowed");
    assert.equal(error.type, "invalid_request_error");

    const put = await fetch(`${gateway.url}/v1/models`, { method: "PUT" });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, HEAD");
  });

  test("every response carries a unique x-request-id and writes exactly one log line", async () => {
    const responses = await Promise.all([
      fetch(`${gateway.url}/healthz`),
      fetch(`${gateway.url}/nope`),
      fetch(`${gateway.url}/v1/models`),
    ]);
    const ids = responses.map((response) => response.headers.get("x-request-id"));
    for (const id of ids) assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(new Set(ids).size, 3);
    for (const id of ids) await gateway.logFor(id);
    for (const id of ids) {
      const lines = gateway.requestLogs().filter((line) => line.request_id === id);
      assert.equal(lines.length, 1, `one line for ${id}`);
    }
    const notFound = await gateway.logFor(ids[1]);
    assert.equal(notFound.status, 404);
    assert.equal(notFound.error, "not_found");
    assert.equal(notFound.route, "unmatched");
    assert.equal(typeof notFound.latency_ms, "number");
  });
});

describe("with a broken configuration", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({
      vars: { MAX_BODY_BYTES: "many", ROUTES: '{"x": {"provider": "nowhere"}}' },
    });
  });
  after(() => gateway?.close());

  test("readyz lists every problem and requests get 503 config_invalid", async () => {
    const ready = await fetch(`${gateway.url}/readyz`);
    assert.equal(ready.status, 503);
    const body = await ready.json();
    assert.equal(body.status, "not_ready");
    assert.equal(body.errors.length, 2);
    assert.match(body.errors.join("\n"), /MAX_BODY_BYTES/);
    assert.match(body.errors.join("\n"), /nowhere/);

    const chat = await fetch(`${gateway.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "mock", messages: [{ role: "user", content: "hi" }] }),
    });
    assert.equal(chat.status, 503);
    assert.equal((await errorOf(chat)).code, "config_invalid");
    assert.equal((await fetch(`${gateway.url}/healthz`)).status, 200, "alive, just not ready");
  });
});

describe("logs", () => {
  const fixture = useUpstreamGateway();

  test("never contain the prompt, the answer or a secret", async () => {
    // The marker has letters no id, key or timestamp can contain (digits like "4242" turn
    // up in request ids and timestamps by chance).
    const prompt = "my secret prompt text quokkazq";
    const requests = [
      { model: "ok", messages: [{ role: "user", content: prompt }] },
      { model: "ok", stream: true, messages: [{ role: "user", content: prompt }] },
      { model: "error-401", messages: [{ role: "user", content: prompt }] },
      { model: "mock", messages: [{ role: "user", content: prompt }] },
    ];
    for (const body of requests) {
      const response = await fetch(`${fixture.gateway.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      await response.text();
      await fixture.gateway.logFor(response.headers.get("x-request-id"));
    }
    const everything = fixture.gateway.logs.join("\n");
    assert.ok(!everything.includes("quokkazq"), "prompt text logged");
    assert.ok(!everything.includes(UPSTREAM_KEY), "upstream key logged");
    assert.ok(!everything.includes("mock upstream"), "answer text logged");
    const lines = fixture.gateway.requestLogs().filter((line) => line.route === "chat_completions");
    assert.equal(lines.length, 4);
    const streamed = lines.find((line) => line.stream);
    assert.equal(streamed.provider, "up");
    assert.equal(streamed.model, "ok");
    assert.equal(streamed.stream_outcome, "completed");
    assert.equal(typeof streamed.ttfb_ms, "number");
    assert.equal(streamed.completion_tokens, 5);
  });
});
