// GET /openapi.json, checked against the gateway's real responses.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Ajv2020 from "ajv/dist/2020.js";
import { adminRequest, chat, readEvents, startGateway } from "../support/gateway.mjs";

const ADMIN_TOKEN = "admin-token-for-openapi-tests-0123456789";

describe("openapi.json", () => {
  let gateway;
  let check;
  before(async () => {
    gateway = await startGateway({ vars: { ANONYMOUS_MODELS: "mock", MOCK_CHUNK_DELAY_MS: "0" }, secrets: { ADMIN_TOKEN } });
    const response = await fetch(`${gateway.url}/openapi.json`);
    assert.equal(response.status, 200);
    const document = await response.json();
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema(document, "openapi");
    check = (name, value) => {
      const validate = ajv.getSchema(`openapi#/components/schemas/${name}`);
      assert.ok(validate, `schema ${name}`);
      assert.ok(validate(value), `${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value)}`);
    };
  });
  after(() => gateway?.close());

  test("is OpenAPI 3.1 with every route", async () => {
    const document = await (await fetch(`${gateway.url}/openapi.json`)).json();
    assert.equal(document.openapi, "3.1.0");
    assert.deepEqual(Object.keys(document.paths).sort(), [
      "/admin/cache/{id}",
      "/admin/keys",
      "/admin/keys/{id}",
      "/admin/limits/{id}",
      "/admin/usage",
      "/healthz",
      "/metrics",
      "/openapi.json",
      "/readyz",
      "/v1/chat/completions",
      "/v1/embeddings",
      "/v1/feedback",
      "/v1/jobs",
      "/v1/jobs/{id}",
      "/v1/messages",
      "/v1/messages/count_tokens",
      "/v1/models",
      "/v1/responses",
      "/v1/responses/{id}",
      "/v1/usage",
      "/v1/webhooks/signing_key",
    ]);
  });

  test("describes the public responses as they are", async () => {
    check("Health", await (await fetch(`${gateway.url}/healthz`)).json());
    check("Readiness", await (await fetch(`${gateway.url}/readyz`)).json());
    check("ModelList", await (await fetch(`${gateway.url}/v1/models`)).json());
    check("UsageReport", await (await fetch(`${gateway.url}/v1/usage`)).json());
    const body = { model: "mock", messages: [{ role: "user", content: "hi" }] };
    check("ChatCompletionRequest", body);
    check("ChatCompletion", await (await chat(gateway.url, body)).json());
    const events = await readEvents(await chat(gateway.url, { ...body, stream: true, stream_options: { include_usage: true } }));
    assert.equal(events.at(-1), "[DONE]");
    for (const chunk of events.slice(0, -1)) check("ChatCompletionChunk", chunk);
    check("Error", await (await chat(gateway.url, { ...body, temperature: 9 })).json());
    check("Error", await (await fetch(`${gateway.url}/nowhere`)).json());
    const messages = (path, request) => fetch(`${gateway.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request) });
    const message = { model: "mock", max_tokens: 16, messages: [{ role: "user", content: "hi" }] };
    check("AnthropicMessageRequest", message);
    check("AnthropicMessage", await (await messages("/v1/messages", message)).json());
    check("TokenCount", await (await messages("/v1/messages/count_tokens", { model: "mock", messages: message.messages })).json());
    check("AnthropicError", await (await messages("/v1/messages", { ...message, max_tokens: undefined })).json());
    const embedding = { model: "mock", input: ["hi", "there"], encoding_format: "float" };
    check("EmbeddingRequest", embedding);
    check("EmbeddingList", await (await messages("/v1/embeddings", embedding)).json());
    check("EmbeddingList", await (await messages("/v1/embeddings", { ...embedding, encoding_format: "base64" })).json());
    const answered = await chat(gateway.url, body);
    const rating = { request_id: answered.headers.get("x-request-id"), thumbs: "up", tags: ["quick"] };
    check("FeedbackRequest", rating);
    // The answer's caller is remembered in the background: a rating may come first.
    let rated;
    for (let attempt = 0; attempt < 50 && rated?.status !== 200; attempt++) {
      rated = await messages("/v1/feedback", rating);
      if (rated.status !== 200) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    check("Feedback", await rated.json());
    const usage = await (await fetch(`${gateway.url}/v1/usage`)).json();
    assert.deepEqual(usage.satisfaction.today, { mock: { mean_score: 5, ratings: 1 } });
    check("UsageReport", usage);
    const request = { model: "mock", input: "hi", instructions: "Be brief.", max_output_tokens: 64 };
    check("ResponseRequest", request);
    const created = await (await messages("/v1/responses", request)).json();
    check("Response", created);
    check("Response", await (await fetch(`${gateway.url}/v1/responses/${created.id}`)).json());
    check("DeletedResponse", await (await fetch(`${gateway.url}/v1/responses/${created.id}`, { method: "DELETE" })).json());
    check("Error", await (await fetch(`${gateway.url}/v1/responses/${created.id}`)).json());
  });

  test("describes the admin responses as they are", async () => {
    const admin = (method, path, payload) =>
      adminRequest(gateway.url, ADMIN_TOKEN, method, path, payload).then((response) => response.json());
    const request = { principal: "openapi-user", tier: "pro", models: ["mock"], limits: { concurrent: 2, daily_usd: 5 } };
    check("NewKey", request);
    const created = await admin("POST", "/admin/keys", request);
    check("CreatedKey", created);
    check("KeyList", await admin("GET", "/admin/keys"));
    check("Key", await admin("GET", `/admin/keys/${created.id}`));
    const update = { team: null, models: null };
    check("KeyUpdate", update);
    check("Key", await admin("PATCH", `/admin/keys/${created.id}`, update));
    check("Key", await admin("DELETE", `/admin/keys/${created.id}`));
    assert.throws(() => check("Key", { ...created, hash: "ab" }), /hash/, "the schema forbids leaking the hash");
    check("UsageReport", await admin("GET", "/admin/limits/openapi-user"));
    check("UsageReport", await admin("DELETE", "/admin/limits/openapi-user"));
  });

  test("describes the jobs responses as they are", async () => {
    const { key } = await (await adminRequest(gateway.url, ADMIN_TOKEN, "POST", "/admin/keys", { principal: "openapi-jobs" })).json();
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const body = { model: "mock", messages: [{ role: "user", content: "hi" }] };
    check("JobRequest", { ...body, callback_url: "https://hooks.example.com/x" });
    const submitted = await fetch(`${gateway.url}/v1/jobs`, { method: "POST", headers, body: JSON.stringify(body) });
    assert.equal(submitted.status, 202);
    const queued = await submitted.json();
    check("Job", queued);
    let job = queued;
    for (let i = 0; i < 200 && job.status !== "succeeded"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      job = await (await fetch(queued.status_url, { headers })).json();
    }
    assert.equal(job.status, "succeeded");
    check("Job", job);
    assert.throws(() => check("Job", { ...job, lease: "x" }), /additional/, "the schema forbids leaking bookkeeping");
    check("Error", await (await fetch(`${gateway.url}/v1/jobs/job_nope`, { headers })).json());
  });
});
