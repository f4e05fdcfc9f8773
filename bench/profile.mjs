// Where a Worker's CPU goes, stage by stage: a V8 CPU profile of its workerd isolate
// (through workerd's inspector, the Chrome DevTools protocol) while it answers a load,
// with the wasm's function names kept, each sample's self time put in the stage its
// function belongs to.

import fs from "node:fs";
import path from "node:path";
import WebSocket from "ws";

/**
 * The stages, in print order: a name and the test a profile node's function name, script
 * URL and the bundle's name for the stream relay loop must pass. The first stage that
 * matches takes the sample.
 */
const STAGES = [
  ["V8 idle", (name) => name === "(idle)"],
  ["garbage collection", (name) => name === "(garbage collector)"],
  ["runtime, native (workerd I/O, V8)", (name) => name === "(program)"],
  ["SSE parse", (name, wasm) => wasm && /upstream::sse::/.test(name)],
  ["translate (provider → events)", (name, wasm) => wasm && /upstream::(openai|anthropic|gemini|translate|mock)|StreamDecoder/.test(name)],
  ["JSON parse", (name, wasm) => wasm && /serde_json::de|serde_core::de|Deserialize|serde_json::read/.test(name)],
  ["guards, redaction", (name, wasm) => wasm && /guard::|guard_scan::|output::redaction|regex_lite/.test(name)],
  ["encode (events → client SSE)", (name, wasm) => wasm && /output::|serde_json::ser|Serialize|api::(messages|responses|chat)::|ryu|itoa/.test(name)],
  ["log, metrics, traces, feedback", (name, wasm) => wasm && /observe::|platform::(metrics|otlp|feedback)/.test(name)],
  ["limiter, settlement", (name, wasm) => wasm && /limit::|platform::limiter/.test(name)],
  ["stream pump, timers (read, write, idle limit)", (name, wasm) => wasm && /pipeline::(stream|ports)|platform::(stream|fetch|ports)|Delay|futures_util/.test(name)],
  ["allocation, copies", (name, wasm) => wasm && /dlmalloc|alloc::|__rust_alloc|__rust_dealloc|__rust_realloc|memcpy|memmove|memset|RawVec|__wbindgen_malloc|__wbindgen_free|__wbindgen_realloc/.test(name)],
  ["formatting", (name, wasm) => wasm && /core::fmt/.test(name)],
  ["Rust async, bindings (futures, wasm-bindgen, worker)", (name, wasm) => wasm && /js_sys::|wasm_bindgen|web_sys::|worker::|externref|closure/.test(name)],
  ["other gateway code", (name, wasm) => wasm],
  ["JS↔wasm transitions", (name) => /^(js-to-wasm|wasm-to-js)/.test(name)],
  // V8 charges the runtime's reads and writes to the JS that calls them: here, the loop.
  ["relay loop (JS, with the runtime's read and write)", (name, wasm, url, relay) => url.endsWith("index.js") && name === relay],
  ["JS glue (index.js: bindings, worker shim)", (name, wasm, url) => url.endsWith("index.js")],
  ["runtime builtins (streams, promises, Response, fetch)", () => true],
];

/** A CDP session on the inspector WebSocket `url`. */
async function connect(url) {
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  let next = 0;
  const waiting = new Map();
  socket.on("message", (data) => {
    const message = JSON.parse(data);
    waiting.get(message.id)?.(message);
    waiting.delete(message.id);
  });
  return {
    call(method, params = {}) {
      const id = ++next;
      return new Promise((resolve, reject) => {
        waiting.set(id, (message) => (message.error ? reject(new Error(`${method}: ${message.error.message}`)) : resolve(message.result)));
        socket.send(JSON.stringify({ id, method, params }));
      });
    },
    close: () => socket.close(),
  };
}

/**
 * The name that the bundle of the Worker in `dir` (its build/index.js, minified) gives the
 * gateway's stream relay loop (`relayBody` in src/platform/stream.rs): the async function
 * that holds its "out_of_time" cause. `null` for a bundle without one.
 */
export function relayLoopName(dir) {
  const bundle = fs.readFileSync(path.join(dir, "build/index.js"), "utf8");
  const cause = bundle.indexOf('"out_of_time"');
  if (cause < 0) return null;
  const start = bundle.lastIndexOf("async function ", cause);
  return start < 0 ? null : (/^async function ([\w$]+)/.exec(bundle.slice(start))?.[1] ?? null);
}

/**
 * Profiles the isolate behind `inspectorUrl` while `work()` runs, `relay` naming the
 * bundle's stream relay loop (see `relayLoopName`); returns milliseconds of
 * self time per stage, and per function for the top of the list.
 */
export async function profileStages(inspectorUrl, work, relay) {
  const session = await connect(inspectorUrl);
  try {
    await session.call("Profiler.enable");
    await session.call("Profiler.setSamplingInterval", { interval: 50 });
    await session.call("Profiler.start");
    await work();
    const { profile } = await session.call("Profiler.stop");
    const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
    const stages = new Map(STAGES.map(([name]) => [name, 0]));
    const functions = new Map();
    profile.samples.forEach((sample, index) => {
      const { functionName, url } = nodes.get(sample).callFrame;
      const name = functionName || "(anonymous)";
      const wasm = url.includes(".wasm");
      const [stage] = STAGES.find(([, test]) => test(name, wasm, url, relay));
      const ms = (profile.timeDeltas[index] ?? 0) / 1000;
      stages.set(stage, stages.get(stage) + ms);
      if (stage !== "V8 idle") functions.set(name, (functions.get(name) ?? 0) + ms);
    });
    return { stages, functions };
  } finally {
    session.close();
  }
}
