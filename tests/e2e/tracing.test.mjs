// W3C Trace Context: the gateway continues a client's trace (or starts one), sends its own
// span upstream as `traceparent` with the client's `tracestate`, returns it to the client
// and logs the trace id.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { chat } from "../support/gateway.mjs";
import { useUpstreamGateway } from "../support/scenarios.mjs";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const hello = { model: "ok", messages: [{ role: "user", content: "hi" }] };

describe("trace context", () => {
  const fixture = useUpstreamGateway();

  test("a client's trace is continued: its trace id, the gateway's span, upstream and back", async () => {
    const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const response = await chat(fixture.gateway.url, hello, { headers: { traceparent: incoming, tracestate: "vendor=abc" } });
    assert.equal(response.status, 200);
    const [, traceId, spanId, flags] = TRACEPARENT.exec(response.headers.get("traceparent"));
    assert.equal(traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.notEqual(spanId, "00f067aa0ba902b7");
    assert.equal(flags, "01");
    assert.equal(response.headers.get("tracestate"), "vendor=abc");
    const sent = fixture.upstream.requests.at(-1).headers;
    assert.equal(sent.traceparent, response.headers.get("traceparent"));
    assert.equal(sent.tracestate, "vendor=abc");
    const line = await fixture.gateway.logFor(response.headers.get("x-request-id"));
    assert.equal(line.trace_id, traceId);
  });

  test("without a valid traceparent, each request starts its own trace", async () => {
    const ids = new Set();
    for (const headers of [{}, { traceparent: "00-00000000000000000000000000000000-00f067aa0ba902b7-01" }, { traceparent: "garbage", tracestate: "a=b" }]) {
      const response = await chat(fixture.gateway.url, hello, { headers });
      const [, traceId] = TRACEPARENT.exec(response.headers.get("traceparent"));
      assert.notEqual(traceId, "00000000000000000000000000000000");
      assert.equal(response.headers.get("tracestate"), null);
      assert.equal(fixture.upstream.requests.at(-1).headers.traceparent, response.headers.get("traceparent"));
      ids.add(traceId);
    }
    assert.equal(ids.size, 3);
    // Errors carry it too.
    const refused = await chat(fixture.gateway.url, { ...hello, temperature: 9 });
    assert.equal(refused.status, 400);
    assert.match(refused.headers.get("traceparent"), TRACEPARENT);
  });
});
