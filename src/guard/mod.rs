//! Checks on what clients send, before anything reaches a provider.

pub mod validate;
