// A mock OpenAI Chat Completions server on 127.0.0.1, in OpenAI's wire format
// (`POST /v1/chat/completions`, data-only SSE ending in `data: [DONE]`), with the fault
// injection of upstream-server.mjs. The upstream model name picks a behaviour, so one
// server serves every scenario and a gateway route (alias -> model) selects it:
//   ok (or any other name)  JSON answer, or a stream of `metadata.chunks` words (default 5),
//                 or of the pieces `metadata.words` lists (a JSON array, one per chunk);
//                 `metadata.message` (a JSON message object) is the JSON answer's message and
//                 `metadata.deltas` (a JSON array of delta objects) the stream's chunks, both
//                 ending with `metadata.finish` (default "stop")
//   hold          streams the first content chunk, waits until release() is called, then
//                 sends the rest 50 ms apart (a generation that is still running)
//   slow-headers  sends nothing for 10 s (the gateway's first-byte timeout must fire)
//   error-500     500 with an OpenAI error object
//   error-400     400 context_length_exceeded
//   error-401     401 whose message echoes the key it was given, as OpenAI's does
//   break         streams one chunk, then destroys the socket
//   truncate      streams one chunk, then ends the body cleanly without [DONE]
//   garbage       streams one chunk, then an event that is not JSON
//   split         streams the answer one byte per write (chunk edges everywhere)
//   burst         streams the whole answer in one write
//   agent         answers like a model: calls the first tool offered (the named one when
//                 tool_choice names it; arguments from its schema) unless tool_choice is
//                 none or the last message is a tool result; then "The tool said: ...";
//                 "I see ..." for image and file parts; else the words above. Streams send
//                 text and each call's arguments in pieces
//   redirect      307 to /stolen on this server (a gateway must not follow it with its key)
//   gzip          the answer gzip-compressed (`content-encoding: gzip`): JSON (its text
//                 GZIP_TEXT, 200 KB) with the compressed length, a stream chunked
// `POST /v1/embeddings` answers any model with vectors from vectorOf (`dimensions` long,
// default 8) and prompt_tokens of a quarter of the text (the tokens of token arrays); it
// refuses what OpenAI refuses (unknown fields, empty inputs, encodings other than float
// and base64).
// The events of a stream: role chunk, one chunk per word, finish chunk, usage chunk, [DONE].

import { gzipSync } from "node:zlib";
import { piecesOf, sampleOf, vectorOf } from "./mock-answers.mjs";
import { sendJson, startUpstreamServer } from "./upstream-server.mjs";

const WORDS = ["Hello", " from", " the", " mock", " upstream", " server", "."];

/** The answer's pieces when the request names them (`metadata.words`, a JSON array). */
const wordsOf = (body) => (body?.metadata?.words ? JSON.parse(body.metadata.words) : null);

/** The `agent` model's message and finish reason for `body`. */
function agentAnswer(body) {
  const last = body.messages.at(-1);
  const tools = (body.tools ?? []).map((tool) => tool.function);
  const named = body.tool_choice?.function?.name;
  if (tools.length > 0 && body.tool_choice !== "none" && last.role !== "tool") {
    const tool = tools.find((candidate) => candidate.name === named) ?? tools[0];
    const call = { id: `call_agent_${body.messages.length}`, type: "function", function: { name: tool.name, arguments: JSON.stringify(sampleOf(tool.parameters)) } };
    return { message: { role: "assistant", content: null, tool_calls: [call] }, finish: "tool_calls" };
  }
  const results = [];
  for (let i = body.messages.length - 1; i >= 0 && body.messages[i].role === "tool"; i--) results.unshift(body.messages[i].content);
  const parts = Array.isArray(last.content) ? last.content.filter((part) => part.type !== "text") : [];
  let content = WORDS.join("");
  if (results.length > 0) content = `The tool said: ${results.join("; ")}`;
  else if (parts.length > 0) content = `I see ${parts.map((part) => (part.type === "image_url" ? `image ${part.image_url.url.slice(0, 22)}` : part.type)).join(", ")}`;
  return { message: { role: "assistant", content, refusal: null }, finish: "stop" };
}

/** The `agent` model's answer as stream deltas: text in pieces, each call's arguments in pieces. */
function agentDeltas({ message }) {
  if (!message.tool_calls) return piecesOf(message.content).map((content) => ({ content }));
  return message.tool_calls.flatMap((call, index) => [
    { tool_calls: [{ index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } }] },
    ...piecesOf(call.function.arguments).map((piece) => ({ tool_calls: [{ index, function: { arguments: piece } }] })),
  ]);
}

const frame = (payload) => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;

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

const error = (status, message, type = status >= 500 ? "server_error" : "invalid_request_error", extra = {}) => ({
  error: { message, type, param: null, code: null, ...extra },
});

/** The `gzip` scenario's JSON answer text: 200 KB that compress to about 1 KB. */
export const GZIP_TEXT = "Hello from the mock upstream. ".repeat(7000);

export const OPENAI_WIRE = {
  base: "/v1",
  route(req, body) {
    if (req.url === "/v1/embeddings" && req.method === "POST") return { model: body?.model ?? "ok", stream: false, embedding: true };
    if (req.url !== "/v1/chat/completions" || req.method !== "POST") return null;
    return { model: body?.model ?? "ok", stream: Boolean(body?.stream) };
  },
  validate({ body, embedding }) {
    if (!embedding) return null;
    const known = new Set(["model", "input", "dimensions", "encoding_format", "user"]);
    const unknown = Object.keys(body ?? {}).find((field) => !known.has(field));
    if (unknown) return `Unrecognized request argument supplied: ${unknown}`;
    const inputs = typeof body.input === "string" || typeof body.input?.[0] === "number" ? [body.input] : body.input;
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.some((input) => input.length === 0)) return "'$.input' is invalid.";
    if (!["float", "base64", undefined].includes(body.encoding_format)) return "encoding_format: float or base64";
    return null;
  },
  answer({ model, body, embedding }) {
    if (embedding) {
      const inputs = typeof body.input === "string" || typeof body.input[0] === "number" ? [body.input] : body.input;
      const tokens = inputs.reduce((sum, input) => sum + (typeof input === "string" ? Math.ceil(input.length / 4) : input.length), 0);
      const data = inputs.map((input, index) => ({ object: "embedding", index, embedding: vectorOf(input, body.dimensions ?? 8) }));
      return { object: "list", data: data.reverse(), model: `${model}-v1`, usage: { prompt_tokens: tokens, total_tokens: tokens } };
    }
    const chunks = body?.metadata?.chunks ? Number(body.metadata.chunks) : 5;
    const words = wordsOf(body);
    const agent = model === "agent" ? agentAnswer(body) : null;
    const scripted = body?.metadata?.message ? JSON.parse(body.metadata.message) : agent?.message;
    return {
      id: "chatcmpl-upstream",
      object: "chat.completion",
      created: 1700000000,
      model: `${model}-2024-01-01`,
      choices: [
        {
          index: 0,
          message: scripted ?? { role: "assistant", content: (words ?? WORDS.slice(0, chunks)).join(""), refusal: null },
          logprobs: null,
          finish_reason: body?.metadata?.finish ?? agent?.finish ?? "stop",
        },
      ],
      usage: { prompt_tokens: 11, completion_tokens: 5, total_tokens: 16 },
    };
  },
  events({ model, body }) {
    const chunks = body?.metadata?.chunks ? Number(body.metadata.chunks) : 5;
    const words = wordsOf(body) ?? Array.from({ length: chunks }, (_, i) => WORDS[i % WORDS.length]);
    const prompt = JSON.stringify(body.messages).length;
    const agent = model === "agent" ? agentAnswer(body) : null;
    const deltas = body?.metadata?.deltas ? JSON.parse(body.metadata.deltas) : agent ? agentDeltas(agent) : words.map((word) => ({ content: word }));
    return [
      frame(chunk(model, { role: "assistant", content: "" })),
      ...deltas.map((delta) => frame(chunk(model, delta))),
      frame(chunk(model, {}, body?.metadata?.finish ?? agent?.finish ?? "stop")),
      frame({ ...chunk(model, {}), choices: [], usage: { prompt_tokens: prompt, completion_tokens: chunks, total_tokens: prompt + chunks } }),
      frame("[DONE]"),
    ];
  },
  terminal: 1,
  malformed: () => frame("{not json"),
  error: (status, message) => error(status, message),
  named: {
    hold: { hold: true },
    "slow-headers": { delayHeaders: 10_000 },
    "error-500": { status: 500 },
    "error-400": {
      handle: (req, res) =>
        sendJson(res, 400, error(400, "This model's maximum context length is 8192 tokens.", "invalid_request_error", { param: "messages", code: "context_length_exceeded" })),
    },
    "error-401": {
      handle: (req, res) => {
        const key = (req.headers.authorization ?? "").replace("Bearer ", "");
        sendJson(res, 401, error(401, `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com/account/api-keys.`, "invalid_request_error", { code: "invalid_api_key" }));
      },
    },
    break: { resetAfter: 2 },
    truncate: { cutAfter: 2 },
    garbage: { malformedAt: 1 },
    split: { split: true },
    burst: { burst: true },
    redirect: {
      handle: (req, res) => {
        res.writeHead(307, { location: `http://${req.headers.host}/stolen` });
        res.end();
      },
    },
    // Compressed as a provider compresses for a client that accepts it: a JSON answer
    // with its compressed length, a stream chunked. The runtime decodes both.
    gzip: {
      handle: (req, res, call) => {
        if (call.stream) {
          res.writeHead(200, { "content-type": "text/event-stream", "content-encoding": "gzip" });
          return res.end(gzipSync(OPENAI_WIRE.events(call).join("")));
        }
        // Long enough (and compressible enough) that the runtime decodes it in many pieces.
        const answer = OPENAI_WIRE.answer(call);
        answer.choices[0].message.content = GZIP_TEXT;
        const body = gzipSync(JSON.stringify(answer));
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": body.length });
        res.end(body);
      },
    },
  },
};

export function startMockOpenAI() {
  return startUpstreamServer(OPENAI_WIRE);
}
