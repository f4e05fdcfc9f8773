// `make bench-ab OTHER=DIR`: this checkout's gateway build against another one (DIR holds a
// `build/` from `scripts/build.sh`, such as a git worktree of an earlier commit), on the
// same 50-chunk stream (or, with BENCH_AB_MODE=json, the same JSON request) at concurrency
// 1, in interleaved rounds: each round sends a batch to one build and then to the other
// (the order alternates), so the machine's drift, which moves single `make bench` runs by
// ±20 %, falls on both alike. Prints each build's CPU per request (workerd's, from /proc)
// and their ratio.
//
// BENCH_AB_ROUNDS (default 16) and BENCH_AB_BATCH (default 100 streams or 400 JSON
// requests: /proc counts CPU in 10 ms ticks) size the run.

import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { cpuMs, GATEWAY_OBJECTS, startUpstream, startWorker } from "./workerd.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const MODE = process.env.BENCH_AB_MODE ?? "stream";
if (!["stream", "json"].includes(MODE)) {
  console.error(`BENCH_AB_MODE: stream or json, not ${MODE}`);
  process.exit(2);
}
const ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 16);
const BATCH = Number(process.env.BENCH_AB_BATCH ?? (MODE === "json" ? 400 : 100));
const STREAM_CHUNKS = 50;

if (!process.argv[2]) {
  console.error("usage: node bench/ab.mjs DIR   (DIR/build holds the other gateway build)");
  process.exit(2);
}
const other = path.resolve(process.argv[2]);

/** Sends one chat completion and reads the answer to its end; rejects unless it is a 200. */
function send(agent, url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/chat/completions`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`${url}: status ${res.statusCode}`))));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;

const upstream = await startUpstream();
const bindings = {
  PROVIDERS: JSON.stringify({ up: { type: "openai", base_url: upstream.url, api_key_secret: "UP_KEY" } }),
  ROUTES: JSON.stringify({ bench: { provider: "up", model: "ok" } }),
  ANONYMOUS_MODELS: "bench",
  // The anonymous tier unlimited: no request is refused, none waits for the limiter.
  RATE_LIMITS: JSON.stringify({ tiers: { free: {} } }),
  UP_KEY: "sk-bench",
};
const builds = { this: await startWorker(root, bindings, GATEWAY_OBJECTS), other: await startWorker(other, bindings, GATEWAY_OBJECTS) };
const agent = new http.Agent({ keepAlive: true });
const question = { model: "bench", messages: [{ role: "user", content: "Say hello to the benchmark." }] };
const body = JSON.stringify(MODE === "json" ? question : { ...question, stream: true, metadata: { chunks: String(STREAM_CHUNKS) } });
const perRequest = { this: [], other: [] };
try {
  for (const worker of Object.values(builds)) for (let i = 0; i < 50; i++) await send(agent, worker.url, body); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ["this", "other"] : ["other", "this"];
    for (const name of order) {
      const { url, pids } = builds[name];
      const before = cpuMs(pids);
      for (let i = 0; i < BATCH; i++) await send(agent, url, body);
      perRequest[name].push((cpuMs(pids) - before) / BATCH);
    }
  }
} finally {
  agent.destroy();
  for (const worker of Object.values(builds)) worker.close();
  upstream.close();
}
const f = (value) => value.toFixed(3);
const what = MODE === "json" ? "JSON requests" : `${STREAM_CHUNKS}-chunk streams`;
console.log(`${ROUNDS} interleaved rounds of ${BATCH} ${what} at c1, workerd CPU ms per request:`);
for (const [name, dir] of [["this", root], ["other", other]]) {
  console.log(`  ${name.padEnd(5)} ${dir}: median ${f(median(perRequest[name]))}, mean ${f(mean(perRequest[name]))}`);
}
console.log(`  this / other: ${f(mean(perRequest.this) / mean(perRequest.other))}x (means)`);
