// The benchmark's upstream: the tests' mock OpenAI server, in its own process so that its
// CPU is not the load generator's. Sends its base URL to the parent once listening.
import { startMockOpenAI } from "../tests/support/mock-openai.mjs";

const upstream = await startMockOpenAI();
process.send(upstream.url);
process.on("disconnect", () => upstream.close().then(() => process.exit(0)));
