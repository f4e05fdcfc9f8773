// Resilience end to end: every fault the mock upstreams can inject, in all three wire
// formats, streaming and not, with the exact outcome the client sees, how many calls the
// upstream received, and a bound on the time it took (nothing hangs). Then fallback
// chains, circuit breakers, the total deadline, weighted routing, `auto` and graceful
// degradation.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chat, readEvents, startGateway } from "../support/gateway.mjs";
import { startMockAnthropic } from "../support/mock-anthropic.mjs";
import { startMockGemini } from "../support/mock-gemini.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";

const hello = [{ role: "user", content: "Hello there" }];

const WIRES = {
  openai: { start: startMockOpenAI, type: "openai", text: "Hello from the mock upstream" },
  anthropic: { start: startMockAnthropic, type: "anthropic", text: "Hello from Claude" },
  gemini: { start: startMockGemini, type: "gemini", text: "Hello from Gemini" },
};

// Short limits so that every fault resolves in well under a second or two.
const TIMING = {
  UPSTREAM_TTFB_TIMEOUT_MS: "400",
  UPSTREAM_IDLE_TIMEOUT_MS: "400",
  UPSTREAM_TOTAL_TIMEOUT_MS: "3000",
  UPSTREAM_RETRIES: "2",
  RETRY_BASE_DELAY_MS: "50",
  RETRY_MAX_DELAY_MS: "1000",
  BREAKER_CONSECUTIVE_FAILURES: "3",
  BREAKER_COOLDOWN_SECONDS: "1",
  // Anonymous callers are not limited here: these suites make hundreds of requests.
  RATE_LIMITS: JSON.stringify({ tiers: { free: {} } }),
};
/** Longest any request may take: the total limit plus slack for a loaded machine. */
const BOUND_MS = 3000 + 1500;

const OK = { ok: true, calls: 1 };
const RETRIED = { ok: true, calls: 2 };

// One entry per fault: the upstream's script for the model, and what the client must see
// without streaming (`json`) and with it (`stream`). `broken` means a 200 stream that
// ends in an SSE error event with that code after the answer had begun.
const FAULTS = [
  { name: "503-twice", script: [{ status: 503 }, { status: 503 }], json: { ok: true, calls: 3 }, stream: { ok: true, calls: 3 } },
  { name: "529-once", script: [{ status: 529 }], json: RETRIED, stream: RETRIED },
  { name: "retry-after-ms", script: [{ status: 429, retryAfterMs: 300 }], json: { ...RETRIED, gap: 300 }, stream: { ...RETRIED, gap: 300 } },
  { name: "retry-after-beyond-cap", script: [{ status: 429, retryAfter: 60 }], json: { status: 429, calls: 1 }, stream: { status: 429, calls: 1 } },
  { name: "400-not-retried", script: [{ status: 400 }], json: { status: 400, calls: 1 }, stream: { status: 400, calls: 1 } },
  { name: "slow-headers", script: [{ delayHeaders: 1500 }], json: RETRIED, stream: RETRIED },
  { name: "reset-before-headers", script: [{ resetBeforeHeaders: true }], json: RETRIED, stream: RETRIED },
  { name: "stall-before-first-event", script: [{ stallAfter: 0 }], json: RETRIED, stream: RETRIED },
  { name: "stall-mid-stream", script: [{ stallAfter: 2 }], json: RETRIED, stream: { broken: "upstream_timeout", calls: 1 } },
  { name: "no-terminal-event", script: [{ noTerminal: true }], json: RETRIED, stream: { broken: "upstream_error", calls: 1 } },
  { name: "malformed-first-event", script: [{ malformedAt: 0 }], json: RETRIED, stream: RETRIED },
  { name: "malformed-mid-stream", script: [{ malformedAt: 2 }], json: RETRIED, stream: { broken: "upstream_error", calls: 1 } },
  { name: "reset-mid-stream", script: [{ resetAfter: 2 }], json: null, stream: { broken: "upstream_error", calls: 1 } },
  { name: "slow-drip", script: [{ drip: 100 }], json: OK, stream: OK },
  { name: "oversized", script: [{ oversize: true }], json: { status: 502, code: "upstream_error", calls: 1 }, stream: { broken: "upstream_error", calls: 1 } },
];

const MODES = ["json", "stream"];
const aliasOf = (wire, fault, mode) => `${wire}-${fault}-${mode}`;

/** Starts the three mock upstreams and a gateway with a route per wire, fault and mode. */
function useFaultGateway(extraVars = {}, extraRoutes = {}) {
  const fixture = { upstreams: {} };
  before(async () => {
    const providers = {};
    const routes = { ...extraRoutes };
    const secrets = {};
    for (const [wire, { start, type }] of Object.entries(WIRES)) {
      fixture.upstreams[wire] = await start();
      const secret = `${wire.toUpperCase()}_KEY`;
      providers[wire] = { type, base_url: fixture.upstreams[wire].url, api_key_secret: secret };
      secrets[secret] = `sk-test-${wire}-0123456789`;
      for (const fault of FAULTS) {
        for (const mode of MODES) {
          const alias = aliasOf(wire, fault.name, mode);
          routes[alias] = { provider: wire, model: alias };
        }
      }
    }
    fixture.gateway = await startGateway({
      vars: {
        PROVIDERS: JSON.stringify(providers),
        ROUTES: JSON.stringify(routes),
        ANONYMOUS_MODELS: Object.keys(routes).join(","),
        ...TIMING,
        ...extraVars,
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

/** The text of a completed stream, or throws. */
function streamText(events) {
  assert.equal(events.at(-1), "[DONE]", JSON.stringify(events.at(-1)));
  return events
    .slice(0, -1)
    .flatMap((chunk) => chunk.choices)
    .map((choice) => choice.delta.content ?? "")
    .join("");
}

describe("every upstream fault, in every wire format, streaming and not", () => {
  const fixture = useFaultGateway();

  for (const wire of Object.keys(WIRES)) {
    for (const fault of FAULTS) {
      for (const mode of MODES) {
        const expected = fault[mode];
        if (!expected) continue;
        const alias = aliasOf(wire, fault.name, mode);
        test(`${wire}, ${mode}: ${fault.name}`, async () => {
          const upstream = fixture.upstreams[wire];
          upstream.script(alias, fault.script);
          const started = Date.now();
          const response = await chat(fixture.gateway.url, { model: alias, messages: hello, stream: mode === "stream" });
          const body = mode === "stream" && response.status === 200 ? await readEvents(response) : await response.json();
          const elapsed = Date.now() - started;
          assert.ok(elapsed < BOUND_MS, `took ${elapsed} ms`);
          const calls = upstream.callsFor(alias);
          assert.equal(calls.length, expected.calls, "upstream calls");
          assert.equal(response.headers.get("x-gateway-attempts"), String(expected.calls));
          assert.equal(response.headers.get("x-gateway-provider"), wire);
          if (expected.ok) {
            assert.equal(response.status, 200, JSON.stringify(body));
            const text = mode === "stream" ? streamText(body) : body.choices[0].message.content;
            assert.equal(text, WIRES[wire].text);
          } else if (expected.broken) {
            assert.equal(response.status, 200);
            assert.equal(body[0].choices[0].delta.role, "assistant", "the answer had begun");
            assert.notEqual(body.at(-1), "[DONE]");
            assert.equal(body.at(-1).error.code, expected.broken);
          } else {
            assert.equal(response.status, expected.status, JSON.stringify(body));
            if (expected.code) assert.equal(body.error.code, expected.code);
          }
          if (expected.gap) {
            const gap = calls[1].at - calls[0].at;
            assert.ok(gap >= expected.gap, `the retry waited ${gap} ms, the upstream asked for ${expected.gap}`);
          }
          const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
          assert.equal(log.attempts, expected.calls);
          assert.equal(log.chain.length, expected.calls);
          if (expected.broken) {
            assert.equal(log.stream_outcome, "broken");
            assert.equal(log.error, expected.broken);
            assert.ok(log.completion_tokens >= 0 && log.prompt_tokens > 0, "usage is recorded for a cut stream");
          }
        });
      }
    }
  }
});

describe("fallback chains, breakers and deadlines", () => {
  const fixture = useFaultGateway(
    {},
    {
      // Each alias's first target is scripted to fail; the second is healthy.
      // One chain per mode: the json test's failures would open the stream test's breaker.
      "chain-503-json": { targets: [{ provider: "openai", model: "chain-503-json-primary" }, { provider: "anthropic", model: "chain-503-backup" }] },
      "chain-503-stream": { targets: [{ provider: "openai", model: "chain-503-stream-primary" }, { provider: "anthropic", model: "chain-503-backup" }] },
      "chain-401": { targets: [{ provider: "gemini", model: "chain-401-primary" }, { provider: "openai", model: "chain-401-backup" }] },
      "chain-dead": { targets: [{ provider: "openai", model: "chain-dead-a" }, { provider: "gemini", model: "chain-dead-b" }] },
      "breaker-solo": { provider: "openai", model: "breaker-solo" },
      "breaker-chain": { targets: [{ provider: "anthropic", model: "breaker-chain-primary" }, { provider: "gemini", model: "breaker-chain-backup" }] },
      weighted: { targets: [{ provider: "openai", model: "weighted-a", weight: 1 }, { provider: "openai", model: "weighted-b", weight: 1 }] },
      small: { provider: "openai", model: "auto-small" },
      large: { provider: "anthropic", model: "auto-large" },
      auto: { auto: { simple: "small", complex: "large", max_simple_prompt_tokens: 200 } },
      endless: { provider: "openai", model: "endless" },
    },
  );
  const fail = (times, fault = { status: 503 }) => Array.from({ length: times }, () => fault);

  for (const stream of [false, true]) {
    test(`retries exhausted on the first target fall back to the next (${stream ? "stream" : "json"})`, async () => {
      const mode = stream ? "stream" : "json";
      fixture.upstreams.openai.script(`chain-503-${mode}-primary`, fail(3));
      const response = await chat(fixture.gateway.url, { model: `chain-503-${mode}`, messages: hello, stream });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-gateway-provider"), "anthropic");
      assert.equal(response.headers.get("x-gateway-model"), "chain-503-backup");
      assert.equal(response.headers.get("x-gateway-attempts"), "4");
      const text = stream ? streamText(await readEvents(response)) : (await response.json()).choices[0].message.content;
      assert.equal(text, WIRES.anthropic.text);
      const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
      assert.deepEqual(
        log.chain.map((entry) => `${entry.target} ${entry.outcome}`),
        [...fail(3, `openai/chain-503-${mode}-primary 503`), "anthropic/chain-503-backup ok"],
      );
    });
  }

  test("a target that refuses the gateway's key is not retried: the next one answers", async () => {
    fixture.upstreams.gemini.script("chain-401-primary", [{ status: 401 }]);
    const response = await chat(fixture.gateway.url, { model: "chain-401", messages: hello });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("x-gateway-attempts"), "2");
    assert.equal(fixture.upstreams.gemini.callsFor("chain-401-primary").length, 1);
  });

  test("when every target fails: 503 all_providers_failed naming each", async () => {
    fixture.upstreams.openai.script("chain-dead-a", fail(3));
    fixture.upstreams.gemini.script("chain-dead-b", fail(3, { status: 500 }));
    const response = await chat(fixture.gateway.url, { model: "chain-dead", messages: hello });
    assert.equal(response.status, 503);
    const { error } = await response.json();
    assert.equal(error.code, "all_providers_failed");
    assert.match(error.message, /openai\/chain-dead-a: 503, gemini\/chain-dead-b: 500/);
    assert.equal(response.headers.get("x-gateway-attempts"), "6");
  });

  test("consecutive failures open the breaker: later requests skip the target without calling it, and a probe closes it", async () => {
    const upstream = fixture.upstreams.openai;
    upstream.script("breaker-solo", fail(3));
    const first = await chat(fixture.gateway.url, { model: "breaker-solo", messages: hello });
    assert.equal(first.status, 502, "three failures, one request");
    assert.equal(upstream.callsFor("breaker-solo").length, 3);

    const skipped = await chat(fixture.gateway.url, { model: "breaker-solo", messages: hello });
    assert.equal(skipped.status, 503);
    const { error } = await skipped.json();
    assert.equal(error.code, "all_providers_failed");
    assert.match(error.message, /openai\/breaker-solo: circuit_open/);
    assert.equal(upstream.callsFor("breaker-solo").length, 3, "the open breaker sent nothing upstream");

    const transitions = fixture.gateway.requestLogs().filter((line) => line.event === "circuit_breaker" && line.target === "openai/breaker-solo");
    assert.deepEqual(transitions.map((line) => `${line.from}->${line.to}`), ["closed->open"]);
    assert.equal(transitions[0].reason, "3 consecutive failures");

    // After the 1 s cooldown one probe goes through; its success closes the breaker.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const probe = await chat(fixture.gateway.url, { model: "breaker-solo", messages: hello });
    assert.equal(probe.status, 200);
    const after = fixture.gateway.requestLogs().filter((line) => line.event === "circuit_breaker" && line.target === "openai/breaker-solo");
    assert.deepEqual(after.map((line) => `${line.from}->${line.to}`), ["closed->open", "open->half_open", "half_open->closed"]);
    assert.equal((await chat(fixture.gateway.url, { model: "breaker-solo", messages: hello })).status, 200);
  });

  test("an open breaker sends requests straight to the fallback", async () => {
    fixture.upstreams.anthropic.script("breaker-chain-primary", fail(3, { status: 529 }));
    const first = await chat(fixture.gateway.url, { model: "breaker-chain", messages: hello });
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-gateway-provider"), "gemini");
    const second = await chat(fixture.gateway.url, { model: "breaker-chain", messages: hello });
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-gateway-attempts"), "1");
    assert.equal(fixture.upstreams.anthropic.callsFor("breaker-chain-primary").length, 3);
    const log = await fixture.gateway.logFor(second.headers.get("x-request-id"));
    assert.deepEqual(log.chain.map((entry) => entry.outcome), ["circuit_open", "ok"]);
  });

  test("the total time limit cuts a stream that drips past it", async () => {
    fixture.upstreams.openai.script("endless", [{ drip: 300 }]);
    const started = Date.now();
    const response = await chat(fixture.gateway.url, { model: "endless", messages: hello, stream: true, metadata: { chunks: "30" } });
    const events = await readEvents(response);
    const elapsed = Date.now() - started;
    assert.equal(events.at(-1).error.code, "upstream_timeout");
    assert.match(events.at(-1).error.message, /time limit of 3000 ms/);
    assert.ok(elapsed >= 2900 && elapsed < BOUND_MS, `cut after ${elapsed} ms`);
    assert.ok(events.length > 5, "what arrived before the limit was delivered");
  });

  test("a complete stream whose upstream keeps its connection open ends within the grace, and the connection is closed", async () => {
    const upstream = fixture.upstreams.openai;
    upstream.script("endless", [{ lingerAfterEnd: 3000 }]);
    const abortedBefore = upstream.aborted.length;
    const started = Date.now();
    const response = await chat(fixture.gateway.url, { model: "endless", messages: hello, stream: true });
    const events = await readEvents(response);
    const elapsed = Date.now() - started;
    assert.equal(streamText(events), WIRES.openai.text);
    // After the answer's last event the gateway waits 100 ms for the body's end, not for
    // the upstream to close it 3 s later.
    assert.ok(elapsed < 1500, `ended after ${elapsed} ms`);
    const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
    assert.equal(log.stream_outcome, "completed");
    assert.equal(log.error, undefined);
    // The end did not come in time, so the gateway closed the upstream connection.
    await upstream.waitForAborts(abortedBefore + 1, 2000);
  });

  test("a stream whose upstream declares its length and sends it whole is delivered whole", async () => {
    fixture.upstreams.openai.script("endless", [{ sized: true }]);
    const response = await chat(fixture.gateway.url, { model: "endless", messages: hello, stream: true });
    assert.equal(response.status, 200);
    assert.equal(streamText(await readEvents(response)), WIRES.openai.text);
    const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
    assert.equal(log.stream_outcome, "completed");
  });

  test("weights share the first pick between targets", async () => {
    const before = { a: 0, b: 0 };
    for (const model of ["a", "b"]) before[model] = fixture.upstreams.openai.callsFor(`weighted-${model}`).length;
    await Promise.all(Array.from({ length: 40 }, () => chat(fixture.gateway.url, { model: "weighted", messages: hello }).then((r) => r.text())));
    const a = fixture.upstreams.openai.callsFor("weighted-a").length - before.a;
    const b = fixture.upstreams.openai.callsFor("weighted-b").length - before.b;
    assert.equal(a + b, 40);
    // Binomial(40, 1/2): fewer than 5 on one side has a probability below 1e-6.
    assert.ok(a >= 5 && b >= 5, `a ${a}, b ${b}`);
  });

  test("auto sends light requests to the simple alias and demanding ones to the complex one", async () => {
    const light = await chat(fixture.gateway.url, { model: "auto", messages: hello });
    assert.equal(light.headers.get("x-gateway-model"), "auto-small");
    const lightBody = await light.json();
    assert.equal(lightBody.model, "auto-small");
    const heavy = await chat(fixture.gateway.url, {
      model: "auto",
      messages: [{ role: "user", content: "Prove step by step that the square root of 2 is irrational." }],
    });
    assert.equal(heavy.headers.get("x-gateway-model"), "auto-large");
    assert.equal(heavy.headers.get("x-gateway-provider"), "anthropic");
    const log = await fixture.gateway.logFor(heavy.headers.get("x-request-id"));
    assert.equal(log.auto_reason, "reasoning_cues");
    assert.equal(log.model, "auto");
  });
});

describe("graceful degradation", () => {
  const fixture = useFaultGateway({ DEGRADED_MESSAGE: "The assistant is busy right now. Please try again in a minute." });

  for (const stream of [false, true]) {
    test(`every target failing gives the configured message, marked degraded (${stream ? "stream" : "json"})`, async () => {
      const alias = aliasOf("openai", "503-twice", stream ? "stream" : "json");
      fixture.upstreams.openai.script(alias, Array.from({ length: 3 }, () => ({ status: 503 })));
      const response = await chat(fixture.gateway.url, { model: alias, messages: hello, stream, stream_options: stream ? { include_usage: true } : undefined });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get("x-gateway-degraded"), "true");
      if (stream) {
        const events = await readEvents(response);
        assert.equal(streamText(events), "The assistant is busy right now. Please try again in a minute.");
        assert.deepEqual(events.at(-2).usage, { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
      } else {
        const body = await response.json();
        assert.equal(body.choices[0].message.content, "The assistant is busy right now. Please try again in a minute.");
        assert.equal(body.choices[0].finish_reason, "stop");
        assert.equal(body.usage.total_tokens, 0);
      }
      const log = await fixture.gateway.logFor(response.headers.get("x-request-id"));
      assert.equal(log.degraded, true);
      assert.equal(log.attempts, 3);
    });
  }
});
