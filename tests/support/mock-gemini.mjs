// A mock Gemini server on 127.0.0.1 in Gemini's wire format:
// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
// (data-only SSE with CRLF framing, no [DONE]: the chunk with a finishReason ends it),
// with the fault injection of upstream-server.mjs. The model picks the behaviour:
//   gemini-ok (or any other name)  an answer in three parts
//   gemini-blocked  the prompt is blocked for safety (no candidates)
//   gemini-400      400 INVALID_ARGUMENT
// Every request is recorded (url, headers, parsed body).

import { startUpstreamServer } from "./upstream-server.mjs";

const PARTS = ["Hello", " from", " Gemini"];
const usageMetadata = { promptTokenCount: 8, candidatesTokenCount: PARTS.length, totalTokenCount: 8 + PARTS.length };
const frame = (payload) => `data: ${JSON.stringify(payload)}\r\n\r\n`;
const STATUSES = { 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED" };
const blocked = { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 8 } };

export const GEMINI_WIRE = {
  base: "/v1beta",
  route(req) {
    const match = /^\/v1beta\/models\/([^:]+):(generateContent|streamGenerateContent\?alt=sse)$/.exec(req.url);
    return match && { model: match[1], stream: match[2].startsWith("stream") };
  },
  answer: ({ model }) =>
    model === "gemini-blocked"
      ? blocked
      : {
          candidates: [{ content: { role: "model", parts: [{ text: PARTS.join("") }] }, finishReason: "STOP", index: 0 }],
          usageMetadata,
        },
  events: ({ model }) =>
    model === "gemini-blocked"
      ? [frame(blocked)]
      : PARTS.map((text, i) => {
          const last = i === PARTS.length - 1;
          return frame({
            candidates: [{ content: { role: "model", parts: [{ text }] }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }],
            ...(last ? { usageMetadata } : {}),
          });
        }),
  terminal: 1,
  malformed: () => "data: {not json\r\n\r\n",
  error: (status, message) => ({ error: { code: status, message, status: STATUSES[status] ?? "UNKNOWN" } }),
  named: {
    "gemini-400": { status: 400, message: "Invalid value at 'contents'" },
  },
};

export function startMockGemini() {
  return startUpstreamServer(GEMINI_WIRE);
}
