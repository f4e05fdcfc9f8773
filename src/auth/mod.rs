//! Who may call the gateway: browser origins (CORS), gateway API keys, and the principal
//! a request acts for.
//!
//! Deny by default: a `/v1` request needs an API key (`Authorization: Bearer sk-gw-...`),
//! unless the model is one the operator opened to anonymous callers (`ANONYMOUS_MODELS`,
//! empty by default; `make dev` opens `mock`).

pub mod api_keys;
pub mod cors;
pub mod jwt;

use crate::error::{ErrorKind, GatewayError};

/// The caller a request acts for, after authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable user or service id (rate limits, usage and logs are keyed by it).
    pub id: String,
    /// Rate-limit tier (`free`, `pro`, `enterprise` or a custom one).
    pub tier: String,
    /// Team, for team-level settings and reports.
    pub team: Option<String>,
    /// Model aliases this principal may use; `None` means all.
    pub models: Option<Vec<String>>,
    /// How it authenticated: `api_key`, `jwt` or `anonymous`.
    pub via: &'static str,
}

impl Principal {
    /// The principal of an unauthenticated request, limited to `models`.
    pub fn anonymous(models: &[String]) -> Principal {
        Principal {
            id: "anonymous".to_owned(),
            tier: "free".to_owned(),
            team: None,
            models: Some(models.to_vec()),
            via: "anonymous",
        }
    }

    /// Whether this principal may use the model alias `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models
            .as_ref()
            .is_none_or(|models| models.iter().any(|allowed| allowed == model))
    }

    /// 403 `model_not_allowed` unless this principal may use `model`.
    pub fn check_model(&self, model: &str) -> Result<(), GatewayError> {
        if self.may_use(model) {
            return Ok(());
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

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
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
    }

    #[test]
    fn models_are_allowed_per_principal() {
        let anonymous = Principal::anonymous(&["mock".to_owned()]);
        assert!(anonymous.may_use("mock"));
        let err = anonymous.check_model("gpt-4o").unwrap_err();
        assert_eq!((err.status(), err.code()), (403, "model_not_allowed"));
        let unrestricted = Principal {
            models: None,
            ..anonymous
        };
        assert!(unrestricted.may_use("gpt-4o"));
    }

    #[test]
    fn constant_time_eq_compares_whole_strings() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
    }
}
