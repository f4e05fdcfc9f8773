//! The rate-limit headers OpenAI clients read: `x-ratelimit-{limit,remaining,reset}-
//! {requests,tokens}` on every limited response, `retry-after` and `retry-after-ms` on 429.

use super::limiter::{RateStatus, Standing};

/// The `x-ratelimit-*` headers for `standing` (only for the limits that are set).
pub fn rate_limit_headers(standing: &Standing) -> Vec<(&'static str, String)> {
    let mut headers = Vec::with_capacity(6);
    let rates = [
        (
            [
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ],
            standing.requests,
        ),
        (
            [
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ],
            standing.tokens,
        ),
    ];
    for ([limit, remaining, reset], rate) in rates {
        let Some(RateStatus {
            limit: max,
            remaining: left,
            reset_ms,
            ..
        }) = rate
        else {
            continue;
        };
        headers.push((limit, max.to_string()));
        headers.push((remaining, left.to_string()));
        headers.push((reset, duration(reset_ms)));
    }
    headers
}

/// `retry-after` (whole seconds, rounded up) and `retry-after-ms`.
pub fn retry_headers(retry_after_ms: u64) -> [(&'static str, String); 2] {
    [
        ("retry-after", retry_after_ms.div_ceil(1_000).to_string()),
        ("retry-after-ms", retry_after_ms.to_string()),
    ]
}

/// A duration as OpenAI writes reset times: `250ms`, `6s`, `1.5s`, `1m30s`, `2h0m0s`.
pub fn duration(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let (hours, minutes) = (ms / 3_600_000, ms / 60_000 % 60);
    let (seconds, millis) = (ms / 1_000 % 60, ms % 1_000);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    text.push_str(&seconds.to_string());
    if millis > 0 {
        let fraction = format!("{millis:03}");
        text.push('.');
        text.push_str(fraction.trim_end_matches('0'));
    }
    text.push('s');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_like_openais() {
        let cases = [
            (0, "0ms"),
            (250, "250ms"),
            (1_000, "1s"),
            (1_500, "1.5s"),
            (6_020, "6.02s"),
            (60_000, "1m0s"),
            (90_000, "1m30s"),
            (7_200_000, "2h0m0s"),
            (86_399_999, "23h59m59.999s"),
        ];
        for (ms, text) in cases {
            assert_eq!(duration(ms), text, "{ms} ms");
        }
    }

    #[test]
    fn headers_cover_the_limits_that_are_set() {
        let standing = Standing {
            requests: Some(RateStatus {
                limit: 10,
                window_s: 60,
                remaining: 9,
                reset_ms: 6_000,
            }),
            tokens: None,
        };
        let headers = rate_limit_headers(&standing);
        assert_eq!(
            headers,
            vec![
                ("x-ratelimit-limit-requests", "10".to_owned()),
                ("x-ratelimit-remaining-requests", "9".to_owned()),
                ("x-ratelimit-reset-requests", "6s".to_owned()),
            ]
        );
        assert_eq!(
            retry_headers(1_001),
            [
                ("retry-after", "2".to_owned()),
                ("retry-after-ms", "1001".to_owned())
            ]
        );
    }
}
