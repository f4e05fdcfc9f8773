//! An embeddings request's way to its vectors: the same attempt loop as chat (retries,
//! breakers, fallbacks, time limits), each target asked in its provider's format, the
//! input's tokens counted (or estimated) and settled with the caller's limits.

use super::answer::{attempt_targets, read_answer, send, AttemptError, NoAnswer};
use super::health::TargetHealth;
use super::ports::{Ports, Settle};
use crate::api::chat::Usage;
use crate::api::embeddings::{EmbeddingRequest, Embeddings};
use crate::config::Config;
use crate::error::GatewayError;
use crate::observe::log::RequestLog;
use crate::resilience::retry::Failure;
use crate::resilience::ResiliencePolicy;
use crate::upstream::{mock, unreachable, Backend, Target};

/// One embeddings request's way to an answer.
pub struct EmbedCall<'a, P: Ports> {
    /// The platform.
    pub ports: &'a P,
    /// The configuration (resilience policy, prices).
    pub config: &'a Config,
    /// The checked request.
    pub request: &'a EmbeddingRequest,
    /// The targets, in the order they are tried.
    pub targets: Vec<Target<'a>>,
    /// What the request owes its rate limits.
    pub settlement: Option<P::Settlement>,
}

/// The vectors and their usage (input tokens as the provider counted them, else
/// estimated), logged, priced at the model that answered and settled.
pub async fn embed<P: Ports>(
    call: EmbedCall<'_, P>,
    log: &mut RequestLog,
) -> Result<(Embeddings, Usage), GatewayError> {
    let (ports, request) = (call.ports, call.request);
    let policy = &call.config.resilience;
    let targets = &call.targets;
    let tried = attempt_targets(
        ports,
        targets,
        call.config,
        &request.model,
        log,
        |index, deadline_ms, health| {
            attempt(ports, &targets[index], request, policy, deadline_ms, health)
        },
    )
    .await;
    let embeddings = tried.map_err(|no_answer| match no_answer {
        NoAnswer::Refused(error) | NoAnswer::Exhausted(error) => error,
    })?;
    let price = log.price;
    let prompt_tokens = embeddings.prompt_tokens;
    let usage = Usage::new(
        prompt_tokens.unwrap_or_else(|| request.estimated_tokens()),
        0,
    );
    log.set_usage(&usage, prompt_tokens.is_none());
    if let Some(settlement) = call.settlement {
        settlement.repriced(price).settle(&usage);
    }
    Ok((embeddings, usage))
}

/// One call to one target; an answer with the wrong number of vectors is a failure.
async fn attempt<P: Ports>(
    ports: &P,
    target: &Target<'_>,
    request: &EmbeddingRequest,
    policy: &ResiliencePolicy,
    deadline_ms: u64,
    health: TargetHealth<P>,
) -> Result<Embeddings, AttemptError> {
    let provider = match &target.backend {
        Backend::Mock(_) => return Ok(mock::embed(request)),
        Backend::Http(provider) => provider.as_ref(),
    };
    let upstream_call = provider
        .embeddings_call(request, target.model)
        .map_err(|error| AttemptError::new(error, Failure::TargetUnusable))?;
    let (response, timing) =
        send(ports, target, provider, &upstream_call, policy, deadline_ms).await?;
    let body = read_answer(ports, response, &timing).await?;
    let embeddings = provider
        .parse_embeddings(&body)
        .and_then(
            |embeddings| match embeddings.vectors.len() == request.input.len() {
                true => Ok(embeddings),
                false => Err(unreachable(
                    "it sent a different number of vectors than inputs",
                )),
            },
        )
        .map_err(|error| AttemptError::new(error, Failure::NETWORK))?;
    health.record(false);
    Ok(embeddings)
}
