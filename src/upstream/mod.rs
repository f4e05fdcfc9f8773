//! Providers: how a validated request becomes an upstream call, and how the upstream's
//! answer becomes provider-neutral events.
//!
//! An HTTP provider implements [`HttpProvider`]: it builds the request ([`HttpCall`]),
//! parses a complete JSON answer, decodes stream events and maps error responses. It does
//! no I/O itself, so each one is tested on the host; the platform layer sends the call.
//! The built-in mock ([`mock`]) needs no network and yields the same [`StreamEvent`]s.

pub mod anthropic;
pub mod gemini;
pub mod mock;
pub mod openai;
pub mod routing;
pub mod settings;
pub mod sse;
pub mod translate;

use crate::api::chat::{ChatCompletion, ChatRequest, ChunkChoice, Usage};
use crate::api::embeddings::{EmbeddingRequest, Embeddings};
use crate::config::Config;
use crate::error::{ErrorKind, GatewayError};
use routing::attempt_order;
use routing::{ModelRoute, RouteTarget};
use settings::{HttpKind, ProviderConfig};

/// A provider-neutral piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Deltas and finish reasons for one or more choices.
    Choices(Vec<ChunkChoice>),
    /// The token counts, usually right before the end.
    Usage(Usage),
    /// The upstream finished the stream normally.
    Done,
}

/// An HTTP request to send upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    /// Absolute URL.
    pub url: String,
    /// Header names and values, including credentials.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

/// Decodes one provider's stream events. Stateful, because some providers spread one
/// logical chunk over several events.
pub trait StreamDecoder {
    /// Turns one SSE event into zero or more neutral events, or the error the upstream sent.
    fn decode(&mut self, event: &sse::SseEvent) -> Result<Vec<StreamEvent>, GatewayError>;
}

/// A provider reached over HTTP.
pub trait HttpProvider {
    /// The request for `request`, sent to the upstream model `model`; a 400 when the
    /// provider cannot express something the request asks for.
    fn build_call(&self, request: &ChatRequest, model: &str) -> Result<HttpCall, GatewayError>;
    /// Parses a complete (non-streaming) 2xx answer; `answer_id` (the gateway's id for
    /// the answer) makes the ids of tool calls the provider leaves unnamed.
    fn parse_completion(
        &self,
        body: &[u8],
        answer_id: &str,
    ) -> Result<ChatCompletion, GatewayError>;
    /// A fresh decoder for one streamed answer (`answer_id` as in `parse_completion`).
    fn stream_decoder(&self, answer_id: &str) -> Box<dyn StreamDecoder>;
    /// The client-facing error for a non-2xx upstream answer.
    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError;
    /// The call that counts `request`'s prompt tokens exactly, answered with
    /// `{"input_tokens": n}`, for a provider that can (Anthropic's `count_tokens`).
    fn count_tokens_call(&self, _request: &ChatRequest, _model: &str) -> Option<HttpCall> {
        None
    }
    /// The call that embeds `request`'s input with `model`; a 400 for a provider without
    /// embeddings (or that cannot take this input), so that a fallback may serve it.
    fn embeddings_call(
        &self,
        _request: &EmbeddingRequest,
        _model: &str,
    ) -> Result<HttpCall, GatewayError> {
        Err(GatewayError::invalid(
            "model",
            "this model's provider serves no embeddings",
        ))
    }
    /// Parses a 2xx answer to [`HttpProvider::embeddings_call`].
    fn parse_embeddings(&self, _body: &[u8]) -> Result<Embeddings, GatewayError> {
        Err(unreachable("it serves no embeddings"))
    }
}

/// Who answers a target's calls.
pub enum Backend<'a> {
    /// The built-in mock.
    Mock(&'a crate::config::MockSettings),
    /// A provider reached over HTTP.
    Http(Box<dyn HttpProvider + 'a>),
}

/// One target of a resolved route, ready to be called.
pub struct Target<'a> {
    /// The provider's name in config.
    pub provider_name: &'a str,
    /// The model name sent upstream and reported to the client.
    pub model: &'a str,
    /// Who answers.
    pub backend: Backend<'a>,
}

impl Target<'_> {
    /// `provider/model`: the target's name in logs and breakers.
    pub fn key(&self) -> String {
        format!("{}/{}", self.provider_name, self.model)
    }
}

/// The keys of `targets` in configured rather than tried order (sorted): what names a
/// route's answers in the cache, whichever target a weighted pick tries first.
pub fn route_keys(targets: &[Target<'_>]) -> Vec<String> {
    let mut keys: Vec<String> = targets.iter().map(Target::key).collect();
    keys.sort();
    keys
}

/// A request's route: the targets to try, in order.
pub struct Resolved<'a> {
    /// Targets whose provider is usable, in the order they are tried.
    pub targets: Vec<Target<'a>>,
    /// For an `auto` alias: why it chose the alias it chose.
    pub auto_reason: Option<&'static str>,
}

/// Finds the targets for `request.model`, in the order they are tried (`random`, uniform,
/// makes the weighted pick): 404 `model_not_found` when no route exists, 503
/// `provider_not_configured` when none of its providers has its secret. An `auto` alias
/// tries its chosen alias's targets, then the other alias's.
pub fn resolve<'a>(
    config: &'a Config,
    request: &ChatRequest,
    random: u32,
) -> Result<Resolved<'a>, GatewayError> {
    let alias = request.model.as_str();
    let (aliases, auto_reason) = match route_of(config, alias)? {
        ModelRoute::Chain(_) => ([alias, ""], None),
        ModelRoute::Auto(auto) => {
            let (chosen, reason) = auto.choose(request);
            let other = if chosen == auto.simple {
                &auto.complex
            } else {
                &auto.simple
            };
            ([chosen, other.as_str()], Some(reason))
        }
    };
    Ok(Resolved {
        targets: targets_of(config, alias, aliases, random)?,
        auto_reason,
    })
}

/// The targets of `alias` for a request that is not a chat (embeddings): its chain in
/// the order tried; an `auto` alias, which picks by the conversation, serves chat only.
pub fn resolve_chain<'a>(
    config: &'a Config,
    alias: &str,
    random: u32,
) -> Result<Vec<Target<'a>>, GatewayError> {
    match route_of(config, alias)? {
        ModelRoute::Chain(_) => targets_of(config, alias, [alias, ""], random),
        ModelRoute::Auto(_) => Err(GatewayError::invalid(
            "model",
            "an auto route chooses by the conversation and serves chat only; name a model",
        )),
    }
}

/// The route of `alias`: 404 `model_not_found` when there is none.
fn route_of<'a>(config: &'a Config, alias: &str) -> Result<&'a ModelRoute, GatewayError> {
    config.routes.get(alias).ok_or_else(|| {
        GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "the model {:?} does not exist; GET /v1/models lists the available models",
                alias.chars().take(100).collect::<String>()
            ),
        )
        .with_param("model")
    })
}

/// The usable targets of `aliases` (the second may be empty), in the order tried: 503
/// `provider_not_configured` when none of their providers has its secret.
fn targets_of<'a>(
    config: &'a Config,
    alias: &str,
    aliases: [&str; 2],
    random: u32,
) -> Result<Vec<Target<'a>>, GatewayError> {
    let mut targets = Vec::new();
    for alias in aliases {
        let Some(ModelRoute::Chain(chain)) = config.routes.get(alias) else {
            continue;
        };
        for index in attempt_order(chain, random) {
            let RouteTarget {
                provider, model, ..
            } = &chain[index];
            if let Some(backend) = config
                .providers
                .get(provider)
                .and_then(|p| backend(p, config))
            {
                targets.push(Target {
                    provider_name: provider,
                    model,
                    backend,
                });
            }
        }
    }
    if targets.is_empty() {
        return Err(GatewayError::new(
            ErrorKind::ProviderNotConfigured,
            format!("the provider for model {alias:?} is not configured on this gateway"),
        ));
    }
    Ok(targets)
}

/// The backend of a provider, or `None` when its key secret is not set.
fn backend<'a>(provider: &'a ProviderConfig, config: &'a Config) -> Option<Backend<'a>> {
    Some(match provider {
        ProviderConfig::Mock => Backend::Mock(&config.mock),
        ProviderConfig::Http {
            kind,
            base_url,
            api_key,
            default_max_tokens,
            ..
        } => {
            let api_key = api_key.as_ref()?;
            Backend::Http(match kind {
                HttpKind::OpenAi => Box::new(openai::OpenAi::new(base_url, api_key)),
                HttpKind::Gemini => Box::new(gemini::Gemini::new(base_url, api_key)),
                HttpKind::Anthropic => Box::new(anthropic::Anthropic::new(
                    base_url,
                    api_key,
                    *default_max_tokens,
                )),
            })
        }
    })
}

/// The client-facing error for an upstream that could not be reached or read.
pub fn unreachable(detail: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamError,
        format!("the upstream provider failed: {detail}"),
    )
}

/// The client-facing error for an upstream's own 429: its own code, so a client can tell it
/// from the gateway's limits, naming the provider, with the wait it asked for (SDKs retry
/// a 429 after `retry-after`). `refusal` is the upstream's error as its provider mapped it.
pub fn rate_limited(
    provider: &str,
    refusal: &GatewayError,
    retry_after_ms: Option<u64>,
) -> GatewayError {
    let error = GatewayError::new(
        ErrorKind::UpstreamRateLimited,
        format!(
            "the provider {provider:?} is rate limiting this gateway ({}); try again later",
            refusal.message
        ),
    );
    match retry_after_ms {
        Some(ms) => error.with_retry_after_ms(ms),
        None => error,
    }
}

/// The client-facing error for an upstream that answered with a redirect, which the
/// gateway does not follow: the provider key would go wherever it points.
pub fn redirected(status: u16) -> GatewayError {
    unreachable(&format!(
        "it answered with a redirect ({status}), which is not followed; check its base_url"
    ))
}

/// The client-facing error for an upstream that sent no headers within the deadline.
pub fn timed_out(timeout_ms: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamTimeout,
        format!("the upstream provider did not answer within {timeout_ms} ms"),
    )
}

/// The client-facing error for an upstream that went silent in the middle of its answer.
pub fn went_silent(timeout_ms: u64) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamTimeout,
        format!("the upstream provider sent nothing for {timeout_ms} ms"),
    )
}

/// The client-facing error for a request that ran out of its total time.
pub fn out_of_time(total_timeout_ms: u32) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamTimeout,
        format!("the request did not complete within its time limit of {total_timeout_ms} ms"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;
    use crate::guard::validate::parse_chat_request;

    struct Vars(&'static str);

    impl ConfigSource for Vars {
        fn var(&self, name: &str) -> Option<String> {
            match name {
                "PROVIDERS" => Some(
                    r#"{"up": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_secret": "K"},
                        "off": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_secret": "UNSET"}}"#.into(),
                ),
                "ROUTES" => Some(
                    r#"{"mock": {"provider": "mock"},
                        "fast": {"provider": "up", "model": "gpt-x"},
                        "chain": {"targets": [{"provider": "off", "model": "a"}, {"provider": "up", "model": "b"}, {"provider": "mock", "model": "c"}]},
                        "dark": {"targets": [{"provider": "off", "model": "a"}]},
                        "auto": {"auto": {"simple": "fast", "complex": "chain", "max_simple_prompt_tokens": 50}}}"#.into(),
                ),
                _ => None,
            }
        }
        fn secret(&self, name: &str) -> Option<String> {
            (name == "K" && !self.0.is_empty()).then(|| self.0.to_owned())
        }
    }

    fn request(model: &str, text: &str) -> ChatRequest {
        let body =
            serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]});
        parse_chat_request(
            body.to_string().as_bytes(),
            &Config::load(&Vars("")).unwrap().limits,
        )
        .unwrap()
    }

    fn keys(resolved: &Resolved) -> Vec<String> {
        resolved.targets.iter().map(Target::key).collect()
    }

    #[test]
    fn aliases_resolve_to_their_usable_targets_in_order() {
        let config = Config::load(&Vars("sk-x")).unwrap();
        let resolved = resolve(&config, &request("fast", "hi"), 0).unwrap();
        assert_eq!(keys(&resolved), ["up/gpt-x"]);
        assert!(matches!(resolved.targets[0].backend, Backend::Http(_)));
        let mock = resolve(&config, &request("mock", "hi"), 0).unwrap();
        assert!(matches!(mock.targets[0].backend, Backend::Mock(_)));
        // The provider without its secret is left out of the chain.
        let chain = resolve(&config, &request("chain", "hi"), 0).unwrap();
        assert_eq!(keys(&chain), ["up/b", "mock/c"]);
    }

    #[test]
    fn auto_tries_its_chosen_alias_first_and_the_other_after() {
        let config = Config::load(&Vars("sk-x")).unwrap();
        let simple = resolve(&config, &request("auto", "hi"), 0).unwrap();
        assert_eq!(simple.auto_reason, Some("simple"));
        assert_eq!(keys(&simple), ["up/gpt-x", "up/b", "mock/c"]);
        let complex = resolve(&config, &request("auto", "prove it step by step"), 0).unwrap();
        assert_eq!(complex.auto_reason, Some("reasoning_cues"));
        assert_eq!(keys(&complex), ["up/b", "mock/c", "up/gpt-x"]);
    }

    #[test]
    fn unknown_models_are_404_and_unconfigured_providers_503() {
        let config = Config::load(&Vars("")).unwrap();
        let err = resolve(&config, &request("gpt-5", "hi"), 0).err().unwrap();
        assert_eq!((err.status(), err.code()), (404, "model_not_found"));
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = resolve(&config, &request("fast", "hi"), 0).err().unwrap();
        assert_eq!((err.status(), err.code()), (503, "provider_not_configured"));
        let err = resolve(&config, &request("dark", "hi"), 0).err().unwrap();
        assert_eq!(err.code(), "provider_not_configured");
    }
}
