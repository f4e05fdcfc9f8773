//! The [`RateLimiter`] Durable Object: one per principal, SQLite storage, running the
//! pure state machine of [`crate::limit::limiter`].
//!
//! The object is single-threaded and every call runs on its state in memory without
//! awaiting, so concurrent requests of a principal are decided one after the other,
//! exactly. The state is written to SQLite at most [`FLUSH_DELAY_MS`] after it changes
//! (see [`Write`] for why not at once), so it survives the object being evicted, moved or
//! restarted.

use std::cell::{Cell, RefCell};

use worker::{
    durable_object, DurableObject, Env, Request, Response, SqlStorage, SqlStorageValue, State,
};

use super::clock::now_ms;
use super::objects::{self, Alarm};
use crate::limit::limiter::{Limiter, LimiterCall, PeriodUsage, RateState, Spend, Write};
use crate::limit::period::{day_key, month_key};

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
#[durable_object(alarm)]
pub struct RateLimiter {
    state: State,
    /// The state in memory, loaded from SQLite on first use.
    limiter: RefCell<Option<Limiter>>,
    /// Changes not yet written to SQLite since this moment, if any.
    dirty_since: Cell<Option<u64>>,
    alarm: Alarm,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            limiter: RefCell::new(None),
            dirty_since: Cell::new(None),
            alarm: Alarm::default(),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let response = objects::serve(req, |call| self.apply(call)).await;
        self.schedule_alarm().await;
        response
    }

    /// Writes pending changes and expires leases; then sets the next alarm.
    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        let result = self.apply(LimiterCall::Expire);
        self.schedule_alarm().await;
        match result {
            Ok(_) => Response::ok(""),
            Err(problem) => Response::error(problem, 500),
        }
    }
}

impl RateLimiter {
    /// Runs one call on the state in memory, without awaiting, and writes the state back
    /// when it is due. A principal's admissions and settlements are written behind, by
    /// the alarm: if the object crashes, up to the last second of counting is lost.
    fn apply(&self, call: LimiterCall) -> Result<String, String> {
        let now = now_ms();
        let sql = self.state.storage().sql();
        let mut slot = self.limiter.borrow_mut();
        let limiter = match slot.as_mut() {
            Some(limiter) => limiter,
            None => slot.insert(load(&sql, now)?),
        };
        let (reply, write) = limiter.handle(now, call, self.dirty_since.get().is_some());
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

    /// Sets the alarm for the next flush or lease expiry.
    async fn schedule_alarm(&self) {
        let expiry = self
            .limiter
            .borrow()
            .as_ref()
            .and_then(Limiter::next_expiry_ms);
        let flush = self.dirty_since.get().map(|since| since + FLUSH_DELAY_MS);
        if let Some(next) = [expiry, flush].into_iter().flatten().min() {
            self.alarm.set_by(&self.state.storage(), next).await;
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_slice(text.as_bytes()).map_err(|err| format!("bad limiter state: {err}"))
}

fn to_json(value: &impl serde::Serialize) -> String {
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
        Some([SqlStorageValue::String(state)]) => from_json(state)?,
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
