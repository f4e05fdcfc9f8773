//! Counters and histograms about requests, derived from each request's log line, merged
//! across isolates and rendered in the Prometheus text exposition format.
//!
//! A [`Metrics`] is a plain value: isolates fill one per batch ([`Metrics::record`]),
//! the metrics Durable Object shards [`Metrics::merge`] the batches, and `/metrics`
//! merges the shards and [`Metrics::render`]s the result. Series are keyed by their
//! rendered label set, so merging is adding numbers under equal keys.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::log::{CacheResult, FeedbackLog, RequestLog};
use super::quality::AnswerQuality;
use crate::api::feedback::ScoreTally;
use crate::limit::period::{day_key, month_key};
use crate::sorted_map::SortedMap;

/// Request durations and times to first token, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// User ratings, 1 to 5.
const SCORE_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 4.0, 5.0];
/// Completion tokens of one answer.
const ANSWER_TOKEN_BUCKETS: &[f64] = &[1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0];
/// Completion tokens per prompt token.
const RATIO_BUCKETS: &[f64] = &[0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0];
/// Completion tokens per second of generation.
const SPEED_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// The most series one metric keeps (in an isolate's batch and in a shard); the series of
/// further label sets are counted together in one [`OVERFLOW_SERIES`] series, so nothing
/// a client or an upstream names can grow a shard without bound.
pub const MAX_SERIES_PER_METRIC: usize = 2_000;
/// The label set of the series that counts what did not fit.
pub const OVERFLOW_SERIES: &str = "overflow=\"true\"";
/// The most teams whose usage one batch or shard keeps; the usage of the rest is kept
/// under [`OVERFLOW_TEAM`].
pub const MAX_TEAMS: usize = 10_000;
/// Where the usage of teams past [`MAX_TEAMS`] goes.
pub const OVERFLOW_TEAM: &str = "(overflow)";

/// The key that `key` is counted under in a map of `len` keys that holds it (`present`)
/// or not: a key not yet present is let in only while there are fewer than `max` of
/// them; the rest go to `overflow`.
fn admitted<'k>(key: &'k str, len: usize, present: bool, max: usize, overflow: &'k str) -> &'k str {
    match len >= max && !present {
        true => overflow,
        false => key,
    }
}

/// The entry of `series` for `key`, or the overflow entry when `series` is full.
fn capped<'m, V: Default>(
    series: &'m mut SortedMap<String, V>,
    key: &str,
    max: usize,
    overflow: &str,
) -> &'m mut V {
    let key = admitted(key, series.len(), series.contains_key(key), max, overflow);
    series.get_or_default(key)
}

/// The periods of `team`, or of [`OVERFLOW_TEAM`] once [`MAX_TEAMS`] teams are kept.
/// Teams stay in a B-tree: there may be ten thousand, and merging shards inserts
/// hundreds at a time.
fn team_periods<'m>(teams: &'m mut Teams, team: &str) -> &'m mut SortedMap<String, TeamUsage> {
    let present = teams.contains_key(team);
    let team = admitted(team, teams.len(), present, MAX_TEAMS, OVERFLOW_TEAM);
    teams.entry(team.to_owned()).or_default()
}

/// Usage by team and period.
type Teams = BTreeMap<String, SortedMap<String, TeamUsage>>;

/// How long an isolate's in-flight report counts without a newer one: isolates report
/// every [`IN_FLIGHT_HEARTBEAT_MS`] while they have requests open, so a report this old is
/// an isolate that went away.
pub const IN_FLIGHT_STALE_MS: u64 = 30_000;
/// How often an isolate with requests open reports them again.
pub const IN_FLIGHT_HEARTBEAT_MS: u64 = 10_000;

/// What kind of metric a name is.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    /// The in-flight gauge, summed from the isolates' fresh reports.
    InFlight,
    Histogram(&'static [f64]),
}

/// One isolate's open requests by model alias, as of `at_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightReport {
    /// When the isolate made the report (Unix milliseconds).
    pub at_ms: u64,
    /// Its open requests, by model alias.
    pub open: SortedMap<String, u32>,
}

/// Every metric: name, kind and help text (in render order).
const DEFINITIONS: &[(&str, Kind, &str)] = &[
    ("gateway_requests_in_flight", Kind::InFlight, "Requests being answered now, by model: the sum of every isolate's last report, reports older than 30 s left out."),
    ("gateway_requests_total", Kind::Counter, "Requests by route, status, provider, model and cache result."),
    ("gateway_request_duration_seconds", Kind::Histogram(LATENCY_BUCKETS), "Time from arrival to the end of the response, by route."),
    ("gateway_time_to_first_token_seconds", Kind::Histogram(LATENCY_BUCKETS), "Time from arrival to the first byte of a streamed answer, by model."),
    ("gateway_errors_total", Kind::Counter, "Requests answered with an error, by stable error code."),
    ("gateway_upstream_calls_total", Kind::Counter, "Upstream calls by target and outcome (ok, the upstream's status, an error code, circuit_open for skipped targets)."),
    ("gateway_upstream_retries_total", Kind::Counter, "Calls to a target after the first one for the same request."),
    ("gateway_breaker_transitions_total", Kind::Counter, "Circuit breaker state changes by target and new state."),
    ("gateway_rate_limited_total", Kind::Counter, "Requests refused by a rate limit or budget, by the limit that refused them."),
    ("gateway_cache_total", Kind::Counter, "Chat completions by cache result (hit, miss, bypass)."),
    ("gateway_guard_removed_total", Kind::Counter, "What the input guards took out of requests: invisible characters, chat-template tokens, personal data (pii)."),
    ("gateway_guard_injections_total", Kind::Counter, "Requests the prompt-injection guard blocked or flagged, by action and category found."),
    ("gateway_answers_total", Kind::Counter, "Answers by route, model and finish reason (stop, length, content_filter, tool_calls, other; none for a stream that never finished)."),
    ("gateway_empty_answers_total", Kind::Counter, "Finished answers without any text or tool call, by model."),
    ("gateway_refusals_total", Kind::Counter, "Answers the model refused (a refusal, or a refusal or safety stop), by model."),
    ("gateway_output_redactions_total", Kind::Counter, "Personal data and secrets replaced in answers, by model."),
    ("gateway_answer_tokens", Kind::Histogram(ANSWER_TOKEN_BUCKETS), "Completion tokens per answer, by model."),
    ("gateway_answer_prompt_ratio", Kind::Histogram(RATIO_BUCKETS), "Completion tokens per prompt token, by model."),
    ("gateway_tokens_per_second", Kind::Histogram(SPEED_BUCKETS), "Completion tokens per second of generation (after the first token of a stream), by model; cache hits excluded."),
    ("gateway_user_satisfaction", Kind::Histogram(SCORE_BUCKETS), "User ratings (1 to 5; thumbs up 5, down 1) by the rated request's route and model."),
    ("gateway_user_satisfaction_replaced", Kind::Histogram(SCORE_BUCKETS), "User ratings replaced by a later rating of the same request (the ratings that stand: gateway_user_satisfaction minus these)."),
    ("gateway_feedback_tags_total", Kind::Counter, "Tags on user ratings, by tag."),
    ("gateway_trace_spans_dropped_total", Kind::Counter, "Trace spans not exported: the isolate's queue was full, or the collector failed or refused them."),
    ("gateway_tokens_total", Kind::Counter, "Tokens paid for, by upstream model and kind (prompt, completion)."),
    ("gateway_cost_usd_total", Kind::Counter, "Spend in US dollars by upstream model (estimated where the provider reported no usage)."),
];

/// One histogram series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Histogram {
    /// Observations per bucket (not cumulative), one more than the bounds (+Inf).
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

/// What a team used in one UTC day or month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamUsage {
    /// Requests answered (cache hits included).
    pub requests: u64,
    /// Prompt tokens paid for.
    pub prompt_tokens: u64,
    /// Completion tokens paid for.
    pub completion_tokens: u64,
    /// Spend in nano-dollars.
    pub cost_nanousd: u64,
    /// The users' ratings made in the period, by model alias.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub scores: SortedMap<String, ScoreTally>,
}

impl TeamUsage {
    fn add(&mut self, other: &TeamUsage) {
        self.requests += other.requests;
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
        self.cost_nanousd += other.cost_nanousd;
        for (model, tally) in &other.scores {
            self.scores.get_or_default(model).merge(tally);
        }
    }
}

/// What the Worker asks of a metrics shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardCall {
    /// Merge an isolate's batch.
    Add(Metrics),
    /// Everything the shard holds.
    Snapshot,
}

/// Counter and histogram series by metric name and rendered label set, and usage by team
/// and period (`YYYY-MM-DD` or `YYYY-MM`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    counters: SortedMap<String, SortedMap<String, f64>>,
    histograms: SortedMap<String, SortedMap<String, Histogram>>,
    #[serde(default)]
    teams: Teams,
    /// Each isolate's last in-flight report, by isolate id.
    #[serde(default)]
    in_flight: SortedMap<String, InFlightReport>,
}

impl Metrics {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
            && self.histograms.is_empty()
            && self.teams.is_empty()
            && self.in_flight.is_empty()
    }

    /// Sets `isolate`'s in-flight report (a newer one replaces an older one on merge).
    pub fn report_in_flight(&mut self, isolate: &str, report: InFlightReport) {
        self.in_flight.insert(isolate.to_owned(), report);
    }

    /// What `team` used in the UTC day and month of `now_ms`.
    pub fn team_usage(&self, team: &str, now_ms: u64) -> (TeamUsage, TeamUsage) {
        let periods = self.teams.get(team);
        let of = |period: String| {
            periods
                .and_then(|periods| periods.get(&period))
                .cloned()
                .unwrap_or_default()
        };
        (of(day_key(now_ms)), of(month_key(now_ms)))
    }

    /// Drops team usage of days more than 62 days before `now_ms` (months are kept), and
    /// in-flight reports that are stale or say nothing is open.
    pub fn prune(&mut self, now_ms: u64) {
        let fresh_since = now_ms.saturating_sub(IN_FLIGHT_STALE_MS);
        self.in_flight.retain(|_, report| {
            report.at_ms >= fresh_since && report.open.values().any(|open| *open > 0)
        });
        let oldest_day = day_key(now_ms.saturating_sub(62 * 86_400_000));
        for periods in self.teams.values_mut() {
            periods.retain(|period, _| period.len() == 7 || *period >= oldest_day);
        }
    }

    /// Adds `value` to the counter `name` with `labels`.
    pub fn add(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let series = self.counters.get_or_default(name);
        *capped(
            series,
            &label_set(labels),
            MAX_SERIES_PER_METRIC,
            OVERFLOW_SERIES,
        ) += value;
    }

    /// Records `value` in the histogram `name` with `labels`.
    fn observe(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let bounds = match DEFINITIONS.iter().find(|(n, ..)| *n == name) {
            Some((_, Kind::Histogram(bounds), _)) => *bounds,
            _ => return,
        };
        let series = self.histograms.get_or_default(name);
        let histogram = capped(
            series,
            &label_set(labels),
            MAX_SERIES_PER_METRIC,
            OVERFLOW_SERIES,
        );
        if histogram.buckets.is_empty() {
            histogram.buckets = vec![0; bounds.len() + 1];
        }
        let bucket = bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(bounds.len());
        if let Some(slot) = histogram.buckets.get_mut(bucket) {
            *slot += 1;
        }
        histogram.sum += value;
        histogram.count += 1;
    }

    /// Records what one request's log line says, written at `now_ms`.
    pub fn record(&mut self, log: &RequestLog, now_ms: u64) {
        let cost_nanousd = log.cost_nanousd;
        // A team's usage counts answered requests only, as the principals' limiters do.
        let answers = matches!(
            log.route,
            "chat_completions" | "messages" | "responses" | "embeddings" | "job_run"
        );
        if let (Some(team), true) = (&log.team, answers && log.status == 200) {
            let paid = log.cache != Some(CacheResult::Hit);
            let usage = TeamUsage {
                requests: 1,
                prompt_tokens: log.prompt_tokens.filter(|_| paid).unwrap_or(0),
                completion_tokens: log.completion_tokens.filter(|_| paid).unwrap_or(0),
                cost_nanousd,
                scores: SortedMap::new(),
            };
            self.add_team_usage(team, &usage, now_ms);
        }
        let provider = log.provider.as_deref().unwrap_or("");
        // A request that names a model but whose route never resolved counts as `unknown`:
        // what a client names never becomes a label.
        let names_a_model = answers || log.route == "create_job";
        let model = match log.model.as_deref() {
            Some(model) => model,
            None if names_a_model => "unknown",
            None => "",
        };
        let status = log.status.to_string();
        let cache = log.cache.map_or("", CacheResult::name);
        let labels = [
            ("route", log.route),
            ("status", status.as_str()),
            ("provider", provider),
            ("model", model),
            ("cache", cache),
        ];
        self.add("gateway_requests_total", &labels, 1.0);
        let seconds = |ms: u64| ms as f64 / 1_000.0;
        self.observe(
            "gateway_request_duration_seconds",
            &[("route", log.route)],
            seconds(log.latency_ms),
        );
        if let (true, Some(ttfb)) = (log.stream, log.ttfb_ms) {
            self.observe(
                "gateway_time_to_first_token_seconds",
                &[("model", model)],
                seconds(ttfb),
            );
        }
        if let Some(code) = &log.error {
            self.add("gateway_errors_total", &[("code", code)], 1.0);
        }
        if let Some(answer) = &log.answer {
            self.record_answer(log, answer, model);
        }
        if let (Some(feedback), 200) = (&log.feedback, log.status) {
            self.record_rating(log, feedback, model, now_ms);
        }
        let mut seen: Vec<&str> = Vec::new();
        for attempt in &log.chain {
            let target = attempt.target.as_str();
            let labels = [("target", target), ("outcome", attempt.outcome.as_str())];
            self.add("gateway_upstream_calls_total", &labels, 1.0);
            if attempt.outcome != "circuit_open" {
                if seen.contains(&target) {
                    self.add("gateway_upstream_retries_total", &[("target", target)], 1.0);
                }
                seen.push(target);
            }
        }
        if let Some(limit) = log.rate_limited_by {
            self.add("gateway_rate_limited_total", &[("limit", limit)], 1.0);
        }
        if !cache.is_empty() {
            self.add("gateway_cache_total", &[("result", cache)], 1.0);
        }
        for (kind, count) in [
            ("characters", log.removed_characters),
            ("template_tokens", log.removed_template_tokens),
            ("pii", log.redacted_input),
        ] {
            if count > 0 {
                self.add(
                    "gateway_guard_removed_total",
                    &[("kind", kind)],
                    f64::from(count),
                );
            }
        }
        if let Some(action) = log.guard {
            for category in &log.guard_categories {
                let labels = [("action", action.name()), ("category", *category)];
                self.add("gateway_guard_injections_total", &labels, 1.0);
            }
        }
        if cache != "hit" {
            let upstream_model = log.upstream_model.as_deref().unwrap_or("");
            for (kind, tokens) in [
                ("prompt", log.prompt_tokens),
                ("completion", log.completion_tokens),
            ] {
                if let Some(tokens) = tokens.filter(|tokens| *tokens > 0) {
                    let labels = [("model", upstream_model), ("kind", kind)];
                    self.add("gateway_tokens_total", &labels, tokens as f64);
                }
            }
            if cost_nanousd > 0 {
                let usd = cost_nanousd as f64 / 1e9;
                self.add("gateway_cost_usd_total", &[("model", upstream_model)], usd);
            }
        }
    }

    /// Adds `usage` to `team`'s day and month of `now_ms`.
    fn add_team_usage(&mut self, team: &str, usage: &TeamUsage, now_ms: u64) {
        let periods = team_periods(&mut self.teams, team);
        for period in [day_key(now_ms), month_key(now_ms)] {
            periods.get_or_default(&period).add(usage);
        }
    }

    /// Records a user's rating of an answer of `model` made at `now_ms`. Series never go
    /// down: a replaced rating is also counted in `gateway_user_satisfaction_replaced`
    /// (the ratings that stand are the difference); the team's mean scores count it out
    /// of the periods it was made in.
    fn record_rating(
        &mut self,
        log: &RequestLog,
        feedback: &FeedbackLog,
        model: &str,
        now_ms: u64,
    ) {
        let labels = [("route", feedback.route.as_str()), ("model", model)];
        let score = f64::from(feedback.score);
        self.observe("gateway_user_satisfaction", &labels, score);
        for tag in &feedback.tags {
            self.add("gateway_feedback_tags_total", &[("tag", tag.as_str())], 1.0);
        }
        let mut tallies = vec![(feedback.score, now_ms, 1)];
        if let Some(previous) = &feedback.previous {
            let score = f64::from(previous.score);
            self.observe("gateway_user_satisfaction_replaced", &labels, score);
            tallies.push((previous.score, previous.rated_at_ms, -1));
        }
        let Some(team) = &log.team else {
            return;
        };
        for (score, rated_at_ms, weight) in tallies {
            let mut tally = ScoreTally::default();
            tally.add(score, weight);
            let usage = TeamUsage {
                scores: SortedMap::from([(model.to_owned(), tally)]),
                ..TeamUsage::default()
            };
            self.add_team_usage(team, &usage, rated_at_ms);
        }
    }

    /// Records the quality signals of one answer to `model`.
    fn record_answer(&mut self, log: &RequestLog, answer: &AnswerQuality, model: &str) {
        let by_model = [("model", model)];
        let labels = [
            ("route", log.route),
            ("model", model),
            ("finish_reason", answer.finish_label()),
        ];
        self.add("gateway_answers_total", &labels, 1.0);
        for (name, happened) in [
            ("gateway_empty_answers_total", answer.empty_answer),
            ("gateway_refusals_total", answer.refused),
        ] {
            if happened {
                self.add(name, &by_model, 1.0);
            }
        }
        if answer.redacted_output > 0 {
            let count = f64::from(answer.redacted_output);
            self.add("gateway_output_redactions_total", &by_model, count);
        }
        if let Some(tokens) = log.completion_tokens {
            self.observe("gateway_answer_tokens", &by_model, tokens as f64);
        }
        if let Some(ratio) = answer.answer_prompt_ratio {
            self.observe("gateway_answer_prompt_ratio", &by_model, ratio);
        }
        if let Some(speed) = answer.tokens_per_second {
            self.observe("gateway_tokens_per_second", &by_model, speed);
        }
    }

    /// Runs a shard's `call` at `now_ms`: its answer, as JSON text, and whether the
    /// metrics changed (and are to be written).
    pub fn handle(&mut self, call: ShardCall, now_ms: u64) -> (String, bool) {
        match call {
            ShardCall::Add(batch) => {
                self.merge(batch);
                self.prune(now_ms);
                (String::new(), true)
            }
            ShardCall::Snapshot => (serde_json::to_string(self).unwrap_or_default(), false),
        }
    }

    /// Adds every series (and team usage) of `other` to this one; an isolate's newer
    /// in-flight report replaces its older one.
    pub fn merge(&mut self, other: Metrics) {
        for (isolate, report) in other.in_flight {
            let newer = match self.in_flight.get(&isolate) {
                Some(mine) => report.at_ms >= mine.at_ms,
                None => true,
            };
            if newer {
                self.in_flight.insert(isolate, report);
            }
        }
        for (team, periods) in other.teams {
            let mine = team_periods(&mut self.teams, &team);
            for (period, usage) in periods {
                mine.get_or_default(&period).add(&usage);
            }
        }
        for (name, series) in other.counters {
            let mine = self.counters.get_or_default(&name);
            for (labels, value) in series {
                *capped(mine, &labels, MAX_SERIES_PER_METRIC, OVERFLOW_SERIES) += value;
            }
        }
        for (name, series) in other.histograms {
            let mine = self.histograms.get_or_default(&name);
            for (labels, histogram) in series {
                let slot = capped(mine, &labels, MAX_SERIES_PER_METRIC, OVERFLOW_SERIES);
                if slot.buckets.is_empty() {
                    slot.buckets = vec![0; histogram.buckets.len()];
                }
                for (total, add) in slot.buckets.iter_mut().zip(&histogram.buckets) {
                    *total += add;
                }
                slot.sum += histogram.sum;
                slot.count += histogram.count;
            }
        }
    }

    /// Open requests by model alias: the sum of the fresh in-flight reports at `now_ms`.
    fn open_requests(&self, now_ms: u64) -> SortedMap<String, u64> {
        let fresh_since = now_ms.saturating_sub(IN_FLIGHT_STALE_MS);
        let mut open: SortedMap<String, u64> = SortedMap::new();
        let reports = self.in_flight.values().filter(|r| r.at_ms >= fresh_since);
        for (model, count) in reports.flat_map(|report| &report.open) {
            *open.get_or_default(model) += u64::from(*count);
        }
        open
    }

    /// The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` for
    /// every metric, counters as is, histograms as cumulative `_bucket{le}`, `_sum` and
    /// `_count`.
    pub fn render(&self, now_ms: u64) -> String {
        let mut out = String::new();
        for (name, kind, help) in DEFINITIONS {
            let _ = writeln!(out, "# HELP {name} {help}");
            match kind {
                Kind::InFlight => {
                    let _ = writeln!(out, "# TYPE {name} gauge");
                    for (model, open) in self.open_requests(now_ms) {
                        let labels = label_set(&[("model", &model)]);
                        let _ = writeln!(out, "{name}{{{labels}}} {open}");
                    }
                }
                Kind::Counter => {
                    let _ = writeln!(out, "# TYPE {name} counter");
                    for (labels, value) in self.counters.get(*name).into_iter().flatten() {
                        let _ = writeln!(out, "{name}{{{labels}}} {}", number(*value));
                    }
                }
                Kind::Histogram(bounds) => {
                    let _ = writeln!(out, "# TYPE {name} histogram");
                    for (labels, histogram) in self.histograms.get(*name).into_iter().flatten() {
                        let sep = if labels.is_empty() { "" } else { "," };
                        let mut cumulative = 0;
                        for (index, count) in histogram.buckets.iter().enumerate() {
                            cumulative += count;
                            let le = bounds.get(index).map_or("+Inf".to_owned(), |b| number(*b));
                            let _ = writeln!(
                                out,
                                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
                            );
                        }
                        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", number(histogram.sum));
                        let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
                    }
                }
            }
        }
        out
    }
}

/// `name="value",...` with values escaped as the exposition format requires.
fn label_set(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in labels.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        out.push_str(name);
        out.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

/// A sample value: integers without a fraction, others in JSON's shortest form (which
/// the exposition format accepts; `core`'s float formatting would add ~11 KB of wasm).
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        serde_json::to_string(&value).unwrap_or_else(|_| "NaN".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::chat::ChunkChoice;
    use crate::api::feedback::PreviousRating;
    use crate::observe::log::{AttemptLog, GuardAction};

    /// 2026-11-27T13:38:32Z.
    const NOW: u64 = 1_795_786_712_000;

    fn request(status: u16, latency_ms: u64) -> RequestLog {
        RequestLog {
            route: "chat_completions",
            status,
            provider: Some("up".into()),
            model: Some("fast".into()),
            upstream_model: Some("gpt-x".into()),
            latency_ms,
            prompt_tokens: Some(10),
            completion_tokens: Some(5),
            cache: Some(CacheResult::Miss),
            ..RequestLog::default()
        }
    }

    fn attempt(target: &str, outcome: &str) -> AttemptLog {
        AttemptLog {
            target: target.into(),
            outcome: outcome.into(),
            ms: 1,
            start_ms: 0,
        }
    }

    #[test]
    fn series_are_capped_and_the_rest_is_counted_in_one() {
        let mut batch = Metrics::default();
        for i in 0..3 * MAX_SERIES_PER_METRIC {
            let code = format!("code_{i}");
            batch.add("gateway_errors_total", &[("code", &code)], 1.0);
        }
        let series = &batch.counters["gateway_errors_total"];
        assert_eq!(series.len(), MAX_SERIES_PER_METRIC + 1);
        assert_eq!(series[OVERFLOW_SERIES], (2 * MAX_SERIES_PER_METRIC) as f64);
        let mut shard = batch.clone();
        let mut other = Metrics::default();
        other.add("gateway_errors_total", &[("code", "new")], 1.0);
        shard.merge(other);
        shard.merge(batch);
        let series = &shard.counters["gateway_errors_total"];
        assert_eq!(
            series.len(),
            MAX_SERIES_PER_METRIC + 1,
            "a shard is capped too"
        );
        assert_eq!(
            series.values().sum::<f64>(),
            (6 * MAX_SERIES_PER_METRIC + 1) as f64
        );
        assert!(shard
            .render(NOW)
            .contains(r#"gateway_errors_total{overflow="true"}"#));
    }

    #[test]
    fn a_model_that_never_resolved_is_unknown() {
        let mut metrics = Metrics::default();
        metrics.record(
            &RequestLog {
                model: None,
                ..request(404, 1)
            },
            NOW,
        );
        let text = metrics.render(NOW);
        assert!(text.contains(r#"model="unknown""#), "{text}");
    }

    #[test]
    fn requests_become_counters_and_histograms() {
        let mut metrics = Metrics::default();
        assert!(metrics.is_empty());
        metrics.record(
            &RequestLog {
                cost_nanousd: 1_500_000,
                ..request(200, 30)
            },
            NOW,
        );
        let mut retried = request(200, 700);
        retried.chain = vec![
            attempt("up/a", "circuit_open"),
            attempt("up/b", "503"),
            attempt("up/b", "503"),
            attempt("up/b", "ok"),
        ];
        retried.stream = true;
        retried.ttfb_ms = Some(40);
        metrics.record(&retried, NOW);
        let mut refused = request(429, 2);
        refused.error = Some("rate_limit_exceeded".into());
        refused.rate_limited_by = Some("requests");
        refused.prompt_tokens = None;
        refused.completion_tokens = None;
        refused.cache = None;
        refused.removed_characters = 3;
        refused.removed_template_tokens = 1;
        metrics.record(&refused, NOW);
        let mut blocked = RequestLog {
            route: "chat_completions",
            status: 400,
            ..RequestLog::default()
        };
        blocked.error = Some("prompt_injection_detected".into());
        blocked.guard = Some(GuardAction::Blocked);
        blocked.guard_categories = vec!["instruction_override", "role_hijack"];
        metrics.record(&blocked, NOW);
        let mut hit = request(200, 1);
        hit.cache = Some(CacheResult::Hit);
        metrics.record(&hit, NOW);

        let text = metrics.render(NOW);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        has(
            r#"gateway_requests_total{route="chat_completions",status="200",provider="up",model="fast",cache="miss"} 2"#,
        );
        has(
            r#"gateway_requests_total{route="chat_completions",status="429",provider="up",model="fast",cache=""} 1"#,
        );
        has(r#"gateway_errors_total{code="rate_limit_exceeded"} 1"#);
        has(r#"gateway_rate_limited_total{limit="requests"} 1"#);
        has(r#"gateway_upstream_calls_total{target="up/b",outcome="503"} 2"#);
        has(r#"gateway_upstream_calls_total{target="up/a",outcome="circuit_open"} 1"#);
        has(r#"gateway_upstream_retries_total{target="up/b"} 2"#);
        has(r#"gateway_cache_total{result="hit"} 1"#);
        has(r#"gateway_guard_removed_total{kind="characters"} 3"#);
        has(
            r#"gateway_guard_injections_total{action="blocked",category="instruction_override"} 1"#,
        );
        has(r#"gateway_guard_injections_total{action="blocked",category="role_hijack"} 1"#);
        has(r#"gateway_errors_total{code="prompt_injection_detected"} 1"#);
        has(r#"gateway_guard_removed_total{kind="template_tokens"} 1"#);
        // Tokens and cost of the hit are not counted: nothing was paid for.
        has(r#"gateway_tokens_total{model="gpt-x",kind="prompt"} 20"#);
        has(r#"gateway_tokens_total{model="gpt-x",kind="completion"} 10"#);
        has(r#"gateway_cost_usd_total{model="gpt-x"} 0.0015"#);
        // Cumulative buckets: 0 ms, 1 ms and 2 ms in the first, 30 ms from 0.05 on, 700 ms
        // from 1.
        has(r#"gateway_request_duration_seconds_bucket{route="chat_completions",le="0.005"} 3"#);
        has(r#"gateway_request_duration_seconds_bucket{route="chat_completions",le="0.05"} 4"#);
        has(r#"gateway_request_duration_seconds_bucket{route="chat_completions",le="1"} 5"#);
        has(r#"gateway_request_duration_seconds_bucket{route="chat_completions",le="+Inf"} 5"#);
        has(r#"gateway_request_duration_seconds_count{route="chat_completions"} 5"#);
        has(r#"gateway_request_duration_seconds_sum{route="chat_completions"} 0.733"#);
        has(r#"gateway_time_to_first_token_seconds_count{model="fast"} 1"#);
        assert!(text.contains("# TYPE gateway_request_duration_seconds histogram"));
        assert!(text.contains("# TYPE gateway_breaker_transitions_total counter"));
    }

    #[test]
    fn answers_become_quality_series() {
        let mut metrics = Metrics::default();
        let mut cut = request(200, 2_000);
        cut.stream = true;
        cut.ttfb_ms = Some(1_000);
        cut.completion_tokens = Some(40);
        let mut quality = AnswerQuality::default();
        quality.add_chunk(&[ChunkChoice {
            finish_reason: Some("length".into()),
            ..ChunkChoice::default()
        }]);
        quality.redacted_output = 2;
        cut.answer = Some(quality);
        cut.conclude();
        metrics.record(&cut, NOW);
        let mut refused = request(200, 10);
        let mut quality = AnswerQuality::default();
        quality.add_chunk(&[ChunkChoice {
            finish_reason: Some("content_filter".into()),
            ..ChunkChoice::default()
        }]);
        refused.answer = Some(quality);
        refused.conclude();
        metrics.record(&refused, NOW);

        let text = metrics.render(NOW);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        has(
            r#"gateway_answers_total{route="chat_completions",model="fast",finish_reason="length"} 1"#,
        );
        has(
            r#"gateway_answers_total{route="chat_completions",model="fast",finish_reason="content_filter"} 1"#,
        );
        has(r#"gateway_empty_answers_total{model="fast"} 2"#);
        has(r#"gateway_refusals_total{model="fast"} 1"#);
        has(r#"gateway_output_redactions_total{model="fast"} 2"#);
        has(r#"gateway_answer_tokens_count{model="fast"} 2"#);
        has(r#"gateway_answer_prompt_ratio_sum{model="fast"} 4.5"#);
        // 40 tokens in the second after the first token; 5 tokens in 10 ms.
        has(r#"gateway_tokens_per_second_bucket{model="fast",le="50"} 1"#);
        has(r#"gateway_tokens_per_second_sum{model="fast"} 540"#);
    }

    #[test]
    fn merged_batches_add_up_and_survive_serialization() {
        let mut a = Metrics::default();
        a.record(
            &RequestLog {
                cost_nanousd: 1_000,
                team: Some("t".into()),
                ..request(200, 30)
            },
            NOW,
        );
        a.add(
            "gateway_breaker_transitions_total",
            &[("target", "up/b"), ("to", "open")],
            1.0,
        );
        let mut b = Metrics::default();
        b.record(
            &RequestLog {
                cost_nanousd: 2_000,
                team: Some("t".into()),
                ..request(200, 3_000)
            },
            NOW,
        );
        let b: Metrics = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        let mut total = Metrics::default();
        total.merge(a.clone());
        total.merge(b);
        let text = total.render(NOW);
        assert!(
            text.contains(r#"gateway_request_duration_seconds_count{route="chat_completions"} 2"#)
        );
        assert!(text.contains(
            r#"gateway_request_duration_seconds_bucket{route="chat_completions",le="2.5"} 1"#
        ));
        assert!(text.contains(r#"gateway_cost_usd_total{model="gpt-x"} 3e-6"#));
        assert!(text.contains(r#"gateway_breaker_transitions_total{target="up/b",to="open"} 1"#));
        let usage = TeamUsage {
            requests: 2,
            prompt_tokens: 20,
            completion_tokens: 10,
            cost_nanousd: 3_000,
            scores: SortedMap::new(),
        };
        assert_eq!(total.team_usage("t", NOW), (usage.clone(), usage));
        assert_eq!(total.team_usage("other", NOW), Default::default());
        // The next month starts from zero; old days are pruned, months kept.
        let later = NOW + 40 * 86_400_000;
        assert_eq!(total.team_usage("t", later), Default::default());
        total.prune(NOW + 70 * 86_400_000);
        assert_eq!(total.teams["t"].keys().collect::<Vec<_>>(), ["2026-11"]);
    }

    #[test]
    fn ratings_count_and_a_replaced_one_counts_out_of_the_team_mean() {
        let rating = |score, previous| RequestLog {
            route: "feedback",
            status: 200,
            team: Some("acme".into()),
            model: Some("fast".into()),
            feedback: Some(FeedbackLog {
                request_id: "r1".into(),
                route: "messages".into(),
                score,
                tags: vec!["slow".into()],
                previous,
            }),
            ..RequestLog::default()
        };
        let mut metrics = Metrics::default();
        metrics.record(&rating(2, None), NOW);
        let yesterday = NOW - 86_400_000;
        let replaced = PreviousRating {
            score: 1,
            tags: vec![],
            rated_at_ms: yesterday,
        };
        metrics.record(&rating(5, Some(replaced)), NOW);
        let text = metrics.render(NOW);
        let has = |line: &str| assert!(text.lines().any(|l| l == line), "{line}\n{text}");
        let labels = r#"route="messages",model="fast""#;
        has(&format!(
            r#"gateway_user_satisfaction_bucket{{{labels},le="2"}} 1"#
        ));
        has(&format!(r#"gateway_user_satisfaction_count{{{labels}}} 2"#));
        has(&format!(
            r#"gateway_user_satisfaction_replaced_sum{{{labels}}} 1"#
        ));
        has(r#"gateway_feedback_tags_total{tag="slow"} 2"#);
        let (today, month) = metrics.team_usage("acme", NOW);
        assert_eq!(today.scores["fast"], ScoreTally { sum: 7, count: 2 });
        assert_eq!(today.requests, 0, "a rating is not a request answered");
        let (before, _) = metrics.team_usage("acme", yesterday);
        assert_eq!(before.scores["fast"], ScoreTally { sum: -1, count: -1 });
        // Yesterday and today are in the same month here: its tally holds what stands.
        assert_eq!(month.scores["fast"], ScoreTally { sum: 6, count: 1 });
    }

    #[test]
    fn in_flight_is_the_sum_of_fresh_reports_the_newest_per_isolate() {
        let report = |at_ms, open: &[(&str, u32)]| InFlightReport {
            at_ms,
            open: open.iter().map(|(m, n)| (m.to_string(), *n)).collect(),
        };
        let mut shard = Metrics::default();
        let mut a = Metrics::default();
        a.report_in_flight("a", report(NOW - 1_000, &[("fast", 2), ("slow", 1)]));
        let mut b = Metrics::default();
        b.report_in_flight("b", report(NOW - 2_000, &[("fast", 3)]));
        let mut gone = Metrics::default();
        gone.report_in_flight("gone", report(NOW - IN_FLIGHT_STALE_MS - 1, &[("fast", 7)]));
        let mut older_a = Metrics::default();
        older_a.report_in_flight("a", report(NOW - 5_000, &[("fast", 9)]));
        for batch in [a, b, gone, older_a] {
            shard.merge(batch);
        }
        let text = shard.render(NOW);
        assert!(text.contains("# TYPE gateway_requests_in_flight gauge"));
        assert!(
            text.contains(r#"gateway_requests_in_flight{model="fast"} 5"#),
            "{text}"
        );
        assert!(text.contains(r#"gateway_requests_in_flight{model="slow"} 1"#));
        shard.prune(NOW);
        assert_eq!(shard.in_flight.len(), 2, "the stale report is dropped");
        let mut idle = Metrics::default();
        idle.report_in_flight("b", report(NOW, &[("fast", 0)]));
        shard.merge(idle);
        shard.prune(NOW);
        assert_eq!(shard.in_flight.keys().collect::<Vec<_>>(), ["a"]);
        assert!(
            shard
                .render(NOW + IN_FLIGHT_STALE_MS + 1_001)
                .contains("# TYPE gateway_requests_in_flight gauge\n# HELP"),
            "nothing is open once every report is stale"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut metrics = Metrics::default();
        metrics.add("gateway_errors_total", &[("code", "a\"b\\c\nd")], 1.0);
        assert!(metrics
            .render(NOW)
            .contains(r#"gateway_errors_total{code="a\"b\\c\nd"} 1"#));
    }
}
