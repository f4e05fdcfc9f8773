// Starts the built Worker (build/index.js, as `make build` leaves it) in workerd through
// Miniflare, with the bindings wrangler.toml declares plus per-test overrides, on a free
// port of 127.0.0.1. Captures the Worker's console output so tests can read its log lines.

import assert from "node:assert/strict";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * @param {object} options
 * @param {Record<string, string>} [options.vars] overrides of wrangler.toml vars
 * @param {Record<string, string>} [options.secrets] secrets, as `wrangler secret put` would set
 * @param {string[]} [options.withoutDurableObjects] Durable Object bindings to leave out
 *   (to test what happens when one cannot be reached)
 * @param {string} [options.persistTo] a directory where KV and Durable Object storage are
 *   kept, so that a second gateway started on it finds the first one's state (a restart)
 */
export async function startGateway({ vars = {}, secrets = {}, withoutDurableObjects = [], persistTo } = {}) {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.toml"));
  for (const binding of withoutDurableObjects) delete workerOptions.durableObjects[binding];
  const logs = [];
  const mf = new Miniflare({
    ...workerOptions,
    name: "gateway",
    rootPath: root,
    modules: true,
    scriptPath: path.join(root, "build/index.js"),
    modulesRules: [
      { type: "ESModule", include: ["**/*.js"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    bindings: { ...workerOptions.bindings, ...vars, ...secrets },
    ...(persistTo ? { kvPersist: path.join(persistTo, "kv"), durableObjectsPersist: path.join(persistTo, "do") } : {}),
    host: "127.0.0.1",
    port: 0,
    handleStructuredLogs: ({ message }) => {
      logs.push(message);
    },
  });
  const url = (await mf.ready).toString().replace(/\/$/, "");
  await waitForReady(url);
  return {
    url,
    logs,
    /** The request log lines (JSON objects) written so far. */
    requestLogs() {
      return logs
        .flatMap((message) => message.split("\n"))
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line));
    },
    /** Waits (bounded) until the log line for `requestId` is written and returns it. */
    async logFor(requestId, ms = 5000) {
      const deadline = Date.now() + ms;
      for (;;) {
        const line = this.requestLogs().find((entry) => entry.request_id === requestId);
        if (line) return line;
        if (Date.now() > deadline) throw new Error(`no log line for ${requestId} within ${ms} ms`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    /** The gateway's KV namespace, to read or write what the Worker stores. */
    kv: () => mf.getKVNamespace("GATEWAY_KV"),
    close: () => mf.dispose(),
  };
}

/** Bounded poll of /healthz: the first request after start can be slow. */
async function waitForReady(url, ms = 30_000) {
  const deadline = Date.now() + ms;
  let lastError;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) return;
      lastError = new Error(`status ${response.status}`);
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`gateway not ready within ${ms} ms: ${lastError}`);
}

/** Reads an SSE response to its end; returns the `data:` payloads (JSON parsed, `[DONE]` as is). */
export async function readEvents(response) {
  const text = await response.text();
  return parseEvents(text);
}

export function parseEvents(text) {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data: "))
        .map((line) => line.slice(6))
        .join("\n");
      return data === "[DONE]" ? data : JSON.parse(data);
    });
}

/** Calls the admin API of the gateway at `url` with the bearer `token`; `body` is sent as JSON. */
export function adminRequest(url, token, method, path, body) {
  return fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** POSTs a chat completion request. */
export function chat(url, body, init = {}) {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers ?? {}) },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
    signal: init.signal,
  });
}

/**
 * Asserts that `promise` fails with an SDK error of class `type`, HTTP `status` and the
 * gateway's stable `code` (`codeOf` finds it in the SDK's error: OpenAI's SDKs expose it
 * as `error.code`, Anthropic's inside its error body).
 */
export async function rejectsAs(promise, type, status, code, codeOf = (error) => error.code) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof type, `${error}`);
    assert.equal(error.status, status);
    assert.equal(codeOf(error), code, JSON.stringify(error.error));
    return true;
  });
}
