//! Which upstream failures are retried, and how long to wait before the next attempt.

use crate::limit::period::unix_ms;

/// Retries and backoff for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `UPSTREAM_RETRIES`: retries of one target after its first attempt.
    pub retries: u32,
    /// `RETRY_BASE_DELAY_MS`: the backoff ceiling of the first retry; it doubles with each
    /// retry after that.
    pub base_delay_ms: u32,
    /// `RETRY_MAX_DELAY_MS`: the most any backoff waits. An upstream that asks (with
    /// `Retry-After`) for a longer wait is not retried: its fallback is tried instead.
    pub max_delay_ms: u32,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): "full jitter", a
    /// uniformly random time from zero up to the exponential ceiling `base × 2^retry`
    /// (capped at the maximum), so that clients failing together do not retry together.
    /// `random` is a uniformly random `u32` from the platform CSPRNG.
    pub fn backoff_ms(&self, retry: u32, random: u32) -> u64 {
        let ceiling = u64::from(self.base_delay_ms)
            .saturating_mul(1u64 << retry.min(32))
            .min(u64::from(self.max_delay_ms));
        // Scales `random` onto 0..=ceiling without modulo bias worth speaking of.
        (u64::from(random) * (ceiling + 1)) >> 32
    }
}

/// What a failed attempt means for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Transient (network error, timeout, 408, 429, 5xx, 529, a broken or unreadable
    /// answer): worth retrying on the same target, after `retry_after_ms` if the upstream
    /// said how long to wait.
    Transient {
        /// The upstream's `retry-after-ms` or `Retry-After`, in milliseconds.
        retry_after_ms: Option<u64>,
    },
    /// The target cannot serve this request but another might (the upstream refused the
    /// gateway's key or does not know the model: 401, 403, 404): go to the fallback.
    TargetUnusable,
    /// The request itself is wrong (any other 4xx): no other target would do better, so the
    /// client gets the error now.
    Request,
}

impl Failure {
    /// The failure an upstream's non-2xx `status` stands for.
    pub fn of_status(status: u16, retry_after_ms: Option<u64>) -> Failure {
        match status {
            408 | 429 | 500..=599 => Failure::Transient { retry_after_ms },
            // A redirect is never followed (the provider key would go to its target): the
            // target is misconfigured.
            300..=399 | 401 | 403 | 404 => Failure::TargetUnusable,
            _ => Failure::Request,
        }
    }

    /// A failure without a status: no connection, no answer in time, a broken body.
    pub const NETWORK: Failure = Failure::Transient {
        retry_after_ms: None,
    };

    /// Whether it counts against the target's circuit breaker. A request the upstream
    /// refused on its merits shows the upstream is up.
    pub fn counts_against_target(self) -> bool {
        self != Failure::Request
    }
}

/// The wait an upstream asked for: `retry-after-ms` (milliseconds, OpenAI and Anthropic)
/// when present and valid, else `Retry-After` as delay-seconds or an HTTP date (RFC 9110
/// §10.2.3), relative to `now_ms`. A date in the past means no wait.
pub fn retry_after_ms(
    retry_after_ms_header: Option<&str>,
    retry_after_header: Option<&str>,
    now_ms: u64,
) -> Option<u64> {
    if let Some(ms) = retry_after_ms_header.and_then(parse_milliseconds) {
        return Some(ms);
    }
    let value = retry_after_header?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1_000));
    }
    let at = parse_http_date(value)?;
    Some(at.saturating_sub(now_ms))
}

/// A non-negative decimal number of milliseconds (`"1500"`, `"20.2"`), rounded up.
/// Parsed by hand: float parsing costs several KB of wasm for this one header.
fn parse_milliseconds(value: &str) -> Option<u64> {
    let (whole, fraction) = value.trim().split_once('.').unwrap_or((value.trim(), ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole = whole.parse::<u64>().ok()?;
    let round_up = fraction.bytes().any(|b| b != b'0');
    Some(whole.saturating_add(u64::from(round_up)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form HTTP senders must
/// use, into Unix milliseconds.
fn parse_http_date(value: &str) -> Option<u64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (_weekday, rest) = value.split_once(", ")?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, "GMT"] = fields[..] else {
        return None;
    };
    let month = MONTHS.iter().position(|name| *name == month)? as u32 + 1;
    let mut clock = time.split(':').map(|part| part.parse::<u32>().ok());
    let (Some(Some(h)), Some(Some(m)), Some(Some(s)), None) =
        (clock.next(), clock.next(), clock.next(), clock.next())
    else {
        return None;
    };
    if m > 59 || s > 60 {
        return None;
    }
    unix_ms(
        year.parse().ok()?,
        month,
        day.parse().ok()?,
        h * 3_600 + m * 60 + s.min(59),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 2,
        base_delay_ms: 250,
        max_delay_ms: 1_000,
    };

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_capped_ceiling() {
        for (retry, ceiling) in [(0, 250), (1, 500), (2, 1_000), (3, 1_000), (40, 1_000)] {
            assert_eq!(POLICY.backoff_ms(retry, 0), 0);
            assert_eq!(POLICY.backoff_ms(retry, u32::MAX), ceiling);
            assert_eq!(POLICY.backoff_ms(retry, 1 << 31), ceiling.div_ceil(2));
        }
        // Uniform: every value of a small range is reachable and equally likely.
        let small = RetryPolicy {
            base_delay_ms: 3,
            ..POLICY
        };
        let mut seen = [0u32; 4];
        for step in 0..4_000u32 {
            let random = (u64::from(step) * (1u64 << 32) / 4_000) as u32;
            seen[small.backoff_ms(0, random) as usize] += 1;
        }
        assert_eq!(seen, [1_000; 4]);
    }

    #[test]
    fn statuses_are_classified_as_the_issue_lists() {
        for status in [408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(
                Failure::of_status(status, Some(5)),
                Failure::Transient {
                    retry_after_ms: Some(5)
                }
            );
        }
        for status in [301, 302, 307, 308, 401, 403, 404] {
            assert_eq!(Failure::of_status(status, None), Failure::TargetUnusable);
        }
        for status in [400, 409, 413, 422] {
            assert_eq!(Failure::of_status(status, None), Failure::Request);
            assert!(!Failure::of_status(status, None).counts_against_target());
        }
        assert!(Failure::NETWORK.counts_against_target());
        assert!(Failure::TargetUnusable.counts_against_target());
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_http_dates() {
        // 2026-11-27T13:38:32Z.
        let now = 1_795_786_712_000;
        assert_eq!(retry_after_ms(Some("1500"), Some("9"), now), Some(1_500));
        assert_eq!(retry_after_ms(Some("20.2"), None, now), Some(21));
        assert_eq!(retry_after_ms(Some("soon"), Some("2"), now), Some(2_000));
        assert_eq!(retry_after_ms(Some("-1"), Some("2"), now), Some(2_000));
        assert_eq!(retry_after_ms(Some("7.000"), None, now), Some(7));
        assert_eq!(retry_after_ms(Some(".5"), Some("1"), now), Some(1_000));
        assert_eq!(retry_after_ms(Some("1e3"), None, now), None);
        assert_eq!(retry_after_ms(None, Some(" 0 "), now), Some(0));
        assert_eq!(
            retry_after_ms(None, Some("Fri, 27 Nov 2026 13:38:35 GMT"), now),
            Some(3_000)
        );
        assert_eq!(
            retry_after_ms(None, Some("Fri, 27 Nov 2026 13:00:00 GMT"), now),
            Some(0)
        );
        for bad in [
            "Fri, 27 Nov 2026 13:38:35 UTC",
            "Fri, 31 Feb 2026 13:38:35 GMT",
            "Fri, 27 Foo 2026 13:38:35 GMT",
            "Fri, 27 Nov 2026 13:61:35 GMT",
            "27 Nov 2026 13:38:35 GMT",
            "-3",
            "",
        ] {
            assert_eq!(retry_after_ms(None, Some(bad), now), None, "{bad}");
        }
        assert_eq!(retry_after_ms(None, None, now), None);
    }
}
