// The benchmark's processes: the mock upstreams (their own Node process) and each Worker
// bundle in its own plain `workerd serve`, with the CPU their processes used (from /proc).
// Shared by `make bench` (run.mjs) and the A/B comparison of two builds (ab.mjs).

import { fork, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const CLK_TCK = 100; // Linux USER_HZ: /proc times are in 1/100 s.

/**
 * Every Durable Object the default deployment binds that plain workerd can serve (the
 * feedback store is written after every answered request), by binding name.
 */
export const GATEWAY_OBJECTS = { RATE_LIMITER: "RateLimiter", METRICS: "MetricsShard", FEEDBACK: "FeedbackStore" };

/** The mock upstreams' process: `url` is OpenAI's, `urls` every provider's. */
export function startUpstream() {
  const child = fork(path.join(root, "bench/upstream.mjs"), [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
  return new Promise((resolve, reject) => {
    child.once("message", (urls) => resolve({ url: urls.openai, urls, close: () => child.kill() }));
    child.once("error", reject);
  });
}

const WORKERD = path.join(root, "node_modules/@cloudflare/workerd-linux-64/bin/workerd");
const COMPATIBILITY_DATE = "2026-04-26";

/**
 * Starts a built Worker (`dir/build`) in its own `workerd serve`; returns its URL and pid.
 * `durableObjects` maps binding names to SQLite-backed Durable Object classes the Worker
 * exports; their storage is a temporary directory. `v8Flags` go to the isolate's V8;
 * with `keepOutput`, what workerd prints (the Worker's logs, V8's traces) is kept for
 * `output()` instead of discarded.
 */
export async function startWorker(dir, bindings, durableObjects = {}, { inspector = false, v8Flags = [], keepOutput = false } = {}) {
  const port = await freePort();
  const inspectorPort = inspector ? await freePort() : null;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "bench-workerd-"));
  fs.mkdirSync(path.join(work, "do"));
  const text = (value) => JSON.stringify(String(value)); // a valid Cap'n Proto text literal
  const embed = (file) => text(path.relative(work, path.join(dir, file))); // relative to the config
  const textBindings = Object.entries(bindings).map(([name, value]) => `(name = ${text(name)}, text = ${text(value)})`);
  const objectBindings = Object.entries(durableObjects).map(([name, className]) => `(name = ${text(name)}, durableObjectNamespace = ${text(className)})`);
  const namespaces = Object.values(durableObjects).map((className) => `(className = ${text(className)}, uniqueKey = ${text(`bench-${className}`)}, enableSql = true)`);
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "internet", network = (allow = ["public", "private", "local"])),
    (name = "do-storage", disk = (path = ${text(path.join(work, "do"))}, writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
  v8Flags = [${v8Flags.map(text).join(", ")}],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed ${embed("build/index.js")}),
    (name = "index_bg.wasm", wasm = embed ${embed(inspector ? "target/wasm-with-names/index_bg.wasm" : "build/index_bg.wasm")}),
  ],
  compatibilityDate = ${text(COMPATIBILITY_DATE)},
  compatibilityFlags = ["enable_request_signal"],
  bindings = [${[...textBindings, ...objectBindings].join(", ")}],
  durableObjectNamespaces = [${namespaces.join(", ")}],
  durableObjectStorage = (localDisk = "do-storage"),
);
`;
  const configPath = path.join(work, "config.capnp");
  fs.writeFileSync(configPath, config);
  // The Worker's console output (the gateway logs one line per request) is discarded
  // unless asked for.
  const args = ["serve", configPath, ...(inspector ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [])];
  const child = spawn(WORKERD, args, { stdio: ["ignore", keepOutput ? "pipe" : "ignore", "inherit"] });
  let printed = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk) => (printed += chunk));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`workerd exited (${code})`))));
  await Promise.race([waitForPort(port), exited]);
  return {
    url,
    pids: [child.pid],
    // The isolate's inspector (workerd names it after the service).
    inspectorUrl: inspector ? `ws://127.0.0.1:${inspectorPort}/main` : null,
    output: () => printed,
    close: () => {
      child.kill();
      fs.rmSync(work, { recursive: true, force: true });
    },
  };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`workerd did not listen on ${port} within ${ms} ms`);
}

/** utime + stime of the processes (all their threads), in ms. */
export function cpuMs(pids) {
  let ticks = 0;
  for (const pid of pids) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
  }
  return (ticks * 1000) / CLK_TCK;
}
