// Gateway configuration that routes one alias to each mock-upstream scenario, and the
// suite fixture that starts both.

import { after, before } from "node:test";
import { startGateway } from "./gateway.mjs";
import { startMockOpenAI } from "./mock-openai.mjs";

export const UPSTREAM_KEY = "sk-test-upstream-secret-0123456789";

export const SCENARIOS = [
  "ok",
  "hold",
  "slow-headers",
  "error-500",
  "error-400",
  "error-401",
  "break",
  "truncate",
  "garbage",
  "split",
  "redirect",
  "gzip",
];

/** Vars and secrets for a gateway whose provider `up` is the mock upstream at `upstreamUrl`. */
export function upstreamConfig(upstreamUrl, extraVars = {}) {
  const routes = { mock: { provider: "mock", model: "mock" } };
  for (const scenario of SCENARIOS) routes[scenario] = { provider: "up", model: scenario };
  return {
    vars: {
      PROVIDERS: JSON.stringify({ up: { type: "openai", base_url: upstreamUrl, api_key_secret: "UP_KEY" } }),
      ROUTES: JSON.stringify(routes),
      UPSTREAM_TTFB_TIMEOUT_MS: "500",
      // These suites are about completions, not auth: every alias is open without a key.
      ANONYMOUS_MODELS: Object.keys(routes).join(","),
      MOCK_CHUNK_DELAY_MS: "0",
      ...extraVars,
    },
    secrets: { UP_KEY: UPSTREAM_KEY },
  };
}

/**
 * Starts a mock upstream (`startUpstream()`) and a gateway configured for it
 * (`configFor(upstreamUrl)` gives `{ vars, secrets }`) before the enclosing suite's tests,
 * and stops both after them. The returned object gets `upstream` and `gateway` set.
 */
export function useGatewayWith(startUpstream, configFor) {
  const fixture = {};
  before(async () => {
    fixture.upstream = await startUpstream();
    fixture.gateway = await startGateway(configFor(fixture.upstream.url));
  });
  after(async () => {
    await fixture.gateway?.close();
    await fixture.upstream?.close();
  });
  return fixture;
}

/** A gateway whose provider `up` is the mock OpenAI upstream (see `upstreamConfig`). */
export function useUpstreamGateway(extraVars = {}) {
  return useGatewayWith(startMockOpenAI, (url) => upstreamConfig(url, extraVars));
}
