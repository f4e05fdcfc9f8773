// One route to each provider format's mock upstream (OpenAI-compatible, Anthropic,
// Gemini), for the suites that drive a client through every provider.

import { startMockAnthropic } from "./mock-anthropic.mjs";
import { startMockGemini } from "./mock-gemini.mjs";
import { startMockOpenAI } from "./mock-openai.mjs";

/** Each provider: its mock, the route's upstream model, and what its mock answers. */
export const PROVIDERS = {
  openai: { start: startMockOpenAI, type: "openai", model: "agent", hello: "Hello from the mock upstream server.", sees: "I see image data:image/png;base64" },
  anthropic: { start: startMockAnthropic, type: "anthropic", model: "claude-ok", hello: "Hello from Claude", sees: "I see image (image/png)" },
  gemini: { start: startMockGemini, type: "gemini", model: "gemini-ok", hello: "Hello from Gemini", sees: "I see inline image/png" },
};

/** A one-pixel PNG, base64. */
export const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/**
 * Starts every provider's mock. Returns the mocks by provider name, and the `PROVIDERS`
 * and `ROUTES` vars (an alias per provider, named after it, plus `routes`) and the
 * secrets (`ADMIN_TOKEN` and each provider's key) for a gateway that uses them.
 */
export async function startProviders(adminToken, routes = {}) {
  const upstreams = {};
  const providers = {};
  const secrets = { ADMIN_TOKEN: adminToken };
  const allRoutes = {};
  for (const [name, { start, type, model }] of Object.entries(PROVIDERS)) {
    upstreams[name] = await start();
    providers[name] = { type, base_url: upstreams[name].url, api_key_secret: `${name.toUpperCase()}_KEY` };
    secrets[`${name.toUpperCase()}_KEY`] = `sk-test-${name}-0123456789`;
    allRoutes[name] = { provider: name, model };
  }
  const vars = { PROVIDERS: JSON.stringify(providers), ROUTES: JSON.stringify({ ...allRoutes, ...routes }) };
  const close = async () => {
    for (const upstream of Object.values(upstreams)) await upstream.close();
  };
  return { upstreams, vars, secrets, close };
}
