//! Job records in Durable Objects: the [`JobStore`] object (one per principal, SQLite
//! storage) and the Worker's side of it, [`JobStoreStub`].
//!
//! One object per principal keeps every principal's jobs apart (a job id looked up by
//! anyone else is simply not there: 404) and makes idempotency keys exact: the object is
//! single-threaded, so two submissions with the same key cannot both create a job. Every
//! change is written before the object answers. An alarm deletes jobs past their expiry.

use std::cell::Cell;

use serde::Serialize;
use worker::{
    durable_object, DurableObject, Env, ObjectNamespace, Request, Response, SqlStorage,
    SqlStorageValue, State,
};

use super::clock::now_ms;
use super::objects::{self, integer, Alarm, Tables};
use crate::error::{ErrorKind, GatewayError};
use crate::jobs::{Change, Job, StoreCall, StoreReply};

/// The Durable Object binding of [`JobStore`].
pub const BINDING: &str = "JOB_STORE";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  idempotency_key TEXT UNIQUE,
  expires_at INTEGER,
  job TEXT NOT NULL,
  request TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_expiry ON jobs (expires_at);";

/// One principal's jobs, as a Durable Object.
#[durable_object(alarm)]
pub struct JobStore {
    state: State,
    tables: Tables,
    alarm: Alarm,
}

impl DurableObject for JobStore {
    fn new(state: State, _env: Env) -> Self {
        JobStore {
            state,
            tables: Tables::new(SCHEMA),
            alarm: Alarm::default(),
        }
    }

    async fn fetch(&self, req: Request) -> worker::Result<Response> {
        let changed = Cell::new(false);
        let response = objects::serve(req, |call| {
            let reply = self.apply(call)?;
            changed.set(reply.changed);
            Ok(to_json(&reply))
        })
        .await;
        // Only a change can move the earliest expiry (a deletion leaves at worst an early
        // alarm that finds nothing); polls skip the query.
        if changed.get() {
            self.schedule_alarm().await;
        }
        response
    }

    /// Deletes expired jobs, then sets the alarm for the next expiry.
    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm.fired();
        let sql = self.sql()?;
        let now = now_ms() / 1_000;
        sql.exec("DELETE FROM jobs WHERE expires_at <= ?", vec![integer(now)])?;
        self.schedule_alarm().await;
        Response::ok("")
    }
}

impl JobStore {
    fn sql(&self) -> worker::Result<SqlStorage> {
        self.tables.sql(&self.state)
    }

    /// Runs one request against SQLite; nothing here awaits, so requests never interleave.
    fn apply(&self, request: StoreCall) -> Result<StoreReply, String> {
        let sql = self.sql().map_err(storage_error)?;
        let now_s = now_ms() / 1_000;
        let live = |row: Option<(Job, String)>| row.filter(|(job, _)| !job.is_expired(now_s));
        match request {
            StoreCall::Create { job, request } => {
                if let Some(key) = &job.idempotency_key {
                    if let Some((existing, _)) = live(find(&sql, "idempotency_key", key)?) {
                        return Ok(StoreReply {
                            job: Some(existing),
                            ..StoreReply::default()
                        });
                    }
                    // An expired job still holding the key gives it up.
                    sql.exec(
                        "DELETE FROM jobs WHERE idempotency_key = ?",
                        vec![key.as_str().into()],
                    )
                    .map_err(storage_error)?;
                }
                sql.exec(
                    "INSERT INTO jobs (id, idempotency_key, expires_at, job, request) \
                     VALUES (?, ?, ?, ?, ?)",
                    vec![
                        job.id.as_str().into(),
                        job.idempotency_key
                            .as_deref()
                            .map_or(SqlStorageValue::Null, Into::into),
                        SqlStorageValue::Null,
                        to_json(&job).into(),
                        request.as_str().into(),
                    ],
                )
                .map_err(storage_error)?;
                Ok(StoreReply {
                    job: Some(*job),
                    changed: true,
                    ..StoreReply::default()
                })
            }
            StoreCall::Find(key) => Ok(StoreReply {
                job: live(find(&sql, "idempotency_key", &key)?).map(|(job, _)| job),
                ..StoreReply::default()
            }),
            StoreCall::Get(id) => Ok(StoreReply {
                job: live(find(&sql, "id", &id)?).map(|(job, _)| job),
                ..StoreReply::default()
            }),
            StoreCall::Change { id, change, ttl_s } => {
                let Some((mut job, request)) = live(find(&sql, "id", &id)?) else {
                    return Ok(StoreReply::default());
                };
                let starting = change == Change::Start;
                let changed = match job.apply(change, now_s, ttl_s) {
                    Ok(changed) => changed,
                    Err(conflict) => {
                        return Ok(StoreReply {
                            job: Some(job),
                            conflict: Some(conflict.message),
                            ..StoreReply::default()
                        })
                    }
                };
                if changed {
                    let expires_at = job.expires_at.map_or(SqlStorageValue::Null, integer);
                    sql.exec(
                        "UPDATE jobs SET job = ?, expires_at = ? WHERE id = ?",
                        vec![to_json(&job).into(), expires_at, id.into()],
                    )
                    .map_err(storage_error)?;
                }
                Ok(StoreReply {
                    request: (starting && changed).then_some(request),
                    job: Some(job),
                    changed,
                    conflict: None,
                })
            }
            StoreCall::Delete(id) => {
                sql.exec("DELETE FROM jobs WHERE id = ?", vec![id.into()])
                    .map_err(storage_error)?;
                Ok(StoreReply::default())
            }
        }
    }

    /// Sets the alarm at the earliest expiry.
    async fn schedule_alarm(&self) {
        let Ok(sql) = self.sql() else { return };
        self.alarm
            .set_for_next_expiry(&self.state, &sql, "jobs")
            .await;
    }
}

/// The row whose `column` is `value`: the job and its request.
fn find(sql: &SqlStorage, column: &str, value: &str) -> Result<Option<(Job, String)>, String> {
    let query = format!("SELECT job, request FROM jobs WHERE {column} = ?");
    let cursor = sql
        .exec(&query, vec![value.into()])
        .map_err(storage_error)?;
    let Some(row) = cursor.raw().next() else {
        return Ok(None);
    };
    match row.map_err(storage_error)?.as_slice() {
        [SqlStorageValue::String(job), SqlStorageValue::String(request)] => {
            let job = serde_json::from_slice(job.as_bytes())
                .map_err(|err| format!("bad job record: {err}"))?;
            Ok(Some((job, request.clone())))
        }
        _ => Err("bad job row".to_owned()),
    }
}

fn storage_error(err: worker::Error) -> String {
    format!("job storage failed: {err}")
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A principal's job store, as seen from the Worker.
pub struct JobStoreStub {
    namespace: ObjectNamespace,
    name: String,
}

impl JobStoreStub {
    /// The store of the principal `principal_id`.
    pub fn open(env: &Env, principal_id: &str) -> Result<Self, GatewayError> {
        let namespace = env
            .durable_object(BINDING)
            .map_err(|_| unavailable("its Durable Object binding is missing"))?;
        Ok(JobStoreStub {
            namespace,
            name: format!("jobs:{principal_id}"),
        })
    }

    async fn call(&self, call: &StoreCall) -> Result<StoreReply, GatewayError> {
        objects::call(&self.namespace, &self.name, call)
            .await
            .map_err(unavailable)
    }

    /// Keeps `job` (queued) with its `request`. When the job's idempotency key names a
    /// live job already, nothing is kept and that job is returned with `changed: false`.
    pub async fn create(&self, job: Job, request: String) -> Result<StoreReply, GatewayError> {
        self.call(&StoreCall::Create {
            job: Box::new(job),
            request,
        })
        .await
    }

    /// The live job submitted with idempotency key `key`.
    pub async fn find(&self, key: &str) -> Result<Option<Job>, GatewayError> {
        let key = key.to_owned();
        Ok(self.call(&StoreCall::Find(key)).await?.job)
    }

    /// The live job `id`.
    pub async fn get(&self, id: &str) -> Result<Option<Job>, GatewayError> {
        let id = id.to_owned();
        Ok(self.call(&StoreCall::Get(id)).await?.job)
    }

    /// Applies `change` to job `id`.
    pub async fn change(
        &self,
        id: &str,
        change: Change,
        ttl_s: u32,
    ) -> Result<StoreReply, GatewayError> {
        let id = id.to_owned();
        let ttl_s = u64::from(ttl_s);
        self.call(&StoreCall::Change { id, change, ttl_s }).await
    }

    /// Forgets job `id`.
    pub async fn delete(&self, id: &str) -> Result<(), GatewayError> {
        let id = id.to_owned();
        self.call(&StoreCall::Delete(id)).await.map(|_| ())
    }
}

fn unavailable(why: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::JobsUnavailable,
        format!("the job store is unavailable: {why}; try again shortly"),
    )
}
