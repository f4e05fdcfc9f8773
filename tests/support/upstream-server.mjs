// The HTTP server behind every mock upstream, with fault injection.
//
// Each mock describes its provider's wire format as a `wire` (how a request names its
// model, how an answer, a stream and an error look); this server answers in that format
// and, per request, injects a fault. A fault comes from the model's script (see
// `script()`: the next calls for a model fail as listed, then it answers normally) or
// from the model's name (`wire.named`, so that a gateway route alias -> model picks a
// behaviour). Faults:
//   { status, message?, retryAfter?, retryAfterMs? }  an error answer in the wire's format
//   { delayHeaders: ms }   nothing at all for `ms`, then the answer
//   { resetBeforeHeaders: true }  the connection is destroyed before any answer
//   { resetAfter: n }      a stream whose connection is destroyed after `n` events
//   { stallAfter: n }      a stream (or a JSON body) that sends `n` events (half its body)
//                          and then nothing, keeping the connection open
//   { cutAfter: n }        a stream that ends cleanly after `n` events
//   { lingerAfterEnd: ms } a whole stream, terminal event included, whose connection
//                          stays open `ms` longer before the body ends
//   { noTerminal: true }   a stream without its terminal event(s); a JSON body cut short
//   { malformedAt: n }     event `n` (or the JSON body) is not JSON
//   { drip: ms }           every event (or every 64 bytes of a JSON body) `ms` apart
//   { oversize: true }     a 17 MB JSON body, or a 5 MB stream event
//   { hold: true }         a stream that sends its first content event, then waits for
//                          release() and sends the rest 50 ms apart
//   { split: true }        a stream written one byte at a time
//   { burst: true }        a stream written in one piece (the benchmark's per-chunk cost);
//                          also for every model named `<name>-burst-<n>`
//   { sized: true }        a stream written in one piece with its Content-Length declared
//                          (a buffering proxy's way), so that it arrives in one read
//   { handle(req, res, call) }  a wire-specific answer (error bodies that echo keys, ...)
// A wire may check each request against its provider's rules first (`validate`): a
// request the real API would reject gets the 400 it would get, and is recorded with the
// reason (`rejected`). Every request is recorded with the time it arrived; so is every
// request whose connection the gateway closed before the answer finished (`aborted`).

import http from "node:http";
import { burstPieces } from "./mock-answers.mjs";

/** Answers `res` with a JSON body (`payload`, or text already serialized). */
export function sendJson(res, status, payload, headers = {}) {
  const text = typeof payload === "string" ? payload : JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/**
 * Starts a server for `wire`:
 *   wire.base                  the URL path prefix (e.g. "/v1")
 *   wire.route(req, body)      { model, stream } for a valid endpoint, else null (404)
 *   wire.answer(call)          the complete JSON answer
 *   wire.events(call)          the stream's SSE events, each a complete frame
 *   wire.terminal              how many trailing events end the stream
 *   wire.malformed(call)       a frame whose data is not JSON
 *   wire.error(status, message) an error body
 *   wire.named                 faults by model name
 *   wire.validate(call)        optional: why the request breaks the provider's rules (a
 *                              400 in the wire's format), or null when it keeps them
 */
export async function startUpstreamServer(wire) {
  const requests = [];
  const aborted = [];
  const scripts = new Map();
  const holds = [];
  let abortWaiters = [];

  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const piece of req) raw += piece;
    let body = null;
    try {
      body = JSON.parse(raw);
    } catch {
      body = null;
    }
    const route = wire.route(req, body);
    const record = { at: Date.now(), method: req.method, url: req.url, headers: req.headers, body, model: route?.model };
    requests.push(record);
    let finished = false;
    res.on("close", () => {
      if (!finished) {
        aborted.push(record);
        abortWaiters.forEach((wake) => wake());
        abortWaiters = [];
      }
    });
    const end = (data) => {
      finished = true;
      res.end(data);
    };
    const json = (status, payload, headers = {}) => {
      finished = true;
      sendJson(res, status, payload, headers);
    };
    if (!route) return json(404, wire.error(404, "no such route"));

    const call = { ...route, body, req };
    const invalid = wire.validate?.(call);
    if (invalid) {
      record.rejected = invalid;
      return json(400, wire.error(400, invalid));
    }
    const fault = scripts.get(route.model)?.shift() ?? wire.named[route.model] ?? (burstPieces(route.model) ? { burst: true } : {});
    if (fault.handle) {
      finished = true;
      return fault.handle(req, res, call);
    }
    if (fault.resetBeforeHeaders) {
      finished = true;
      return req.socket.destroy();
    }
    if (fault.delayHeaders) await sleep(fault.delayHeaders);
    if (res.destroyed) return;
    if (fault.status) {
      const headers = {};
      if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
      if (fault.retryAfterMs !== undefined) headers["retry-after-ms"] = String(fault.retryAfterMs);
      return json(fault.status, wire.error(fault.status, fault.message ?? `mock failure ${fault.status}`), headers);
    }

    if (!route.stream) {
      let text = JSON.stringify(wire.answer(call));
      if (fault.oversize) text = JSON.stringify({ ...wire.answer(call), padding: "x".repeat(17 * 1024 * 1024) });
      if (fault.malformedAt !== undefined) text = `{"not json": ${text.slice(0, 20)}`;
      const length = Buffer.byteLength(text);
      if (fault.noTerminal) text = text.slice(0, text.length / 2);
      res.writeHead(200, { "content-type": "application/json", "content-length": length });
      if (fault.stallAfter !== undefined) {
        res.write(text.slice(0, text.length / 2));
        return;
      }
      if (fault.drip) {
        for (let at = 0; at < text.length; at += 64) {
          if (res.destroyed) return;
          res.write(text.slice(at, at + 64));
          await sleep(fault.drip);
        }
        return end();
      }
      if (fault.noTerminal) {
        res.write(text);
        finished = true;
        return req.socket.destroy();
      }
      return end(text);
    }

    let events = wire.events(call);
    if (fault.noTerminal) events = events.slice(0, events.length - wire.terminal);
    if (fault.malformedAt !== undefined) events[fault.malformedAt] = wire.malformed(call);
    if (fault.oversize) events.splice(1, 0, `data: "${"x".repeat(5 * 1024 * 1024)}"\n\n`);
    if (fault.sized) {
      const text = events.join("");
      res.writeHead(200, { "content-type": "text/event-stream", "content-length": Buffer.byteLength(text) });
      return end(text);
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    if (fault.burst) return end(events.join(""));
    res.flushHeaders();
    for (const [index, event] of events.entries()) {
      if (res.destroyed) return;
      if (index === fault.resetAfter) {
        // Lets what was written reach the gateway before the connection dies.
        await sleep(50);
        finished = true;
        return req.socket.destroy();
      }
      if (index === fault.stallAfter) return;
      if (index === fault.cutAfter) return end();
      if (fault.hold && index === 2) await new Promise((resolve) => holds.push(resolve));
      if ((fault.hold && index >= 2) || (fault.drip && index > 0)) await sleep(fault.drip ?? 50);
      if (res.destroyed) return;
      if (fault.split) {
        for (const byte of Buffer.from(event)) res.write(Buffer.from([byte]));
      } else {
        res.write(event);
      }
    }
    if (fault.lingerAfterEnd) await sleep(fault.lingerAfterEnd);
    if (res.destroyed) return;
    end();
  });

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}${wire.base}`,
    requests,
    aborted,
    /** The requests made for `model`. */
    callsFor(model) {
      return requests.filter((request) => request.model === model);
    },
    /** The next calls for `model` meet these faults, in order; later calls are normal. */
    script(model, faults) {
      scripts.set(model, [...faults]);
    },
    /** Lets every held stream continue. */
    release() {
      holds.splice(0).forEach((resolve) => resolve());
    },
    /** Resolves once `count` requests in all were closed early by the gateway; rejects after `ms`. */
    waitForAborts(count, ms = 5000) {
      if (aborted.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${aborted.length} of ${count} upstream aborts within ${ms} ms`)), ms);
        const check = () => {
          if (aborted.length >= count) {
            clearTimeout(timer);
            resolve();
          } else {
            abortWaiters.push(check);
          }
        };
        abortWaiters.push(check);
      });
    },
    async close() {
      holds.splice(0).forEach((resolve) => resolve());
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
