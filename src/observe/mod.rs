//! What the gateway tells operators about itself.

pub mod log;
