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
pub mod sse;
pub mod translate;

use crate::api::chat::{ChatCompletion, ChatRequest, ChunkChoice, Usage};
use crate::config::{Config, HttpKind, ProviderConfig, RouteTarget};
use crate::error::{ErrorKind, GatewayError};

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
    /// Parses a complete (non-streaming) 2xx answer.
    fn parse_completion(&self, body: &[u8]) -> Result<ChatCompletion, GatewayError>;
    /// A fresh decoder for one streamed answer.
    fn stream_decoder(&self) -> Box<dyn StreamDecoder>;
    /// The client-facing error for a non-2xx upstream answer.
    fn map_error(&self, status: u16, body: &[u8]) -> GatewayError;
}

/// The backend that serves one request.
pub enum Backend<'a> {
    /// The built-in mock.
    Mock(&'a crate::config::MockSettings),
    /// A provider reached over HTTP.
    Http(Box<dyn HttpProvider + 'a>),
}

/// A model alias resolved to its provider.
pub struct Resolved<'a> {
    /// The provider's name in config (for logs).
    pub provider_name: &'a str,
    /// The model name sent upstream and reported to the client.
    pub model: &'a str,
    /// Who answers.
    pub backend: Backend<'a>,
}

/// Finds the route for `alias`: 404 `model_not_found` when none exists, 503 when its
/// provider lacks a secret.
pub fn resolve<'a>(config: &'a Config, alias: &str) -> Result<Resolved<'a>, GatewayError> {
    let not_found = || {
        GatewayError::new(
            ErrorKind::ModelNotFound,
            format!(
                "the model {:?} does not exist; GET /v1/models lists the available models",
                alias.chars().take(100).collect::<String>()
            ),
        )
        .with_param("model")
    };
    let RouteTarget { provider, model } = config.routes.get(alias).ok_or_else(not_found)?;
    let backend = match config.providers.get(provider).ok_or_else(not_found)? {
        ProviderConfig::Mock => Backend::Mock(&config.mock),
        ProviderConfig::Http {
            kind,
            base_url,
            api_key,
            default_max_tokens,
            ..
        } => {
            let api_key = api_key.as_ref().ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::ProviderNotConfigured,
                    format!("the provider for model {alias:?} is not configured on this gateway"),
                )
            })?;
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
    };
    Ok(Resolved {
        provider_name: provider,
        model,
        backend,
    })
}

/// The client-facing error for an upstream that could not be reached or read.
pub fn unreachable(detail: &str) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamError,
        format!("the upstream provider failed: {detail}"),
    )
}

/// The client-facing error for an upstream that sent no headers within the deadline.
pub fn timed_out(timeout_ms: u32) -> GatewayError {
    GatewayError::new(
        ErrorKind::UpstreamTimeout,
        format!("the upstream provider did not answer within {timeout_ms} ms"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigSource;

    struct Vars(&'static str);

    impl ConfigSource for Vars {
        fn var(&self, name: &str) -> Option<String> {
            match name {
                "PROVIDERS" => Some(
                    r#"{"up": {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_secret": "K"}}"#.into(),
                ),
                "ROUTES" => Some(
                    r#"{"mock": {"provider": "mock"}, "fast": {"provider": "up", "model": "gpt-x"}}"#.into(),
                ),
                _ => None,
            }
        }
        fn secret(&self, name: &str) -> Option<String> {
            (name == "K" && !self.0.is_empty()).then(|| self.0.to_owned())
        }
    }

    #[test]
    fn aliases_resolve_to_their_provider_and_model() {
        let config = Config::load(&Vars("sk-x")).unwrap();
        let resolved = resolve(&config, "fast").unwrap();
        assert_eq!((resolved.provider_name, resolved.model), ("up", "gpt-x"));
        assert!(matches!(resolved.backend, Backend::Http(_)));
        assert!(matches!(
            resolve(&config, "mock").unwrap().backend,
            Backend::Mock(_)
        ));
    }

    #[test]
    fn unknown_models_are_404_and_unconfigured_providers_503() {
        let config = Config::load(&Vars("")).unwrap();
        let err = resolve(&config, "gpt-5").err().unwrap();
        assert_eq!((err.status(), err.code()), (404, "model_not_found"));
        assert_eq!(err.param.as_deref(), Some("model"));
        let err = resolve(&config, "fast").err().unwrap();
        assert_eq!((err.status(), err.code()), (503, "provider_not_configured"));
    }
}
