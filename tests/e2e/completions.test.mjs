// Chat completions end to end: the built-in mock and an OpenAI-compatible upstream over
// real HTTP, streaming and not, with the upstream failing in every way it can.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chat, parseEvents, readEvents, startGateway } from "../support/gateway.mjs";
import { GZIP_TEXT } from "../support/mock-openai.mjs";
import { UPSTREAM_KEY, upstreamConfig, useUpstreamGateway } from "../support/scenarios.mjs";

const hello = [{ role: "user", content: "Hello there" }];

/** Checks the chunk framing shared by every stream and returns the concatenated text. */
function assertChunks(events, { id, model }) {
  assert.equal(events.at(-1), "[DONE]");
  const chunks = events.slice(0, -1);
  for (const chunk of chunks) {
    assert.equal(chunk.object, "chat.completion.chunk");
    assert.equal(chunk.id, id);
    assert.equal(chunk.model, model);
    assert.equal(typeof chunk.created, "number");
  }
  assert.equal(chunks[0].choices[0].delta.role, "assistant");
  const withChoices = chunks.filter((chunk) => chunk.choices.length > 0);
  assert.equal(withChoices.at(-1).choices[0].finish_reason, "stop");
  return withChoices.map((chunk) => chunk.choices[0].delta.content ?? "").join("");
}

describe("the built-in mock provider", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({ vars: { MOCK_CHUNKS: "6", MOCK_CHUNK_DELAY_MS: "5", ANONYMOUS_MODELS: "mock" } });
  });
  after(() => gateway?.close());

  test("answers a non-streaming request in the chat.completion shape", async () => {
    const response = await chat(gateway.url, { model: "mock", messages: hello });
    assert.equal(response.status, 200);
    const body = await response.json();
    const requestId = response.headers.get("x-request-id");
    assert.equal(body.id, `chatcmpl-${requestId}`);
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "mock");
    assert.equal(body.choices[0].message.role, "assistant");
    assert.equal(body.choices[0].message.content, "This is the mock provider of");
    assert.equal(body.choices[0].finish_reason, "stop");
    assert.deepEqual(body.usage, { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 });
  });

  test("streams chunks with usage when asked, ending in [DONE]", async () => {
    const response = await chat(gateway.url, {
      model: "mock",
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type"), /^text\/event-stream/);
    const events = await readEvents(response);
    const id = `chatcmpl-${response.headers.get("x-request-id")}`;
    const text = assertChunks(events, { id, model: "mock" });
    assert.equal(text, "This is the mock provider of");
    const usage = events.at(-2);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, { prompt_tokens: 4, completion_tokens: 6, total_tokens: 10 });
  });

  test("max_tokens cuts the answer with finish_reason length", async () => {
    const response = await chat(gateway.url, { model: "mock", messages: hello, max_tokens: 2 });
    const body = await response.json();
    assert.equal(body.choices[0].message.content, "This is");
    assert.equal(body.choices[0].finish_reason, "length");
  });
});

describe("an OpenAI-compatible upstream", () => {
  const fixture = useUpstreamGateway();

  test("non-streaming: the answer comes back re-stamped, the call carries the key and the upstream model", async () => {
    const response = await chat(fixture.gateway.url, { model: "ok", messages: hello, temperature: 0.2, seed: 3 });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.id, `chatcmpl-${response.headers.get("x-request-id")}`);
    assert.equal(body.model, "ok");
    assert.equal(body.choices[0].message.content, "Hello from the mock upstream");
    assert.deepEqual(body.usage, { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });
    assert.equal(response.headers.get("x-gateway-provider"), "up");
    assert.equal(response.headers.get("x-gateway-model"), "ok");
    assert.equal(response.headers.get("x-gateway-attempts"), "1");

    const seen = fixture.upstream.requests.at(-1);
    assert.equal(seen.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.deepEqual(seen.body, { model: "ok", messages: hello, temperature: 0.2, seed: 3 });
  });

  test("streaming: chunks are translated, usage withheld unless asked but always requested upstream", async () => {
    const response = await chat(fixture.gateway.url, { model: "ok", messages: hello, stream: true });
    const events = await readEvents(response);
    const text = assertChunks(events, { id: `chatcmpl-${response.headers.get("x-request-id")}`, model: "ok" });
    assert.equal(text, "Hello from the mock upstream");
    assert.ok(events.every((event) => event === "[DONE]" || !("usage" in event)));
    assert.deepEqual(fixture.upstream.requests.at(-1).body.stream_options, { include_usage: true });
    const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
    assert.equal(log.completion_tokens, 5);
    assert.equal(log.tokens_estimated, undefined);
  });

  /** Streams `model`'s answer with usage and checks it is the mock's whole answer. */
  async function assertWholeStream(model) {
    const response = await chat(fixture.gateway.url, {
      model,
      messages: hello,
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = await readEvents(response);
    assert.equal(assertChunks(events, { id: `chatcmpl-${response.headers.get("x-request-id")}`, model }), "Hello from the mock upstream");
    assert.equal(events.at(-2).usage.completion_tokens, 5);
  }

  test("streaming: an upstream writing one byte at a time still yields whole, correct events", async () => {
    await assertWholeStream("split");
  });

  test("a compressed answer is read whole: its declared length is the compressed one", async () => {
    // JSON of declared length ends after that many bytes; a gzip body's decoded bytes are
    // more than its declared length, and all of them are the answer.
    const response = await chat(fixture.gateway.url, { model: "gzip", messages: hello });
    assert.equal(response.status, 200);
    const body = await response.json();
    assert.equal(body.choices[0].message.content, GZIP_TEXT);
    assert.deepEqual(body.usage, { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 });

    await assertWholeStream("gzip");
  });

  test("streaming is not buffered: the first chunk arrives while the upstream holds the rest", async () => {
    const response = await chat(fixture.gateway.url, { model: "hold", messages: hello, stream: true });
    assert.equal(response.status, 200);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let received = "";
    // The upstream has sent the role chunk and the first word and now waits for release():
    // both must reach us before it continues.
    while (!received.includes('"Hello"')) {
      const { value, done } = await reader.read();
      assert.ok(!done, "stream ended before the first word");
      received += decoder.decode(value, { stream: true });
    }
    assert.ok(!received.includes("[DONE]"));
    fixture.upstream.release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      received += decoder.decode(value, { stream: true });
    }
    const events = parseEvents(received);
    assert.equal(events.at(-1), "[DONE]");
  });

  test("a client that disconnects mid-stream aborts the upstream request", async () => {
    const abortedBefore = fixture.upstream.aborted.length;
    const controller = new AbortController();
    const response = await chat(
      fixture.gateway.url,
      { model: "hold", messages: hello, stream: true, metadata: { chunks: "40" } },
      { signal: controller.signal },
    );
    const requestId = response.headers.get("x-request-id");
    const reader = response.body.getReader();
    const { value } = await reader.read();
    assert.ok(value.length > 0);
    controller.abort();
    // The upstream goes on generating 39 more chunks, 50 ms apart (about 2 s). workerd
    // notices the disconnect at the next write; the gateway must then cut the upstream
    // off long before it finishes.
    fixture.upstream.release();
    await fixture.upstream.waitForAborts(abortedBefore + 1, 1500);
    const log = await fixture.gateway.logFor(requestId);
    assert.equal(log.stream_outcome, "client_closed");
    assert.equal(log.error, undefined);
    assert.ok(log.completion_tokens >= 1, "tokens delivered before the disconnect are counted");
  });

  test("a client that disconnects mid-stream is charged for the reasoning and tool-call text it was sent", async () => {
    const controller = new AbortController();
    // One delta with 200 bytes of reasoning and 200 of tool-call arguments, then the
    // upstream holds the rest; no usage is ever reported.
    const first = {
      reasoning_content: "r".repeat(200),
      tool_calls: [{ index: 0, id: "c1", type: "function", function: { name: "f", arguments: "a".repeat(200) } }],
    };
    const response = await chat(
      fixture.gateway.url,
      { model: "hold", messages: hello, stream: true, metadata: { deltas: JSON.stringify([first, { content: "more" }]) } },
      { signal: controller.signal },
    );
    const requestId = response.headers.get("x-request-id");
    const reader = response.body.getReader();
    let seen = "";
    while (!seen.includes("rrrr")) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    fixture.upstream.release();
    const log = await fixture.gateway.logFor(requestId);
    assert.equal(log.stream_outcome, "client_closed");
    assert.equal(log.tokens_estimated, true);
    assert.ok(log.completion_tokens >= 100, `charged ${log.completion_tokens} completion tokens for 401 bytes`);
  });

  test("an upstream redirect is not followed: the provider key stays home", async () => {
    const response = await chat(fixture.gateway.url, { model: "redirect", messages: hello });
    assert.equal(response.status, 502);
    const { error } = await response.json();
    assert.equal(error.code, "upstream_error");
    assert.match(error.message, /redirect \(307\), which is not followed/);
    assert.ok(!fixture.upstream.requests.some((request) => request.url === "/stolen"), "nothing went to the redirect target");
  });

  test("upstream 5xx → 502 upstream_error", async () => {
    const response = await chat(fixture.gateway.url, { model: "error-500", messages: hello });
    assert.equal(response.status, 502);
    assert.equal(response.headers.get("x-gateway-provider"), "up", "failures name their target too");
    assert.equal(response.headers.get("x-gateway-model"), "error-500");
    const { error } = await response.json();
    assert.equal(error.code, "upstream_error");
    assert.equal(error.type, "api_error");
  });

  test("upstream 400 keeps its meaning, code and param", async () => {
    const response = await chat(fixture.gateway.url, { model: "error-400", messages: hello, stream: true });
    assert.equal(response.status, 400);
    const { error } = await response.json();
    assert.equal(error.code, "context_length_exceeded");
    assert.equal(error.param, "messages");
    assert.match(error.message, /maximum context length/);
  });

  test("upstream 401 passes through without echoing the provider key", async () => {
    const response = await chat(fixture.gateway.url, { model: "error-401", messages: hello });
    assert.equal(response.status, 401);
    const text = await response.text();
    assert.ok(!text.includes(UPSTREAM_KEY), text);
    assert.ok(!text.includes("0123456789"), text);
    assert.equal(JSON.parse(text).error.type, "authentication_error");
  });

  test("no response headers within the first-byte timeout → 504 upstream_timeout, and the call is dropped", async () => {
    const abortedBefore = fixture.upstream.aborted.length;
    const started = Date.now();
    const response = await chat(fixture.gateway.url, { model: "slow-headers", messages: hello });
    assert.equal(response.status, 504);
    assert.equal((await response.json()).error.code, "upstream_timeout");
    assert.ok(Date.now() - started < 5000, "bounded by the 500 ms timeout, not the upstream's 10 s");
    // The runtime cancels the abandoned call when the request ends: the upstream sees its
    // connection close long before it would have answered.
    await fixture.upstream.waitForAborts(abortedBefore + 1, 3000);
  });

  for (const [scenario, why] of [
    ["break", "the connection dies mid-stream"],
    ["truncate", "the body ends without [DONE]"],
    ["garbage", "an event is not JSON"],
  ]) {
    test(`a stream that breaks after the first byte ends with an SSE error event (${why})`, async () => {
      const response = await chat(fixture.gateway.url, { model: scenario, messages: hello, stream: true });
      assert.equal(response.status, 200);
      const events = await readEvents(response);
      assert.notEqual(events.at(-1), "[DONE]");
      assert.equal(events.at(-1).error.code, "upstream_error");
      assert.equal(events[0].choices[0].delta.role, "assistant", "what came before was forwarded");
      const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
      assert.equal(log.stream_outcome, "broken");
      assert.equal(log.error, "upstream_error");
      assert.equal(log.status, 200);
    });
  }
});

describe("an unreachable upstream", () => {
  let gateway;
  before(async () => {
    // Port 9 (discard) is closed on loopback: the connection is refused at once.
    gateway = await startGateway(upstreamConfig("http://127.0.0.1:9/v1"));
  });
  after(() => gateway?.close());

  test("→ 502 upstream_error", async () => {
    const response = await chat(gateway.url, { model: "ok", messages: hello });
    assert.equal(response.status, 502);
    assert.equal((await response.json()).error.code, "upstream_error");
  });
});

describe("personal data in answers (REDACT_PII=output)", () => {
  const fixture = useUpstreamGateway({ REDACT_PII: "output" });
  // An email, a phone number and a card number, each split across stream chunks.
  const pieces = ["Reach jane.d", "oe@exam", "ple.com or +1 415 55", "5 2671; card 4111 1111 ", "1111 1111 today."];
  const expected = "Reach [REDACTED_EMAIL] or [REDACTED_PHONE]; card [REDACTED_CARD] today.";

  test("is redacted in a stream even when split across chunks", async () => {
    const response = await chat(fixture.gateway.url, {
      model: "ok",
      messages: hello,
      stream: true,
      metadata: { words: JSON.stringify(pieces) },
    });
    const raw = await response.text();
    for (const secret of ["jane", "@exam", "2671", "4111"]) assert.ok(!raw.includes(secret), `${secret} leaked: ${raw}`);
    const events = parseEvents(raw);
    assert.equal(events.at(-1), "[DONE]");
    const text = events.slice(0, -1).flatMap((e) => e.choices).map((c) => c.delta.content ?? "").join("");
    assert.equal(text, expected);
  });

  test("is redacted in a complete answer", async () => {
    const response = await chat(fixture.gateway.url, { model: "ok", messages: hello, metadata: { words: JSON.stringify(pieces) } });
    assert.equal((await response.json()).choices[0].message.content, expected);
  });

  // Tool-call arguments, refusals and reasoning, streamed in pieces that split the data.
  const toolCall = (index, fields) => ({ tool_calls: [{ index, ...fields }] });
  const deltas = [
    { reasoning_content: "The user's key is sk-proj-0123" },
    { reasoning_content: "456789abcdefghijklmn; do not repeat it." },
    toolCall(0, { id: "call_1", type: "function", function: { name: "send_mail", arguments: "" } }),
    toolCall(0, { function: { arguments: '{"to":"jane.d' } }),
    toolCall(0, { function: { arguments: 'oe@example.com","body":"call +1 415 55' } }),
    toolCall(0, { function: { arguments: '5 2671","card":4111111111111111}' } }),
    { refusal: "I cannot share 123-45-" },
    { refusal: "6789." },
  ];

  test("covers tool-call arguments, refusals and reasoning in a stream", async () => {
    const response = await chat(fixture.gateway.url, {
      model: "ok",
      messages: hello,
      stream: true,
      metadata: { deltas: JSON.stringify(deltas), finish: "tool_calls" },
    });
    const raw = await response.text();
    for (const secret of ["jane", "example.com", "2671", "4111", "456789", "6789"]) {
      assert.ok(!raw.includes(secret), `${secret} leaked: ${raw}`);
    }
    const choices = parseEvents(raw).slice(0, -1).flatMap((e) => e.choices);
    const joined = (field) => choices.map((c) => c.delta[field] ?? "").join("");
    assert.equal(joined("reasoning_content"), "The user's key is [REDACTED_SECRET]; do not repeat it.");
    assert.equal(joined("refusal"), "I cannot share [REDACTED_SSN].");
    const calls = choices.flatMap((c) => c.delta.tool_calls ?? []);
    assert.ok(calls.every((call) => call.index === 0));
    assert.equal(calls.find((call) => call.id).function.name, "send_mail");
    const args = JSON.parse(calls.map((call) => call.function?.arguments ?? "").join(""));
    assert.deepEqual(args, { to: "[REDACTED_EMAIL]", body: "call [REDACTED_PHONE]", card: "[REDACTED_CARD]" });
    assert.equal(choices.at(-1).finish_reason, "tool_calls");
  });

  test("covers every field of a complete answer and drops log probabilities", async () => {
    const message = {
      role: "assistant",
      content: null,
      refusal: "not 123-45-6789",
      reasoning_content: "mail jane.doe@example.com",
      tool_calls: [{ id: "c1", type: "function", function: { name: "send", arguments: '{"ip":"10.1.2.3"}' } }],
    };
    const response = await chat(fixture.gateway.url, {
      model: "ok",
      messages: hello,
      metadata: { message: JSON.stringify(message), finish: "tool_calls" },
    });
    const answer = (await response.json()).choices[0];
    assert.equal(answer.message.refusal, "not [REDACTED_SSN]");
    assert.equal(answer.message.reasoning_content, "mail [REDACTED_EMAIL]");
    assert.deepEqual(JSON.parse(answer.message.tool_calls[0].function.arguments), { ip: "[REDACTED_IP]" });
    assert.equal(answer.logprobs, undefined);
  });

  for (const [field, value] of [
    ["logprobs", true],
    ["top_logprobs", 2],
    ["modalities", ["text", "audio"]],
  ]) {
    test(`asking for ${field} is refused: it cannot be redacted`, async () => {
      const before = fixture.upstream.requests.length;
      const response = await chat(fixture.gateway.url, { model: "ok", messages: hello, [field]: value });
      assert.equal(response.status, 400);
      const { error } = await response.json();
      assert.equal(error.code, "redaction_unsupported");
      assert.equal(error.param, field);
      assert.equal(fixture.upstream.requests.length, before, "nothing went upstream");
    });
  }
});
