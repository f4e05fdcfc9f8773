//! The shell: the only code that touches the Workers runtime (`worker`, `js_sys`,
//! `web_sys`): adapters and the Durable Object classes.
//!
//! [`handler`] is HTTP in and out (routing, CORS, headers); [`exchange`] holds what a
//! request's routes share (its log line, the authenticated caller, its body, admission);
//! [`completions`] is the chat completion route, [`embeddings`] the embeddings route; [`ports`] implements the pipeline's ports
//! on the runtime and [`stream`] turns a streamed answer into the response body. Each
//! other file wraps one platform concept: [`env`] reads vars and secrets into the cached
//! [`crate::config::Config`], [`clock`] gives time and ids, [`crypto`] WebCrypto and
//! randomness, [`keys`] the API-key store in KV and authentication, [`kv`] a KV namespace called on its binding, [`jwt`] JWT
//! verification, [`limiter_object`] the rate-limit Durable Object and [`limiter`] its
//! client, [`background`] work after the response, [`admin`] the admin API, [`cache`] the
//! response cache (isolate + KV), [`metrics`] the log line and the metrics Durable Object,
//! [`objects`] what the Durable Objects share, [`fetch`] upstream calls and bodies,
//! [`jobs`] the jobs API, [`job_store`] the jobs' Durable Object, [`queue`] the queue
//! consumer (job attempts and webhooks), [`responses`] the Responses API's stored
//! responses and [`response_store`] their Durable Object, [`respond`] HTTP responses. Everything they call
//! is plain Rust.

mod admin;
mod background;
mod cache;
mod clock;
mod completions;
mod crypto;
mod embeddings;
mod env;
mod exchange;
mod feedback;
mod fetch;
mod handler;
mod incoming;
mod job_store;
mod jobs;
mod jwt;
mod keys;
mod kv;
mod limiter;
mod limiter_object;
mod metrics;
mod objects;
mod otlp;
mod ports;
mod queue;
mod respond;
mod response_store;
mod responses;
mod stream;

use worker::{event, Context, Env, MessageBatch, Response, Result};

/// The Worker's fetch entry point. Never fails: every error becomes an OpenAI-style
/// response inside [`handler::handle`]. It takes the runtime's request as it is (see
/// [`incoming`] for why not workers-rs's `Request`).
#[event(fetch)]
pub async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<Response> {
    let req = incoming::Incoming::new(req);
    Ok(handler::handle(req, &env, background::Background::of(&ctx)).await)
}

/// The Worker's queue entry point: job attempts, webhook deliveries and dead letters.
/// Never fails: each message is acknowledged or retried on its own in [`queue::consume`].
#[event(queue)]
pub async fn queue(batch: MessageBatch<String>, env: Env, ctx: Context) -> Result<()> {
    queue::consume(batch, &env, background::Background::of(&ctx)).await;
    Ok(())
}
