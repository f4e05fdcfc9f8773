//! The providers (`PROVIDERS`) and model aliases (`ROUTES`) as configured: read, checked
//! and resolved against each other once per isolate.

use serde::Deserialize;

use super::routing::{AutoRoute, ModelRoute, RouteTarget};
use crate::config::source::{is_loopback_http, Reader, Secret};
use crate::sorted_map::SortedMap;

/// One upstream provider.
#[derive(Debug, Clone, PartialEq)]
pub enum ProviderConfig {
    /// The built-in mock; always present under the name `mock`.
    Mock,
    /// A provider reached over HTTP.
    Http {
        /// Which wire format it speaks.
        kind: HttpKind,
        /// Base URL up to and including the version, e.g. `https://api.openai.com/v1`.
        base_url: String,
        /// Name of the secret that holds the API key.
        api_key_secret: String,
        /// The key, or `None` when the secret is not set (the provider is then unusable).
        api_key: Option<Secret>,
        /// `max_tokens` sent when the client names none (Anthropic requires one).
        default_max_tokens: u32,
    },
}

/// The wire format of an HTTP provider (`type` in `PROVIDERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpKind {
    /// `openai`: OpenAI Chat Completions (OpenAI, vLLM, Ollama, Groq, ...).
    OpenAi,
    /// `anthropic`: the Anthropic Messages API.
    Anthropic,
    /// `gemini`: Google Gemini `generateContent`.
    Gemini,
}

impl ProviderConfig {
    /// Whether the provider makes embeddings (Anthropic has no embeddings API).
    pub fn serves_embeddings(&self) -> bool {
        !matches!(
            self,
            ProviderConfig::Http {
                kind: HttpKind::Anthropic,
                ..
            }
        )
    }

    /// Whether the provider has everything it needs to serve requests.
    pub fn is_usable(&self) -> bool {
        match self {
            ProviderConfig::Mock => true,
            ProviderConfig::Http { api_key, .. } => api_key.is_some(),
        }
    }
}

/// The routes used when `ROUTES` is not set: `mock` answers without any keys.
pub const DEFAULT_ROUTES: &str = r#"{"mock": {"provider": "mock", "model": "mock"}}"#;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderEntry {
    #[serde(rename = "type")]
    kind: String,
    base_url: Option<String>,
    api_key_secret: Option<String>,
    default_max_tokens: Option<u32>,
}

/// One `ROUTES` entry: a single target (`provider`, `model`), a chain (`targets`) or the
/// `auto` rule.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteEntry {
    provider: Option<String>,
    model: Option<String>,
    targets: Option<Vec<TargetEntry>>,
    auto: Option<AutoEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetEntry {
    provider: String,
    model: Option<String>,
    weight: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AutoEntry {
    simple: String,
    complex: String,
    max_simple_prompt_tokens: Option<u64>,
}

/// `PROVIDERS`, plus the built-in `mock`; a provider whose key secret is not set is kept,
/// disabled, with a warning.
pub fn load_providers(r: &mut Reader) -> SortedMap<String, ProviderConfig> {
    let mut providers = SortedMap::from([("mock".to_owned(), ProviderConfig::Mock)]);
    let entries: SortedMap<String, ProviderEntry> = r.json("PROVIDERS", "{}");
    for (name, entry) in entries {
        match provider_from_entry(&name, entry, r) {
            Ok(provider) => {
                if !provider.is_usable() {
                    r.warn(format!(
                        "provider {name:?} is disabled: its API key secret is not set"
                    ));
                }
                providers.insert(name, provider);
            }
            Err(problem) => r.error(problem),
        }
    }
    providers
}

/// `ROUTES`, checked against the `providers`.
pub fn load_routes(
    r: &mut Reader,
    providers: &SortedMap<String, ProviderConfig>,
) -> SortedMap<String, ModelRoute> {
    let entries: SortedMap<String, RouteEntry> = r.json("ROUTES", DEFAULT_ROUTES);
    let mut routes = SortedMap::new();
    let mut autos = Vec::new();
    for (alias, entry) in entries {
        let targets = match entry {
            RouteEntry {
                provider: Some(provider),
                model,
                targets: None,
                auto: None,
            } => vec![TargetEntry {
                provider,
                model,
                weight: None,
            }],
            RouteEntry {
                provider: None,
                model: None,
                targets: Some(targets),
                auto: None,
            } if !targets.is_empty() => targets,
            RouteEntry {
                provider: None,
                model: None,
                targets: None,
                auto: Some(auto),
            } => {
                autos.push((alias, auto));
                continue;
            }
            _ => {
                r.error(format!(
                    "ROUTES.{alias} must have either \"provider\" (and \"model\"), a non-empty \"targets\" list, or \"auto\""
                ));
                continue;
            }
        };
        let mut chain = Vec::with_capacity(targets.len());
        for (index, target) in targets.into_iter().enumerate() {
            if !providers.contains_key(&target.provider) {
                r.error(format!(
                    "ROUTES.{alias} target {index} names provider {:?}, which PROVIDERS does not define",
                    target.provider
                ));
                continue;
            }
            chain.push(RouteTarget {
                model: target.model.unwrap_or_else(|| alias.clone()),
                provider: target.provider,
                weight: target.weight,
            });
        }
        routes.insert(alias, ModelRoute::Chain(chain));
    }
    for (alias, auto) in autos {
        for (field, target) in [("simple", &auto.simple), ("complex", &auto.complex)] {
            if !matches!(routes.get(target), Some(ModelRoute::Chain(_))) {
                r.error(format!(
                    "ROUTES.{alias}.auto.{field} names {target:?}, which is not a provider route in ROUTES"
                ));
            }
        }
        let route = AutoRoute {
            simple: auto.simple,
            complex: auto.complex,
            max_simple_prompt_tokens: auto.max_simple_prompt_tokens.unwrap_or(1_000),
        };
        routes.insert(alias, ModelRoute::Auto(route));
    }
    routes
}

/// One `PROVIDERS` entry, its key read from the secret it names.
fn provider_from_entry(
    name: &str,
    entry: ProviderEntry,
    r: &Reader,
) -> Result<ProviderConfig, String> {
    if name == "mock" {
        return Err("PROVIDERS.mock: the name `mock` is reserved for the built-in mock".into());
    }
    let kind = match entry.kind.as_str() {
        "openai" => HttpKind::OpenAi,
        "anthropic" => HttpKind::Anthropic,
        "gemini" => HttpKind::Gemini,
        other => {
            return Err(format!(
                "PROVIDERS.{name}.type {other:?} is not supported (supported: \"openai\", \"anthropic\", \"gemini\")"
            ))
        }
    };
    let base_url = entry
        .base_url
        .ok_or_else(|| format!("PROVIDERS.{name}.base_url is required"))?;
    let base_url =
        validate_base_url(&base_url).map_err(|why| format!("PROVIDERS.{name}.base_url {why}"))?;
    let api_key_secret = entry
        .api_key_secret
        .ok_or_else(|| format!("PROVIDERS.{name}.api_key_secret is required"))?;
    let api_key = r
        .secret(&api_key_secret)
        .filter(|key| !key.expose().trim().is_empty());
    let default_max_tokens = entry.default_max_tokens.unwrap_or(4096);
    if default_max_tokens == 0 {
        return Err(format!(
            "PROVIDERS.{name}.default_max_tokens must be at least 1"
        ));
    }
    Ok(ProviderConfig::Http {
        kind,
        base_url,
        api_key_secret,
        api_key,
        default_max_tokens,
    })
}

/// Accepts `https://` URLs (plain `http://` to loopback only: the provider key travels
/// with every call) without query, fragment or credentials, and drops a trailing slash
/// so paths can be appended.
fn validate_base_url(url: &str) -> Result<String, &'static str> {
    let rest = match url.strip_prefix("https://") {
        Some(rest) => rest,
        None if is_loopback_http(url) => &url["http://".len()..],
        None if url.starts_with("http://") => {
            return Err("must be https (http only to 127.0.0.1, localhost or [::1]): the provider key goes with every call")
        }
        None => return Err("must start with https://"),
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err("has no host");
    }
    if host.contains('@') {
        return Err("must not carry credentials; use api_key_secret");
    }
    if url.contains(['?', '#', ' ']) {
        return Err("must not contain a query, a fragment or spaces");
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_checked() {
        assert_eq!(
            validate_base_url("http://127.0.0.1:8080/v1/").unwrap(),
            "http://127.0.0.1:8080/v1"
        );
        assert!(validate_base_url("https://user:pw@host/v1").is_err());
        assert!(validate_base_url("https:///v1").is_err());
        assert!(validate_base_url("https://host/v1?key=1").is_err());
        assert!(validate_base_url("api.openai.com").is_err());
        assert!(
            validate_base_url("http://api.openai.com/v1").is_err(),
            "a key in clear text"
        );
        assert!(validate_base_url("http://127.0.0.1.evil.example/v1").is_err());
        assert!(validate_base_url("http://localhost:11434/v1").is_ok());
        assert!(validate_base_url("http://[::1]:8000").is_ok());
    }
}
