//! The request path, stage by stage: route, config, validate, resolve, call, answer, log.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use serde_json::json;
use worker::{Env, Response};

use super::admin;
use super::background::Background;
use super::clock::{new_request_id, now_ms};
use super::completions::{chat_completions, count_tokens};
use super::crypto::random_u32;
use super::embeddings;
use super::env::config;
use super::exchange::{authenticated, authorization, credential, usable, Caller, Exchange, Reply};
use super::feedback;
use super::fetch::{read_capped, Body, MAX_DRAINED_BYTES};
use super::incoming::Incoming;
use super::jobs;
use super::keys;
use super::metrics::Observer;
use super::respond;
use super::responses;
use crate::api::{usage_report, ModelList};
use crate::config::{Config, ConfigErrors};
use crate::error::ErrorKind;
use crate::error::GatewayError;
use crate::limit::headers::rate_limit_headers;
use crate::limit::limiter::Standing;
use crate::observe::log::{LogLevel, RequestLog};
use crate::observe::trace::TraceContext;
use crate::router::{self, Matched, Route};
use serde::Deserialize;

/// Answers one request. Every failure becomes an OpenAI error object; nothing panics.
pub async fn handle(req: Incoming, env: &Env, background: Background) -> Response {
    let log = RequestLog {
        ts: now_ms(),
        request_id: new_request_id(),
        method: req.method(),
        route: "unmatched",
        ..RequestLog::default()
    };
    let config = config(env);
    let observer = match config.as_ref() {
        Ok(config) => Observer::new(env, &background, config.log_level, config.metrics_shards)
            .remembering(config.feedback_ttl_s)
            .exporting(config.otlp.as_ref()),
        Err(_) => Observer::new(env, &background, LogLevel::Info, 1),
    };
    let trace = TraceContext::continue_or_start(
        req.header("traceparent").as_deref(),
        req.header("tracestate").as_deref(),
        random_u32,
    );
    let trace = Rc::new(trace);
    let log = RequestLog {
        trace_id: Some(trace.trace_id.clone()),
        trace: Some(Rc::clone(&trace)),
        ..log
    };
    let mut exchange = Exchange {
        log,
        observer,
        background,
        limiter: None,
        standing: None,
        trace,
    };
    let path = req.path();
    let browser = Browser::of(&req, &config);
    let had_credentials = credential(&req).is_some();
    let served = serve(&req, env, &config, &browser, path, &mut exchange).await;
    if served.is_err() {
        discard_unread_body(&req).await;
    }
    let log = &mut exchange.log;
    let (response, log_now) = match served {
        Ok(Reply::Now(response)) => (response, true),
        Ok(Reply::Streaming(response)) => (response, false),
        Err(error) => {
            log.error = Some(error.code().to_owned());
            let allow = (error.kind == ErrorKind::MethodNotAllowed)
                .then(|| router::allowed_methods(path))
                .flatten();
            let surface = router::surface(path);
            (respond::error(&error, surface, allow.as_deref()), true)
        }
    };
    // Every response to a limited caller says where it stands, errors included.
    if let (None, Some((Ok(stub), limits))) = (&exchange.standing, &exchange.limiter) {
        if !limits.is_unlimited() {
            exchange.standing = stub.standing(limits).await.ok();
        }
    }
    for (name, value) in exchange.standing.iter().flat_map(rate_limit_headers) {
        respond::set_header(&response, name, &value);
    }
    let log = &mut exchange.log;
    for (name, value) in log.response_headers() {
        respond::set_header(&response, name, &value);
    }
    respond::set_header(&response, "traceparent", &exchange.trace.traceparent());
    if let Some(state) = &exchange.trace.tracestate {
        respond::set_header(&response, "tracestate", state);
    }
    if response.status_code() == 401 {
        // RFC 6750: no error code when the request carried no credentials at all.
        let challenge = if had_credentials {
            "Bearer realm=\"gateway\", error=\"invalid_token\""
        } else {
            "Bearer realm=\"gateway\""
        };
        respond::set_header(&response, "www-authenticate", challenge);
    }
    // A preflight's answer carries its own CORS headers (or, refused, none).
    let preflight = log.method == "OPTIONS";
    if let (false, true, Ok(config)) = (preflight, browser.allowed.is_ok(), config.as_ref()) {
        // Errors to an allowed origin carry the headers too, so scripts can read them.
        for (name, value) in config.cors.response_headers(browser.origin.as_deref()) {
            respond::set_header(&response, name, &value);
        }
    }
    if log_now {
        log.status = response.status_code();
        log.latency_ms = now_ms().saturating_sub(log.ts);
        exchange.observer.emit(log);
    }
    response
}

/// What CORS needs to know about a request, with the origin checked once.
struct Browser {
    /// The `Origin` header, sent by browsers.
    origin: Option<String>,
    /// The gateway's own origin, from the request URL.
    own_origin: String,
    /// The allow-list's verdict on `origin` (allowed when the config is unusable: every
    /// request then fails with 503 anyway).
    allowed: Result<(), GatewayError>,
}

impl Browser {
    fn of(req: &Incoming, config: &Result<Config, ConfigErrors>) -> Self {
        let origin = req.header("origin");
        let own_origin = req.origin().to_owned();
        let allowed = match config {
            Ok(config) => config.cors.check(origin.as_deref(), &own_origin),
            Err(_) => Ok(()),
        };
        Browser {
            origin,
            own_origin,
            allowed,
        }
    }
}

/// Reads and drops the body of a request refused before reading it (401, 403, 404, 405,
/// 415; at most [`MAX_DRAINED_BYTES`]), so that the connection it came on survives rather
/// than being reset.
async fn discard_unread_body(req: &Incoming) {
    if !req.inner().body_used() && req.inner().body().is_some() {
        let _ = read_capped(Body::Request(req), MAX_DRAINED_BYTES).await;
    }
}

async fn serve(
    req: &Incoming,
    env: &Env,
    config: &Result<Config, ConfigErrors>,
    browser: &Browser,
    path: &str,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let log = &mut exchange.log;
    if log.method == "OPTIONS" {
        return preflight(req, usable(config)?, browser, path, log);
    }
    let Matched { route, id } = router::route(&log.method, path)?;
    log.route = route.name();
    browser.allowed.clone()?;
    match route {
        Route::Health => Ok(Reply::Now(respond::json(
            200,
            json!({"status": "ok"}).to_string(),
        ))),
        Route::Ready => Ok(Reply::Now(match config {
            Ok(config) => respond::json(
                200,
                json!({"status": "ready", "warnings": config.warnings}).to_string(),
            ),
            Err(errors) => respond::json(
                503,
                json!({"status": "not_ready", "errors": errors.0}).to_string(),
            ),
        })),
        Route::Admin(op) => {
            let config = usable(config)?;
            keys::authenticate_admin(authorization(req).as_deref(), config)?;
            log.principal = Some("admin".to_owned());
            Ok(Reply::Now(
                apart(admin::serve(op, id, req, env, config)).await?,
            ))
        }
        _ => {
            // Every other route is a caller's: the configuration, then who it is.
            let config = usable(config)?;
            let caller = authenticated(req, config, env, exchange).await?;
            let origin = &browser.own_origin;
            let matched = Matched { route, id };
            serve_caller(matched, req, env, config, &caller, origin, exchange).await
        }
    }
}

/// A `/v1` route of an authenticated `caller` (`origin`: the gateway's own, for the
/// jobs' status URLs).
async fn serve_caller(
    Matched { route, id }: Matched<'_>,
    req: &Incoming,
    env: &Env,
    config: &Config,
    caller: &Caller,
    origin: &str,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let id = id.unwrap_or_default();
    match route {
        Route::Models => {
            let list = ModelList::new(
                config
                    .usable_models()
                    .filter(|(alias, _)| caller.principal.may_use(alias))
                    .map(|(alias, owner)| (alias, owner, config.surfaces(alias))),
            );
            Ok(Reply::Now(respond::json(200, json!(list).to_string())))
        }
        Route::Usage => {
            let Caller {
                principal,
                limits,
                limiter,
            } = caller;
            let status = limiter.clone()?.status(Some(limits)).await?;
            // The report holds the rate figures the headers need: no second call.
            exchange.standing = Standing::deserialize(&status).ok();
            let mut report =
                usage_report(&principal.id, Some(&principal.tier), Some(limits), status);
            feedback::add_satisfaction(&mut report, env, &principal.id).await;
            Ok(Reply::Now(respond::json(200, report.to_string())))
        }
        Route::ChatCompletions | Route::Messages | Route::Responses => {
            let surface = router::surface(req.path());
            apart(chat_completions(
                req, env, config, caller, surface, exchange,
            ))
            .await
        }
        Route::Feedback => apart(feedback::submit(req, env, config, caller, exchange)).await,
        Route::Embeddings => {
            apart(embeddings::embeddings(req, env, config, caller, exchange)).await
        }
        Route::CountTokens => apart(count_tokens(req, config, caller, exchange)).await,
        Route::GetResponse => apart(responses::get(env, caller, id)).await,
        Route::DeleteResponse => apart(responses::delete(env, caller, id)).await,
        Route::CreateJob => apart(jobs::submit(req, env, config, caller, origin, exchange)).await,
        Route::WebhookSigningKey => apart(jobs::signing_key_of(config, &caller.principal)).await,
        Route::GetJob | Route::CancelJob => {
            exchange.log.job_id = Some(id.to_owned());
            match route {
                Route::GetJob => apart(jobs::get(env, caller, id)).await,
                _ => apart(jobs::cancel(env, config, caller, id, &exchange.background)).await,
            }
        }
        // The routes that need no caller are answered before.
        Route::Health | Route::Ready | Route::Admin(_) => Err(router::not_found(req.path())),
    }
}

/// `route`'s future behind a `dyn` pointer, so that it is a function of its own rather
/// than inlined into the handler's. The runtime compiles wasm functions on their first
/// call: a fresh isolate's first request then compiles the routes it runs, not every
/// route's code in one function (a fresh isolate's first request: 58–69 ms before, 44–50
/// after, `BENCH_ONLY=start make bench`).
fn apart<'a, T>(route: impl Future<Output = T> + 'a) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(route)
}

/// A CORS preflight (`OPTIONS`) for a known path: 204 with the CORS headers, or 403.
fn preflight(
    req: &Incoming,
    config: &Config,
    browser: &Browser,
    path: &str,
    log: &mut RequestLog,
) -> Result<Reply, GatewayError> {
    log.route = "preflight";
    let methods = router::allowed_methods(path).ok_or_else(|| router::not_found(path))?;
    let headers = config.cors.preflight(
        browser.origin.as_deref(),
        &browser.own_origin,
        req.header("access-control-request-method").as_deref(),
        req.header("access-control-request-headers").as_deref(),
        &methods,
    )?;
    let response = respond::empty(204);
    for (name, value) in headers {
        respond::set_header(&response, name, &value);
    }
    Ok(Reply::Now(response))
}
