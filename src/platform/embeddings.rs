//! `POST /v1/embeddings`: the request checked, looked up in the cache (embeddings are
//! deterministic: KV keys `cache:<namespace>:<sha256 hex>` like chat answers, so the
//! admin purge reaches them), admitted to the caller's limits and answered by the
//! pipeline's attempt loop over the route's targets.

use serde::{Deserialize, Serialize};
use worker::{Env, Request};

use super::cache::put_in_background;
use super::clock::now_ms;
use super::crypto::{random_u32, sha256_hex};
use super::exchange::{admit, read_json_body, Caller, Exchange, Reply};
use super::keys::KV_BINDING;
use super::respond;
use crate::api::chat::Usage;
use crate::api::embeddings::{self, EmbeddingRequest, Embeddings};
use crate::cache::key::namespace;
use crate::cache::CacheMode;
use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::log::CacheResult;
use crate::pipeline::embed::{embed, EmbedCall};
use crate::upstream::{self, Target};

/// Stored vectors, as kept in KV.
#[derive(Serialize, Deserialize)]
struct Entry {
    /// When they stop being served (Unix milliseconds).
    #[serde(rename = "x")]
    expires_ms: u64,
    #[serde(rename = "e")]
    embeddings: Embeddings,
}

/// Answers one embeddings request of `caller`.
pub async fn embeddings(
    req: &mut Request,
    env: &Env,
    config: &Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let body = read_json_body(req, config).await?;
    let request = EmbeddingRequest::parse(&body, &config.limits)?;
    exchange.log.model = Some(request.model.clone());
    caller.principal.check_model(&request.model)?;
    let targets = upstream::resolve_chain(config, &request.model, random_u32())?;
    let cache_control = req.headers().get("cache-control").ok().flatten();
    let bypass = match cache_control.as_deref() {
        _ if config.cache.mode == CacheMode::Off => Some("disabled"),
        Some(value) if value.contains("no-store") => Some("no_store"),
        Some(value) if value.contains("no-cache") => Some("opted_out"),
        _ => None,
    };
    let log = &mut exchange.log;
    let (key, hit) = match bypass {
        Some(reason) => {
            log.cache = Some(CacheResult::Bypass);
            log.cache_bypass = Some(reason);
            (None, None)
        }
        None => {
            let (key, hash) = cache_key(config, caller, &request, &targets).await?;
            let hit = lookup(env, &key).await;
            log.cache = Some(match hit {
                Some(_) => CacheResult::Hit,
                None => CacheResult::Miss,
            });
            log.cache_key = Some(hash);
            (Some(key), hit)
        }
    };
    let estimate = request.estimated_tokens();
    let ask = hit.is_none().then_some((estimate, targets[0].model));
    let settlement = admit(0, ask, config, caller, exchange).await?;
    let (embeddings, prompt_tokens) = match hit {
        Some(embeddings) => {
            let tokens = embeddings.prompt_tokens.unwrap_or(estimate);
            exchange.log.set_usage(&Usage::new(tokens, 0), false);
            (embeddings, tokens)
        }
        None => {
            let ports = exchange.ports(req);
            let call = EmbedCall {
                ports: &ports,
                config,
                request: &request,
                targets,
                settlement,
            };
            let (embeddings, usage) = embed(call, &mut exchange.log).await?;
            if let Some(key) = &key {
                store(env, exchange, config, key, &embeddings);
            }
            (embeddings, usage.prompt_tokens)
        }
    };
    let body = embeddings::body(&embeddings, &request.model, prompt_tokens, request.base64);
    Ok(Reply::Now(respond::json(200, body)))
}

/// The KV key of `request`'s vectors when served by `targets`, and its hash.
async fn cache_key(
    config: &Config,
    caller: &Caller,
    request: &EmbeddingRequest,
    targets: &[Target<'_>],
) -> Result<(String, String), GatewayError> {
    let mut route: Vec<String> = targets.iter().map(Target::key).collect();
    route.sort();
    let hash = sha256_hex(request.cache_material(&route).as_bytes()).await?;
    let principal = &caller.principal;
    let space = namespace(config.cache.scope, &principal.id, principal.team.as_deref());
    Ok((format!("cache:{space}:{hash}"), hash))
}

/// The stored vectors, if any are servable; a KV failure is a miss.
async fn lookup(env: &Env, key: &str) -> Option<Embeddings> {
    let kv = env.kv(KV_BINDING).ok()?;
    let text = kv.get(key).text().await.ok()??;
    let entry: Entry = serde_json::from_str(&text).ok()?;
    (now_ms() < entry.expires_ms).then_some(entry.embeddings)
}

fn store(env: &Env, exchange: &mut Exchange, config: &Config, key: &str, embeddings: &Embeddings) {
    let ttl_s = config.cache.ttl_s;
    let entry = Entry {
        expires_ms: now_ms() + u64::from(ttl_s) * 1_000,
        embeddings: embeddings.clone(),
    };
    let Ok(text) = serde_json::to_string(&entry) else {
        return;
    };
    if ttl_s == 0 || text.len() > config.cache.max_entry_bytes {
        return;
    }
    put_in_background(env, &exchange.background, key, text, ttl_s);
    exchange.log.cache_stored = true;
}
