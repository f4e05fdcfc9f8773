// A mock Gemini server on 127.0.0.1 in Gemini's wire format: `POST /v1beta/models/{model}:generateContent`
// and `:streamGenerateContent?alt=sse` (data-only SSE, no [DONE]). The model picks the behaviour:
//   gemini-ok       an answer in three parts
//   gemini-blocked  the prompt is blocked for safety (no candidates)
//   gemini-400      400 INVALID_ARGUMENT
// Every request is recorded (url, headers, parsed body).

import http from "node:http";

const PARTS = ["Hello", " from", " Gemini"];

export async function startMockGemini() {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const piece of req) raw += piece;
    const body = JSON.parse(raw || "{}");
    requests.push({ url: req.url, headers: req.headers, body });
    const match = /^\/v1beta\/models\/([^:]+):(generateContent|streamGenerateContent\?alt=sse)$/.exec(req.url);
    const json = (status, payload) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload));
    };
    if (!match) return json(404, { error: { code: 404, message: "not found", status: "NOT_FOUND" } });
    const [, model, method] = match;
    if (model === "gemini-400") return json(400, { error: { code: 400, message: "Invalid value at 'contents'", status: "INVALID_ARGUMENT" } });
    const usageMetadata = { promptTokenCount: 8, candidatesTokenCount: PARTS.length, totalTokenCount: 8 + PARTS.length };
    const stream = method.startsWith("stream");
    if (model === "gemini-blocked") {
      const blocked = { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 8 } };
      if (!stream) return json(200, blocked);
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify(blocked)}\r\n\r\n`);
      return res.end();
    }
    if (!stream) {
      return json(200, {
        candidates: [{ content: { role: "model", parts: [{ text: PARTS.join("") }] }, finishReason: "STOP", index: 0 }],
        usageMetadata,
      });
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    PARTS.forEach((text, i) => {
      const last = i === PARTS.length - 1;
      const chunk = {
        candidates: [{ content: { role: "model", parts: [{ text }] }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }],
        ...(last ? { usageMetadata } : {}),
      };
      res.write(`data: ${JSON.stringify(chunk)}\r\n\r\n`);
    });
    res.end();
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/v1beta`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}
