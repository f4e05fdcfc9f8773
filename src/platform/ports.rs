//! The pipeline's ports on the Workers runtime: time, timers and randomness, upstream
//! `fetch`, the client's request signal, and the log line and metrics.

use std::rc::Rc;

use web_sys::AbortSignal;

use super::cache::CacheWriter;
use super::clock::{now_ms, Timer};
use super::crypto::random_u32;
use super::fetch::{self, FetchedBody};
use super::limiter::Settlement;
use super::metrics::Observer;
use crate::error::GatewayError;
use crate::observe::log::RequestLog;
use crate::observe::trace::TraceContext;
use crate::pipeline::ports::{Ports, UpstreamResponse};
use crate::resilience::breaker::Transition;
use crate::upstream::HttpCall;

/// One request's (or one queue message's) platform.
#[derive(Clone)]
pub struct WorkerPorts {
    /// Writes log lines and records metrics.
    pub observer: Observer,
    /// The client's request signal: aborted when it disconnects (a queue message's never
    /// is).
    pub client: AbortSignal,
    /// The request's trace, sent upstream as `traceparent` (and `tracestate`).
    pub trace: Option<Rc<TraceContext>>,
}

impl Ports for WorkerPorts {
    type Body = FetchedBody;
    type Settlement = Settlement;
    type CacheWriter = CacheWriter;
    type Timer = Timer;

    fn now_ms(&self) -> u64 {
        now_ms()
    }

    fn sleep(&self, ms: u64) -> Timer {
        Timer::after(ms)
    }

    fn random_u32(&self) -> u32 {
        random_u32()
    }

    async fn send(
        &self,
        call: &HttpCall,
        ttfb_timeout_ms: u64,
    ) -> Result<UpstreamResponse<FetchedBody>, GatewayError> {
        let traceparent = self.trace.as_ref().map(|trace| trace.traceparent());
        let tracestate = self
            .trace
            .as_ref()
            .and_then(|trace| trace.tracestate.as_deref());
        let extra: Vec<(&str, &str)> = [
            ("traceparent", traceparent.as_deref()),
            ("tracestate", tracestate),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
        .collect();
        fetch::send(call, &extra, ttfb_timeout_ms).await
    }

    fn client_gone(&self) -> bool {
        self.client.aborted()
    }

    fn emit(&self, log: &mut RequestLog) {
        self.observer.emit(log);
    }

    fn breaker_transition(&self, transition: &Transition) {
        self.observer.breaker_transition(transition);
    }
}
