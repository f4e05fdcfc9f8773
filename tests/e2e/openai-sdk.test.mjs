// The official `openai` npm SDK pointed at the gateway: what clients actually run.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { startGateway } from "../support/gateway.mjs";

const ADMIN_TOKEN = "admin-token-for-sdk-tests-0123456789abcdef";

describe("the official OpenAI SDK", () => {
  let gateway;
  let client;
  before(async () => {
    gateway = await startGateway({ vars: { MOCK_CHUNKS: "5", MOCK_CHUNK_DELAY_MS: "0" }, secrets: { ADMIN_TOKEN } });
    const created = await fetch(`${gateway.url}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ principal: "sdk-user" }),
    });
    const { key } = await created.json();
    client = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: key, maxRetries: 0 });
  });
  after(() => gateway?.close());

  const messages = [{ role: "user", content: "Hello SDK" }];

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
