//! The admin API: create, list, read, change and revoke API keys; read and reset a
//! principal's rate limits; purge cached answers; usage by principal or team; metrics. The caller is already admitted with the admin token (see
//! [`super::keys::authenticate_admin`]).

use serde_json::{json, Value};
use worker::{Env, Response};

use super::cache;
use super::clock::now_ms;
use super::crypto::{random_bytes, sha256_hex};
use super::feedback;
use super::fetch::{read_capped, Body, BodyError};
use super::incoming::Incoming;
use super::keys::{forget, KeyStore};
use super::limiter::LimiterStub;
use super::metrics;
use super::respond;
use crate::api::usage_report;
use crate::auth::api_keys::{format_id, format_key, KeyRecord, KeyUpdate, NewKey};
use crate::auth::PrincipalId;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::router::AdminOp;

/// Largest admin request body.
const MAX_ADMIN_BODY_BYTES: usize = 16 * 1024;

/// Serves one admin route.
pub async fn serve(
    op: AdminOp,
    id: Option<&str>,
    req: &Incoming,
    env: &Env,
    config: &Config,
) -> Result<Response, GatewayError> {
    // Opened by the key operations only: the limits ones must not depend on KV.
    let store = || KeyStore::open(env);
    let now_s = now_ms() / 1000;
    match op {
        AdminOp::CreateKey => {
            let store = store()?;
            let new = NewKey::parse(&body(req).await?)?;
            let key = format_key(&random_bytes()?);
            let hash = sha256_hex(key.as_bytes()).await?;
            let record = new.into_record(format_id(&random_bytes()?), hash, now_s);
            store.save(&record).await?;
            let mut view = record.public_view();
            // The only time the key is ever shown.
            view["key"] = Value::String(key);
            Ok(respond::json(201, view.to_string()))
        }
        AdminOp::ListKeys => {
            let store = store()?;
            let url = req.url();
            let (cursor, limit) = list_query(url)?;
            let (records, next) = store.list(cursor, limit).await?;
            let data: Vec<Value> = records.iter().map(KeyRecord::public_view).collect();
            let page = json!({"object": "list", "data": data, "next_cursor": next});
            Ok(respond::json(200, page.to_string()))
        }
        AdminOp::GetKey => {
            let record = existing(&store()?, id).await?;
            Ok(respond::json(200, record.public_view().to_string()))
        }
        AdminOp::UpdateKey => {
            let update = KeyUpdate::parse(&body(req).await?)?;
            let store = store()?;
            let mut record = existing(&store, id).await?;
            update.apply(&mut record)?;
            store.save(&record).await?;
            forget(&record.hash);
            Ok(respond::json(200, record.public_view().to_string()))
        }
        AdminOp::RevokeKey => {
            let store = store()?;
            let mut record = existing(&store, id).await?;
            record.revoked_at.get_or_insert(now_s);
            store.revoke(&record).await?;
            forget(&record.hash);
            Ok(respond::json(200, record.public_view().to_string()))
        }
        AdminOp::GetLimits | AdminOp::ResetLimits => {
            let principal = decode("principal", id.unwrap_or_default())?;
            let report = limits(op, &PrincipalId::from_admin(&principal), env).await?;
            Ok(respond::json(200, report.to_string()))
        }
        AdminOp::Metrics => {
            let metrics = metrics::collect(env, config.metrics_shards).await?;
            Ok(respond::prometheus(metrics.render(now_ms())))
        }
        AdminOp::Usage => {
            let url = req.url();
            match (query_param(url, "principal")?, query_param(url, "team")?) {
                (Some(principal), None) => {
                    let principal = PrincipalId::from_admin(&principal);
                    let mut report = limits(AdminOp::GetLimits, &principal, env).await?;
                    feedback::add_satisfaction(&mut report, env, &principal).await;
                    Ok(respond::json(200, report.to_string()))
                }
                (None, Some(team)) => {
                    let usage = metrics::team_usage(env, config.metrics_shards, &team).await?;
                    Ok(respond::json(200, usage))
                }
                _ => Err(GatewayError::invalid(
                    "principal",
                    "name either ?principal=<id> or ?team=<id>",
                )),
            }
        }
        AdminOp::PurgeCache => {
            let url = req.url();
            purge_cache(id.unwrap_or_default(), url, env, config).await
        }
    }
}

/// `GET` (or, to reset first, `DELETE`) `/admin/limits/{principal}`: the principal's
/// standing under the limits of its last request.
async fn limits(op: AdminOp, principal: &str, env: &Env) -> Result<Value, GatewayError> {
    let stub = LimiterStub::open(env, principal)?;
    if op == AdminOp::ResetLimits {
        stub.reset().await?;
    }
    let status = stub.status(None).await?;
    Ok(usage_report(principal, None, None, status))
}

/// A percent-encoded URL part, decoded.
fn decode(name: &str, value: &str) -> Result<String, GatewayError> {
    js_sys::decode_uri_component(value)
        .map(String::from)
        .map_err(|_| GatewayError::invalid(name, "badly encoded URL"))
}

/// Keys per page of `GET /admin/keys` when `limit` is not given.
const DEFAULT_PAGE: u64 = 100;
/// Largest `limit` (KV lists at most 1000 keys per call).
const MAX_PAGE: u64 = 1000;

/// `?cursor=...&limit=...` of a key listing.
fn list_query(url: &str) -> Result<(Option<String>, u64), GatewayError> {
    let cursor = query_param(url, "cursor")?.filter(|cursor| !cursor.is_empty());
    let limit = match query_param(url, "limit")? {
        None => DEFAULT_PAGE,
        Some(limit) => limit
            .parse()
            .ok()
            .filter(|limit| (1..=MAX_PAGE).contains(limit))
            .ok_or_else(|| {
                GatewayError::invalid("limit", format!("limit must be 1 to {MAX_PAGE}"))
            })?,
    };
    Ok((cursor, limit))
}

/// The decoded value of the query parameter `name` of `url`, if present.
fn query_param(url: &str, name: &str) -> Result<Option<String>, GatewayError> {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then_some(value)
        })
        .next()
        .map(|value| decode(name, value))
        .transpose()
}

/// `DELETE /admin/cache/{namespace}` (`principal:<id>`, `team:<id>` or `global`): drops
/// the namespace's cached answers, or with `?key=<x-cache-key>` just that one.
async fn purge_cache(
    space: &str,
    url: &str,
    env: &Env,
    config: &Config,
) -> Result<Response, GatewayError> {
    let space = decode("namespace", space)?;
    // A principal's namespace may name it as the admin API does (`principal:alice`).
    let space = match space.strip_prefix("principal:") {
        Some(principal) => format!("principal:{}", PrincipalId::from_admin(principal)),
        None => space,
    };
    let known = space == "global" || space.starts_with("principal:") || space.starts_with("team:");
    if !known {
        return Err(GatewayError::invalid(
            "namespace",
            "the namespace must be principal:<id>, team:<id> or global",
        ));
    }
    let key = query_param(url, "key")?;
    if key
        .as_deref()
        .is_some_and(|key| key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(GatewayError::invalid(
            "key",
            "the key must be 64 hex digits (x-cache-key)",
        ));
    }
    let purged = cache::purge(env, &config.cache, &space, key.as_deref()).await?;
    let answer = json!({"namespace": space, "key": key, "purged": purged});
    Ok(respond::json(200, answer.to_string()))
}

async fn body(req: &Incoming) -> Result<Vec<u8>, GatewayError> {
    read_capped(Body::Request(req), MAX_ADMIN_BODY_BYTES)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => {
                GatewayError::new(ErrorKind::PayloadTooLarge, "admin request too large")
            }
            BodyError::Failed => {
                GatewayError::new(ErrorKind::InvalidJson, "the request body could not be read")
            }
        })
}

async fn existing(store: &KeyStore, id: Option<&str>) -> Result<KeyRecord, GatewayError> {
    let id = id.unwrap_or_default();
    store.by_id(id).await?.ok_or_else(|| {
        GatewayError::new(
            ErrorKind::NotFound,
            format!(
                "no key with id {:?}",
                id.chars().take(64).collect::<String>()
            ),
        )
    })
}
