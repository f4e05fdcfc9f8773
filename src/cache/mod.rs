//! The response cache: exact-match answers for repeated deterministic requests, kept in
//! the isolate (an LRU bounded in bytes) and in KV.
//!
//! This module decides, as plain code: whether a request may be answered from the cache
//! or its answer stored ([`decide`]), what identifies an answer ([`key`]), what an entry
//! holds and how it is replayed ([`entry`]), and the isolate's own LRU ([`lru`]). The
//! platform layer hashes the key (WebCrypto SHA-256) and talks to KV.

pub mod entry;
pub mod key;
pub mod lru;

use crate::api::chat::ChatRequest;
use crate::config::source::Reader;

/// Which requests are cached (`CACHE_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// `off`: never.
    Off,
    /// `deterministic` (default): requests with `temperature: 0`, one choice and no tools,
    /// and requests that opt in with `x-gateway-cache: on`.
    Deterministic,
    /// `all`: every request that does not opt out.
    All,
}

/// Whose answers a cached entry may serve (`CACHE_SCOPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheScope {
    /// `principal` (default): only the principal that caused it.
    Principal,
    /// `team`: every member of the principal's team (principals without one: themselves).
    Team,
    /// `global`: every caller allowed to use the model.
    Global,
}

/// The cache's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// `CACHE_MODE`.
    pub mode: CacheMode,
    /// `CACHE_SCOPE`.
    pub scope: CacheScope,
    /// `CACHE_TTL_SECONDS`: how long an entry lives.
    pub ttl_s: u32,
    /// `CACHE_L1_BYTES`: the in-isolate LRU's budget (0: no L1).
    pub l1_bytes: usize,
    /// `CACHE_L1_TTL_SECONDS`: the longest an isolate keeps an entry, so that a purge
    /// reaches every isolate within it.
    pub l1_ttl_s: u32,
    /// `CACHE_MAX_ENTRY_BYTES`: larger answers are not stored.
    pub max_entry_bytes: usize,
    /// `CACHE_TRUNCATED_ANSWERS`: also store answers cut by `max_tokens`
    /// (`finish_reason: "length"`).
    pub truncated_answers: bool,
}

/// What the cache does for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheDecision {
    /// Leave the cache alone (`x-cache: BYPASS`); the reason is logged.
    Bypass(&'static str),
    /// Use it.
    Use {
        /// Look for a stored answer (`false` under `Cache-Control: no-cache`).
        read: bool,
        /// Accept only entries at most this old (`Cache-Control: max-age`).
        max_age_s: Option<u32>,
        /// Store the answer for this long (0: do not store).
        ttl_s: u32,
    },
}

/// Decides from the config, the request and its `Cache-Control` and `x-gateway-cache`
/// headers. `no-store` bypasses the cache, `no-cache` skips the read but refreshes the
/// entry, `max-age=N` both refuses older entries and caps the stored entry's lifetime.
pub fn decide(
    config: &CacheConfig,
    request: &ChatRequest,
    cache_control: Option<&str>,
    opt_in: Option<&str>,
) -> CacheDecision {
    decide_for(config, is_deterministic(request), cache_control, opt_in)
}

/// [`decide`] for a request whose answer is `deterministic` or not (embeddings always
/// are).
pub fn decide_for(
    config: &CacheConfig,
    deterministic: bool,
    cache_control: Option<&str>,
    opt_in: Option<&str>,
) -> CacheDecision {
    let directives: Vec<String> = cache_control
        .unwrap_or_default()
        .split(',')
        .map(|directive| directive.trim().to_ascii_lowercase())
        .collect();
    let has = |name: &str| directives.iter().any(|directive| directive == name);
    let max_age_s = directives.iter().find_map(|directive| {
        let value = directive.strip_prefix("max-age=")?;
        Some(value.trim_matches('"').parse::<u32>().unwrap_or(0))
    });
    let opt_in = opt_in.map(|value| value.trim().to_ascii_lowercase());
    if config.mode == CacheMode::Off {
        return CacheDecision::Bypass("disabled");
    }
    if has("no-store") {
        return CacheDecision::Bypass("no_store");
    }
    if opt_in.as_deref() == Some("off") {
        return CacheDecision::Bypass("opted_out");
    }
    let opted_in = opt_in.as_deref() == Some("on");
    if config.mode == CacheMode::Deterministic && !opted_in && !deterministic {
        return CacheDecision::Bypass("not_deterministic");
    }
    CacheDecision::Use {
        read: !has("no-cache"),
        max_age_s,
        ttl_s: max_age_s.map_or(config.ttl_s, |cap| cap.min(config.ttl_s)),
    }
}

/// Whether the same request should always get the same answer: `temperature: 0`, one
/// choice, and no tools (whose calls may act on the world, so their answers are not
/// replayed unless the request opts in).
pub fn is_deterministic(request: &ChatRequest) -> bool {
    request.temperature == Some(0.0)
        && request.n.unwrap_or(1) == 1
        && !request.passthrough.contains_key("tools")
        && !request.passthrough.contains_key("functions")
}

impl CacheConfig {
    /// The response cache's settings (`CACHE_*`).
    pub fn load(r: &mut Reader) -> CacheConfig {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::validate::parse_for_tests;
    use serde_json::{json, Value};

    const CONFIG: CacheConfig = CacheConfig {
        mode: CacheMode::Deterministic,
        scope: CacheScope::Principal,
        ttl_s: 3_600,
        l1_bytes: 1 << 20,
        l1_ttl_s: 60,
        max_entry_bytes: 1 << 20,
        truncated_answers: false,
    };

    pub(crate) fn request(extra: Value) -> ChatRequest {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        parse_for_tests(&body.to_string())
    }

    const USE: CacheDecision = CacheDecision::Use {
        read: true,
        max_age_s: None,
        ttl_s: 3_600,
    };

    #[test]
    fn only_deterministic_requests_are_cached_by_default() {
        let zero = request(json!({"temperature": 0}));
        assert_eq!(decide(&CONFIG, &zero, None, None), USE);
        for extra in [
            json!({}),
            json!({"temperature": 0.7}),
            json!({"temperature": 0, "n": 2}),
            json!({"temperature": 0, "tools": [{"type": "function", "function": {"name": "f"}}]}),
        ] {
            assert_eq!(
                decide(&CONFIG, &request(extra.clone()), None, None),
                CacheDecision::Bypass("not_deterministic"),
                "{extra}"
            );
        }
        // The request, or the config, can opt in.
        let warm = request(json!({"temperature": 0.7}));
        assert_eq!(decide(&CONFIG, &warm, None, Some("on")), USE);
        let all = CacheConfig {
            mode: CacheMode::All,
            ..CONFIG
        };
        assert_eq!(decide(&all, &warm, None, None), USE);
        assert_eq!(
            decide(&all, &warm, None, Some(" OFF ")),
            CacheDecision::Bypass("opted_out")
        );
        let off = CacheConfig {
            mode: CacheMode::Off,
            ..CONFIG
        };
        assert_eq!(
            decide(&off, &zero, None, Some("on")),
            CacheDecision::Bypass("disabled")
        );
    }

    #[test]
    fn cache_control_directives_are_honoured() {
        let zero = request(json!({"temperature": 0}));
        let with = |value: &str| decide(&CONFIG, &zero, Some(value), None);
        assert_eq!(with("no-store"), CacheDecision::Bypass("no_store"));
        assert_eq!(
            with("max-age=5, No-Store"),
            CacheDecision::Bypass("no_store")
        );
        assert_eq!(
            with("no-cache"),
            CacheDecision::Use {
                read: false,
                max_age_s: None,
                ttl_s: 3_600
            }
        );
        assert_eq!(
            with("max-age=120"),
            CacheDecision::Use {
                read: true,
                max_age_s: Some(120),
                ttl_s: 120
            }
        );
        // A longer max-age does not extend the configured lifetime.
        assert_eq!(
            with("max-age=999999"),
            CacheDecision::Use {
                read: true,
                max_age_s: Some(999_999),
                ttl_s: 3_600
            }
        );
        assert_eq!(
            with("max-age=junk"),
            CacheDecision::Use {
                read: true,
                max_age_s: Some(0),
                ttl_s: 0
            }
        );
        assert_eq!(with("private, must-revalidate"), USE);
    }
}
