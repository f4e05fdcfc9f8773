//! Trace export: each isolate queues its requests' spans (at most
//! [`MAX_QUEUED_SPANS`]; past that, new spans are dropped and counted) and sends them to
//! the OTLP/HTTP JSON endpoint in batches, under `waitUntil`, never on a request's path:
//! [`EXPORT_DELAY_MS`] after the first queued span, or at once when
//! [`EXPORT_BATCH_SPANS`] are waiting.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::Value;

use super::background::{Background, BatchSend};
use super::crypto::random_u32;
use super::fetch;
use crate::observe::log::RequestLog;
use crate::observe::otlp::{spans_of, OtlpConfig, EXPORT_BATCH_SPANS, MAX_QUEUED_SPANS};
use crate::upstream::HttpCall;

/// How long queued spans wait for more before they are sent.
const EXPORT_DELAY_MS: u64 = 1_000;
/// How long the collector has to answer an export.
const EXPORT_TIMEOUT_MS: u64 = 10_000;

thread_local! {
    /// Spans waiting to be sent.
    static QUEUE: RefCell<Vec<Value>> = const { RefCell::new(Vec::new()) };
    /// The next export, if one is scheduled.
    static EXPORT: BatchSend = const { BatchSend::new() };
    /// Spans dropped because the queue was full or an export failed.
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

/// Queues the spans of one request and schedules their export.
pub fn export(config: &Rc<OtlpConfig>, background: &Background, log: &RequestLog) {
    let Some(trace) = &log.trace else {
        return;
    };
    let spans = spans_of(log, trace, random_u32);
    if spans.is_empty() {
        return;
    }
    let queued = QUEUE.with(|queue| {
        let mut queue = queue.borrow_mut();
        let room = MAX_QUEUED_SPANS.saturating_sub(queue.len());
        let dropped = spans.len().saturating_sub(room);
        queue.extend(spans.into_iter().take(room));
        DROPPED.with(|count| count.set(count.get() + dropped as u64));
        queue.len()
    });
    let config = Rc::clone(config);
    if queued >= EXPORT_BATCH_SPANS {
        background.run(async move { send(&config).await });
    } else {
        background.run_batched(&EXPORT, EXPORT_DELAY_MS, move || async move {
            send(&config).await
        });
    }
}

/// Sends every queued span in one export; on failure they are dropped (and counted), so
/// that a collector that is down costs memory no longer than one batch.
async fn send(config: &OtlpConfig) {
    let spans = QUEUE.with(|queue| std::mem::take(&mut *queue.borrow_mut()));
    if spans.is_empty() {
        return;
    }
    let count = spans.len() as u64;
    let call = HttpCall {
        url: config.traces_url.clone(),
        headers: vec![("content-type", "application/json".to_owned())],
        body: config.export_body(spans),
    };
    let headers: Vec<(&str, &str)> = config
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.expose()))
        .collect();
    let exported = match fetch::send(&call, &headers, EXPORT_TIMEOUT_MS).await {
        Ok(response) => (200..300).contains(&response.status),
        Err(_) => false,
    };
    if !exported {
        DROPPED.with(|dropped| dropped.set(dropped.get() + count));
    }
}

/// Spans dropped so far by this isolate (and the count reset), for the metrics.
pub fn take_dropped() -> u64 {
    DROPPED.with(|dropped| dropped.replace(0))
}
