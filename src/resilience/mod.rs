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

use crate::config::source::Reader;
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

impl ResiliencePolicy {
    pub fn load(r: &mut Reader) -> ResiliencePolicy {
        let retry = RetryPolicy {
            retries: r.number("UPSTREAM_RETRIES", 2, 0, 10),
            base_delay_ms: r.number("RETRY_BASE_DELAY_MS", 250, 0, 60_000),
            max_delay_ms: r.number("RETRY_MAX_DELAY_MS", 8_000, 0, 600_000),
        };
        let breaker = BreakerPolicy {
            consecutive_failures: r.number("BREAKER_CONSECUTIVE_FAILURES", 5, 0, 1_000),
            failure_rate_percent: r.number("BREAKER_FAILURE_RATE_PERCENT", 50, 0, 100),
            min_requests: r.number("BREAKER_MIN_REQUESTS", 20, 1, 100_000),
            window_ms: u64::from(r.number("BREAKER_WINDOW_SECONDS", 60, 1, 86_400)) * 1_000,
            cooldown_ms: u64::from(r.number("BREAKER_COOLDOWN_SECONDS", 30, 1, 86_400)) * 1_000,
        };
        ResiliencePolicy {
            retry,
            ttfb_timeout_ms: r.number("UPSTREAM_TTFB_TIMEOUT_MS", 30_000, 1, 600_000),
            idle_timeout_ms: r.number("UPSTREAM_IDLE_TIMEOUT_MS", 30_000, 1, 600_000),
            total_timeout_ms: r.number("UPSTREAM_TOTAL_TIMEOUT_MS", 300_000, 1, 3_600_000),
            breaker,
            degraded_message: r.text("DEGRADED_MESSAGE"),
        }
    }
}
