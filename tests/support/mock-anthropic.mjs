// A mock Anthropic Messages server on 127.0.0.1, in Anthropic's exact wire format
// (`POST /v1/messages`, named SSE events with `ping`s). The model picks the behaviour:
//   claude-ok          a message, or an event stream of three text deltas
//   claude-overloaded  529 overloaded_error
//   claude-401         401 whose message echoes the key it was given
// Every request is recorded (headers, parsed body).

import http from "node:http";

const WORDS = ["Hello", " from", " Claude"];

export async function startMockAnthropic() {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const piece of req) raw += piece;
    const body = JSON.parse(raw || "{}");
    requests.push({ url: req.url, headers: req.headers, body });
    const error = (status, type, message) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify({ type: "error", error: { type, message } }));
    };
    if (req.url !== "/v1/messages") return error(404, "not_found_error", "no such route");
    if (body.model === "claude-overloaded") return error(529, "overloaded_error", "Overloaded");
    if (body.model === "claude-401") return error(401, "authentication_error", `invalid x-api-key ${req.headers["x-api-key"]}`);

    const usage = { input_tokens: 21, output_tokens: WORDS.length };
    if (!body.stream) {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({
        id: "msg_mock", type: "message", role: "assistant", model: body.model,
        content: [{ type: "text", text: WORDS.join("") }],
        stop_reason: "end_turn", stop_sequence: null, usage,
      }));
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    const send = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    send("message_start", { message: { id: "msg_mock", type: "message", role: "assistant", content: [], model: body.model, stop_reason: null, usage: { input_tokens: 21, output_tokens: 1 } } });
    send("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
    send("ping", {});
    for (const word of WORDS) send("content_block_delta", { index: 0, delta: { type: "text_delta", text: word } });
    send("content_block_stop", { index: 0 });
    send("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: WORDS.length } });
    send("message_stop", {});
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/v1`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
