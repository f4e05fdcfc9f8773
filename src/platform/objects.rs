//! What the gateway's Durable Objects share: one typed call from the Worker (a JSON
//! request enum in, a JSON answer out), the object's side of it, and the alarm each
//! object keeps for its own deferred work. Each object class is declared
//! `#[durable_object(alarm)]`: it exports `fetch` and `alarm` only, not workers-rs's
//! default WebSocket and socket handlers, whose wrappers it would never call (about 6 KB of
//! gzipped wasm for the five classes).

use std::cell::Cell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::RequestRedirect;
use worker::{
    ObjectNamespace, Request, Response, ScheduledTime, SqlStorage, SqlStorageValue, State, Storage,
};

use super::fetch::{fetch, request_init, Fetcher};

/// Sends `call` to the object named `name` in `namespace`; its answer when it is a 200,
/// else why not.
pub async fn call<C: Serialize, R: DeserializeOwned>(
    namespace: &ObjectNamespace,
    name: &str,
    call: &C,
) -> Result<R, &'static str> {
    let body = serde_json::to_string(call).map_err(|_| "the call could not be written")?;
    let text = send(namespace, name, body).await?;
    // An object that answers nothing answers `null`.
    let text = if text.is_empty() { "null" } else { &text };
    serde_json::from_slice(text.as_bytes()).map_err(|_| "its answer was not understood")
}

/// The exchange itself, the same for every call (so that it is compiled once).
async fn send(
    namespace: &ObjectNamespace,
    name: &str,
    body: String,
) -> Result<String, &'static str> {
    let stub: Fetcher = namespace
        .get_by_name(name)
        .map_err(|_| "its Durable Object could not be addressed")?
        .into_rpc();
    let init = request_init("POST", None, Some(&body), RequestRedirect::Follow);
    let response = fetch(&stub, "https://object/", &init)
        .await
        .map_err(|_| "its Durable Object did not answer")?;
    let text = response
        .text()
        .map(JsFuture::from)
        .map_err(|_| "its answer could not be read")?
        .await
        .ok()
        .and_then(|text| text.as_string())
        .ok_or("its answer could not be read")?;
    if response.status() != 200 {
        return Err("its Durable Object failed");
    }
    Ok(text)
}

/// The object's side of [`call`]: the call read from `req`, run by `apply` (its answer as
/// JSON text, or what went wrong), answered 200 or 500.
pub async fn serve<C: DeserializeOwned>(
    mut req: Request,
    apply: impl FnOnce(C) -> Result<String, String>,
) -> worker::Result<Response> {
    let body = req.text().await?;
    let result = serde_json::from_slice::<C>(body.as_bytes())
        .map_err(|err| format!("bad call: {err}"))
        .and_then(apply);
    match result {
        Ok(answer) => Response::ok(answer),
        Err(problem) => Response::error(problem, 500),
    }
}

/// A call that may keep a record until some time.
pub trait Expiring {
    /// When the record the call keeps expires (Unix seconds), if it keeps one.
    fn expires_at(&self) -> Option<u64>;
}

impl Expiring for crate::api::responses::StoreCall {
    fn expires_at(&self) -> Option<u64> {
        match self {
            Self::Put { expires_at, .. } => Some(*expires_at),
            _ => None,
        }
    }
}

impl Expiring for crate::api::feedback::FeedbackCall {
    fn expires_at(&self) -> Option<u64> {
        match self {
            Self::Remember(requests) => requests.iter().map(|request| request.expires_at).min(),
            _ => None,
        }
    }
}

/// [`serve`] for an object whose records expire: when the call keeps one, the object's
/// alarm is set for its expiry (unless one at least as early is set).
pub async fn serve_expiring<C: DeserializeOwned + Expiring>(
    req: Request,
    state: &State,
    alarm: &Alarm,
    apply: impl FnOnce(C) -> Result<String, String>,
) -> worker::Result<Response> {
    let mut expiry = None;
    let response = serve(req, |call: C| {
        expiry = call.expires_at();
        apply(call)
    })
    .await;
    if let Some(at_s) = expiry {
        alarm
            .set_by(&state.storage(), at_s.saturating_mul(1_000))
            .await;
    }
    response
}

/// An object's SQLite tables, created on their first use in the instance.
pub struct Tables {
    schema: &'static str,
    ready: Cell<bool>,
}

impl Tables {
    /// Tables made by `schema` (idempotent SQL: `CREATE ... IF NOT EXISTS`).
    pub fn new(schema: &'static str) -> Self {
        Tables {
            schema,
            ready: Cell::new(false),
        }
    }

    /// The instance's SQLite storage, its tables created if they are not yet.
    pub fn sql(&self, state: &State) -> worker::Result<SqlStorage> {
        let sql = state.storage().sql();
        if !self.ready.get() {
            sql.exec(self.schema, None)?;
            self.ready.set(true);
        }
        Ok(sql)
    }
}

/// An integer column value (saturating at `i64::MAX`).
pub fn integer(value: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Unix seconds of the earliest `expires_at` in `table`, if any row has one.
pub fn earliest_expiry(sql: &SqlStorage, table: &str) -> Option<u64> {
    let query = format!("SELECT MIN(expires_at) FROM {table}");
    let row = sql.exec(&query, None).ok()?.raw().next()?.ok()?;
    match row.as_slice() {
        [SqlStorageValue::Integer(next)] => u64::try_from(*next).ok(),
        _ => None,
    }
}

/// The alarm an object sets for its deferred work: set only when none at least as early
/// is set already, so that frequent requests cost no storage calls.
#[derive(Default)]
pub struct Alarm {
    at: Cell<Option<u64>>,
}

impl Alarm {
    /// Sets the alarm for `at_ms` (Unix ms), unless one at least as early is set.
    pub async fn set_by(&self, storage: &Storage, at_ms: u64) {
        if self.at.get().is_some_and(|at| at <= at_ms) {
            return;
        }
        let when = ScheduledTime::new(js_sys::Date::new(&JsValue::from_f64(at_ms as f64)));
        if storage.set_alarm(when).await.is_ok() {
            self.at.set(Some(at_ms));
        }
    }

    /// The alarm fired: none is set any more.
    pub fn fired(&self) {
        self.at.set(None);
    }

    /// Sets the alarm for the earliest `expires_at` left in `table`, if any.
    pub async fn set_for_next_expiry(&self, state: &State, sql: &SqlStorage, table: &str) {
        if let Some(next_s) = earliest_expiry(sql, table) {
            self.set_by(&state.storage(), next_s.saturating_mul(1_000))
                .await;
        }
    }
}
