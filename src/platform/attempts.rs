//! Calls a request's targets in turn until one answers: retries with backoff, circuit
//! breakers, fallback along the chain and time limits, decided by
//! [`crate::resilience`]; then turns the answer into the reply.
//!
//! A retry or fallback is possible only until the client has been sent a byte. A streamed
//! answer is therefore read until it yields its first client bytes before it is
//! committed to: an upstream that fails before that (an error event, a malformed first
//! event, a stall, a reset) is retried like one that failed outright.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde_json::json;
use web_sys::AbortSignal;
use worker::{Delay, Response};

use super::cache::CacheWriter;
use super::clock::now_ms;
use super::crypto::random_u32;
use super::fetch::{self, declared_length, read_capped, within, Body, UpstreamBody};
use super::handler::Reply;
use super::limiter::Settlement;
use super::metrics::Observer;
use super::respond;
use super::stream::{AnswerStream, CommittedStream, Ends, Piece, StreamTiming};
use crate::api::chat::{ChatCompletion, ChatRequest, Usage};
use crate::cache::entry::Entry;
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use crate::observe::log::{AttemptLog, RequestLog};
use crate::output::{AnswerMeta, ChunkEncoder, StreamOutcome, StreamTranslator};
use crate::resilience::breaker::{BreakerBoard, BreakerPolicy, Transition};
use crate::resilience::plan::{AttemptPlan, Next};
use crate::resilience::retry::{retry_after_ms, Failure};
use crate::resilience::ResiliencePolicy;
use crate::upstream::mock::{self, MockReply};
use crate::upstream::{self, out_of_time, Backend, HttpProvider, StreamEvent, Target};

/// Most bytes read from an upstream error body: enough for any error object.
const MAX_UPSTREAM_ERROR_BYTES: usize = 64 * 1024;
/// Most bytes read from a complete (non-streaming) upstream answer.
const MAX_UPSTREAM_ANSWER_BYTES: usize = 16 * 1024 * 1024;

thread_local! {
    /// Every target's circuit breaker, for this isolate.
    static BREAKERS: RefCell<BreakerBoard> = RefCell::new(BreakerBoard::default());
}

/// One target's circuit breaker: asked before a call, told how each call ended.
#[derive(Clone)]
pub struct TargetHealth {
    key: String,
    policy: BreakerPolicy,
    /// Logs and counts the breaker's state changes.
    observer: Observer,
}

impl TargetHealth {
    fn of(target: &Target, policy: &BreakerPolicy, observer: &Observer) -> Self {
        TargetHealth {
            key: target.key(),
            policy: policy.clone(),
            observer: observer.clone(),
        }
    }

    /// Whether a call may go out now.
    fn allows(&self) -> bool {
        let (allowed, transition) =
            BREAKERS.with(|board| board.borrow_mut().allow(&self.key, &self.policy, now_ms()));
        self.log_transition(transition);
        allowed
    }

    /// Records how a call ended (`failed`: in a way that counts against the target).
    pub fn record(&self, failed: bool) {
        let transition = BREAKERS.with(|board| {
            board
                .borrow_mut()
                .record(&self.key, failed, &self.policy, now_ms())
        });
        self.log_transition(transition);
    }

    /// Writes a state change as its own log line (level `warn`), and counts it.
    fn log_transition(&self, transition: Option<Transition>) {
        if let Some(Transition {
            target,
            from,
            to,
            reason,
            count,
        }) = transition
        {
            let line = json!({
                "event": "circuit_breaker",
                "level": "warn",
                "ts": now_ms(),
                "target": target,
                "from": from,
                "to": to,
                "reason": reason,
                "transitions": count,
            });
            self.observer.breaker_transition(&line, &target, to);
        }
    }
}

/// One request's way to an answer.
pub struct Call<'a> {
    /// The configuration (resilience policy, prices, mock settings).
    pub config: &'a Config,
    /// The validated request.
    pub request: &'a ChatRequest,
    /// The targets, in the order they are tried.
    pub targets: Vec<Target<'a>>,
    /// What every chunk of the answer shares; `model` is set per target.
    pub meta: AnswerMeta,
    /// The client's request signal: aborted when it disconnects.
    pub client: AbortSignal,
    /// What the request owes its rate limits when it ends.
    pub settlement: Option<Settlement>,
    /// Stores the answer in the response cache, when the request may be cached.
    pub cache: Option<CacheWriter>,
    /// Writes the log line (of a stream, when it ends) and records the metrics.
    pub observer: Observer,
}

/// What a successful attempt produced.
enum Answer {
    /// A complete answer.
    Complete(ChatCompletion),
    /// A stream whose first client bytes are ready.
    Stream(Box<CommittedStream>),
    /// The built-in mock answers (and the pause before each streamed piece).
    Mock(MockReply, u32),
    /// A cached answer.
    Cached(Rc<Entry>),
}

impl Answer {
    /// The whole answer, for a request that is not streamed; a stream stays as it is.
    fn into_whole(self) -> Result<ChatCompletion, Box<CommittedStream>> {
        match self {
            Answer::Complete(completion) => Ok(completion),
            Answer::Mock(reply, _) => Ok(reply.completion()),
            Answer::Cached(entry) => Ok(entry.completion.clone()),
            Answer::Stream(committed) => Err(committed),
        }
    }
}

/// Why an attempt failed, and what that means for the next one.
struct AttemptError {
    error: GatewayError,
    failure: Failure,
    /// How the attempt ended, for the log: the upstream's status or the error code.
    outcome: String,
}

impl AttemptError {
    fn new(error: GatewayError, failure: Failure) -> Self {
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
pub async fn answer(call: Call<'_>, log: &mut RequestLog) -> Result<Reply, GatewayError> {
    try_targets(call, log, deliver).await
}

/// Like [`answer`], for a request that is not streamed (a queued job): the completion and
/// its usage. Settles and stores what the call carries, like [`answer`].
pub async fn complete(
    call: Call<'_>,
    log: &mut RequestLog,
) -> Result<(ChatCompletion, Usage), GatewayError> {
    let whole =
        |answer: Answer, delivery: Delivery<'_>, log: &mut RequestLog| match answer.into_whole() {
            Ok(completion) => Ok(settle_whole(completion, delivery, log)),
            Err(_) => Err(GatewayError::new(
                ErrorKind::Internal,
                "a streamed answer came for a request that is not streamed",
            )),
        };
    try_targets(call, log, whole).await?
}

/// Tries the call's targets (see [`answer`]) and hands the first answer to `finish`.
async fn try_targets<R>(
    call: Call<'_>,
    log: &mut RequestLog,
    finish: impl FnOnce(Answer, Delivery<'_>, &mut RequestLog) -> R,
) -> Result<R, GatewayError> {
    let policy = &call.config.resilience;
    let deadline_ms = log.ts + u64::from(policy.total_timeout_ms);
    let health: Vec<TargetHealth> = call
        .targets
        .iter()
        .map(|target| TargetHealth::of(target, &policy.breaker, &call.observer))
        .collect();
    let mut plan = AttemptPlan::new(
        (0..call.targets.len()).collect(),
        &policy.retry,
        deadline_ms,
    );
    let mut last_error = None;
    loop {
        let mut skipped = Vec::new();
        let next = plan.next_target(
            now_ms(),
            |index| health[index].allows(),
            |index| skipped.push(index),
        );
        for index in skipped {
            log.chain.push(AttemptLog {
                target: health[index].key.clone(),
                outcome: "circuit_open".to_owned(),
                ms: 0,
            });
        }
        let Some(index) = next else { break };
        if call.client.aborted() {
            break;
        }
        let target = &call.targets[index];
        log.provider = Some(target.provider_name.to_owned());
        log.upstream_model = Some(target.model.to_owned());
        log.attempts = plan.attempts();
        let meta = AnswerMeta {
            model: target.model.to_owned(),
            ..call.meta.clone()
        };
        let started = now_ms();
        let attempt = attempt(target, &call, &meta, policy, deadline_ms, &health[index]).await;
        let ms = now_ms().saturating_sub(started);
        match attempt {
            Ok(answer) => {
                log.chain.push(AttemptLog {
                    target: health[index].key.clone(),
                    outcome: "ok".to_owned(),
                    ms,
                });
                let price = call.config.prices.get(target.model).copied();
                log.price = price;
                let delivery = Delivery {
                    settlement: call.settlement.map(|settlement| settlement.repriced(price)),
                    cache: call.cache,
                    ..Delivery::new(&call.client, &meta, call.request, call.observer)
                };
                return Ok(finish(answer, delivery, log));
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
                });
                health[index].record(failure.counts_against_target());
                match plan.after_failure(failure, now_ms(), random_u32()) {
                    Next::Stop => return Err(error),
                    Next::Retry { after_ms } => {
                        Delay::from(Duration::from_millis(after_ms)).await;
                    }
                    Next::Fallback => {}
                }
                last_error = Some(error);
            }
        }
    }
    if let Some(message) = &policy.degraded_message {
        log.degraded = true;
        let meta = AnswerMeta {
            model: call.request.model.clone(),
            ..call.meta
        };
        let reply = Answer::Mock(MockReply::fixed(message), 0);
        let delivery = Delivery {
            settlement: call.settlement,
            ..Delivery::new(&call.client, &meta, call.request, call.observer)
        };
        return Ok(finish(reply, delivery, log));
    }
    Err(match last_error {
        // A one-target route keeps the upstream's own error (a 504, a 502, a mapped 4xx).
        Some(error) if call.targets.len() == 1 => error,
        _ => every_target_failed(&call.request.model, &log.chain, plan.attempts()),
    })
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

/// One call to one target.
async fn attempt(
    target: &Target<'_>,
    call: &Call<'_>,
    meta: &AnswerMeta,
    policy: &ResiliencePolicy,
    deadline_ms: u64,
    health: &TargetHealth,
) -> Result<Answer, AttemptError> {
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
    let left = || deadline_ms.saturating_sub(now_ms());
    let ttfb_ms = u64::from(policy.ttfb_timeout_ms).min(left());
    let mut response = fetch::send(&upstream_call, ttfb_ms)
        .await
        .map_err(|error| {
            let error = if error.kind == ErrorKind::UpstreamTimeout
                && ttfb_ms < u64::from(policy.ttfb_timeout_ms)
            {
                out_of_time(policy.total_timeout_ms)
            } else {
                error
            };
            AttemptError::new(error, Failure::NETWORK)
        })?;
    let idle_ms = || u64::from(policy.idle_timeout_ms).min(left());
    let status = response.status_code();
    if !(200..300).contains(&status) {
        let header = |name: &str| response.headers().get(name).ok().flatten();
        let retry_after = retry_after_ms(
            header("retry-after-ms").as_deref(),
            header("retry-after").as_deref(),
            now_ms(),
        );
        let body = within(
            idle_ms(),
            read_capped(Body::Response(&mut response), MAX_UPSTREAM_ERROR_BYTES),
        )
        .await
        .and_then(Result::ok)
        .unwrap_or_default();
        let error = match status {
            300..=399 => upstream::redirected(status),
            429 => {
                let refusal = provider.map_error(status, &body);
                upstream::rate_limited(target.provider_name, &refusal, retry_after)
            }
            _ => provider.map_error(status, &body),
        };
        return Err(AttemptError {
            error,
            failure: Failure::of_status(status, retry_after),
            outcome: status.to_string(),
        });
    }
    let timing = StreamTiming {
        idle_timeout_ms: u64::from(policy.idle_timeout_ms),
        deadline_ms,
        total_timeout_ms: policy.total_timeout_ms,
    };
    if call.request.stream {
        return first_bytes(&response, provider, meta, timing, health).await;
    }
    let answer = read_answer(&response, &timing).await?;
    let completion = provider
        .parse_completion(&answer)
        .map_err(|error| AttemptError::new(error, Failure::NETWORK))?;
    health.record(false);
    Ok(Answer::Complete(completion))
}

/// Reads a complete (non-streaming) answer piece by piece, each within the idle limit, up
/// to [`MAX_UPSTREAM_ANSWER_BYTES`].
async fn read_answer(response: &Response, timing: &StreamTiming) -> Result<Vec<u8>, AttemptError> {
    // The same request would get the same answer: an oversized one is not retried, but
    // the next target is tried.
    let too_large = || {
        let error = upstream::unreachable("its answer is too large");
        AttemptError::new(error, Failure::TargetUnusable)
    };
    let declared = declared_length(response.headers());
    if declared.is_some_and(|length| length > MAX_UPSTREAM_ANSWER_BYTES as u64) {
        return Err(too_large());
    }
    let mut body =
        UpstreamBody::of(response).map_err(|error| AttemptError::new(error, Failure::NETWORK))?;
    let mut answer = Vec::with_capacity(declared.map_or(0, |length| length as usize));
    loop {
        match timing.read(&mut body).await {
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
async fn first_bytes(
    response: &Response,
    provider: &dyn HttpProvider,
    meta: &AnswerMeta,
    timing: StreamTiming,
    health: &TargetHealth,
) -> Result<Answer, AttemptError> {
    let mut body =
        UpstreamBody::of(response).map_err(|error| AttemptError::new(error, Failure::NETWORK))?;
    let mut translator = StreamTranslator::new(provider.stream_decoder());
    let mut encoder = ChunkEncoder::new(meta.clone());
    loop {
        let first = timing
            .read(&mut body)
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
                timing,
                health: health.clone(),
            })));
        }
    }
}

/// Where an answer goes, what it settles and stores, and who logs it.
pub struct Delivery<'a> {
    client: &'a AbortSignal,
    meta: &'a AnswerMeta,
    request: &'a ChatRequest,
    observer: Observer,
    settlement: Option<Settlement>,
    cache: Option<CacheWriter>,
}

impl<'a> Delivery<'a> {
    /// What the answer's end does: log, settle, store.
    fn ends(self) -> Ends {
        Ends {
            observer: self.observer,
            settlement: self.settlement,
            cache: self.cache,
        }
    }

    /// A delivery that settles and stores nothing.
    pub fn new(
        client: &'a AbortSignal,
        meta: &'a AnswerMeta,
        request: &'a ChatRequest,
        observer: Observer,
    ) -> Self {
        Delivery {
            client,
            meta,
            request,
            observer,
            settlement: None,
            cache: None,
        }
    }
}

/// The reply for a cached answer (`meta.model` being the model that gave it), with its
/// `age`. It costs nothing: the admission took only a request, and nothing is settled.
pub fn replay(entry: Rc<Entry>, delivery: Delivery<'_>, log: &mut RequestLog) -> Reply {
    let age = entry.age_s(now_ms());
    let reply = deliver(Answer::Cached(entry), delivery, log);
    respond::set_header(reply.response(), "age", &age.to_string());
    reply
}

/// The reply for an answer: JSON, or a stream that writes its own log line. A complete
/// answer is stored in the cache at once, a stream's once it completes.
fn deliver(answer: Answer, delivery: Delivery<'_>, log: &mut RequestLog) -> Reply {
    let (client, meta) = (delivery.client, delivery.meta);
    let replay = |events: Vec<StreamEvent>, delay_ms: u32, log: &mut RequestLog, ends| {
        log.status = 200;
        let encoder = ChunkEncoder::new(meta.clone());
        let (client, log) = (client.clone(), log.clone());
        streaming(AnswerStream::mock(
            events, delay_ms, encoder, client, log, ends,
        ))
    };
    let completion = match answer {
        Answer::Mock(reply, delay_ms) if delivery.request.stream => {
            return replay(reply.events(), delay_ms, log, delivery.ends());
        }
        Answer::Cached(entry) if delivery.request.stream => {
            return replay(entry.events(), 0, log, delivery.ends());
        }
        answer => match answer.into_whole() {
            Ok(completion) => completion,
            Err(committed) => {
                log.status = 200;
                let (client, log) = (client.clone(), log.clone());
                let stream = AnswerStream::upstream(*committed, client, log, delivery.ends());
                return streaming(stream);
            }
        },
    };
    let (completion, _) = settle_whole(completion, delivery, log);
    Reply::Now(respond::json(200, json!(completion).to_string()))
}

/// A whole answer stamped with the request's id and model, its usage logged, settled and
/// the answer stored in the cache as the delivery says.
fn settle_whole(
    completion: ChatCompletion,
    delivery: Delivery<'_>,
    log: &mut RequestLog,
) -> (ChatCompletion, Usage) {
    let completion = delivery.meta.stamp(completion);
    let usage = delivery.meta.usage_of(&completion);
    log.set_usage(&usage, completion.usage.is_none());
    let ends = delivery.ends();
    if let Some(settlement) = ends.settlement {
        settlement.settle(&usage);
    }
    if let Some(cache) = ends.cache {
        log.cache_stored = cache.store(&completion);
    }
    (completion, usage)
}

fn streaming(stream: AnswerStream) -> Reply {
    Reply::Streaming(respond::event_stream(stream.into_body()))
}
