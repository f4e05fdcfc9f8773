//! The request pipeline: the stages between an authenticated request and its answer, as
//! plain Rust over the platform's [`ports`]. The fetch handler and the queue consumer both
//! run it; nothing here touches the runtime, so every branch is tested on the host with
//! fake ports.
//!
//! - [`prepare`]: the caller's right to the model, validation, the guards, the prompt
//!   policy and the route;
//! - [`answer`]: the attempt loop over a route's targets (retries, backoff, circuit
//!   breakers through [`health`], fallback, time limits);
//! - [`deliver`]: a complete answer stamped, settled and stored, or a stream handed over;
//! - [`embed`]: an embeddings request through the same attempt loop;
//! - [`stream`]: a streamed answer and its ledger (usage, settlement, cache write, the
//!   breaker report and the log line, exactly once however it ends).

pub mod answer;
pub mod deliver;
pub mod embed;
pub mod health;
pub mod ports;
pub mod prepare;
pub mod stream;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
