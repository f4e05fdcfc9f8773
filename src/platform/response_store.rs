//! Stored responses in Durable Objects: the [`ResponseStore`] object (one per principal,
//! SQLite storage) and the Worker's side of it, [`ResponseStoreStub`].
//!
//! One object per principal keeps every principal's responses apart: an id looked up by
//! anyone else is simply not there (404). Records expire after `RESPONSE_TTL_SECONDS`;
//! reads ignore expired rows at once, and an alarm deletes them.

use worker::{
    durable_object, DurableObject, Env, ObjectNamespace, Request, Response, SqlStorage,
    SqlStorageValue, State,
};

use super::clock::now_ms;
use super::objects::{self, integer, Alarm, Tables};
use crate::api::responses::{StoreCall, StoredResponse};
use crate::error::{ErrorKind, GatewayError};

/// The Durable Object binding of [`ResponseStore`].
pub const BINDING: &str = "RESPONSE_STORE";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS responses (
  id TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires_at);";

/// One principal's stored responses, as a Durable Object.
#[durable_object(alarm)]
pub struct ResponseStore {
    state: State,
    tables: Tables,
    alarm: Alarm,
}

impl DurableObject for ResponseStore {
    fn new(state: State, _env: Env) -> Self {
        ResponseStore {
            state,
            tables: Tables::new(SCHEMA),
            alarm: Alarm::default(),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        objects::serve_expiring(req, &self.state, &self.alarm, |call: StoreCall| {
            self.apply(call)
        })
        .await
    }

    /// Deletes expired responses, then sets the alarm for the next expiry.
    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        let sql = self.sql()?;
        let now = integer(now_ms() / 1_000);
        sql.exec("DELETE FROM responses WHERE expires_at <= ?", vec![now])?;
        self.alarm
            .set_for_next_expiry(&self.state, &sql, "responses")
            .await;
        Response::ok("")
    }
}

impl ResponseStore {
    fn sql(&self) -> worker::Result<SqlStorage> {
        self.tables.sql(&self.state)
    }

    /// Runs one call against SQLite; its answer as JSON.
    fn apply(&self, call: StoreCall) -> Result<String, String> {
        let sql = self.sql().map_err(storage_error)?;
        let now = integer(now_ms() / 1_000);
        match call {
            StoreCall::Put {
                id,
                record,
                expires_at,
            } => {
                let record = serde_json::to_string(&record).map_err(|err| err.to_string())?;
                sql.exec(
                    "INSERT OR REPLACE INTO responses (id, expires_at, record) VALUES (?, ?, ?)",
                    vec![id.into(), integer(expires_at), record.into()],
                )
                .map_err(storage_error)?;
                Ok("null".to_owned())
            }
            StoreCall::Get(id) => {
                let cursor = sql
                    .exec(
                        "SELECT record FROM responses WHERE id = ? AND expires_at > ?",
                        vec![id.into(), now],
                    )
                    .map_err(storage_error)?;
                match cursor.raw().next().transpose().map_err(storage_error)? {
                    Some(row) => match row.as_slice() {
                        [SqlStorageValue::String(record)] => Ok(record.clone()),
                        _ => Err("bad response row".to_owned()),
                    },
                    None => Ok("null".to_owned()),
                }
            }
            StoreCall::Delete(id) => {
                let cursor = sql
                    .exec(
                        "DELETE FROM responses WHERE id = ? AND expires_at > ? RETURNING id",
                        vec![id.into(), now],
                    )
                    .map_err(storage_error)?;
                Ok(cursor.raw().next().is_some().to_string())
            }
        }
    }
}

fn storage_error(err: worker::Error) -> String {
    format!("response storage failed: {err}")
}

/// A principal's response store, as seen from the Worker.
#[derive(Clone)]
pub struct ResponseStoreStub {
    namespace: ObjectNamespace,
    name: String,
}

impl ResponseStoreStub {
    /// The store of the principal `principal_id`.
    pub fn open(env: &Env, principal_id: &str) -> Result<Self, GatewayError> {
        let namespace = env
            .durable_object(BINDING)
            .map_err(|_| unavailable("its Durable Object binding is missing"))?;
        Ok(ResponseStoreStub {
            namespace,
            name: format!("responses:{principal_id}"),
        })
    }

    /// Keeps `record` as `id` for `ttl_s` seconds.
    pub async fn put(
        &self,
        id: &str,
        record: StoredResponse,
        ttl_s: u32,
    ) -> Result<(), GatewayError> {
        let call = StoreCall::Put {
            id: id.to_owned(),
            record: Box::new(record),
            expires_at: now_ms() / 1_000 + u64::from(ttl_s),
        };
        objects::call::<_, Option<()>>(&self.namespace, &self.name, &call)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    /// The live record `id`: 404 `response_not_found` when there is none.
    pub async fn get(&self, id: &str) -> Result<StoredResponse, GatewayError> {
        let call = StoreCall::Get(id.to_owned());
        objects::call::<_, Option<StoredResponse>>(&self.namespace, &self.name, &call)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| not_found(id))
    }

    /// Forgets `id`: 404 `response_not_found` when there was none.
    pub async fn delete(&self, id: &str) -> Result<(), GatewayError> {
        let call = StoreCall::Delete(id.to_owned());
        let deleted: bool = objects::call(&self.namespace, &self.name, &call)
            .await
            .map_err(unavailable)?;
        deleted.then_some(()).ok_or_else(|| not_found(id))
    }
}

fn not_found(id: &str) -> GatewayError {
    // The id is the caller's own text: bounded before it is echoed.
    let shown: String = id.chars().take(64).collect();
    GatewayError::new(
        ErrorKind::ResponseNotFound,
        format!("no stored response {shown:?}: it never existed, expired, was deleted, or is another caller's"),
    )
}

fn unavailable(why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::ResponsesUnavailable,
        format!("the response store is unavailable: {why}; try again shortly"),
    )
}
