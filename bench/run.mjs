// `make bench`: what the gateway adds over a direct call and over the floors, each Worker
// served by its own plain `workerd serve` process (not `wrangler dev` nor Miniflare,
// whose proxy Workers cost more CPU than the Worker itself).
//
// The targets answer the same requests from the same mock upstreams (their own process):
// the upstream directly; six floors built from bench/floor: `pass` (the upstream's
// Response returned untouched, its body never in JS or wasm: the least any Worker can
// cost, which the issue's targets are ratios to), `pump` (every chunk read into wasm and
// written to an IdentityTransformStream by one Rust task), `jsloop` (the same by a JS loop
// that calls into wasm once per chunk, as the gateway relays an upstream's stream),
// `transform` (a TransformStream whose transform calls into wasm), `tee` (the body teed,
// one branch returned untouched and the other read chunk by chunk into wasm, nothing
// written: what watching the answer costs a Worker that does not touch it) and `floor`
// (through a Rust Stream, as Response::from_stream does it); the gateway Worker
// (anonymous), the same gateway without its METRICS binding (`gw-nomet`, JSON only: what
// metrics cost), with an RS256 JWT (`gw+jwt`), with a JWT whose tier is rate limited
// (`gw+limit`: every request admitted and settled by its Durable Object), and `full` (the
// limited tier plus REDACT_PII=output). For each: JSON and 50-chunk streaming answers, at
// concurrency 1 and 32 (streams also at 8), cache hits, and 500-chunk streams at
// concurrency 1 (the cost per chunk). Printed: latency p50/p99, added latency over the
// direct call, requests/s, CPU ms per request of each Worker's workerd process tree (from
// /proc), ratios, the issue's targets beside their figures, isolate starts and the
// gzipped wasm sizes.
// BENCH_ONLY=profile prints where the CPU goes instead (V8 CPU profiles, bench/profile.mjs).
// Jobs and the cache's KV level need Queues and KV, which plain workerd lacks: they are
// measured in Miniflare, once, after the last run.
// Every figure is the median of BENCH_RUNS runs (default 3).

import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";
import { hostileTexts } from "../tests/support/hostile-text.mjs";
import { piecesOf } from "../tests/support/mock-answers.mjs";
import { profileStages, relayLoopName } from "./profile.mjs";
import { cpuMs, GATEWAY_OBJECTS, startUpstream, startWorker } from "./workerd.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REQUESTS = {
  1: Number(process.env.BENCH_REQUESTS_C1 ?? 400),
  8: Number(process.env.BENCH_REQUESTS_C8 ?? 1500),
  32: Number(process.env.BENCH_REQUESTS_C32 ?? 3000),
};
const STREAM_CHUNKS = 50;
// A long stream sent by the upstream in one write, measured at concurrency 1 on the floor
// and the anonymous gateway only: with the runtime's per-read costs out of the way, the
// gateway's CPU over the floor's is what parsing, translating and re-encoding the chunks
// costs.
const LONG_STREAM_CHUNKS = 500;
const LONG_STREAM_REQUESTS = Number(process.env.BENCH_REQUESTS_LONG ?? 100);
// Guards: a 16 KB user message (the benign corpus's prompts, which talk about instructions,
// security, code and e-mail in many languages: a dense case for the injection rules), and
// a streamed answer of 16 KB of the same text with some personal data in it.
const GUARD_KB = 16;
const GUARD_REQUESTS = Number(process.env.BENCH_REQUESTS_GUARD ?? 200);
// Hostile text (BENCH_ONLY=hostile alone): the guards' cost per KB on the shapes that have
// hung or slowed text scanners, next to the benign corpus, at three sizes (KB, requests).
const HOSTILE_SIZES = [[1, 400], [16, 100], [200, 20]];
// BENCH_ONLY=stream/c32 (a mode, a concurrency or both) runs a subset while investigating.
const ONLY = process.env.BENCH_ONLY ?? "";
// Jobs (BENCH_ONLY=jobs alone): submissions at c1, each followed to its end, then a burst.
const JOB_REQUESTS = Number(process.env.BENCH_REQUESTS_JOBS ?? 20);
const JOBS_BURST = Number(process.env.BENCH_JOBS_BURST ?? 200);
// Tool calls in streams (BENCH_ONLY=tools): per provider, a 50-chunk text answer and a
// 50-chunk tool call, both sent in one write, to the same request with the same tools.
const TOOL_STREAM_PROVIDERS = ["openai", "anthropic", "gemini"];
const TOOL_STREAM_REQUESTS = Number(process.env.BENCH_REQUESTS_TOOLS ?? 300);
// The front doors (BENCH_ONLY=surfaces): one 50-chunk Anthropic stream sent in one write,
// asked for and answered as Chat Completions, the Responses API and the Messages API.
const SURFACES = { chat: "gateway", responses: "gw-resp", messages: "gw-msg" };
// Floors that differ only in how the body flows through the Worker: measured at c1.
const PLUMBING_FLOORS = ["pump", "transform", "jsloop", "tee"];

function buildFloor() {
  execFileSync(path.join(root, "scripts/build.sh"), [path.join(root, "bench/floor")], { stdio: ["ignore", "ignore", "inherit"] });
}

const BENIGN = JSON.parse(fs.readFileSync(path.join(root, "tests/data/injection/benign.json"), "utf8")).map((item) => item.text);

/** `bytes` of the benign corpus's prompts, one after another. */
function guardText(bytes) {
  let text = "";
  for (let i = 0; text.length < bytes; i++) text += BENIGN[i % BENIGN.length] + "\n";
  return text.slice(0, bytes);
}

/** An answer of about `bytes`, in 80-byte pieces, with an e-mail address and a phone number every 2 KB. */
function guardPieces(bytes) {
  const text = guardText(bytes);
  const pieces = [];
  for (let at = 0; at < text.length; at += 80) {
    pieces.push(text.slice(at, at + 80) + (at % 2048 === 0 ? " Write to jane.doe@example.com or call +1 415 555 0100." : ""));
  }
  return pieces;
}

/** `kb` KB of the benign corpus and of each hostile shape, as `[name, text]`. */
function hostileBench(kb) {
  return [["benign corpus", guardText(kb * 1024)], ...hostileTexts(kb * 1024)];
}

function request(agent, target, body) {
  const { url, headers = {} } = target;
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", ...headers } }, (res) => {
      let firstByte = null;
      res.on("data", () => {
        firstByte ??= process.hrtime.bigint();
      });
      res.on("end", () => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: status ${res.statusCode}`));
        const end = process.hrtime.bigint();
        resolve({ total: Number(end - started) / 1e6, ttfb: Number((firstByte ?? end) - started) / 1e6 });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function load(target, body, concurrency, count) {
  // A fresh keep-alive pool per measurement: a pooled connection left idle while other
  // targets ran may be closed by its server just as it is reused.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  try {
    return await measure(agent, target, body, concurrency, count);
  } finally {
    agent.destroy();
  }
}

async function measure(agent, target, body, concurrency, count) {
  const { pids } = target;
  for (let i = 0; i < 20; i++) await request(agent, target, body); // warm-up
  const samples = [];
  let next = 0;
  const cpuBefore = pids.length ? cpuMs(pids) : 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        samples.push(await request(agent, target, body));
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = pids.length ? (cpuMs(pids) - cpuBefore) / count : null;
  const totals = samples.map((s) => s.total).sort((a, b) => a - b);
  const ttfbs = samples.map((s) => s.ttfb).sort((a, b) => a - b);
  return { p50: pct(totals, 50), p99: pct(totals, 99), ttfb50: pct(ttfbs, 50), rps: count / seconds, cpu };
}

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  return sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
}

function gzippedKb(file) {
  return zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length / 1024;
}

const START_RUNS = Number(process.env.BENCH_START_RUNS ?? 5);

/**
 * How long a fresh isolate takes: from spawning a workerd to its listening socket (the
 * modules compiled and instantiated), then its first request (the configuration loaded,
 * the caches cold, the wasm functions it runs compiled on their first call) and its
 * second; for the gateway and the pass-through floor, the same JSON request through the
 * mock upstream. Medians of START_RUNS starts. Then one start each with V8's compile trace
 * (what compiling the wasm costs the first request), and one with every function compiled
 * before the socket opens (`--no-wasm-lazy-compilation`: the other side of the trade).
 */
async function isolateStarts(gatewayBindings, objects, upstream, body) {
  const starters = {
    gateway: { start: (options) => startWorker(root, gatewayBindings, objects, options), path: "/v1/chat/completions" },
    pass: { start: (options) => startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions`, FLOOR_MODE: "pass-through" }, {}, options), path: "" },
  };
  const figures = {};
  for (const [name, starter] of Object.entries(starters)) {
    const runs = { listening: [], first: [], second: [] };
    for (let run = 0; run < START_RUNS; run++) {
      const timed = await timedStart(starter, body);
      for (const field of Object.keys(runs)) runs[field].push(timed[field]);
    }
    figures[name] = Object.fromEntries(Object.entries(runs).map(([field, values]) => [field, median(values)]));
    const traced = await timedStart(starter, body, { v8Flags: ["--trace-wasm-compilation-times"], keepOutput: true });
    figures[name].compiled = wasmCompiled(traced.printed);
    figures[name].eager = await timedStart(starter, body, { v8Flags: ["--no-wasm-lazy-compilation"] });
  }
  return figures;
}

/**
 * One fresh isolate of `starter`, started with `options` (`startWorker`'s): ms to its
 * listening socket, to the answer of its first request and of its second, and, with
 * `keepOutput`, what workerd printed from the first request until V8's background
 * compilation had had time to report.
 */
async function timedStart(starter, body, options = {}) {
  const started = process.hrtime.bigint();
  const worker = await starter.start(options);
  const listening = Number(process.hrtime.bigint() - started) / 1e6;
  const agent = new http.Agent({ keepAlive: true });
  try {
    const url = `${worker.url}${starter.path}`;
    const before = worker.output().length;
    const first = (await request(agent, { url }, body)).total;
    if (options.keepOutput) await new Promise((resolve) => setTimeout(resolve, 500));
    const printed = worker.output().slice(before);
    const second = (await request(agent, { url }, body)).total;
    return { listening, first, second, printed };
  } finally {
    agent.destroy();
    worker.close();
  }
}

/**
 * The wasm functions V8's `--trace-wasm-compilation-times` says it compiled, per tier
 * (Liftoff, the baseline compiler, runs on the first call, on the request's thread;
 * TurboFan re-compiles hot functions in the background): how many, their KB of wasm code
 * and the ms it took.
 */
function wasmCompiled(printed) {
  const tiers = {};
  for (const [, tier, us, bytes] of printed.matchAll(/using (\w+), took (\d+) \S+ and .*?bodysize (\d+)/g)) {
    tiers[tier] ??= { functions: 0, kb: 0, ms: 0 };
    tiers[tier].functions += 1;
    tiers[tier].kb += Number(bytes) / 1024;
    tiers[tier].ms += Number(us) / 1000;
  }
  return tiers;
}

/**
 * `BENCH_ONLY=profile`: where the CPU goes, from V8 CPU profiles of the gateway's and the
 * Rust-stream floor's isolates (wasm names kept) while each answers PROFILE_REQUESTS
 * requests at c1, the same bodies as the stream, json and guard-in modes.
 */
async function printProfile(gatewayBindings, objects, upstream, bodies) {
  const count = Number(process.env.BENCH_REQUESTS_PROFILE ?? 300);
  const dirs = { gateway: root, floor: path.join(root, "bench/floor") };
  const profiled = {
    gateway: await startWorker(dirs.gateway, gatewayBindings, objects, { inspector: true }),
    floor: await startWorker(dirs.floor, { UPSTREAM_URL: `${upstream.url}/chat/completions` }, {}, { inspector: true }),
  };
  const runs = [
    ["gateway", "stream", `${profiled.gateway.url}/v1/chat/completions`],
    ["floor", "stream", profiled.floor.url],
    ["gateway", "json", `${profiled.gateway.url}/v1/chat/completions`],
    // The default input guards over GUARD_KB of text: where opt-level and inlining show.
    ["gateway", "guard-in", `${profiled.gateway.url}/v1/chat/completions`],
  ];
  const columns = [];
  try {
    for (const [name, mode, url] of runs) {
      const worker = profiled[name];
      const target = { url, pids: worker.pids };
      await load(target, bodies[mode], 1, 50); // warm-up: the JIT and the isolate's caches
      let measured;
      const { stages, functions } = await profileStages(worker.inspectorUrl, async () => {
        measured = await load(target, bodies[mode], 1, count);
      }, relayLoopName(dirs[name]));
      columns.push({ label: `${name} ${mode}`, stages, functions, cpu: measured.cpu, perChunk: mode === "stream" });
    }
  } finally {
    for (const worker of Object.values(profiled)) worker.close();
  }
  const f = (value, digits = 3) => value.toFixed(digits);
  console.log(`\nwhere the CPU goes (V8 CPU profile of each isolate, ${count} requests at c1, self time per request; stream = ${STREAM_CHUNKS} chunks, one upstream write each):`);
  console.log(`  ${"stage".padEnd(54)} ${columns.map((c) => c.label.padStart(16)).join(" ")}   gateway stream per chunk`);
  const stageNames = [...columns[0].stages.keys()];
  for (const stage of stageNames) {
    const cells = columns.map((c) => `${f(c.stages.get(stage) / count)} ms`.padStart(16));
    const perChunk = (columns[0].stages.get(stage) / count / STREAM_CHUNKS) * 1000;
    console.log(`  ${stage.padEnd(54)} ${cells.join(" ")}   ${f(perChunk, 1).padStart(7)} µs`);
  }
  const busy = (c) => [...c.stages.entries()].filter(([stage]) => stage !== "V8 idle").reduce((sum, [, ms]) => sum + ms, 0) / count;
  console.log(`  ${"profiled, not idle".padEnd(54)} ${columns.map((c) => `${f(busy(c))} ms`.padStart(16)).join(" ")}`);
  console.log(`  ${"workerd process CPU (/proc, all threads)".padEnd(54)} ${columns.map((c) => `${f(c.cpu)} ms`.padStart(16)).join(" ")}`);
  for (const column of columns) {
    const top = [...column.functions.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);
    console.log(`\n  ${column.label}: the functions with the most self time (ms per request)`);
    for (const [name, ms] of top) console.log(`    ${f(ms / count).padStart(7)}  ${name.slice(0, 120)}`);
  }
}

/**
 * The issue's targets, each a ratio to the pass-through floor measured in the same run,
 * printed with the target beside it ("ok" or "MISSED").
 */
function printTargets(m, f, measured) {
  const rows = [];
  const ratio = (target, mode, c, field) => m(`${target}/${mode}/c${c}`, field) / m(`pass/${mode}/c${c}`, field);
  const cpuRow = (label, target, mode, c, most) => {
    if (measured(mode, c)) rows.push([label, ratio(target, mode, c, "cpu"), `≤ ${most}x`, ratio(target, mode, c, "cpu") <= most]);
  };
  const rpsRow = (label, target, mode, c, least) => {
    if (measured(mode, c)) rows.push([label, ratio(target, mode, c, "rps"), `≥ ${least}x`, ratio(target, mode, c, "rps") >= least]);
  };
  cpuRow(`stream: CPU per ${STREAM_CHUNKS}-chunk stream, gateway`, "gateway", "stream", 1, 2.5);
  cpuRow(`stream: CPU per ${STREAM_CHUNKS}-chunk stream, full (REDACT_PII=output)`, "full", "stream", 1, 3.5);
  rpsRow("stream c8: streams/s, gateway", "gateway", "stream", 8, 0.5);
  cpuRow("json c1: CPU per request, gateway", "gateway", "json", 1, 1.3);
  cpuRow("json c1: CPU per request, full (limiter)", "full", "json", 1, 1.8);
  rpsRow("json c32: requests/s, gateway", "gateway", "json", 32, 0.7);
  rpsRow("json c32: requests/s, full", "full", "json", 32, 0.5);
  if (rows.length === 0) return;
  console.log("\ntargets (ratio to the pass-through floor, which returns the upstream's Response untouched):");
  for (const [label, value, target, met] of rows) {
    console.log(`  ${label.padEnd(58)} ${f(value).padStart(6)}x  target ${target.padEnd(7)} ${met ? "ok" : "MISSED"}`);
  }
}

const CACHE_PROMPTS = 50;
const CACHE_WORKLOAD_REQUESTS = Number(process.env.BENCH_REQUESTS_CACHE ?? 1000);

/**
 * A repeated-prompt workload on the gateway: prompts drawn from CACHE_PROMPTS with Zipf
 * (s = 1) popularity, as real traffic repeats a few questions often and many rarely; a
 * fresh run id keeps earlier runs' entries out. Returns the hit count and p50s.
 */
async function repeatedPrompts(url) {
  const weights = Array.from({ length: CACHE_PROMPTS }, (_, i) => 1 / (i + 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const pick = () => {
    let ticket = Math.random() * total;
    for (let i = 0; i < weights.length; i++) {
      ticket -= weights[i];
      if (ticket <= 0) return i;
    }
    return weights.length - 1;
  };
  const runId = crypto.randomUUID();
  const times = { HIT: [], MISS: [] };
  for (let i = 0; i < CACHE_WORKLOAD_REQUESTS; i++) {
    const body = JSON.stringify({ model: "bench", temperature: 0, messages: [{ role: "user", content: `${runId} question ${pick()}` }] });
    const started = process.hrtime.bigint();
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    await response.arrayBuffer();
    const cache = response.headers.get("x-cache");
    if (response.status !== 200 || !(cache in times)) throw new Error(`cache workload: status ${response.status}, x-cache ${cache}`);
    times[cache].push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const p50 = (values) => pct(values.sort((a, b) => a - b), 50);
  return { hits: times.HIT.length, total: CACHE_WORKLOAD_REQUESTS, hitP50: p50(times.HIT), missP50: p50(times.MISS) };
}

/**
 * The KV level of the cache, which plain workerd lacks: the gateway in Miniflare (its
 * local KV simulation) twice, with and without the isolate level, each answering the same
 * deterministic request; returns the p50 of hits from each. Both pay Miniflare's proxy.
 */
async function kvHits(upstreamUrl) {
  const { startGateway } = await import("../tests/support/gateway.mjs");
  const vars = {
    PROVIDERS: JSON.stringify({ up: { type: "openai", base_url: upstreamUrl, api_key_secret: "UP_KEY" } }),
    ROUTES: JSON.stringify({ bench: { provider: "up", model: "ok" } }),
    ANONYMOUS_MODELS: "bench",
    RATE_LIMITS: JSON.stringify({ tiers: { free: {} } }),
  };
  const p50 = {};
  for (const [level, l1Bytes] of [["isolate", "8388608"], ["kv", "0"]]) {
    const gateway = await startGateway({ vars: { ...vars, CACHE_L1_BYTES: l1Bytes }, secrets: { UP_KEY: "sk-bench" } });
    try {
      const url = `${gateway.url}/v1/chat/completions`;
      const body = JSON.stringify({ model: "bench", temperature: 0, messages: [{ role: "user", content: "cached" }] });
      const send = async () => {
        const started = process.hrtime.bigint();
        const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
        await response.arrayBuffer();
        return { cache: response.headers.get("x-cache"), ms: Number(process.hrtime.bigint() - started) / 1e6 };
      };
      // The first answer is stored in the background; wait until hits come.
      for (let i = 0; i < 100 && (await send()).cache !== "HIT"; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      const times = [];
      for (let i = 0; i < 300; i++) {
        const { cache, ms } = await send();
        if (cache !== "HIT") throw new Error(`KV cache bench: x-cache ${cache}`);
        times.push(ms);
      }
      p50[level] = pct(times.sort((a, b) => a - b), 50);
    } finally {
      await gateway.close();
    }
  }
  return p50;
}

/**
 * Jobs, which plain workerd cannot run (it has no queues): the gateway in Miniflare with
 * its local Queues and Durable Objects, one key's jobs on the mock upstream. Measures the
 * submission (c1: auth, checks, admission, the job store, the queue), the time from
 * submission until a poll (every 10 ms) sees `succeeded` (c1; the consumer's
 * max_batch_timeout of 1 s is most of it), and a burst of JOBS_BURST submissions at c16
 * followed until every job has succeeded (jobs per second through the local consumer,
 * which takes one batch of 10 at a time; Cloudflare scales consumers out).
 */
async function jobRuns(upstreamUrl) {
  const { startGateway } = await import("../tests/support/gateway.mjs");
  const admin = "bench-admin-token-0123456789abcdef0123";
  const gateway = await startGateway({
    vars: {
      PROVIDERS: JSON.stringify({ up: { type: "openai", base_url: upstreamUrl, api_key_secret: "UP_KEY" } }),
      ROUTES: JSON.stringify({ bench: { provider: "up", model: "ok" } }),
      RATE_LIMITS: JSON.stringify({ tiers: { free: {} } }),
    },
    secrets: { UP_KEY: "sk-bench", ADMIN_TOKEN: admin },
  });
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const since = (started) => Number(process.hrtime.bigint() - started) / 1e6;
  try {
    const created = await fetch(`${gateway.url}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ principal: "bench-jobs" }),
    });
    const headers = { authorization: `Bearer ${(await created.json()).key}`, "content-type": "application/json" };
    const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: "Say hello to the benchmark." }] });
    const submit = async () => {
      const started = process.hrtime.bigint();
      const response = await fetch(`${gateway.url}/v1/jobs`, { method: "POST", headers, body });
      const job = await response.json();
      if (response.status !== 202) throw new Error(`jobs bench: status ${response.status}: ${JSON.stringify(job)}`);
      return { job, started, ms: since(started) };
    };
    const status = async (job) => {
      const { status } = await (await fetch(job.status_url, { headers })).json();
      if (!["queued", "running", "succeeded"].includes(status)) throw new Error(`jobs bench: job ${status}`);
      return status;
    };
    const submitted = [];
    const done = [];
    for (let i = 0; i < JOB_REQUESTS; i++) {
      const { job, started, ms } = await submit();
      submitted.push(ms);
      while ((await status(job)) !== "succeeded") await sleep(10);
      done.push(since(started));
    }
    const burstStarted = process.hrtime.bigint();
    const pending = [];
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (pending.length < JOBS_BURST) {
          const slot = pending.push(null) - 1;
          pending[slot] = (await submit()).job;
        }
      }),
    );
    for (const job of pending) while ((await status(job)) !== "succeeded") await sleep(10);
    const burstS = since(burstStarted) / 1000;
    submitted.sort((a, b) => a - b);
    done.sort((a, b) => a - b);
    return {
      submitP50: pct(submitted, 50),
      submitP99: pct(submitted, 99),
      doneP50: pct(done, 50),
      burstS,
      perSecond: JOBS_BURST / burstS,
    };
  } finally {
    await gateway.close();
  }
}

/**
 * The tool-call stream bodies, `text:<provider>` and `tool:<provider>`: the same messages
 * and tools, the tool call forced or refused (`tool_choice`).
 */
function toolStreamBodies(messages) {
  // One string argument, as long as the text answer, so both carry about as many bytes.
  const note = Array.from({ length: STREAM_CHUNKS }, (_, i) => ["alpha", "beta", "gamma", "delta"][i % 4]).join(" ");
  const tools = [{ type: "function", function: { name: "record", description: "Records a note.", parameters: { type: "object", properties: { note: { type: "string", enum: [note] } }, required: ["note"] } } }];
  const forced = { type: "function", function: { name: "record" } };
  // The OpenAI mock streams the deltas it is given: the call's name, then its arguments.
  const args = JSON.stringify({ note });
  const deltas = [
    { tool_calls: [{ index: 0, id: "call_bench", type: "function", function: { name: "record", arguments: "" } }] },
    ...piecesOf(args, STREAM_CHUNKS - 1).map((piece) => ({ tool_calls: [{ index: 0, function: { arguments: piece } }] })),
  ];
  const request = (model, toolChoice, metadata) => JSON.stringify({ model, messages, stream: true, tools, tool_choice: toolChoice, ...(metadata ? { metadata } : {}) });
  return {
    "text:openai": request("burst", "none", { chunks: String(STREAM_CHUNKS) }),
    "tool:openai": request("burst", forced, { deltas: JSON.stringify(deltas), finish: "tool_calls" }),
    "text:anthropic": request("burst-claude", "none"),
    "tool:anthropic": request("burst-claude", forced),
    "text:gemini": request("burst-gemini", "none"),
    "tool:gemini": request("burst-gemini", forced),
  };
}

/** Fails the run unless each tool-call stream body is answered as intended. */
async function checkToolStreams(url, bodies) {
  for (const mode of Object.keys(bodies).filter((name) => /^(text|tool):/.test(name))) {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: bodies[mode] });
    const text = await response.text();
    const chunks = text.split("\n\n").filter((event) => event.startsWith("data: {")).map((event) => JSON.parse(event.slice(6)));
    const field = mode.startsWith("tool") ? "tool_calls" : "content";
    const carrying = chunks.filter((chunk) => chunk.choices?.[0]?.delta?.[field]).length;
    if (response.status !== 200 || carrying < STREAM_CHUNKS || !text.endsWith("data: [DONE]\n\n")) {
      throw new Error(`${mode}: ${carrying} chunks with ${field}, not ${STREAM_CHUNKS} (status ${response.status}): ${text.slice(0, 300)}`);
    }
  }
}

async function main() {
  console.log("building the floor Worker (bench/floor)...");
  buildFloor();
  const upstream = await startUpstream();
  const floor = await startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions` });
  // The same Worker returning the upstream's Response object untouched: the least any
  // Worker can cost, the floor the targets are ratios to.
  const passThrough = await startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions`, FLOOR_MODE: "pass-through" });
  // Each read copied into wasm and written back through an IdentityTransformStream by one
  // Rust task: what the body's way through wasm costs without a Rust `Stream` per response.
  const pumped = await startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions`, FLOOR_MODE: "pump" });
  // Piped through a TransformStream whose transform is one synchronous call into wasm.
  const transformed = await startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions`, FLOOR_MODE: "transform" });
  // The same by a loop in JS, one synchronous call into wasm per chunk.
  const jsLooped = await startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions`, FLOOR_MODE: "jsloop" });
  // The body teed: one branch returned untouched, the other read into wasm chunk by chunk.
  const teed = await startWorker(path.join(root, "bench/floor"), { UPSTREAM_URL: `${upstream.url}/chat/completions`, FLOOR_MODE: "tee" });
  // Auth: an RS256 JWT whose key is inline (no KV in plain workerd, so API keys are not
  // measured here); after the first request the imported key is cached in the isolate.
  const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const jwks = { keys: [{ ...publicKey.export({ format: "jwk" }), kid: "bench", alg: "RS256" }] };
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const sign = (claims) => {
    const signingInput = `${b64({ alg: "RS256", kid: "bench" })}.${b64({ iss: "bench", aud: "gateway", exp: Math.floor(Date.now() / 1000) + 86_400, ...claims })}`;
    return `${signingInput}.${crypto.sign("sha256", Buffer.from(signingInput), privateKey).toString("base64url")}`;
  };
  // `free` is unlimited here so the other targets measure no limiter; `limited` has limits
  // far above the load, so every request of `gw+limit` goes through its Durable Object
  // (admission before the upstream call, settlement after) and none is refused.
  const rateLimits = {
    tiers: {
      free: {},
      limited: {
        requests: { limit: 1_000_000_000, window_s: 60 },
        tokens: { limit: 10_000_000_000, window_s: 60 },
        concurrent: 100_000,
        daily_usd: 1_000_000,
      },
    },
  };
  const gatewayBindings = {
    PROVIDERS: JSON.stringify({
      up: { type: "openai", base_url: upstream.url, api_key_secret: "UP_KEY" },
      claude: { type: "anthropic", base_url: upstream.urls.anthropic, api_key_secret: "UP_KEY" },
      google: { type: "gemini", base_url: upstream.urls.gemini, api_key_secret: "UP_KEY" },
    }),
    ROUTES: JSON.stringify({
      bench: { provider: "up", model: "ok" },
      burst: { provider: "up", model: "burst" },
      // The mock Anthropic and Gemini models named `<name>-burst-<n>` answer in one write,
      // their text or tool input in n pieces.
      "burst-claude": { provider: "claude", model: `claude-burst-${STREAM_CHUNKS}` },
      "burst-gemini": { provider: "google", model: `gemini-burst-${STREAM_CHUNKS}` },
    }),
    ANONYMOUS_MODELS: "bench,burst,burst-claude,burst-gemini",
    JWT_JWKS: JSON.stringify(jwks),
    JWT_ISSUER: "bench",
    JWT_AUDIENCE: "gateway",
    RATE_LIMITS: JSON.stringify(rateLimits),
    // Room for the 200 KB hostile texts (the default is 200,000 characters).
    MAX_MESSAGE_CHARS: "250000",
    UP_KEY: "sk-bench",
  };
  const objects = GATEWAY_OBJECTS;
  const gateway = await startWorker(root, gatewayBindings, objects);
  // The same gateway without the METRICS binding: no metrics are recorded or sent.
  const unobserved = await startWorker(root, gatewayBindings, { RATE_LIMITER: "RateLimiter", FEEDBACK: "FeedbackStore" });
  // "Full": a rate-limited JWT tier (admission and settlement in its Durable Object) and
  // personal-data redaction of the answers.
  const full = await startWorker(root, { ...gatewayBindings, REDACT_PII: "output" }, objects);
  // The gateway with every guard off, and with personal-data redaction on both ways (the
  // default gateway sanitizes and runs the injection guard, and redacts nothing).
  const unguarded = await startWorker(root, { ...gatewayBindings, SANITIZE_INPUT: "false", PROMPT_INJECTION: "off" }, objects);
  // Injection findings are flagged, not blocked, so that hostile text is answered (200).
  const redacting = await startWorker(root, { ...gatewayBindings, REDACT_PII: "both", PROMPT_INJECTION: "flag" }, objects);
  const bearer = (claims) => ({ authorization: `Bearer ${sign(claims)}` });
  const targets = {
    direct: { url: `${upstream.url}/chat/completions`, pids: [] },
    pass: { url: passThrough.url, pids: passThrough.pids },
    pump: { url: pumped.url, pids: pumped.pids },
    transform: { url: transformed.url, pids: transformed.pids },
    jsloop: { url: jsLooped.url, pids: jsLooped.pids },
    tee: { url: teed.url, pids: teed.pids },
    floor: { url: floor.url, pids: floor.pids },
    gateway: { url: `${gateway.url}/v1/chat/completions`, pids: gateway.pids },
    "gw-nomet": { url: `${unobserved.url}/v1/chat/completions`, pids: unobserved.pids },
    "gw-guard": { url: `${unguarded.url}/v1/chat/completions`, pids: unguarded.pids },
    "gw+pii": { url: `${redacting.url}/v1/chat/completions`, pids: redacting.pids },
    "gw+jwt": { url: `${gateway.url}/v1/chat/completions`, pids: gateway.pids, headers: bearer({ sub: "bench-user" }) },
    "gw+limit": { url: `${gateway.url}/v1/chat/completions`, pids: gateway.pids, headers: bearer({ sub: "bench-limited", tier: "limited" }) },
    "gw-resp": { url: `${gateway.url}/v1/responses`, pids: gateway.pids },
    "gw-msg": { url: `${gateway.url}/v1/messages`, pids: gateway.pids },
    full: { url: `${full.url}/v1/chat/completions`, pids: full.pids, headers: bearer({ sub: "bench-full", tier: "limited" }) },
  };
  // Every request is checked for status 200 (a refusal fails the run); this one also
  // proves that `gw+limit` goes through the limiter and `gw+jwt` does not.
  const limited = await fetch(targets["gw+limit"].url, { method: "POST", headers: targets["gw+limit"].headers, body: JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }] }) });
  const unlimited = await fetch(targets["gw+jwt"].url, { method: "POST", headers: targets["gw+jwt"].headers, body: JSON.stringify({ model: "bench", messages: [{ role: "user", content: "hi" }] }) });
  if (limited.headers.get("x-ratelimit-limit-requests") !== "1000000000" || unlimited.headers.has("x-ratelimit-limit-requests")) {
    throw new Error(`the limiter is not measured as intended (status ${limited.status}: ${await limited.text()})`);
  }
  const messages = [{ role: "user", content: "Say hello to the benchmark." }];
  const bodies = {
    json: JSON.stringify({ model: "bench", messages }),
    // Deterministic: after the first request every one is a hit in the isolate's cache.
    cached: JSON.stringify({ model: "bench", messages, temperature: 0 }),
    stream: JSON.stringify({ model: "bench", messages, stream: true, metadata: { chunks: String(STREAM_CHUNKS) } }),
    long: JSON.stringify({ model: "burst", messages, stream: true, metadata: { chunks: String(LONG_STREAM_CHUNKS) } }),
    "guard-in": JSON.stringify({ model: "bench", messages: [{ role: "user", content: guardText(GUARD_KB * 1024) }] }),
    "guard-out": JSON.stringify({ model: "burst", messages, stream: true, metadata: { words: JSON.stringify(guardPieces(GUARD_KB * 1024)) } }),
    ...toolStreamBodies(messages),
    "surface:chat": JSON.stringify({ model: "burst-claude", messages, stream: true }),
    // Not stored: the bench's plain workerd has no response store.
    "surface:responses": JSON.stringify({ model: "burst-claude", input: messages, stream: true, store: false }),
    "surface:messages": JSON.stringify({ model: "burst-claude", messages, max_tokens: 1024, stream: true }),
  };
  // Which targets and concurrencies each mode is measured with.
  const plan = {
    // The surfaces' targets (`gw-resp`, `gw-msg`) speak other wire formats: only their own modes.
    json: { concurrencies: [1, 32], targets: Object.keys(targets).filter((name) => ![...PLUMBING_FLOORS, "gw-guard", "gw+pii", "gw-resp", "gw-msg"].includes(name)) },
    cached: { concurrencies: [1, 32], targets: ["direct", "pass", "floor", "gateway"] },
    stream: { concurrencies: [1, 8, 32], targets: Object.keys(targets).filter((name) => !["gw-nomet", "gw-guard", "gw+pii", "gw-resp", "gw-msg"].includes(name)) },
    long: { concurrencies: [1], targets: ["direct", "pass", ...PLUMBING_FLOORS, "floor", "gateway"] },
    "guard-in": { concurrencies: [1], targets: ["direct", "gw-guard", "gateway", "gw+pii"] },
    "guard-out": { concurrencies: [1], targets: ["direct", "gw-guard", "gateway", "gw+pii"] },
    ...Object.fromEntries(Object.keys(toolStreamBodies(messages)).map((mode) => [mode, { concurrencies: [1], targets: ["gateway"], group: "tools" }])),
    ...Object.fromEntries(Object.entries(SURFACES).map(([surface, target]) => [`surface:${surface}`, { concurrencies: [1], targets: [target], group: "surfaces" }])),
  };
  await checkToolStreams(targets.gateway.url, bodies);
  let startFigures = null;
  if (!ONLY || ONLY === "start") {
    startFigures = await isolateStarts(gatewayBindings, objects, upstream, bodies.json);
  }
  if (ONLY === "profile") {
    try {
      await printProfile(gatewayBindings, objects, upstream, bodies);
    } finally {
      for (const worker of [gateway, unobserved, unguarded, redacting, floor, passThrough, pumped, transformed, jsLooped, teed, full, upstream]) worker.close();
    }
    return;
  }

  const results = {}; // key `${target}/${mode}/c${n}` -> list of run results
  let cacheWorkload = null;
  let jobFigures = null;
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const mode of Object.keys(bodies)) {
        for (const concurrency of plan[mode].concurrencies) {
          if (ONLY && !ONLY.split("/").every((part) => [mode, plan[mode].group, `c${concurrency}`].includes(part))) continue;
          for (const name of plan[mode].targets) {
            // The plumbing floors answer the per-chunk question, which c1 settles.
            if (PLUMBING_FLOORS.includes(name) && concurrency !== 1) continue;
            const count = mode === "long" ? LONG_STREAM_REQUESTS : mode.startsWith("guard") ? GUARD_REQUESTS : ["tools", "surfaces"].includes(plan[mode].group) ? TOOL_STREAM_REQUESTS : REQUESTS[concurrency];
            const result = await load(targets[name], bodies[mode], concurrency, count);
            (results[`${name}/${mode}/c${concurrency}`] ??= []).push(result);
          }
        }
      }
      if (!ONLY || ONLY === "hostile") {
        for (const [kb, count] of HOSTILE_SIZES) {
          for (const [shape, text] of hostileBench(kb)) {
            const body = JSON.stringify({ model: "bench", messages: [{ role: "user", content: text }] });
            for (const name of ["gw-guard", "gw+pii"]) {
              (results[`${name}/hostile/${kb}/${shape}`] ??= []).push(await load(targets[name], body, 1, count));
            }
          }
        }
      }
      if (run === RUNS && (!ONLY || ONLY.includes("cached"))) {
        cacheWorkload = { ...(await repeatedPrompts(targets.gateway.url)), kv: await kvHits(upstream.url) };
      }
      if (run === RUNS && (!ONLY || ONLY.includes("jobs"))) {
        jobFigures = await jobRuns(upstream.url);
      }
      console.log(`run ${run}/${RUNS} done`);
    }
  } finally {
    gateway.close();
    unobserved.close();
    unguarded.close();
    redacting.close();
    floor.close();
    passThrough.close();
    pumped.close();
    transformed.close();
    jsLooped.close();
    teed.close();
    full.close();
    upstream.close();
  }

  const m = (key, field) => median((results[key] ?? []).map((r) => r[field]));
  const f = (value, digits = 2) => (value === null ? "-" : value.toFixed(digits));
  console.log(`\nmedian of ${RUNS} runs; stream = ${STREAM_CHUNKS} chunks, long = ${LONG_STREAM_CHUNKS}; latency in ms; CPU = workerd ms per request\n`);
  console.log("mode    conc  target   p50     p99     added p50  added p99  req/s    CPU ms/req");
  const measured = (mode, concurrency) => results[`direct/${mode}/c${concurrency}`] !== undefined;
  for (const mode of Object.keys(bodies)) {
    for (const concurrency of plan[mode].concurrencies) {
      if (!measured(mode, concurrency)) continue;
      const direct = `direct/${mode}/c${concurrency}`;
      for (const name of plan[mode].targets) {
        const key = `${name}/${mode}/c${concurrency}`;
        if (!results[key]) continue;
        const added50 = name === "direct" ? null : m(key, "p50") - m(direct, "p50");
        const added99 = name === "direct" ? null : m(key, "p99") - m(direct, "p99");
        console.log(
          [mode.padEnd(7), String(concurrency).padEnd(5), name.padEnd(8), f(m(key, "p50")).padEnd(7), f(m(key, "p99")).padEnd(7),
            f(added50).padEnd(10), f(added99).padEnd(10), f(m(key, "rps"), 0).padEnd(8), f(m(key, "cpu"), 3)].join(" "),
        );
      }
    }
  }
  console.log("\ngateway / floor:");
  for (const mode of Object.keys(bodies)) {
    for (const concurrency of [1, 8, 32]) {
      if (!measured(mode, concurrency) || !plan[mode].targets.includes("floor")) continue;
      const g = `gateway/${mode}/c${concurrency}`;
      const fl = `floor/${mode}/c${concurrency}`;
      const d = `direct/${mode}/c${concurrency}`;
      const addedRatio = (m(g, "p50") - m(d, "p50")) / (m(fl, "p50") - m(d, "p50"));
      console.log(
        `  ${mode} c${concurrency}: CPU ${f(m(g, "cpu") / m(fl, "cpu"))}x, added p50 ${f(addedRatio)}x, req/s ${f(m(g, "rps") / m(fl, "rps"))}x, first byte p50 ${f(m(g, "ttfb50"))} ms (floor ${f(m(fl, "ttfb50"))} ms)`,
      );
    }
  }
  if (measured("stream", 1)) {
    // What a Worker pays per chunk before it does anything with the bytes: the stream
    // targets are ratios to `pass`, which never reads a chunk.
    console.log(`\nreading each chunk into wasm (CPU per ${STREAM_CHUNKS}-chunk stream, c1, over the pass-through floor's):`);
    for (const name of [...PLUMBING_FLOORS, "floor", "gateway"]) {
      const cpu = m(`${name}/stream/c1`, "cpu");
      console.log(`  ${name.padEnd(9)} ${f(cpu, 3)} ms  ${f(cpu / m("pass/stream/c1", "cpu"))}x pass`);
    }
  }
  printTargets(m, f, measured);
  console.log("\nauth (RS256 JWT, key cached in the isolate) over anonymous requests:");
  for (const mode of ["json", "stream"]) {
    for (const concurrency of [1, 32]) {
      if (!measured(mode, concurrency)) continue;
      const g = `gateway/${mode}/c${concurrency}`;
      const j = `gw+jwt/${mode}/c${concurrency}`;
      console.log(`  ${mode} c${concurrency}: +${f(m(j, "p50") - m(g, "p50"))} ms p50, +${f(m(j, "cpu") - m(g, "cpu"), 3)} ms CPU per request`);
    }
  }
  console.log("\nmetrics (the gateway with its METRICS binding over the same gateway without it):");
  for (const concurrency of [1, 32]) {
    if (!measured("json", concurrency)) continue;
    const g = `gateway/json/c${concurrency}`;
    const n = `gw-nomet/json/c${concurrency}`;
    console.log(`  json c${concurrency}: +${f(m(g, "p50") - m(n, "p50"))} ms p50, +${f(m(g, "cpu") - m(n, "cpu"), 3)} ms CPU per request`);
  }
  console.log("\nrate limiting (one principal's Durable Object: admit + settle) over JWT auth alone:");
  for (const mode of ["json", "stream"]) {
    for (const concurrency of [1, 32]) {
      if (!measured(mode, concurrency)) continue;
      const j = `gw+jwt/${mode}/c${concurrency}`;
      const l = `gw+limit/${mode}/c${concurrency}`;
      console.log(`  ${mode} c${concurrency}: +${f(m(l, "p50") - m(j, "p50"))} ms p50, +${f(m(l, "cpu") - m(j, "cpu"), 3)} ms CPU per request`);
    }
  }
  if (measured("long", 1)) {
    // The floor pays the same runtime and I/O per chunk; what the gateway adds is its
    // parsing, translation and re-encoding.
    const added = (mode) => m(`gateway/${mode}/c1`, "cpu") - m(`floor/${mode}/c1`, "cpu");
    console.log(`\ntranslation (a ${LONG_STREAM_CHUNKS}-chunk stream the upstream sends in one write, c1, gateway CPU over the floor's):`);
    console.log(`  +${f(added("long"), 3)} ms CPU per stream (gateway ${f(m("gateway/long/c1", "cpu"), 3)}, floor ${f(m("floor/long/c1", "cpu"), 3)}), ${f(added("long") / LONG_STREAM_CHUNKS, 4)} ms per chunk`);
  }
  if (results["gateway/text:openai/c1"]) {
    console.log(`\ntool calls in streams (${STREAM_CHUNKS} chunks the upstream sends in one write, c1; gateway CPU per chunk; target: a tool call ≤ 1.00x text):`);
    for (const provider of TOOL_STREAM_PROVIDERS) {
      const perChunk = (kind) => m(`gateway/${kind}:${provider}/c1`, "cpu") / STREAM_CHUNKS;
      const shape = provider === "gemini" ? `${STREAM_CHUNKS} functionCall parts` : `one call's arguments in ${STREAM_CHUNKS} pieces`;
      console.log(`  ${provider.padEnd(9)} text ${f(perChunk("text"), 4)} ms, tool call ${f(perChunk("tool"), 4)} ms (${f(perChunk("tool") / perChunk("text"))}x; ${shape})`);
    }
  }
  if (results["gateway/surface:chat/c1"]) {
    console.log(`\nfront doors (the same ${STREAM_CHUNKS}-chunk Anthropic stream sent in one write, c1; gateway CPU per stream; target: each surface ≤ 1.10x chat completions):`);
    const cpu = (surface) => m(`${SURFACES[surface]}/surface:${surface}/c1`, "cpu");
    for (const surface of Object.keys(SURFACES)) {
      console.log(`  ${surface.padEnd(10)} ${f(cpu(surface), 3)} ms (${f(cpu(surface) / cpu("chat"))}x chat completions)`);
    }
  }
  if (measured("guard-in", 1) || measured("guard-out", 1)) {
    // CPU per request of one gateway over another's, per KB guarded.
    const over = (mode, name, base) => (m(`${name}/${mode}/c1`, "cpu") - m(`${base}/${mode}/c1`, "cpu")) / GUARD_KB;
    console.log(`\nguards (${GUARD_KB} KB of text per request, c1, CPU per KB):`);
    if (measured("guard-in", 1)) {
      console.log(`  input, sanitizing + injection guard (the default), over every guard off: ${f(over("guard-in", "gateway", "gw-guard"), 4)} ms per KB`);
      console.log(`  input, + personal-data redaction (REDACT_PII=both), over every guard off: ${f(over("guard-in", "gw+pii", "gw-guard"), 4)} ms per KB`);
    }
    if (measured("guard-out", 1)) {
      console.log(`  streamed output, personal-data redaction, over the default gateway: ${f(over("guard-out", "gw+pii", "gateway"), 4)} ms per KB`);
    }
  }
  if (results[`gw+pii/hostile/${HOSTILE_SIZES[0][0]}/benign corpus`]) {
    // Every input guard (sanitizing, the injection detector, redaction of the request)
    // over none, per KB of the user message, c1.
    console.log("\nguards on hostile text (every input guard, REDACT_PII=both, over every guard off; CPU ms per KB, c1):");
    console.log(`  ${"text".padEnd(30)} ${HOSTILE_SIZES.map(([kb]) => `${kb} KB`.padStart(9)).join(" ")}`);
    const perKb = (kb, shape) => (m(`gw+pii/hostile/${kb}/${shape}`, "cpu") - m(`gw-guard/hostile/${kb}/${shape}`, "cpu")) / kb;
    const shapes = hostileBench(1).map(([shape]) => shape);
    for (const shape of shapes) {
      console.log(`  ${shape.padEnd(30)} ${HOSTILE_SIZES.map(([kb]) => f(perKb(kb, shape), 4).padStart(9)).join(" ")}`);
    }
    const worst = HOSTILE_SIZES.map(([kb]) => Math.max(...shapes.slice(1).map((shape) => perKb(kb, shape))) / Math.max(perKb(kb, shapes[0]), 1e-3));
    console.log(`  ${"worst hostile / benign".padEnd(30)} ${worst.map((ratio) => `${f(ratio)}x`.padStart(9)).join(" ")}`);
  }
  if (cacheWorkload) {
    const { hits, total, hitP50, missP50, kv } = cacheWorkload;
    console.log(`\ncache (gateway, anonymous, isolate level; plain workerd has no KV):`);
    for (const concurrency of [1, 32]) {
      if (!measured("cached", concurrency)) continue;
      const added = m(`gateway/cached/c${concurrency}`, "p50") - m(`floor/cached/c${concurrency}`, "p50");
      console.log(`  every request a hit, c${concurrency}: p50 ${f(m(`gateway/cached/c${concurrency}`, "p50"))} ms, ${added >= 0 ? "+" : ""}${f(added)} ms over the floor's p50 (which calls the upstream), CPU ${f(m(`gateway/cached/c${concurrency}`, "cpu"), 3)} ms/req`);
    }
    console.log(`  repeated-prompt workload (${total} requests, ${CACHE_PROMPTS} prompts, Zipf s=1, c1): hit ratio ${f(hits / total)}, p50 hit ${f(hitP50)} ms, p50 miss ${f(missP50)} ms`);
    console.log(`  KV level (Miniflare, local KV, c1, 300 hits): p50 ${f(kv.kv)} ms from KV vs ${f(kv.isolate)} ms from the isolate: +${f(kv.kv - kv.isolate)} ms`);
  }
  if (jobFigures) {
    const { submitP50, submitP99, doneP50, burstS, perSecond } = jobFigures;
    console.log(`\njobs (Miniflare, local Queues and Durable Objects; plain workerd has no queues):`);
    console.log(`  submission, c1 (${JOB_REQUESTS}): p50 ${f(submitP50)} ms, p99 ${f(submitP99)} ms`);
    console.log(`  submission to a polled "succeeded", c1: p50 ${f(doneP50)} ms (the queue's max_batch_timeout is 1 s)`);
    console.log(`  burst of ${JOBS_BURST} at c16, until all succeeded: ${f(burstS)} s, ${f(perSecond, 1)} jobs/s`);
  }
  if (startFigures) {
    console.log(`\nisolate start (a fresh workerd per start, ${START_RUNS} starts, medians; target: first request ≤ 50 ms):`);
    for (const [name, figures] of Object.entries(startFigures)) {
      console.log(`  ${name.padEnd(8)} process start to listening ${f(figures.listening, 1)} ms, first request (wasm compiled, config loaded) ${f(figures.first, 1)} ms, second ${f(figures.second, 1)} ms: ${figures.first <= 50 ? "ok" : "MISSED"}`);
    }
    console.log("  the first request's wasm compilation (V8's compile trace, one more start each):");
    for (const [name, { compiled }] of Object.entries(startFigures)) {
      const tier = (label, figures) => (figures ? `${label} ${figures.functions} functions, ${f(figures.kb, 0)} KB of code, ${f(figures.ms, 1)} ms` : `${label} none`);
      console.log(`    ${name.padEnd(8)} ${tier("Liftoff (on the request's thread)", compiled.Liftoff)}; ${tier("TurboFan (in the background)", compiled.TurboFan)}`);
    }
    console.log("  every function compiled before the socket opens instead (--no-wasm-lazy-compilation, one more start each):");
    for (const [name, { eager }] of Object.entries(startFigures)) {
      console.log(`    ${name.padEnd(8)} process start to listening ${f(eager.listening, 1)} ms, first request ${f(eager.first, 1)} ms, second ${f(eager.second, 1)} ms`);
    }
  }
  const gatewayWasm = gzippedKb(path.join(root, "build/index_bg.wasm"));
  const floorWasm = gzippedKb(path.join(root, "bench/floor/build/index_bg.wasm"));
  console.log(`\nwasm gzipped: gateway ${f(gatewayWasm, 1)} KB, floor ${f(floorWasm, 1)} KB (${f(gatewayWasm / floorWasm)}x)`);
}

await main();
