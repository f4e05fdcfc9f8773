//! The state machine one principal's Durable Object runs: admission, settlement, lease
//! expiry and reports. Pure: the object passes the clock in and persists what changed.
//!
//! Admission checks every limit before changing anything, so a refused request costs
//! nothing, and an admitted one takes its request unit, its token reservation, a
//! concurrency lease and its cost estimate in one step. Settlement releases the lease,
//! trades the reservation for the tokens really used, and adds the real cost to the day
//! and the month. Leases that are never settled (a crashed isolate) expire; their late
//! settlement is still honoured once, and a second settlement of the same lease is ignored.

use serde::{Deserialize, Serialize};

use super::bucket::{Bucket, Rate};
use super::period::{day_key, month_key, ms_to_next_day, ms_to_next_month};
use super::price::{nanousd, usd};
use super::TierLimits;

/// How long an expired lease is remembered so that its late settlement still counts.
pub const EXPIRED_LEASE_MEMORY_MS: u64 = 24 * 3_600_000;
/// Most expired leases remembered.
pub const MAX_EXPIRED_LEASES: usize = 1_024;
/// What a refused concurrency slot suggests waiting: streams end at unknown times.
pub const CONCURRENCY_RETRY_MS: u64 = 1_000;

/// An admitted request that has not been settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The request id.
    pub id: String,
    /// When the concurrency slot is taken back if the request never settles.
    pub expires_ms: u64,
    /// Tokens reserved at admission.
    pub tokens: u64,
    /// Cost estimate held against the budgets, in nano-dollars.
    pub cost_nanousd: u64,
}

/// Everything the object keeps besides the spend: buckets and leases.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateState {
    /// Requests bucket.
    pub requests: Bucket,
    /// Tokens bucket.
    pub tokens: Bucket,
    /// Unsettled requests holding a concurrency slot.
    pub leases: Vec<Lease>,
    /// Leases that expired unsettled, remembered for [`EXPIRED_LEASE_MEMORY_MS`].
    pub expired: Vec<Lease>,
    /// The limits the last request carried, for reports that name none.
    #[serde(default)]
    pub limits: TierLimits,
}

/// Usage in one UTC period (`YYYY-MM-DD` or `YYYY-MM`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodUsage {
    /// The period's key.
    pub period: String,
    /// Admitted requests.
    pub requests: u64,
    /// Prompt tokens used.
    pub prompt_tokens: u64,
    /// Completion tokens used.
    pub completion_tokens: u64,
    /// Cost in nano-dollars.
    pub cost_nanousd: u64,
}

impl PeriodUsage {
    fn new(period: String) -> Self {
        PeriodUsage {
            period,
            ..PeriodUsage::default()
        }
    }
}

/// Usage of the current UTC day and month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spend {
    /// Today.
    pub day: PeriodUsage,
    /// This month.
    pub month: PeriodUsage,
}

/// What a request asks of the limiter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmitRequest {
    /// The request id; names the lease.
    pub lease: String,
    /// The principal's limits.
    pub limits: TierLimits,
    /// Tokens to reserve: estimated prompt tokens plus the most the answer may use.
    pub tokens: u64,
    /// The most the request may cost, in nano-dollars.
    pub cost_nanousd: u64,
    /// How long the lease holds a concurrency slot without being settled.
    pub lease_ttl_ms: u64,
    /// Settlements of earlier requests, applied first (see [`StatusRequest`]).
    #[serde(default)]
    pub settle: Vec<SettleRequest>,
}

/// A report or settlement request: where the principal stands under `limits` (default:
/// the last ones seen), after applying `settle`.
///
/// Settlements travel with whatever call the Worker makes next to the same principal's
/// limiter (or alone, shortly after), so that a principal's steady traffic costs its object
/// one event per request instead of two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusRequest {
    /// The limits to report under.
    #[serde(default)]
    pub limits: Option<TierLimits>,
    /// Settlements to apply first.
    #[serde(default)]
    pub settle: Vec<SettleRequest>,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Requests per window.
    Requests,
    /// Tokens per window.
    Tokens,
    /// The reservation is larger than the tokens limit itself.
    TokensExceedLimit,
    /// Concurrent requests.
    Concurrency,
    /// The daily budget.
    DailyBudget,
    /// The monthly budget.
    MonthlyBudget,
}

impl Refusal {
    /// The refusing limit's name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Refusal::Requests => "requests",
            Refusal::Tokens => "tokens",
            Refusal::TokensExceedLimit => "tokens_exceed_limit",
            Refusal::Concurrency => "concurrency",
            Refusal::DailyBudget => "daily_budget",
            Refusal::MonthlyBudget => "monthly_budget",
        }
    }
}

/// The limiter's answer to an [`AdmitRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdmitResponse {
    /// `None` when admitted.
    pub refused: Option<Refusal>,
    /// When refused: milliseconds until a retry can succeed.
    pub retry_after_ms: u64,
    /// Where the principal stands after the decision.
    pub standing: Standing,
}

/// What a finished request reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettleRequest {
    /// The lease (request id) being settled.
    pub lease: String,
    /// Prompt tokens used.
    pub prompt_tokens: u64,
    /// Completion tokens used.
    pub completion_tokens: u64,
    /// What the request cost, in nano-dollars.
    pub cost_nanousd: u64,
}

/// One rate's figures, as the `x-ratelimit-*` headers report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateStatus {
    /// Units per window.
    pub limit: u64,
    /// Window in seconds.
    pub window_s: u32,
    /// Units that fit now.
    pub remaining: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
}

/// Concurrency figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConcurrencyStatus {
    /// Most requests in flight at once.
    pub limit: u32,
    /// Requests in flight now.
    pub in_use: u32,
}

/// One period's spend against its budget.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// `YYYY-MM-DD` or `YYYY-MM` (UTC).
    pub period: String,
    /// Requests admitted in the period.
    pub requests: u64,
    /// Prompt tokens used in the period.
    pub prompt_tokens: u64,
    /// Completion tokens used in the period.
    pub completion_tokens: u64,
    /// Spent, in USD.
    pub cost_usd: f64,
    /// The budget in USD, if there is one.
    pub limit_usd: Option<f64>,
    /// What is left of it, in USD.
    pub remaining_usd: Option<f64>,
}

/// The rate figures every response reports in its `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Requests per window, when limited.
    pub requests: Option<RateStatus>,
    /// Tokens per window, when limited.
    pub tokens: Option<RateStatus>,
}

/// Where a principal stands: the full report of `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// Requests per window, when limited.
    pub requests: Option<RateStatus>,
    /// Tokens per window, when limited.
    pub tokens: Option<RateStatus>,
    /// Concurrency, when limited.
    pub concurrent: Option<ConcurrencyStatus>,
    /// Today (UTC).
    pub today: BudgetStatus,
    /// This month (UTC).
    pub month: BudgetStatus,
}

/// One principal's limiter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limiter {
    /// Buckets and leases.
    pub rate: RateState,
    /// Today's and this month's usage.
    pub spend: Spend,
}

impl Limiter {
    /// Decides on a request at `now_ms`; takes everything it needs only when admitted.
    pub fn admit(&mut self, now_ms: u64, request: &AdmitRequest) -> AdmitResponse {
        self.roll_periods(now_ms);
        self.expire(now_ms);
        self.rate.limits = request.limits.clone();
        let limits = &request.limits;
        let verdict = self.check(now_ms, request);
        if verdict.is_ok() {
            if let Some(rate) = limits.requests {
                self.rate.requests.charge(rate, now_ms, 1);
            }
            if let Some(rate) = limits.tokens {
                self.rate.tokens.charge(rate, now_ms, request.tokens);
            }
            self.rate.leases.push(Lease {
                id: request.lease.clone(),
                expires_ms: now_ms.saturating_add(request.lease_ttl_ms),
                tokens: request.tokens,
                cost_nanousd: request.cost_nanousd,
            });
            self.spend.day.requests += 1;
            self.spend.month.requests += 1;
        }
        let (refused, retry_after_ms) = match verdict {
            Ok(()) => (None, 0),
            Err((refusal, wait)) => (Some(refusal), wait),
        };
        AdmitResponse {
            refused,
            retry_after_ms,
            standing: self.standing(now_ms, limits),
        }
    }

    /// The first limit `request` breaks, with the wait until it would not.
    fn check(&mut self, now_ms: u64, request: &AdmitRequest) -> Result<(), (Refusal, u64)> {
        let limits = &request.limits;
        let held: u64 = self
            .rate
            .leases
            .iter()
            .map(|lease| lease.cost_nanousd)
            .sum();
        let budgets = [
            (limits.daily_usd, &self.spend.day, Refusal::DailyBudget),
            (
                limits.monthly_usd,
                &self.spend.month,
                Refusal::MonthlyBudget,
            ),
        ];
        for (budget, usage, refusal) in budgets {
            let Some(budget) = budget.map(nanousd) else {
                continue;
            };
            let spent = usage.cost_nanousd;
            if spent >= budget || spent + held + request.cost_nanousd > budget {
                let wait = match refusal {
                    Refusal::DailyBudget => ms_to_next_day(now_ms),
                    _ => ms_to_next_month(now_ms),
                };
                return Err((refusal, wait));
            }
        }
        if let Some(limit) = limits.concurrent {
            if self.rate.leases.len() >= limit as usize {
                return Err((Refusal::Concurrency, CONCURRENCY_RETRY_MS));
            }
        }
        if let Some(rate) = limits.requests {
            self.rate
                .requests
                .check(rate, now_ms, 1)
                .map_err(|wait| (Refusal::Requests, wait))?;
        }
        if let Some(rate) = limits.tokens {
            self.rate
                .tokens
                .check(rate, now_ms, request.tokens)
                .map_err(|wait| match wait {
                    u64::MAX => (Refusal::TokensExceedLimit, u64::from(rate.window_s) * 1_000),
                    wait => (Refusal::Tokens, wait),
                })?;
        }
        Ok(())
    }

    /// Settles a finished request; a lease settled before (or never admitted) is ignored.
    /// Returns whether anything changed.
    pub fn settle(&mut self, now_ms: u64, settle: &SettleRequest) -> bool {
        self.roll_periods(now_ms);
        let position = |leases: &[Lease]| leases.iter().position(|l| l.id == settle.lease);
        let lease = if let Some(at) = position(&self.rate.leases) {
            self.rate.leases.swap_remove(at)
        } else if let Some(at) = position(&self.rate.expired) {
            self.rate.expired.swap_remove(at)
        } else {
            return false;
        };
        if let Some(rate) = self.rate.limits.tokens {
            let used = settle.prompt_tokens + settle.completion_tokens;
            if used > lease.tokens {
                self.rate.tokens.charge(rate, now_ms, used - lease.tokens);
            } else {
                self.rate.tokens.refund(rate, now_ms, lease.tokens - used);
            }
        }
        for usage in [&mut self.spend.day, &mut self.spend.month] {
            usage.prompt_tokens += settle.prompt_tokens;
            usage.completion_tokens += settle.completion_tokens;
            usage.cost_nanousd += settle.cost_nanousd;
        }
        true
    }

    /// Takes back the slots of leases past their expiry and forgets old expired leases.
    /// Returns whether anything changed.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        let before = (self.rate.leases.len(), self.rate.expired.len());
        let (expired, live): (Vec<Lease>, Vec<Lease>) = std::mem::take(&mut self.rate.leases)
            .into_iter()
            .partition(|lease| lease.expires_ms <= now_ms);
        self.rate.leases = live;
        self.rate.expired.extend(expired);
        self.rate
            .expired
            .retain(|lease| lease.expires_ms.saturating_add(EXPIRED_LEASE_MEMORY_MS) > now_ms);
        let excess = self.rate.expired.len().saturating_sub(MAX_EXPIRED_LEASES);
        self.rate.expired.drain(..excess);
        before != (self.rate.leases.len(), self.rate.expired.len())
    }

    /// When [`Limiter::expire`] next has work: the earliest live lease expiry, else the
    /// moment the oldest expired lease is forgotten.
    pub fn next_expiry_ms(&self) -> Option<u64> {
        let live = self.rate.leases.iter().map(|lease| lease.expires_ms).min();
        live.or_else(|| {
            self.rate
                .expired
                .iter()
                .map(|lease| lease.expires_ms.saturating_add(EXPIRED_LEASE_MEMORY_MS))
                .min()
        })
    }

    /// Starts a new day or month when the clock has moved into one. Returns whether it did.
    pub fn roll_periods(&mut self, now_ms: u64) -> bool {
        let (day, month) = (day_key(now_ms), month_key(now_ms));
        let mut rolled = false;
        if self.spend.day.period != day {
            self.spend.day = PeriodUsage::new(day);
            rolled = true;
        }
        if self.spend.month.period != month {
            self.spend.month = PeriodUsage::new(month);
            rolled = true;
        }
        rolled
    }

    /// The principal's rate figures under `limits` at `now_ms`.
    pub fn standing(&mut self, now_ms: u64, limits: &TierLimits) -> Standing {
        let rate_status = |bucket: &mut Bucket, rate: Option<Rate>| {
            rate.map(|rate| RateStatus {
                limit: rate.limit,
                window_s: rate.window_s,
                remaining: bucket.remaining(rate, now_ms),
                reset_ms: bucket.reset_ms(rate, now_ms),
            })
        };
        Standing {
            requests: rate_status(&mut self.rate.requests, limits.requests),
            tokens: rate_status(&mut self.rate.tokens, limits.tokens),
        }
    }

    /// Where the principal stands under `limits` at `now_ms`.
    pub fn status(&mut self, now_ms: u64, limits: &TierLimits) -> Status {
        self.roll_periods(now_ms);
        self.expire(now_ms);
        let Standing { requests, tokens } = self.standing(now_ms, limits);
        Status {
            requests,
            tokens,
            concurrent: limits.concurrent.map(|limit| ConcurrencyStatus {
                limit,
                in_use: self.rate.leases.len() as u32,
            }),
            today: budget_status(&self.spend.day, limits.daily_usd),
            month: budget_status(&self.spend.month, limits.monthly_usd),
        }
    }

    /// Forgets everything but the last limits seen: buckets full, no leases, nothing spent
    /// this day and month.
    pub fn reset(&mut self) {
        let limits = std::mem::take(&mut self.rate.limits);
        *self = Limiter::default();
        self.rate.limits = limits;
    }
}

/// What the Worker asks of a principal's limiter object. Every call but a reset carries
/// the isolate's unsent settlements, applied first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimiterCall {
    /// Admit a request (answers an [`AdmitResponse`]).
    Admit(AdmitRequest),
    /// The full report of `GET /v1/usage` (a [`Status`]).
    Status(StatusRequest),
    /// The rate figures for the headers (a [`Standing`]).
    Standing(StatusRequest),
    /// Only the settlements it carries (answers nothing).
    Settle(StatusRequest),
    /// Forget the buckets, leases and this period's spend (answers nothing).
    Reset,
    /// The object's alarm: expire leases, write what waits (answers nothing).
    Expire,
}

/// When a call's changes go to storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// Nothing changed.
    Nothing,
    /// With the next flush, a little later: a write holds every answer of the object until
    /// it is durable, which would put a storage round trip on every request's path.
    Later,
    /// Before answering (a reset, expired leases, a flush that is due).
    Now,
}

impl Limiter {
    /// Runs `call` at `now_ms` (`dirty`: earlier changes wait to be written): its answer,
    /// as JSON text, and when to write.
    pub fn handle(&mut self, now_ms: u64, call: LimiterCall, dirty: bool) -> (String, Write) {
        match call {
            LimiterCall::Admit(request) => {
                self.settle_all(now_ms, &request.settle);
                (to_json(&self.admit(now_ms, &request)), Write::Later)
            }
            LimiterCall::Status(request) => {
                let (limits, write) = self.settled(now_ms, request);
                (to_json(&self.status(now_ms, &limits)), write)
            }
            LimiterCall::Standing(request) => {
                let (limits, write) = self.settled(now_ms, request);
                (to_json(&self.standing(now_ms, &limits)), write)
            }
            LimiterCall::Settle(request) => (String::new(), self.settled(now_ms, request).1),
            LimiterCall::Reset => {
                self.reset();
                self.roll_periods(now_ms);
                (String::new(), Write::Now)
            }
            LimiterCall::Expire => {
                let expired = self.expire(now_ms);
                let write = if expired || dirty {
                    Write::Now
                } else {
                    Write::Nothing
                };
                (String::new(), write)
            }
        }
    }

    /// Applies the settlements `request` carries: the limits it names (or the last ones
    /// seen), and whether anything changed.
    fn settled(&mut self, now_ms: u64, request: StatusRequest) -> (TierLimits, Write) {
        let write = match request.settle.is_empty() {
            true => Write::Nothing,
            false => Write::Later,
        };
        self.settle_all(now_ms, &request.settle);
        let limits = request.limits.unwrap_or_else(|| self.rate.limits.clone());
        (limits, write)
    }

    fn settle_all(&mut self, now_ms: u64, settlements: &[SettleRequest]) {
        for settlement in settlements {
            self.settle(now_ms, settlement);
        }
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn budget_status(usage: &PeriodUsage, limit_usd: Option<f64>) -> BudgetStatus {
    let cost_usd = usd(usage.cost_nanousd);
    BudgetStatus {
        period: usage.period.clone(),
        requests: usage.requests,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cost_usd,
        limit_usd,
        remaining_usd: limit_usd.map(|limit| (limit - cost_usd).max(0.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-27T13:38:32Z.
    const NOW: u64 = 1_795_786_712_000;

    fn limits() -> TierLimits {
        TierLimits {
            requests: Some(Rate {
                limit: 10,
                window_s: 60,
            }),
            tokens: Some(Rate {
                limit: 1_000,
                window_s: 60,
            }),
            concurrent: Some(3),
            daily_usd: Some(1.0),
            monthly_usd: Some(5.0),
        }
    }

    fn ask(lease: &str, tokens: u64, cost_nanousd: u64) -> AdmitRequest {
        AdmitRequest {
            lease: lease.to_owned(),
            limits: limits(),
            tokens,
            cost_nanousd,
            lease_ttl_ms: 60_000,
            settle: Vec::new(),
        }
    }

    fn settle(lease: &str, prompt: u64, completion: u64, cost: u64) -> SettleRequest {
        SettleRequest {
            lease: lease.to_owned(),
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_nanousd: cost,
        }
    }

    #[test]
    fn calls_answer_in_their_own_shape_and_say_when_to_write() {
        let mut limiter = Limiter::default();
        let call = |settle| {
            LimiterCall::Admit(AdmitRequest {
                settle,
                ..ask("a", 10, 0)
            })
        };
        let (reply, write) = limiter.handle(NOW, call(Vec::new()), false);
        let admitted: AdmitResponse = serde_json::from_str(&reply).unwrap();
        assert_eq!((admitted.refused, write), (None, Write::Later));
        // A settlement riding along with a status call is applied first.
        let status = LimiterCall::Status(StatusRequest {
            limits: None,
            settle: vec![settle("a", 3, 4, 0)],
        });
        let (reply, write) = limiter.handle(NOW + 1, status, true);
        let report: serde_json::Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(report["concurrent"]["in_use"], 0);
        assert_eq!(report["today"]["completion_tokens"], 4);
        assert_eq!(write, Write::Later);
        let standing = LimiterCall::Standing(StatusRequest::default());
        let (reply, write) = limiter.handle(NOW + 2, standing, true);
        assert!(serde_json::from_str::<Standing>(&reply).is_ok());
        assert_eq!(write, Write::Nothing, "nothing new to write");
        // The alarm writes what waits; a reset at once.
        assert_eq!(
            limiter.handle(NOW + 3, LimiterCall::Expire, true).1,
            Write::Now
        );
        assert_eq!(
            limiter.handle(NOW + 3, LimiterCall::Expire, false).1,
            Write::Nothing
        );
        assert_eq!(
            limiter.handle(NOW + 4, LimiterCall::Reset, false).1,
            Write::Now
        );
        assert_eq!(limiter.spend.day.requests, 0);
        // The calls travel as externally tagged JSON.
        let text = serde_json::to_string(&LimiterCall::Reset).unwrap();
        assert_eq!(text, r#""reset""#);
        assert_eq!(
            serde_json::from_str::<LimiterCall>(&text).unwrap(),
            LimiterCall::Reset
        );
    }

    #[test]
    fn requests_are_refused_past_the_rate_with_a_retry_time() {
        let mut limiter = Limiter::default();
        let mut admitted = 0;
        for i in 0..50 {
            let answer = limiter.admit(NOW, &ask(&format!("r{i}"), 10, 0));
            if answer.refused.is_none() {
                admitted += 1;
                limiter.settle(NOW, &settle(&format!("r{i}"), 5, 5, 0));
            } else {
                assert_eq!(answer.refused, Some(Refusal::Requests));
                assert_eq!(answer.retry_after_ms, 6_000);
            }
        }
        assert_eq!(admitted, 10);
        let status = limiter.status(NOW, &limits());
        assert_eq!(status.requests.unwrap().remaining, 0);
        assert_eq!(status.today.requests, 10);
        assert!(limiter
            .admit(NOW + 6_000, &ask("late", 10, 0))
            .refused
            .is_none());
    }

    #[test]
    fn token_reservations_are_reconciled_with_real_usage() {
        let mut limiter = Limiter::default();
        assert!(limiter.admit(NOW, &ask("a", 800, 0)).refused.is_none());
        let refused = limiter.admit(NOW, &ask("b", 300, 0));
        assert_eq!(refused.refused, Some(Refusal::Tokens));
        assert_eq!(refused.retry_after_ms, 6_000);
        // The answer used 150 of the 800 reserved: 650 come back.
        assert!(limiter.settle(NOW, &settle("a", 100, 50, 0)));
        assert_eq!(
            limiter.status(NOW, &limits()).tokens.unwrap().remaining,
            850
        );
        assert!(limiter.admit(NOW, &ask("b", 300, 0)).refused.is_none());
        // Using more than reserved charges the difference.
        assert!(limiter.settle(NOW, &settle("b", 100, 400, 0)));
        assert_eq!(
            limiter.status(NOW, &limits()).tokens.unwrap().remaining,
            350
        );
        let too_big = limiter.admit(NOW, &ask("c", 1_001, 0));
        assert_eq!(too_big.refused, Some(Refusal::TokensExceedLimit));
    }

    #[test]
    fn settling_twice_or_an_unknown_lease_changes_nothing() {
        let mut limiter = Limiter::default();
        limiter.admit(NOW, &ask("a", 100, 0));
        assert!(limiter.settle(NOW, &settle("a", 10, 10, 7)));
        let after_first = limiter.clone();
        assert!(!limiter.settle(NOW, &settle("a", 10, 10, 7)));
        assert!(!limiter.settle(NOW, &settle("never", 10, 10, 7)));
        assert_eq!(limiter, after_first);
        assert_eq!(limiter.spend.day.cost_nanousd, 7);
    }

    #[test]
    fn concurrency_leases_are_released_on_settle_and_expire_unsettled() {
        let mut limiter = Limiter::default();
        for lease in ["a", "b", "c"] {
            assert!(limiter.admit(NOW, &ask(lease, 1, 0)).refused.is_none());
        }
        let full = limiter.admit(NOW, &ask("d", 1, 0));
        assert_eq!(full.refused, Some(Refusal::Concurrency));
        assert_eq!(limiter.status(NOW, &limits()).concurrent.unwrap().in_use, 3);
        limiter.settle(NOW, &settle("a", 1, 0, 0));
        assert!(limiter.admit(NOW, &ask("d", 1, 0)).refused.is_none());
        // Nobody settles b, c, d: their slots come back when the leases expire.
        assert_eq!(limiter.next_expiry_ms(), Some(NOW + 60_000));
        assert!(!limiter.expire(NOW + 59_999));
        assert!(limiter.expire(NOW + 60_000));
        assert_eq!(limiter.rate.leases.len(), 0);
        // A late settlement still counts its usage, once.
        assert!(limiter.settle(NOW + 61_000, &settle("b", 3, 4, 9)));
        assert!(!limiter.settle(NOW + 61_000, &settle("b", 3, 4, 9)));
        assert_eq!(limiter.spend.day.completion_tokens, 4);
        assert_eq!(
            limiter.next_expiry_ms(),
            Some(NOW + 60_000 + EXPIRED_LEASE_MEMORY_MS)
        );
        assert!(limiter.expire(NOW + 60_000 + EXPIRED_LEASE_MEMORY_MS));
        assert_eq!(limiter.next_expiry_ms(), None);
    }

    #[test]
    fn budgets_count_spend_and_held_estimates_and_reset_with_the_period() {
        let dollar = 1_000_000_000;
        let mut limiter = Limiter::default();
        assert!(limiter
            .admit(NOW, &ask("a", 1, dollar / 2))
            .refused
            .is_none());
        // Half a dollar is held by "a": another estimate of 0.6 does not fit.
        let held = limiter.admit(NOW, &ask("b", 1, dollar * 6 / 10));
        assert_eq!(held.refused, Some(Refusal::DailyBudget));
        assert_eq!(held.retry_after_ms, ms_to_next_day(NOW));
        limiter.settle(NOW, &settle("a", 1, 1, dollar / 10));
        assert!(limiter
            .admit(NOW, &ask("b", 1, dollar * 6 / 10))
            .refused
            .is_none());
        limiter.settle(NOW, &settle("b", 1, 1, dollar * 9 / 10));
        // Spent 1.0 of 1.0: even a free request is refused until tomorrow.
        let spent = limiter.admit(NOW, &ask("c", 1, 0));
        assert_eq!(spent.refused, Some(Refusal::DailyBudget));
        assert_eq!(
            limiter.status(NOW, &limits()).today.remaining_usd,
            Some(0.0)
        );
        let tomorrow = NOW + ms_to_next_day(NOW);
        assert!(limiter.admit(tomorrow, &ask("c", 1, 0)).refused.is_none());
        assert_eq!(limiter.spend.day.period, "2026-11-28");
        assert_eq!(limiter.spend.month.cost_nanousd, dollar);
    }

    #[test]
    fn the_monthly_budget_refuses_until_next_month() {
        let mut limiter = Limiter::default();
        limiter.roll_periods(NOW);
        limiter.spend.month.cost_nanousd = 5_000_000_000;
        let refused = limiter.admit(NOW, &ask("a", 1, 0));
        assert_eq!(refused.refused, Some(Refusal::MonthlyBudget));
        assert_eq!(refused.retry_after_ms, ms_to_next_month(NOW));
    }

    #[test]
    fn a_refused_request_takes_nothing() {
        let mut limiter = Limiter::default();
        for lease in ["a", "b", "c"] {
            limiter.admit(NOW, &ask(lease, 1, 0));
        }
        let before = limiter.clone();
        assert!(limiter.admit(NOW, &ask("d", 1, 0)).refused.is_some());
        assert_eq!(limiter.rate.requests, before.rate.requests);
        assert_eq!(limiter.rate.tokens, before.rate.tokens);
        assert_eq!(limiter.spend, before.spend);
    }

    #[test]
    fn no_limits_admit_everything() {
        let mut limiter = Limiter::default();
        let unlimited = AdmitRequest {
            limits: TierLimits::default(),
            ..ask("a", 1_000_000, 1_000_000_000_000)
        };
        let answer = limiter.admit(NOW, &unlimited);
        assert_eq!(answer.refused, None);
        assert_eq!(answer.standing, Standing::default());
    }
}
