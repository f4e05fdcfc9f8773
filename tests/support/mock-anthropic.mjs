// A mock Anthropic Messages server on 127.0.0.1, in Anthropic's exact wire format
// (`POST /v1/messages`, named SSE events with `ping`s, `message_stop` at the end), with
// the fault injection of upstream-server.mjs. The model picks the behaviour:
//   claude-ok (or any other name)  a message, or an event stream of three text deltas
//   claude-overloaded  529 overloaded_error
//   claude-401         401 whose message echoes the key it was given
// Every request is recorded (headers, parsed body).

import { sendJson, startUpstreamServer } from "./upstream-server.mjs";

const WORDS = ["Hello", " from", " Claude"];

const frame = (event, data) => `event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`;
const errorBody = (type, message) => ({ type: "error", error: { type, message } });
const ERROR_TYPES = { 400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error" };

export const ANTHROPIC_WIRE = {
  base: "/v1",
  route(req, body) {
    if (req.url !== "/v1/messages") return null;
    return { model: body?.model, stream: Boolean(body?.stream) };
  },
  answer: ({ model }) => ({
    id: "msg_mock", type: "message", role: "assistant", model,
    content: [{ type: "text", text: WORDS.join("") }],
    stop_reason: "end_turn", stop_sequence: null, usage: { input_tokens: 21, output_tokens: WORDS.length },
  }),
  events: ({ model }) => [
    frame("message_start", { message: { id: "msg_mock", type: "message", role: "assistant", content: [], model, stop_reason: null, usage: { input_tokens: 21, output_tokens: 1 } } }),
    frame("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
    frame("ping", {}),
    ...WORDS.map((text) => frame("content_block_delta", { index: 0, delta: { type: "text_delta", text } })),
    frame("content_block_stop", { index: 0 }),
    frame("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: WORDS.length } }),
    frame("message_stop", {}),
  ],
  terminal: 1,
  malformed: () => "event: content_block_delta\ndata: {not json\n\n",
  error: (status, message) => errorBody(ERROR_TYPES[status] ?? "api_error", message),
  named: {
    "claude-overloaded": { status: 529 },
    "claude-401": {
      handle(req, res) {
        sendJson(res, 401, errorBody("authentication_error", `invalid x-api-key ${req.headers["x-api-key"]}`));
      },
    },
  },
};

export function startMockAnthropic() {
  return startUpstreamServer(ANTHROPIC_WIRE);
}
