// Regression evals: runs a JSONL suite of cases through a gateway route, scores every
// answer, writes the per-case results as JSON and exits non-zero when the pass rate is
// below the threshold, so that a change of model, route or prompt that makes answers
// worse does not ship.
//
//   node eval/run.mjs [--cases FILE] [--url URL] [--key KEY] [--model ALIAS]
//                     [--threshold 0.95] [--out FILE] [--concurrency 4] [--timeout-ms 60000]
//
// Without --url (or EVAL_URL) it starts the built Worker locally in workerd, on the
// built-in mock provider. --key (or EVAL_API_KEY) is the gateway key or JWT to call with.
//
// A case is one JSON object per line:
//   id         a name, unique in the suite
//   prompt     the user message, or
//   messages   the whole conversation (Chat Completions messages)
//   model      the alias to ask (default: --model, else "mock")
//   expect     strings the answer must contain (case-insensitive) or {"regex": "..."}
//   forbid     the same, for what the answer must not contain
//   schema     a JSON Schema (2020-12) the answer's JSON must satisfy: the whole answer,
//              else its first ```json block, else the span from its first { or [ to
//              where that closes
//   max_tokens, temperature (default 0): passed on
// A case passes when its request succeeds and every check holds; its score is the share
// of checks that hold.
//
// Exit codes: 0 the pass rate reached the threshold, 1 it did not, 2 the suite or the
// arguments could not be used.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Ajv2020 from "ajv/dist/2020.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The options, from the command line and the environment. */
function options() {
  const { values } = parseArgs({
    options: {
      cases: { type: "string", default: path.join(root, "eval/cases/sample.jsonl") },
      url: { type: "string", default: process.env.EVAL_URL },
      key: { type: "string", default: process.env.EVAL_API_KEY },
      model: { type: "string", default: "mock" },
      threshold: { type: "string", default: "0.95" },
      out: { type: "string", default: path.join(root, "test-artifacts/eval-results.json") },
      concurrency: { type: "string", default: "4" },
      "timeout-ms": { type: "string", default: "60000" },
    },
  });
  const threshold = Number(values.threshold);
  const concurrency = Number(values.concurrency);
  const timeoutMs = Number(values["timeout-ms"]);
  if (!(threshold >= 0 && threshold <= 1)) throw new UsageError("--threshold is a number from 0 to 1");
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError("--concurrency is a positive integer");
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new UsageError("--timeout-ms is a positive integer");
  return { ...values, threshold, concurrency, timeoutMs };
}

class UsageError extends Error {}

const ajv = new Ajv2020({ strict: false, allErrors: true });

/** The suite's cases, checked: every problem names its line. */
function readCases(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${error.message}`);
  }
  const cases = [];
  const ids = new Set();
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    const where = `${file}:${index + 1}`;
    let entry;
    try {
      entry = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not a JSON object`);
    }
    if (typeof entry?.id !== "string" || entry.id === "") throw new UsageError(`${where}: a case needs an id`);
    if (ids.has(entry.id)) throw new UsageError(`${where}: the id ${entry.id} is used twice`);
    ids.add(entry.id);
    if ((typeof entry.prompt === "string") === Array.isArray(entry.messages)) throw new UsageError(`${where}: give prompt or messages, one of them`);
    for (const field of ["expect", "forbid"]) {
      const patterns = entry[field] ?? [];
      if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === "string" || typeof p?.regex === "string")) {
        throw new UsageError(`${where}: ${field} is a list of strings or {"regex": ...}`);
      }
      for (const pattern of patterns) if (pattern.regex !== undefined) compile(pattern.regex, where);
    }
    if (entry.schema !== undefined) {
      try {
        entry.validate = ajv.compile(entry.schema);
      } catch (error) {
        throw new UsageError(`${where}: the schema is not valid: ${error.message}`);
      }
    }
    cases.push(entry);
  });
  if (cases.length === 0) throw new UsageError(`${file} has no cases`);
  return cases;
}

function compile(source, where) {
  try {
    return new RegExp(source, "i");
  } catch (error) {
    throw new UsageError(`${where}: bad regex ${source}: ${error.message}`);
  }
}

/** Whether `answer` matches one expect/forbid pattern. */
function matches(answer, pattern) {
  if (typeof pattern === "string") return answer.toLowerCase().includes(pattern.toLowerCase());
  return new RegExp(pattern.regex, "i").test(answer);
}

/** The answer's JSON: all of it, else its first ```json block, else its first {...} or [...]. */
function jsonOf(answer) {
  const attempts = [answer.trim()];
  const fenced = /```(?:json)?\s*\n([\s\S]*?)```/.exec(answer);
  if (fenced) attempts.push(fenced[1]);
  // Only the first bracket is followed, so the search stays one pass over the answer.
  const start = answer.search(/[{[]/);
  const end = start < 0 ? -1 : closingOf(answer, start);
  if (end > start) attempts.push(answer.slice(start, end + 1));
  for (const text of attempts) {
    try {
      return { found: true, value: JSON.parse(text) };
    } catch {
      // the next candidate
    }
  }
  return { found: false };
}

/** Where the bracket opened at `start` closes (strings skipped), or -1. One pass. */
function closingOf(text, start) {
  let depth = 0;
  let inString = false;
  for (let at = start; at < text.length; at++) {
    const c = text[at];
    if (inString) {
      if (c === "\\") at++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return at;
    }
  }
  return -1;
}

/** The checks of one case against `answer`. */
function score(entry, answer) {
  const checks = [];
  for (const pattern of entry.expect ?? []) checks.push({ check: "expect", pattern, passed: matches(answer, pattern) });
  for (const pattern of entry.forbid ?? []) checks.push({ check: "forbid", pattern, passed: !matches(answer, pattern) });
  if (entry.validate) {
    const json = jsonOf(answer);
    const passed = json.found && entry.validate(json.value);
    const detail = !json.found ? "the answer holds no JSON" : passed ? undefined : ajv.errorsText(entry.validate.errors);
    checks.push({ check: "schema", passed, ...(detail ? { detail } : {}) });
  }
  return checks;
}

/** Runs one case through the gateway. */
async function run(entry, settings) {
  const started = Date.now();
  const messages = entry.messages ?? [{ role: "user", content: entry.prompt }];
  const body = { model: entry.model ?? settings.model, messages, temperature: entry.temperature ?? 0 };
  if (entry.max_tokens !== undefined) body.max_tokens = entry.max_tokens;
  const headers = { "content-type": "application/json", "x-gateway-cache": "off" };
  if (settings.key) headers.authorization = `Bearer ${settings.key}`;
  const result = { id: entry.id, model: body.model };
  try {
    const response = await fetch(`${settings.url}/v1/chat/completions`, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
    result.request_id = response.headers.get("x-request-id");
    const payload = await response.json().catch(() => null);
    if (!response.ok) {
      const error = payload?.error ?? {};
      result.error = { status: response.status, code: error.code ?? null, message: error.message ?? "no error object" };
    } else {
      const choice = payload.choices?.[0];
      const answer = choice?.message?.content ?? choice?.message?.refusal ?? "";
      result.finish_reason = choice?.finish_reason ?? null;
      result.usage = payload.usage ?? null;
      result.checks = score(entry, answer);
      result.answer = answer.length > 2_000 ? `${answer.slice(0, 2_000)}…` : answer;
    }
  } catch (error) {
    result.error = { status: null, code: error.name === "TimeoutError" ? "timeout" : "unreachable", message: error.message };
  }
  const checks = result.checks ?? [];
  const held = checks.filter((check) => check.passed).length;
  result.passed = !result.error && held === checks.length;
  result.score = result.error ? 0 : checks.length === 0 ? 1 : held / checks.length;
  result.latency_ms = Date.now() - started;
  return result;
}

/** `items` through `work`, at most `limit` at a time, results in input order. */
async function pool(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

async function main() {
  const settings = options();
  const cases = readCases(settings.cases);
  let local;
  if (!settings.url) {
    // The built Worker in workerd, on the built-in mock; long enough answers to quote the prompt.
    const { startGateway } = await import("../tests/support/gateway.mjs");
    local = await startGateway({ vars: { ANONYMOUS_MODELS: "mock", MOCK_CHUNKS: "48", MOCK_CHUNK_DELAY_MS: "0" } });
    settings.url = local.url;
  }
  settings.url = settings.url.replace(/\/$/, "");
  const started = Date.now();
  try {
    const results = await pool(cases, settings.concurrency, (entry) => run(entry, settings));
    const passed = results.filter((result) => result.passed).length;
    const summary = {
      suite: path.relative(root, path.resolve(settings.cases)),
      url: local ? "local (built-in mock)" : settings.url,
      cases: results.length,
      passed,
      failed: results.length - passed,
      pass_rate: passed / results.length,
      mean_score: results.reduce((sum, result) => sum + result.score, 0) / results.length,
      threshold: settings.threshold,
      duration_ms: Date.now() - started,
    };
    fs.mkdirSync(path.dirname(settings.out), { recursive: true });
    fs.writeFileSync(settings.out, `${JSON.stringify({ summary, results }, null, 2)}\n`);
    for (const result of results) {
      const why = result.error ? `${result.error.code ?? result.error.status}: ${result.error.message}` : result.checks.filter((c) => !c.passed).map((c) => `${c.check} ${JSON.stringify(c.pattern ?? c.detail)}`).join("; ");
      console.log(`${result.passed ? "pass" : "FAIL"}  ${result.id}${result.passed ? "" : `  (${why})`}`);
    }
    const verdict = summary.pass_rate >= settings.threshold ? "ok" : "below the threshold";
    console.log(`\n${passed}/${results.length} passed: pass rate ${summary.pass_rate.toFixed(3)} (threshold ${settings.threshold}) — ${verdict}; results in ${path.relative(process.cwd(), settings.out)}`);
    return summary.pass_rate >= settings.threshold ? 0 : 1;
  } finally {
    await local?.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof UsageError ? `eval: ${error.message}` : error);
    process.exit(2);
  },
);
