// A mock Gemini server on 127.0.0.1 in Gemini's wire format:
// `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`
// (data-only SSE with CRLF framing, no [DONE]: the chunk with a finishReason ends it),
// and `:batchEmbedContents` (vectors from vectorOf, `outputDimensionality` long, default
// 8; every request naming the batch's model, text parts only), with the fault injection
// of upstream-server.mjs.
//
// It checks every request as strictly as the real API (`validate`): roles are user and
// model, alternate and begin with the user; each part is exactly one of text, inlineData
// (a supported media type, base64 data), fileData, functionCall (model turns only, with
// the thoughtSignature the model gave it, as Gemini 3 requires) or functionResponse
// (user turns only, answering the calls of the model turn before, one for one, by name);
// declarations, toolConfig and generationConfig hold only what the API knows. A request
// that breaks a rule gets the 400 INVALID_ARGUMENT the real API sends.
//
// It answers like a model: a thought summary first when includeThoughts is on; then
// signed functionCall parts when tools are declared (the allowed one, or the first two)
// unless the last user turn carries function responses or the mode is NONE; otherwise
// JSON that follows responseJsonSchema when JSON is asked for, or text ("The tool said:
// ..." after function responses, "I see ..." for media, else "Hello from Gemini"). The
// model picks the rest:
//   gemini-ok (or any other name)  as above
//   gemini-cached   usage with cached content tokens
//   gemini-blocked  the prompt is blocked for safety (no candidates)
//   gemini-400      400 INVALID_ARGUMENT
//   <name>-burst-<n>  the benchmark's: the stream in one write, n text pieces (n words of
//                   its answer), or n calls of the first allowed tool, one per chunk
// Every request is recorded (url, headers, parsed body).

import { burstPieces, isBase64, isObject, piecesOf, rules, sampleOf, vectorOf, wordsFor } from "./mock-answers.mjs";
import { startUpstreamServer } from "./upstream-server.mjs";

const PARTS = ["Hello", " from", " Gemini"];
const TOP_LEVEL = new Set(["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"]);
const GENERATION = new Set(["maxOutputTokens", "temperature", "topP", "topK", "candidateCount", "presencePenalty", "frequencyPenalty", "seed", "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "thinkingConfig"]);
const MEDIA_TYPES = new Set(["image/png", "image/jpeg", "image/webp", "image/heic", "image/heif", "image/gif", "application/pdf", "text/plain", "audio/wav", "audio/mp3", "audio/mpeg", "audio/aac", "audio/ogg", "audio/flac"]);
const PART_KINDS = ["text", "inlineData", "fileData", "functionCall", "functionResponse"];
const SIGNATURE = "sig-gemini-";
/** The signature Google documents for calls that another model made. */
const SKIP_SIGNATURE = "skip_thought_signature_validator";

const frame = (payload) => `data: ${JSON.stringify(payload)}\r\n\r\n`;
const STATUSES = { 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED" };
const blocked = { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 8 } };

/** The first rule of batchEmbedContents that `body` breaks, or null. */
function embeddingViolation(model, body) {
  const r = rules();
  if (!r.check(isObject(body) && Array.isArray(body.requests) && body.requests.length > 0, "requests: a non-empty list is required")) return r.first;
  for (const [i, one] of body.requests.entries()) {
    r.check(one.model === `models/${model}`, `requests[${i}].model: must be the batch's model, models/${model}`);
    const parts = one.content?.parts;
    r.check(Array.isArray(parts) && parts.length > 0 && parts.every((part) => typeof part.text === "string" && part.text.length > 0), `requests[${i}].content: text parts are required`);
    r.check(one.outputDimensionality === undefined || Number.isInteger(one.outputDimensionality), `requests[${i}].outputDimensionality: an integer`);
  }
  return r.first;
}

/** The first rule of generateContent that `body` breaks, or null. */
export function geminiViolation(body) {
  const r = rules();
  if (!r.check(isObject(body), "Invalid JSON payload received.")) return r.first;
  for (const field of Object.keys(body)) r.check(TOP_LEVEL.has(field), `Invalid JSON payload received. Unknown name "${field}": Cannot find field.`);
  for (const field of Object.keys(body.generationConfig ?? {})) r.check(GENERATION.has(field), `Invalid JSON payload received. Unknown name "${field}" at 'generation_config': Cannot find field.`);
  const config = body.generationConfig ?? {};
  r.check(!config.responseJsonSchema || config.responseMimeType === "application/json", "responseJsonSchema requires responseMimeType application/json");
  r.check(!(config.responseJsonSchema && config.responseSchema), "responseSchema and responseJsonSchema cannot both be set");
  const thinking = config.thinkingConfig;
  r.check(thinking === undefined || (Number.isInteger(thinking.thinkingBudget ?? 0) && Object.keys(thinking).every((key) => ["thinkingBudget", "includeThoughts", "thinkingLevel"].includes(key))), "generation_config.thinking_config: invalid");
  const declarations = (body.tools ?? []).flatMap((tool) => tool.functionDeclarations ?? []);
  for (const [i, declaration] of declarations.entries()) {
    r.check(/^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$/.test(declaration.name ?? ""), `tools[0].function_declarations[${i}].name: Invalid function name`);
    r.check(!(declaration.parameters && declaration.parametersJsonSchema), `tools[0].function_declarations[${i}]: parameters and parametersJsonSchema cannot both be set`);
    r.check(declaration.parametersJsonSchema === undefined || isObject(declaration.parametersJsonSchema), `tools[0].function_declarations[${i}].parameters_json_schema: must be an object`);
  }
  const calling = body.toolConfig?.functionCallingConfig;
  if (calling) {
    r.check(["AUTO", "ANY", "NONE", "VALIDATED"].includes(calling.mode), "tool_config.function_calling_config.mode: invalid");
    for (const name of calling.allowedFunctionNames ?? []) {
      r.check(calling.mode === "ANY", "allowed_function_names may only be set when the mode is ANY");
      r.check(declarations.some((declaration) => declaration.name === name), `allowed_function_names: ${name} is not declared`);
    }
  }
  if (!r.check(Array.isArray(body.contents) && body.contents.length > 0, "* GenerateContentRequest.contents: contents is not specified")) return r.first;
  let pendingCalls = [];
  for (const [i, content] of body.contents.entries()) {
    const at = `contents[${i}]`;
    r.check(content.role === (i % 2 === 0 ? "user" : "model"), `${at}.role: Please ensure that multiturn requests alternate between user and model, beginning with user.`);
    if (!r.check(Array.isArray(content.parts) && content.parts.length > 0, `${at}.parts: must not be empty`)) continue;
    const responses = [];
    const calls = [];
    for (const [j, part] of content.parts.entries()) {
      const partAt = `${at}.parts[${j}]`;
      const kinds = PART_KINDS.filter((kind) => part[kind] !== undefined);
      if (!r.check(kinds.length === 1, `${partAt}: a part must hold exactly one of ${PART_KINDS.join(", ")} (found ${kinds.join(", ") || "none"})`)) continue;
      for (const field of Object.keys(part)) r.check([...PART_KINDS, "thought", "thoughtSignature"].includes(field), `${partAt}: Unknown name "${field}"`);
      switch (kinds[0]) {
        case "text":
          r.check(typeof part.text === "string", `${partAt}.text: must be a string`);
          break;
        case "inlineData":
          r.check(MEDIA_TYPES.has(part.inlineData.mimeType), `${partAt}.inline_data.mime_type: Unsupported MIME type: ${part.inlineData.mimeType}`);
          r.check(isBase64(part.inlineData.data), `${partAt}.inline_data.data: Base64 decoding failed`);
          break;
        case "fileData":
          r.check(MEDIA_TYPES.has(part.fileData.mimeType), `${partAt}.file_data.mime_type: Unsupported MIME type: ${part.fileData.mimeType}`);
          r.check(/^https?:\/\//.test(part.fileData.fileUri ?? ""), `${partAt}.file_data.file_uri: invalid`);
          break;
        case "functionCall":
          r.check(content.role === "model", `${partAt}: function calls are model content`);
          r.check(typeof part.functionCall.name === "string" && isObject(part.functionCall.args ?? {}), `${partAt}.function_call: needs a name and object args`);
          r.check(
            typeof part.thoughtSignature === "string" && (part.thoughtSignature.startsWith(SIGNATURE) || part.thoughtSignature === SKIP_SIGNATURE),
            `Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly (${partAt}).`,
          );
          calls.push(part.functionCall.name);
          break;
        case "functionResponse":
          r.check(content.role === "user", `${partAt}: function responses are user content`);
          r.check(typeof part.functionResponse.name === "string" && isObject(part.functionResponse.response), `${partAt}.function_response: needs a name and an object response`);
          responses.push(part.functionResponse.name);
          break;
      }
    }
    if (content.role === "user") {
      if (responses.length > 0 || pendingCalls.length > 0) {
        r.check(
          JSON.stringify(responses) === JSON.stringify(pendingCalls),
          `${at}: Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn (calls ${pendingCalls.join(", ") || "none"}, responses ${responses.join(", ") || "none"}).`,
        );
      }
      pendingCalls = [];
    } else {
      pendingCalls = calls;
    }
  }
  r.check(pendingCalls.length === 0, "the last model turn's function calls need function responses");
  return r.first;
}

/** The parts the mock model answers `body` with. */
function answerParts(model, body) {
  const n = burstPieces(model);
  const parts = [];
  const config = body.generationConfig ?? {};
  if (config.thinkingConfig?.includeThoughts) parts.push({ text: "The user wants an answer.", thought: true });
  const lastParts = body.contents.at(-1).parts;
  const responses = lastParts.filter((part) => part.functionResponse);
  const declarations = (body.tools ?? []).flatMap((tool) => tool.functionDeclarations ?? []);
  const calling = body.toolConfig?.functionCallingConfig ?? { mode: "AUTO" };
  if (declarations.length > 0 && calling.mode !== "NONE" && responses.length === 0) {
    const allowed = calling.allowedFunctionNames;
    let chosen = allowed ? declarations.filter((d) => allowed.includes(d.name)).slice(0, 1) : declarations.slice(0, 2);
    // The benchmark's models call the first tool n times (Gemini streams each call whole).
    if (n) chosen = wordsFor(chosen.slice(0, 1), n);
    chosen.forEach((declaration, n) =>
      parts.push({ functionCall: { name: declaration.name, args: sampleOf(declaration.parametersJsonSchema ?? declaration.parameters) }, thoughtSignature: `${SIGNATURE}${body.contents.length}-${n}` }),
    );
    return parts;
  }
  if (config.responseMimeType === "application/json") {
    parts.push({ text: JSON.stringify(config.responseJsonSchema ? sampleOf(config.responseJsonSchema) : { answer: "Paris" }) });
    return parts;
  }
  const media = lastParts.filter((part) => part.inlineData || part.fileData);
  if (responses.length > 0) parts.push({ text: `The tool said: ${responses.map((part) => JSON.stringify(part.functionResponse.response)).join("; ")}` });
  else if (media.length > 0) parts.push({ text: `I see ${media.map((part) => (part.inlineData ? `inline ${part.inlineData.mimeType}` : `file ${part.fileData.fileUri} (${part.fileData.mimeType})`)).join(", ")}` });
  else parts.push({ text: wordsFor(PARTS, n ?? PARTS.length).join("") });
  return parts;
}

function usageFor(model, parts, body) {
  const thoughts = body.generationConfig?.thinkingConfig?.includeThoughts ? 12 : 0;
  const candidates = parts.filter((part) => !part.thought).length + 2;
  return {
    promptTokenCount: model === "gemini-cached" ? 108 : 8,
    candidatesTokenCount: candidates,
    totalTokenCount: 8 + candidates + thoughts,
    ...(thoughts ? { thoughtsTokenCount: thoughts } : {}),
    ...(model === "gemini-cached" ? { cachedContentTokenCount: 100 } : {}),
  };
}

/**
 * The stream's chunks: text in pieces (the mock's own answer word by word; `n` pieces for
 * the benchmark's models), everything else whole, one part per chunk.
 */
function streamParts(parts, n) {
  const words = wordsFor(PARTS, n ?? PARTS.length);
  if (parts.length === 1 && parts[0].text === words.join("")) return words.map((text) => ({ text }));
  return parts.flatMap((part) => (part.text !== undefined && !part.thought ? piecesOf(part.text, n ?? 3).map((text) => ({ text })) : [part]));
}

export const GEMINI_WIRE = {
  base: "/v1beta",
  route(req) {
    const embedding = /^\/v1beta\/models\/([^:]+):batchEmbedContents$/.exec(req.url);
    if (embedding) return { model: embedding[1], stream: false, embedding: true };
    const match = /^\/v1beta\/models\/([^:]+):(generateContent|streamGenerateContent\?alt=sse)$/.exec(req.url);
    return match && { model: match[1], stream: match[2].startsWith("stream") };
  },
  validate: ({ model, body, embedding }) => (embedding ? embeddingViolation(model, body) : geminiViolation(body)),
  answer: ({ model, body, embedding }) => {
    if (embedding) return { embeddings: body.requests.map((one) => ({ values: vectorOf(one.content.parts[0].text, one.outputDimensionality ?? 8) })) };
    if (model === "gemini-blocked") return blocked;
    const parts = answerParts(model, body);
    return { candidates: [{ content: { role: "model", parts }, finishReason: "STOP", index: 0 }], usageMetadata: usageFor(model, parts, body) };
  },
  events: ({ model, body }) => {
    if (model === "gemini-blocked") return [frame(blocked)];
    const parts = answerParts(model, body);
    const pieces = streamParts(parts, burstPieces(model));
    return pieces.map((part, i) => {
      const last = i === pieces.length - 1;
      return frame({
        candidates: [{ content: { role: "model", parts: [part] }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }],
        ...(last ? { usageMetadata: usageFor(model, parts, body) } : {}),
      });
    });
  },
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
