//! API keys in KV (binding `GATEWAY_KV`), the isolate's lookup cache, and authentication
//! of `/v1` requests and admin requests.

use std::cell::RefCell;

use worker::Env;

use super::clock::now_ms;
use super::crypto::sha256_hex;
use super::kv::Namespace;
use crate::auth::api_keys::{
    hash_kv_key, id_kv_key, looks_like_key, revoked_kv_key, KeyCache, KeyRecord, ID_KV_PREFIX,
};
use crate::auth::jwt::{invalid_token, looks_like_jwt};
use crate::auth::{bearer_token, constant_time_eq, unauthenticated, Principal};
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};

/// The KV binding that holds API keys.
pub const KV_BINDING: &str = "GATEWAY_KV";
/// Most key lookups an isolate remembers.
const CACHE_ENTRIES: usize = 10_000;

thread_local! {
    static CACHE: RefCell<Option<KeyCache>> = const { RefCell::new(None) };
}

/// The principal of a `/v1` request: its JWT's or API key's, or the anonymous one when no
/// credentials were sent and the operator opened some models to anonymous callers.
pub async fn authenticate(
    authorization: Option<&str>,
    client_address: Option<&str>,
    config: &Config,
    env: &Env,
) -> Result<Principal, GatewayError> {
    let principal = authenticate_credential(authorization, client_address, config, env).await?;
    Ok(principal.with_team_settings(&config.teams))
}

async fn authenticate_credential(
    authorization: Option<&str>,
    client_address: Option<&str>,
    config: &Config,
    env: &Env,
) -> Result<Principal, GatewayError> {
    let Some(token) = bearer_token(authorization) else {
        if authorization.is_none() && !config.anonymous_models.is_empty() {
            let models = &config.anonymous_models;
            return Ok(Principal::anonymous(models, client_address));
        }
        return Err(unauthenticated());
    };
    if looks_like_jwt(token) {
        let jwt = config
            .jwt
            .as_ref()
            .ok_or_else(|| invalid_token("JWTs are not accepted"))?;
        return super::jwt::authenticate(token, jwt).await;
    }
    if !looks_like_key(token) {
        return Err(unauthenticated());
    }
    let hash = sha256_hex(token.as_bytes()).await?;
    let now = now_ms();
    let ttl_ms = u64::from(config.api_key_cache_ttl_s) * 1000;
    let cached = CACHE.with(|cache| {
        cache
            .borrow_mut()
            .get_or_insert_with(|| KeyCache::new(CACHE_ENTRIES, ttl_ms))
            .get(&hash, now)
    });
    let record = match cached {
        Some(record) => record,
        None => {
            let record = KeyStore::open(env)?.by_hash(&hash).await?;
            remember(&hash, record.clone(), now);
            record
        }
    };
    record
        .ok_or_else(unauthenticated)?
        .authenticate(&hash, now / 1000)
}

/// Admits an admin request: the `ADMIN_TOKEN` secret as bearer token, compared in
/// constant time. User keys never pass, and the admin token is not a key.
pub fn authenticate_admin(
    authorization: Option<&str>,
    config: &Config,
) -> Result<(), GatewayError> {
    let Some(expected) = &config.admin_token else {
        return Err(GatewayError::new(
            ErrorKind::AdminDisabled,
            "the admin API is disabled: no ADMIN_TOKEN secret is set",
        ));
    };
    let presented = bearer_token(authorization).unwrap_or_default();
    if constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(GatewayError::new(
            ErrorKind::InvalidApiKey,
            "invalid admin token",
        ))
    }
}

fn remember(hash: &str, record: Option<KeyRecord>, now: u64) {
    CACHE.with(|cache| {
        if let Some(cache) = cache.borrow_mut().as_mut() {
            cache.put(hash.to_owned(), record, now);
        }
    });
}

/// Drops a cached lookup after an admin change in this isolate.
pub fn forget(hash: &str) {
    CACHE.with(|cache| {
        if let Some(cache) = cache.borrow_mut().as_mut() {
            cache.forget(hash);
        }
    });
}

/// The key records in KV.
pub struct KeyStore {
    kv: Namespace,
}

impl KeyStore {
    /// The store behind the `GATEWAY_KV` binding; 503 when the binding is missing.
    pub fn open(env: &Env) -> Result<KeyStore, GatewayError> {
        let kv = Namespace::bound(env, KV_BINDING).ok_or_else(|| {
            GatewayError::new(
                ErrorKind::StoreUnavailable,
                "the key store is not configured (KV binding GATEWAY_KV)",
            )
        })?;
        Ok(KeyStore { kv })
    }

    /// The record of the key whose SHA-256 is `hash`, revoked if its tombstone says so
    /// (both are read at once).
    pub async fn by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, GatewayError> {
        let record_key = hash_kv_key(hash);
        let (record, tombstone) =
            futures_util::future::join(self.read(&record_key), self.tombstone(hash)).await;
        let tombstone = tombstone?;
        Ok(record?.map(|record| record.with_tombstone(tombstone)))
    }

    /// The record with public id `id`, revoked if its tombstone says so.
    pub async fn by_id(&self, id: &str) -> Result<Option<KeyRecord>, GatewayError> {
        let Some(record) = self.read(&id_kv_key(id)).await? else {
            return Ok(None);
        };
        let tombstone = self.tombstone(&record.hash).await?;
        Ok(Some(record.with_tombstone(tombstone)))
    }

    /// Writes a record under both its hash and its id, keeping any revocation its
    /// tombstone records (the record may come from a stale read).
    pub async fn save(&self, record: &KeyRecord) -> Result<(), GatewayError> {
        let tombstone = self.tombstone(&record.hash).await?;
        let record = record.clone().with_tombstone(tombstone);
        let value = serde_json::to_string(&record).map_err(|_| unavailable())?;
        for key in [hash_kv_key(&record.hash), id_kv_key(&record.id)] {
            self.put(&key, &value).await?;
        }
        Ok(())
    }

    /// Revokes a key for good: its tombstone first (never written again), then the
    /// record.
    pub async fn revoke(&self, record: &KeyRecord) -> Result<(), GatewayError> {
        let revoked_at = record.revoked_at.unwrap_or_default().to_string();
        self.put(&revoked_kv_key(&record.hash), &revoked_at).await?;
        self.save(record).await
    }

    /// When the key with `hash` was revoked, by its tombstone; `None` if it has none.
    /// A tombstone that cannot be read fails the lookup (deny by default).
    async fn tombstone(&self, hash: &str) -> Result<Option<u64>, GatewayError> {
        let text = self.kv.get_text(&revoked_kv_key(hash)).await;
        let text = text.map_err(|_| unavailable())?;
        // A tombstone is only ever written by a revocation: whatever it holds, it revokes.
        Ok(text.map(|text| text.trim().parse().unwrap_or(0)))
    }

    async fn put(&self, key: &str, value: &str) -> Result<(), GatewayError> {
        self.kv
            .put(key, value, None)
            .await
            .map_err(|_| unavailable())
    }

    /// Up to `limit` records in id order, starting at `cursor`, and the cursor of the next
    /// page (`None` on the last one).
    pub async fn list(
        &self,
        cursor: Option<String>,
        limit: u64,
    ) -> Result<(Vec<KeyRecord>, Option<String>), GatewayError> {
        let listed = self
            .kv
            .list(ID_KV_PREFIX, cursor.as_deref(), Some(limit))
            .await
            .map_err(|_| unavailable())?;
        let mut records = Vec::with_capacity(listed.names.len());
        for name in &listed.names {
            if let Some(record) = self.read(name).await? {
                records.push(record);
            }
        }
        Ok((records, listed.cursor))
    }

    async fn read(&self, key: &str) -> Result<Option<KeyRecord>, GatewayError> {
        // Text parsed here rather than KV's `json()`, whose JS-value deserializer would
        // be a second copy of the record's parsing code in the wasm.
        let text = self.kv.get_text(key).await.map_err(|_| unavailable())?;
        text.map(|text| serde_json::from_slice(text.as_bytes()).map_err(|_| unavailable()))
            .transpose()
    }
}

fn unavailable() -> GatewayError {
    GatewayError::new(
        ErrorKind::StoreUnavailable,
        "the key store could not be reached",
    )
}
