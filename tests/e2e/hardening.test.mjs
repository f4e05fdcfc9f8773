// Hardening in workerd: hostile text is answered in bounded time while the isolate keeps
// serving other requests.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat } from "../support/gateway.mjs";
import { useUpstreamGateway } from "../support/scenarios.mjs";

/** How long any one request may take here: far above a normal answer, far below a hang. */
const DEADLINE_MS = 10_000;

/** Texts of the shapes that have hung or slowed text scanners, about `chars` long. */
function hostileTexts(chars) {
  const repeat = (unit) => unit.repeat(Math.max(1, Math.floor(chars / unit.length)));
  return [
    // The message that hung the injection guard's segmenter.
    ["the reported message", `é${"a".repeat(199)} ${"b".repeat(3000)}`],
    ["multibyte lead, space at the overlap", `日${"a".repeat(200)} ${"b".repeat(chars - 202)}`],
    ["emoji lead, one space", `🙂${"a".repeat(400)} ${"b".repeat(chars - 402)}`],
    ["no spaces", repeat("a")],
    ["multibyte, no spaces", repeat("é")],
    ["digits and dots", repeat("1.")],
    ["colons", repeat("1:")],
    ["at signs", repeat("a@b.")],
    ["template openers", repeat("<|")],
    ["key prefixes", `${repeat("sk-")}é`],
    ["base64", repeat("QUJDRA")],
    ["zero-width characters", repeat("\u200B")],
    ["tag characters", repeat("\u{E0041}")],
  ];
}

describe("hostile input, every guard on", () => {
  // Every guard that reads text runs: sanitizing, the injection detector, and redaction of
  // the request (REDACT_PII=both) and of the answer.
  const fixture = useUpstreamGateway({ REDACT_PII: "both", PROMPT_INJECTION: "flag" });

  test("each hostile message is answered in time and /healthz stays up throughout", async () => {
    const url = fixture.gateway.url;
    let running = true;
    const health = [];
    const poll = (async () => {
      while (running) {
        const started = Date.now();
        const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(DEADLINE_MS) });
        health.push({ status: response.status, ms: Date.now() - started });
        await response.arrayBuffer();
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      for (const size of [3_000, 100_000, 190_000]) {
        for (const [name, content] of hostileTexts(size)) {
          const started = Date.now();
          const response = await chat(
            url,
            { model: "ok", messages: [{ role: "user", content }] },
            { signal: AbortSignal.timeout(DEADLINE_MS) },
          );
          await response.arrayBuffer();
          assert.equal(response.status, 200, `${name} at ${size}`);
          assert.ok(Date.now() - started < DEADLINE_MS, `${name} at ${size}: ${Date.now() - started} ms`);
        }
      }
    } finally {
      running = false;
      await poll;
    }
    assert.ok(health.length > 5, `polled ${health.length} times`);
    assert.ok(health.every(({ status }) => status === 200), JSON.stringify(health));
  });
});
