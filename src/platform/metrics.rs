//! The request's log line and metrics: each isolate writes the line, adds the request to
//! its pending [`Metrics`] batch and sends the batch to one of `METRICS_SHARDS`
//! [`MetricsShard`] Durable Objects at most every [`FLUSH_DELAY_MS`], under `waitUntil`,
//! never on the request's path. `GET /metrics` merges the shards.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::json;
use worker::{
    durable_object, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State,
};

use super::background::{Background, BatchSend};
use super::clock::now_ms;
use super::crypto::random_u32;
use super::feedback;
use super::objects::{self, Alarm};
use super::otlp;
use crate::api::feedback::Satisfaction;
use crate::error::{ErrorKind, GatewayError};
use crate::observe::log::{breaker_line, LogLevel, RequestLog};
use crate::observe::metrics::{
    InFlightReport, Metrics, ShardCall, TeamUsage, IN_FLIGHT_HEARTBEAT_MS,
};
use crate::observe::otlp::OtlpConfig;
use crate::resilience::breaker::Transition;
use crate::sorted_map::SortedMap;

/// The Durable Object binding of [`MetricsShard`].
pub const BINDING: &str = "METRICS";

/// How long an isolate's batch waits for more requests before it is sent.
const FLUSH_DELAY_MS: u64 = 1_000;
/// How long a shard's changes wait in memory before they are written to SQLite.
const SAVE_DELAY_MS: u64 = 2_000;

thread_local! {
    /// This isolate's requests not yet sent to its shard.
    static PENDING: RefCell<Metrics> = RefCell::new(Metrics::default());
    /// The next flush of `PENDING`, if one is scheduled.
    static FLUSH: BatchSend = const { BatchSend::new() };
    /// This isolate's shard, picked at random once.
    static SHARD: u32 = random_u32();
    /// This isolate's id in in-flight reports, picked at random once.
    static ISOLATE: String = format!("{:08x}{:08x}", random_u32(), random_u32());
    /// This isolate's open requests by model alias.
    static OPEN: RefCell<SortedMap<String, u32>> = const { RefCell::new(SortedMap::new()) };
    /// Whether `OPEN` changed since it was last reported.
    static OPEN_CHANGED: Cell<bool> = const { Cell::new(false) };
}

/// Writes log lines and records metrics for one request.
#[derive(Clone)]
pub struct Observer {
    env: Env,
    background: Background,
    level: LogLevel,
    shards: u32,
    /// Whether the `METRICS` binding exists; without it nothing is recorded.
    metrics: bool,
    /// How long answered requests are remembered for their callers' ratings (0: not).
    feedback_ttl_s: u32,
    /// Where trace spans are exported, if anywhere.
    otlp: Option<Rc<OtlpConfig>>,
}

impl Observer {
    /// An observer writing lines of at least `level`, sending to `shards` shards.
    pub fn new(env: &Env, background: &Background, level: LogLevel, shards: u32) -> Self {
        Observer {
            env: env.clone(),
            background: background.clone(),
            level,
            shards,
            metrics: env.durable_object(BINDING).is_ok(),
            feedback_ttl_s: 0,
            otlp: None,
        }
    }

    /// The same observer, exporting each request's trace spans as `otlp` says.
    pub fn exporting(self, otlp: Option<&OtlpConfig>) -> Self {
        Observer {
            otlp: otlp.cloned().map(Rc::new),
            ..self
        }
    }

    /// The same observer, remembering each answered request's caller for `ttl_s` (so
    /// that it can be rated).
    pub fn remembering(self, ttl_s: u32) -> Self {
        Observer {
            feedback_ttl_s: ttl_s,
            ..self
        }
    }

    /// Counts the request (its model known) as open in this isolate until its line is
    /// written.
    pub fn opened(&self, log: &mut RequestLog) {
        let Some(model) = log.model.clone().filter(|_| self.metrics && !log.in_flight) else {
            return;
        };
        log.in_flight = true;
        OPEN.with(|open| *open.borrow_mut().get_or_default(&model) += 1);
        OPEN_CHANGED.with(|changed| changed.set(true));
        self.schedule_flush(FLUSH_DELAY_MS);
    }

    /// Writes the request's line (if its level is enabled) and records its metrics.
    pub fn emit(&self, log: &mut RequestLog) {
        log.conclude();
        if let (true, Some(model)) = (std::mem::take(&mut log.in_flight), &log.model) {
            closed(model);
        }
        if self.level.allows(log.level) {
            worker::console_log!("{}", log.to_line());
        }
        feedback::remember(&self.env, &self.background, log, self.feedback_ttl_s);
        if let Some(otlp) = &self.otlp {
            otlp::export(otlp, &self.background, log);
        }
        if !self.metrics {
            return;
        }
        PENDING.with(|pending| {
            let mut pending = pending.borrow_mut();
            pending.record(log, now_ms());
            let dropped = otlp::take_dropped();
            if dropped > 0 {
                pending.add("gateway_trace_spans_dropped_total", &[], dropped as f64);
            }
        });
        self.schedule_flush(FLUSH_DELAY_MS);
    }

    /// Sends the pending batch in `delay_ms`, unless a flush at least as early is due.
    /// While requests are open, each flush schedules the next one, so that this isolate's
    /// in-flight report stays fresh.
    fn schedule_flush(&self, delay_ms: u64) {
        let observer = self.clone();
        self.background
            .run_batched(&FLUSH, delay_ms, move || async move {
                let _ = flush(&observer.env, observer.shards).await;
                let idle = FLUSH.with(BatchSend::is_idle);
                if idle && OPEN.with(|open| !open.borrow().is_empty()) {
                    observer.schedule_flush(IN_FLIGHT_HEARTBEAT_MS);
                }
            });
    }

    /// Writes an event line (`warn`) and counts it: a circuit breaker's state change.
    pub fn breaker_transition(&self, transition: &Transition) {
        if self.level.allows("warn") {
            worker::console_log!("{}", breaker_line(transition, now_ms()));
        }
        if !self.metrics {
            return;
        }
        let labels = [
            ("target", transition.target.as_str()),
            ("to", transition.to),
        ];
        PENDING.with(|pending| {
            pending
                .borrow_mut()
                .add("gateway_breaker_transitions_total", &labels, 1.0)
        });
    }
}

/// A request of `model` that was open in this isolate ended.
fn closed(model: &str) {
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        if let Some(count) = open.get_mut(model) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(model);
            }
        }
    });
    OPEN_CHANGED.with(|changed| changed.set(true));
}

fn unavailable() -> GatewayError {
    GatewayError::new(
        ErrorKind::StoreUnavailable,
        "the metrics store (Durable Object METRICS) could not be reached",
    )
}

/// Sends this isolate's pending batch to its shard; on failure keeps it for the next try.
async fn flush(env: &Env, shards: u32) -> Result<(), GatewayError> {
    let mut batch = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    // The open requests go with every batch while there are any (a heartbeat), and once
    // more when the last one closes.
    let open = OPEN.with(|open| open.borrow().clone());
    if OPEN_CHANGED.with(|changed| changed.replace(false)) || !open.is_empty() {
        let report = InFlightReport {
            at_ms: now_ms(),
            open,
        };
        ISOLATE.with(|isolate| batch.report_in_flight(isolate, report));
    }
    if batch.is_empty() {
        return Ok(());
    }
    let namespace = env.durable_object(BINDING).map_err(|_| unavailable())?;
    let shard = SHARD.with(|shard| shard % shards);
    let shard = format!("shard:{shard}");
    let call = ShardCall::Add(batch);
    let added: Result<(), _> = objects::call(&namespace, &shard, &call).await;
    if added.is_err() {
        if let ShardCall::Add(batch) = call {
            PENDING.with(|pending| pending.borrow_mut().merge(batch));
        }
        return Err(unavailable());
    }
    Ok(())
}

/// Every shard's metrics merged, after sending this isolate's own pending batch (so a
/// scrape right after requests in the same isolate counts them all).
pub async fn collect(env: &Env, shards: u32) -> Result<Metrics, GatewayError> {
    flush(env, shards).await?;
    let namespace = env.durable_object(BINDING).map_err(|_| unavailable())?;
    let mut total = Metrics::default();
    for shard in 0..shards {
        let shard = format!("shard:{shard}");
        let part: Metrics = objects::call(&namespace, &shard, &ShardCall::Snapshot)
            .await
            .map_err(|_| unavailable())?;
        total.merge(part);
    }
    Ok(total)
}

/// `GET /admin/usage?team=`: what a team used today and this month (UTC).
pub async fn team_usage(env: &Env, shards: u32, team: &str) -> Result<String, GatewayError> {
    let now = now_ms();
    let (today, month) = collect(env, shards).await?.team_usage(team, now);
    let view = |usage: &TeamUsage| {
        json!({
            "requests": usage.requests,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cost_usd": usage.cost_nanousd as f64 / 1e9,
        })
    };
    let (today_view, month_view) = (view(&today), view(&month));
    let satisfaction = Satisfaction {
        today: today.scores,
        month: month.scores,
    };
    Ok(json!({
        "team": team,
        "today": today_view,
        "month": month_view,
        "satisfaction": satisfaction.view(),
    })
    .to_string())
}

/// One shard of the metrics: batches merged in memory, written to SQLite at most
/// [`SAVE_DELAY_MS`] after they change.
#[durable_object(alarm)]
pub struct MetricsShard {
    state: State,
    metrics: RefCell<Option<Metrics>>,
    alarm: Alarm,
}

impl DurableObject for MetricsShard {
    fn new(state: State, _env: Env) -> Self {
        MetricsShard {
            state,
            metrics: RefCell::new(None),
            alarm: Alarm::default(),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let changed = Cell::new(false);
        let response = objects::serve(req, |call| {
            let (reply, did_change) = self.apply(call)?;
            changed.set(did_change);
            Ok(reply)
        })
        .await;
        if changed.get() {
            // The first change since the last write sets the save; later ones ride along.
            let storage = self.state.storage();
            self.alarm.set_by(&storage, now_ms() + SAVE_DELAY_MS).await;
        }
        response
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        let sql = self.state.storage().sql();
        if let Some(metrics) = self.metrics.borrow().as_ref() {
            save(&sql, metrics).map_err(worker::Error::RustError)?;
        }
        Response::ok("")
    }
}

impl MetricsShard {
    /// Runs `call` on the metrics in memory, without awaiting; returns the reply and
    /// whether the metrics changed.
    fn apply(&self, call: ShardCall) -> Result<(String, bool), String> {
        let mut slot = self.metrics.borrow_mut();
        let metrics = match slot.as_mut() {
            Some(metrics) => metrics,
            None => slot.insert(load(&self.state.storage().sql())?),
        };
        Ok(metrics.handle(call, now_ms()))
    }
}

fn load(sql: &SqlStorage) -> Result<Metrics, String> {
    let failed = |err: worker::Error| format!("metrics storage failed: {err}");
    sql.exec(
        "CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)",
        None,
    )
    .map_err(failed)?;
    let rows: Vec<Vec<SqlStorageValue>> = sql
        .exec("SELECT state FROM metrics WHERE id = 1", None)
        .map_err(failed)?
        .raw()
        .collect::<worker::Result<_>>()
        .map_err(failed)?;
    match rows.first().map(Vec::as_slice) {
        Some([SqlStorageValue::String(state)]) => {
            serde_json::from_slice(state.as_bytes()).map_err(|err| err.to_string())
        }
        _ => Ok(Metrics::default()),
    }
}

fn save(sql: &SqlStorage, metrics: &Metrics) -> Result<(), String> {
    let state = serde_json::to_string(metrics).map_err(|err| err.to_string())?;
    sql.exec(
        "INSERT INTO metrics (id, state) VALUES (1, ?) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state",
        vec![state.into()],
    )
    .map(|_| ())
    .map_err(|err| format!("metrics storage failed: {err}"))
}
