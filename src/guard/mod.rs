//! Checks on what clients send, before anything reaches a provider. The text scanners
//! themselves (injection scores, personal data, invisible characters) are the
//! `guard-scan` crate, compiled for speed while the rest of the wasm is compiled for size;
//! these modules apply them to requests and read their settings.

pub mod injection;
pub mod pii;
pub mod prompt;
pub mod sanitize;
pub mod validate;
