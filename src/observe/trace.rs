//! W3C Trace Context (`traceparent`, `tracestate`): a request continues the client's trace
//! when it sends a valid one, or starts a fresh one; the gateway's own span id goes
//! upstream and back to the client, so that its hop shows in the caller's traces.

use std::fmt::Write;

/// Longest `tracestate` passed on (the specification's 32 members fit in 512 bytes).
const MAX_TRACESTATE_BYTES: usize = 512;

/// The trace a request belongs to, and the gateway's span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, never all zero.
    pub trace_id: String,
    /// The gateway's span: 16 lowercase hex digits, never all zero.
    pub span_id: String,
    /// The client's span, when it sent one.
    pub parent_id: Option<String>,
    /// `trace-flags`, two hex digits (`01`: sampled).
    pub flags: String,
    /// The client's `tracestate`, passed on unchanged when it is well formed.
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// Continues the trace of a valid `traceparent` (any version but `ff`: its first four
    /// fields), or starts a sampled one; `random` gives the new ids' bits.
    pub fn continue_or_start(
        traceparent: Option<&str>,
        tracestate: Option<&str>,
        mut random: impl FnMut() -> u32,
    ) -> Self {
        let span_id = hex_id(2, &mut random);
        match traceparent.and_then(parse) {
            Some((trace_id, parent_id, flags)) => TraceContext {
                trace_id: trace_id.to_owned(),
                span_id,
                parent_id: Some(parent_id.to_owned()),
                flags: flags.to_owned(),
                tracestate: tracestate
                    .filter(|state| state.len() <= MAX_TRACESTATE_BYTES)
                    .filter(|state| state.bytes().all(|b| (0x20..0x7f).contains(&b)))
                    .map(str::to_owned),
            },
            None => TraceContext {
                trace_id: hex_id(4, &mut random),
                span_id,
                parent_id: None,
                flags: "01".to_owned(),
                tracestate: None,
            },
        }
    }

    /// Whether the trace is sampled (`trace-flags` has its lowest bit set): only sampled
    /// traces are exported.
    pub fn sampled(&self) -> bool {
        u8::from_str_radix(&self.flags, 16).is_ok_and(|flags| flags & 1 == 1)
    }

    /// The `traceparent` naming the gateway's span, for the upstream call and the response.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// `(trace id, parent id, flags)` of a valid `traceparent`.
fn parse(header: &str) -> Option<(&str, &str, &str)> {
    let header = header.trim();
    let fields: Vec<&str> = header.splitn(5, '-').collect();
    let (version, trace_id, parent_id, flags) = match fields.as_slice() {
        [version, trace_id, parent_id, flags] => (*version, *trace_id, *parent_id, *flags),
        // A later version may add fields after these four.
        [version, trace_id, parent_id, flags, _] if *version != "00" => {
            (*version, *trace_id, *parent_id, *flags)
        }
        _ => return None,
    };
    let hex = |field: &str, len: usize| {
        field.len() == len
            && field
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let nonzero = |field: &str| field.bytes().any(|b| b != b'0');
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && nonzero(trace_id)
        && hex(parent_id, 16)
        && nonzero(parent_id)
        && hex(flags, 2);
    valid.then_some((trace_id, parent_id, flags))
}

/// `words` random 32-bit words as lowercase hex (never all zero).
/// A random id of `words` 32-bit words in lowercase hex, never all zero.
pub fn hex_id(words: usize, random: &mut impl FnMut() -> u32) -> String {
    let mut id = String::with_capacity(words * 8);
    for _ in 0..words {
        let _ = write!(id, "{:08x}", random());
    }
    if id.bytes().all(|b| b == b'0') {
        id.replace_range(id.len() - 1.., "1");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> u32 {
        let mut n = 0;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_the_gateways_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::continue_or_start(Some(incoming), Some("vendor=abc"), counter());
        assert_eq!(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(trace.span_id, "0000000100000002");
        assert_eq!(trace.tracestate.as_deref(), Some("vendor=abc"));
        assert_eq!(
            trace.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000100000002-01"
        );
        // A later version with more fields keeps its first four.
        let later = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra";
        let trace = TraceContext::continue_or_start(Some(later), None, counter());
        assert_eq!(
            (trace.parent_id.is_some(), trace.flags.as_str()),
            (true, "00")
        );
    }

    #[test]
    fn anything_else_starts_a_fresh_sampled_trace() {
        let invalid = [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47é6-00f067aa0ba902b7-01",
        ];
        for header in invalid {
            let trace = TraceContext::continue_or_start(Some(header), Some("a=b"), counter());
            assert_eq!(trace.parent_id, None, "{header}");
            assert_eq!(trace.tracestate, None);
            assert_eq!(trace.trace_id.len(), 32);
            assert_eq!(trace.flags, "01");
        }
        let zero = TraceContext::continue_or_start(None, None, || 0);
        assert!(zero.trace_id.ends_with('1') && zero.span_id.ends_with('1'));
        let long = "x".repeat(MAX_TRACESTATE_BYTES + 1);
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let trace = TraceContext::continue_or_start(Some(incoming), Some(&long), counter());
        assert_eq!(trace.tracestate, None);
    }
}
