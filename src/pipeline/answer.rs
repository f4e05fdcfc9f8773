//! Calls a request's targets in turn until one answers: retries with backoff, circuit
//! breakers, fallback along the chain and time limits, decided by
//! [`crate::resilience`]; then hands the answer to [`super::deliver`].
//!
//! A retry or fallback is possible only until the client has been sent a byte. A streamed
//! answer is therefore read until it yields its first client bytes before it is
//! committed to: an upstream that fails before that (an error event, a malformed first
//! event, a stall, a reset) is retried like one that failed outright.

use std::future::Future;

use super::deliver::{self, Answer, Answered, Delivery, Keep};
use super::health::TargetHealth;
use super::ports::{within, Ports, Settle, UpstreamBody, UpstreamResponse};
use super::stream::{CommittedStream, Piece, StreamTiming, TimedBody};
use crate::api::chat::{ChatCompletion, ChatRequest, Usage};
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::observe::log::{AttemptLog, RequestLog};
use crate::output::{AnswerMeta, ChunkEncoder, StreamOutcome, StreamTranslator};
use crate::resilience::plan::{AttemptPlan, Next};
use crate::resilience::retry::{retry_after_ms, Failure};
use crate::resilience::ResiliencePolicy;
use crate::upstream::mock::{self, MockReply};
use crate::upstream::{self, out_of_time, Backend, HttpCall, HttpProvider, Target};

/// Most bytes read from an upstream error body: enough for any error object.
const MAX_UPSTREAM_ERROR_BYTES: usize = 64 * 1024;
/// Most bytes read from a complete (non-streaming) upstream answer.
const MAX_UPSTREAM_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// One request's way to an answer.
pub struct Call<'a, P: Ports> {
    /// The platform.
    pub ports: &'a P,
    /// The configuration (resilience policy, prices, mock settings).
    pub config: &'a Config,
    /// The validated request.
    pub request: &'a ChatRequest,
    /// The targets, in the order they are tried.
    pub targets: Vec<Target<'a>>,
    /// What every chunk of the answer shares; `model` is set per target.
    pub meta: AnswerMeta,
    /// What the request owes its rate limits when it ends.
    pub settlement: Option<P::Settlement>,
    /// Stores the answer in the response cache, when the request may be cached.
    pub cache: Option<P::CacheWriter>,
    /// Keeps the complete answer (a stored response).
    pub keep: Option<Keep>,
}

/// Why an attempt failed, and what that means for the next one.
pub(super) struct AttemptError {
    error: GatewayError,
    failure: Failure,
    /// How the attempt ended, for the log: the upstream's status or the error code.
    outcome: String,
}

impl AttemptError {
    pub(super) fn new(error: GatewayError, failure: Failure) -> Self {
        let outcome = error.code().to_owned();
        AttemptError {
            error,
            failure,
            outcome,
        }
    }
}

/// Tries the call's targets until one answers, within the request's total time; then
/// answers, or fails with the last error (a one-target route), 503
/// `all_providers_failed`, or the configured degradation message.
pub async fn answer<P: Ports>(
    call: Call<'_, P>,
    log: &mut RequestLog,
) -> Result<Answered<P>, GatewayError> {
    try_targets(call, log, deliver::deliver).await
}

/// Like [`answer`], for a request that is not streamed (a queued job): the completion and
/// its usage. Settles and stores what the call carries, like [`answer`].
pub async fn complete<P: Ports>(
    call: Call<'_, P>,
    log: &mut RequestLog,
) -> Result<(ChatCompletion, Usage), GatewayError> {
    let whole = |answer: Answer<P>, delivery: Delivery<'_, P>, log: &mut RequestLog| match answer
        .into_whole()
    {
        Ok(completion) => Ok(deliver::settle_whole(completion, delivery, log)),
        Err(_) => Err(GatewayError::new(
            ErrorKind::Internal,
            "a streamed answer came for a request that is not streamed",
        )),
    };
    try_targets(call, log, whole).await?
}

/// Tries the call's targets (see [`answer`]) and hands the first answer to `finish`.
async fn try_targets<P: Ports, R>(
    call: Call<'_, P>,
    log: &mut RequestLog,
    finish: impl FnOnce(Answer<P>, Delivery<'_, P>, &mut RequestLog) -> R,
) -> Result<R, GatewayError> {
    let ports = call.ports;
    let policy = &call.config.resilience;
    let tried = attempt_targets(
        ports,
        &call.targets,
        call.config,
        &call.request.model,
        log,
        |index, deadline_ms, health| {
            let target = &call.targets[index];
            let meta = AnswerMeta {
                model: target.model.to_owned(),
                ..call.meta.clone()
            };
            let call = &call;
            async move {
                let answer = attempt(target, call, &meta, policy, deadline_ms, &health).await?;
                Ok((answer, meta))
            }
        },
    )
    .await;
    match tried {
        Ok((answer, meta)) => {
            let price = log.price;
            let delivery = Delivery {
                settlement: call.settlement.map(|settlement| settlement.repriced(price)),
                cache: call.cache,
                keep: call.keep,
                ..Delivery::new(ports, &meta, call.request)
            };
            Ok(finish(answer, delivery, log))
        }
        Err(NoAnswer::Refused(error)) => Err(error),
        Err(NoAnswer::Exhausted(error)) => {
            let Some(message) = &policy.degraded_message else {
                return Err(error);
            };
            log.degraded = true;
            let meta = AnswerMeta {
                model: call.request.model.clone(),
                ..call.meta
            };
            let reply = Answer::Mock(MockReply::fixed(message), 0);
            let delivery = Delivery {
                settlement: call.settlement,
                keep: call.keep,
                ..Delivery::new(ports, &meta, call.request)
            };
            Ok(finish(reply, delivery, log))
        }
    }
}

/// Why no target answered.
pub(super) enum NoAnswer {
    /// An attempt failed in a way no other attempt can mend (the request itself was
    /// refused): its error.
    Refused(GatewayError),
    /// Every attempt the plan allowed failed: the last error (a one-target route), or 503
    /// `all_providers_failed`.
    Exhausted(GatewayError),
}

/// Runs `attempt` on `targets` (by index, with the request's deadline and the target's
/// breaker) as the resilience policy plans: retries with backoff, circuit breakers,
/// fallback along the chain, the total time limit. Every attempt and skip is logged in
/// `log.chain`, and `log.price` is the price of the target that answered. Its output, or
/// why none did.
pub(super) async fn attempt_targets<P: Ports, T, Attempt>(
    ports: &P,
    targets: &[Target<'_>],
    config: &Config,
    alias: &str,
    log: &mut RequestLog,
    mut attempt: impl FnMut(usize, u64, TargetHealth<P>) -> Attempt,
) -> Result<T, NoAnswer>
where
    Attempt: Future<Output = Result<T, AttemptError>>,
{
    let policy = &config.resilience;
    let deadline_ms = log.ts + u64::from(policy.total_timeout_ms);
    let health: Vec<TargetHealth<P>> = targets
        .iter()
        .map(|target| TargetHealth::of(target, &policy.breaker, ports))
        .collect();
    let mut plan = AttemptPlan::new((0..targets.len()).collect(), &policy.retry, deadline_ms);
    let mut last_error = None;
    loop {
        let mut skipped = Vec::new();
        let next = plan.next_target(
            ports.now_ms(),
            |index| health[index].allows(),
            |index| skipped.push(index),
        );
        for index in skipped {
            log.chain.push(AttemptLog {
                target: health[index].key.clone(),
                outcome: "circuit_open".to_owned(),
                ms: 0,
                start_ms: ports.now_ms(),
            });
        }
        let Some(index) = next else { break };
        if ports.client_gone() {
            break;
        }
        let target = &targets[index];
        log.provider = Some(target.provider_name.to_owned());
        log.upstream_model = Some(target.model.to_owned());
        log.attempts = plan.attempts();
        let started = ports.now_ms();
        let outcome = attempt(index, deadline_ms, health[index].clone()).await;
        let ms = ports.now_ms().saturating_sub(started);
        match outcome {
            Ok(output) => {
                log.chain.push(AttemptLog {
                    target: health[index].key.clone(),
                    outcome: "ok".to_owned(),
                    ms,
                    start_ms: started,
                });
                log.price = config.prices.get(target.model).copied();
                return Ok(output);
            }
            Err(AttemptError {
                error,
                failure,
                outcome,
            }) => {
                log.chain.push(AttemptLog {
                    target: health[index].key.clone(),
                    outcome,
                    ms,
                    start_ms: started,
                });
                health[index].record(failure.counts_against_target());
                match plan.after_failure(failure, ports.now_ms(), ports.random_u32()) {
                    Next::Stop => return Err(NoAnswer::Refused(error)),
                    Next::Retry { after_ms } => ports.sleep(after_ms).await,
                    Next::Fallback => {}
                }
                last_error = Some(error);
            }
        }
    }
    Err(NoAnswer::Exhausted(match last_error {
        // A one-target route keeps the upstream's own error (a 504, a 502, a mapped 4xx).
        Some(error) if targets.len() == 1 => error,
        _ => every_target_failed(alias, &log.chain, plan.attempts()),
    }))
}

/// 503 `all_providers_failed`, saying how each target last ended.
fn every_target_failed(alias: &str, chain: &[AttemptLog], attempts: u32) -> GatewayError {
    let mut last: Vec<(&str, &str)> = Vec::new();
    for entry in chain {
        match last.iter_mut().find(|(target, _)| *target == entry.target) {
            Some(seen) => seen.1 = &entry.outcome,
            None => last.push((&entry.target, &entry.outcome)),
        }
    }
    let detail: Vec<String> = last
        .iter()
        .map(|(target, outcome)| format!("{target}: {outcome}"))
        .collect();
    GatewayError::new(
        ErrorKind::AllProvidersFailed,
        format!(
            "every provider for model {alias:?} failed ({attempts} calls; {}); try again later",
            detail.join(", ")
        ),
    )
}

/// A prompt's size in tokens, and whether the provider counted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount {
    /// The tokens.
    pub tokens: u64,
    /// Counted by the provider (`false`: the gateway's estimate).
    pub exact: bool,
}

/// `request`'s prompt tokens as `target` counts them, when its provider can (one call,
/// within the first-byte and total limits); otherwise, or when that call fails, the
/// gateway's estimate.
pub async fn count_prompt_tokens<P: Ports>(
    ports: &P,
    request: &ChatRequest,
    target: &Target<'_>,
    policy: &ResiliencePolicy,
) -> TokenCount {
    let estimate = TokenCount {
        tokens: request.estimated_prompt_tokens(),
        exact: false,
    };
    let Backend::Http(provider) = &target.backend else {
        return estimate;
    };
    let Some(call) = provider.count_tokens_call(request, target.model) else {
        return estimate;
    };
    let timing = StreamTiming {
        idle_timeout_ms: u64::from(policy.idle_timeout_ms),
        deadline_ms: ports.now_ms() + u64::from(policy.total_timeout_ms),
        total_timeout_ms: policy.total_timeout_ms,
    };
    let counted = match ports.send(&call, u64::from(policy.ttfb_timeout_ms)).await {
        Ok(response) if response.status == 200 => read_answer(ports, response, &timing).await.ok(),
        _ => None,
    };
    let tokens = counted
        .and_then(|body| serde_json::from_slice::<serde_json::Value>(&body).ok())
        .and_then(|answer| answer["input_tokens"].as_u64());
    match tokens {
        Some(tokens) => TokenCount {
            tokens,
            exact: true,
        },
        None => estimate,
    }
}

/// One call to one target.
async fn attempt<P: Ports>(
    target: &Target<'_>,
    call: &Call<'_, P>,
    meta: &AnswerMeta,
    policy: &ResiliencePolicy,
    deadline_ms: u64,
    health: &TargetHealth<P>,
) -> Result<Answer<P>, AttemptError> {
    let ports = call.ports;
    let provider = match &target.backend {
        Backend::Mock(settings) => {
            let reply = mock::reply(call.request, settings);
            return Ok(Answer::Mock(reply, settings.chunk_delay_ms));
        }
        Backend::Http(provider) => provider.as_ref(),
    };
    // A request this provider cannot express may suit the next one.
    let upstream_call = provider
        .build_call(call.request, target.model)
        .map_err(|error| AttemptError::new(error, Failure::TargetUnusable))?;
    let (response, timing) =
        send(ports, target, provider, &upstream_call, policy, deadline_ms).await?;
    if call.request.stream {
        let mut encoder = ChunkEncoder::new(meta.clone());
        // The first bytes are part of the answer to store or keep.
        if call.cache.is_some() || call.keep.is_some() {
            encoder.record();
        }
        return first_bytes(ports, response.body, provider, encoder, timing, health).await;
    }
    let answer = read_answer(ports, response, &timing).await?;
    let completion = provider
        .parse_completion(&answer, &meta.id)
        .map_err(|error| AttemptError::new(error, Failure::NETWORK))?;
    health.record(false);
    Ok(Answer::Complete(completion))
}

/// Sends `upstream_call` to `target`, within the first-byte limit and what is left of the
/// request's time: its 2xx response and the time limits for reading it, or the failed
/// attempt (a refusal read and mapped by its provider).
pub(super) async fn send<P: Ports>(
    ports: &P,
    target: &Target<'_>,
    provider: &dyn HttpProvider,
    upstream_call: &HttpCall,
    policy: &ResiliencePolicy,
    deadline_ms: u64,
) -> Result<(UpstreamResponse<P::Body>, StreamTiming), AttemptError> {
    let left = || deadline_ms.saturating_sub(ports.now_ms());
    let ttfb_ms = u64::from(policy.ttfb_timeout_ms).min(left());
    let response = ports.send(upstream_call, ttfb_ms).await.map_err(|error| {
        let error = if error.kind == ErrorKind::UpstreamTimeout
            && ttfb_ms < u64::from(policy.ttfb_timeout_ms)
        {
            out_of_time(policy.total_timeout_ms)
        } else {
            error
        };
        AttemptError::new(error, Failure::NETWORK)
    })?;
    let timing = StreamTiming {
        idle_timeout_ms: u64::from(policy.idle_timeout_ms),
        deadline_ms,
        total_timeout_ms: policy.total_timeout_ms,
    };
    if !(200..300).contains(&response.status) {
        return Err(refusal(ports, target, provider, response, &timing).await);
    }
    Ok((response, timing))
}

/// The failed attempt an upstream's non-2xx answer makes: its error body read (at most
/// [`MAX_UPSTREAM_ERROR_BYTES`], within the idle limit) and mapped by its provider; a
/// redirect and a 429 get errors of their own.
async fn refusal<P: Ports>(
    ports: &P,
    target: &Target<'_>,
    provider: &dyn HttpProvider,
    mut response: UpstreamResponse<P::Body>,
    timing: &StreamTiming,
) -> AttemptError {
    let status = response.status;
    let retry_after = retry_after_ms(
        response.retry_after_ms.as_deref(),
        response.retry_after.as_deref(),
        ports.now_ms(),
    );
    let idle_ms = timing
        .idle_timeout_ms
        .min(timing.deadline_ms.saturating_sub(ports.now_ms()));
    let body = within(
        ports,
        idle_ms,
        read_to_cap(&mut response.body, MAX_UPSTREAM_ERROR_BYTES),
    )
    .await
    .unwrap_or_default();
    let error = match status {
        300..=399 => upstream::redirected(status),
        429 => {
            let refusal = provider.map_error(status, &body);
            upstream::rate_limited(target.provider_name, &refusal, retry_after)
        }
        _ => provider.map_error(status, &body),
    };
    AttemptError {
        error,
        failure: Failure::of_status(status, retry_after),
        outcome: status.to_string(),
    }
}

/// At most `cap` bytes of `body` (what came before it broke, if it broke).
async fn read_to_cap(body: &mut impl UpstreamBody, cap: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    while let Some(Ok(piece)) = body.next().await {
        let room = cap - bytes.len();
        bytes.extend_from_slice(&piece[..piece.len().min(room)]);
        if bytes.len() == cap {
            break;
        }
    }
    bytes
}

/// Reads a complete (non-streaming) answer piece by piece, each within the idle limit, up
/// to [`MAX_UPSTREAM_ANSWER_BYTES`].
pub(super) async fn read_answer<P: Ports>(
    ports: &P,
    response: UpstreamResponse<P::Body>,
    timing: &StreamTiming,
) -> Result<Vec<u8>, AttemptError> {
    // The same request would get the same answer: an oversized one is not retried, but
    // the next target is tried.
    let too_large = || {
        let error = upstream::unreachable("its answer is too large");
        AttemptError::new(error, Failure::TargetUnusable)
    };
    let declared = response.content_length;
    if declared.is_some_and(|length| length > MAX_UPSTREAM_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut answer = Vec::with_capacity(declared.map_or(0, |length| length as usize));
    let mut body = TimedBody::new(response.body, *timing);
    loop {
        match body.read(ports).await {
            Piece::Bytes(bytes) if answer.len() + bytes.len() > MAX_UPSTREAM_ANSWER_BYTES => {
                return Err(too_large())
            }
            Piece::Bytes(bytes) => answer.extend_from_slice(&bytes),
            Piece::End(None) => return Ok(answer),
            Piece::End(Some(error)) => return Err(AttemptError::new(error, Failure::NETWORK)),
        }
    }
}

/// Reads a streamed answer until it yields its first client bytes, and commits to it; an
/// upstream that breaks, stalls or sends an error before that is a failed attempt.
async fn first_bytes<P: Ports>(
    ports: &P,
    body: P::Body,
    provider: &dyn HttpProvider,
    mut encoder: ChunkEncoder,
    timing: StreamTiming,
    health: &TargetHealth<P>,
) -> Result<Answer<P>, AttemptError> {
    let mut translator = StreamTranslator::new(provider.stream_decoder(encoder.answer_id()));
    let mut body = TimedBody::new(body, timing);
    loop {
        let first = body
            .read(ports)
            .await
            .translate(&mut translator, &mut encoder);
        if encoder.outcome() == StreamOutcome::Broken {
            let error = encoder
                .error()
                .cloned()
                .unwrap_or_else(|| upstream::unreachable("the stream failed"));
            return Err(AttemptError::new(error, Failure::NETWORK));
        }
        if !first.is_empty() {
            return Ok(Answer::Stream(Box::new(CommittedStream {
                body,
                translator,
                encoder,
                first,
                health: health.clone(),
            })));
        }
    }
}
