//! Admission to a principal's limits: what a request asks of its limiter object, and what
//! becomes of the answer, also when the object cannot be reached
//! (`RATE_LIMITS.failure_mode`).

use super::limiter::{AdmitRequest, AdmitResponse, Standing};
use super::price::Price;
use super::{refusal_error, FailureMode, RateLimitConfig, TierLimits};
use crate::error::GatewayError;

/// What a request asks of its principal's limiter before its upstream call.
pub struct Ask<'a> {
    /// The request id (the lease's name).
    pub request_id: &'a str,
    /// The upstream model's price, if it has one.
    pub price: Option<Price>,
    /// The prompt's estimated tokens.
    pub prompt_tokens: u64,
    /// The most the answer may write.
    pub max_output_tokens: u64,
}

impl Ask<'_> {
    /// The limiter call for this ask under `limits`: a request unit, a concurrency lease,
    /// the estimated prompt plus the most the answer may write, and their estimated cost.
    pub fn request(&self, limits: TierLimits, config: &RateLimitConfig) -> AdmitRequest {
        AdmitRequest {
            lease: self.request_id.to_owned(),
            limits,
            tokens: self.prompt_tokens + self.max_output_tokens,
            cost_nanousd: self.price.map_or(0, |price| {
                price.estimate_nanousd(self.prompt_tokens, self.max_output_tokens)
            }),
            lease_ttl_ms: u64::from(config.lease_ttl_s) * 1_000,
            settle: Vec::new(),
        }
    }
}

/// What the limiter's answer (or its absence) decides.
#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Admitted; where the principal stands now.
    Admitted(Standing),
    /// Refused: the 429 (with its wait), where the principal stands, and the limit.
    Refused {
        /// The error for the client.
        error: GatewayError,
        /// Where the principal stands.
        standing: Standing,
        /// The limit that refused it (`requests`, `daily_budget`, ...).
        limit: &'static str,
    },
    /// The limiter could not be reached and the policy is to serve the request unlimited.
    FailedOpen,
    /// The limiter could not be reached and the policy is to refuse (503).
    FailedClosed(GatewayError),
}

/// Decides on `request` from the limiter's `answer`, under the `failure_mode` for when
/// there is none.
pub fn decide(
    request: &AdmitRequest,
    answer: Result<AdmitResponse, GatewayError>,
    failure_mode: FailureMode,
) -> Decision {
    let answer = match (answer, failure_mode) {
        (Ok(answer), _) => answer,
        (Err(error), FailureMode::Closed) => return Decision::FailedClosed(error),
        (Err(_), FailureMode::Open) => return Decision::FailedOpen,
    };
    match answer.refused {
        Some(refusal) => Decision::Refused {
            error: refusal_error(refusal, &request.limits, request.tokens)
                .with_retry_after_ms(answer.retry_after_ms),
            standing: answer.standing,
            limit: refusal.name(),
        },
        None => Decision::Admitted(answer.standing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::limit::limiter::{Limiter, Refusal};

    fn config(failure_mode: &str) -> RateLimitConfig {
        let text = format!(
            r#"{{"tiers": {{"free": {{"requests": {{"limit": 1, "window_s": 60}}}}}}, "failure_mode": "{failure_mode}"}}"#
        );
        serde_json::from_str(&text).unwrap()
    }

    fn ask(request_id: &str) -> Ask<'_> {
        Ask {
            request_id,
            price: None,
            prompt_tokens: 10,
            max_output_tokens: 20,
        }
    }

    #[test]
    fn an_ask_reserves_its_prompt_and_the_most_it_may_write() {
        let config = config("closed");
        let request = ask("r1").request(config.limits_for("free", None), &config);
        assert_eq!((request.lease.as_str(), request.tokens), ("r1", 30));
        assert_eq!(request.lease_ttl_ms, u64::from(config.lease_ttl_s) * 1_000);
    }

    #[test]
    fn answers_admit_or_refuse_and_silence_follows_the_failure_mode() {
        let config = config("closed");
        let request = ask("r1").request(config.limits_for("free", None), &config);
        let mut limiter = Limiter::default();
        let first = limiter.admit(0, &request);
        assert!(matches!(
            decide(&request, Ok(first), FailureMode::Closed),
            Decision::Admitted(_)
        ));
        let second = limiter.admit(
            1,
            &AdmitRequest {
                lease: "r2".into(),
                ..request.clone()
            },
        );
        assert_eq!(second.refused, Some(Refusal::Requests));
        match decide(&request, Ok(second), FailureMode::Closed) {
            Decision::Refused { error, limit, .. } => {
                assert_eq!((error.status(), limit), (429, "requests"));
                assert!(error.retry_after_ms.is_some_and(|ms| ms > 0));
            }
            other => panic!("{other:?}"),
        }
        let down = || Err(GatewayError::new(ErrorKind::RateLimiterUnavailable, "down"));
        assert_eq!(
            decide(&request, down(), FailureMode::Open),
            Decision::FailedOpen
        );
        match decide(&request, down(), FailureMode::Closed) {
            Decision::FailedClosed(error) => assert_eq!(error.status(), 503),
            other => panic!("{other:?}"),
        }
    }
}
