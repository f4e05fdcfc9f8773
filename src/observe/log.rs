//! The one JSON log line written per request.
//!
//! It says what happened and how long it took, never what was said: no prompt, no answer
//! text, no header values, no secrets. Fields are filled in as the request moves along
//! and the line is written once, when the response (or its stream) ends.

use std::rc::Rc;

use serde::Serialize;

use crate::api::chat::Usage;
use crate::api::feedback::PreviousRating;
use crate::config::source::Reader;
use crate::limit::price::Price;
use crate::observe::quality::AnswerQuality;
use crate::observe::trace::TraceContext;
use crate::resilience::breaker::Transition;

/// The least serious lines written (`LOG_LEVEL`): request lines are `info`, `warn` (4xx)
/// or `error` (5xx); circuit breaker changes are `warn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Every line.
    Info,
    /// Problems only.
    Warn,
    /// Failures only.
    Error,
}

impl LogLevel {
    /// `LOG_LEVEL`.
    pub fn load(r: &mut Reader) -> LogLevel {
        r.choice(
            "LOG_LEVEL",
            &[
                ("info", LogLevel::Info),
                ("warn", LogLevel::Warn),
                ("error", LogLevel::Error),
            ],
        )
    }

    /// Whether a line of `level` is written.
    pub fn allows(self, level: &str) -> bool {
        let rank = match level {
            "error" => LogLevel::Error,
            "warn" => LogLevel::Warn,
            _ => LogLevel::Info,
        };
        rank >= self
    }
}

/// What the response cache did for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheResult {
    /// Answered from the cache.
    Hit,
    /// Looked up and not found (the answer may be stored).
    Miss,
    /// Left alone (see `cache_bypass`).
    Bypass,
}

impl CacheResult {
    /// The name in logs and metrics (`hit`, `miss`, `bypass`).
    pub fn name(self) -> &'static str {
        match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
            CacheResult::Bypass => "bypass",
        }
    }
}

/// What the prompt-injection guard did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardAction {
    /// Refused it.
    Blocked,
    /// Let it through, marked.
    Flagged,
}

impl GuardAction {
    /// The name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            GuardAction::Blocked => "blocked",
            GuardAction::Flagged => "flagged",
        }
    }
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// The upstream finished and `[DONE]` was sent.
    Completed,
    /// The upstream failed or stopped early; an error event was sent.
    Broken,
    /// The client left (or stopped reading) first.
    ClientClosed,
}

/// Everything logged about one request: the request's one outcome, from which its log
/// line, its metrics and its response headers are derived.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestLog {
    /// Unix milliseconds when the request arrived.
    pub ts: u64,
    /// The `x-request-id` sent back to the client.
    pub request_id: String,
    /// The W3C trace the request belongs to (its `traceparent`'s trace id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// The matched route name (`chat_completions`, `models`, ..., or `unmatched`).
    pub route: &'static str,
    /// The response status (200 for streams that later broke: the status was already sent).
    pub status: u16,
    /// How serious the line is: `error` (5xx), `warn` (4xx) or `info`.
    pub level: &'static str,
    /// The principal the request acted for (`admin` on the admin API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The principal's team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The id of the API key used (never the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The model alias requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The provider that served it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The model name sent to the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_model: Option<String>,
    /// Why the `auto` alias chose its target (`simple`, `tools`, `long_prompt`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_reason: Option<&'static str>,
    /// Upstream calls made, retries and fallbacks included.
    #[serde(skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Every upstream call, and every target skipped by its circuit breaker, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<AttemptLog>,
    /// The answer is the configured degradation message: every target failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub degraded: bool,
    /// What the response cache did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheResult>,
    /// Why the cache was bypassed (`not_deterministic`, `no_store`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_bypass: Option<&'static str>,
    /// The cache key (SHA-256 hex), as `x-cache-key` shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    /// This request stored its answer in the cache.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cache_stored: bool,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// Time from arrival to the end of the response body.
    pub latency_ms: u64,
    /// Time from arrival to the first byte of the answer body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<u64>,
    /// Prompt tokens, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Whether token counts are estimates (the upstream reported none).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tokens_estimated: bool,
    /// The stable error code, when the request failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the answer cost in US dollars (0 for cache hits and failures), from the
    /// upstream's usage or, when `tokens_estimated`, from estimates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The price of the model that answered, for `cost_usd`.
    #[serde(skip)]
    pub price: Option<Price>,
    /// `cost_usd` in nano-dollars, exact, for the metrics.
    #[serde(skip)]
    pub cost_nanousd: u64,
    /// The limit that refused the request (`requests`, `tokens`, `concurrency`,
    /// `daily_budget`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limited_by: Option<&'static str>,
    /// Invisible or control characters removed from the request's text.
    #[serde(skip_serializing_if = "is_zero")]
    pub removed_characters: u32,
    /// Personal data and secrets replaced in the request's text (`REDACT_PII=both`).
    #[serde(skip_serializing_if = "is_zero")]
    pub redacted_input: u32,
    /// Chat-template tokens removed from the request's text.
    #[serde(skip_serializing_if = "is_zero")]
    pub removed_template_tokens: u32,
    /// What the prompt-injection guard did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardAction>,
    /// The injection score (0–100) of the message that made the guard act.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guard_score: Option<u32>,
    /// The injection categories found in that message.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub guard_categories: Vec<&'static str>,
    /// The rate limiter could not be reached and the request was served unlimited.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rate_limiter_failed_open: bool,
    /// The job a queue consumer's line is about (`job_run`, `job_webhook`, ...), or the
    /// job a submission created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// How a stream ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_outcome: Option<StreamEnd>,
    /// What the answer looked like, when there was one.
    #[serde(flatten)]
    pub answer: Option<AnswerQuality>,
    /// The rating a `POST /v1/feedback` kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackLog>,
    /// The request is counted in its isolate's in-flight gauge until its line is written.
    #[serde(skip)]
    pub in_flight: bool,
    /// The request's trace, whose spans are exported when the line is written.
    #[serde(skip)]
    pub trace: Option<Rc<TraceContext>>,
    /// The stages the request went through, for its trace spans.
    #[serde(skip)]
    pub stages: Vec<Stage>,
}

/// A rating, as the feedback request's line tells it (its comment is never logged).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackLog {
    /// The rated request.
    pub request_id: String,
    /// Its route (the request's own `model` field names its model).
    pub route: String,
    /// 1 to 5.
    pub score: u8,
    /// The rating's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// The rating it replaced, counted out of the metrics.
    #[serde(rename = "replaced", serialize_with = "is_some")]
    pub previous: Option<PreviousRating>,
}

fn is_some<T, S: serde::Serializer>(value: &Option<T>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bool(value.is_some())
}

/// One upstream call of a request (or one target its breaker skipped).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptLog {
    /// `provider/model`.
    pub target: String,
    /// `ok`, the upstream's status (`"503"`), an error code (`upstream_timeout`) or
    /// `circuit_open`.
    pub outcome: String,
    /// How long the call took.
    pub ms: u64,
    /// When it started (Unix milliseconds), for its trace span.
    #[serde(skip)]
    pub start_ms: u64,
}

/// A stage of the request's way through the gateway, for its trace span.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// `auth`, `guard`, `limiter` or `cache`.
    pub name: &'static str,
    /// Unix milliseconds.
    pub start_ms: u64,
    /// Unix milliseconds.
    pub end_ms: u64,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// The log line of a circuit breaker's state change (level `warn`) at `ts`.
pub fn breaker_line(transition: &Transition, ts: u64) -> String {
    serde_json::json!({
        "event": "circuit_breaker",
        "level": "warn",
        "ts": ts,
        "target": transition.target,
        "from": transition.from,
        "to": transition.to,
        "reason": transition.reason,
        "transitions": transition.count,
    })
    .to_string()
}

impl RequestLog {
    /// Records the answer's usage: its tokens, whether they are estimates, and its cost
    /// at the answering model's `price` (nothing for a cache hit: nothing was paid).
    pub fn set_usage(&mut self, usage: &Usage, estimated: bool) {
        self.prompt_tokens = Some(usage.prompt_tokens);
        self.completion_tokens = Some(usage.completion_tokens);
        self.tokens_estimated = estimated;
        self.cost_nanousd = match (self.price, self.cache) {
            (_, Some(CacheResult::Hit)) | (None, _) => 0,
            (Some(price), _) => price.cost_nanousd(usage),
        };
        self.cost_usd = Some(self.cost_nanousd as f64 / 1e9);
    }

    /// Notes that the stage `name` ran from `start_ms` to `end_ms`.
    pub fn stage(&mut self, name: &'static str, start_ms: u64, end_ms: u64) {
        self.stages.push(Stage {
            name,
            start_ms,
            end_ms,
        });
    }

    /// Completes the line before it is written: its level, and the answer's signals that
    /// need the whole request (its tokens and times).
    pub fn conclude(&mut self) {
        self.set_level();
        let generation_ms = match (self.cache, self.ttfb_ms) {
            (Some(CacheResult::Hit), _) => None,
            (_, Some(ttfb)) if self.stream => Some(self.latency_ms.saturating_sub(ttfb)),
            _ => Some(self.latency_ms),
        };
        let (prompt, completion) = (self.prompt_tokens, self.completion_tokens);
        if let Some(answer) = &mut self.answer {
            let tokens = (prompt.unwrap_or(0), completion.unwrap_or(0));
            answer.conclude(tokens.0, tokens.1, generation_ms);
        }
    }

    /// Sets the level from the status: `error` for 5xx, `warn` for 4xx, else `info`.
    fn set_level(&mut self) {
        self.level = match self.status {
            500.. => "error",
            400..=499 => "warn",
            _ => "info",
        };
    }

    /// The response headers that report this outcome: `x-request-id`; the target that
    /// answered (or was tried last) and the calls made; `x-gateway-degraded`;
    /// `x-guard-flags` when the injection guard acted; `x-cache` and `x-cache-key`.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![("x-request-id", self.request_id.clone())];
        if let (Some(provider), Some(model)) = (&self.provider, &self.upstream_model) {
            headers.push(("x-gateway-provider", provider.clone()));
            headers.push(("x-gateway-model", model.clone()));
            headers.push(("x-gateway-attempts", self.attempts.to_string()));
        }
        if self.degraded {
            headers.push(("x-gateway-degraded", "true".to_owned()));
        }
        if self.guard.is_some() {
            headers.push(("x-guard-flags", self.guard_categories.join(",")));
        }
        if let Some(cache) = self.cache {
            headers.push(("x-cache", cache.name().to_ascii_uppercase()));
        }
        if let Some(key) = &self.cache_key {
            headers.push(("x-cache-key", key.clone()));
        }
        headers
    }

    /// The line as written to the log.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_status_and_filter_lines() {
        let mut log = RequestLog::default();
        for (status, level) in [(200, "info"), (404, "warn"), (429, "warn"), (502, "error")] {
            log.status = status;
            log.conclude();
            assert_eq!(log.level, level);
        }
        assert!(LogLevel::Info.allows("info") && LogLevel::Info.allows("error"));
        assert!(!LogLevel::Warn.allows("info") && LogLevel::Warn.allows("warn"));
        assert!(!LogLevel::Error.allows("warn") && LogLevel::Error.allows("error"));
    }

    #[test]
    fn usage_is_priced_except_for_cache_hits() {
        let price: Price = serde_json::from_str(r#"{"input": 1, "output": 2}"#).unwrap();
        let mut log = RequestLog {
            price: Some(price),
            ..RequestLog::default()
        };
        log.set_usage(&Usage::new(1_000, 500), false);
        assert_eq!((log.cost_nanousd, log.cost_usd), (2_000_000, Some(0.002)));
        log.cache = Some(CacheResult::Hit);
        log.set_usage(&Usage::new(1_000, 500), false);
        assert_eq!((log.cost_nanousd, log.cost_usd), (0, Some(0.0)));
    }

    #[test]
    fn headers_report_the_outcome() {
        let log = RequestLog {
            request_id: "r1".into(),
            provider: Some("up".into()),
            upstream_model: Some("m".into()),
            attempts: 2,
            guard: Some(GuardAction::Flagged),
            guard_categories: vec!["role_hijack", "template_injection"],
            cache: Some(CacheResult::Bypass),
            ..RequestLog::default()
        };
        let headers = log.response_headers();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("x-request-id"), Some("r1"));
        assert_eq!(
            (get("x-gateway-provider"), get("x-gateway-attempts")),
            (Some("up"), Some("2"))
        );
        assert_eq!(get("x-guard-flags"), Some("role_hijack,template_injection"));
        assert_eq!(get("x-cache"), Some("BYPASS"));
        assert_eq!(
            (get("x-cache-key"), get("x-gateway-degraded")),
            (None, None)
        );
        let line: serde_json::Value = serde_json::from_str(&log.to_line()).unwrap();
        assert_eq!(
            (line["guard"].as_str(), line["cache"].as_str()),
            (Some("flagged"), Some("bypass"))
        );
        let ended = RequestLog {
            stream_outcome: Some(StreamEnd::ClientClosed),
            ..RequestLog::default()
        };
        assert!(ended
            .to_line()
            .contains(r#""stream_outcome":"client_closed""#));
    }

    #[test]
    fn a_line_is_one_json_object_without_empty_fields() {
        let log = RequestLog {
            ts: 1,
            request_id: "r1".into(),
            method: "POST".into(),
            route: "chat_completions",
            status: 400,
            error: Some("invalid_request".into()),
            ..RequestLog::default()
        };
        let line = log.to_line();
        assert!(!line.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["route"], "chat_completions");
        assert_eq!(value["error"], "invalid_request");
        assert!(value.get("model").is_none() && value.get("tokens_estimated").is_none());
    }
}
