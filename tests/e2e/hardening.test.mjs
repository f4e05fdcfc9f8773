// Hardening in workerd: hostile text is answered in bounded time while the isolate keeps
// serving other requests.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat } from "../support/gateway.mjs";
import { hostileTexts } from "../support/hostile-text.mjs";
import { useUpstreamGateway } from "../support/scenarios.mjs";

/** How long any one request may take here: far above a normal answer, far below a hang. */
const DEADLINE_MS = 10_000;

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
      // The message of the report, then every shape at three sizes (the largest near the
      // default MAX_MESSAGE_CHARS).
      const reported = `é${"a".repeat(199)} ${"b".repeat(3000)}`;
      const reply = await chat(url, { model: "ok", messages: [{ role: "user", content: reported }] }, { signal: AbortSignal.timeout(DEADLINE_MS) });
      assert.equal(reply.status, 200, "the reported message is answered");
      await reply.arrayBuffer();
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
