//! Resilience: what the gateway does when a provider is slow, overloaded or down.
//!
//! A model alias routes to an ordered chain of targets. [`plan::AttemptPlan`] walks it:
//! each target is tried, retried after a backoff when the failure is worth retrying
//! ([`retry`]), and left for the next target when its retries are spent, its answer says
//! retrying is pointless, or its [`breaker`] is open. One deadline bounds every attempt
//! and every wait. All of it is plain data and arithmetic over a clock and random numbers
//! passed in; the platform layer runs the loop.

pub mod breaker;
pub mod plan;
pub mod retry;

use breaker::BreakerPolicy;
use retry::RetryPolicy;

/// How upstream calls are retried, timed out, broken off and degraded.
#[derive(Debug, Clone, PartialEq)]
pub struct ResiliencePolicy {
    /// Retries and backoff.
    pub retry: RetryPolicy,
    /// `UPSTREAM_TTFB_TIMEOUT_MS`: how long one attempt may wait for response headers.
    pub ttfb_timeout_ms: u32,
    /// `UPSTREAM_IDLE_TIMEOUT_MS`: the longest silence allowed between two pieces of an
    /// answer body (and before the first piece of a stream).
    pub idle_timeout_ms: u32,
    /// `UPSTREAM_TOTAL_TIMEOUT_MS`: the whole request, every attempt, wait and stream
    /// included.
    pub total_timeout_ms: u32,
    /// The circuit breaker's thresholds.
    pub breaker: BreakerPolicy,
    /// `DEGRADED_MESSAGE`: when set, the answer given (marked `x-gateway-degraded: true`)
    /// instead of 503 `all_providers_failed` when every target failed.
    pub degraded_message: Option<String>,
}
