//! An incremental Server-Sent Events parser that follows the WHATWG event-stream rules.
//!
//! Bytes arrive in whatever pieces the network makes: a chunk may end inside a line, inside
//! a multi-byte UTF-8 character or between the `\r` and `\n` of a line break. The parser
//! keeps only the unfinished line and the event being built, and refuses an event (its
//! data lines and the line being read, together) larger than its bound, so memory is
//! bounded by that, never by the whole stream. Lines are split on bytes (`\r`, `\n` never
//! occur inside a UTF-8 sequence) and decoded only when complete.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Error raised when an event (its data so far and the line being read) grows past the
/// parser's bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTooLarge {
    /// The bound that was exceeded, in bytes.
    pub limit: usize,
}

/// Incremental parser: feed it bytes with [`SseParser::push`], take events as they complete.
#[derive(Debug)]
pub struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    /// The previous chunk ended with `\r`; a leading `\n` in the next one belongs to it.
    after_cr: bool,
    at_stream_start: bool,
    max_event_bytes: usize,
}

/// Upper bound for one event; a provider event larger than this is a broken upstream.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_MAX_EVENT_BYTES)
    }
}

impl SseParser {
    /// A parser that refuses events larger than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        SseParser {
            line: Vec::new(),
            event: None,
            data: String::new(),
            has_data: false,
            after_cr: false,
            at_stream_start: true,
            max_event_bytes,
        }
    }

    /// Feeds the next piece of the stream and appends every event it completes to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), EventTooLarge> {
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.extend_line(&rest[..end])?;
            self.finish_line(out);
            let is_cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
        }
        self.extend_line(rest)
    }

    /// Whether bytes of an unfinished line or event are pending. At the end of a stream this
    /// means the upstream stopped mid-event; the WHATWG rules drop such an event.
    pub fn has_partial_event(&self) -> bool {
        !self.line.is_empty() || self.has_data || self.event.is_some()
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), EventTooLarge> {
        if self.data.len() + self.line.len() + bytes.len() > self.max_event_bytes {
            return Err(EventTooLarge {
                limit: self.max_event_bytes,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn finish_line(&mut self, out: &mut Vec<SseEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if self.at_stream_start {
            self.at_stream_start = false;
            if line.starts_with("\u{feff}".as_bytes()) {
                line.drain(..3);
            }
        }
        if line.is_empty() {
            self.dispatch(out);
        } else {
            self.process_field(&String::from_utf8_lossy(&line));
        }
        // Reuse the allocation for the next line.
        line.clear();
        self.line = line;
    }

    fn process_field(&mut self, line: &str) {
        if line.starts_with(':') {
            return; // comment / keep-alive
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` steer browser reconnection; a proxy has no use for them.
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        out.push(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_pieces(pieces: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for piece in pieces {
            parser.push(piece, &mut out).unwrap();
        }
        out
    }

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_owned(),
        }
    }

    /// A stream as OpenAI sends it, with a multi-byte character and an emoji.
    const OPENAI_CAPTURE: &str = concat!(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Grüße 👋🏽\"},\"finish_reason\":null}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n",
    );

    /// A stream with named events, CRLF line ends and a multi-line data field.
    const NAMED_CRLF_CAPTURE: &str = concat!(
        "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n",
        "event: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n",
        "event: content_block_delta\r\ndata: {\"text\":\r\ndata: \"¿Qué?\"}\r\n\r\n",
        "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
    );

    #[test]
    fn every_split_point_of_real_captures_yields_the_same_events() {
        for capture in [OPENAI_CAPTURE, NAMED_CRLF_CAPTURE] {
            let bytes = capture.as_bytes();
            let whole = parse_in_pieces(&[bytes]);
            assert!(whole.len() >= 4, "capture parses: {whole:?}");
            for split in 0..=bytes.len() {
                let (a, b) = bytes.split_at(split);
                assert_eq!(parse_in_pieces(&[a, b]), whole, "split at byte {split}");
            }
            for split_a in (0..bytes.len()).step_by(7) {
                for split_b in split_a..bytes.len() {
                    let pieces = [
                        &bytes[..split_a],
                        &bytes[split_a..split_b],
                        &bytes[split_b..],
                    ];
                    assert_eq!(parse_in_pieces(&pieces), whole, "{split_a}/{split_b}");
                }
            }
            let one_byte_at_a_time: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(parse_in_pieces(&one_byte_at_a_time), whole);
        }
    }

    #[test]
    fn openai_capture_decodes_multibyte_text_intact() {
        let events = parse_in_pieces(&[OPENAI_CAPTURE.as_bytes()]);
        assert_eq!(events.len(), 4, "the keep-alive comment is not an event");
        assert!(events[1].data.contains("Grüße 👋🏽"));
        assert_eq!(events[3], data("[DONE]"));
    }

    #[test]
    fn named_events_and_multiline_data() {
        let events = parse_in_pieces(&[NAMED_CRLF_CAPTURE.as_bytes()]);
        assert_eq!(events[0].event.as_deref(), Some("message_start"));
        assert_eq!(events[2].data, "{\"text\":\n\"¿Qué?\"}");
        assert_eq!(events[3].event.as_deref(), Some("message_stop"));
    }

    #[test]
    fn lone_cr_is_a_line_end_and_crlf_split_across_chunks_is_one() {
        assert_eq!(parse_in_pieces(&[b"data: a\r\rdata: b\r"]), vec![data("a")]);
        assert_eq!(
            parse_in_pieces(&[b"data: a\r", b"\ndata: b\r\n", b"\r\n"]),
            vec![data("a\nb")]
        );
    }

    #[test]
    fn field_rules_follow_the_spec() {
        let events = parse_in_pieces(&[
            b"\xEF\xBB\xBFdata:no-space\n\n",
            b"data\n\n",
            b"id: 7\nretry: 10\nunknown: x\ndata:  two spaces\n\n",
            b"event: only-an-event\n\n",
        ]);
        assert_eq!(
            events,
            vec![data("no-space"), data(""), data(" two spaces")]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let events = parse_in_pieces(&[b"data: \xff\xfe ok\n\n"]);
        assert_eq!(events, vec![data("\u{fffd}\u{fffd} ok")]);
    }

    #[test]
    fn an_unterminated_event_is_reported_pending() {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        parser.push(b"data: {\"partial\"", &mut out).unwrap();
        assert!(out.is_empty());
        assert!(parser.has_partial_event());
        parser.push(b"}\n\n", &mut out).unwrap();
        assert!(!parser.has_partial_event());
        assert_eq!(out, vec![data("{\"partial\"}")]);
    }

    #[test]
    fn lines_are_bounded() {
        let mut parser = SseParser::new(16);
        let mut out = Vec::new();
        assert!(parser.push(b"data: 0123456789", &mut out).is_ok());
        assert_eq!(
            parser.push(b"abcdef", &mut out),
            Err(EventTooLarge { limit: 16 })
        );
    }

    #[test]
    fn events_are_bounded_not_only_their_lines() {
        // Many short data lines add up to one event: refused once it passes the bound.
        let mut parser = SseParser::new(64);
        let mut out = Vec::new();
        let result = (0..100).try_for_each(|_| parser.push(b"data: 0123456789\n", &mut out));
        assert_eq!(result, Err(EventTooLarge { limit: 64 }));
        assert!(out.is_empty());
        // Events below the bound, one after another, are fine however many.
        let mut parser = SseParser::new(64);
        for _ in 0..1_000 {
            parser.push(b"data: 0123456789\n\n", &mut out).unwrap();
        }
        assert_eq!(out.len(), 1_000);
    }

    #[test]
    fn parsing_ends_in_linear_time() {
        use guard_scan::hostile::{assert_linear, MAX_TEXT};
        assert_linear("the SSE parser", MAX_TEXT, |text| {
            let mut parser = SseParser::default();
            let mut out = Vec::new();
            for piece in text.as_bytes().chunks(7) {
                if parser.push(piece, &mut out).is_err() {
                    break;
                }
                out.clear();
            }
        });
    }
}
