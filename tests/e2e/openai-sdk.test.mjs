// The official `openai` npm SDK pointed at the gateway: what clients actually run.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { adminRequest, startGateway } from "../support/gateway.mjs";

const ADMIN_TOKEN = "admin-token-for-sdk-tests-0123456789abcdef";

describe("the official OpenAI SDK", () => {
  let gateway;
  let client;
  before(async () => {
    const tiers = { free: {}, trickle: { requests: { limit: 1, window_s: 2 } } };
    gateway = await startGateway({
      vars: { MOCK_CHUNKS: "5", MOCK_CHUNK_DELAY_MS: "0", RATE_LIMITS: JSON.stringify({ tiers }) },
      secrets: { ADMIN_TOKEN },
    });
    const key = await keyFor({ principal: "sdk-user" });
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });
  after(() => gateway?.close());

  /** A new API key for `record`. */
  const keyFor = async (record) =>
    (await (await adminRequest(gateway.url, ADMIN_TOKEN, "POST", "/admin/keys", record)).json()).key;

  const messages = [{ role: "user", content: "Hello SDK" }];

  test("a 429 is retried by the SDK itself after retry-after-ms", async () => {
    const key = await keyFor({ principal: "sdk-trickle", tier: "trickle" });
    // One request per 2 s: the second call is refused with retry-after-ms ≈ 2000, which
    // the SDK honours (it prefers retry-after-ms to its own backoff) before retrying.
    const retrying = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 2 });
    await retrying.chat.completions.create({ model: "mock", messages });
    const started = Date.now();
    const { data, response } = await retrying.chat.completions.create({ model: "mock", messages }).withResponse();
    const waited = Date.now() - started;
    assert.equal(data.object, "chat.completion");
    assert.equal(response.headers.get("x-ratelimit-limit-requests"), "1");
    assert.ok(waited >= 1_500 && waited < 4_000, `the SDK waited ${waited} ms, as the gateway asked`);
    const lines = gateway.requestLogs().filter((line) => line.principal === "key:sdk-trickle");
    assert.deepEqual(
      lines.map((line) => line.status),
      [200, 429, 200],
    );
    // Without retries the SDK surfaces the 429 as RateLimitError with the gateway's code.
    const impatient = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
    await assert.rejects(impatient.chat.completions.create({ model: "mock", messages }), (error) => {
      assert.equal(error.constructor.name, "RateLimitError");
      assert.equal(error.code, "rate_limit_exceeded");
      return true;
    });
  });

  test("non-streaming completion", async () => {
    const completion = await client.chat.completions.create({ model: "mock", messages });
    assert.equal(completion.object, "chat.completion");
    assert.equal(completion.choices[0].message.content, "This is the mock provider");
    assert.equal(completion.choices[0].finish_reason, "stop");
    assert.equal(completion.usage.completion_tokens, 5);
  });

  test("streaming with include_usage", async () => {
    const stream = await client.chat.completions.create({
      model: "mock",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage = null;
    let finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, "This is the mock provider");
    assert.equal(finish, "stop");
    assert.equal(usage.total_tokens, usage.prompt_tokens + 5);
  });

  test("models.list()", async () => {
    const ids = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.deepEqual(ids, ["mock"]);
  });

  test("errors surface as the SDK's typed errors with the gateway's message", async () => {
    await assert.rejects(client.chat.completions.create({ model: "mock", messages, temperature: 5 }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, error.constructor.name);
      assert.match(error.message, /temperature must be between 0 and 2/);
      assert.equal(error.code, "invalid_request");
      assert.equal(error.param, "temperature");
      return true;
    });
    await assert.rejects(client.chat.completions.create({ model: "gpt-9", messages }), OpenAI.NotFoundError);
    const stranger = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: `sk-gw-${"1".repeat(48)}`, maxRetries: 0 });
    await assert.rejects(stranger.chat.completions.create({ model: "mock", messages }), OpenAI.AuthenticationError);
  });
});
