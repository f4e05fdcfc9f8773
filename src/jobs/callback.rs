//! Where a job's webhook may go: the server-side request forgery (SSRF) check on
//! `callback_url`.
//!
//! The gateway POSTs to a URL a client chose, from inside Cloudflare's network, so the URL
//! must not point at something only the gateway can reach: `https` only, no credentials,
//! and no address (or name) that is private, loopback, link-local, unique-local or
//! otherwise special-use, unless the operator allow-lists the host
//! (`WEBHOOK_ALLOWED_HOSTS`, for development and tests).
//!
//! The check runs on the URL as the platform's WHATWG parser canonicalized it, the same
//! parser `fetch` uses, so `https://2130706433/`, `https://0x7f.1/` and `https://[::ffff:7f00:1]/`
//! are all seen as the loopback addresses they are. A Worker cannot resolve a name before
//! fetching it: a public name whose DNS points at a private address is refused by
//! Cloudflare's egress (Workers cannot reach private networks), not by this check.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::{ErrorKind, GatewayError};

/// Most bytes of a `callback_url`.
pub const MAX_CALLBACK_URL_BYTES: usize = 2_048;

/// A URL as the WHATWG parser canonicalized it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `https:`, `http:`, ... (with the colon, as `URL.protocol` gives it).
    pub protocol: String,
    /// The host without port: a name in lowercase ASCII (punycode), a dotted IPv4 address
    /// or a bracketed IPv6 address.
    pub hostname: String,
    /// The port, empty for the scheme's default.
    pub port: String,
    /// The URL carries a user name or password.
    pub has_credentials: bool,
}

/// Hosts that may receive webhooks although the check would refuse them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackPolicy {
    /// `host` or `host:port` entries, lowercase (`127.0.0.1`, `[::1]:8080`).
    allowed_hosts: Vec<String>,
}

impl CallbackPolicy {
    /// Parses `WEBHOOK_ALLOWED_HOSTS`: hosts or `host:port`s, comma-separated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut allowed_hosts = Vec::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry.contains(['/', '@', ' ', '?', '#']) {
                return Err(format!(
                    "WEBHOOK_ALLOWED_HOSTS entries are host or host:port, got {entry:?}"
                ));
            }
            allowed_hosts.push(entry.to_ascii_lowercase());
        }
        Ok(CallbackPolicy { allowed_hosts })
    }

    /// Whether `url`'s host (or host and port) is allow-listed.
    fn allows(&self, url: &ParsedUrl) -> bool {
        let with_port = format!("{}:{}", url.hostname, url.port);
        self.allowed_hosts
            .iter()
            .any(|entry| *entry == url.hostname || (!url.port.is_empty() && *entry == with_port))
    }

    /// Accepts `url` as a webhook target, or says why not (400 `invalid_callback_url`).
    /// An allow-listed host may also use plain `http`.
    pub fn check(&self, url: &ParsedUrl) -> Result<(), GatewayError> {
        if url.has_credentials {
            return Err(refused("must not carry a user name or password"));
        }
        let allowed = self.allows(url);
        match url.protocol.as_str() {
            "https:" => {}
            "http:" if allowed => {}
            _ => return Err(refused("must be an https URL")),
        }
        if allowed {
            return Ok(());
        }
        if let Some(why) = special_host(&url.hostname) {
            return Err(refused(&format!("must not point at {why}")));
        }
        Ok(())
    }
}

/// The 400 for a callback URL that may not be used.
pub fn refused(why: &str) -> GatewayError {
    GatewayError::new(ErrorKind::InvalidCallbackUrl, format!("callback_url {why}"))
        .with_param("callback_url")
}

/// What kind of non-public host `hostname` is, if it is one.
fn special_host(hostname: &str) -> Option<&'static str> {
    if let Some(inner) = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match inner.parse::<Ipv6Addr>() {
            Ok(address) => special_ipv6(address),
            Err(_) => Some("an address that cannot be read"),
        };
    }
    if let Ok(address) = hostname.parse::<Ipv4Addr>() {
        return special_ipv4(address);
    }
    let name = hostname.trim_end_matches('.');
    if !name.contains('.') {
        return Some("a single-label (intranet) name");
    }
    const SPECIAL_SUFFIXES: [&str; 6] = [
        ".localhost",
        ".local",
        ".internal",
        ".localdomain",
        ".home.arpa",
        ".in-addr.arpa",
    ];
    SPECIAL_SUFFIXES
        .iter()
        .any(|suffix| name.ends_with(suffix))
        .then_some("a local or internal name")
}

/// Why an IPv4 address is not a public one, if it is not.
fn special_ipv4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    Some(match (a, b, c) {
        (127, _, _) => "a loopback address",
        (10, _, _) | (172, 16..=31, _) | (192, 168, _) => "a private address",
        (169, 254, _) => "a link-local address",
        (100, 64..=127, _) => "a shared (carrier-grade NAT) address",
        (0, _, _) => "an unspecified address",
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a reserved address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=255, _, _) => "a multicast or reserved address",
        _ => return None,
    })
}

/// Why an IPv6 address is not a public one, if it is not. Addresses that embed an IPv4
/// address (mapped, compatible, NAT64, 6to4) are judged by it.
fn special_ipv6(address: Ipv6Addr) -> Option<&'static str> {
    let segments = address.segments();
    if address.is_loopback() {
        return Some("a loopback address");
    }
    if address.is_unspecified() {
        return Some("an unspecified address");
    }
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match segments {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated).
        [0, 0, 0, 0, 0, 0xffff | 0, high, low] => {
            special_ipv4(embedded(high, low)).or(Some("an IPv4-embedding address"))
        }
        // 64:ff9b::a.b.c.d (NAT64) and its local-use range.
        [0x64, 0xff9b, ..] => special_ipv4(embedded(segments[6], segments[7])),
        // 2002:AABB:CCDD::/48 (6to4).
        [0x2002, high, low, ..] => special_ipv4(embedded(high, low)),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("a unique-local address"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("a link-local address"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("a site-local address"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("a multicast address"),
        [0x2001, 0x0db8, ..] => Some("a documentation address"),
        // Teredo hides an IPv4 address (obfuscated) behind a relay.
        [0x2001, 0, ..] => Some("a Teredo address"),
        [0x0100, 0, 0, 0, ..] => Some("a discard address"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL the way the WHATWG parser would give it back, for a canonical `url`.
    fn parsed(url: &str) -> ParsedUrl {
        let (protocol, rest) = url.split_once("//").unwrap();
        let authority = rest.split('/').next().unwrap();
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (!credentials.is_empty(), host),
            None => (false, authority),
        };
        let (hostname, port) = match host.rfind(':') {
            Some(at) if !host[at..].contains(']') => (&host[..at], &host[at + 1..]),
            _ => (host, ""),
        };
        ParsedUrl {
            protocol: protocol.to_owned(),
            hostname: hostname.to_owned(),
            port: port.to_owned(),
            has_credentials: credentials,
        }
    }

    fn check(policy: &CallbackPolicy, url: &str) -> Result<(), String> {
        policy.check(&parsed(url)).map_err(|error| {
            assert_eq!(error.code(), "invalid_callback_url");
            assert_eq!(error.param.as_deref(), Some("callback_url"));
            error.message
        })
    }

    #[test]
    fn public_https_urls_are_accepted() {
        let policy = CallbackPolicy::default();
        for url in [
            "https://hooks.example.com/jobs",
            "https://api.example.co.uk:8443/x",
            "https://8.8.8.8/h",
            "https://[2606:4700::1111]/h",
            "https://172.32.0.1/h",
            "https://100.128.0.1/h",
        ] {
            assert_eq!(check(&policy, url), Ok(()), "{url}");
        }
    }

    #[test]
    fn private_special_and_non_https_targets_are_refused() {
        let policy = CallbackPolicy::default();
        let refused = [
            ("http://hooks.example.com/", "https"),
            ("ftp://hooks.example.com/", "https"),
            ("https://user:pw@hooks.example.com/", "password"),
            ("https://127.0.0.1/", "loopback"),
            ("https://10.1.2.3/", "private"),
            ("https://172.16.0.1/", "private"),
            ("https://192.168.1.1/", "private"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://100.64.0.1/", "carrier-grade"),
            ("https://0.0.0.0/", "unspecified"),
            ("https://224.0.0.1/", "multicast"),
            ("https://[::1]/", "loopback"),
            ("https://[::]/", "unspecified"),
            ("https://[fd00::1]/", "unique-local"),
            ("https://[fe80::1]/", "link-local"),
            ("https://[::ffff:7f00:1]/", "loopback"),
            ("https://[::ffff:a9fe:a9fe]/", "link-local"),
            ("https://[64:ff9b::a00:1]/", "private"),
            ("https://[2002:c0a8:101::1]/", "private"),
            ("https://[2001:db8::1]/", "documentation"),
            ("https://localhost/", "intranet"),
            ("https://api.localhost/", "local"),
            ("https://printer.local/", "local"),
            ("https://metadata.google.internal/", "local"),
            ("https://intranet/", "intranet"),
        ];
        for (url, why) in refused {
            let message = check(&policy, url).expect_err(url);
            assert!(message.contains(why), "{url}: {message}");
        }
    }

    #[test]
    fn the_allow_list_admits_hosts_and_ports_over_http() {
        let policy =
            CallbackPolicy::parse(" 127.0.0.1 , [::1]:8080,Hooks.Lan.Example:9000").unwrap();
        assert_eq!(check(&policy, "http://127.0.0.1:43123/hook"), Ok(()));
        assert_eq!(check(&policy, "https://127.0.0.1/hook"), Ok(()));
        assert_eq!(check(&policy, "http://[::1]:8080/"), Ok(()));
        assert!(
            check(&policy, "http://[::1]:8081/").is_err(),
            "another port"
        );
        assert_eq!(check(&policy, "http://hooks.lan.example:9000/"), Ok(()));
        assert!(check(&policy, "http://10.0.0.1/").is_err());
        assert!(
            check(&policy, "http://user@127.0.0.1/").is_err(),
            "never credentials"
        );
        assert!(CallbackPolicy::parse("http://127.0.0.1").is_err());
    }
}
