// A mock Anthropic Messages server on 127.0.0.1, in Anthropic's exact wire format
// (`POST /v1/messages`, named SSE events with `ping`s, `message_stop` at the end; and
// `POST /v1/messages/count_tokens`, which counts the prompt's JSON characters plus 1000),
// with the fault injection of upstream-server.mjs.
//
// It checks every request as strictly as the real API (`validate`): roles alternate and
// begin with the user; blocks are well formed (image and document sources, tool_use ids);
// every tool_use of an assistant turn is answered by a tool_result at the start of the
// next user turn, and no tool_result answers anything else; with thinking on, the budget
// fits under max_tokens, sampling is left alone, no tool is forced, and an assistant turn
// that calls a tool starts with its signed thinking. A request that breaks a rule gets
// the 400 invalid_request_error the real API sends.
//
// It answers like a model: with thinking on, a signed thinking block first; then a
// tool_use when tools are offered (the forced one, or the first; two calls when two or
// more tools are offered and parallel use is allowed) unless the last user turn carries
// tool results or tool_choice is none; otherwise text ("The tool said: ..." after tool
// results, "I see ..." for images and documents, else "Hello from Claude"). Streams send
// text in text_delta pieces, tool inputs in input_json_delta pieces and thinking in
// thinking_delta pieces with a signature_delta. The model picks the rest:
//   claude-ok (or any other name)  as above
//   claude-cached      usage with cache reads and writes
//   claude-overloaded  529 overloaded_error
//   claude-401         401 whose message echoes the key it was given
//   <name>-burst-<n>   the benchmark's: the stream in one write, its text (n words) or
//                      each tool input in n pieces
// Every request is recorded (headers, parsed body).

import { burstPieces, isBase64, isObject, piecesOf, rules, sampleOf, wordsFor } from "./mock-answers.mjs";
import { sendJson, startUpstreamServer } from "./upstream-server.mjs";

const WORDS = ["Hello", " from", " Claude"];
const TOP_LEVEL = new Set(["model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "metadata"]);
// What `POST /v1/messages/count_tokens` takes.
const COUNTED = new Set(["model", "messages", "system", "tools", "tool_choice", "thinking"]);
const IMAGE_TYPES = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"]);
const TOOL_ID = /^[a-zA-Z0-9_-]+$/;
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

const frame = (event, data) => `event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`;
const errorBody = (type, message) => ({ type: "error", error: { type, message } });
const ERROR_TYPES = { 400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error" };

const blocksOf = (message) => (typeof message.content === "string" ? [{ type: "text", text: message.content }] : message.content);

/** The first rule of the Messages API that `body` breaks, or null. */
export function anthropicViolation(body, counting = false) {
  const r = rules();
  if (!r.check(isObject(body), "the body must be a JSON object")) return r.first;
  for (const field of Object.keys(body)) r.check((counting ? COUNTED : TOP_LEVEL).has(field), `${field}: Extra inputs are not permitted`);
  r.check(typeof body.model === "string", "model: Field required");
  r.check(counting || (Number.isInteger(body.max_tokens) && body.max_tokens > 0), "max_tokens: Field required");
  r.check(body.system === undefined || typeof body.system === "string" || Array.isArray(body.system), "system: Input should be a valid string");
  r.check(body.temperature === undefined || (body.temperature >= 0 && body.temperature <= 1), "temperature: range: 0..1");
  if (!r.check(Array.isArray(body.messages) && body.messages.length > 0, "messages: at least one message is required")) return r.first;
  const tools = body.tools ?? [];
  r.check(Array.isArray(tools), "tools: Input should be a valid list");
  for (const [i, tool] of tools.entries()) {
    r.check(TOOL_NAME.test(tool.name ?? ""), `tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'`);
    r.check(isObject(tool.input_schema) && tool.input_schema.type === "object", `tools.${i}.input_schema: type must be object`);
  }
  const choice = body.tool_choice;
  if (choice !== undefined) {
    r.check(["auto", "any", "tool", "none"].includes(choice.type), "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
    r.check(choice.type !== "tool" || tools.some((tool) => tool.name === choice.name), `tool_choice.name: Tool '${choice.name}' not found in tools`);
    r.check(choice.disable_parallel_tool_use === undefined || typeof choice.disable_parallel_tool_use === "boolean", "tool_choice.disable_parallel_tool_use: Input should be a valid boolean");
    r.check(tools.length > 0, "tool_choice: may only be specified while providing tools");
  }
  const thinking = body.thinking;
  if (thinking !== undefined) {
    r.check(thinking.type === "enabled" && Number.isInteger(thinking.budget_tokens) && thinking.budget_tokens >= 1024, "thinking.budget_tokens: Input should be greater than or equal to 1024");
    r.check(counting || thinking.budget_tokens < body.max_tokens, "`max_tokens` must be greater than `thinking.budget_tokens`");
    r.check(body.temperature === undefined && body.top_p === undefined && body.top_k === undefined, "temperature, top_p and top_k may not be set when thinking is enabled");
    r.check(!["any", "tool"].includes(choice?.type), "Thinking may not be enabled when tool_choice forces tool use.");
  }
  let pendingToolUses = [];
  for (const [i, message] of body.messages.entries()) {
    const expected = i % 2 === 0 ? "user" : "assistant";
    r.check(message.role === expected, `messages: roles must alternate between "user" and "assistant", beginning with "user" (messages.${i})`);
    const blocks = blocksOf(message);
    if (!r.check(Array.isArray(blocks) && blocks.length > 0, `messages.${i}.content: must not be empty`)) continue;
    const results = [];
    let afterResults = false;
    for (const [j, block] of blocks.entries()) {
      const at = `messages.${i}.content.${j}`;
      switch (block.type) {
        case "text":
          r.check(typeof block.text === "string" && block.text.length > 0, `${at}.text: text content blocks must be non-empty`);
          afterResults = true;
          break;
        case "image":
        case "document": {
          const source = block.source ?? {};
          if (source.type === "base64") {
            const types = block.type === "image" ? IMAGE_TYPES : new Set(["application/pdf", "text/plain"]);
            r.check(types.has(source.media_type), `${at}.source.media_type: Input should be one of ${[...types].join(", ")}`);
            r.check(isBase64(source.data), `${at}.source.data: invalid base64 data`);
          } else {
            r.check(source.type === "url" && /^https?:\/\//.test(source.url ?? ""), `${at}.source: Input tag '${source.type}' is not one of 'base64', 'url'`);
          }
          r.check(message.role === "user", `${at}: ${block.type} blocks are user content`);
          afterResults = true;
          break;
        }
        case "tool_use":
          r.check(message.role === "assistant", `${at}: tool_use blocks are assistant content`);
          r.check(TOOL_ID.test(block.id ?? ""), `${at}.id: String should match pattern '^[a-zA-Z0-9_-]+$'`);
          r.check(typeof block.name === "string" && isObject(block.input), `${at}: a tool_use needs a name and an input object`);
          break;
        case "tool_result":
          r.check(message.role === "user", `${at}: tool_result blocks are user content`);
          r.check(!afterResults, `${at}: tool_result blocks must come first in the content, before any other block`);
          r.check(typeof block.content === "string" || Array.isArray(block.content), `${at}.content: Input should be a valid string or list`);
          results.push(block.tool_use_id);
          break;
        case "thinking":
          r.check(message.role === "assistant" && typeof block.thinking === "string", `${at}: thinking blocks are assistant content`);
          r.check(typeof block.signature === "string" && block.signature.startsWith("sig-claude-"), `${at}.signature: Invalid \`signature\` in \`thinking\` block`);
          break;
        case "redacted_thinking":
          r.check(message.role === "assistant" && typeof block.data === "string", `${at}: redacted_thinking blocks are assistant content`);
          break;
        default:
          r.check(false, `${at}.type: Input tag '${block.type}' is not a known block type`);
      }
    }
    if (message.role === "user") {
      const missing = pendingToolUses.filter((id) => !results.includes(id));
      r.check(missing.length === 0, `messages.${i}: tool_use ids were found without tool_result blocks immediately after: ${missing.join(", ")}`);
      const unknown = results.filter((id) => !pendingToolUses.includes(id));
      r.check(unknown.length === 0, `messages.${i}: unexpected tool_use_id found in tool_result blocks: ${unknown.join(", ")}. Each tool_result block must have a corresponding tool_use block in the previous message.`);
      pendingToolUses = [];
    } else {
      pendingToolUses = blocks.filter((block) => block.type === "tool_use").map((block) => block.id);
      if (thinking && pendingToolUses.length > 0 && i === body.messages.length - 2) {
        r.check(["thinking", "redacted_thinking"].includes(blocks[0].type), `messages.${i}.content.0.type: Expected \`thinking\` or \`redacted_thinking\`, but found \`${blocks[0].type}\`. When \`thinking\` is enabled, a final \`assistant\` message must start with a thinking block.`);
      }
    }
  }
  r.check(pendingToolUses.length === 0 || body.messages.at(-1).role === "user", "the last assistant turn's tool_use blocks need tool_result blocks");
  return r.first;
}

/** The content blocks the mock model answers `body` with. */
function answerBlocks(model, body) {
  const blocks = [];
  if (body.thinking) blocks.push({ type: "thinking", thinking: "The user wants an answer.", signature: `sig-claude-${body.messages.length}` });
  const last = body.messages.at(-1);
  const lastBlocks = blocksOf(last);
  const results = lastBlocks.filter((block) => block.type === "tool_result");
  const tools = body.tools ?? [];
  const choice = body.tool_choice ?? { type: "auto" };
  if (tools.length > 0 && choice.type !== "none" && (results.length === 0 || choice.type === "tool")) {
    const chosen = choice.type === "tool" ? tools.filter((tool) => tool.name === choice.name) : tools.slice(0, choice.disable_parallel_tool_use ? 1 : 2);
    chosen.forEach((tool, n) => blocks.push({ type: "tool_use", id: `toolu_mock_${body.messages.length}_${n}`, name: tool.name, input: sampleOf(tool.input_schema) }));
    return blocks;
  }
  const media = lastBlocks.filter((block) => block.type === "image" || block.type === "document");
  let text = wordsFor(WORDS, burstPieces(model) ?? WORDS.length).join("");
  if (results.length > 0) text = `The tool said: ${results.map((block) => (typeof block.content === "string" ? block.content : JSON.stringify(block.content))).join("; ")}`;
  else if (media.length > 0) text = `I see ${media.map((block) => `${block.type} (${block.source.type === "url" ? block.source.url : block.source.media_type})`).join(", ")}`;
  blocks.push({ type: "text", text });
  return blocks;
}

function usageFor(model, blocks) {
  const output = blocks.length + 2;
  return model === "claude-cached"
    ? { input_tokens: 21, cache_read_input_tokens: 100, cache_creation_input_tokens: 30, output_tokens: output }
    : { input_tokens: 21, output_tokens: output };
}

const stopReason = (blocks) => (blocks.some((block) => block.type === "tool_use") ? "tool_use" : "end_turn");

/** A block's events; the benchmark's models (`burstPieces`) send text and tool input in `n` pieces. */
function blockEvents(block, index, n) {
  switch (block.type) {
    case "thinking":
      return [
        frame("content_block_start", { index, content_block: { type: "thinking", thinking: "", signature: "" } }),
        ...piecesOf(block.thinking).map((thinking) => frame("content_block_delta", { index, delta: { type: "thinking_delta", thinking } })),
        frame("content_block_delta", { index, delta: { type: "signature_delta", signature: block.signature } }),
        frame("content_block_stop", { index }),
      ];
    case "tool_use":
      return [
        frame("content_block_start", { index, content_block: { type: "tool_use", id: block.id, name: block.name, input: {} } }),
        ...piecesOf(JSON.stringify(block.input), n ?? 3).map((partial_json) => frame("content_block_delta", { index, delta: { type: "input_json_delta", partial_json } })),
        frame("content_block_stop", { index }),
      ];
    default:
      return [
        frame("content_block_start", { index, content_block: { type: "text", text: "" } }),
        frame("ping", {}),
        ...textPieces(block.text, n).map((text) => frame("content_block_delta", { index, delta: { type: "text_delta", text } })),
        frame("content_block_stop", { index }),
      ];
  }
}

/** The text_delta pieces: the mock's own answer word by word, other text in pieces. */
function textPieces(text, n) {
  const words = wordsFor(WORDS, n ?? WORDS.length);
  return text === words.join("") ? words : piecesOf(text, n ?? 3);
}

export const ANTHROPIC_WIRE = {
  base: "/v1",
  route(req, body) {
    if (req.url === "/v1/messages/count_tokens") return { model: body?.model, stream: false, counting: true };
    if (req.url !== "/v1/messages") return null;
    return { model: body?.model, stream: Boolean(body?.stream) };
  },
  validate: ({ body, counting }) => anthropicViolation(body, counting),
  answer: ({ model, body, counting }) => {
    // A count that no estimate would give: the prompt's JSON characters.
    if (counting) return { input_tokens: JSON.stringify(body.messages).length + 1000 };
    const content = answerBlocks(model, body);
    return {
      id: "msg_mock", type: "message", role: "assistant", model, content,
      stop_reason: stopReason(content), stop_sequence: null, usage: usageFor(model, content),
    };
  },
  events: ({ model, body }) => {
    const content = answerBlocks(model, body);
    const { output_tokens, ...prompt } = usageFor(model, content);
    return [
      frame("message_start", { message: { id: "msg_mock", type: "message", role: "assistant", content: [], model, stop_reason: null, usage: { ...prompt, output_tokens: 1 } } }),
      ...content.flatMap((block, index) => blockEvents(block, index, burstPieces(model))),
      frame("message_delta", { delta: { stop_reason: stopReason(content), stop_sequence: null }, usage: { output_tokens } }),
      frame("message_stop", {}),
    ];
  },
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
