//! Who may call the gateway: browser origins (CORS), gateway API keys, and the principal
//! a request acts for.
//!
//! Deny by default: a `/v1` request needs an API key (`Authorization: Bearer sk-gw-...`),
//! unless the model is one the operator opened to anonymous callers (`ANONYMOUS_MODELS`,
//! empty by default; `make dev` opens `mock`).

pub mod api_keys;
pub mod cors;
pub mod jwt;

use serde::Deserialize;

use crate::config::source::Reader;
use crate::error::{ErrorKind, GatewayError};
use crate::limit::TierLimits;
use crate::sorted_map::SortedMap;

/// Settings shared by the members of a team (`TEAMS`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    /// The team's plan: overrides its members' tier.
    #[serde(default)]
    pub tier: Option<String>,
    /// Models the team may use: narrows (never widens) what each member may use.
    #[serde(default)]
    pub models: Option<Vec<String>>,
}

/// The caller a request acts for, after authentication.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// Stable id, named by where the caller comes from (see [`PrincipalId`]): rate limits,
    /// cache namespaces, job stores, usage and logs are keyed by it, so callers from two
    /// sources never share one.
    pub id: String,
    /// Rate-limit tier (`free`, `pro`, `enterprise` or a custom one).
    pub tier: String,
    /// Team, for team-level settings and reports.
    pub team: Option<String>,
    /// Model aliases this principal may use; `None` means all.
    pub models: Option<Vec<String>>,
    /// Limits that replace its tier's (set per API key).
    pub limits: Option<TierLimits>,
    /// How it authenticated: `api_key`, `jwt` or `anonymous`.
    pub via: &'static str,
    /// The public id of the API key it used, if it used one.
    pub key_id: Option<String>,
}

/// Principal ids: `key:<principal>` for API keys, `jwt:<issuer>:<subject>` for JWTs and
/// `anon:<address>` for callers without credentials (an IPv6 address grouped by its /64,
/// which one client usually holds whole).
pub struct PrincipalId;

impl PrincipalId {
    /// The id of an API key's principal.
    pub fn key(principal: &str) -> String {
        format!("key:{principal}")
    }

    /// The id of a JWT's subject. `:` and `%` in the issuer are percent-encoded, so that
    /// the issuer ends at the first `:` and no two (issuer, subject) pairs share an id.
    pub fn jwt(issuer: &str, subject: &str) -> String {
        let issuer = issuer.replace('%', "%25").replace(':', "%3A");
        format!("jwt:{issuer}:{subject}")
    }

    /// The id of a caller without credentials, from its address (`cf-connecting-ip`).
    pub fn anonymous(address: Option<&str>) -> String {
        let address = address.map(str::trim).unwrap_or_default();
        let grouped = match address.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
            Ok(std::net::IpAddr::V6(v6)) => v6
                .to_ipv4_mapped()
                .map(|v4| v4.to_string())
                .unwrap_or_default(),
            Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
            Err(_) => "unknown".to_owned(),
        };
        format!("anon:{grouped}")
    }

    /// A principal as the admin API names it: a full id (`key:...`, `jwt:...`, `anon:...`),
    /// or an API key's principal by its bare name (`alice` is `key:alice`).
    pub fn from_admin(name: &str) -> String {
        if ["key:", "jwt:", "anon:"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            name.to_owned()
        } else {
            PrincipalId::key(name)
        }
    }
}

impl Principal {
    /// The principal of an unauthenticated request from `address`, limited to `models`.
    pub fn anonymous(models: &[String], address: Option<&str>) -> Principal {
        Principal {
            id: PrincipalId::anonymous(address),
            tier: "free".to_owned(),
            team: None,
            models: Some(models.to_vec()),
            limits: None,
            via: "anonymous",
            key_id: None,
        }
    }

    /// Applies the settings of this principal's team, if it has one with settings.
    pub fn with_team_settings(mut self, teams: &SortedMap<String, TeamSettings>) -> Principal {
        let Some(settings) = self.team.as_ref().and_then(|team| teams.get(team)) else {
            return self;
        };
        if let Some(tier) = &settings.tier {
            self.tier.clone_from(tier);
        }
        if let Some(team_models) = &settings.models {
            self.models = Some(match self.models {
                Some(own) => own
                    .into_iter()
                    .filter(|m| team_models.contains(m))
                    .collect(),
                None => team_models.clone(),
            });
        }
        self
    }

    /// Whether this principal may use the model alias `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|models| models.iter().any(|allowed| allowed == model))
    }

    /// Unless this principal may use `model`: 401 for a caller without credentials (the
    /// models open to anonymous callers do not include it: it needs a key), 403
    /// `model_not_allowed` for one whose key or team excludes it.
    pub fn check_model(&self, model: &str) -> Result<(), GatewayError> {
        if self.may_use(model) {
            return Ok(());
        }
        if self.via == "anonymous" {
            return Err(unauthenticated());
        }
        Err(GatewayError::new(
            ErrorKind::ModelNotAllowed,
            format!(
                "this key may not use the model {:?}",
                model.chars().take(100).collect::<String>()
            ),
        )
        .with_param("model"))
    }
}

/// The longest bearer credential accepted (an API key is 54 bytes; a JWT carrying a few
/// dozen claims is well under 2 KB). A longer one is refused before any decoding.
pub const MAX_CREDENTIAL_BYTES: usize = 8 * 1024;

/// `TEAMS`: settings by team.
pub fn load_teams(r: &mut Reader) -> SortedMap<String, TeamSettings> {
    r.json("TEAMS", "{}")
}

/// `ANONYMOUS_MODELS`: the aliases callers without credentials may use.
pub fn load_anonymous_models(r: &mut Reader) -> Vec<String> {
    r.var("ANONYMOUS_MODELS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|model| !model.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The token of an `Authorization: Bearer <token>` header, if there is one no longer than
/// [`MAX_CREDENTIAL_BYTES`].
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    if value.len() > "Bearer ".len() + MAX_CREDENTIAL_BYTES {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The 401 for a request without usable credentials. The message never says whether a
/// key exists.
pub fn unauthenticated() -> GatewayError {
    GatewayError::new(
        ErrorKind::InvalidApiKey,
        "missing or invalid API key; send Authorization: Bearer <key>",
    )
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_extracted_case_insensitively() {
        assert_eq!(bearer_token(Some("Bearer sk-gw-abc")), Some("sk-gw-abc"));
        assert_eq!(bearer_token(Some("bearer   tok ")), Some("tok"));
        assert_eq!(bearer_token(Some("Basic dXNlcg==")), None);
        assert_eq!(bearer_token(Some("Bearer ")), None);
        assert_eq!(bearer_token(None), None);
        let long = "x".repeat(MAX_CREDENTIAL_BYTES);
        assert_eq!(
            bearer_token(Some(&format!("Bearer {long}"))),
            Some(long.as_str())
        );
        assert_eq!(
            bearer_token(Some(&format!("Bearer {long}x"))),
            None,
            "too long"
        );
    }

    #[test]
    fn principal_ids_are_named_by_their_source() {
        assert_eq!(PrincipalId::key("alice"), "key:alice");
        assert_eq!(
            PrincipalId::jwt("https://id.example.com/", "alice"),
            "jwt:https%3A//id.example.com/:alice"
        );
        assert_ne!(PrincipalId::jwt("a:b", "c"), PrincipalId::jwt("a", "b:c"));
        assert_eq!(
            PrincipalId::anonymous(Some("203.0.113.7")),
            "anon:203.0.113.7"
        );
        assert_eq!(
            PrincipalId::anonymous(Some("2001:db8:aa:bb:1:2:3:4")),
            "anon:2001:db8:aa:bb::/64"
        );
        assert_eq!(
            PrincipalId::anonymous(Some("2001:db8:aa:bb::9")),
            PrincipalId::anonymous(Some("2001:db8:aa:bb:ffff::1")),
            "one /64, one principal"
        );
        assert_eq!(
            PrincipalId::anonymous(Some("::ffff:198.51.100.1")),
            "anon:198.51.100.1"
        );
        assert_eq!(PrincipalId::anonymous(None), "anon:unknown");
        assert_eq!(
            PrincipalId::anonymous(Some("not an address")),
            "anon:unknown"
        );
        assert_eq!(PrincipalId::from_admin("alice"), "key:alice");
        assert_eq!(PrincipalId::from_admin("jwt:iss:sub"), "jwt:iss:sub");
        assert_eq!(PrincipalId::from_admin("anon:1.2.3.4"), "anon:1.2.3.4");
    }

    #[test]
    fn models_are_allowed_per_principal() {
        let anonymous = Principal::anonymous(&["mock".to_owned()], None);
        assert!(anonymous.may_use("mock"));
        let err = anonymous.check_model("gpt-4o").unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (401, "invalid_api_key"),
            "it needs a key"
        );
        let keyed = Principal {
            via: "api_key",
            ..anonymous.clone()
        };
        let err = keyed.check_model("gpt-4o").unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "model_not_allowed"));
        let unrestricted = Principal {
            models: None,
            ..anonymous
        };
        assert!(unrestricted.may_use("gpt-4o"));
    }

    #[test]
    fn team_settings_set_the_tier_and_narrow_models() {
        let teams = SortedMap::from([(
            "red".to_owned(),
            TeamSettings {
                tier: Some("enterprise".into()),
                models: Some(vec!["mock".into(), "gpt-4o".into()]),
            },
        )]);
        let member = Principal {
            id: "u".into(),
            tier: "free".into(),
            team: Some("red".into()),
            models: None,
            limits: None,
            via: "jwt",
            key_id: None,
        };
        let applied = member.clone().with_team_settings(&teams);
        assert_eq!(applied.tier, "enterprise");
        assert_eq!(
            applied.models,
            Some(vec!["mock".to_owned(), "gpt-4o".to_owned()])
        );
        let narrower = Principal {
            models: Some(vec!["gpt-4o".into(), "o3".into()]),
            ..member.clone()
        };
        assert_eq!(
            narrower.with_team_settings(&teams).models,
            Some(vec!["gpt-4o".to_owned()])
        );
        let other = Principal {
            team: Some("blue".into()),
            ..member
        };
        assert_eq!(other.clone().with_team_settings(&teams), other);
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
