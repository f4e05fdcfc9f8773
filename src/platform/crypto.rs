//! WebCrypto and the platform CSPRNG.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};

use crate::auth::api_keys::hex;
use crate::error::{ErrorKind, GatewayError};

/// `N` bytes from the platform CSPRNG (`crypto.getRandomValues`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], GatewayError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|_| GatewayError::new(ErrorKind::Internal, "no randomness available"))?;
    Ok(bytes)
}

/// A uniformly random `u32` from the platform CSPRNG (0 in the never-seen case that it
/// fails: callers use it for jitter and weighted picks, where that is harmless).
pub fn random_u32() -> u32 {
    random_bytes::<4>().map_or(0, u32::from_le_bytes)
}

/// `crypto.subtle`, if the runtime has it.
pub fn subtle() -> Option<SubtleCrypto> {
    let scope = js_sys::global().unchecked_into::<WorkerGlobalScope>();
    scope.crypto().ok().map(|crypto| crypto.subtle())
}

/// Hex SHA-256 of `data`, by `crypto.subtle.digest`.
pub async fn sha256_hex(data: &[u8]) -> Result<String, GatewayError> {
    let failed = || GatewayError::new(ErrorKind::Internal, "SHA-256 is unavailable");
    let promise = subtle()
        .ok_or_else(failed)?
        .digest_with_str_and_u8_array("SHA-256", data)
        .map_err(|_| failed())?;
    let digest = JsFuture::from(promise).await.map_err(|_| failed())?;
    Ok(hex(&js_sys::Uint8Array::new(&digest).to_vec()))
}

/// Hex HMAC-SHA256 of `data` under `secret`, by `crypto.subtle.sign`.
pub async fn hmac_sha256_hex(secret: &[u8], data: &[u8]) -> Result<String, GatewayError> {
    let failed = || GatewayError::new(ErrorKind::Internal, "HMAC-SHA256 is unavailable");
    let subtle = subtle().ok_or_else(failed)?;
    let algorithm = js_sys::JSON::parse(r#"{"name":"HMAC","hash":"SHA-256"}"#)
        .map_err(|_| failed())?
        .unchecked_into();
    let usages = js_sys::Array::of1(&JsValue::from_str("sign"));
    let raw: js_sys::Object = js_sys::Uint8Array::from(secret).into();
    let promise = subtle
        .import_key_with_object("raw", &raw, &algorithm, false, &usages)
        .map_err(|_| failed())?;
    let key: CryptoKey = JsFuture::from(promise)
        .await
        .map_err(|_| failed())?
        .unchecked_into();
    let promise = subtle
        .sign_with_str_and_u8_array("HMAC", &key, data)
        .map_err(|_| failed())?;
    let mac = JsFuture::from(promise).await.map_err(|_| failed())?;
    Ok(hex(&js_sys::Uint8Array::new(&mac).to_vec()))
}
