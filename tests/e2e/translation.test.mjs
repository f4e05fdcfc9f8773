// The whole conversation through Anthropic and Gemini, in workerd, against mock upstreams
// that check each request as strictly as the real APIs: tools (and their results sent
// back), images and files, structured output, reasoning (and its signatures sent back),
// usage details and the parameters each provider can or cannot take, each streamed and
// not. Then tool-calling conversations that move from one provider to another.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chat, readEvents, startGateway } from "../support/gateway.mjs";
import { startMockAnthropic } from "../support/mock-anthropic.mjs";
import { startMockGemini } from "../support/mock-gemini.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";

const WIRES = {
  openai: { start: startMockOpenAI, type: "openai" },
  anthropic: { start: startMockAnthropic, type: "anthropic" },
  gemini: { start: startMockGemini, type: "gemini" },
};

const WEATHER = {
  type: "function",
  function: {
    name: "weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  },
};
const TIME = { type: "function", function: { name: "time", parameters: { type: "object", properties: { zone: { type: "string" } } } } };
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
const PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK";

/** Starts the three mock upstreams and a gateway with `routes` over them. */
function useProviders(routes) {
  const fixture = { upstreams: {} };
  before(async () => {
    const providers = {};
    const secrets = {};
    for (const [name, { start, type }] of Object.entries(WIRES)) {
      fixture.upstreams[name] = await start();
      const secret = `${name.toUpperCase()}_KEY`;
      providers[name] = { type, base_url: fixture.upstreams[name].url, api_key_secret: secret };
      secrets[secret] = `sk-test-${name}-0123456789`;
    }
    fixture.gateway = await startGateway({
      vars: {
        PROVIDERS: JSON.stringify(providers),
        ROUTES: JSON.stringify(routes),
        ANONYMOUS_MODELS: Object.keys(routes).join(","),
        UPSTREAM_RETRIES: "1",
        RETRY_BASE_DELAY_MS: "10",
        RATE_LIMITS: JSON.stringify({ tiers: { free: {} } }),
      },
      secrets,
    });
  });
  after(async () => {
    await fixture.gateway?.close();
    for (const upstream of Object.values(fixture.upstreams)) await upstream.close();
  });
  return fixture;
}

/**
 * The answer to `body` as one message, however it came: a JSON completion, or a stream
 * put together (text and reasoning joined, reasoning details in order, tool calls from
 * their fragments by index). A stream's fragments are checked as they arrive: every tool
 * call fragment names its index, and the first of each call its id, type and name.
 */
async function complete(url, body, stream) {
  const response = await chat(url, { ...body, stream, ...(stream ? { stream_options: { include_usage: true } } : {}) });
  if (response.status !== 200) return { status: response.status, error: (await response.json()).error };
  if (!stream) {
    const answer = await response.json();
    return { status: 200, ...answer.choices[0].message, finish_reason: answer.choices[0].finish_reason, usage: answer.usage, headers: response.headers };
  }
  const events = await readEvents(response);
  assert.equal(events.at(-1), "[DONE]");
  const message = { status: 200, role: "assistant", content: null, finish_reason: null, headers: response.headers };
  const calls = new Map();
  for (const chunk of events.slice(0, -1)) {
    assert.equal(chunk.error, undefined, JSON.stringify(chunk));
    if (chunk.usage) message.usage = chunk.usage;
    for (const choice of chunk.choices) {
      const delta = choice.delta;
      if (delta.content) message.content = (message.content ?? "") + delta.content;
      if (delta.reasoning_content) message.reasoning_content = (message.reasoning_content ?? "") + delta.reasoning_content;
      if (delta.reasoning_details) message.reasoning_details = [...(message.reasoning_details ?? []), ...delta.reasoning_details];
      for (const fragment of delta.tool_calls ?? []) {
        assert.equal(typeof fragment.index, "number", JSON.stringify(fragment));
        if (!calls.has(fragment.index)) {
          assert.ok(fragment.id && fragment.type === "function" && fragment.function.name, `the first fragment names the call: ${JSON.stringify(fragment)}`);
          calls.set(fragment.index, { id: fragment.id, type: "function", function: { name: fragment.function.name, arguments: "" } });
        }
        calls.get(fragment.index).function.arguments += fragment.function?.arguments ?? "";
      }
      if (choice.finish_reason) message.finish_reason = choice.finish_reason;
    }
  }
  if (calls.size > 0) message.tool_calls = [...calls.keys()].sort((a, b) => a - b).map((index) => calls.get(index));
  return message;
}

/** The assistant message a client sends back: what the gateway answered, as it answered it. */
function echoed(answer) {
  const message = { role: "assistant", content: answer.content ?? null };
  if (answer.tool_calls) message.tool_calls = answer.tool_calls;
  if (answer.reasoning_details) message.reasoning_details = answer.reasoning_details;
  return message;
}

/** Tool messages answering every call of `answer`. */
const resultsFor = (answer, content = (call) => JSON.stringify({ temp: 18, for: call.function.name })) =>
  answer.tool_calls.map((call) => ({ role: "tool", tool_call_id: call.id, content: content(call) }));

const PROVIDERS = {
  anthropic: {
    model: "claude-ok",
    cached: "claude-cached",
    toolsSent: (body) => body.tools.map((tool) => tool.name),
    text: "Hello from Claude",
  },
  gemini: {
    model: "gemini-ok",
    cached: "gemini-cached",
    toolsSent: (body) => body.tools[0].functionDeclarations.map((declaration) => declaration.name),
    text: "Hello from Gemini",
  },
};

const ROUTES = {};
for (const [name, provider] of Object.entries(PROVIDERS)) {
  ROUTES[name] = { provider: name, model: provider.model };
  ROUTES[`${name}-cached`] = { provider: name, model: provider.cached };
}
// Conversations that move: each alias's first target is scripted to fail when a test
// wants the next one to answer.
ROUTES["openai-first"] = { targets: [{ provider: "openai", model: "agent-openai" }, { provider: "anthropic", model: "agent-claude" }, { provider: "gemini", model: "agent-gemini" }] };
ROUTES["gemini-first"] = { targets: [{ provider: "gemini", model: "agent-gemini-2" }, { provider: "anthropic", model: "agent-claude-2" }] };

const MODES = [false, true];
const modeName = (stream) => (stream ? "streamed" : "JSON");

describe("every provider speaks the whole conversation", () => {
  const fixture = useProviders(ROUTES);
  const lastSeen = (name) => fixture.upstreams[name].requests.at(-1);

  for (const [name, provider] of Object.entries(PROVIDERS)) {
    for (const stream of MODES) {
      test(`${name}: tools are called and their results answered (${modeName(stream)})`, async () => {
        const question = [{ role: "user", content: "Weather and time in Paris?" }];
        const first = await complete(fixture.gateway.url, { model: name, messages: question, tools: [WEATHER, TIME] }, stream);
        assert.equal(first.status, 200, JSON.stringify(first.error ?? lastSeen(name).rejected));
        assert.equal(first.finish_reason, "tool_calls");
        assert.deepEqual(provider.toolsSent(lastSeen(name).body), ["weather", "time"]);
        assert.deepEqual(first.tool_calls.map((call) => call.function.name), ["weather", "time"]);
        assert.deepEqual(JSON.parse(first.tool_calls[0].function.arguments), { city: "Paris" });
        assert.equal(new Set(first.tool_calls.map((call) => call.id)).size, 2, "ids are distinct");
        assert.ok(first.tool_calls.every((call) => call.id.length <= 40), "ids fit OpenAI's limit");
        assert.equal(first.content ?? "", "");

        const messages = [...question, echoed(first), ...resultsFor(first)];
        const second = await complete(fixture.gateway.url, { model: name, messages, tools: [WEATHER, TIME] }, stream);
        assert.equal(second.status, 200, JSON.stringify(second.error ?? lastSeen(name).rejected));
        assert.equal(lastSeen(name).rejected, undefined);
        assert.equal(second.finish_reason, "stop");
        assert.match(second.content, /^The tool said: .*"temp":18.*"temp":18/);

        const forced = await complete(fixture.gateway.url, { model: name, messages: question, tools: [WEATHER, TIME], tool_choice: { type: "function", function: { name: "time" } } }, stream);
        assert.deepEqual(forced.tool_calls.map((call) => call.function.name), ["time"]);
        const none = await complete(fixture.gateway.url, { model: name, messages: question, tools: [WEATHER], tool_choice: "none" }, stream);
        assert.equal(none.tool_calls, undefined);
        assert.equal(none.content, provider.text);
      });

      test(`${name}: images and files reach the model, and what it cannot take is a 400 naming the part (${modeName(stream)})`, async () => {
        const content = [
          { type: "text", text: "What are these?" },
          { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}` } },
          { type: "image_url", image_url: { url: "https://example.com/photo.jpg" } },
          { type: "file", file: { filename: "report.pdf", file_data: `data:application/pdf;base64,${PDF}` } },
        ];
        const answer = await complete(fixture.gateway.url, { model: name, messages: [{ role: "user", content }] }, stream);
        assert.equal(answer.status, 200, JSON.stringify(answer.error ?? lastSeen(name).rejected));
        assert.match(answer.content, /png/);
        assert.match(answer.content, /https:\/\/example\.com\/photo\.jpg/);
        assert.match(answer.content, /pdf/);

        const before = fixture.upstreams[name].requests.length;
        const unsupported = name === "anthropic" ? { type: "image_url", image_url: { url: `data:image/bmp;base64,${PNG}` } } : { type: "image_url", image_url: { url: "https://example.com/image" } };
        const refused = await complete(fixture.gateway.url, { model: name, messages: [{ role: "user", content: [content[0], unsupported] }] }, stream);
        assert.equal(refused.status, 400);
        assert.equal(refused.error.param, "messages[0].content[1]");
        assert.equal(fixture.upstreams[name].requests.length, before, "nothing reached the provider");
      });

      test(`${name}: structured output is the JSON text, as OpenAI returns it (${modeName(stream)})`, async () => {
        const schema = { type: "object", properties: { city: { type: "string" }, temp: { type: "number" } }, required: ["city", "temp"], additionalProperties: false };
        const answer = await complete(
          fixture.gateway.url,
          { model: name, messages: [{ role: "user", content: "Paris weather as JSON" }], response_format: { type: "json_schema", json_schema: { name: "weather", strict: true, schema } } },
          stream,
        );
        assert.equal(answer.status, 200, JSON.stringify(answer.error ?? lastSeen(name).rejected));
        assert.deepEqual(JSON.parse(answer.content), { city: "Paris", temp: 18 });
        assert.equal(answer.finish_reason, "stop");
        assert.equal(answer.tool_calls, undefined);
      });

      test(`${name}: reasoning comes back apart from the answer, and goes back with its signatures (${modeName(stream)})`, async () => {
        const question = [{ role: "user", content: "Weather in Paris?" }];
        const first = await complete(fixture.gateway.url, { model: name, messages: question, reasoning_effort: "low", tools: [WEATHER] }, stream);
        assert.equal(first.status, 200, JSON.stringify(first.error ?? lastSeen(name).rejected));
        assert.equal(first.reasoning_content, "The user wants an answer.");
        assert.ok(!(first.content ?? "").includes("The user wants"), "reasoning is never content");
        const signed = first.reasoning_details.filter((detail) => detail.format === name);
        assert.ok(signed.length > 0, JSON.stringify(first.reasoning_details));
        if (name === "anthropic") {
          assert.deepEqual(lastSeen(name).body.thinking, { type: "enabled", budget_tokens: 2048 });
          assert.equal(signed[0].type, "reasoning.text");
          assert.match(signed[0].signature, /^sig-claude-/);
        } else {
          assert.deepEqual(lastSeen(name).body.generationConfig.thinkingConfig, { thinkingBudget: 2048, includeThoughts: true });
          assert.equal(signed[0].id, first.tool_calls[0].id, "the signature names its call");
          assert.equal(first.usage.completion_tokens_details.reasoning_tokens, 12);
        }
        // The mock refuses a continuation without the signed thinking (Anthropic) or the
        // call's signature (Gemini), as the real APIs do.
        const messages = [...question, echoed(first), ...resultsFor(first)];
        const second = await complete(fixture.gateway.url, { model: name, messages, reasoning_effort: "low", tools: [WEATHER] }, stream);
        assert.equal(second.status, 200, JSON.stringify(second.error ?? lastSeen(name).rejected));
        assert.match(second.content, /^The tool said:/);
      });

      test(`${name}: usage reports cached and reasoning tokens, and a stream's usage only when asked (${modeName(stream)})`, async () => {
        const answer = await complete(fixture.gateway.url, { model: `${name}-cached`, messages: [{ role: "user", content: "Hi" }] }, stream);
        assert.equal(answer.status, 200, JSON.stringify(answer.error));
        assert.equal(answer.usage.prompt_tokens_details.cached_tokens, 100);
        assert.equal(answer.usage.total_tokens, answer.usage.prompt_tokens + answer.usage.completion_tokens);
        if (name === "anthropic") assert.equal(answer.usage.prompt_tokens, 21 + 100 + 30, "cache reads and writes are prompt tokens");
        if (stream) {
          const response = await chat(fixture.gateway.url, { model: name, messages: [{ role: "user", content: "Hi" }], stream: true });
          const events = await readEvents(response);
          assert.ok(events.slice(0, -1).every((chunk) => chunk.usage === undefined || chunk.usage === null), "no usage chunk unasked");
        }
      });

      test(`${name}: parameters map where the provider has them and are refused by name where not (${modeName(stream)})`, async () => {
        const messages = [{ role: "developer", content: "Answer in French." }, { role: "user", content: "Hi" }];
        const answer = await complete(fixture.gateway.url, { model: name, messages, stop: ["END"], max_completion_tokens: 77, user: "user-7" }, stream);
        assert.equal(answer.status, 200, JSON.stringify(answer.error ?? lastSeen(name).rejected));
        const seen = lastSeen(name).body;
        if (name === "anthropic") {
          assert.equal(seen.system, "Answer in French.");
          assert.deepEqual(seen.stop_sequences, ["END"]);
          assert.equal(seen.max_tokens, 77);
          assert.deepEqual(seen.metadata, { user_id: "user-7" });
          for (const [extra, param] of [[{ seed: 1 }, "seed"], [{ n: 2 }, "n"], [{ frequency_penalty: 1 }, "frequency_penalty"]]) {
            const refused = await complete(fixture.gateway.url, { model: name, messages, ...extra }, stream);
            assert.equal(refused.status, 400);
            assert.equal(refused.error.param, param);
          }
        } else {
          assert.deepEqual(seen.systemInstruction, { parts: [{ text: "Answer in French." }] });
          assert.deepEqual(seen.generationConfig, { stopSequences: ["END"], maxOutputTokens: 77 });
          const seeded = await complete(fixture.gateway.url, { model: name, messages, seed: 5 }, stream);
          assert.equal(seeded.status, 200);
          assert.equal(lastSeen(name).body.generationConfig.seed, 5);
          for (const [extra, param] of [[{ logprobs: true }, "logprobs"], [{ parallel_tool_calls: false, tools: [WEATHER] }, "parallel_tool_calls"]]) {
            const refused = await complete(fixture.gateway.url, { model: name, messages, ...extra }, stream);
            assert.equal(refused.status, 400);
            assert.equal(refused.error.param, param);
          }
        }
      });
    }
  }

  for (const stream of MODES) {
    test(`a tool conversation moves from OpenAI to Anthropic to Gemini, and none of them notices (${modeName(stream)})`, async () => {
      const { openai, anthropic, gemini } = fixture.upstreams;
      const question = [{ role: "user", content: "Weather in Paris?" }];
      // OpenAI answers the first turn with a call (the mock says what it is told to).
      const call = { id: "call_openai_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } };
      const scripted = stream
        ? { deltas: JSON.stringify([{ tool_calls: [{ index: 0, ...call }] }]), finish: "tool_calls" }
        : { message: JSON.stringify({ role: "assistant", content: null, tool_calls: [call] }), finish: "tool_calls" };
      const first = await complete(fixture.gateway.url, { model: "openai-first", messages: question, tools: [WEATHER], metadata: scripted }, stream);
      assert.equal(first.status, 200, JSON.stringify(first.error));
      assert.equal(first.headers.get("x-gateway-provider"), "openai");
      assert.equal(first.tool_calls[0].id, "call_openai_1");

      // OpenAI is down for the second turn: Claude gets the history and answers the result.
      openai.script("agent-openai", [{ status: 503 }, { status: 503 }]);
      const history = [...question, echoed(first), { role: "tool", tool_call_id: "call_openai_1", content: "18C and sunny" }];
      const second = await complete(fixture.gateway.url, { model: "openai-first", messages: history, tools: [WEATHER] }, stream);
      assert.equal(second.status, 200, JSON.stringify(second.error ?? anthropic.requests.at(-1).rejected));
      assert.equal(second.headers.get("x-gateway-provider"), "anthropic");
      assert.equal(second.content, "The tool said: 18C and sunny");
      const claudeSaw = anthropic.requests.at(-1).body.messages;
      assert.deepEqual(claudeSaw[1].content.at(-1), { type: "tool_use", id: "call_openai_1", name: "weather", input: { city: "Paris" } });

      // Both are down for the third: Gemini gets the same history (the call unsigned, as
      // Google documents for calls another model made) and answers too.
      openai.script("agent-openai", [{ status: 503 }, { status: 503 }]);
      anthropic.script("agent-claude", [{ status: 529 }, { status: 529 }]);
      const third = await complete(fixture.gateway.url, { model: "openai-first", messages: [...history, echoed(second), { role: "user", content: "Thanks!" }], tools: [WEATHER] }, stream);
      assert.equal(third.status, 200, JSON.stringify(third.error ?? gemini.requests.at(-1).rejected));
      assert.equal(third.headers.get("x-gateway-provider"), "gemini");
      const geminiSaw = gemini.requests.at(-1).body.contents;
      assert.deepEqual(geminiSaw.map((content) => content.role), ["user", "model", "user", "model", "user"]);
      assert.equal(geminiSaw[1].parts[0].thoughtSignature, "skip_thought_signature_validator");
      assert.deepEqual(geminiSaw[2].parts[0], { functionResponse: { name: "weather", response: { result: "18C and sunny" } } });
    });

    test(`a Gemini tool call with its signatures is continued by Claude, which never sees them (${modeName(stream)})`, async () => {
      const { gemini, anthropic } = fixture.upstreams;
      const question = [{ role: "user", content: "Weather in Paris?" }];
      const first = await complete(fixture.gateway.url, { model: "gemini-first", messages: question, tools: [WEATHER], reasoning_effort: "low" }, stream);
      assert.equal(first.status, 200, JSON.stringify(first.error ?? gemini.requests.at(-1).rejected));
      assert.ok(first.reasoning_details.some((detail) => detail.format === "gemini"));
      gemini.script("agent-gemini-2", [{ status: 503 }, { status: 503 }]);
      const second = await complete(fixture.gateway.url, { model: "gemini-first", messages: [...question, echoed(first), ...resultsFor(first)], tools: [WEATHER] }, stream);
      assert.equal(second.status, 200, JSON.stringify(second.error ?? anthropic.requests.at(-1).rejected));
      assert.equal(second.headers.get("x-gateway-provider"), "anthropic");
      assert.match(second.content, /^The tool said:/);
      const sent = JSON.stringify(anthropic.requests.at(-1).body);
      assert.ok(!sent.includes("sig-gemini"), "Gemini's signatures stay behind");
    });
  }
});
