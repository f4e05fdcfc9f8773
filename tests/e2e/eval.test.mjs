// `make eval` end to end: the sample suite passes on the built-in mock; a suite whose
// answers miss what they must say fails below the threshold with per-case results; bad
// suites and refused requests are reported, never counted as passes.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { startGateway } from "../support/gateway.mjs";

const run = promisify(execFile);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "eval-"));

/** Runs the eval CLI; its exit code, output and results file. */
async function evaluate(args) {
  const out = path.join(dir, `results-${Math.random().toString(16).slice(2)}.json`);
  let code = 0;
  let stdout = "";
  let stderr = "";
  try {
    ({ stdout, stderr } = await run("node", ["eval/run.mjs", ...args, "--out", out]));
  } catch (error) {
    ({ code, stdout, stderr } = error);
  }
  const results = fs.existsSync(out) ? JSON.parse(fs.readFileSync(out, "utf8")) : null;
  return { code, stdout, stderr, results };
}

function suite(name, cases) {
  const file = path.join(dir, `${name}.jsonl`);
  fs.writeFileSync(file, cases.map((entry) => (typeof entry === "string" ? entry : JSON.stringify(entry))).join("\n"));
  return file;
}

describe("regression evals", () => {
  let gateway;
  before(async () => {
    gateway = await startGateway({ vars: { ANONYMOUS_MODELS: "mock", MOCK_CHUNKS: "48", MOCK_CHUNK_DELAY_MS: "0" } });
  });
  after(() => gateway?.close());

  test("the sample suite passes on the built-in mock, every case and check recorded", async () => {
    const { code, stdout, results } = await evaluate(["--url", gateway.url]);
    assert.equal(code, 0, stdout);
    assert.equal(results.summary.pass_rate, 1);
    assert.equal(results.summary.cases, 5);
    const schema = results.results.find((result) => result.id === "answers-in-json");
    assert.deepEqual(schema.checks, [{ check: "schema", passed: true }]);
    for (const result of results.results) {
      assert.equal(result.passed, true);
      assert.match(result.request_id, /^[0-9a-f]{32}$/);
      assert.ok(result.usage.completion_tokens > 0);
    }
    // The requests went through the gateway, bypassing its cache.
    const line = await gateway.logFor(results.results[0].request_id);
    assert.equal(line.cache, "bypass");
  });

  test("answers that miss their checks fail the run below the threshold", async () => {
    const cases = suite("regressed", [
      { id: "fine", prompt: "Say hello", expect: ["hello"] },
      { id: "wrong-fact", prompt: "What is the capital of France?", expect: ["Paris"], forbid: ["mock"] },
      { id: "not-json", prompt: "Give me JSON", schema: { type: "object" } },
    ]);
    const failed = await evaluate(["--url", gateway.url, "--cases", cases]);
    assert.equal(failed.code, 1, failed.stdout);
    assert.match(failed.stdout, /FAIL {2}wrong-fact/);
    assert.equal(failed.results.summary.passed, 1);
    assert.equal(failed.results.summary.pass_rate, 1 / 3);
    const wrong = failed.results.results.find((result) => result.id === "wrong-fact");
    assert.deepEqual(wrong.checks.map((check) => [check.check, check.passed]), [["expect", false], ["forbid", false]]);
    assert.equal(wrong.score, 0);
    const notJson = failed.results.results.find((result) => result.id === "not-json");
    assert.equal(notJson.checks[0].detail, "the answer holds no JSON");
    const lenient = await evaluate(["--url", gateway.url, "--cases", cases, "--threshold", "0.3"]);
    assert.equal(lenient.code, 0);
  });

  test("refused requests fail their cases, and unusable suites exit 2", async () => {
    const cases = suite("refused", [{ id: "locked", model: "gpt-4o", prompt: "hi", expect: ["hi"] }]);
    const refused = await evaluate(["--url", gateway.url, "--cases", cases, "--key", "sk-gw-not-a-real-key"]);
    assert.equal(refused.code, 1);
    const [locked] = refused.results.results;
    assert.equal(locked.passed, false);
    assert.equal(locked.error.status, 401);
    assert.equal(locked.error.code, "invalid_api_key");
    for (const [lines, problem] of [
      [["{not json"], /not a JSON object/],
      [[{ id: "a", prompt: "x" }, { id: "a", prompt: "y" }], /used twice/],
      [[{ id: "a" }], /prompt or messages/],
      [[{ id: "a", prompt: "x", expect: [{ regex: "(" }] }], /bad regex/],
      [[{ id: "a", prompt: "x", schema: { type: "no-such-type" } }], /schema is not valid/],
    ]) {
      const bad = await evaluate(["--url", gateway.url, "--cases", suite("bad", lines)]);
      assert.equal(bad.code, 2, bad.stdout);
      assert.match(bad.stderr, problem);
      assert.equal(bad.results, null);
    }
  });
});
