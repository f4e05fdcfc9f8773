//! Rate limits in Durable Objects: the [`RateLimiter`] object (one per principal, SQLite
//! storage) and the Worker's side of it, [`admit`] before the upstream call and
//! [`Settlement`] after it.
//!
//! The object is single-threaded and every operation runs on its state in memory without
//! awaiting, so concurrent requests of a principal are decided one after the other,
//! exactly. The state is written to SQLite at most a second after it changes (see
//! [`RateLimiter::apply`] for why not at once), so it survives the object being evicted,
//! moved or restarted.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{
    durable_object, Delay, DurableObject, Env, ObjectNamespace, Request, Response, ScheduledTime,
    SqlStorage, SqlStorageValue, State,
};

use super::background::Background;
use super::clock::now_ms;
use super::objects;
use crate::api::chat::Usage;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::limit::limiter::{
    AdmitRequest, AdmitResponse, Limiter, PeriodUsage, RateState, Refusal, SettleRequest, Spend,
    Standing, StatusRequest,
};
use crate::limit::period::{day_key, month_key};
use crate::limit::price::Price;
use crate::limit::{refusal_error, FailureMode, TierLimits};
use crate::pipeline::ports::Settle;

/// The Durable Object binding of [`RateLimiter`].
pub const BINDING: &str = "RATE_LIMITER";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rate_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS usage (
  period TEXT PRIMARY KEY,
  requests INTEGER NOT NULL,
  prompt_tokens INTEGER NOT NULL,
  completion_tokens INTEGER NOT NULL,
  cost_nanousd INTEGER NOT NULL
);";

/// How long a change may wait in memory before it is written to SQLite.
const FLUSH_DELAY_MS: u64 = 1_000;

/// One principal's limits, as a Durable Object.
#[durable_object]
pub struct RateLimiter {
    state: State,
    /// The state in memory, loaded from SQLite on first use.
    limiter: RefCell<Option<Limiter>>,
    /// Changes not yet written to SQLite since this moment, if any.
    dirty_since: Cell<Option<u64>>,
    /// The alarm this instance has set, if any.
    alarm_at: Cell<Option<u64>>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            limiter: RefCell::new(None),
            dirty_since: Cell::new(None),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let op = req.path();
        let body = req.bytes().await?;
        match self.apply(&op, &body) {
            Ok(reply) => {
                self.schedule_alarm().await;
                Response::ok(reply)
            }
            Err(problem) => Response::error(problem, 500),
        }
    }

    /// Writes pending changes and expires leases; then sets the next alarm.
    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        let result = self.apply("/expire", b"");
        self.schedule_alarm().await;
        match result {
            Ok(_) => Response::ok(""),
            Err(problem) => Response::error(problem, 500),
        }
    }
}

impl RateLimiter {
    /// Runs one operation on the state in memory, without awaiting, and writes the state
    /// back when it is due.
    ///
    /// Admissions and settlements are written behind, at most [`FLUSH_DELAY_MS`] later
    /// (by the alarm): a write holds every answer of the object until it is durable (the
    /// output gate), which would put a disk or replication round trip on every request's
    /// path and cap a principal at a few hundred requests per second. The price is that if
    /// the object crashes, up to the last second of counting is lost; a reset and lease
    /// expiry are written at once.
    fn apply(&self, op: &str, body: &[u8]) -> Result<String, String> {
        let now = now_ms();
        let sql = self.state.storage().sql();
        let mut slot = self.limiter.borrow_mut();
        let limiter = match slot.as_mut() {
            Some(limiter) => limiter,
            None => slot.insert(load(&sql, now)?),
        };
        let (reply, write) = match op {
            "/admit" => {
                let request = from_json::<AdmitRequest>(body)?;
                settle_all(limiter, now, &request.settle);
                (to_json(&limiter.admit(now, &request)), Write::Later)
            }
            "/status" | "/standing" | "/settle" => {
                let request = from_json::<StatusRequest>(body)?;
                settle_all(limiter, now, &request.settle);
                let limits = request
                    .limits
                    .unwrap_or_else(|| limiter.rate.limits.clone());
                let reply = match op {
                    "/status" => to_json(&limiter.status(now, &limits)),
                    "/standing" => to_json(&limiter.standing(now, &limits)),
                    _ => String::new(),
                };
                let write = if request.settle.is_empty() {
                    Write::Nothing
                } else {
                    Write::Later
                };
                (reply, write)
            }
            "/reset" => {
                limiter.reset();
                limiter.roll_periods(now);
                (String::new(), Write::Now)
            }
            "/expire" => {
                let expired = limiter.expire(now);
                let write = if expired || self.dirty_since.get().is_some() {
                    Write::Now
                } else {
                    Write::Nothing
                };
                (String::new(), write)
            }
            _ => return Err(format!("unknown operation {op}")),
        };
        match write {
            Write::Nothing => Ok(reply),
            Write::Later => {
                if self.dirty_since.get().is_none() {
                    self.dirty_since.set(Some(now));
                }
                Ok(reply)
            }
            Write::Now => match save(&sql, limiter) {
                Ok(()) => {
                    self.dirty_since.set(None);
                    Ok(reply)
                }
                Err(problem) => {
                    // Memory ran ahead of storage: reload from storage next time.
                    *slot = None;
                    self.dirty_since.set(None);
                    Err(problem)
                }
            },
        }
    }

    /// Sets the alarm for the next flush or lease expiry, unless one at least as early is
    /// set already.
    async fn schedule_alarm(&self) {
        let expiry = self
            .limiter
            .borrow()
            .as_ref()
            .and_then(Limiter::next_expiry_ms);
        let flush = self.dirty_since.get().map(|since| since + FLUSH_DELAY_MS);
        let Some(next) = [expiry, flush].into_iter().flatten().min() else {
            return;
        };
        if self.alarm_at.get().is_some_and(|at| at <= next) {
            return;
        }
        let when = ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(next as f64)));
        if self.state.storage().set_alarm(when).await.is_ok() {
            self.alarm_at.set(Some(next));
        }
    }
}

/// When an operation's changes go to SQLite.
enum Write {
    /// Nothing changed.
    Nothing,
    /// With the next flush, at most [`FLUSH_DELAY_MS`] from now.
    Later,
    /// Before answering.
    Now,
}

fn settle_all(limiter: &mut Limiter, now: u64, settlements: &[SettleRequest]) {
    for settlement in settlements {
        limiter.settle(now, settlement);
    }
}

fn from_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|err| format!("bad limiter request: {err}"))
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn sql_error(err: worker::Error) -> String {
    format!("limiter storage failed: {err}")
}

/// Reads the state, and this day's and month's usage, from SQLite.
fn load(sql: &SqlStorage, now: u64) -> Result<Limiter, String> {
    sql.exec(SCHEMA, None).map_err(sql_error)?;
    let rows = |query: &str,
                bindings: Vec<SqlStorageValue>|
     -> Result<Vec<Vec<SqlStorageValue>>, String> {
        let cursor = sql.exec(query, bindings).map_err(sql_error)?;
        cursor
            .raw()
            .collect::<worker::Result<_>>()
            .map_err(sql_error)
    };
    let rate = match rows("SELECT state FROM rate_state WHERE id = 1", vec![])?
        .first()
        .map(Vec::as_slice)
    {
        Some([SqlStorageValue::String(state)]) => from_json(state.as_bytes())?,
        _ => RateState::default(),
    };
    let (day, month) = (day_key(now), month_key(now));
    let periods = rows(
        "SELECT period, requests, prompt_tokens, completion_tokens, cost_nanousd \
         FROM usage WHERE period IN (?, ?)",
        vec![day.clone().into(), month.clone().into()],
    )?;
    let usage_of = |key: String| {
        let number = |value: &SqlStorageValue| match value {
            SqlStorageValue::Integer(n) => u64::try_from(*n).unwrap_or(0),
            SqlStorageValue::Float(n) => *n as u64,
            _ => 0,
        };
        match periods
            .iter()
            .find(|row| matches!(row.first(), Some(SqlStorageValue::String(p)) if *p == key))
        {
            Some(row) if row.len() == 5 => PeriodUsage {
                period: key,
                requests: number(&row[1]),
                prompt_tokens: number(&row[2]),
                completion_tokens: number(&row[3]),
                cost_nanousd: number(&row[4]),
            },
            _ => PeriodUsage {
                period: key,
                ..PeriodUsage::default()
            },
        }
    };
    Ok(Limiter {
        rate,
        spend: Spend {
            day: usage_of(day),
            month: usage_of(month),
        },
    })
}

/// Writes the state and the current periods' usage back.
fn save(sql: &SqlStorage, limiter: &Limiter) -> Result<(), String> {
    sql.exec(
        "INSERT INTO rate_state (id, state) VALUES (1, ?) \
         ON CONFLICT (id) DO UPDATE SET state = excluded.state",
        vec![to_json(&limiter.rate).into()],
    )
    .map_err(sql_error)?;
    for usage in [&limiter.spend.day, &limiter.spend.month] {
        let number = |n: u64| SqlStorageValue::try_from_i64(n.min(i64::MAX as u64) as i64);
        let values = vec![
            usage.period.as_str().into(),
            number(usage.requests).map_err(sql_error)?,
            number(usage.prompt_tokens).map_err(sql_error)?,
            number(usage.completion_tokens).map_err(sql_error)?,
            number(usage.cost_nanousd).map_err(sql_error)?,
        ];
        sql.exec(
            "INSERT INTO usage VALUES (?, ?, ?, ?, ?) ON CONFLICT (period) DO UPDATE SET \
             requests = excluded.requests, prompt_tokens = excluded.prompt_tokens, \
             completion_tokens = excluded.completion_tokens, \
             cost_nanousd = excluded.cost_nanousd",
            values,
        )
        .map_err(sql_error)?;
    }
    Ok(())
}

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

    async fn call<T: DeserializeOwned>(&self, op: &str, body: String) -> Result<T, GatewayError> {
        let text = objects::call(&self.namespace, &self.name, op, body)
            .await
            .map_err(unavailable)?;
        let text = if text.is_empty() { "null" } else { &text };
        serde_json::from_slice(text.as_bytes())
            .map_err(|_| unavailable("its answer was not understood"))
    }

    /// Calls `op` with the request `build` makes around this isolate's unsent settlements
    /// for the principal; if the call fails they are kept for the next one (settling a
    /// lease twice is harmless: the object ignores the second time).
    async fn call_settling<R: Serialize, T: DeserializeOwned>(
        &self,
        op: &str,
        build: impl FnOnce(Vec<SettleRequest>) -> R,
    ) -> Result<T, GatewayError> {
        let unsent = UNSENT.with(|unsent| unsent.borrow_mut().remove(&self.name));
        let unsent = unsent.unwrap_or_default();
        let result = self.call(op, to_json(&build(unsent.clone()))).await;
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
        self.call_settling("/status", |settle| StatusRequest { limits, settle })
            .await
    }

    /// The principal's rate figures under `limits`, for the `x-ratelimit-*` headers.
    pub async fn standing(&self, limits: &TierLimits) -> Result<Standing, GatewayError> {
        let limits = Some(limits.clone());
        self.call_settling("/standing", |settle| StatusRequest { limits, settle })
            .await
    }

    /// Sends this isolate's unsent settlements for the principal, if any are left.
    async fn flush(&self) {
        let has_unsent = UNSENT.with(|unsent| unsent.borrow().contains_key(&self.name));
        if has_unsent {
            let _ = self
                .call_settling::<_, ()>("/settle", |settle| StatusRequest {
                    limits: None,
                    settle,
                })
                .await;
        }
    }

    /// Forgets the principal's buckets, leases and this period's spend.
    pub async fn reset(&self) -> Result<(), GatewayError> {
        self.call::<()>("/reset", String::new()).await
    }
}

fn unavailable(why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::RateLimiterUnavailable,
        format!("the rate limiter is unavailable: {why}; try again shortly"),
    )
}

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

/// Asks the principal's limiter to admit a request under `limits`. When the limiter
/// cannot be reached, the configured failure mode decides: 503 `rate_limiter_unavailable`
/// (closed) or unlimited (open, and said so in [`Admission::failed_open`]).
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
    let request = AdmitRequest {
        lease: ask.request_id.to_owned(),
        limits,
        tokens: ask.prompt_tokens + ask.max_output_tokens,
        cost_nanousd: ask.price.map_or(0, |price| {
            price.estimate_nanousd(ask.prompt_tokens, ask.max_output_tokens)
        }),
        lease_ttl_ms: u64::from(config.rate_limits.lease_ttl_s) * 1_000,
        settle: Vec::new(),
    };
    let answer = match &stub {
        Ok(stub) => {
            stub.call_settling::<_, AdmitResponse>("/admit", |settle| AdmitRequest {
                settle,
                ..request.clone()
            })
            .await
        }
        Err(error) => Err(error.clone()),
    };
    let answer = match (answer, config.rate_limits.failure_mode) {
        (Ok(answer), _) => answer,
        (Err(error), FailureMode::Closed) => {
            return Admission {
                standing: None,
                verdict: Err(error),
                failed_open: false,
                refused_by: None,
            }
        }
        (Err(_), FailureMode::Open) => return Admission::unlimited(true),
    };
    let verdict = match answer.refused {
        Some(refusal) => Err(refusal_error(refusal, &request.limits, request.tokens)
            .with_retry_after_ms(answer.retry_after_ms)),
        None => Ok(stub.ok().map(|stub| Settlement {
            stub,
            lease: request.lease,
            price: ask.price,
            background: background.clone(),
            usage: Usage::default(),
        })),
    };
    Admission {
        standing: Some(answer.standing),
        verdict,
        failed_open: false,
        refused_by: answer.refused.map(Refusal::name),
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
                Delay::from(Duration::from_millis(SETTLE_DELAY_MS)).await;
                FLUSH_TIMERS.with(|timers| timers.borrow_mut().remove(&stub.name));
                // A flush that fails leaves the settlements for the next call; if none
                // comes, the leases expire and free their slots.
                stub.flush().await;
            });
        }
    }
}
