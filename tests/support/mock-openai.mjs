// A mock OpenAI Chat Completions server on 127.0.0.1 with fault injection.
//
// The upstream model name picks the behaviour, so one server serves every scenario and a
// gateway route (alias -> model) selects it:
//   ok            JSON answer, or an SSE stream of `chunks` words (default 5)
//   hold          streams the first content chunk, waits until release() is called, then
//                 sends the rest 50 ms apart (a generation that is still running)
//   slow-headers  sends nothing for 10 s (the gateway's first-byte timeout must fire)
//   error-500     500 with an OpenAI error object
//   error-400     400 context_length_exceeded
//   error-401     401 whose message echoes the key it was given, as OpenAI's does
//   break         streams one chunk, then destroys the socket
//   truncate      streams one chunk, then ends the body cleanly without [DONE]
//   garbage       streams an event that is not JSON
//   split         streams the answer one byte per write (chunk edges everywhere)
// Every request is recorded (path, headers, parsed body), and so is every request whose
// connection the gateway closed before the answer finished (`aborted`).

import http from "node:http";

const WORDS = ["Hello", " from", " the", " mock", " upstream", " server", "."];

export async function startMockOpenAI() {
  const requests = [];
  const holds = [];
  const aborted = [];
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
    const record = { method: req.method, url: req.url, headers: req.headers, body };
    requests.push(record);
    const model = body?.model ?? "ok";
    let finished = false;
    res.on("close", () => {
      if (!finished) {
        aborted.push(record);
        abortWaiters.forEach((wake) => wake());
        abortWaiters = [];
      }
    });
    const done = () => {
      finished = true;
      res.end();
    };

    if (req.url !== "/v1/chat/completions" || req.method !== "POST") {
      finished = true;
      return json(res, 404, { error: { message: "no such route", type: "invalid_request_error", code: null } });
    }
    const auth = req.headers.authorization ?? "";
    switch (model) {
      case "error-500":
        finished = true;
        return json(res, 500, { error: { message: "The server had an error", type: "server_error", code: null } });
      case "error-400":
        finished = true;
        return json(res, 400, {
          error: {
            message: "This model's maximum context length is 8192 tokens.",
            type: "invalid_request_error",
            param: "messages",
            code: "context_length_exceeded",
          },
        });
      case "error-401":
        finished = true;
        return json(res, 401, {
          error: {
            message: `Incorrect API key provided: ${auth.replace("Bearer ", "")}. You can find your API key at https://platform.openai.com/account/api-keys.`,
            type: "invalid_request_error",
            param: null,
            code: "invalid_api_key",
          },
        });
      case "slow-headers":
        await new Promise((resolve) => setTimeout(resolve, 10_000).unref());
        finished = true;
        return json(res, 200, completion(model, "late"));
    }

    const chunks = body?.metadata?.chunks ? Number(body.metadata.chunks) : 5;
    if (!body?.stream) {
      finished = true;
      return json(res, 200, completion(model, WORDS.slice(0, chunks).join("")));
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.flushHeaders();
    const send = (payload) => res.write(`data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`);
    send(chunk(model, { role: "assistant", content: "" }));
    const words = Array.from({ length: chunks }, (_, i) => WORDS[i % WORDS.length]);

    if (model === "hold") {
      send(chunk(model, { content: words[0] }));
      await new Promise((resolve) => holds.push(resolve));
      for (const word of words.slice(1)) {
        if (res.destroyed) return;
        send(chunk(model, { content: word }));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } else if (model === "break") {
      send(chunk(model, { content: words[0] }));
      await new Promise((resolve) => setTimeout(resolve, 50));
      finished = true;
      return res.socket.destroy();
    } else if (model === "truncate") {
      send(chunk(model, { content: words[0] }));
      return done();
    } else if (model === "garbage") {
      send("{not json");
    } else if (model === "split") {
      const rest = words.map((w) => `data: ${JSON.stringify(chunk(model, { content: w }))}\n\n`).join("");
      for (const byte of Buffer.from(rest)) {
        res.write(Buffer.from([byte]));
      }
    } else {
      for (const word of words) send(chunk(model, { content: word }));
    }
    send(chunk(model, {}, "stop"));
    const prompt = JSON.stringify(body.messages).length;
    send({ ...chunk(model, {}), choices: [], usage: { prompt_tokens: prompt, completion_tokens: chunks, total_tokens: prompt + chunks } });
    send("[DONE]");
    done();
  });

  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    aborted,
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

function json(res, status, payload) {
  const text = JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function chunk(model, delta, finishReason = null) {
  return {
    id: "chatcmpl-upstream",
    object: "chat.completion.chunk",
    created: 1700000000,
    model: `${model}-2024-01-01`,
    system_fingerprint: "fp_mock",
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
  };
}

function completion(model, text) {
  return {
    id: "chatcmpl-upstream",
    object: "chat.completion",
    created: 1700000000,
    model: `${model}-2024-01-01`,
    choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 },
  };
}
