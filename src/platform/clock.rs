//! Time and randomness from the runtime (`Date.now()`, `crypto.getRandomValues`).
//!
//! Workers advance `Date.now()` only across I/O, which is exactly the resolution latency
//! measurements need.

use super::crypto::random_bytes;
use crate::auth::api_keys::hex;

/// Unix milliseconds.
pub fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// A fresh request id: 128 bits from the platform CSPRNG, as 32 hex digits.
pub fn new_request_id() -> String {
    match random_bytes::<16>() {
        Ok(bytes) => hex(&bytes),
        // The runtime always provides crypto.getRandomValues; a time-based id keeps the
        // request traceable if it ever does not.
        Err(_) => format!("t{:x}", now_ms()),
    }
}
