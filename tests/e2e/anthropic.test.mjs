// The Anthropic provider in workerd against a mock Anthropic server: OpenAI in, OpenAI out.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat, readEvents } from "../support/gateway.mjs";
import { startMockAnthropic } from "../support/mock-anthropic.mjs";
import { useGatewayWith } from "../support/scenarios.mjs";

const KEY = "sk-ant-test-0123456789abcdef";

describe("an Anthropic upstream", () => {
  const routes = { claude: "claude-ok", "claude-overloaded": "claude-overloaded", "claude-401": "claude-401" };
  const fixture = useGatewayWith(startMockAnthropic, (url) => ({
    vars: {
      PROVIDERS: JSON.stringify({ anthropic: { type: "anthropic", base_url: url, api_key_secret: "ANTHROPIC_API_KEY", default_max_tokens: 512 } }),
      ROUTES: JSON.stringify(Object.fromEntries(Object.entries(routes).map(([alias, model]) => [alias, { provider: "anthropic", model }]))),
      ANONYMOUS_MODELS: Object.keys(routes).join(","),
    },
    secrets: { ANTHROPIC_API_KEY: KEY },
  }));

  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];

  test("a completion is translated both ways", async () => {
    const response = await chat(fixture.gateway.url, { model: "claude", messages, temperature: 1 });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "claude-ok");
    assert.equal(body.choices[0].message.content, "Hello from Claude");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 21, completion_tokens: 3, total_tokens: 24 });

    const seen = fixture.upstream.requests.at(-1);
    assert.equal(seen.headers["x-api-key"], KEY);
    assert.equal(seen.headers["anthropic-version"], "2023-06-01");
    assert.deepEqual(seen.body, {
      model: "claude-ok",
      system: "Be brief.",
      messages: [{ role: "user", content: [{ type: "text", text: "Hi" }] }],
      max_tokens: 512,
      temperature: 0.5,
    });
  });

  test("the event stream becomes OpenAI chunks with usage", async () => {
    const response = await chat(fixture.gateway.url, { model: "claude", messages, stream: true, stream_options: { include_usage: true }, max_tokens: 50 });
    const events = await readEvents(response);
    assert.equal(events.at(-1), "[DONE]");
    const chunks = events.slice(0, -1);
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? "").join("");
    assert.equal(text, "Hello from Claude");
    assert.equal(chunks.filter((c) => c.choices.length).at(-1).choices[0].finish_reason, "stop");
    assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: 21, completion_tokens: 3, total_tokens: 24 });
    assert.equal(fixture.upstream.requests.at(-1).body.max_tokens, 50);
  });

  test("errors map like any provider's, without echoing the key", async () => {
    const overloaded = await chat(fixture.gateway.url, { model: "claude-overloaded", messages });
    assert.equal(overloaded.status, 502);
    assert.equal((await overloaded.json()).error.code, "upstream_error");
    const denied = await chat(fixture.gateway.url, { model: "claude-401", messages });
    assert.equal(denied.status, 401);
    assert.ok(!(await denied.text()).includes(KEY));
  });

  test("what Anthropic cannot express is a 400 that never reaches it", async () => {
    const before = fixture.upstream.requests.length;
    const response = await chat(fixture.gateway.url, { model: "claude", messages, seed: 7 });
    assert.equal(response.status, 400);
    assert.equal((await response.json()).error.param, "seed");
    assert.equal(fixture.upstream.requests.length, before);
  });
});
