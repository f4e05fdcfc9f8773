//! CORS for browsers: an exact origin allow-list, preflights, and the headers every
//! response to an allowed browser origin needs.
//!
//! Deny by default: a request that carries an `Origin` which is neither the gateway's own
//! nor in `CORS_ALLOWED_ORIGINS` is refused with 403 `origin_not_allowed` before any other
//! work. There is no wildcard: credentials (the `Authorization` header) are always
//! involved, and a wildcard would let any page spend a user's quota.

use crate::config::source::Reader;
use crate::error::{ErrorKind, GatewayError};

/// Request headers a browser may send (the Anthropic SDKs' among them). The OpenAI and
/// Anthropic SDKs also send `x-stainless-*` headers, which are allowed by prefix.
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "content-type",
    "x-request-id",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "cache-control",
    "x-gateway-cache",
    "idempotency-key",
    "traceparent",
    "tracestate",
];
const ALLOWED_HEADER_PREFIX: &str = "x-stainless-";

/// Response headers scripts may read.
pub const EXPOSED_HEADERS: &str =
    "x-request-id, traceparent, tracestate, x-cache, x-cache-key, age, x-guard-flags, \
     x-gateway-degraded, \
     x-gateway-provider, x-gateway-model, x-gateway-attempts, \
     retry-after, retry-after-ms, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, \
     x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, \
     x-ratelimit-reset-tokens, location, idempotent-replayed";

/// How long browsers may cache a preflight, in seconds.
pub const PREFLIGHT_MAX_AGE_SECONDS: u32 = 600;

/// The configured origin allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsPolicy {
    origins: Vec<String>,
}

/// Headers to add to a response, as `(name, value)`.
pub type HeaderList = Vec<(&'static str, String)>;

impl CorsPolicy {
    /// `CORS_ALLOWED_ORIGINS`.
    pub fn load(r: &mut Reader) -> CorsPolicy {
        let origins = r.var("CORS_ALLOWED_ORIGINS").unwrap_or_default();
        CorsPolicy::parse(&origins).unwrap_or_else(|problem| {
            r.error(problem);
            CorsPolicy::default()
        })
    }

    /// Parses `CORS_ALLOWED_ORIGINS`: comma-separated `scheme://host[:port]` origins.
    pub fn parse(list: &str) -> Result<CorsPolicy, String> {
        let mut origins = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            origins.push(normalize_origin(entry).ok_or_else(|| {
                format!(
                    "CORS_ALLOWED_ORIGINS: {entry:?} is not an origin like https://app.example.com \
                     (no wildcard, path or trailing slash)"
                )
            })?);
        }
        Ok(CorsPolicy { origins })
    }

    /// Whether a request from `origin` may proceed. `own_origin` is the gateway's own
    /// (same-origin requests from pages it serves carry an `Origin` too).
    pub fn check(&self, origin: Option<&str>, own_origin: &str) -> Result<(), GatewayError> {
        match origin {
            None => Ok(()),
            Some(origin) if self.allows(origin, own_origin) => Ok(()),
            Some(origin) => Err(GatewayError::new(
                ErrorKind::OriginNotAllowed,
                format!(
                    "origin {:?} is not allowed; the gateway's operator can add it to CORS_ALLOWED_ORIGINS",
                    origin.chars().take(200).collect::<String>()
                ),
            )),
        }
    }

    /// The headers for a response to an allowed request carrying `origin`.
    pub fn response_headers(&self, origin: Option<&str>) -> HeaderList {
        let Some(origin) = origin else {
            return vec![("vary", "Origin".to_owned())];
        };
        vec![
            ("access-control-allow-origin", origin.to_owned()),
            ("access-control-expose-headers", EXPOSED_HEADERS.to_owned()),
            ("vary", "Origin".to_owned()),
        ]
    }

    /// Answers a preflight for a route that accepts `route_methods` (e.g. `POST`): the
    /// headers of the 204, or 403 when the origin, method or a header is not allowed.
    pub fn preflight(
        &self,
        origin: Option<&str>,
        own_origin: &str,
        requested_method: Option<&str>,
        requested_headers: Option<&str>,
        route_methods: &str,
    ) -> Result<HeaderList, GatewayError> {
        let origin = origin.ok_or_else(|| {
            GatewayError::new(ErrorKind::OriginNotAllowed, "a preflight needs an Origin")
        })?;
        self.check(Some(origin), own_origin)?;
        let method = requested_method.unwrap_or_default();
        if !route_methods.split(", ").any(|allowed| allowed == method) {
            return Err(GatewayError::new(
                ErrorKind::OriginNotAllowed,
                format!("this endpoint only accepts {route_methods}"),
            ));
        }
        let headers: Vec<String> = requested_headers
            .unwrap_or_default()
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();
        if let Some(refused) = headers.iter().find(|name| !header_allowed(name)) {
            return Err(GatewayError::new(
                ErrorKind::OriginNotAllowed,
                format!(
                    "request header {:?} is not allowed",
                    refused.chars().take(64).collect::<String>()
                ),
            ));
        }
        let mut list = self.response_headers(Some(origin));
        list.retain(|(name, _)| *name != "vary");
        list.extend([
            ("access-control-allow-methods", route_methods.to_owned()),
            ("access-control-allow-headers", headers.join(", ")),
            (
                "access-control-max-age",
                PREFLIGHT_MAX_AGE_SECONDS.to_string(),
            ),
            (
                "vary",
                "Origin, Access-Control-Request-Method, Access-Control-Request-Headers".to_owned(),
            ),
        ]);
        Ok(list)
    }

    fn allows(&self, origin: &str, own_origin: &str) -> bool {
        let Some(origin) = normalize_origin(origin) else {
            return false;
        };
        normalize_origin(own_origin).is_some_and(|own| own == origin)
            || self.origins.contains(&origin)
    }
}

fn header_allowed(name: &str) -> bool {
    ALLOWED_HEADERS.contains(&name) || name.starts_with(ALLOWED_HEADER_PREFIX)
}

/// `scheme://host[:port]` in lower case, or `None` for anything else (including `null`).
fn normalize_origin(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let valid_host = !rest.is_empty()
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    valid_host.then(|| format!("{scheme}://{}", rest.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://gateway.example.com";

    fn policy() -> CorsPolicy {
        CorsPolicy::parse("https://app.example.com, http://localhost:5173").unwrap()
    }

    #[test]
    fn origins_must_be_exact_origins() {
        assert!(CorsPolicy::parse("").unwrap().origins.is_empty());
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example.com/",
            "app.example.com",
            "ftp://x",
        ] {
            assert!(CorsPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_listed_and_own_origins_pass() {
        let policy = policy();
        assert!(policy.check(None, OWN).is_ok(), "servers send no Origin");
        assert!(policy.check(Some("https://app.example.com"), OWN).is_ok());
        assert!(policy.check(Some("HTTPS://APP.example.com"), OWN).is_ok());
        assert!(policy.check(Some(OWN), OWN).is_ok(), "same origin");
        for refused in [
            "https://evil.example.com",
            "https://app.example.com.evil.io",
            "null",
            "http://app.example.com",
        ] {
            let err = policy.check(Some(refused), OWN).unwrap_err();
            assert_eq!(
                (err.status(), err.code()),
                (403, "origin_not_allowed"),
                "{refused}"
            );
        }
    }

    #[test]
    fn responses_echo_the_origin_and_vary() {
        let headers = policy().response_headers(Some("https://app.example.com"));
        assert!(headers.contains(&(
            "access-control-allow-origin",
            "https://app.example.com".into()
        )));
        assert!(headers.contains(&("vary", "Origin".into())));
        assert!(headers
            .iter()
            .any(|(n, v)| *n == "access-control-expose-headers" && v.contains("x-request-id")));
        assert_eq!(
            policy().response_headers(None),
            vec![("vary", "Origin".to_owned())]
        );
    }

    #[test]
    fn preflights_allow_the_route_method_and_known_headers() {
        let headers = policy()
            .preflight(
                Some("https://app.example.com"),
                OWN,
                Some("POST"),
                Some("Authorization, Content-Type, X-Stainless-OS"),
                "POST",
            )
            .unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert_eq!(get("access-control-allow-methods"), Some("POST"));
        assert_eq!(
            get("access-control-allow-headers"),
            Some("authorization, content-type, x-stainless-os")
        );
        assert_eq!(get("access-control-max-age"), Some("600"));
        assert!(get("vary")
            .unwrap()
            .contains("Access-Control-Request-Headers"));
    }

    #[test]
    fn preflights_refuse_other_origins_methods_and_headers() {
        let policy = policy();
        let app = Some("https://app.example.com");
        assert!(policy
            .preflight(Some("https://evil.io"), OWN, Some("POST"), None, "POST")
            .is_err());
        assert!(policy
            .preflight(None, OWN, Some("POST"), None, "POST")
            .is_err());
        assert!(policy
            .preflight(app, OWN, Some("DELETE"), None, "POST")
            .is_err());
        assert!(policy
            .preflight(app, OWN, Some("POST"), Some("x-forwarded-for"), "POST")
            .is_err());
        assert!(policy
            .preflight(app, OWN, Some("GET"), None, "GET, HEAD")
            .is_ok());
    }
}
