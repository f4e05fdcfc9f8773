// The demo chat: lists the models the caller may use, streams a completion token by token
// into the page, stops it on request, explains errors and rate limits in words, and lets
// the user rate each finished answer (thumbs up or down, POST /v1/feedback).
// The credential lives in the input and this module's variables only: never in storage,
// cookies or the URL.

const $ = (id) => document.getElementById(id);
const form = $("chat");
const answer = $("answer");
const status = $("status");
const limits = $("limits");
const rate = $("rate");
let running = null; // the AbortController of the generation in progress
let rated = null; // the x-request-id of the answer the thumbs rate

/** What each stable error code means, for people. */
const EXPLANATIONS = {
  invalid_api_key: "The gateway did not accept the key. Check it, or leave it empty for open models.",
  invalid_token: "The gateway did not accept the token.",
  token_expired: "The token has expired; sign in again.",
  model_not_allowed: "This key may not use that model.",
  model_not_found: "The gateway has no such model.",
  rate_limit_exceeded: "Slow down: a rate limit was reached.",
  insufficient_quota: "The budget for this period is spent.",
  rate_limiter_unavailable: "The rate limiter is unavailable; try again shortly.",
  origin_not_allowed: "This page's origin is not allowed to call the gateway.",
  upstream_error: "The model provider failed.",
  upstream_timeout: "The model provider did not answer in time.",
  provider_not_configured: "That model's provider is not configured.",
};

function headers() {
  const credential = $("credential").value.trim();
  const result = { "content-type": "application/json" };
  if (credential) result.authorization = `Bearer ${credential}`;
  return result;
}

function say(text, isError = false) {
  status.textContent = text;
  status.className = isError ? "error" : "";
}

function showLimits(response) {
  const remaining = response.headers.get("x-ratelimit-remaining-requests");
  const limit = response.headers.get("x-ratelimit-limit-requests");
  const tokens = response.headers.get("x-ratelimit-remaining-tokens");
  if (remaining === null) {
    limits.textContent = "";
    return;
  }
  const reset = response.headers.get("x-ratelimit-reset-requests");
  limits.textContent =
    `Requests left: ${remaining} of ${limit} (full again in ${reset})` + (tokens === null ? "" : `; tokens left: ${tokens}`);
}

async function explain(response) {
  let error = {};
  try {
    error = (await response.json()).error ?? {};
  } catch {
    // Not JSON: fall through to the status line.
  }
  let text = EXPLANATIONS[error.code] ?? `The gateway answered ${response.status}.`;
  const retry = response.headers.get("retry-after");
  if (response.status === 429 && retry) text += ` Try again in ${retry} s.`;
  if (error.message) text += ` (${error.message})`;
  return text;
}

async function loadModels() {
  const select = $("model");
  try {
    const response = await fetch("/v1/models", { headers: headers() });
    showLimits(response);
    if (!response.ok) {
      say(await explain(response), true);
      return;
    }
    const { data } = await response.json();
    select.replaceChildren(...data.map((model) => new Option(model.id, model.id)));
    say(data.length ? "Ready." : "No model is available to this caller.");
  } catch {
    say("The gateway could not be reached.", true);
  }
}

/** Reads an SSE body, calling `onEvent` with each `data:` payload as it arrives. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (data) onEvent(data);
    }
  }
}

// The two OpenAI surfaces the page can speak: each builds its streamed request and reads
// one SSE data payload into the answer's text (noting usage, failure and the end).
const API = {
  chat: {
    path: "/v1/chat/completions",
    body: (model, prompt) => ({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: prompt }] }),
    read(data, state) {
      if (data === "[DONE]") {
        state.finished = true;
        return null;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) state.failure = chunk.error;
      if (chunk.usage) state.usage = { output_tokens: chunk.usage.completion_tokens };
      return chunk.choices?.[0]?.delta?.content;
    },
  },
  responses: {
    path: "/v1/responses",
    body: (model, prompt) => ({ model, stream: true, store: false, input: prompt }),
    read(data, state) {
      const event = JSON.parse(data);
      if (event.type === "error") state.failure = event;
      if (event.type === "response.completed" || event.type === "response.incomplete") {
        state.finished = true;
        state.usage = event.response.usage;
      }
      return event.type === "response.output_text.delta" ? event.delta : null;
    },
  },
};

async function send(event) {
  event.preventDefault();
  running?.abort();
  const controller = new AbortController();
  running = controller;
  answer.textContent = "";
  rate.hidden = true;
  $("send").disabled = true;
  $("stop").disabled = false;
  say("Generating…");
  const api = API[$("api").value];
  const body = JSON.stringify(api.body($("model").value, $("prompt").value));
  try {
    const response = await fetch(api.path, { method: "POST", headers: headers(), body, signal: controller.signal });
    showLimits(response);
    if (!response.ok) {
      say(await explain(response), true);
      return;
    }
    const state = { usage: null, failure: null, finished: false };
    await readEvents(response.body, (data) => {
      const text = api.read(data, state);
      if (text) answer.append(text);
    });
    const { usage, failure, finished } = state;
    if (failure) say(`${EXPLANATIONS[failure.code] ?? "The answer broke off."} (${failure.message})`, true);
    else if (!finished) say("The answer ended early.", true);
    else say(usage ? `Done: ${usage.output_tokens} tokens.` : "Done.");
    rated = response.headers.get("x-request-id");
    rate.hidden = !finished || failure !== null || rated === null;
  } catch (error) {
    if (controller.signal.aborted) say("Stopped.");
    else say("The gateway could not be reached.", true);
  } finally {
    if (running === controller) running = null;
    $("send").disabled = false;
    $("stop").disabled = true;
  }
}

/** Rates the last answer; a second click replaces the first rating. */
async function sendRating(thumbs) {
  const body = JSON.stringify({ request_id: rated, thumbs });
  try {
    const response = await fetch("/v1/feedback", { method: "POST", headers: headers(), body });
    if (response.ok) say(`Thanks: rated ${thumbs === "up" ? "good" : "bad"}.`);
    else say(await explain(response), true);
  } catch {
    say("The gateway could not be reached.", true);
  }
}

form.addEventListener("submit", send);
$("thumbs-up").addEventListener("click", () => sendRating("up"));
$("thumbs-down").addEventListener("click", () => sendRating("down"));
$("stop").addEventListener("click", () => running?.abort());
$("credential").addEventListener("change", loadModels);
loadModels();
