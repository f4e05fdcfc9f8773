//! An OpenAI-compatible LLM gateway that runs as a Cloudflare Worker.
//!
//! The modules follow the request path: [`router`] → [`auth`] → [`guard`] → [`limit`] →
//! [`cache`] → [`upstream`] (through [`resilience`]) → [`output`], with [`config`],
//! [`error`] and [`observe`] beside them; every provider codec in [`upstream`] translates
//! from one [`conversation`]; [`pipeline`] runs those stages in order over small
//! ports, for the fetch handler and for [`jobs`] (the same path later, from a queue). All of
//! it is plain Rust, tested on the host; `platform` (compiled for wasm only) holds the
//! adapters that touch the Workers runtime and the Durable Object classes.

pub mod api;
pub mod auth;
pub mod cache;
pub mod config;
pub mod conversation;
pub mod error;
pub mod guard;
pub mod jobs;
pub mod limit;
pub mod observe;
pub mod output;
pub mod pipeline;
pub mod resilience;
pub mod router;
pub mod sorted_map;
pub mod upstream;
pub mod wire_name;

#[cfg(target_arch = "wasm32")]
mod platform;
