//! One request's exchange with the gateway, shared by the routes: what is learned about
//! it on its way (its log line, its caller's limiter and standing), the caller's
//! authentication, its body, and its admission to the rate limits.

use std::rc::Rc;

use worker::{Env, Response};

use super::background::Background;
use super::clock::now_ms;
use super::fetch::{read_capped, Body, BodyError};
use super::incoming::Incoming;
use super::keys;
use super::limiter::{self, LimiterStub, Settlement};
use super::metrics::Observer;
use super::ports::WorkerPorts;
use crate::auth::Principal;
use crate::config::{Config, ConfigErrors};
use crate::error::{ErrorKind, GatewayError};
use crate::guard::validate::{body_too_large, check_content_type};
use crate::limit::admission::Ask;
use crate::limit::limiter::Standing;
use crate::limit::TierLimits;
use crate::observe::log::RequestLog;
use crate::observe::trace::TraceContext;

/// What a route produced.
pub enum Reply {
    /// A complete response; the handler writes the log line.
    Now(Response),
    /// A streamed response that writes its own log line when it ends.
    Streaming(Response),
}

impl Reply {
    /// The response, to add headers to.
    pub fn response(&self) -> &Response {
        match self {
            Reply::Now(response) | Reply::Streaming(response) => response,
        }
    }
}
/// What the handler learns about a request on its way through.
pub struct Exchange {
    /// The request's log line.
    pub log: RequestLog,
    /// Where the request's background work runs.
    pub background: Background,
    /// Writes the log line and records the metrics.
    pub observer: Observer,
    /// The caller's limiter and limits, once the caller is known.
    pub limiter: Option<(Result<LimiterStub, GatewayError>, TierLimits)>,
    /// Where the caller stands against its limits, for the `x-ratelimit-*` headers.
    pub standing: Option<Standing>,
    /// The request's trace (the client's, continued, or a fresh one).
    pub trace: Rc<TraceContext>,
}

impl Exchange {
    /// The platform ports of the request's pipeline.
    pub fn ports(&self, req: &Incoming) -> WorkerPorts {
        WorkerPorts {
            observer: self.observer.clone(),
            client: req.inner().signal(),
            trace: Some(Rc::clone(&self.trace)),
        }
    }
}
/// The `Authorization` header.
pub fn authorization(req: &Incoming) -> Option<String> {
    req.header("authorization")
}

/// A `/v1` caller's credential: the `Authorization` header, or an `x-api-key` (as the
/// Anthropic SDKs send the key) taken as a bearer credential.
pub fn credential(req: &Incoming) -> Option<String> {
    authorization(req).or_else(|| {
        let key = req.header("x-api-key")?;
        Some(format!("Bearer {key}"))
    })
}

/// An authenticated `/v1` caller: who it is, its limits, and its limiter.
pub struct Caller {
    /// Who it is.
    pub principal: Principal,
    /// Its limits.
    pub limits: TierLimits,
    /// Its limiter.
    pub limiter: Result<LimiterStub, GatewayError>,
}

/// Authenticates a `/v1` request, notes the principal in the log and finds its limits and
/// limiter (also kept in `exchange`, for the headers of whatever the response turns out
/// to be).
pub async fn authenticated(
    req: &Incoming,
    config: &Config,
    env: &Env,
    exchange: &mut Exchange,
) -> Result<Caller, GatewayError> {
    let address = client_ip(req);
    let started = now_ms();
    let principal =
        keys::authenticate(credential(req).as_deref(), address.as_deref(), config, env).await;
    exchange.log.stage("auth", started, now_ms());
    let principal = principal?;
    exchange.log.principal = Some(principal.id.clone());
    exchange.log.team.clone_from(&principal.team);
    exchange.log.key_id.clone_from(&principal.key_id);
    let limits = config
        .rate_limits
        .limits_for(&principal.tier, principal.limits.as_ref());
    let limiter = LimiterStub::open(env, &principal.id);
    exchange.limiter = Some((limiter.clone(), limits.clone()));
    Ok(Caller {
        principal,
        limits,
        limiter,
    })
}

/// The client's address as Cloudflare saw it.
fn client_ip(req: &Incoming) -> Option<String> {
    req.header("cf-connecting-ip")
}
/// The configuration, or 503 `config_invalid` while it is unusable.
pub fn usable(config: &Result<Config, ConfigErrors>) -> Result<&Config, GatewayError> {
    config.as_ref().map_err(|_| {
        GatewayError::new(
            ErrorKind::ConfigInvalid,
            "the gateway is misconfigured; GET /readyz lists the problems",
        )
    })
}

/// Reads a JSON request body (`Content-Type: application/json`, at most
/// `MAX_BODY_BYTES`).
pub async fn read_json_body(req: &Incoming, config: &Config) -> Result<Vec<u8>, GatewayError> {
    let content_type = req.header("content-type");
    check_content_type(content_type.as_deref())?;
    let cap = config.limits.max_body_bytes;
    read_capped(Body::Request(req), cap)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge => body_too_large(cap),
            BodyError::Failed => {
                GatewayError::new(ErrorKind::InvalidJson, "the request body could not be read")
            }
        })
}
/// Asks the caller's limiter to admit the request: its request unit, a concurrency slot
/// and, for an upstream call (`upstream`: the estimated prompt tokens and the first
/// target's model), a reservation of its estimated prompt plus `max_output_tokens` (the
/// most it may write) and its cost estimate.
pub async fn admit(
    max_output_tokens: u64,
    upstream: Option<(u64, &str)>,
    config: &Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Option<Settlement>, GatewayError> {
    let request_id = &exchange.log.request_id;
    let ask = match upstream {
        Some((prompt_tokens, upstream_model)) => Ask {
            request_id,
            price: config.prices.get(upstream_model).copied(),
            prompt_tokens,
            max_output_tokens,
        },
        None => Ask {
            request_id,
            price: None,
            prompt_tokens: 0,
            max_output_tokens: 0,
        },
    };
    let started = now_ms();
    let admission = limiter::admit(
        caller.limiter.clone(),
        caller.limits.clone(),
        config,
        ask,
        &exchange.background,
    )
    .await;
    exchange.log.stage("limiter", started, now_ms());
    exchange.log.rate_limiter_failed_open = admission.failed_open;
    exchange.log.rate_limited_by = admission.refused_by;
    exchange.standing = admission.standing;
    admission.verdict
}
