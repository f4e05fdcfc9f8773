//! User feedback in Durable Objects: the [`FeedbackStore`] object (one per principal,
//! SQLite storage), the Worker's side of it ([`FeedbackStub`]), and `POST /v1/feedback`.
//!
//! Each answered request is remembered in its caller's own store (batched per isolate and
//! principal, sent in the background after the answer) for `FEEDBACK_TTL_SECONDS`; a rating looks the request up there, so a
//! request id that someone else made is not found. The store also keeps its principal's
//! score tallies per model, day and month, for `/v1/usage`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use worker::{
    durable_object, DurableObject, Env, ObjectNamespace, Request, Response, SqlStorage,
    SqlStorageValue, State,
};

use super::background::{Background, BatchSend};
use super::clock::now_ms;
use super::exchange::{read_json_body, Caller, Exchange, Reply};
use super::incoming::Incoming;
use super::objects::{self, integer, Alarm, Tables};
use super::respond;
use crate::api::feedback::{
    FeedbackCall, FeedbackRequest, PreviousRating, Rated, Rating, Remembered, Satisfaction,
    ScoreTally,
};
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::limit::period::{day_key, month_key};
use crate::observe::log::{FeedbackLog, RequestLog};

/// The Durable Object binding of [`FeedbackStore`].
pub const BINDING: &str = "FEEDBACK";

/// How long a day's score tallies are kept (months are kept).
const SCORE_DAYS_KEPT: u64 = 62;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY,
  route TEXT NOT NULL,
  model TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  score INTEGER,
  rating TEXT,
  rated_at INTEGER
);
CREATE INDEX IF NOT EXISTS requests_expiry ON requests (expires_at);
CREATE TABLE IF NOT EXISTS scores (
  period TEXT NOT NULL,
  model TEXT NOT NULL,
  sum INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (period, model)
);";

/// How long an isolate gathers answered requests before it sends them to their callers'
/// stores: one call per principal per batch instead of one per request.
const REMEMBER_DELAY_MS: u64 = 250;
/// The most answered requests an isolate holds for sending; past it, requests are not
/// remembered (and cannot be rated).
const MAX_PENDING_REMEMBERED: usize = 10_000;

thread_local! {
    /// Answered requests not yet sent, by principal.
    static PENDING: RefCell<BTreeMap<String, Vec<Remembered>>> = const { RefCell::new(BTreeMap::new()) };
    /// How many requests `PENDING` holds.
    static PENDING_COUNT: Cell<usize> = const { Cell::new(0) };
    /// The next send of `PENDING`, if one is scheduled.
    static SEND: BatchSend = const { BatchSend::new() };
}

/// Remembers the answered request of `log` for `ttl_s`, when it can be rated (an answer,
/// status 200, of a route that answers, to a known caller): queued in the isolate and
/// sent with the others of its batch under `background`.
pub fn remember(env: &Env, background: &Background, log: &RequestLog, ttl_s: u32) {
    let rateable = matches!(log.route, "chat_completions" | "messages" | "responses");
    let (Some(principal), Some(model)) = (&log.principal, &log.model) else {
        return;
    };
    if ttl_s == 0 || !rateable || log.status != 200 {
        return;
    }
    if PENDING_COUNT.with(|count| count.get()) >= MAX_PENDING_REMEMBERED {
        return;
    }
    let request = Remembered {
        request_id: log.request_id.clone(),
        route: log.route.to_owned(),
        model: model.clone(),
        expires_at: now_ms() / 1_000 + u64::from(ttl_s),
    };
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.entry(principal.clone()).or_default().push(request);
    });
    PENDING_COUNT.with(|count| count.set(count.get() + 1));
    let env = env.clone();
    background.run_batched(&SEND, REMEMBER_DELAY_MS, move || async move {
        let batch = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
        PENDING_COUNT.with(|count| count.set(0));
        let sends = batch
            .into_iter()
            .map(|(principal, requests)| send_remembered(&env, principal, requests));
        futures_util::future::join_all(sends).await;
    });
}

/// Sends what the isolate holds for `principal` now: a rating is looked up only after
/// the requests its caller made here are stored.
async fn send_pending_of(env: &Env, principal: &str) {
    let requests = PENDING.with(|pending| pending.borrow_mut().remove(principal));
    if let Some(requests) = requests {
        PENDING_COUNT.with(|count| count.set(count.get().saturating_sub(requests.len())));
        send_remembered(env, principal.to_owned(), requests).await;
    }
}

/// Stores `requests` in `principal`'s store; a failure loses them (they cannot be rated).
async fn send_remembered(env: &Env, principal: String, requests: Vec<Remembered>) {
    if let Ok(store) = FeedbackStub::open(env, &principal) {
        let _ = store
            .call::<Option<()>>(&FeedbackCall::Remember(requests))
            .await;
    }
}

/// One principal's remembered requests and ratings, as a Durable Object.
#[durable_object(alarm)]
pub struct FeedbackStore {
    state: State,
    tables: Tables,
    alarm: Alarm,
}

impl DurableObject for FeedbackStore {
    fn new(state: State, _env: Env) -> Self {
        FeedbackStore {
            state,
            tables: Tables::new(SCHEMA),
            alarm: Alarm::default(),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        objects::serve_expiring(req, &self.state, &self.alarm, |call: FeedbackCall| {
            self.apply(call)
        })
        .await
    }

    /// Forgets expired requests and old days' tallies, then sets the alarm for the next
    /// expiry.
    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        let sql = self.tables.sql(&self.state)?;
        let now = now_ms();
        sql.exec(
            "DELETE FROM requests WHERE expires_at <= ?",
            vec![integer(now / 1_000)],
        )?;
        let oldest_day = day_key(now.saturating_sub(SCORE_DAYS_KEPT * 86_400_000));
        sql.exec(
            "DELETE FROM scores WHERE length(period) = 10 AND period < ?",
            vec![oldest_day.into()],
        )?;
        self.alarm
            .set_for_next_expiry(&self.state, &sql, "requests")
            .await;
        Response::ok("")
    }
}

impl FeedbackStore {
    /// Runs one call against SQLite; its answer as JSON.
    fn apply(&self, call: FeedbackCall) -> Result<String, String> {
        let sql = self.tables.sql(&self.state).map_err(storage_error)?;
        match call {
            FeedbackCall::Remember(requests) => {
                for request in requests {
                    // A request remembered already keeps its rating.
                    sql.exec(
                        "INSERT OR IGNORE INTO requests (id, route, model, expires_at) VALUES (?, ?, ?, ?)",
                        vec![
                            request.request_id.into(),
                            request.route.into(),
                            request.model.into(),
                            integer(request.expires_at),
                        ],
                    )
                    .map_err(storage_error)?;
                }
                Ok("null".to_owned())
            }
            FeedbackCall::Rate {
                request_id,
                rating,
                now_ms,
            } => {
                let rated = rate(&sql, &request_id, &rating, now_ms)?;
                serde_json::to_string(&rated).map_err(|err| err.to_string())
            }
            FeedbackCall::Satisfaction { now_ms } => {
                let (day, month) = (day_key(now_ms), month_key(now_ms));
                let rows = sql
                    .exec(
                        "SELECT period, model, sum, count FROM scores WHERE period IN (?, ?)",
                        vec![day.clone().into(), month.into()],
                    )
                    .map_err(storage_error)?;
                let mut satisfaction = Satisfaction::default();
                for row in rows.raw() {
                    let row = row.map_err(storage_error)?;
                    if let [SqlStorageValue::String(period), SqlStorageValue::String(model), SqlStorageValue::Integer(sum), SqlStorageValue::Integer(count)] =
                        row.as_slice()
                    {
                        let tallies = if *period == day {
                            &mut satisfaction.today
                        } else {
                            &mut satisfaction.month
                        };
                        let tally = ScoreTally {
                            sum: *sum,
                            count: *count,
                        };
                        tallies.insert(model.clone(), tally);
                    }
                }
                Ok(satisfaction.view().to_string())
            }
        }
    }
}

/// Rates the live request `request_id` (replacing its earlier rating, counted out of the
/// tallies of the day and month it was made in); `None` when there is no such request.
fn rate(
    sql: &SqlStorage,
    request_id: &str,
    rating: &Rating,
    now_ms: u64,
) -> Result<Option<Rated>, String> {
    let now_s = integer(now_ms / 1_000);
    let cursor = sql
        .exec(
            "SELECT route, model, score, rating, rated_at FROM requests WHERE id = ? AND expires_at > ?",
            vec![request_id.into(), now_s],
        )
        .map_err(storage_error)?;
    let Some(row) = cursor.raw().next().transpose().map_err(storage_error)? else {
        return Ok(None);
    };
    let (route, model, previous) = match row.as_slice() {
        [SqlStorageValue::String(route), SqlStorageValue::String(model), SqlStorageValue::Integer(score), SqlStorageValue::String(kept), SqlStorageValue::Integer(rated_at)] =>
        {
            let tags = serde_json::from_slice::<Rating>(kept.as_bytes())
                .map(|rating| rating.tags)
                .unwrap_or_default();
            let previous = PreviousRating {
                score: u8::try_from(*score).unwrap_or(0),
                tags,
                rated_at_ms: u64::try_from(*rated_at).unwrap_or(0),
            };
            (route.clone(), model.clone(), Some(previous))
        }
        [SqlStorageValue::String(route), SqlStorageValue::String(model), ..] => {
            (route.clone(), model.clone(), None)
        }
        _ => return Err("bad feedback row".to_owned()),
    };
    let kept = serde_json::to_string(rating).map_err(|err| err.to_string())?;
    sql.exec(
        "UPDATE requests SET score = ?, rating = ?, rated_at = ? WHERE id = ?",
        vec![
            i64::from(rating.score).into(),
            kept.into(),
            integer(now_ms),
            request_id.into(),
        ],
    )
    .map_err(storage_error)?;
    let mut changes = vec![(rating.score, now_ms, 1)];
    if let Some(previous) = &previous {
        changes.push((previous.score, previous.rated_at_ms, -1));
    }
    for (score, at_ms, weight) in changes {
        for period in [day_key(at_ms), month_key(at_ms)] {
            sql.exec(
                "INSERT INTO scores (period, model, sum, count) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (period, model) DO UPDATE SET sum = sum + excluded.sum, count = count + excluded.count",
                vec![
                    period.into(),
                    model.clone().into(),
                    (i64::from(score) * weight).into(),
                    weight.into(),
                ],
            )
            .map_err(storage_error)?;
        }
    }
    Ok(Some(Rated {
        route,
        model,
        previous,
    }))
}

fn storage_error(err: worker::Error) -> String {
    format!("feedback storage failed: {err}")
}

/// A principal's feedback store, as seen from the Worker.
#[derive(Clone)]
pub struct FeedbackStub {
    namespace: ObjectNamespace,
    name: String,
}

impl FeedbackStub {
    /// The store of the principal `principal_id`.
    pub fn open(env: &Env, principal_id: &str) -> Result<Self, GatewayError> {
        let namespace = env
            .durable_object(BINDING)
            .map_err(|_| unavailable("its Durable Object binding is missing"))?;
        Ok(FeedbackStub {
            namespace,
            name: format!("feedback:{principal_id}"),
        })
    }

    /// The principal's mean scores per model today and this month, as JSON.
    pub async fn satisfaction(&self) -> Result<serde_json::Value, GatewayError> {
        let call = FeedbackCall::Satisfaction { now_ms: now_ms() };
        self.call(&call).await
    }

    async fn call<R: serde::de::DeserializeOwned>(
        &self,
        call: &FeedbackCall,
    ) -> Result<R, GatewayError> {
        objects::call(&self.namespace, &self.name, call)
            .await
            .map_err(unavailable)
    }
}

/// Adds the principal's mean scores (`satisfaction`) to a usage report; `null` when its
/// store cannot be reached (the rest of the report stands).
pub async fn add_satisfaction(report: &mut serde_json::Value, env: &Env, principal_id: &str) {
    let satisfaction = match FeedbackStub::open(env, principal_id) {
        Ok(store) => store.satisfaction().await.ok(),
        Err(_) => None,
    };
    if let Some(fields) = report.as_object_mut() {
        fields.insert("satisfaction".into(), satisfaction.into());
    }
}

/// `POST /v1/feedback`: rates one of the caller's own answered requests.
pub async fn submit(
    req: &Incoming,
    env: &Env,
    config: &Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    if config.feedback_ttl_s == 0 {
        return Err(GatewayError::new(
            ErrorKind::FeedbackDisabled,
            "feedback is turned off on this gateway (FEEDBACK_TTL_SECONDS=0)",
        ));
    }
    let body = read_json_body(req, config).await?;
    let FeedbackRequest { request_id, rating } = FeedbackRequest::parse(&body)?;
    let store = FeedbackStub::open(env, &caller.principal.id)?;
    send_pending_of(env, &caller.principal.id).await;
    let call = FeedbackCall::Rate {
        request_id: request_id.clone(),
        rating: rating.clone(),
        now_ms: now_ms(),
    };
    let Some(rated) = store.call::<Option<Rated>>(&call).await? else {
        let shown: String = request_id.chars().take(64).collect();
        return Err(GatewayError::new(
            ErrorKind::RequestNotFound,
            format!("no request {shown:?} to rate: it is not one of yours, or it was made more than FEEDBACK_TTL_SECONDS ago"),
        ));
    };
    let replaced = rated.previous.is_some();
    exchange.log.model = Some(rated.model.clone());
    exchange.log.feedback = Some(FeedbackLog {
        request_id: request_id.clone(),
        route: rated.route.clone(),
        score: rating.score,
        tags: rating.tags.clone(),
        previous: rated.previous,
    });
    let body = serde_json::json!({
        "object": "feedback",
        "request_id": request_id,
        "route": rated.route,
        "model": rated.model,
        "score": rating.score,
        "thumbs": rating.thumbs,
        "tags": rating.tags,
        "replaced": replaced,
    });
    Ok(Reply::Now(respond::json(200, body.to_string())))
}

fn unavailable(why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::FeedbackUnavailable,
        format!("the feedback store is unavailable: {why}; try again shortly"),
    )
}
