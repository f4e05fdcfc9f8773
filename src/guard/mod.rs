//! Checks on what clients send, before anything reaches a provider.

pub mod injection;
pub mod pii;
pub mod prompt;
pub mod sanitize;
pub mod validate;

#[cfg(test)]
pub(crate) mod hostile;
