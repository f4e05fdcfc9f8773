//! What the pipeline needs from the platform, as small traits. The pipeline is plain Rust
//! over them: `platform/` implements them on the Workers runtime, and host tests
//! implement them with fakes (a clock that the test moves, scripted upstreams).

use std::future::Future;

use futures_util::future::{select, Either};

use crate::api::chat::{ChatCompletion, Usage};
use crate::error::GatewayError;
use crate::limit::price::Price;
use crate::observe::log::RequestLog;
use crate::resilience::breaker::Transition;
use crate::upstream::HttpCall;

/// Everything one request does through the platform. Cloned freely: clones share the
/// request's platform handles.
pub trait Ports: Clone + 'static {
    /// The body of an upstream answer.
    type Body: UpstreamBody + 'static;
    /// What an admitted request owes its rate limiter.
    type Settlement: Settle + 'static;
    /// Stores a request's answer in the response cache.
    type CacheWriter: CacheWrite + 'static;
    /// A timer: ready once its time has passed, cancelled when dropped before. It owns
    /// what it needs, so it can be kept and awaited again across reads.
    type Timer: Future<Output = ()> + Unpin + 'static;

    /// Unix milliseconds.
    fn now_ms(&self) -> u64;
    /// A timer that is ready `ms` milliseconds from now.
    fn sleep(&self, ms: u64) -> Self::Timer;
    /// A uniformly random `u32` (jitter, weighted picks).
    fn random_u32(&self) -> u32;
    /// Sends `call` upstream, waiting at most `ttfb_timeout_ms` for the response headers
    /// (504 `upstream_timeout` when they do not come in time, 502 when the connection
    /// fails). Redirects are answered as they are, never followed.
    fn send(
        &self,
        call: &HttpCall,
        ttfb_timeout_ms: u64,
    ) -> impl Future<Output = Result<UpstreamResponse<Self::Body>, GatewayError>>;
    /// Whether the client has gone away.
    fn client_gone(&self) -> bool;
    /// Writes the request's log line (if its level is enabled) and records its metrics.
    fn emit(&self, log: &mut RequestLog);
    /// A circuit breaker changed state: its own log line, and a metric.
    fn breaker_transition(&self, transition: &Transition);
}

/// An upstream's answer: its status, the headers the pipeline reads, and its body.
pub struct UpstreamResponse<B> {
    /// The HTTP status.
    pub status: u16,
    /// `retry-after-ms`, as sent.
    pub retry_after_ms: Option<String>,
    /// `Retry-After`, as sent.
    pub retry_after: Option<String>,
    /// `Content-Length`, when it is a number.
    pub content_length: Option<u64>,
    /// The body; dropping it closes the connection.
    pub body: B,
}

/// The body of an upstream answer, read piece by piece.
pub trait UpstreamBody {
    /// The next piece: `None` at the end (or once cancelled), `Some(Err(()))` when the
    /// connection broke.
    fn next(&mut self) -> impl Future<Output = Option<Result<Vec<u8>, ()>>>;
}

/// What an admitted request owes its rate limiter when it ends.
pub trait Settle: Sized {
    /// The same settlement, charged at `price` (the model that answered: a fallback may
    /// have changed it since admission).
    fn repriced(self, price: Option<Price>) -> Self;
    /// Settles with `usage`.
    fn settle(self, usage: &Usage);
}

/// Stores one request's answer in the response cache.
pub trait CacheWrite {
    /// Stores `completion` if it may be stored; whether it was.
    fn store(&self, completion: &ChatCompletion) -> bool;
}

/// `future`'s output, or `None` when it takes longer than `ms` (it is then dropped).
pub async fn within<P: Ports, T>(ports: &P, ms: u64, future: impl Future<Output = T>) -> Option<T> {
    let deadline = ports.sleep(ms);
    futures_util::pin_mut!(future);
    futures_util::pin_mut!(deadline);
    match select(future, deadline).await {
        Either::Left((output, _)) => Some(output),
        Either::Right(_) => None,
    }
}
