//! JWT verification with WebCrypto, the isolate's JWKS cache and its imported keys.
//!
//! The JWKS is fetched on first use, again when it is older than `JWKS_CACHE_SECONDS`, and
//! when a token names an unknown `kid` — but never twice within
//! `JWKS_REFRESH_COOLDOWN_SECONDS`, so forged `kid`s cannot flood the identity provider.

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, RequestRedirect, SubtleCrypto};

use super::clock::now_ms;
use super::crypto;
use super::fetch::{fetch_within, read_capped, request_init, Body};
use crate::auth::jwt::{self, invalid_token, parse_jwks, select_key, Algorithm, Parsed, PublicKey};
use crate::auth::Principal;
use crate::config::JwtConfig;
use crate::error::GatewayError;

/// Longest wait for the JWKS.
const JWKS_TIMEOUT_MS: u64 = 5_000;
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most imported keys kept per isolate.
const MAX_IMPORTED_KEYS: usize = 64;

#[derive(Default)]
struct Jwks {
    keys: Vec<PublicKey>,
    fetched_ms: Option<u64>,
    last_attempt_ms: Option<u64>,
}

thread_local! {
    static JWKS: RefCell<Jwks> = RefCell::new(Jwks::default());
    static IMPORTED: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
}

/// The principal of a request bearing the JWT `token`.
pub async fn authenticate(token: &str, config: &JwtConfig) -> Result<Principal, GatewayError> {
    let parsed = jwt::parse(token, &config.algorithms)?;
    let verified = match parsed.algorithm {
        Algorithm::Hs256 => {
            let secret = config
                .hs256_secret
                .as_ref()
                .ok_or_else(|| invalid_token("algorithm not allowed"))?;
            let key = imported_hmac(secret.expose().as_bytes()).await?;
            verify(&key, r#"{"name":"HMAC"}"#, &parsed).await?
        }
        Algorithm::Rs256 | Algorithm::Es256 => {
            let key = public_key(config, &parsed).await?;
            let crypto_key = imported_public(&key).await?;
            let algorithm = match key.algorithm {
                Algorithm::Es256 => r#"{"name":"ECDSA","hash":"SHA-256"}"#,
                _ => r#"{"name":"RSASSA-PKCS1-v1_5"}"#,
            };
            verify(&crypto_key, algorithm, &parsed).await?
        }
    };
    if !verified {
        return Err(invalid_token("bad signature"));
    }
    config.policy.principal(&parsed.claims, now_ms() / 1000)
}

async fn public_key(config: &JwtConfig, token: &Parsed) -> Result<PublicKey, GatewayError> {
    if let Some(key) = select_key(&config.inline_keys, token) {
        return Ok(key.clone());
    }
    let Some(url) = &config.jwks_url else {
        return Err(invalid_token("no key matches the token"));
    };
    let now = now_ms();
    let (found, fresh, may_fetch) = JWKS.with(|jwks| {
        let jwks = jwks.borrow();
        let found = select_key(&jwks.keys, token).cloned();
        let fresh = jwks
            .fetched_ms
            .is_some_and(|at| now.saturating_sub(at) < u64::from(config.jwks_cache_s) * 1000);
        let may_fetch = jwks.last_attempt_ms.is_none_or(|at| {
            now.saturating_sub(at) >= u64::from(config.jwks_refresh_cooldown_s) * 1000
        });
        (found, fresh, may_fetch)
    });
    if let (Some(key), true) = (&found, fresh) {
        return Ok(key.clone());
    }
    if may_fetch {
        JWKS.with(|jwks| jwks.borrow_mut().last_attempt_ms = Some(now));
        if let Some(keys) = fetch_jwks(url).await {
            JWKS.with(|jwks| {
                let mut jwks = jwks.borrow_mut();
                jwks.keys = keys;
                jwks.fetched_ms = Some(now);
            });
        }
    }
    // A stale key still verifies when the identity provider cannot be reached.
    JWKS.with(|jwks| select_key(&jwks.borrow().keys, token).cloned())
        .or(found)
        .ok_or_else(|| invalid_token("no key matches the token"))
}

/// The usable keys at `url`, or `None` when it cannot be fetched or read.
async fn fetch_jwks(url: &str) -> Option<Vec<PublicKey>> {
    let init = request_init("GET", None, None, RequestRedirect::Follow);
    let response = fetch_within(url, &init, JWKS_TIMEOUT_MS).await.ok()?;
    if response.status() != 200 {
        return None;
    }
    let body = read_capped(Body::Response(&response), MAX_JWKS_BYTES)
        .await
        .ok()?;
    let (keys, _skipped) = parse_jwks(std::str::from_utf8(&body).ok()?).ok()?;
    Some(keys)
}

fn subtle() -> Result<SubtleCrypto, GatewayError> {
    crypto::subtle().ok_or_else(|| invalid_token("WebCrypto is unavailable"))
}

fn js_object(json: &str) -> Result<js_sys::Object, GatewayError> {
    js_sys::JSON::parse(json)
        .map(JsCast::unchecked_into)
        .map_err(|_| invalid_token("bad key"))
}

/// Imports (or takes from the isolate's cache) a key for `verify`; `key_data` is only
/// built on a miss.
async fn import(
    cache_key: String,
    format: &str,
    key_data: impl FnOnce() -> Result<js_sys::Object, GatewayError>,
    algorithm: &str,
) -> Result<CryptoKey, GatewayError> {
    if let Some(key) = IMPORTED.with(|keys| keys.borrow().get(&cache_key).cloned()) {
        return Ok(key);
    }
    let usages = js_sys::Array::of1(&JsValue::from_str("verify"));
    let promise = subtle()?
        .import_key_with_object(format, &key_data()?, &js_object(algorithm)?, false, &usages)
        .map_err(|_| invalid_token("the key cannot be imported"))?;
    let key: CryptoKey = JsFuture::from(promise)
        .await
        .map_err(|_| invalid_token("the key cannot be imported"))?
        .unchecked_into();
    IMPORTED.with(|keys| {
        let mut keys = keys.borrow_mut();
        if keys.len() >= MAX_IMPORTED_KEYS {
            keys.clear();
        }
        keys.insert(cache_key, key.clone());
    });
    Ok(key)
}

async fn imported_hmac(secret: &[u8]) -> Result<CryptoKey, GatewayError> {
    let raw = || Ok(js_sys::Uint8Array::from(secret).into());
    // One HMAC secret per isolate: cache it under a fixed name, never the secret itself.
    import(
        "hs256".to_owned(),
        "raw",
        raw,
        r#"{"name":"HMAC","hash":"SHA-256"}"#,
    )
    .await
}

async fn imported_public(key: &PublicKey) -> Result<CryptoKey, GatewayError> {
    let algorithm = match key.algorithm {
        Algorithm::Es256 => r#"{"name":"ECDSA","namedCurve":"P-256"}"#,
        _ => r#"{"name":"RSASSA-PKCS1-v1_5","hash":"SHA-256"}"#,
    };
    let jwk = key.jwk.to_string();
    import(jwk.clone(), "jwk", || js_object(&jwk), algorithm).await
}

async fn verify(key: &CryptoKey, algorithm: &str, token: &Parsed) -> Result<bool, GatewayError> {
    let promise = subtle()?
        .verify_with_object_and_u8_array_and_u8_array(
            &js_object(algorithm)?,
            key,
            &token.signature,
            token.signing_input.as_bytes(),
        )
        .map_err(|_| invalid_token("bad signature"))?;
    Ok(JsFuture::from(promise)
        .await
        .ok()
        .and_then(|valid| valid.as_bool())
        .unwrap_or(false))
}
