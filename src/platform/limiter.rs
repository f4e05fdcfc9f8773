//! The Worker's side of a principal's [`super::limiter_object::RateLimiter`]: the
//! [`LimiterStub`] that calls it, [`admit`] before the upstream call and [`Settlement`]
//! after it.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use serde::de::DeserializeOwned;
use serde_json::Value;
use worker::{Env, ObjectNamespace};

use super::background::Background;
use super::clock::Timer;
use super::objects;
use crate::api::chat::Usage;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::limit::admission::{decide, Ask, Decision};
use crate::limit::limiter::{AdmitRequest, LimiterCall, SettleRequest, Standing, StatusRequest};
use crate::limit::price::Price;
use crate::limit::TierLimits;
use crate::pipeline::ports::Settle;

/// The Durable Object binding of [`super::limiter_object::RateLimiter`].
pub const BINDING: &str = "RATE_LIMITER";

/// A principal's limiter object, as seen from the Worker.
#[derive(Clone)]
pub struct LimiterStub {
    namespace: ObjectNamespace,
    name: String,
}

impl LimiterStub {
    /// The limiter of the principal with id `principal_id` (see
    /// [`crate::auth::PrincipalId`]: anonymous callers are limited per address, never all
    /// together).
    pub fn open(env: &Env, principal_id: &str) -> Result<Self, GatewayError> {
        Self::named(env, principal_id.to_owned())
    }

    fn named(env: &Env, name: String) -> Result<Self, GatewayError> {
        let namespace = env
            .durable_object(BINDING)
            .map_err(|_| unavailable("its Durable Object binding is missing"))?;
        Ok(LimiterStub { namespace, name })
    }

    /// Sends `call`, made by `build` around this isolate's unsent settlements for the
    /// principal; if the call fails they are kept for the next one (settling a lease
    /// twice is harmless: the object ignores the second time).
    async fn call<T: DeserializeOwned>(
        &self,
        build: impl FnOnce(Vec<SettleRequest>) -> LimiterCall,
    ) -> Result<T, GatewayError> {
        let unsent = UNSENT.with(|unsent| unsent.borrow_mut().remove(&self.name));
        let unsent = unsent.unwrap_or_default();
        let call = build(unsent.clone());
        let result = objects::call(&self.namespace, &self.name, &call)
            .await
            .map_err(unavailable);
        if result.is_err() && !unsent.is_empty() {
            UNSENT.with(|pending| {
                pending
                    .borrow_mut()
                    .entry(self.name.clone())
                    .or_default()
                    .extend(unsent)
            });
        }
        result
    }

    /// Where the principal stands (the report of `GET /v1/usage`), under `limits` or the
    /// last limits it was admitted with.
    pub async fn status(&self, limits: Option<&TierLimits>) -> Result<Value, GatewayError> {
        let limits = limits.cloned();
        self.call(|settle| LimiterCall::Status(StatusRequest { limits, settle }))
            .await
    }

    /// The principal's rate figures under `limits`, for the `x-ratelimit-*` headers.
    pub async fn standing(&self, limits: &TierLimits) -> Result<Standing, GatewayError> {
        let limits = Some(limits.clone());
        self.call(|settle| LimiterCall::Standing(StatusRequest { limits, settle }))
            .await
    }

    /// Sends this isolate's unsent settlements for the principal, if any are left.
    async fn flush(&self) {
        let has_unsent = UNSENT.with(|unsent| unsent.borrow().contains_key(&self.name));
        if has_unsent {
            let settle = |settle| {
                LimiterCall::Settle(StatusRequest {
                    limits: None,
                    settle,
                })
            };
            let _ = self.call::<()>(settle).await;
        }
    }

    /// Forgets the principal's buckets, leases and this period's spend.
    pub async fn reset(&self) -> Result<(), GatewayError> {
        // Unsent settlements are dropped: the reset forgets the leases they settle.
        self.call(|_| LimiterCall::Reset).await
    }
}

fn unavailable(why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::RateLimiterUnavailable,
        format!("the rate limiter is unavailable: {why}; try again shortly"),
    )
}

/// The limiter's decision on a request.
pub struct Admission {
    /// Where the principal stands after the decision, for the `x-ratelimit-*` headers
    /// (`None` when nothing is limited or the limiter failed open).
    pub standing: Option<Standing>,
    /// Admitted (with what to settle when the request ends, if anything), or the 429 or
    /// 503 to answer with.
    pub verdict: Result<Option<Settlement>, GatewayError>,
    /// The limiter could not be reached and the policy let the request through.
    pub failed_open: bool,
    /// The limit that refused the request, if one did.
    pub refused_by: Option<&'static str>,
}

impl Admission {
    fn unlimited(failed_open: bool) -> Self {
        Admission {
            standing: None,
            verdict: Ok(None),
            failed_open,
            refused_by: None,
        }
    }
}

/// Asks the principal's limiter to admit a request under `limits`; what the answer (or
/// its absence) decides is [`decide`]'s.
pub async fn admit(
    stub: Result<LimiterStub, GatewayError>,
    limits: TierLimits,
    config: &Config,
    ask: Ask<'_>,
    background: &Background,
) -> Admission {
    if limits.is_unlimited() {
        return Admission::unlimited(false);
    }
    let request = ask.request(limits, &config.rate_limits);
    let answer = match &stub {
        Ok(stub) => {
            let call = |settle| {
                LimiterCall::Admit(AdmitRequest {
                    settle,
                    ..request.clone()
                })
            };
            stub.call(call).await
        }
        Err(error) => Err(error.clone()),
    };
    let refused = |error, standing, limit| Admission {
        standing: Some(standing),
        verdict: Err(error),
        failed_open: false,
        refused_by: Some(limit),
    };
    match decide(&request, answer, config.rate_limits.failure_mode) {
        Decision::Admitted(standing) => Admission {
            standing: Some(standing),
            verdict: Ok(stub.ok().map(|stub| Settlement {
                stub,
                lease: request.lease,
                price: ask.price,
                background: background.clone(),
                usage: Usage::default(),
            })),
            failed_open: false,
            refused_by: None,
        },
        Decision::Refused {
            error,
            standing,
            limit,
        } => refused(error, standing, limit),
        Decision::FailedOpen => Admission::unlimited(true),
        Decision::FailedClosed(error) => Admission {
            verdict: Err(error),
            ..Admission::unlimited(false)
        },
    }
}

/// How long a settlement may wait for another call to the same limiter to ride along with
/// before it is sent on its own.
const SETTLE_DELAY_MS: u64 = 100;

thread_local! {
    /// Settlements not yet sent, by limiter name.
    static UNSENT: RefCell<HashMap<String, Vec<SettleRequest>>> = RefCell::new(HashMap::new());
    /// Limiter names with a flush timer running: one timer at a time per limiter, however
    /// many requests end meanwhile.
    static FLUSH_TIMERS: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// What an admitted request owes its limiter when it ends: the lease back, and its real
/// usage and cost. Queued when settled or dropped (a request that failed before any answer
/// settles with zero usage, which refunds its whole reservation) and sent with the next
/// call to the same limiter, or on its own within [`SETTLE_DELAY_MS`] under `waitUntil`:
/// every admitted request settles exactly once, and the client never waits for it.
pub struct Settlement {
    stub: LimiterStub,
    lease: String,
    price: Option<Price>,
    background: Background,
    usage: Usage,
}

impl Settle for Settlement {
    fn repriced(mut self, price: Option<Price>) -> Settlement {
        self.price = price;
        self
    }

    /// Queued for sending when the settlement is dropped, here.
    fn settle(mut self, usage: &Usage) {
        self.usage.clone_from(usage);
    }
}

impl Settlement {
    /// The lease's name, for a later invocation to [`Settlement::resume`] it.
    pub fn lease(&self) -> &str {
        &self.lease
    }

    /// Leaves the lease open for a later invocation to settle (a queued job's, through
    /// [`Settlement::resume`]).
    pub fn postpone(mut self) {
        self.lease.clear();
    }

    /// The settlement of the principal `principal_id`'s lease `lease`, postponed by an
    /// earlier invocation; settles with zero usage unless told otherwise.
    pub fn resume(
        env: &Env,
        principal_id: &str,
        lease: String,
        background: &Background,
    ) -> Result<Settlement, GatewayError> {
        Ok(Settlement {
            stub: LimiterStub::open(env, principal_id)?,
            lease,
            price: None,
            background: background.clone(),
            usage: Usage::default(),
        })
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        if self.lease.is_empty() {
            return; // postponed
        }
        let usage = &self.usage;
        let report = SettleRequest {
            lease: std::mem::take(&mut self.lease),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            cost_nanousd: self.price.map_or(0, |price| price.cost_nanousd(usage)),
        };
        let name = &self.stub.name;
        UNSENT.with(|unsent| {
            unsent
                .borrow_mut()
                .entry(name.clone())
                .or_default()
                .push(report)
        });
        let start_timer = FLUSH_TIMERS.with(|timers| timers.borrow_mut().insert(name.clone()));
        if start_timer {
            let stub = self.stub.clone();
            self.background.run(async move {
                Timer::after(SETTLE_DELAY_MS).await;
                FLUSH_TIMERS.with(|timers| timers.borrow_mut().remove(&stub.name));
                // A flush that fails leaves the settlements for the next call; if none
                // comes, the leases expire and free their slots.
                stub.flush().await;
            });
        }
    }
}
