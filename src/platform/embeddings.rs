//! `POST /v1/embeddings`: the request checked, looked up in the cache (embeddings are
//! deterministic: KV keys `cache:<namespace>:<sha256 hex>` like chat answers, so the
//! admin purge reaches them), admitted to the caller's limits and answered by the
//! pipeline's attempt loop over the route's targets.

use serde::{Deserialize, Serialize};
use worker::Env;

use super::cache::put_in_background;
use super::clock::now_ms;
use super::crypto::{random_u32, sha256_hex};
use super::exchange::{admit, read_json_body, Caller, Exchange, Reply};
use super::incoming::Incoming;
use super::keys::KV_BINDING;
use super::kv::Namespace;
use super::respond;
use crate::api::chat::Usage;
use crate::api::embeddings::{self, EmbeddingRequest, Embeddings};
use crate::cache::key::namespace;
use crate::cache::{decide_for, CacheDecision};
use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::log::CacheResult;
use crate::pipeline::embed::{embed, EmbedCall};
use crate::upstream::{self, Target};

/// Stored vectors, as kept in KV.
#[derive(Serialize, Deserialize)]
struct Entry {
    /// When they were stored (Unix milliseconds).
    #[serde(rename = "t")]
    stored_ms: u64,
    /// When they stop being served (Unix milliseconds).
    #[serde(rename = "x")]
    expires_ms: u64,
    #[serde(rename = "e")]
    embeddings: Embeddings,
}

/// Answers one embeddings request of `caller`.
pub async fn embeddings(
    req: &Incoming,
    env: &Env,
    config: &Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let body = read_json_body(req, config).await?;
    let request = EmbeddingRequest::parse(&body, &config.limits)?;
    exchange.log.model = Some(request.model.clone());
    exchange.observer.opened(&mut exchange.log);
    caller.principal.check_model(&request.model)?;
    let targets = upstream::resolve_chain(config, &request.model, random_u32())?;
    let (cache_control, opt_in) = (req.header("cache-control"), req.header("x-gateway-cache"));
    let log = &mut exchange.log;
    // The chat cache's rules: `no-store` and `x-gateway-cache: off` bypass, `no-cache`
    // skips the read but refreshes the entry, `max-age` bounds both.
    let (key, hit, ttl_s) = match decide_for(
        &config.cache,
        true,
        cache_control.as_deref(),
        opt_in.as_deref(),
    ) {
        CacheDecision::Bypass(reason) => {
            log.cache = Some(CacheResult::Bypass);
            log.cache_bypass = Some(reason);
            (None, None, 0)
        }
        CacheDecision::Use {
            read,
            max_age_s,
            ttl_s,
        } => {
            let (key, hash) = cache_key(config, caller, &request, &targets).await?;
            let hit = match read {
                true => lookup(env, &key, max_age_s).await,
                false => None,
            };
            log.cache = Some(match hit {
                Some(_) => CacheResult::Hit,
                None => CacheResult::Miss,
            });
            log.cache_key = Some(hash);
            (Some(key), hit, ttl_s)
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
                store(env, exchange, config, key, ttl_s, &embeddings);
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
    let route = upstream::route_keys(targets);
    let hash = sha256_hex(request.cache_material(&route).as_bytes()).await?;
    let principal = &caller.principal;
    let space = namespace(config.cache.scope, &principal.id, principal.team.as_deref());
    Ok((format!("cache:{space}:{hash}"), hash))
}

/// The stored vectors, if any are servable (and at most `max_age_s` old); a KV failure is
/// a miss.
async fn lookup(env: &Env, key: &str, max_age_s: Option<u32>) -> Option<Embeddings> {
    let kv = Namespace::bound(env, KV_BINDING)?;
    let text = kv.get_text(key).await.ok()??;
    let entry: Entry = serde_json::from_slice(text.as_bytes()).ok()?;
    let now = now_ms();
    let age_s = now.saturating_sub(entry.stored_ms) / 1_000;
    let fresh = max_age_s.is_none_or(|max| age_s <= u64::from(max));
    (now < entry.expires_ms && fresh).then_some(entry.embeddings)
}

/// Stores the vectors under `key` for `ttl_s` (0: not at all), unless they are larger than
/// `CACHE_MAX_ENTRY_BYTES`.
fn store(
    env: &Env,
    exchange: &mut Exchange,
    config: &Config,
    key: &str,
    ttl_s: u32,
    embeddings: &Embeddings,
) {
    let now = now_ms();
    let entry = Entry {
        stored_ms: now,
        expires_ms: now + u64::from(ttl_s) * 1_000,
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
