//! Rate limits and budgets per principal: requests and tokens per window, concurrent
//! requests, and spend per UTC day and month.
//!
//! Each principal's state lives in its own Durable Object (see `platform::limiter`), which
//! runs the pure [`limiter::Limiter`] with its clock. The Worker sends the principal's
//! [`TierLimits`] with every request, so a config change applies at once and the object
//! needs no config of its own.
//!
//! [`bucket`] is the exact token bucket, [`period`] the UTC calendar, [`price`] the cost
//! of a request, [`headers`] the `x-ratelimit-*` and `retry-after` headers.

pub mod admission;
pub mod bucket;
pub mod headers;
pub mod limiter;
pub mod period;
pub mod price;

use serde::{Deserialize, Serialize};

use self::bucket::{Rate, MAX_LIMIT_WINDOW};
use self::limiter::Refusal;
use crate::config::source::Reader;
use crate::error::{ErrorKind, GatewayError};
use crate::sorted_map::SortedMap;
use crate::wire_name::{serde_by_wire_name, WireName};

/// The limits of a tier (and the shape of a key's overrides). A limit left out is not
/// enforced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    /// Requests per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Rate>,
    /// Tokens (prompt + completion) per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Rate>,
    /// Requests in flight at once (streams included, until they end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrent: Option<u32>,
    /// Spend per UTC day, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_usd: Option<f64>,
    /// Spend per UTC month, in USD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_usd: Option<f64>,
}

impl TierLimits {
    /// Whether nothing is limited (the limiter is then not consulted at all).
    pub fn is_unlimited(&self) -> bool {
        *self == TierLimits::default()
    }

    /// These limits with every limit `overrides` sets replacing this one's.
    pub fn overridden_by(&self, overrides: &TierLimits) -> TierLimits {
        TierLimits {
            requests: overrides.requests.or(self.requests),
            tokens: overrides.tokens.or(self.tokens),
            concurrent: overrides.concurrent.or(self.concurrent),
            daily_usd: overrides.daily_usd.or(self.daily_usd),
            monthly_usd: overrides.monthly_usd.or(self.monthly_usd),
        }
    }

    /// The first thing wrong with these limits, if any.
    pub fn problem(&self) -> Option<String> {
        for (name, rate) in [("requests", self.requests), ("tokens", self.tokens)] {
            let Some(rate) = rate else { continue };
            if rate.limit == 0 || rate.window_s == 0 {
                return Some(format!("{name}: limit and window_s must be at least 1"));
            }
            if rate.limit.saturating_mul(rate.window_s.into()) > MAX_LIMIT_WINDOW {
                return Some(format!("{name}: limit × window_s must be at most 2^40"));
            }
        }
        if self.concurrent == Some(0) {
            return Some("concurrent must be at least 1".to_owned());
        }
        for (name, budget) in [
            ("daily_usd", self.daily_usd),
            ("monthly_usd", self.monthly_usd),
        ] {
            if budget.is_some_and(|usd| !usd.is_finite() || !(0.0..=1e9).contains(&usd)) {
                return Some(format!("{name} must be from 0 to 1000000000"));
            }
        }
        None
    }
}

/// What to do when a principal's limiter cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Refuse with 503 `rate_limiter_unavailable` (the default: limits are a promise).
    #[default]
    Closed,
    /// Serve the request unlimited, and say so in its log line.
    Open,
}

impl WireName for FailureMode {
    const NAMES: &'static [(&'static str, Self)] =
        &[("closed", FailureMode::Closed), ("open", FailureMode::Open)];
}

serde_by_wire_name!(FailureMode);

/// `RATE_LIMITS`: limits per tier and how they are enforced.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Limits by tier name. A principal whose tier is not listed gets `free`'s.
    pub tiers: SortedMap<String, TierLimits>,
    /// When the limiter is unreachable.
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// How long a request holds its concurrency slot if it never reports back (an isolate
    /// that died mid-stream); a stream that runs longer gives its slot back early.
    #[serde(default = "default_lease_ttl_s")]
    pub lease_ttl_s: u32,
    /// Output tokens reserved for a request that sets no `max_tokens`.
    #[serde(default = "default_reserved_output_tokens")]
    pub reserved_output_tokens: u32,
}

fn default_lease_ttl_s() -> u32 {
    900
}

fn default_reserved_output_tokens() -> u32 {
    1_024
}

/// The limits used when `RATE_LIMITS` is not set.
pub const DEFAULT_RATE_LIMITS: &str = r#"{
  "tiers": {
    "free": {
      "requests": {"limit": 60, "window_s": 60},
      "tokens": {"limit": 100000, "window_s": 60},
      "concurrent": 4,
      "daily_usd": 1,
      "monthly_usd": 10
    },
    "pro": {
      "requests": {"limit": 600, "window_s": 60},
      "tokens": {"limit": 2000000, "window_s": 60},
      "concurrent": 32,
      "daily_usd": 100,
      "monthly_usd": 1000
    },
    "enterprise": {
      "requests": {"limit": 6000, "window_s": 60},
      "tokens": {"limit": 20000000, "window_s": 60},
      "concurrent": 256
    }
  }
}"#;

impl RateLimitConfig {
    /// `RATE_LIMITS`; `None` when it cannot be read (the problem is noted).
    pub fn load(r: &mut Reader) -> Option<RateLimitConfig> {
        let limits: Option<RateLimitConfig> = r.json("RATE_LIMITS", DEFAULT_RATE_LIMITS);
        for problem in limits.iter().flat_map(RateLimitConfig::problems) {
            r.error(problem);
        }
        limits
    }

    /// Every problem with the config, one sentence each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .tiers
            .iter()
            .filter_map(|(tier, limits)| {
                limits
                    .problem()
                    .map(|problem| format!("RATE_LIMITS.tiers.{tier}.{problem}"))
            })
            .collect();
        if !self.tiers.contains_key("free") {
            problems.push("RATE_LIMITS.tiers must define `free`, the fallback tier".to_owned());
        }
        if self.lease_ttl_s == 0 {
            problems.push("RATE_LIMITS.lease_ttl_s must be at least 1".to_owned());
        }
        problems
    }

    /// The limits for a principal of `tier` with a key's `overrides`.
    pub fn limits_for(&self, tier: &str, overrides: Option<&TierLimits>) -> TierLimits {
        let base = self
            .tiers
            .get(tier)
            .or_else(|| self.tiers.get("free"))
            .cloned()
            .unwrap_or_default();
        match overrides {
            Some(overrides) => base.overridden_by(overrides),
            None => base,
        }
    }

    /// The most output a request may produce: `max_tokens` (or the configured default)
    /// for each of its `n` choices.
    pub fn max_output(&self, max_tokens: Option<u32>, n: Option<u32>) -> u64 {
        u64::from(max_tokens.unwrap_or(self.reserved_output_tokens))
            * u64::from(n.unwrap_or(1).max(1))
    }
}

/// The 429 for a refused request, naming the limit.
pub fn refusal_error(refusal: Refusal, limits: &TierLimits, reserved_tokens: u64) -> GatewayError {
    let rate = |rate: Option<Rate>| rate.map_or(0, |rate| rate.limit);
    let window = |rate: Option<Rate>| rate.map_or(0, |rate| rate.window_s);
    let (kind, message) = match refusal {
        Refusal::Requests => (
            ErrorKind::RateLimitExceeded,
            format!(
                "rate limit reached: {} requests per {} s",
                rate(limits.requests),
                window(limits.requests)
            ),
        ),
        Refusal::Tokens => (
            ErrorKind::RateLimitExceeded,
            format!(
                "rate limit reached: {} tokens per {} s (this request reserves {reserved_tokens})",
                rate(limits.tokens),
                window(limits.tokens)
            ),
        ),
        Refusal::TokensExceedLimit => (
            ErrorKind::RateLimitExceeded,
            format!(
                "request too large: it reserves {reserved_tokens} tokens (prompt + max_tokens) \
                 but the limit is {} tokens per {} s; lower max_tokens",
                rate(limits.tokens),
                window(limits.tokens)
            ),
        ),
        Refusal::Concurrency => (
            ErrorKind::RateLimitExceeded,
            format!(
                "concurrency limit reached: {} requests in flight at once",
                limits.concurrent.unwrap_or(0)
            ),
        ),
        Refusal::DailyBudget => (
            ErrorKind::InsufficientQuota,
            format!(
                "daily budget of ${} reached; it resets at 00:00 UTC",
                limits.daily_usd.unwrap_or(0.0)
            ),
        ),
        Refusal::MonthlyBudget => (
            ErrorKind::InsufficientQuota,
            format!(
                "monthly budget of ${} reached; it resets on the 1st at 00:00 UTC",
                limits.monthly_usd.unwrap_or(0.0)
            ),
        ),
    };
    GatewayError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_modes_read_and_write_their_names() {
        let all = [FailureMode::Closed, FailureMode::Open];
        crate::wire_name::tests::every_name_reads_back(&all);
    }

    fn config() -> RateLimitConfig {
        serde_json::from_str(DEFAULT_RATE_LIMITS).unwrap()
    }

    #[test]
    fn the_default_config_is_valid() {
        let config = config();
        assert_eq!(config.problems(), Vec::<String>::new());
        assert_eq!(config.failure_mode, FailureMode::Closed);
        assert_eq!(config.lease_ttl_s, 900);
    }

    #[test]
    fn unknown_tiers_fall_back_to_free_and_keys_override_single_limits() {
        let config = config();
        let free = config.limits_for("free", None);
        assert_eq!(config.limits_for("platinum", None), free);
        let overrides = TierLimits {
            concurrent: Some(1),
            ..TierLimits::default()
        };
        let limited = config.limits_for("pro", Some(&overrides));
        assert_eq!(limited.concurrent, Some(1));
        assert_eq!(limited.requests, config.limits_for("pro", None).requests);
        assert!(config.limits_for("enterprise", None).daily_usd.is_none());
        assert!(TierLimits::default().is_unlimited());
    }

    #[test]
    fn bad_limits_are_reported() {
        let bad: RateLimitConfig = serde_json::from_str(
            r#"{"tiers": {"pro": {"requests": {"limit": 0, "window_s": 60}, "concurrent": 0}}}"#,
        )
        .unwrap();
        let problems = bad.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("RATE_LIMITS.tiers.pro.requests"));
        let huge = TierLimits {
            tokens: Some(Rate {
                limit: u64::MAX,
                window_s: 60,
            }),
            ..TierLimits::default()
        };
        assert!(huge.problem().is_some());
    }

    #[test]
    fn output_reservations_use_max_tokens_or_the_default_per_choice() {
        let config = config();
        assert_eq!(config.max_output(Some(50), None), 50);
        assert_eq!(config.max_output(None, Some(1)), 1_024);
        assert_eq!(config.max_output(Some(50), Some(3)), 150);
    }

    #[test]
    fn refusals_name_the_limit_and_map_to_openai_codes() {
        let limits = config().limits_for("free", None);
        let requests = refusal_error(Refusal::Requests, &limits, 10);
        assert_eq!(
            (requests.status(), requests.code()),
            (429, "rate_limit_exceeded")
        );
        assert!(requests.message.contains("60 requests per 60 s"));
        let budget = refusal_error(Refusal::DailyBudget, &limits, 10);
        assert_eq!(
            (budget.status(), budget.code()),
            (429, "insufficient_quota")
        );
        let tokens = refusal_error(Refusal::TokensExceedLimit, &limits, 200_000);
        assert!(tokens.message.contains("lower max_tokens"));
    }
}
