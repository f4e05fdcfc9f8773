// CORS in workerd: exact origin allow-list, preflights, headers on every allowed response.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { chat, readEvents, startGateway } from "../support/gateway.mjs";

const APP = "https://app.example.com";
const hello = { model: "mock", messages: [{ role: "user", content: "hi" }] };

describe("CORS", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({ vars: { CORS_ALLOWED_ORIGINS: `${APP}, http://localhost:5173`, MOCK_CHUNK_DELAY_MS: "0", ANONYMOUS_MODELS: "mock" } });
  });
  after(() => gateway?.close());

  const preflight = (origin, method = "POST", headers = "authorization, content-type", path = "/v1/chat/completions") =>
    fetch(`${gateway.url}${path}`, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": method, "access-control-request-headers": headers },
    });

  test("a preflight from an allowed origin gets 204 with methods, headers and max-age", async () => {
    const response = await preflight(APP, "POST", "Authorization, Content-Type, X-Stainless-Lang");
    assert.equal(response.status, 204);
    assert.equal(response.headers.get("access-control-allow-origin"), APP);
    assert.equal(response.headers.get("access-control-allow-methods"), "POST");
    assert.equal(response.headers.get("access-control-allow-headers"), "authorization, content-type, x-stainless-lang");
    assert.equal(response.headers.get("access-control-max-age"), "600");
    assert.match(response.headers.get("vary"), /Origin/);
    assert.equal(response.headers.get("access-control-allow-credentials"), null);
  });

  test("preflights from other origins, for other methods or unknown headers are refused", async () => {
    for (const response of [
      await preflight("https://evil.example.com"),
      await preflight(APP, "DELETE"),
      await preflight(APP, "POST", "x-forwarded-for"),
    ]) {
      assert.equal(response.status, 403);
      assert.equal(response.headers.get("access-control-allow-origin"), null);
      assert.equal((await response.json()).error.code, "origin_not_allowed");
    }
    assert.equal((await preflight(APP, "GET", "", "/v1/nothing")).status, 404);
  });

  test("an allowed origin's request carries the CORS headers, streamed or not, error or not", async () => {
    const answer = await chat(gateway.url, hello, { headers: { origin: APP } });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get("access-control-allow-origin"), APP);
    assert.match(answer.headers.get("access-control-expose-headers"), /x-request-id/);
    assert.match(answer.headers.get("access-control-expose-headers"), /x-ratelimit-remaining-requests/);
    assert.equal(answer.headers.get("vary"), "Origin");
    await answer.json();

    const stream = await chat(gateway.url, { ...hello, stream: true }, { headers: { origin: APP } });
    assert.equal(stream.headers.get("access-control-allow-origin"), APP);
    assert.equal((await readEvents(stream)).at(-1), "[DONE]");

    // A keyless caller asking for a model that is not open to it: 401, with the headers.
    const error = await chat(gateway.url, { ...hello, model: "nope" }, { headers: { origin: APP } });
    assert.equal(error.status, 401);
    assert.equal(error.headers.get("access-control-allow-origin"), APP);
  });

  test("a request from an origin not in the list is refused before any work", async () => {
    const response = await chat(gateway.url, hello, { headers: { origin: "https://evil.example.com" } });
    assert.equal(response.status, 403);
    assert.equal(response.headers.get("access-control-allow-origin"), null);
    assert.equal((await response.json()).error.code, "origin_not_allowed");
    const log = await gateway.logFor(response.headers.get("x-request-id"));
    assert.equal(log.error, "origin_not_allowed");
    assert.equal(log.model, undefined, "refused before the body was read");
  });

  test("same-origin and server requests pass; server requests get only Vary", async () => {
    const same = await chat(gateway.url, hello, { headers: { origin: gateway.url } });
    assert.equal(same.status, 200);
    assert.equal(same.headers.get("access-control-allow-origin"), gateway.url);

    const server = await chat(gateway.url, hello);
    assert.equal(server.status, 200);
    assert.equal(server.headers.get("access-control-allow-origin"), null);
    assert.equal(server.headers.get("vary"), "Origin");
  });
});
