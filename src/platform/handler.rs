//! The request path, stage by stage: route, config, validate, resolve, call, answer, log.

use serde_json::json;
use web_sys::AbortSignal;
use worker::{Env, Request, Response};

use super::admin;
use super::background::Background;
use super::cache::{self, CacheStep};
use super::clock::{new_request_id, now_ms};
use super::crypto::random_u32;
use super::env::config;
use super::fetch::{read_capped, Body, BodyError, MAX_DRAINED_BYTES};
use super::jobs;
use super::keys;
use super::limiter::{self, Ask, LimiterStub, Settlement};
use super::metrics::Observer;
use super::ports::WorkerPorts;
use super::respond;
use super::stream;
use crate::api::chat::ChatRequest;
use crate::api::{usage_report, ModelList, OPENAPI};
use crate::auth::Principal;
use crate::config::{Config, ConfigErrors};
use crate::error::{ErrorKind, GatewayError};
use crate::guard::injection::{self, Action};
use crate::guard::pii::redact_request;
use crate::guard::prompt;
use crate::guard::sanitize::sanitize_request;
use crate::guard::validate::{body_too_large, check_content_type, parse_chat_request_for};
use crate::limit::headers::rate_limit_headers;
use crate::limit::limiter::Standing;
use crate::limit::TierLimits;
use crate::observe::log::{LogLevel, RequestLog};
use crate::output::redaction::refuse_unredactable;
use crate::output::AnswerMeta;
use crate::pipeline::answer::{self, Call};
use crate::pipeline::deliver::{self, Answered, Delivery};
use crate::router::{self, Matched, Route};
use crate::upstream::{resolve, Resolved, Target};
use serde::Deserialize;

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
pub(super) struct Exchange {
    /// The request's log line.
    pub log: RequestLog,
    /// Where the request's background work runs.
    pub background: Background,
    /// Writes the log line and records the metrics.
    observer: Observer,
    /// The caller's limiter and limits, once the caller is known.
    limiter: Option<(Result<LimiterStub, GatewayError>, TierLimits)>,
    /// Where the caller stands against its limits, for the `x-ratelimit-*` headers.
    standing: Option<Standing>,
}

/// Answers one request. Every failure becomes an OpenAI error object; nothing panics.
pub async fn handle(mut req: Request, env: &Env, background: Background) -> Response {
    let log = RequestLog {
        ts: now_ms(),
        request_id: new_request_id(),
        method: req.method().to_string(),
        route: "unmatched",
        ..RequestLog::default()
    };
    let config = config(env);
    let (level, shards) = match config.as_ref() {
        Ok(config) => (config.log_level, config.metrics_shards),
        Err(_) => (LogLevel::Info, 1),
    };
    let mut exchange = Exchange {
        log,
        observer: Observer::new(env, &background, level, shards),
        background,
        limiter: None,
        standing: None,
    };
    let path = req.path();
    let browser = Browser::of(&req, &config);
    let had_credentials = req.headers().has("authorization").unwrap_or(false);
    let served = serve(&mut req, env, &config, &browser, &path, &mut exchange).await;
    if served.is_err() {
        discard_unread_body(&mut req).await;
    }
    let log = &mut exchange.log;
    let (response, log_now) = match served {
        Ok(Reply::Now(response)) => (response, true),
        Ok(Reply::Streaming(response)) => (response, false),
        Err(error) => {
            log.error = Some(error.code().to_owned());
            let allow = (error.kind == ErrorKind::MethodNotAllowed)
                .then(|| router::allowed_methods(&path))
                .flatten();
            (respond::error(&error, allow.as_deref()), true)
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
    respond::set_header(&response, "x-request-id", &log.request_id);
    // Which target answered, or was tried last, and after how many upstream calls.
    if let (Some(provider), Some(model)) = (&log.provider, &log.upstream_model) {
        respond::set_header(&response, "x-gateway-provider", provider);
        respond::set_header(&response, "x-gateway-model", model);
        respond::set_header(&response, "x-gateway-attempts", &log.attempts.to_string());
    }
    if log.degraded {
        respond::set_header(&response, "x-gateway-degraded", "true");
    }
    if log.guard.is_some() {
        respond::set_header(&response, "x-guard-flags", &log.guard_categories.join(","));
    }
    if let Some(cache) = log.cache {
        respond::set_header(&response, "x-cache", &cache.to_ascii_uppercase());
    }
    if let Some(key) = &log.cache_key {
        respond::set_header(&response, "x-cache-key", key);
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
    fn of(req: &Request, config: &Result<Config, ConfigErrors>) -> Self {
        let origin = req.headers().get("origin").ok().flatten();
        let own_origin = origin_of(&req.inner().url()).to_owned();
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

/// `scheme://host[:port]` of an absolute URL as the runtime gives it (already normalized).
/// Sliced by hand: the `url` crate's origin serialization pulls in IDNA tables (~190 KB of
/// wasm) for what is one `find` here.
fn origin_of(url: &str) -> &str {
    let host_start = url.find("://").map_or(0, |at| at + 3);
    let end = url[host_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |at| host_start + at);
    &url[..end]
}

/// Reads and drops the body of a request refused before reading it (401, 403, 404, 405,
/// 415; at most [`MAX_DRAINED_BYTES`]), so that the connection it came on survives rather
/// than being reset.
async fn discard_unread_body(req: &mut Request) {
    if !req.inner().body_used() && req.inner().body().is_some() {
        let _ = read_capped(Body::Request(req), MAX_DRAINED_BYTES).await;
    }
}

async fn serve(
    req: &mut Request,
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
        Route::OpenApi => Ok(Reply::Now(respond::json(200, OPENAPI.to_owned()))),
        Route::Admin(op) => {
            let config = usable(config)?;
            keys::authenticate_admin(authorization(req).as_deref(), config)?;
            log.principal = Some("admin".to_owned());
            Ok(Reply::Now(admin::serve(op, id, req, env, config).await?))
        }
        Route::Models => {
            let config = usable(config)?;
            let caller = authenticated(req, config, env, exchange).await?;
            let list = ModelList::new(
                config
                    .usable_models()
                    .filter(|(alias, _)| caller.principal.may_use(alias)),
            );
            Ok(Reply::Now(respond::json(200, json!(list).to_string())))
        }
        Route::Usage => {
            let config = usable(config)?;
            let Caller {
                principal,
                limits,
                limiter,
            } = authenticated(req, config, env, exchange).await?;
            let status = limiter?.status(Some(&limits)).await?;
            // The report holds the rate figures the headers need: no second call.
            exchange.standing = Standing::deserialize(&status).ok();
            let report = usage_report(&principal.id, Some(&principal.tier), Some(&limits), status);
            Ok(Reply::Now(respond::json(200, report.to_string())))
        }
        Route::ChatCompletions => {
            let config = usable(config)?;
            let caller = authenticated(req, config, env, exchange).await?;
            chat_completions(req, env, config, &caller, exchange).await
        }
        Route::CreateJob => {
            let config = usable(config)?;
            let caller = authenticated(req, config, env, exchange).await?;
            let origin = &browser.own_origin;
            jobs::submit(req, env, config, &caller, origin, exchange).await
        }
        Route::WebhookSigningKey => {
            let config = usable(config)?;
            let caller = authenticated(req, config, env, exchange).await?;
            jobs::signing_key_of(config, &caller.principal).await
        }
        Route::GetJob | Route::CancelJob => {
            let config = usable(config)?;
            let caller = authenticated(req, config, env, exchange).await?;
            let id = id.unwrap_or_default();
            exchange.log.job_id = Some(id.to_owned());
            match route {
                Route::GetJob => jobs::get(env, &caller, id).await,
                _ => jobs::cancel(env, config, &caller, id, &exchange.background).await,
            }
        }
    }
}

fn authorization(req: &Request) -> Option<String> {
    req.headers().get("authorization").ok().flatten()
}

/// An authenticated `/v1` caller: who it is, its limits, and its limiter.
pub(super) struct Caller {
    pub principal: Principal,
    limits: TierLimits,
    limiter: Result<LimiterStub, GatewayError>,
}

/// Authenticates a `/v1` request, notes the principal in the log and finds its limits and
/// limiter (also kept in `exchange`, for the headers of whatever the response turns out
/// to be).
async fn authenticated(
    req: &Request,
    config: &Config,
    env: &Env,
    exchange: &mut Exchange,
) -> Result<Caller, GatewayError> {
    let address = client_ip(req);
    let principal = keys::authenticate(
        authorization(req).as_deref(),
        address.as_deref(),
        config,
        env,
    )
    .await?;
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
fn client_ip(req: &Request) -> Option<String> {
    req.headers().get("cf-connecting-ip").ok().flatten()
}

/// A CORS preflight (`OPTIONS`) for a known path: 204 with the CORS headers, or 403.
fn preflight(
    req: &Request,
    config: &Config,
    browser: &Browser,
    path: &str,
    log: &mut RequestLog,
) -> Result<Reply, GatewayError> {
    log.route = "preflight";
    let methods = router::allowed_methods(path).ok_or_else(|| router::not_found(path))?;
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let headers = config.cors.preflight(
        browser.origin.as_deref(),
        &browser.own_origin,
        header("access-control-request-method").as_deref(),
        header("access-control-request-headers").as_deref(),
        &methods,
    )?;
    let response = respond::empty(204);
    for (name, value) in headers {
        respond::set_header(&response, name, &value);
    }
    Ok(Reply::Now(response))
}

fn usable(config: &Result<Config, ConfigErrors>) -> Result<&Config, GatewayError> {
    config.as_ref().map_err(|_| {
        GatewayError::new(
            ErrorKind::ConfigInvalid,
            "the gateway is misconfigured; GET /readyz lists the problems",
        )
    })
}

/// Runs the prompt-injection guard under the caller's tier policy: notes a finding in the
/// log; refuses the request (400 `prompt_injection_detected`) when the policy blocks, or
/// returns whether it was flagged.
fn guard_injection(
    config: &Config,
    principal: &Principal,
    request: &ChatRequest,
    log: &mut RequestLog,
) -> Result<bool, GatewayError> {
    let Some(verdict) = injection::check(&config.injection, &principal.tier, request) else {
        return Ok(false);
    };
    log.guard_score = Some(verdict.finding.score);
    log.guard_categories = verdict
        .finding
        .categories
        .iter()
        .map(|c| c.name())
        .collect();
    if verdict.action == Action::Flag {
        log.guard = Some("flagged");
        return Ok(true);
    }
    log.guard = Some("blocked");
    Err(GatewayError::new(
        ErrorKind::PromptInjectionDetected,
        format!(
            "the message looks like a prompt injection ({}); it was not sent to the model",
            log.guard_categories.join(", ")
        ),
    )
    .with_param(format!("messages[{}].content", verdict.message)))
}

/// Reads a JSON request body (`Content-Type: application/json`, at most
/// `MAX_BODY_BYTES`).
pub(super) async fn read_json_body(
    req: &mut Request,
    config: &Config,
) -> Result<Vec<u8>, GatewayError> {
    let content_type = req.headers().get("content-type").ok().flatten();
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

/// A request made ready for its targets: validated, guarded, sanitized, with the
/// operator's system prompt; its targets resolved and the caller's right to the model
/// checked. `flagged`: the injection guard flagged it (and let it through).
pub(super) struct Prepared<'a> {
    /// The request as it goes upstream.
    pub request: ChatRequest,
    /// Its targets.
    pub resolved: Resolved<'a>,
    /// The injection guard flagged it.
    pub flagged: bool,
}

/// Prepares the chat request in `body` for `caller` (see [`Prepared`]).
pub(super) fn prepare<'a>(
    body: &[u8],
    config: &'a Config,
    caller: &Caller,
    log: &mut RequestLog,
) -> Result<Prepared<'a>, GatewayError> {
    // The caller's right to the model comes first: a refused caller costs nothing more.
    let allowed = |model: &str| caller.principal.check_model(model);
    let mut request = parse_chat_request_for(body, &config.limits, allowed)?;
    if config.redact_pii.output {
        refuse_unredactable(&request)?;
    }
    // On the text as sent: sanitizing would erase the template tokens it looks for.
    let flagged = guard_injection(config, &caller.principal, &request, log)?;
    if config.sanitize_input {
        let removed = sanitize_request(&mut request);
        log.removed_characters = removed.characters;
        log.removed_template_tokens = removed.template_tokens;
    }
    if config.redact_pii.input {
        log.redacted_input = redact_request(&mut request);
    }
    prompt::apply(&config.prompt, &mut request)?;
    log.stream = request.stream;
    let resolved = resolve(config, &request, random_u32())?;
    // Named only once it is known to be a configured alias: a client's names never
    // become log or metric labels.
    log.model = Some(request.model.clone());
    log.auto_reason = resolved.auto_reason;
    Ok(Prepared {
        request,
        resolved,
        flagged,
    })
}

async fn chat_completions(
    req: &mut Request,
    env: &Env,
    config: &Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let client = req.inner().signal();
    let body = read_json_body(req, config).await?;
    let Prepared {
        request,
        resolved,
        flagged,
    } = prepare(&body, config, caller, &mut exchange.log)?;
    let log = &mut exchange.log;
    let first = &resolved.targets[0];
    let mut meta = AnswerMeta {
        id: format!("chatcmpl-{}", log.request_id),
        created: log.ts / 1000,
        model: first.model.to_owned(),
        include_usage: request.include_usage,
        estimated_prompt_tokens: request.estimated_prompt_tokens(),
        redact_pii: config.redact_pii.output,
    };
    // The route's targets, in configured rather than tried order, name the answer.
    let mut route: Vec<String> = resolved.targets.iter().map(Target::key).collect();
    route.sort();
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let headers = (header("cache-control"), header("x-gateway-cache"));
    // A flagged request's answer is neither served from nor kept in the cache.
    let step = match flagged {
        true => CacheStep::Bypass("guard_flagged"),
        false => {
            cache::prepare(
                env,
                &exchange.background,
                &config.cache,
                &request,
                &route,
                &caller.principal,
                headers,
            )
            .await?
        }
    };
    let (writer, hit) = match step {
        CacheStep::Bypass(reason) => {
            exchange.log.cache = Some("bypass");
            exchange.log.cache_bypass = Some(reason);
            (None, None)
        }
        CacheStep::Use {
            writer,
            read,
            max_age_s,
        } => {
            let hit = match read {
                true => writer.lookup(max_age_s).await,
                false => None,
            };
            exchange.log.cache = Some(if hit.is_some() { "hit" } else { "miss" });
            exchange.log.cache_key = Some(writer.hash.clone());
            (Some(writer), hit)
        }
    };
    // Admission is priced at the first target; the settlement at the one that answers. A
    // hit is one request and nothing else.
    let ask = match hit {
        Some(_) => None,
        None => Some((meta.estimated_prompt_tokens, first.model)),
    };
    let settlement = admit(&request, ask, config, caller, exchange).await?;
    let ports = WorkerPorts {
        observer: exchange.observer.clone(),
        client: client.clone(),
    };
    if let Some(entry) = hit {
        meta.model.clone_from(&entry.completion.model);
        let age = entry.age_s(now_ms());
        let delivery = Delivery::new(&ports, &meta, &request);
        let reply = answered(deliver::replay(entry, delivery, &mut exchange.log), client);
        respond::set_header(reply.response(), "age", &age.to_string());
        return Ok(reply);
    }
    let call = Call {
        ports: &ports,
        config,
        request: &request,
        targets: resolved.targets,
        meta,
        settlement,
        cache: writer,
    };
    let answer = answer::answer(call, &mut exchange.log).await?;
    Ok(answered(answer, client))
}

/// The response for what the pipeline answered.
fn answered(answer: Answered<WorkerPorts>, client: AbortSignal) -> Reply {
    match answer {
        Answered::Json(body) => Reply::Now(respond::json(200, body)),
        Answered::Stream(stream) => Reply::Streaming(stream::response(stream, client)),
    }
}

/// Asks the caller's limiter to admit the request: its request unit, a concurrency slot
/// and, for an upstream call (`upstream`: the estimated prompt tokens and the first
/// target's model), a reservation of its estimated prompt plus the most it may write and
/// its cost estimate.
pub(super) async fn admit(
    request: &ChatRequest,
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
            max_output_tokens: config.rate_limits.max_output(request.max_tokens, request.n),
        },
        None => Ask {
            request_id,
            price: None,
            prompt_tokens: 0,
            max_output_tokens: 0,
        },
    };
    let admission = limiter::admit(
        caller.limiter.clone(),
        caller.limits.clone(),
        config,
        ask,
        &exchange.background,
    )
    .await;
    exchange.log.rate_limiter_failed_open = admission.failed_open;
    exchange.log.rate_limited_by = admission.refused_by;
    exchange.standing = admission.standing;
    admission.verdict
}
