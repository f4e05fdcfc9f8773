// The Gemini provider in workerd against a mock Gemini server: OpenAI in, OpenAI out.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat, readEvents } from "../support/gateway.mjs";
import { startMockGemini } from "../support/mock-gemini.mjs";
import { useGatewayWith } from "../support/scenarios.mjs";

const KEY = "AIza-test-0123456789abcdef";

describe("a Gemini upstream", () => {
  const models = ["gemini-ok", "gemini-blocked", "gemini-400"];
  const fixture = useGatewayWith(startMockGemini, (url) => ({
    vars: {
      PROVIDERS: JSON.stringify({ google: { type: "gemini", base_url: url, api_key_secret: "GEMINI_API_KEY" } }),
      ROUTES: JSON.stringify(Object.fromEntries(models.map((model) => [model, { provider: "google" }]))),
      ANONYMOUS_MODELS: models.join(","),
    },
    secrets: { GEMINI_API_KEY: KEY },
  }));

  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];

  test("a completion is translated both ways", async () => {
    const response = await chat(fixture.gateway.url, { model: "gemini-ok", messages, max_tokens: 40 });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.choices[0].message.content, "Hello from Gemini");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 8, completion_tokens: 3, total_tokens: 11 });
    const seen = fixture.upstream.requests.at(-1);
    assert.equal(seen.url, "/v1beta/models/gemini-ok:generateContent");
    assert.equal(seen.headers["x-goog-api-key"], KEY);
    assert.deepEqual(seen.body, {
      contents: [{ role: "user", parts: [{ text: "Hi" }] }],
      systemInstruction: { parts: [{ text: "Be brief." }] },
      generationConfig: { maxOutputTokens: 40 },
    });
  });

  test("the SSE stream (no [DONE] upstream) ends properly with usage", async () => {
    const response = await chat(fixture.gateway.url, { model: "gemini-ok", messages, stream: true, stream_options: { include_usage: true } });
    const events = await readEvents(response);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1).filter((c) => c.choices.length);
    assert.equal(chunks.map((c) => c.choices[0].delta.content).join(""), "Hello from Gemini");
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
    assert.equal(events.at(-2).usage.total_tokens, 11);
    assert.equal(fixture.upstream.requests.at(-1).url, "/v1beta/models/gemini-ok:streamGenerateContent?alt=sse");
    const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
    assert.equal(log.stream_outcome, "completed");
  });

  test("a safety block becomes finish_reason content_filter, streamed or not", async () => {
    const body = await (await chat(fixture.gateway.url, { model: "gemini-blocked", messages })).json();
    assert.equal(body.choices[0].finish_reason, "content_filter");
    const events = await readEvents(await chat(fixture.gateway.url, { model: "gemini-blocked", messages, stream: true }));
    assert.equal(events.at(-1), "[DONE]");
    assert.equal(events.at(-2).choices[0].finish_reason, "content_filter");
  });

  test("upstream 400 keeps its meaning", async () => {
    const response = await chat(fixture.gateway.url, { model: "gemini-400", messages });
    assert.equal(response.status, 400);
    assert.match((await response.json()).error.message, /Invalid value/);
  });
});
