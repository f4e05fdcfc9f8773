//! JWTs from the app's own identity provider: parsing, the algorithm and key policy, and
//! the claim checks. Signature verification itself is WebCrypto's (in the platform layer);
//! everything that decides *whether* and *with what* to verify is here, tested on the host.
//!
//! Refused before any signature check: anything but three base64url parts, an empty
//! signature, an `alg` outside the configured allow-list (so `none` in any spelling),
//! embedded key material or key URLs in the header (`jwk`, `jku`, `x5u`, `x5c`), `crit`.
//! A key is used only for its own family (HS256 only with the HMAC secret, RS256 only
//! with RSA keys of at least 2048 bits, ES256 only with P-256 keys), which rules out key
//! confusion.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Principal, PrincipalId};
use crate::config::source::{is_loopback_http, Reader, Secret};
use crate::error::{ErrorKind, GatewayError};

/// A supported signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC with SHA-256 and the shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 and an RSA key of at least 2048 bits.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl Algorithm {
    /// Parses the exact (case-sensitive) JOSE name.
    pub fn parse(name: &str) -> Option<Algorithm> {
        match name {
            "HS256" => Some(Algorithm::Hs256),
            "RS256" => Some(Algorithm::Rs256),
            "ES256" => Some(Algorithm::Es256),
            _ => None,
        }
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Rs256 => "RS256",
            Algorithm::Es256 => "ES256",
        }
    }
}

/// The JOSE header fields the policy looks at.
#[derive(Debug, Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    jwk: Option<Value>,
    jku: Option<Value>,
    x5u: Option<Value>,
    x5c: Option<Value>,
    crit: Option<Value>,
}

/// A token that passed the structural and header checks, ready for signature
/// verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The algorithm to verify with (already in the allow-list).
    pub algorithm: Algorithm,
    /// The key id, when the header names one.
    pub kid: Option<String>,
    /// `base64url(header) . base64url(payload)`: what was signed.
    pub signing_input: String,
    /// The decoded signature (never empty).
    pub signature: Vec<u8>,
    /// The claims.
    pub claims: Map<String, Value>,
}

/// The 401 for a token that is not acceptable; `detail` is safe to show.
pub fn invalid_token(detail: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidToken, format!("invalid token: {detail}"))
}

/// Splits, decodes and checks a compact JWS against the algorithm allow-list.
pub fn parse(token: &str, allowed: &[Algorithm]) -> Result<Parsed, GatewayError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_token("a JWT has three parts"));
    };
    let header_bytes =
        base64url_decode(header).ok_or_else(|| invalid_token("bad header encoding"))?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| invalid_token("the header is not JSON"))?;
    if header.jwk.is_some() || header.jku.is_some() || header.x5u.is_some() || header.x5c.is_some()
    {
        return Err(invalid_token(
            "keys or key URLs in the header are not accepted",
        ));
    }
    if header.crit.is_some() {
        return Err(invalid_token(
            "critical header extensions are not supported",
        ));
    }
    let algorithm = header
        .alg
        .as_deref()
        .and_then(Algorithm::parse)
        .filter(|algorithm| allowed.contains(algorithm))
        .ok_or_else(|| invalid_token("algorithm not allowed"))?;
    let signature =
        base64url_decode(signature_part).ok_or_else(|| invalid_token("bad signature encoding"))?;
    if signature.is_empty() {
        return Err(invalid_token("missing signature"));
    }
    if algorithm == Algorithm::Es256 && signature.len() != 64 {
        return Err(invalid_token("an ES256 signature is 64 bytes"));
    }
    let payload_bytes =
        base64url_decode(payload).ok_or_else(|| invalid_token("bad payload encoding"))?;
    let claims = match serde_json::from_slice::<Value>(&payload_bytes) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err(invalid_token("the payload is not a JSON object")),
    };
    Ok(Parsed {
        algorithm,
        kid: header.kid,
        // Exactly three parts: everything before the last dot is what was signed.
        signing_input: token[..token.len() - signature_part.len() - 1].to_owned(),
        signature,
        claims,
    })
}

/// A public key from a JWKS, checked for use with one algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicKey {
    /// Its `kid`, if it has one.
    pub kid: Option<String>,
    /// The only algorithm it may verify.
    pub algorithm: Algorithm,
    /// The JWK (public members only), for WebCrypto's `importKey("jwk", ...)`.
    pub jwk: Value,
}

/// The usable keys of a JWKS document; keys that break the policy are skipped, with the
/// reason, so `/readyz` can say why a key is ignored.
pub fn parse_jwks(document: &str) -> Result<(Vec<PublicKey>, Vec<String>), String> {
    let value: Value = serde_json::from_slice(document.as_bytes())
        .map_err(|err| format!("JWKS is not JSON: {err}"))?;
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no \"keys\" array")?;
    let mut usable = Vec::new();
    let mut skipped = Vec::new();
    for (index, key) in keys.iter().enumerate() {
        match public_key(key) {
            Ok(key) => usable.push(key),
            Err(why) => skipped.push(format!("JWKS key {index}: {why}")),
        }
    }
    Ok((usable, skipped))
}

fn public_key(jwk: &Value) -> Result<PublicKey, String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if field("use").is_some_and(|usage| usage != "sig") {
        return Err("not a signing key".into());
    }
    let kid = field("kid").map(str::to_owned);
    let (algorithm, public) = match field("kty") {
        Some("RSA") => {
            let n = field("n")
                .and_then(base64url_decode)
                .ok_or("RSA key without modulus")?;
            let modulus_bits = (n.len() - n.iter().take_while(|b| **b == 0).count()) * 8;
            if modulus_bits < 2048 {
                return Err(format!(
                    "RSA key of {modulus_bits} bits (at least 2048 required)"
                ));
            }
            let e = field("e").ok_or("RSA key without exponent")?;
            (
                Algorithm::Rs256,
                serde_json::json!({"kty": "RSA", "n": field("n"), "e": e}),
            )
        }
        Some("EC") => {
            if field("crv") != Some("P-256") {
                return Err("EC keys must be on P-256 (ES256)".into());
            }
            let (x, y) = field("x")
                .zip(field("y"))
                .ok_or("EC key without coordinates")?;
            (
                Algorithm::Es256,
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
            )
        }
        Some(other) => {
            return Err(format!(
                "key type {other:?} is not supported for verification"
            ))
        }
        None => return Err("key without kty".into()),
    };
    if let Some(declared) = field("alg") {
        if declared != algorithm.name() {
            return Err(format!(
                "key declares alg {declared:?} but is a {} key",
                algorithm.name()
            ));
        }
    }
    Ok(PublicKey {
        kid,
        algorithm,
        jwk: public,
    })
}

/// The key to verify `token` with: the one whose `kid` matches, or, when the token names
/// none, the only key of its algorithm. `None` when no key fits.
pub fn select_key<'a>(keys: &'a [PublicKey], token: &Parsed) -> Option<&'a PublicKey> {
    let candidates = keys.iter().filter(|key| key.algorithm == token.algorithm);
    match &token.kid {
        Some(kid) => candidates
            .into_iter()
            .find(|key| key.kid.as_deref() == Some(kid.as_str())),
        None => {
            let mut candidates = candidates;
            let first = candidates.next();
            candidates.next().is_none().then_some(first).flatten()
        }
    }
}

/// How claims are checked and mapped to a principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPolicy {
    /// Required `iss`, when configured.
    pub issuer: Option<String>,
    /// Required `aud` member, when configured.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat`.
    pub leeway_s: u64,
    /// Claim holding the user id (default `sub`).
    pub user_claim: String,
    /// Claim holding the tier (default `tier`).
    pub tier_claim: String,
    /// Claim holding the team (default `team`).
    pub team_claim: String,
    /// Tier when the claim is absent.
    pub default_tier: String,
}

impl ClaimPolicy {
    /// Checks the claims at `now_s` and maps them to a principal.
    pub fn principal(
        &self,
        claims: &Map<String, Value>,
        now_s: u64,
    ) -> Result<Principal, GatewayError> {
        let time = |name: &str| {
            claims
                .get(name)
                .map(|value| value.as_f64().map(|t| t.max(0.0) as u64))
        };
        let leeway = self.leeway_s;
        match time("exp") {
            None => return Err(invalid_token("exp is required")),
            Some(None) => return Err(invalid_token("exp must be a number")),
            Some(Some(exp)) if now_s >= exp.saturating_add(leeway) => {
                return Err(GatewayError::new(
                    ErrorKind::TokenExpired,
                    "the token has expired",
                ));
            }
            Some(Some(_)) => {}
        }
        match time("nbf") {
            Some(Some(nbf)) if now_s.saturating_add(leeway) < nbf => {
                return Err(invalid_token("the token is not valid yet"))
            }
            Some(None) => return Err(invalid_token("nbf must be a number")),
            _ => {}
        }
        match time("iat") {
            Some(Some(iat)) if now_s.saturating_add(leeway) < iat => {
                return Err(invalid_token("the token was issued in the future"))
            }
            Some(None) => return Err(invalid_token("iat must be a number")),
            _ => {}
        }
        if let Some(issuer) = &self.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(invalid_token("wrong issuer"));
            }
        }
        if let Some(audience) = &self.audience {
            let matches = match claims.get("aud") {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => auds
                    .iter()
                    .any(|aud| aud.as_str() == Some(audience.as_str())),
                _ => false,
            };
            if !matches {
                return Err(invalid_token("wrong audience"));
            }
        }
        let text = |name: &str| {
            claims
                .get(name)
                .and_then(Value::as_str)
                .filter(|value| !value.is_empty() && value.len() <= 256)
                .map(str::to_owned)
        };
        let subject = text(&self.user_claim).ok_or_else(|| invalid_token("no user id claim"))?;
        let issuer = text("iss").unwrap_or_default();
        Ok(Principal {
            id: PrincipalId::jwt(&issuer, &subject),
            tier: text(&self.tier_claim).unwrap_or_else(|| self.default_tier.clone()),
            team: text(&self.team_claim),
            models: None,
            limits: None,
            via: "jwt",
            key_id: None,
        })
    }
}

/// Whether `token` looks like a compact JWS (three base64url parts), as opposed to a key.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Decodes unpadded base64url (RFC 7515); `None` on any other character or a bad length.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    }
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
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

impl JwtConfig {
    /// The JWT settings (`JWT_*`, `JWKS_*`), or `None` when no key material is configured.
    pub fn load(r: &mut Reader) -> Option<JwtConfig> {
        let hs256_secret = r.long_secret("JWT_HS256_SECRET", "bytes (RFC 7518)");
        let jwks_url = r.text("JWT_JWKS_URL");
        let inline = r.text("JWT_JWKS");
        if hs256_secret.is_none() && jwks_url.is_none() && inline.is_none() {
            return None;
        }
        if let Some(url) = &jwks_url {
            if !url.starts_with("https://") && !is_loopback_http(url) {
                r.error("JWT_JWKS_URL must be https (http only on loopback)");
            }
        }
        let mut inline_keys = Vec::new();
        if let Some(document) = &inline {
            match parse_jwks(document) {
                Ok((keys, skipped)) => {
                    inline_keys = keys;
                    for why in skipped {
                        r.warn(format!("JWT_JWKS: {why}"));
                    }
                }
                Err(problem) => r.error(format!("JWT_JWKS: {problem}")),
            }
        }
        let algorithms = match r.text("JWT_ALGORITHMS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter_map(|name| {
                    Algorithm::parse(name).or_else(|| {
                        r.error(format!(
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
            r.error("JWT_ALGORITHMS allows HS256 but JWT_HS256_SECRET is not set");
        }
        let issuer = r.text("JWT_ISSUER");
        let audience = r.text("JWT_AUDIENCE");
        if issuer.is_none() || audience.is_none() {
            r.warn(
            "JWT_ISSUER or JWT_AUDIENCE is not set: tokens for other issuers or audiences signed \
             with an accepted key pass",
        );
        }
        let leeway_s = r.number("JWT_LEEWAY_SECONDS", 30, 0, 300).into();
        let jwks_cache_s = r.number("JWKS_CACHE_SECONDS", 600, 0, 86_400);
        let jwks_refresh_cooldown_s = r.number("JWKS_REFRESH_COOLDOWN_SECONDS", 60, 1, 3_600);
        let claim = |name: &str, default: &str| r.text(name).unwrap_or_else(|| default.to_owned());
        Some(JwtConfig {
            algorithms,
            hs256_secret,
            jwks_url,
            inline_keys,
            policy: ClaimPolicy {
                issuer,
                audience,
                leeway_s,
                user_claim: claim("JWT_USER_CLAIM", "sub"),
                tier_claim: claim("JWT_TIER_CLAIM", "tier"),
                team_claim: claim("JWT_TEAM_CLAIM", "team"),
                default_tier: claim("JWT_DEFAULT_TIER", "free"),
            },
            jwks_cache_s,
            jwks_refresh_cooldown_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let mut acc = 0u32;
            for (i, b) in chunk.iter().enumerate() {
                acc |= u32::from(*b) << (16 - 8 * i);
            }
            for i in 0..=chunk.len() {
                out.push(ALPHABET[((acc >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }

    fn token(header: Value, claims: Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(signature)
        )
    }

    const ALL: &[Algorithm] = &[Algorithm::Hs256, Algorithm::Rs256, Algorithm::Es256];

    #[test]
    fn base64url_round_trips_and_rejects_padding_and_junk() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"\xff\xfe\x00"] {
            assert_eq!(base64url_decode(&b64(bytes)).as_deref(), Some(bytes));
        }
        assert_eq!(base64url_decode("Zm9v"), Some(b"foo".to_vec()));
        assert!(base64url_decode("Zm9v=").is_none());
        assert!(base64url_decode("Zm+v").is_none());
        assert!(base64url_decode("Z").is_none());
    }

    #[test]
    fn a_well_formed_token_parses() {
        let t = token(
            json!({"alg": "RS256", "kid": "k1", "typ": "JWT"}),
            json!({"sub": "u"}),
            &[1, 2, 3],
        );
        let parsed = parse(&t, ALL).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::Rs256);
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.signature, vec![1, 2, 3]);
        assert_eq!(parsed.signing_input, t[..t.rfind('.').unwrap()]);
        assert_eq!(parsed.claims["sub"], "u");
    }

    #[test]
    fn hostile_headers_and_shapes_are_refused() {
        let claims = json!({"sub": "u"});
        let cases = [
            token(json!({"alg": "none"}), claims.clone(), b"x"),
            token(json!({"alg": "None"}), claims.clone(), b"x"),
            token(json!({"alg": "nOnE"}), claims.clone(), b"x"),
            token(json!({"alg": "hs256"}), claims.clone(), b"x"),
            token(json!({"alg": "HS512"}), claims.clone(), b"x"),
            token(json!({}), claims.clone(), b"x"),
            token(
                json!({"alg": "RS256", "jwk": {"kty": "RSA"}}),
                claims.clone(),
                b"x",
            ),
            token(
                json!({"alg": "RS256", "jku": "https://evil/jwks"}),
                claims.clone(),
                b"x",
            ),
            token(
                json!({"alg": "RS256", "x5u": "https://evil/cert"}),
                claims.clone(),
                b"x",
            ),
            token(
                json!({"alg": "RS256", "x5c": ["MII"]}),
                claims.clone(),
                b"x",
            ),
            token(
                json!({"alg": "RS256", "crit": ["exp"]}),
                claims.clone(),
                b"x",
            ),
            token(json!({"alg": "RS256"}), claims.clone(), b""),
            token(json!({"alg": "ES256"}), claims.clone(), &[0; 70]),
            token(
                json!({"alg": "RS256"}),
                json!(["not", "an", "object"]),
                b"x",
            ),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "!!!.???.***".to_owned(),
        ];
        for case in cases {
            let err = parse(&case, ALL).unwrap_err();
            assert_eq!((err.status(), err.code()), (401, "invalid_token"), "{case}");
        }
        let hs = token(json!({"alg": "HS256"}), claims, b"x");
        assert!(
            parse(&hs, &[Algorithm::Rs256]).is_err(),
            "only allow-listed algorithms"
        );
    }

    fn rsa_jwk(modulus_bytes: usize, kid: &str) -> Value {
        json!({"kty": "RSA", "kid": kid, "n": b64(&vec![0xc5; modulus_bytes]), "e": "AQAB", "alg": "RS256"})
    }

    #[test]
    fn jwks_keys_are_checked_for_size_curve_and_family() {
        let jwks = json!({"keys": [
            rsa_jwk(256, "rsa-2048"),
            rsa_jwk(128, "rsa-1024"),
            {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ", "kid": "ec"},
            {"kty": "EC", "crv": "P-384", "x": "eA", "y": "eQ", "kid": "ec-384"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": b64(&[0xc5; 256]), "e": "AQAB", "alg": "HS256", "kid": "confused"},
            {"kty": "RSA", "n": b64(&[0xc5; 256]), "e": "AQAB", "use": "enc", "kid": "enc"},
        ]});
        let (keys, skipped) = parse_jwks(&jwks.to_string()).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap()).collect();
        assert_eq!(kids, ["rsa-2048", "ec"]);
        assert_eq!(skipped.len(), 5, "{skipped:#?}");
        assert!(skipped[0].contains("1024 bits"));
        assert_eq!(
            keys[0].jwk.get("alg"),
            None,
            "only public members are imported"
        );
        assert!(parse_jwks("{}").is_err());
    }

    #[test]
    fn keys_are_selected_by_kid_and_family() {
        let (keys, _) = parse_jwks(&json!({"keys": [rsa_jwk(256, "a"), rsa_jwk(256, "b"), {"kty": "EC", "crv": "P-256", "x": "eA", "y": "eQ"}]}).to_string()).unwrap();
        let parsed = |header: Value| parse(&token(header, json!({}), &[0; 64]), ALL).unwrap();
        assert_eq!(
            select_key(&keys, &parsed(json!({"alg": "RS256", "kid": "b"})))
                .unwrap()
                .kid
                .as_deref(),
            Some("b")
        );
        assert!(select_key(&keys, &parsed(json!({"alg": "RS256", "kid": "zzz"}))).is_none());
        assert!(
            select_key(&keys, &parsed(json!({"alg": "RS256"}))).is_none(),
            "ambiguous without kid"
        );
        assert!(
            select_key(&keys, &parsed(json!({"alg": "ES256"}))).is_some(),
            "the only EC key"
        );
        assert!(
            select_key(&keys, &parsed(json!({"alg": "ES256", "kid": "a"}))).is_none(),
            "an RSA kid never verifies ES256"
        );
    }

    fn policy() -> ClaimPolicy {
        ClaimPolicy {
            issuer: Some("https://id.example.com/".into()),
            audience: Some("gateway".into()),
            leeway_s: 30,
            user_claim: "sub".into(),
            tier_claim: "tier".into(),
            team_claim: "org".into(),
            default_tier: "free".into(),
        }
    }

    fn claims(extra: Value) -> Map<String, Value> {
        let mut base = json!({"sub": "user-1", "iss": "https://id.example.com/", "aud": ["other", "gateway"], "exp": 1000, "iat": 900});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base.as_object().unwrap().clone()
    }

    #[test]
    fn claims_map_to_a_principal() {
        let principal = policy()
            .principal(&claims(json!({"tier": "pro", "org": "acme"})), 950)
            .unwrap();
        assert_eq!(
            (
                principal.id.as_str(),
                principal.tier.as_str(),
                principal.team.as_deref()
            ),
            ("jwt:https%3A//id.example.com/:user-1", "pro", Some("acme"))
        );
        assert_eq!(principal.via, "jwt");
        assert_eq!(
            policy().principal(&claims(json!({})), 950).unwrap().tier,
            "free"
        );
    }

    #[test]
    fn time_claims_are_checked_with_leeway_on_a_fake_clock() {
        let p = policy();
        assert!(
            p.principal(&claims(json!({})), 1029).is_ok(),
            "within leeway after exp"
        );
        let expired = p.principal(&claims(json!({})), 1030).unwrap_err();
        assert_eq!((expired.status(), expired.code()), (401, "token_expired"));
        assert!(p.principal(&claims(json!({"nbf": 990})), 950).is_err());
        assert!(
            p.principal(&claims(json!({"nbf": 970})), 950).is_ok(),
            "nbf within leeway"
        );
        assert!(
            p.principal(&claims(json!({"iat": 2000})), 950).is_err(),
            "issued in the future"
        );
        let mut no_exp = claims(json!({}));
        no_exp.remove("exp");
        assert!(p.principal(&no_exp, 950).is_err(), "exp is required");
        assert!(p.principal(&claims(json!({"exp": "soon"})), 950).is_err());
    }

    #[test]
    fn issuer_audience_and_user_are_required_when_configured() {
        let p = policy();
        for bad in [
            json!({"iss": "https://evil/"}),
            json!({"aud": "other"}),
            json!({"aud": null}),
            json!({"sub": ""}),
            json!({"sub": 5}),
        ] {
            let err = p.principal(&claims(bad.clone()), 950).unwrap_err();
            assert_eq!(err.code(), "invalid_token", "{bad}");
        }
        let open = ClaimPolicy {
            issuer: None,
            audience: None,
            ..policy()
        };
        assert!(open
            .principal(&claims(json!({"iss": "anything", "aud": "x"})), 950)
            .is_ok());
    }
}
