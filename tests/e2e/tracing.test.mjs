// W3C Trace Context: the gateway continues a client's trace (or starts one), sends its own
// span upstream as `traceparent` with the client's `tracestate`, returns it to the client
// and logs the trace id. Its spans go to an OTLP/HTTP JSON collector (a local receiver
// here, which checks what it is sent) in the background.

import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { chat, startGateway } from "../support/gateway.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";
import { upstreamConfig, useUpstreamGateway } from "../support/scenarios.mjs";

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

/** A local OTLP/HTTP receiver: keeps every export's headers and JSON body; answers 200. */
async function startOtlpReceiver() {
  const exports = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (piece) => (body += piece));
    req.on("end", () => {
      exports.push({ path: req.url, method: req.method, headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    exports,
    /** Every exported span, flattened. */
    spans: () => exports.flatMap((e) => e.body.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))),
    /** Waits (bounded) until spans of `traceId` have arrived, at least `count` of them. */
    async spansOf(traceId, count, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const spans = this.spans().filter((span) => span.traceId === traceId);
        if (spans.length >= count) return spans;
        if (Date.now() > deadline) throw new Error(`${spans.length} spans of ${traceId} within ${ms} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

describe("span export over OTLP/HTTP JSON", () => {
  let receiver;
  let upstream;
  let gateway;
  before(async () => {
    receiver = await startOtlpReceiver();
    upstream = await startMockOpenAI();
    const config = upstreamConfig(upstream.url, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_SERVICE_NAME: "gateway-under-test",
      UPSTREAM_RETRIES: "1",
      RETRY_BASE_DELAY_MS: "5",
      // Three concurrent failing requests make six calls; with the breaker's default of
      // five failures in a row, whichever retry comes last would find it open and make
      // no call, so the spans checked would depend on how the requests interleave.
      BREAKER_CONSECUTIVE_FAILURES: "0",
    });
    config.secrets.OTEL_EXPORTER_OTLP_HEADERS = "authorization=Bearer%20collector-token";
    gateway = await startGateway(config);
  });
  after(async () => {
    await gateway?.close();
    await upstream?.close();
    await receiver?.close();
  });

  const attributes = (span) => Object.fromEntries(span.attributes.map(({ key, value }) => [key, Object.values(value)[0]]));

  test("a streamed request's spans: the request under the client's span, its stages, the upstream call and the stream", async () => {
    const incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    // Deterministic (temperature 0), so that the response cache is looked up.
    const request = { model: "ok", messages: [{ role: "user", content: "hi" }], stream: true, temperature: 0 };
    const response = await chat(gateway.url, request, { headers: { traceparent: incoming } });
    assert.equal(response.status, 200);
    await response.text();
    const gatewaySpan = TRACEPARENT.exec(response.headers.get("traceparent"))[2];
    const spans = await receiver.spansOf("0af7651916cd43dd8448eb211c80319c", 5);
    const byName = Object.fromEntries(spans.filter((span) => span.kind === 1).map((span) => [span.name, span]));
    const root = spans.find((span) => span.kind === 2);
    assert.equal(root.name, "chat ok");
    assert.equal(root.spanId, gatewaySpan, "the request span is the one sent upstream");
    assert.equal(root.parentSpanId, "b7ad6b7169203331");
    assert.equal(root.kind, 2);
    assert.deepEqual(root.status, { code: 0 });
    const attrs = attributes(root);
    assert.equal(attrs["gen_ai.operation.name"], "chat");
    assert.equal(attrs["gen_ai.request.model"], "ok");
    assert.equal(attrs["gen_ai.response.model"], "ok");
    assert.equal(attrs["gen_ai.system"], "up");
    assert.equal(Number(attrs["gen_ai.usage.output_tokens"]), 5);
    assert.ok(Number(attrs["gen_ai.usage.input_tokens"]) > 0);
    assert.deepEqual(attrs["gen_ai.response.finish_reasons"], { values: [{ stringValue: "stop" }] });
    assert.equal(attrs["http.response.status_code"], "200");
    assert.equal(attrs["gateway.request_id"], response.headers.get("x-request-id"));
    for (const name of ["auth", "guard", "limiter", "cache", "stream"]) {
      assert.ok(byName[name], `a ${name} span in ${Object.keys(byName)}`);
      assert.equal(byName[name].parentSpanId, gatewaySpan);
    }
    const call = spans.find((span) => span.kind === 3);
    assert.equal(call.name, "chat ok");
    assert.equal(attributes(call)["gateway.outcome"], "ok");
    for (const span of spans) {
      assert.match(span.spanId, /^[0-9a-f]{16}$/);
      assert.ok(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano));
      assert.ok(BigInt(span.startTimeUnixNano) >= BigInt(root.startTimeUnixNano));
    }
    const exported = receiver.exports.at(-1);
    assert.equal(exported.path, "/v1/traces");
    assert.equal(exported.method, "POST");
    assert.equal(exported.headers["content-type"], "application/json");
    assert.equal(exported.headers.authorization, "Bearer collector-token");
    const resource = exported.body.resourceSpans[0].resource.attributes.find((a) => a.key === "service.name");
    assert.equal(resource.value.stringValue, "gateway-under-test");
  });

  test("a failed attempt and an error are marked, and spans are sent in batches", async () => {
    const before = receiver.exports.length;
    const responses = await Promise.all([1, 2, 3].map(() => chat(gateway.url, { model: "error-500", messages: [{ role: "user", content: "hi" }] })));
    for (const response of responses) assert.equal(response.status, 502);
    const traceId = TRACEPARENT.exec(responses[0].headers.get("traceparent"))[1];
    const spans = await receiver.spansOf(traceId, 4);
    const root = spans.find((span) => span.kind === 2);
    assert.equal(root.status.code, 2);
    assert.equal(attributes(root)["error.type"], "upstream_error");
    const calls = spans.filter((span) => span.kind === 3);
    assert.equal(calls.length, 2, "the first call and its retry");
    for (const call of calls) assert.deepEqual(call.status, { code: 2, message: "500" });
    for (const response of responses) {
      const id = TRACEPARENT.exec(response.headers.get("traceparent"))[1];
      await receiver.spansOf(id, 1);
    }
    assert.ok(receiver.exports.length - before < 3, "three requests' spans in fewer exports");
    const line = await gateway.logFor(responses[0].headers.get("x-request-id"));
    assert.ok(!JSON.stringify(gateway.requestLogs()).includes("collector-token"), "the collector's token is never logged");
    assert.equal(line.trace_id, traceId);
  });
});

