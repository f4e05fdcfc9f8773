//! Trace spans in OTLP/HTTP JSON (OpenTelemetry's `ExportTraceServiceRequest`), built from
//! a request's log line: the request's own span (the one whose id went upstream in
//! `traceparent`), a span per stage it went through (auth, guard, limiter, cache), one
//! per upstream attempt and one for the stream, with the OpenTelemetry GenAI semantic
//! conventions' attributes (`gen_ai.*`).
//!
//! Stage times come from the Workers clock, which moves only across I/O: stages that are
//! pure computation (the guards) show as instants, those that wait (the limiter, the
//! cache, the upstream) show their real length.

use serde_json::{json, Value};

use super::log::{CacheResult, RequestLog};
use super::trace::{hex_id, TraceContext};
use crate::config::source::{is_loopback_http, Reader, Secret};

/// The most spans one isolate holds for export; spans past it are dropped (and counted).
pub const MAX_QUEUED_SPANS: usize = 2_048;
/// How many queued spans make an export start at once rather than after the delay.
pub const EXPORT_BATCH_SPANS: usize = 256;

/// `SPAN_KIND_INTERNAL`, `SPAN_KIND_SERVER` and `SPAN_KIND_CLIENT`.
const INTERNAL: u8 = 1;
const SERVER: u8 = 2;
const CLIENT: u8 = 3;

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// The traces URL: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended.
    pub traces_url: String,
    /// `OTEL_EXPORTER_OTLP_HEADERS` (a secret: it usually holds a token), as
    /// `name=value` pairs separated by commas.
    pub headers: Vec<(String, Secret)>,
    /// `OTEL_SERVICE_NAME` (default `edge-llm-gateway`).
    pub service_name: String,
}

impl OtlpConfig {
    /// The export settings, or `None` when no endpoint is set. The endpoint must be https
    /// (or http to this machine, for local collectors).
    pub fn load(r: &mut Reader) -> Option<OtlpConfig> {
        let traces_url = match (
            r.text("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            r.text("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => url,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return None,
        };
        if !traces_url.starts_with("https://") && !is_loopback_http(&traces_url) {
            r.error(
                "OTEL_EXPORTER_OTLP_ENDPOINT must be an https URL (or http to 127.0.0.1 or localhost)",
            );
            return None;
        }
        let mut headers = Vec::new();
        if let Some(list) = r.secret("OTEL_EXPORTER_OTLP_HEADERS") {
            for pair in list
                .expose()
                .split(',')
                .filter(|pair| !pair.trim().is_empty())
            {
                match pair.split_once('=') {
                    Some((name, value)) if !name.trim().is_empty() => headers.push((
                        name.trim().to_ascii_lowercase(),
                        Secret::new(percent_decode(value.trim())),
                    )),
                    // The pair is not repeated: it may be part of a secret.
                    _ => r.error(
                        "OTEL_EXPORTER_OTLP_HEADERS must be name=value pairs separated by commas",
                    ),
                }
            }
        }
        let service_name = r
            .text("OTEL_SERVICE_NAME")
            .unwrap_or_else(|| "edge-llm-gateway".to_owned());
        Some(OtlpConfig {
            traces_url,
            headers,
            service_name,
        })
    }

    /// The body of one export of `spans`.
    pub fn export_body(&self, spans: Vec<Value>) -> String {
        json!({"resourceSpans": [{
            "resource": {"attributes": [
                attribute("service.name", json!(self.service_name)),
                attribute("telemetry.sdk.language", json!("rust")),
            ]},
            "scopeSpans": [{
                "scope": {"name": "edge-llm-gateway", "version": env!("CARGO_PKG_VERSION")},
                "spans": spans,
            }],
        }]})
        .to_string()
    }
}

/// `%XX` escapes decoded (the W3C Baggage encoding of header values); anything that is
/// not a valid escape is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escape = bytes.get(at + 1..at + 3).and_then(|hex| {
            let hex = std::str::from_utf8(hex).ok()?;
            u8::from_str_radix(hex, 16).ok()
        });
        match (bytes[at], escape) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The spans of one request, ready to export; none when its trace is not sampled.
pub fn spans_of(
    log: &RequestLog,
    trace: &TraceContext,
    mut random: impl FnMut() -> u32,
) -> Vec<Value> {
    if !trace.sampled() {
        return Vec::new();
    }
    let end_ms = log.ts + log.latency_ms;
    let mut root = Span::new(trace, &trace.span_id, trace.parent_id.as_deref());
    root.name = span_name(log);
    root.kind = SERVER;
    root.times = (log.ts, end_ms);
    root.attributes = request_attributes(log);
    root.error = log
        .error
        .clone()
        .filter(|_| log.status >= 500 || log.stream_outcome.is_some());
    let mut spans = vec![root.to_json()];
    let mut child = |name: String,
                     kind: u8,
                     times: (u64, u64),
                     attributes: Vec<Value>,
                     error: Option<String>| {
        let id = hex_id(2, &mut random);
        let mut span = Span::new(trace, &id, Some(&trace.span_id));
        span.name = name;
        span.kind = kind;
        span.times = times;
        span.attributes = attributes;
        span.error = error;
        spans.push(span.to_json());
    };
    for stage in &log.stages {
        child(
            stage.name.to_owned(),
            INTERNAL,
            (stage.start_ms, stage.end_ms),
            Vec::new(),
            None,
        );
    }
    for attempt in &log.chain {
        let (provider, model) = attempt
            .target
            .split_once('/')
            .unwrap_or((&attempt.target, ""));
        let attributes = vec![
            attribute("gen_ai.operation.name", json!(operation(log))),
            attribute("gen_ai.system", json!(provider)),
            attribute("gen_ai.request.model", json!(model)),
            attribute("gateway.outcome", json!(attempt.outcome)),
        ];
        let ok = attempt.outcome == "ok";
        let times = (attempt.start_ms, attempt.start_ms + attempt.ms);
        let name = format!("{} {model}", operation(log));
        child(
            name,
            CLIENT,
            times,
            attributes,
            (!ok).then(|| attempt.outcome.clone()),
        );
    }
    if let (Some(outcome), Some(ttfb)) = (log.stream_outcome, log.ttfb_ms) {
        let attributes = vec![attribute("gateway.stream_outcome", json!(outcome))];
        child(
            "stream".to_owned(),
            INTERNAL,
            (log.ts + ttfb, end_ms),
            attributes,
            None,
        );
    }
    spans
}

/// What the GenAI conventions call the operation.
fn operation(log: &RequestLog) -> &'static str {
    match log.route {
        "embeddings" => "embeddings",
        _ => "chat",
    }
}

/// `{operation} {model}` for a model's request (the GenAI convention), `{METHOD} {route}`
/// for the rest.
fn span_name(log: &RequestLog) -> String {
    match (&log.model, log.route) {
        (Some(model), "chat_completions" | "messages" | "responses" | "embeddings") => {
            format!("{} {model}", operation(log))
        }
        _ => format!("{} {}", log.method, log.route),
    }
}

/// The request span's attributes: HTTP, the gateway's own, and the GenAI conventions'.
fn request_attributes(log: &RequestLog) -> Vec<Value> {
    let mut attributes = vec![
        attribute("http.request.method", json!(log.method)),
        attribute("http.route", json!(log.route)),
        attribute("http.response.status_code", json!(log.status)),
        attribute("gateway.request_id", json!(log.request_id)),
    ];
    let optional = [
        ("gen_ai.request.model", log.model.as_ref().map(|m| json!(m))),
        ("gen_ai.system", log.provider.as_ref().map(|p| json!(p))),
        (
            "gen_ai.response.model",
            log.upstream_model.as_ref().map(|m| json!(m)),
        ),
        (
            "gen_ai.usage.input_tokens",
            log.prompt_tokens.map(|t| json!(t)),
        ),
        (
            "gen_ai.usage.output_tokens",
            log.completion_tokens.map(|t| json!(t)),
        ),
        (
            "gateway.cache",
            log.cache.map(|c| json!(CacheResult::name(c))),
        ),
        ("gateway.cost_usd", log.cost_usd.map(|c| json!(c))),
        (
            "gateway.attempts",
            (log.attempts > 0).then(|| json!(log.attempts)),
        ),
        ("error.type", log.error.as_ref().map(|e| json!(e))),
    ];
    if log.model.is_some() && log.route != "feedback" {
        attributes.push(attribute("gen_ai.operation.name", json!(operation(log))));
    }
    for (key, value) in optional {
        if let Some(value) = value {
            attributes.push(attribute(key, value));
        }
    }
    if let Some(reason) = log.answer.as_ref().and_then(|answer| answer.finish_reason) {
        attributes.push(attribute("gen_ai.response.finish_reasons", json!([reason])));
    }
    attributes
}

/// One span on its way to JSON.
struct Span<'a> {
    trace_id: &'a str,
    span_id: &'a str,
    parent_id: Option<&'a str>,
    name: String,
    kind: u8,
    times: (u64, u64),
    attributes: Vec<Value>,
    error: Option<String>,
}

impl<'a> Span<'a> {
    fn new(trace: &'a TraceContext, span_id: &'a str, parent_id: Option<&'a str>) -> Self {
        Span {
            trace_id: &trace.trace_id,
            span_id,
            parent_id,
            name: String::new(),
            kind: INTERNAL,
            times: (0, 0),
            attributes: Vec::new(),
            error: None,
        }
    }

    /// The OTLP JSON span: ids in hex, times as decimal strings of Unix nanoseconds.
    fn to_json(&self) -> Value {
        let nanos = |ms: u64| (u128::from(ms) * 1_000_000).to_string();
        let mut span = json!({
            "traceId": self.trace_id,
            "spanId": self.span_id,
            "name": self.name,
            "kind": self.kind,
            "startTimeUnixNano": nanos(self.times.0),
            "endTimeUnixNano": nanos(self.times.1.max(self.times.0)),
            "attributes": self.attributes,
            "status": match &self.error {
                // STATUS_CODE_ERROR.
                Some(message) => json!({"code": 2, "message": message}),
                None => json!({"code": 0}),
            },
        });
        if let Some(parent) = self.parent_id {
            span["parentSpanId"] = json!(parent);
        }
        span
    }
}

/// One OTLP `KeyValue`: strings, integers (as decimal strings), doubles, booleans and
/// arrays of strings.
fn attribute(key: &str, value: Value) -> Value {
    let any = |value: &Value| match value {
        Value::String(text) => json!({"stringValue": text}),
        Value::Bool(flag) => json!({"boolValue": flag}),
        Value::Number(number) if number.is_f64() => json!({"doubleValue": number}),
        Value::Number(number) => json!({"intValue": number.to_string()}),
        other => json!({"stringValue": other.to_string()}),
    };
    let value = match &value {
        Value::Array(items) => {
            json!({"arrayValue": {"values": items.iter().map(any).collect::<Vec<_>>()}})
        }
        single => any(single),
    };
    json!({"key": key, "value": value})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::source::ConfigSource;
    use crate::observe::log::{AttemptLog, Stage, StreamEnd};

    /// Secrets and vars alike, from a list.
    struct MapSource(Vec<(&'static str, &'static str)>);

    impl MapSource {
        fn new(pairs: &[(&'static str, &'static str)]) -> Self {
            MapSource(pairs.to_vec())
        }
    }

    impl ConfigSource for MapSource {
        fn var(&self, name: &str) -> Option<String> {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
        fn secret(&self, name: &str) -> Option<String> {
            self.var(name)
        }
    }

    fn counter() -> impl FnMut() -> u32 {
        let mut next = 0;
        move || {
            next += 1;
            next
        }
    }

    fn trace(flags: &str) -> TraceContext {
        TraceContext {
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            parent_id: Some("b7ad6b7169203331".into()),
            flags: flags.into(),
            tracestate: None,
        }
    }

    fn streamed() -> RequestLog {
        RequestLog {
            ts: 1_000,
            request_id: "r1".into(),
            method: "POST".into(),
            route: "chat_completions",
            status: 200,
            model: Some("fast".into()),
            provider: Some("openai".into()),
            upstream_model: Some("gpt-x".into()),
            stream: true,
            latency_ms: 500,
            ttfb_ms: Some(120),
            prompt_tokens: Some(12),
            completion_tokens: Some(34),
            stream_outcome: Some(StreamEnd::Completed),
            chain: vec![
                AttemptLog {
                    target: "openai/gpt-x".into(),
                    outcome: "503".into(),
                    ms: 20,
                    start_ms: 1_010,
                },
                AttemptLog {
                    target: "openai/gpt-x".into(),
                    outcome: "ok".into(),
                    ms: 90,
                    start_ms: 1_040,
                },
            ],
            stages: vec![Stage {
                name: "limiter",
                start_ms: 1_002,
                end_ms: 1_008,
            }],
            ..RequestLog::default()
        }
    }

    fn attributes(span: &Value) -> std::collections::BTreeMap<String, Value> {
        span["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|kv| (kv["key"].as_str().unwrap().to_owned(), kv["value"].clone()))
            .collect()
    }

    #[test]
    fn a_request_becomes_a_tree_of_spans_under_the_clients_span() {
        let spans = spans_of(&streamed(), &trace("01"), counter());
        let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["chat fast", "limiter", "chat gpt-x", "chat gpt-x", "stream"]
        );
        let root = &spans[0];
        assert_eq!(root["spanId"], "00f067aa0ba902b7");
        assert_eq!(root["parentSpanId"], "b7ad6b7169203331");
        assert_eq!(
            (root["kind"].as_u64(), root["status"]["code"].as_u64()),
            (Some(2), Some(0))
        );
        assert_eq!(root["startTimeUnixNano"], "1000000000");
        assert_eq!(root["endTimeUnixNano"], "1500000000");
        let attrs = attributes(root);
        assert_eq!(
            attrs["gen_ai.request.model"],
            json!({"stringValue": "fast"})
        );
        assert_eq!(
            attrs["gen_ai.response.model"],
            json!({"stringValue": "gpt-x"})
        );
        assert_eq!(
            attrs["gen_ai.usage.input_tokens"],
            json!({"intValue": "12"})
        );
        assert_eq!(
            attrs["gen_ai.usage.output_tokens"],
            json!({"intValue": "34"})
        );
        assert_eq!(
            attrs["gen_ai.operation.name"],
            json!({"stringValue": "chat"})
        );
        for child in &spans[1..] {
            assert_eq!(child["parentSpanId"], "00f067aa0ba902b7");
            assert_eq!(child["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(child["spanId"].as_str().unwrap().len(), 16);
        }
        let failed = &spans[2];
        assert_eq!(
            (failed["kind"].as_u64(), failed["status"]["code"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(failed["startTimeUnixNano"], "1010000000");
        assert_eq!(
            attributes(&spans[3])["gen_ai.system"],
            json!({"stringValue": "openai"})
        );
        assert_eq!(spans[4]["startTimeUnixNano"], "1120000000");
    }

    #[test]
    fn unsampled_traces_export_nothing() {
        assert!(spans_of(&streamed(), &trace("00"), counter()).is_empty());
    }

    #[test]
    fn settings_come_from_the_standard_variables() {
        let source = MapSource::new(&[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "https://collector.example/otlp/",
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "Authorization=Bearer%20abc, x-team = t1",
            ),
        ]);
        let mut reader = Reader::new(&source);
        let config = OtlpConfig::load(&mut reader).unwrap();
        assert_eq!(
            config.traces_url,
            "https://collector.example/otlp/v1/traces"
        );
        let headers: Vec<(&str, &str)> = config
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.expose()))
            .collect();
        assert_eq!(headers, [("authorization", "Bearer abc"), ("x-team", "t1")]);
        assert_eq!(config.service_name, "edge-llm-gateway");
        assert!(!reader.has_errors());

        let plain = MapSource::new(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.example")]);
        let mut reader = Reader::new(&plain);
        assert!(OtlpConfig::load(&mut reader).is_none());
        assert!(reader.has_errors());
        let none = MapSource::new(&[]);
        assert!(OtlpConfig::load(&mut Reader::new(&none)).is_none());
        let body: Value =
            serde_json::from_str(&config.export_body(vec![json!({"name": "x"})])).unwrap();
        let resource = &body["resourceSpans"][0];
        assert_eq!(
            resource["resource"]["attributes"][0]["value"]["stringValue"],
            "edge-llm-gateway"
        );
        assert_eq!(resource["scopeSpans"][0]["spans"][0]["name"], "x");
    }
}
