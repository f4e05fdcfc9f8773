//! WebCrypto and the platform CSPRNG.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::WorkerGlobalScope;

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

/// Hex SHA-256 of `data`, by `crypto.subtle.digest`.
pub async fn sha256_hex(data: &[u8]) -> Result<String, GatewayError> {
    let failed = || GatewayError::new(ErrorKind::Internal, "SHA-256 is unavailable");
    let subtle = js_sys::global()
        .unchecked_into::<WorkerGlobalScope>()
        .crypto()
        .map_err(|_| failed())?
        .subtle();
    let promise = subtle
        .digest_with_str_and_u8_array("SHA-256", data)
        .map_err(|_| failed())?;
    let digest = JsFuture::from(promise).await.map_err(|_| failed())?;
    Ok(hex(&js_sys::Uint8Array::new(&digest).to_vec()))
}
