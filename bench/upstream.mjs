// The benchmark's upstreams: the tests' mock OpenAI, Anthropic and Gemini servers, in their
// own process so that their CPU is not the load generator's. Sends their base URLs to the
// parent once listening.
import { startMockAnthropic } from "../tests/support/mock-anthropic.mjs";
import { startMockGemini } from "../tests/support/mock-gemini.mjs";
import { startMockOpenAI } from "../tests/support/mock-openai.mjs";

const upstreams = { openai: await startMockOpenAI(), anthropic: await startMockAnthropic(), gemini: await startMockGemini() };
process.send(Object.fromEntries(Object.entries(upstreams).map(([name, upstream]) => [name, upstream.url])));
process.on("disconnect", () => Promise.all(Object.values(upstreams).map((upstream) => upstream.close())).then(() => process.exit(0)));
