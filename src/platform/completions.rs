//! `POST /v1/chat/completions`, `POST /v1/messages` and `POST /v1/responses`: the request
//! (a Messages or Responses request translated first) prepared, looked up in the response
//! cache, admitted to its caller's limits and answered by the pipeline, as JSON or a
//! stream in the client's format; and `POST /v1/messages/count_tokens`.

use std::rc::Rc;

use serde_json::{json, Map};
use web_sys::AbortSignal;
use worker::Env;

use super::background::Background;
use super::cache::{self, CacheStep};
use super::clock::now_ms;
use super::crypto::random_u32;
use super::exchange::{admit, read_json_body, Caller, Exchange, Reply};
use super::incoming::Incoming;
use super::ports::WorkerPorts;
use super::respond;
use super::responses;
use super::stream;
use crate::api::messages;
use crate::api::Surface;
use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::log::CacheResult;
use crate::output::AnswerMeta;
use crate::pipeline::answer::{self, Call};
use crate::pipeline::deliver::{self, Answered, Delivery};
use crate::pipeline::prepare::{prepare, Prepared};
use crate::upstream;

/// Answers one chat completion request of `caller`, read and answered in `surface`'s
/// wire format.
pub async fn chat_completions(
    req: &Incoming,
    env: &Env,
    config: &Config,
    caller: &Caller,
    surface: Surface,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let client = req.inner().signal();
    let body = read_json_body(req, config).await?;
    let (body, echo, keep) = match surface {
        Surface::ChatCompletions => (body, Map::new(), None),
        Surface::Messages => (messages::chat_request(&body, false)?, Map::new(), None),
        Surface::Responses => {
            let background = &exchange.background;
            let (translated, keep) =
                responses::read(&body, env, config, caller, background).await?;
            (translated.chat, translated.echo, keep)
        }
    };
    let started = now_ms();
    let prepared = prepared(&body, config, caller, exchange);
    exchange.log.stage("guard", started, now_ms());
    let Prepared {
        request,
        resolved,
        flagged,
    } = prepared?;
    exchange.observer.opened(&mut exchange.log);
    let log = &mut exchange.log;
    let first = &resolved.targets[0];
    let mut meta = AnswerMeta {
        id: surface.answer_id(&log.request_id),
        created: log.ts / 1000,
        model: first.model.to_owned(),
        include_usage: request.include_usage,
        estimated_prompt_tokens: request.estimated_prompt_tokens(),
        redact_pii: config.redact_pii.output,
        surface,
        echo: Rc::new(echo),
    };
    let route = upstream::route_keys(&resolved.targets);
    let headers = (req.header("cache-control"), req.header("x-gateway-cache"));
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
            exchange.log.cache = Some(CacheResult::Bypass);
            exchange.log.cache_bypass = Some(reason);
            (None, None)
        }
        CacheStep::Use {
            writer,
            read,
            max_age_s,
        } => {
            let started = now_ms();
            let hit = match read {
                true => writer.lookup(max_age_s).await,
                false => None,
            };
            exchange.log.stage("cache", started, now_ms());
            exchange.log.cache = Some(match hit {
                Some(_) => CacheResult::Hit,
                None => CacheResult::Miss,
            });
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
    let settlement = admit(
        config.rate_limits.max_output(request.max_tokens, request.n),
        ask,
        config,
        caller,
        exchange,
    )
    .await?;
    let ports = exchange.ports(req);
    if let Some(entry) = hit {
        meta.model.clone_from(&entry.completion.model);
        let age = entry.age_s(now_ms());
        let delivery = Delivery::new(&ports, &meta, &request).keeping(keep);
        let replay = deliver::replay(entry, delivery, &mut exchange.log);
        let reply = answered(replay, client, &exchange.background);
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
        keep,
    };
    let answer = answer::answer(call, &mut exchange.log).await?;
    Ok(answered(answer, client, &exchange.background))
}

/// Counts a Messages request's prompt tokens, `{"input_tokens": n}`, after the same checks
/// as the request itself (the caller may use the model, the request is valid and passes
/// the guards): as the route's first target counts them where its provider can
/// (`x-gateway-token-count: exact`), else the gateway's estimate (`estimate`).
pub async fn count_tokens(
    req: &Incoming,
    config: &Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Reply, GatewayError> {
    let body = messages::chat_request(&read_json_body(req, config).await?, true)?;
    let prepared = prepared(&body, config, caller, exchange)?;
    let ports = exchange.ports(req);
    let target = &prepared.resolved.targets[0];
    let policy = &config.resilience;
    let count = answer::count_prompt_tokens(&ports, &prepared.request, target, policy).await;
    let body = json!({"input_tokens": count.tokens}).to_string();
    let response = respond::json(200, body);
    let how = if count.exact { "exact" } else { "estimate" };
    respond::set_header(&response, "x-gateway-token-count", how);
    Ok(Reply::Now(response))
}

/// `body`, a chat completion request, prepared for `caller`.
fn prepared<'c>(
    body: &[u8],
    config: &'c Config,
    caller: &Caller,
    exchange: &mut Exchange,
) -> Result<Prepared<'c>, GatewayError> {
    prepare(
        body,
        config,
        &caller.principal,
        &mut exchange.log,
        random_u32(),
    )
}

/// The response for what the pipeline answered.
fn answered(answer: Answered<WorkerPorts>, client: AbortSignal, background: &Background) -> Reply {
    match answer {
        Answered::Json(body) => Reply::Now(respond::json(200, body)),
        Answered::Stream(stream) => Reply::Streaming(stream::response(stream, client, background)),
    }
}
