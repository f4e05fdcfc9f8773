//! What the gateway tells operators about itself.

pub mod log;
pub mod metrics;
pub mod otlp;
pub mod quality;
pub mod trace;
