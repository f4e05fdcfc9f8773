// A strict reader of the Prometheus text exposition format, for the suites that check
// /metrics.

import assert from "node:assert/strict";

/**
 * Parses Prometheus text exposition 0.0.4 strictly: every sample line is
 * `name{label="value",...} number`, every metric has `# HELP` and `# TYPE` first, and
 * histogram buckets are cumulative up to `+Inf` = `_count`. Returns samples by
 * `name{labels}`.
 */
export function parsePrometheus(text) {
  const samples = new Map();
  const typed = new Map();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (comment) {
      if (comment[1] === "TYPE") typed.set(comment[2], comment[3]);
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+-]+|\+Inf|NaN)$/.exec(line);
    assert.ok(sample, `not a sample line: ${line}`);
    const base = sample[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(sample[1]) || typed.get(base) === "histogram", `no TYPE before ${sample[1]}`);
    samples.set(`${sample[1]}${sample[2] ?? ""}`, Number(sample[3]));
  }
  for (const [name, type] of typed) {
    if (type !== "histogram") continue;
    const series = new Map();
    for (const [key, value] of samples) {
      const bucket = new RegExp(`^${name}_bucket\\{(.*?),?le="([^"]+)"\\}$`).exec(key);
      if (bucket) (series.get(bucket[1]) ?? series.set(bucket[1], []).get(bucket[1])).push(value);
    }
    for (const [labels, counts] of series) {
      for (let i = 1; i < counts.length; i++) assert.ok(counts[i] >= counts[i - 1], `${name} buckets are cumulative`);
      assert.equal(counts.at(-1), samples.get(`${name}_count{${labels}}`), `${name} +Inf = count`);
    }
  }
  return samples;
}
