//! Typed configuration, read from Worker vars and secrets and validated once per isolate.
//!
//! Loading never panics: every problem is collected into [`ConfigErrors`] so `/readyz` can
//! list them all at once, and requests are answered with 503 `config_invalid` until the
//! configuration is fixed. Secrets are held in [`Secret`], whose `Debug` hides the value,
//! so a config dumped into a log line cannot leak them.

pub mod source;

pub use self::source::{json_var_text, ConfigSource, Reader, Secret};

use crate::auth::cors::CorsPolicy;
pub use crate::auth::jwt::JwtConfig;
use crate::auth::{load_anonymous_models, load_teams, TeamSettings};
use crate::cache::CacheConfig;
use crate::guard::injection::InjectionPolicy;
pub use crate::guard::pii::PiiRedaction;
use crate::guard::prompt::PromptPolicy;
use crate::guard::validate::RequestLimits;
use crate::jobs::JobsConfig;
use crate::limit::price::{load_prices, PriceTable};
use crate::limit::RateLimitConfig;
use crate::observe::log::LogLevel;
use crate::observe::otlp::OtlpConfig;
use crate::resilience::ResiliencePolicy;
use crate::sorted_map::SortedMap;
pub use crate::upstream::mock::MockSettings;
pub use crate::upstream::routing::{AutoRoute, ModelRoute, RouteTarget};
use crate::upstream::settings::{load_providers, load_routes};
pub use crate::upstream::settings::{HttpKind, ProviderConfig};

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
    pub providers: SortedMap<String, ProviderConfig>,
    /// Model aliases (`ROUTES`).
    pub routes: SortedMap<String, ModelRoute>,
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
    pub teams: SortedMap<String, TeamSettings>,
    /// Limits per tier (`RATE_LIMITS`).
    pub rate_limits: RateLimitConfig,
    /// Prices per upstream model (`PRICES`).
    pub prices: PriceTable,
    /// Asynchronous jobs and their webhooks.
    pub jobs: JobsConfig,
    /// `RESPONSE_TTL_SECONDS`: how long a stored response (`POST /v1/responses` with
    /// `store`) can be read and continued.
    pub response_ttl_s: u32,
    /// `FEEDBACK_TTL_SECONDS`: how long the gateway remembers who made each answered
    /// request, so that its caller can rate it (`POST /v1/feedback`); 0 turns feedback off.
    pub feedback_ttl_s: u32,
    /// The `WEBHOOK_SIGNING_SECRET` webhooks are signed with; without it, submissions with
    /// a `callback_url` are refused.
    pub webhook_secret: Option<Secret>,
    /// Where trace spans are exported (OTLP/HTTP JSON), if anywhere.
    pub otlp: Option<OtlpConfig>,
    /// Problems that do not stop the gateway (a provider whose secret is missing).
    pub warnings: Vec<String>,
}

/// Everything wrong with a configuration, one sentence each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<String>);

impl Config {
    /// Reads and validates the configuration; collects every problem instead of stopping at
    /// the first.
    pub fn load(source: &dyn ConfigSource) -> Result<Config, ConfigErrors> {
        let mut r = Reader::new(source);
        let limits = RequestLimits::load(&mut r);
        let resilience = ResiliencePolicy::load(&mut r);
        let cache = CacheConfig::load(&mut r);
        let log_level = LogLevel::load(&mut r);
        let metrics_shards = r.number("METRICS_SHARDS", 4, 1, 64);
        let sanitize_input = r.choice("SANITIZE_INPUT", &[("true", true), ("false", false)]);
        let redact_pii = PiiRedaction::load(&mut r);
        let prompt = PromptPolicy::load(&mut r);
        let injection = InjectionPolicy::load(&mut r);
        let api_key_cache_ttl_s = r.number("API_KEY_CACHE_TTL_SECONDS", 30, 0, 3_600);
        let mock = MockSettings::load(&mut r);
        let providers = load_providers(&mut r);
        let routes = load_routes(&mut r, &providers);
        let cors = CorsPolicy::load(&mut r);
        let anonymous_models = load_anonymous_models(&mut r);
        let admin_token = r.long_secret("ADMIN_TOKEN", "characters");
        let jwt = JwtConfig::load(&mut r);
        let jobs = JobsConfig::load(&mut r);
        let response_ttl_s = r.number("RESPONSE_TTL_SECONDS", 2_592_000, 1, 31_536_000);
        let feedback_ttl_s = r.number("FEEDBACK_TTL_SECONDS", 604_800, 0, 31_536_000);
        let otlp = OtlpConfig::load(&mut r);
        let webhook_secret = r.long_secret("WEBHOOK_SIGNING_SECRET", "characters");
        let teams = load_teams(&mut r);
        let rate_limits = RateLimitConfig::load(&mut r);
        let prices = load_prices(&mut r);

        // What one module's settings name of another's.
        let team_models = teams.iter().flat_map(|(team, settings)| {
            let models = settings.models.iter().flatten();
            models.map(move |model| (format!("TEAMS.{team}.models"), model))
        });
        let anonymous = anonymous_models
            .iter()
            .map(|model| ("ANONYMOUS_MODELS".to_owned(), model));
        for (setting, model) in anonymous.chain(team_models) {
            if !routes.contains_key(model) {
                r.error(format!(
                    "{setting} names {model:?}, which ROUTES does not define"
                ));
            }
        }
        let targets = routes.values().flat_map(|route| match route {
            ModelRoute::Chain(targets) => targets.as_slice(),
            ModelRoute::Auto(_) => &[],
        });
        for target in targets {
            if target.provider != "mock" && !prices.contains_key(&target.model) {
                r.warn(format!(
                    "PRICES has no price for model {:?}: its cost counts as 0 against budgets",
                    target.model
                ));
            }
        }
        if routes.is_empty() && !r.has_errors() {
            r.error("ROUTES defines no model");
        }
        let (errors, warnings) = r.into_problems();
        match (errors.is_empty(), rate_limits) {
            (true, Some(rate_limits)) => Ok(Config {
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
                response_ttl_s,
                feedback_ttl_s,
                otlp,
                webhook_secret,
                warnings,
            }),
            _ => Err(ConfigErrors(errors)),
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

    /// The API surfaces `alias` serves: every chat surface, and `embeddings` when it is a
    /// chain with a usable target whose provider makes embeddings.
    pub fn surfaces(&self, alias: &str) -> Vec<&'static str> {
        let mut surfaces = vec!["chat.completions", "responses", "messages"];
        let chain = matches!(self.routes.get(alias), Some(ModelRoute::Chain(_)));
        let embeds = self.usable_targets(alias).any(|target| {
            self.providers
                .get(&target.provider)
                .is_some_and(ProviderConfig::serves_embeddings)
        });
        if chain && embeds {
            surfaces.push("embeddings");
        }
        surfaces
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::Algorithm;
    use crate::cache::{CacheMode, CacheScope};
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
    fn json_vars_arrive_as_text_or_objects() {
        assert_eq!(json_var_text(&serde_json::json!("{}")), "{}");
        assert_eq!(json_var_text(&serde_json::json!({"a": 1})), "{\"a\":1}");
    }
}
