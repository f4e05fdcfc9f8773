// POST /v1/embeddings with the official `openai` SDK, through routes to an
// OpenAI-compatible and a Gemini mock (each checking requests as its real API does), the
// built-in mock, a fallback past a provider without embeddings; floats and base64,
// dimensions, token arrays, usage and cost, the cache, and refusals as the SDK's errors.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import { adminRequest, rejectsAs, startGateway } from "../support/gateway.mjs";
import { startMockAnthropic } from "../support/mock-anthropic.mjs";
import { startMockGemini } from "../support/mock-gemini.mjs";
import { startMockOpenAI } from "../support/mock-openai.mjs";
import { vectorOf } from "../support/mock-answers.mjs";

const ADMIN_TOKEN = "admin-token-for-embeddings-tests-0123456789";

describe("embeddings, with the official OpenAI SDK", () => {
  const upstreams = {};
  let gateway;
  let client;
  before(async () => {
    upstreams.openai = await startMockOpenAI();
    upstreams.gemini = await startMockGemini();
    upstreams.anthropic = await startMockAnthropic();
    const providers = {};
    const secrets = { ADMIN_TOKEN };
    for (const [name, type] of [["openai", "openai"], ["gemini", "gemini"], ["anthropic", "anthropic"]]) {
      providers[name] = { type, base_url: upstreams[name].url, api_key_secret: `${name.toUpperCase()}_KEY` };
      secrets[`${name.toUpperCase()}_KEY`] = `sk-test-${name}-0123456789`;
    }
    const routes = {
      mock: { provider: "mock", model: "mock" },
      openai: { provider: "openai", model: "text-embedding-3-small" },
      gemini: { provider: "gemini", model: "gemini-embedding-001" },
      claude: { provider: "anthropic", model: "claude-ok" },
      "claude-then-openai": { targets: [{ provider: "anthropic", model: "claude-ok" }, { provider: "openai", model: "text-embedding-3-small" }] },
      flaky: { provider: "openai", model: "error-500" },
    };
    gateway = await startGateway({
      vars: {
        PROVIDERS: JSON.stringify(providers),
        ROUTES: JSON.stringify(routes),
        PRICES: JSON.stringify({ "text-embedding-3-small": { input: 1000, output: 0 } }),
        RATE_LIMITS: JSON.stringify({ tiers: { free: {}, metered: { daily_usd: 100 }, trickle: { requests: { limit: 1, window_s: 60 } } } }),
        UPSTREAM_RETRIES: "0",
      },
      secrets,
    });
    client = await clientFor("embedder", "metered");
  });
  after(async () => {
    await gateway?.close();
    for (const upstream of Object.values(upstreams)) await upstream.close();
  });

  const keyFor = async (record) => (await (await adminRequest(gateway.url, ADMIN_TOKEN, "POST", "/admin/keys", record)).json()).key;
  const clientFor = async (principal, tier) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: await keyFor({ principal, tier }), maxRetries: 0 });

  for (const model of ["openai", "gemini"]) {
    test(`through ${model}: one vector per input, in order, floats or base64`, async () => {
      const input = [`alpha ${model}`, `beta ${model}`, `gamma ${model}`];
      const floats = await client.embeddings.create({ model, input, encoding_format: "float", dimensions: 4 });
      assert.equal(floats.object, "list");
      assert.equal(floats.model, model);
      assert.deepEqual(floats.data.map((datum) => datum.index), [0, 1, 2]);
      floats.data.forEach((datum, i) => assert.deepEqual(datum.embedding, vectorOf(input[i], 4).map(Math.fround)));
      assert.ok(floats.usage.prompt_tokens > 0 && floats.usage.total_tokens === floats.usage.prompt_tokens);
      // The SDK asks for base64 by default and decodes it: the same numbers.
      const decoded = await client.embeddings.create({ model, input, dimensions: 4 });
      assert.deepEqual(decoded.data.map((datum) => datum.embedding), floats.data.map((datum) => datum.embedding));
      const sent = upstreams[model].requests.at(-1);
      if (model === "gemini") {
        assert.match(sent.url, /:batchEmbedContents$/);
        assert.deepEqual(sent.body.requests[0], { model: "models/gemini-embedding-001", content: { parts: [{ text: input[0] }] }, outputDimensionality: 4 });
      } else {
        assert.deepEqual(sent.body, { model: "text-embedding-3-small", input, encoding_format: "float", dimensions: 4 });
      }
    });
  }

  test("the built-in mock: deterministic unit vectors, token arrays too", async () => {
    const first = await client.embeddings.create({ model: "mock", input: "same text", encoding_format: "float" });
    const second = await client.embeddings.create({ model: "mock", input: ["same text", "other text"], encoding_format: "float" });
    assert.equal(first.data[0].embedding.length, 16);
    assert.deepEqual(second.data[0].embedding, first.data[0].embedding);
    assert.notDeepEqual(second.data[1].embedding, first.data[0].embedding);
    const norm = Math.hypot(...first.data[0].embedding);
    assert.ok(Math.abs(norm - 1) < 1e-5, String(norm));
    const tokens = await client.embeddings.create({ model: "mock", input: [[1, 2, 3], [4]], encoding_format: "float", dimensions: 3 });
    assert.deepEqual(tokens.data.map((datum) => datum.embedding.length), [3, 3]);
    assert.equal(tokens.usage.prompt_tokens, 4);
  });

  test("token arrays reach OpenAI-compatible upstreams; Gemini's route refuses them", async () => {
    const answer = await client.embeddings.create({ model: "openai", input: [[10, 20, 30]], encoding_format: "float" });
    assert.equal(answer.usage.prompt_tokens, 3);
    await assert.rejects(client.embeddings.create({ model: "gemini", input: [[10, 20]] }), (error) => {
      assert.ok(error instanceof OpenAI.BadRequestError, String(error));
      assert.match(error.message, /text only/);
      return true;
    });
  });

  test("/v1/models says which aliases serve embeddings", async () => {
    const models = Object.fromEntries((await client.models.list()).data.map((model) => [model.id, model.surfaces]));
    for (const alias of ["mock", "openai", "gemini", "claude-then-openai"]) assert.ok(models[alias].includes("embeddings"), alias);
    assert.deepEqual(models.claude, ["chat.completions", "responses", "messages"]);
  });

  test("a provider without embeddings falls back to the next target", async () => {
    const answer = await client.embeddings.create({ model: "claude-then-openai", input: "hello", encoding_format: "float" });
    assert.equal(answer.data.length, 1);
    assert.equal(upstreams.anthropic.requests.length, 0, "nothing is sent to Anthropic");
    await assert.rejects(client.embeddings.create({ model: "claude", input: "hello" }), OpenAI.BadRequestError);
  });

  test("answers are cached per principal and cost is counted", async () => {
    const params = { model: "openai", input: "cache me please", encoding_format: "float" };
    const calls = () => upstreams.openai.requests.filter((request) => request.body?.input?.[0] === params.input).length;
    const { data: first, response: miss } = await client.embeddings.create(params).withResponse();
    assert.equal(miss.headers.get("x-cache"), "MISS");
    const { data: second, response: hit } = await client.embeddings.create(params).withResponse();
    assert.equal(hit.headers.get("x-cache"), "HIT");
    assert.equal(hit.headers.get("x-cache-key"), miss.headers.get("x-cache-key"));
    assert.deepEqual(second.data, first.data);
    assert.equal(calls(), 1);
    const { response: bypass } = await client.embeddings.create(params, { headers: { "cache-control": "no-store" } }).withResponse();
    assert.equal(bypass.headers.get("x-cache"), "BYPASS");
    assert.equal(calls(), 2);
    // The chat cache's rules: opting out bypasses; no-cache skips the read, refreshing the entry.
    const { response: optedOut } = await client.embeddings.create(params, { headers: { "x-gateway-cache": "off" } }).withResponse();
    assert.equal(optedOut.headers.get("x-cache"), "BYPASS");
    const { response: refreshed } = await client.embeddings.create(params, { headers: { "cache-control": "no-cache" } }).withResponse();
    assert.equal(refreshed.headers.get("x-cache"), "MISS");
    assert.equal(calls(), 4);
    // Settlement lands after the answer: the spend shows within a moment.
    let usage;
    for (let tries = 0; tries < 20 && !(usage?.today.cost_usd > 0); tries++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      usage = await (await adminRequest(gateway.url, ADMIN_TOKEN, "GET", "/admin/usage?principal=key:embedder")).json();
    }
    assert.ok(usage.today.cost_usd > 0, JSON.stringify(usage));
    assert.ok(usage.today.prompt_tokens > 0, JSON.stringify(usage));
  });

  test("refusals reach the SDK as its own typed errors", async () => {
    await rejectsAs(client.embeddings.create({ model: "mock", input: [] }), OpenAI.BadRequestError, 400, "invalid_request");
    await rejectsAs(client.embeddings.create({ model: "mock", input: "a", dimensions: 0 }), OpenAI.BadRequestError, 400, "invalid_request");
    await rejectsAs(client.embeddings.create({ model: "mock", input: "a", extra: true }), OpenAI.BadRequestError, 400, "unknown_parameter");
    await rejectsAs(client.embeddings.create({ model: "nope", input: "a" }), OpenAI.NotFoundError, 404, "model_not_found");
    const trickle = await clientFor("embed-trickle", "trickle");
    await trickle.embeddings.create({ model: "mock", input: "a" });
    await rejectsAs(trickle.embeddings.create({ model: "mock", input: "a" }), OpenAI.RateLimitError, 429, "rate_limit_exceeded");
    await rejectsAs(client.embeddings.create({ model: "flaky", input: "a" }), OpenAI.InternalServerError, 502, "upstream_error");
    const narrow = new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: await keyFor({ principal: "embed-narrow", models: ["mock"] }), maxRetries: 0 });
    await rejectsAs(narrow.embeddings.create({ model: "openai", input: "a" }), OpenAI.PermissionDeniedError, 403, "model_not_allowed");
  });
});
