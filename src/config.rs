//! Typed configuration, read from Worker vars and secrets and validated once per isolate.
//!
//! Loading never panics: every problem is collected into [`ConfigErrors`] so `/readyz` can
//! list them all at once, and requests are answered with 503 `config_invalid` until the
//! configuration is fixed. Secrets are held in [`Secret`], whose `Debug` hides the value,
//! so a config dumped into a log line cannot leak them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::auth::cors::CorsPolicy;
use crate::auth::jwt::{parse_jwks, Algorithm, ClaimPolicy, PublicKey};
use crate::auth::TeamSettings;
use crate::cache::{CacheConfig, CacheMode, CacheScope};
use crate::guard::injection::InjectionPolicy;
use crate::guard::prompt::PromptPolicy;
use crate::jobs::callback::CallbackPolicy;
use crate::jobs::JobsConfig;
use crate::limit::price::{PriceTable, DEFAULT_PRICES};
use crate::limit::{RateLimitConfig, DEFAULT_RATE_LIMITS};
use crate::observe::log::LogLevel;
use crate::resilience::breaker::BreakerPolicy;
use crate::resilience::retry::RetryPolicy;
use crate::resilience::ResiliencePolicy;
pub use crate::upstream::routing::{AutoRoute, ModelRoute, RouteTarget};

/// Where configuration values come from: Worker vars and secrets on the platform, a map in
/// tests.
pub trait ConfigSource {
    /// A plain var, as text (JSON-valued vars arrive serialized).
    fn var(&self, name: &str) -> Option<String>;
    /// A secret set with `wrangler secret put` (or `.dev.vars` locally).
    fn secret(&self, name: &str) -> Option<String>;
}

/// A secret value. Only [`Secret::expose`] reveals it; `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (an upstream `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The default `MAX_MESSAGE_CHARS`: the longest text the guards are built to scan in one
/// message (their property tests go up to it).
pub const DEFAULT_MAX_MESSAGE_CHARS: usize = 200_000;

/// Bounds on what a client may send.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLimits {
    /// `MAX_BODY_BYTES`: largest accepted request body.
    pub max_body_bytes: usize,
    /// `MAX_MESSAGES`: most messages in one request.
    pub max_messages: usize,
    /// `MAX_MESSAGE_CHARS`: longest text of one message, in characters.
    pub max_message_chars: usize,
    /// `MAX_OUTPUT_TOKENS`: highest `max_tokens` a client may ask for.
    pub max_output_tokens: u32,
}

/// How the built-in mock provider answers.
#[derive(Debug, Clone, PartialEq)]
pub struct MockSettings {
    /// `MOCK_CHUNKS`: how many content chunks a streamed answer has.
    pub chunks: u32,
    /// `MOCK_CHUNK_DELAY_MS`: pause before each chunk.
    pub chunk_delay_ms: u32,
}

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
    /// Whether the provider has everything it needs to serve requests.
    pub fn is_usable(&self) -> bool {
        match self {
            ProviderConfig::Mock => true,
            ProviderConfig::Http { api_key, .. } => api_key.is_some(),
        }
    }
}

/// How JWTs from the app's identity provider are verified.
#[derive(Debug, Clone, PartialEq)]
pub struct JwtConfig {
    /// `JWT_ALGORITHMS`: accepted algorithms (default: those with key material).
    pub algorithms: Vec<Algorithm>,
    /// The `JWT_HS256_SECRET` secret (at least 32 bytes).
    pub hs256_secret: Option<Secret>,
    /// `JWT_JWKS_URL`: where public keys are fetched.
    pub jwks_url: Option<String>,
    /// `JWT_JWKS`: public keys given inline.
    pub inline_keys: Vec<PublicKey>,
    /// Claim checks and mapping.
    pub policy: ClaimPolicy,
    /// `JWKS_CACHE_SECONDS`: how long fetched keys are trusted.
    pub jwks_cache_s: u32,
    /// `JWKS_REFRESH_COOLDOWN_SECONDS`: least time between two fetches of the JWKS, so
    /// tokens with made-up `kid`s cannot flood the identity provider.
    pub jwks_refresh_cooldown_s: u32,
}

/// The whole, validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Request bounds.
    pub limits: RequestLimits,
    /// Retries, timeouts, circuit breakers and graceful degradation.
    pub resilience: ResiliencePolicy,
    /// The response cache.
    pub cache: CacheConfig,
    /// `SANITIZE_INPUT`: remove invisible characters and chat-template tokens from
    /// client text before it reaches a provider.
    pub sanitize_input: bool,
    /// The server's system prompt and what clients may do to it.
    pub prompt: PromptPolicy,
    /// `PROMPT_INJECTION`: what happens to a likely prompt injection, per tier.
    pub injection: InjectionPolicy,
    /// `REDACT_PII`: where personal data and secrets are replaced with markers.
    pub redact_pii: PiiRedaction,
    /// `LOG_LEVEL`: the least serious log lines written.
    pub log_level: LogLevel,
    /// `METRICS_SHARDS`: how many metrics Durable Objects share the isolates' batches.
    pub metrics_shards: u32,
    /// Mock provider behaviour.
    pub mock: MockSettings,
    /// Providers by name (`PROVIDERS`, plus the built-in `mock`).
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Model aliases (`ROUTES`).
    pub routes: BTreeMap<String, ModelRoute>,
    /// Browser origins allowed besides the gateway's own (`CORS_ALLOWED_ORIGINS`).
    pub cors: CorsPolicy,
    /// Models callers without a key may use (`ANONYMOUS_MODELS`; empty: none).
    pub anonymous_models: Vec<String>,
    /// `API_KEY_CACHE_TTL_SECONDS`: how long an isolate trusts a key lookup.
    pub api_key_cache_ttl_s: u32,
    /// The `ADMIN_TOKEN` secret; the admin API is off without it.
    pub admin_token: Option<Secret>,
    /// JWT authentication, when a secret or a JWKS is configured.
    pub jwt: Option<JwtConfig>,
    /// Per-team settings (`TEAMS`).
    pub teams: BTreeMap<String, TeamSettings>,
    /// Limits per tier (`RATE_LIMITS`).
    pub rate_limits: RateLimitConfig,
    /// Prices per upstream model (`PRICES`).
    pub prices: PriceTable,
    /// Asynchronous jobs and their webhooks.
    pub jobs: JobsConfig,
    /// The `WEBHOOK_SIGNING_SECRET` webhooks are signed with; without it, submissions with
    /// a `callback_url` are refused.
    pub webhook_secret: Option<Secret>,
    /// Problems that do not stop the gateway (a provider whose secret is missing).
    pub warnings: Vec<String>,
}

/// Where personal data is redacted (`REDACT_PII`: `output`, `both` or `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiRedaction {
    /// In answers, streamed or not.
    pub output: bool,
    /// In requests, before they go upstream.
    pub input: bool,
}

/// Everything wrong with a configuration, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

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

impl Config {
    /// Reads and validates the configuration; collects every problem instead of stopping at
    /// the first.
    pub fn load(source: &dyn ConfigSource) -> Result<Config, ConfigErrors> {
        let mut r = Reader {
            source,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        let limits = RequestLimits {
            max_body_bytes: r.number("MAX_BODY_BYTES", 1_048_576, 1_024, 100 * 1_048_576) as usize,
            max_messages: r.number("MAX_MESSAGES", 256, 1, 100_000) as usize,
            max_message_chars: r.number(
                "MAX_MESSAGE_CHARS",
                DEFAULT_MAX_MESSAGE_CHARS as u32,
                1,
                100_000_000,
            ) as usize,
            max_output_tokens: r.number("MAX_OUTPUT_TOKENS", 32_768, 1, 10_000_000),
        };
        let resilience = load_resilience(&mut r);
        let cache = load_cache(&mut r);
        let log_level = r.choice(
            "LOG_LEVEL",
            &[
                ("info", LogLevel::Info),
                ("warn", LogLevel::Warn),
                ("error", LogLevel::Error),
            ],
        );
        let metrics_shards = r.number("METRICS_SHARDS", 4, 1, 64);
        let sanitize_input = r.choice("SANITIZE_INPUT", &[("true", true), ("false", false)]);
        let (output, input) = r.choice(
            "REDACT_PII",
            &[
                ("off", (false, false)),
                ("output", (true, false)),
                ("both", (true, true)),
            ],
        );
        let redact_pii = PiiRedaction { output, input };
        let prompt = PromptPolicy {
            system_prompt: source
                .var("SYSTEM_PROMPT")
                .filter(|prompt| !prompt.trim().is_empty()),
            client_system_messages: r.choice(
                "CLIENT_SYSTEM_MESSAGES",
                &[("allow", true), ("refuse", false)],
            ),
            encapsulate: r.choice(
                "ENCAPSULATE_USER_CONTENT",
                &[("false", false), ("true", true)],
            ),
        };
        let injection = match source.var("PROMPT_INJECTION") {
            Some(text) => InjectionPolicy::parse(&text).unwrap_or_else(|problem| {
                r.errors.push(problem);
                InjectionPolicy::default()
            }),
            None => InjectionPolicy::default(),
        };
        let api_key_cache_ttl_s = r.number("API_KEY_CACHE_TTL_SECONDS", 30, 0, 3_600);
        let mock = MockSettings {
            chunks: r.number("MOCK_CHUNKS", 8, 1, 10_000),
            chunk_delay_ms: r.number("MOCK_CHUNK_DELAY_MS", 25, 0, 60_000),
        };

        let mut providers = BTreeMap::from([("mock".to_owned(), ProviderConfig::Mock)]);
        let provider_entries: BTreeMap<String, ProviderEntry> =
            parse_json_var(source, "PROVIDERS", "{}", &mut r.errors);
        for (name, entry) in provider_entries {
            match provider_from_entry(&name, entry, source) {
                Ok(provider) => {
                    if !provider.is_usable() {
                        r.warnings.push(format!(
                            "provider {name:?} is disabled: its API key secret is not set"
                        ));
                    }
                    providers.insert(name, provider);
                }
                Err(problem) => r.errors.push(problem),
            }
        }

        let route_entries: BTreeMap<String, RouteEntry> =
            parse_json_var(source, "ROUTES", DEFAULT_ROUTES, &mut r.errors);
        let routes = load_routes(route_entries, &providers, &mut r.errors);
        let cors = CorsPolicy::parse(&source.var("CORS_ALLOWED_ORIGINS").unwrap_or_default())
            .unwrap_or_else(|problem| {
                r.errors.push(problem);
                CorsPolicy::default()
            });
        let anonymous_models: Vec<String> = source
            .var("ANONYMOUS_MODELS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|model| !model.is_empty())
            .map(str::to_owned)
            .collect();
        for model in &anonymous_models {
            if !routes.contains_key(model) {
                r.errors.push(format!(
                    "ANONYMOUS_MODELS names {model:?}, which ROUTES does not define"
                ));
            }
        }
        let admin_token = r.long_secret("ADMIN_TOKEN", "characters");
        let jwt = load_jwt(&mut r);
        let jobs = load_jobs(&mut r);
        let webhook_secret = r.long_secret("WEBHOOK_SIGNING_SECRET", "characters");
        let teams: BTreeMap<String, TeamSettings> =
            parse_json_var(source, "TEAMS", "{}", &mut r.errors);
        for (team, settings) in &teams {
            for model in settings.models.iter().flatten() {
                if !routes.contains_key(model) {
                    r.errors.push(format!(
                        "TEAMS.{team}.models names {model:?}, which ROUTES does not define"
                    ));
                }
            }
        }
        let rate_limits: Option<RateLimitConfig> =
            parse_json_var(source, "RATE_LIMITS", DEFAULT_RATE_LIMITS, &mut r.errors);
        if let Some(rate_limits) = &rate_limits {
            r.errors.extend(rate_limits.problems());
        }
        let prices: PriceTable = parse_json_var(source, "PRICES", DEFAULT_PRICES, &mut r.errors);
        for (model, price) in &prices {
            if let Some(problem) = price.problem() {
                r.errors.push(format!("PRICES.{model}: {problem}"));
            }
        }
        let targets = routes.values().flat_map(|route| match route {
            ModelRoute::Chain(targets) => targets.as_slice(),
            ModelRoute::Auto(_) => &[],
        });
        for target in targets {
            if target.provider != "mock" && !prices.contains_key(&target.model) {
                r.warnings.push(format!(
                    "PRICES has no price for model {:?}: its cost counts as 0 against budgets",
                    target.model
                ));
            }
        }
        if routes.is_empty() && r.errors.is_empty() {
            r.errors.push("ROUTES defines no model".to_owned());
        }

        if let (true, Some(rate_limits)) = (r.errors.is_empty(), rate_limits) {
            Ok(Config {
                limits,
                resilience,
                cache,
                log_level,
                metrics_shards,
                sanitize_input,
                redact_pii,
                prompt,
                injection,
                mock,
                providers,
                routes,
                cors,
                anonymous_models,
                api_key_cache_ttl_s,
                admin_token,
                jwt,
                teams,
                rate_limits,
                prices,
                jobs,
                webhook_secret,
                warnings: r.warnings,
            })
        } else {
            Err(ConfigErrors(r.errors))
        }
    }

    /// The aliases that can serve requests now (at least one target's provider is usable),
    /// sorted, each with the provider that serves it first (`auto` for the auto rule).
    pub fn usable_models(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes.iter().filter_map(|(alias, route)| {
            let owner = match route {
                ModelRoute::Chain(_) => self.usable_targets(alias).next()?.provider.as_str(),
                ModelRoute::Auto(_) => {
                    self.usable_targets(alias).next()?;
                    "auto"
                }
            };
            Some((alias.as_str(), owner))
        })
    }

    /// The targets of `alias` whose provider is usable, in configured order; for an `auto`
    /// alias, those of its `simple` alias and then of its `complex` alias.
    pub fn usable_targets<'a>(&'a self, alias: &str) -> impl Iterator<Item = &'a RouteTarget> {
        let chains: Vec<&'a [RouteTarget]> = match self.routes.get(alias) {
            Some(ModelRoute::Chain(targets)) => vec![targets],
            Some(ModelRoute::Auto(auto)) => [&auto.simple, &auto.complex]
                .into_iter()
                .filter_map(|alias| match self.routes.get(alias) {
                    Some(ModelRoute::Chain(targets)) => Some(targets.as_slice()),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        chains.into_iter().flatten().filter(|target| {
            self.providers
                .get(&target.provider)
                .is_some_and(ProviderConfig::is_usable)
        })
    }
}

/// Validates `ROUTES` entries into routes; every problem goes to `errors`.
fn load_routes(
    entries: BTreeMap<String, RouteEntry>,
    providers: &BTreeMap<String, ProviderConfig>,
    errors: &mut Vec<String>,
) -> BTreeMap<String, ModelRoute> {
    let mut routes = BTreeMap::new();
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
                errors.push(format!(
                    "ROUTES.{alias} must have either \"provider\" (and \"model\"), a non-empty \"targets\" list, or \"auto\""
                ));
                continue;
            }
        };
        let mut chain = Vec::with_capacity(targets.len());
        for (index, target) in targets.into_iter().enumerate() {
            if !providers.contains_key(&target.provider) {
                errors.push(format!(
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
                errors.push(format!(
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

/// The response cache's settings.
fn load_cache(r: &mut Reader) -> CacheConfig {
    let mode = r.choice(
        "CACHE_MODE",
        &[
            ("deterministic", CacheMode::Deterministic),
            ("all", CacheMode::All),
            ("off", CacheMode::Off),
        ],
    );
    let scope = r.choice(
        "CACHE_SCOPE",
        &[
            ("principal", CacheScope::Principal),
            ("team", CacheScope::Team),
            ("global", CacheScope::Global),
        ],
    );
    CacheConfig {
        mode,
        scope,
        ttl_s: r.number("CACHE_TTL_SECONDS", 3_600, 1, 30 * 86_400),
        l1_bytes: r.number("CACHE_L1_BYTES", 8 << 20, 0, 64 << 20) as usize,
        l1_ttl_s: r.number("CACHE_L1_TTL_SECONDS", 60, 1, 86_400),
        max_entry_bytes: r.number("CACHE_MAX_ENTRY_BYTES", 1 << 20, 1_024, 20 << 20) as usize,
        truncated_answers: r.choice(
            "CACHE_TRUNCATED_ANSWERS",
            &[("false", false), ("true", true)],
        ),
    }
}

/// The retry, timeout, breaker and degradation settings.
fn load_resilience(r: &mut Reader) -> ResiliencePolicy {
    let retry = RetryPolicy {
        retries: r.number("UPSTREAM_RETRIES", 2, 0, 10),
        base_delay_ms: r.number("RETRY_BASE_DELAY_MS", 250, 0, 60_000),
        max_delay_ms: r.number("RETRY_MAX_DELAY_MS", 8_000, 0, 600_000),
    };
    let breaker = BreakerPolicy {
        consecutive_failures: r.number("BREAKER_CONSECUTIVE_FAILURES", 5, 0, 1_000),
        failure_rate_percent: r.number("BREAKER_FAILURE_RATE_PERCENT", 50, 0, 100),
        min_requests: r.number("BREAKER_MIN_REQUESTS", 20, 1, 100_000),
        window_ms: u64::from(r.number("BREAKER_WINDOW_SECONDS", 60, 1, 86_400)) * 1_000,
        cooldown_ms: u64::from(r.number("BREAKER_COOLDOWN_SECONDS", 30, 1, 86_400)) * 1_000,
    };
    ResiliencePolicy {
        retry,
        ttfb_timeout_ms: r.number("UPSTREAM_TTFB_TIMEOUT_MS", 30_000, 1, 600_000),
        idle_timeout_ms: r.number("UPSTREAM_IDLE_TIMEOUT_MS", 30_000, 1, 600_000),
        total_timeout_ms: r.number("UPSTREAM_TOTAL_TIMEOUT_MS", 300_000, 1, 3_600_000),
        breaker,
        degraded_message: r
            .source
            .var("DEGRADED_MESSAGE")
            .filter(|message| !message.trim().is_empty()),
    }
}

/// The jobs settings.
fn load_jobs(r: &mut Reader) -> JobsConfig {
    let callbacks =
        CallbackPolicy::parse(&r.source.var("WEBHOOK_ALLOWED_HOSTS").unwrap_or_default())
            .unwrap_or_else(|problem| {
                r.errors.push(problem);
                CallbackPolicy::default()
            });
    JobsConfig {
        ttl_s: r.number("JOB_TTL_SECONDS", 86_400, 1, 30 * 86_400),
        retry_base_delay_s: r.number("JOB_RETRY_BASE_DELAY_SECONDS", 10, 0, 3_600),
        retry_max_delay_s: r.number("JOB_RETRY_MAX_DELAY_SECONDS", 300, 0, 43_200),
        webhook_timeout_ms: r.number("WEBHOOK_TIMEOUT_MS", 10_000, 1, 60_000),
        callbacks,
    }
}

/// A secret, or `None` when unset or empty (as in a copied `.dev.vars.example`).
fn secret(source: &dyn ConfigSource, name: &str) -> Option<Secret> {
    source
        .secret(name)
        .filter(|value| !value.is_empty())
        .map(Secret::new)
}

/// Reads vars, collecting every problem.
struct Reader<'a> {
    source: &'a dyn ConfigSource,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Reader<'_> {
    /// The var `name`, one of `choices` (the first is the default).
    fn choice<T: Copy>(&mut self, name: &str, choices: &[(&str, T)]) -> T {
        let default = choices[0].1;
        let Some(text) = self.source.var(name) else {
            return default;
        };
        match choices.iter().find(|(label, _)| *label == text.trim()) {
            Some((_, value)) => *value,
            None => {
                let labels: Vec<&str> = choices.iter().map(|(label, _)| *label).collect();
                self.errors.push(format!(
                    "{name} must be one of {}, got {text:?}",
                    labels.join(", ")
                ));
                default
            }
        }
    }

    /// The secret `name` (see [`secret`]). One shorter than 32 `unit` is an error: it could
    /// be guessed, and nothing it protects is started with it.
    fn long_secret(&mut self, name: &str, unit: &str) -> Option<Secret> {
        let secret = secret(self.source, name);
        if secret
            .as_ref()
            .is_some_and(|secret| secret.expose().len() < 32)
        {
            self.errors
                .push(format!("{name} must be at least 32 {unit}"));
        }
        secret
    }

    /// The integer var `name` within `min..=max`, or `default` when unset.
    fn number(&mut self, name: &str, default: u32, min: u32, max: u32) -> u32 {
        let Some(text) = self.source.var(name) else {
            return default;
        };
        match text.trim().parse::<u32>() {
            Ok(value) if (min..=max).contains(&value) => value,
            _ => {
                self.errors.push(format!(
                    "{name} must be an integer from {min} to {max}, got {text:?}"
                ));
                default
            }
        }
    }
}

/// The JWT settings, or `None` when no key material is configured.
fn load_jwt(r: &mut Reader) -> Option<JwtConfig> {
    let source = r.source;
    let text = |name: &str| source.var(name).filter(|value| !value.trim().is_empty());
    let hs256_secret = r.long_secret("JWT_HS256_SECRET", "bytes (RFC 7518)");
    let jwks_url = text("JWT_JWKS_URL");
    let inline = text("JWT_JWKS");
    if hs256_secret.is_none() && jwks_url.is_none() && inline.is_none() {
        return None;
    }
    if let Some(url) = &jwks_url {
        if !url.starts_with("https://") && !is_loopback_http(url) {
            r.errors
                .push("JWT_JWKS_URL must be https (http only on loopback)".to_owned());
        }
    }
    let mut inline_keys = Vec::new();
    if let Some(document) = &inline {
        match parse_jwks(document) {
            Ok((keys, skipped)) => {
                inline_keys = keys;
                r.warnings
                    .extend(skipped.into_iter().map(|why| format!("JWT_JWKS: {why}")));
            }
            Err(problem) => r.errors.push(format!("JWT_JWKS: {problem}")),
        }
    }
    let algorithms = match text("JWT_ALGORITHMS") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter_map(|name| {
                Algorithm::parse(name).or_else(|| {
                    r.errors.push(format!(
                        "JWT_ALGORITHMS: {name:?} is not HS256, RS256 or ES256"
                    ));
                    None
                })
            })
            .collect(),
        None => {
            let mut algorithms = Vec::new();
            if hs256_secret.is_some() {
                algorithms.push(Algorithm::Hs256);
            }
            if jwks_url.is_some() || inline.is_some() {
                algorithms.extend([Algorithm::Rs256, Algorithm::Es256]);
            }
            algorithms
        }
    };
    if algorithms.contains(&Algorithm::Hs256) && hs256_secret.is_none() {
        r.errors
            .push("JWT_ALGORITHMS allows HS256 but JWT_HS256_SECRET is not set".to_owned());
    }
    let issuer = text("JWT_ISSUER");
    let audience = text("JWT_AUDIENCE");
    if issuer.is_none() || audience.is_none() {
        r.warnings.push(
            "JWT_ISSUER or JWT_AUDIENCE is not set: tokens for other issuers or audiences signed \
             with an accepted key pass"
                .to_owned(),
        );
    }
    let claim = |name: &str, default: &str| text(name).unwrap_or_else(|| default.to_owned());
    Some(JwtConfig {
        algorithms,
        hs256_secret,
        jwks_url,
        inline_keys,
        policy: ClaimPolicy {
            issuer,
            audience,
            leeway_s: r.number("JWT_LEEWAY_SECONDS", 30, 0, 300).into(),
            user_claim: claim("JWT_USER_CLAIM", "sub"),
            tier_claim: claim("JWT_TIER_CLAIM", "tier"),
            team_claim: claim("JWT_TEAM_CLAIM", "team"),
            default_tier: claim("JWT_DEFAULT_TIER", "free"),
        },
        jwks_cache_s: r.number("JWKS_CACHE_SECONDS", 600, 0, 86_400),
        jwks_refresh_cooldown_s: r.number("JWKS_REFRESH_COOLDOWN_SECONDS", 60, 1, 3_600),
    })
}

fn parse_json_var<T: serde::de::DeserializeOwned + Default>(
    source: &dyn ConfigSource,
    name: &str,
    default: &str,
    errors: &mut Vec<String>,
) -> T {
    let text = source.var(name).unwrap_or_else(|| default.to_owned());
    match serde_json::from_str::<T>(&text) {
        Ok(value) => value,
        Err(err) => {
            // serde_json's message names the field and position, never the input itself.
            errors.push(format!("{name} is not valid: {err}"));
            T::default()
        }
    }
}

fn provider_from_entry(
    name: &str,
    entry: ProviderEntry,
    source: &dyn ConfigSource,
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
    let api_key = source
        .secret(&api_key_secret)
        .filter(|value| !value.trim().is_empty())
        .map(Secret::new);
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

/// Whether `url` is plain http to this machine (`127.0.0.1`, `localhost`, `[::1]`, any
/// port): the only place where a secret may travel unencrypted.
fn is_loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
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

/// Reads a JSON value as configuration text: strings as they are, anything else serialized.
pub fn json_var_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::injection::Action;
    use std::collections::HashMap;

    #[derive(Default)]
    struct MapSource {
        vars: HashMap<&'static str, &'static str>,
        secrets: HashMap<&'static str, &'static str>,
    }

    impl ConfigSource for MapSource {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| v.to_string())
        }
        fn secret(&self, name: &str) -> Option<String> {
            self.secrets.get(name).map(|v| v.to_string())
        }
    }

    fn source(vars: &[(&'static str, &'static str)]) -> MapSource {
        MapSource {
            vars: vars.iter().copied().collect(),
            ..MapSource::default()
        }
    }

    const OPENAI_PROVIDER: &str = r#"{"openai": {"type": "openai", "base_url": "https://api.openai.com/v1/", "api_key_secret": "OPENAI_API_KEY"}}"#;

    #[test]
    fn prompt_injection_policy_defaults_to_block_and_rejects_bad_values() {
        let config = Config::load(&MapSource::default()).unwrap();
        assert_eq!(config.injection, InjectionPolicy::default());
        let config = Config::load(&source(&[(
            "PROMPT_INJECTION",
            r#"{"action": "flag", "tiers": {"free": "block"}}"#,
        )]))
        .unwrap();
        assert_eq!(config.injection.action_for("pro"), Action::Flag);
        let errors = Config::load(&source(&[("PROMPT_INJECTION", "warn")]))
            .unwrap_err()
            .0;
        assert!(errors.iter().any(|e| e.starts_with("PROMPT_INJECTION")));
    }

    #[test]
    fn defaults_route_mock_to_the_built_in_mock() {
        let config = Config::load(&MapSource::default()).unwrap();
        assert_eq!(
            config.routes["mock"],
            ModelRoute::Chain(vec![RouteTarget {
                provider: "mock".into(),
                model: "mock".into(),
                weight: None,
            }])
        );
        assert_eq!(config.limits.max_body_bytes, 1_048_576);
        let resilience = &config.resilience;
        assert_eq!(resilience.ttfb_timeout_ms, 30_000);
        assert_eq!(resilience.retry.retries, 2);
        assert_eq!(resilience.breaker.cooldown_ms, 30_000);
        assert_eq!(resilience.degraded_message, None);
        assert_eq!(config.cache.mode, CacheMode::Deterministic);
        assert_eq!(config.cache.scope, CacheScope::Principal);
        assert_eq!((config.cache.ttl_s, config.cache.l1_ttl_s), (3_600, 60));
        let bad = Config::load(&source(&[("CACHE_MODE", "sometimes")])).unwrap_err();
        assert_eq!(
            bad.0,
            ["CACHE_MODE must be one of deterministic, all, off, got \"sometimes\""]
        );
        assert!(config.anonymous_models.is_empty(), "deny by default");
        assert!(config.admin_token.is_none());
        assert!(config.warnings.is_empty());
        assert_eq!(
            config.usable_models().collect::<Vec<_>>(),
            [("mock", "mock")]
        );
    }

    #[test]
    fn openai_provider_reads_its_key_from_the_named_secret() {
        let mut src = source(&[
            ("PROVIDERS", OPENAI_PROVIDER),
            (
                "ROUTES",
                r#"{"gpt-4o-mini": {"provider": "openai"}, "mock": {"provider": "mock"}}"#,
            ),
        ]);
        src.secrets.insert("OPENAI_API_KEY", "sk-test-123");
        let config = Config::load(&src).unwrap();
        let ProviderConfig::Http {
            base_url, api_key, ..
        } = &config.providers["openai"]
        else {
            panic!("openai provider expected");
        };
        assert_eq!(base_url, "https://api.openai.com/v1");
        assert_eq!(api_key.as_ref().map(Secret::expose), Some("sk-test-123"));
        let targets: Vec<_> = config.usable_targets("gpt-4o-mini").collect();
        assert_eq!(targets[0].model, "gpt-4o-mini");
        assert!(
            !format!("{config:?}").contains("sk-test-123"),
            "Debug hides secrets"
        );
    }

    #[test]
    fn a_missing_secret_disables_the_provider_with_a_warning() {
        let src = source(&[
            ("PROVIDERS", OPENAI_PROVIDER),
            (
                "ROUTES",
                r#"{"gpt": {"provider": "openai"}, "mock": {"provider": "mock"}}"#,
            ),
        ]);
        let config = Config::load(&src).unwrap();
        assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
        assert!(config.warnings[0].contains("is disabled"));
        assert!(config.warnings[1].contains("no price for model \"gpt\""));
        assert_eq!(
            config.usable_models().collect::<Vec<_>>(),
            [("mock", "mock")]
        );
    }

    #[test]
    fn routes_are_single_targets_chains_or_auto_rules() {
        let mut src = source(&[
            ("PROVIDERS", OPENAI_PROVIDER),
            (
                "ROUTES",
                r#"{"mock": {"provider": "mock"},
                    "gpt-4o": {"targets": [{"provider": "openai", "weight": 3}, {"provider": "mock", "model": "m"}]},
                    "smart": {"auto": {"simple": "mock", "complex": "gpt-4o"}}}"#,
            ),
            ("DEGRADED_MESSAGE", "Busy, try again soon."),
        ]);
        src.secrets.insert("OPENAI_API_KEY", "sk-test-123");
        let config = Config::load(&src).unwrap();
        let ModelRoute::Chain(chain) = &config.routes["gpt-4o"] else {
            panic!("a chain expected");
        };
        assert_eq!(
            (chain[0].model.as_str(), chain[0].weight),
            ("gpt-4o", Some(3))
        );
        assert_eq!((chain[1].model.as_str(), chain[1].weight), ("m", None));
        let ModelRoute::Auto(auto) = &config.routes["smart"] else {
            panic!("an auto rule expected");
        };
        assert_eq!(auto.max_simple_prompt_tokens, 1_000);
        assert_eq!(
            config.usable_models().collect::<Vec<_>>(),
            [("gpt-4o", "openai"), ("mock", "mock"), ("smart", "auto")]
        );
        assert_eq!(
            config.resilience.degraded_message.as_deref(),
            Some("Busy, try again soon.")
        );

        let src = source(&[(
            "ROUTES",
            r#"{"a": {"provider": "mock", "targets": [{"provider": "mock"}]},
                "b": {"targets": []},
                "c": {"targets": [{"provider": "nope"}]},
                "d": {"auto": {"simple": "a", "complex": "e"}},
                "e": {"auto": {"simple": "d", "complex": "mock"}},
                "mock": {"provider": "mock"}}"#,
        )]);
        let errors = Config::load(&src).unwrap_err().0;
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].starts_with("ROUTES.a must have either"));
        assert!(errors[1].starts_with("ROUTES.b must have either"));
        assert!(errors[2].contains("ROUTES.c target 0 names provider \"nope\""));
        assert!(errors[3].contains("ROUTES.d.auto.simple names \"a\""));
        assert!(errors[4].contains("ROUTES.d.auto.complex names \"e\""));
        assert!(errors[5].contains("ROUTES.e.auto.simple"), "{errors:#?}");
    }

    #[test]
    fn rate_limits_and_prices_have_defaults_and_are_checked() {
        let config = Config::load(&source(&[])).unwrap();
        assert!(config.rate_limits.tiers.contains_key("free"));
        assert!(config.prices.contains_key("gpt-4o-mini"));
        let src = source(&[
            ("RATE_LIMITS", r#"{"tiers": {"pro": {"concurrent": 0}}}"#),
            ("PRICES", r#"{"mock": {"input": -1, "output": 0}}"#),
        ]);
        let errors = Config::load(&src).unwrap_err().0;
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("tiers.pro.concurrent")));
        assert!(errors.iter().any(|e| e.contains("must define `free`")));
        assert!(errors.iter().any(|e| e.starts_with("PRICES.mock")));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let src = source(&[
            ("MAX_BODY_BYTES", "lots"),
            ("MOCK_CHUNKS", "0"),
            (
                "PROVIDERS",
                r#"{"x": {"type": "smoke-signals"}, "y": {"type": "openai", "base_url": "ftp://h", "api_key_secret": "K"}}"#,
            ),
            ("ROUTES", r#"{"a": {"provider": "nowhere"}}"#),
        ]);
        let ConfigErrors(errors) = Config::load(&src).unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:#?}");
        assert!(errors[0].contains("MAX_BODY_BYTES"));
        assert!(errors.iter().any(|e| e.contains("smoke-signals")));
        assert!(errors.iter().any(|e| e.contains("https://")));
        assert!(errors.iter().any(|e| e.contains("nowhere")));
    }

    #[test]
    fn anonymous_models_must_exist_and_admin_tokens_be_long() {
        let src = source(&[("ANONYMOUS_MODELS", "mock, nope")]);
        let ConfigErrors(errors) = Config::load(&src).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("nope"));
        let mut src = source(&[("ANONYMOUS_MODELS", "mock")]);
        src.secrets.insert("ADMIN_TOKEN", "");
        assert!(
            Config::load(&src).unwrap().admin_token.is_none(),
            "empty means unset"
        );
        src.secrets.insert("ADMIN_TOKEN", "short");
        assert!(Config::load(&src).is_err());
        src.secrets
            .insert("ADMIN_TOKEN", "0123456789abcdef0123456789abcdef");
        let config = Config::load(&src).unwrap();
        assert_eq!(config.anonymous_models, ["mock"]);
        assert!(config.admin_token.is_some());
    }

    #[test]
    fn jwt_is_off_without_key_material_and_checked_with_it() {
        assert!(Config::load(&MapSource::default()).unwrap().jwt.is_none());
        let mut src = source(&[
            (
                "JWT_JWKS_URL",
                "https://id.example.com/.well-known/jwks.json",
            ),
            ("JWT_ISSUER", "https://id.example.com/"),
            ("JWT_AUDIENCE", "gateway"),
        ]);
        src.secrets
            .insert("JWT_HS256_SECRET", "0123456789abcdef0123456789abcdef");
        let jwt = Config::load(&src).unwrap().jwt.unwrap();
        assert_eq!(
            jwt.algorithms,
            [Algorithm::Hs256, Algorithm::Rs256, Algorithm::Es256]
        );
        assert_eq!(jwt.policy.leeway_s, 30);
        assert_eq!(jwt.policy.user_claim, "sub");

        let mut weak = source(&[
            ("JWT_JWKS_URL", "http://id.example.com/jwks"),
            ("JWT_ALGORITHMS", "HS256,none"),
        ]);
        weak.secrets.insert("JWT_HS256_SECRET", "short");
        let ConfigErrors(errors) = Config::load(&weak).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(Config::load(&source(&[("JWT_JWKS_URL", "http://127.0.0.1:9/jwks")])).is_ok());
    }

    #[test]
    fn teams_are_parsed_and_their_models_checked() {
        let config = Config::load(&source(&[(
            "TEAMS",
            r#"{"red": {"tier": "pro", "models": ["mock"]}}"#,
        )]))
        .unwrap();
        assert_eq!(config.teams["red"].tier.as_deref(), Some("pro"));
        assert!(Config::load(&source(&[("TEAMS", r#"{"red": {"models": ["gpt-9"]}}"#)])).is_err());
        assert!(Config::load(&source(&[("TEAMS", r#"{"red": {"budget": 5}}"#)])).is_err());
    }

    #[test]
    fn malformed_json_vars_are_errors_not_panics() {
        for bad in [
            "{",
            "[]",
            "{\"a\": 1}",
            "{\"a\": {\"provider\": \"mock\", \"extra\": 1}}",
        ] {
            let src = source(&[("ROUTES", bad)]);
            assert!(Config::load(&src).is_err(), "{bad}");
        }
    }

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

    #[test]
    fn json_vars_arrive_as_text_or_objects() {
        assert_eq!(json_var_text(&serde_json::json!("{}")), "{}");
        assert_eq!(json_var_text(&serde_json::json!({"a": 1})), "{\"a\":1}");
    }
}
