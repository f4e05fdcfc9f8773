//! Redaction of JSON text that arrives in pieces: a tool call's arguments.
//!
//! Redacting the raw JSON text would miss what an escape hides (`\nsk-...` reads as a
//! word `nsk` to a scanner) and could break the JSON (a match that swallows the letter of
//! an escape). So each string is decoded, redacted as text on its own, and encoded again;
//! the text between strings goes through a redactor of its own whose markers are JSON
//! strings (a card number written as a number becomes `"[REDACTED_CARD]"`). The output is
//! valid JSON whenever the input is, and arguments that are not JSON at all are still
//! redacted as text.

use super::StreamRedactor;

/// Where the decoder is in the JSON text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between strings.
    #[default]
    Outside,
    /// Inside a string.
    InString,
    /// After a backslash inside a string.
    Escape,
    /// Inside a `\uXXXX` escape: the digits read so far and how many.
    Unicode { code: u32, digits: u8 },
}

/// Redacts JSON text that arrives in pieces (see the module's documentation).
#[derive(Debug)]
pub struct JsonRedactor {
    state: State,
    /// The high half of a surrogate pair, waiting for its low half.
    high_surrogate: Option<u32>,
    /// The text of the current string, redacted.
    string: StreamRedactor,
    /// The text between strings, redacted with quoted markers.
    outside: StreamRedactor,
}

impl Default for JsonRedactor {
    fn default() -> Self {
        JsonRedactor {
            state: State::Outside,
            high_surrogate: None,
            string: StreamRedactor::default(),
            outside: StreamRedactor::quoting_markers(),
        }
    }
}

impl JsonRedactor {
    /// Takes in `piece`; returns the redacted JSON text that can be released now.
    pub fn push(&mut self, piece: &str) -> String {
        let mut out = String::with_capacity(piece.len());
        // Runs of characters that need no decoding are pushed as slices.
        let mut run_start = 0;
        for (at, c) in piece.char_indices() {
            match (self.state, c) {
                (State::Outside, '"') => {
                    out.push_str(&self.outside.push(&piece[run_start..at]));
                    out.push_str(&self.outside.finish());
                    out.push('"');
                    self.state = State::InString;
                    run_start = at + 1;
                }
                (State::Outside, _) => {}
                (State::InString, '"') => {
                    self.flush_string_run(&piece[run_start..at], &mut out);
                    self.flush_surrogate(&mut out);
                    encode_into(&self.string.finish(), &mut out);
                    out.push('"');
                    self.state = State::Outside;
                    run_start = at + 1;
                }
                (State::InString, '\\') => {
                    self.flush_string_run(&piece[run_start..at], &mut out);
                    self.state = State::Escape;
                }
                (State::InString, _) => {}
                (State::Escape, 'u') => self.state = State::Unicode { code: 0, digits: 0 },
                (State::Escape, _) => {
                    let decoded = match c {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        'b' => '\u{8}',
                        'f' => '\u{c}',
                        // `"`, `\`, `/`, and what JSON does not allow (kept as it is).
                        other => other,
                    };
                    self.decoded(decoded, &mut out);
                    self.state = State::InString;
                    run_start = at + c.len_utf8();
                }
                (State::Unicode { code, digits }, _) => {
                    let code = (code << 4) | c.to_digit(16).unwrap_or(0xF);
                    if digits < 3 {
                        self.state = State::Unicode {
                            code,
                            digits: digits + 1,
                        };
                        continue;
                    }
                    self.state = State::InString;
                    run_start = at + c.len_utf8();
                    self.code_unit(code, &mut out);
                }
            }
        }
        match self.state {
            State::Outside => out.push_str(&self.outside.push(&piece[run_start..])),
            State::InString => self.flush_string_run(&piece[run_start..], &mut out),
            State::Escape | State::Unicode { .. } => {}
        }
        out
    }

    /// The rest, redacted, at the end of the text (an unfinished string is closed).
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if self.state == State::Outside {
            out.push_str(&self.outside.finish());
        } else {
            self.flush_surrogate(&mut out);
            encode_into(&self.string.finish(), &mut out);
            out.push('"');
        }
        let replaced = self.take_replaced();
        *self = JsonRedactor::default();
        self.string.replaced = replaced;
        out
    }

    /// How many matches were replaced since the last call.
    pub fn take_replaced(&mut self) -> u32 {
        self.string.take_replaced() + self.outside.take_replaced()
    }

    /// Pushes a run of a string's characters that held no escape.
    fn flush_string_run(&mut self, run: &str, out: &mut String) {
        if !run.is_empty() {
            self.flush_surrogate(out);
            encode_into(&self.string.push(run), out);
        }
    }

    /// Pushes one decoded character of a string.
    fn decoded(&mut self, c: char, out: &mut String) {
        self.flush_surrogate(out);
        let mut buffer = [0; 4];
        encode_into(&self.string.push(c.encode_utf8(&mut buffer)), out);
    }

    /// Takes in the UTF-16 code unit of a `\uXXXX` escape: a character, or half of one.
    fn code_unit(&mut self, unit: u32, out: &mut String) {
        match (self.high_surrogate.take(), unit) {
            (Some(high), 0xDC00..=0xDFFF) => {
                let code = 0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00);
                self.decoded(char::from_u32(code).unwrap_or('\u{FFFD}'), out);
            }
            (high, 0xD800..=0xDBFF) => {
                if high.is_some() {
                    self.decoded('\u{FFFD}', out);
                }
                self.high_surrogate = Some(unit);
            }
            (high, _) => {
                if high.is_some() {
                    self.decoded('\u{FFFD}', out);
                }
                self.decoded(char::from_u32(unit).unwrap_or('\u{FFFD}'), out);
            }
        }
    }

    /// A high surrogate that no low one followed stands for nothing readable.
    fn flush_surrogate(&mut self, out: &mut String) {
        if self.high_surrogate.take().is_some() {
            let mut buffer = [0; 4];
            encode_into(&self.string.push('\u{FFFD}'.encode_utf8(&mut buffer)), out);
        }
    }
}

/// Appends `text` to `out` as the inside of a JSON string.
fn encode_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::{assert_linear, pieces, random_text, Rng, MAX_TEXT};
    use serde_json::{json, Value};

    fn redact_in_pieces(text: &str, size: usize) -> String {
        let mut redactor = JsonRedactor::default();
        let mut out = String::new();
        for piece in pieces(text, size) {
            out.push_str(&redactor.push(piece));
        }
        out.push_str(&redactor.finish());
        out
    }

    #[test]
    fn strings_are_redacted_and_the_json_stays_valid() {
        let arguments = json!({
            "to": "jane.doe@example.com",
            "note": "call +1 415 555 2671\nor use sk-proj-0123456789abcdefghijklmn",
            "card": 4111111111111111u64,
            "nested": {"ip": ["10.1.2.3", "fine"], "ok": true, "n": 12},
        })
        .to_string();
        let expected = json!({
            "to": "[REDACTED_EMAIL]",
            "note": "call [REDACTED_PHONE]\nor use [REDACTED_SECRET]",
            "card": "[REDACTED_CARD]",
            "nested": {"ip": ["[REDACTED_IP]", "fine"], "ok": true, "n": 12},
        });
        for size in [1, 2, 5, 13, arguments.len()] {
            let out = redact_in_pieces(&arguments, size);
            let parsed: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
            assert_eq!(parsed, expected, "{size}-byte pieces");
        }
    }

    #[test]
    fn escapes_do_not_hide_secrets() {
        // `\n` before the key, and an `@` written as `\u0040`.
        let arguments = r#"{"a":"x\nsk-proj-0123456789abcdefghijklmn","b":"bob\u0040example.com","c":"\ud83d\ude00 ok"}"#;
        let out = redact_in_pieces(arguments, 3);
        let parsed: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["a"], "x\n[REDACTED_SECRET]");
        assert_eq!(parsed["b"], "[REDACTED_EMAIL]");
        assert_eq!(parsed["c"], "😀 ok");
    }

    #[test]
    fn text_that_is_not_json_is_still_redacted() {
        assert_eq!(
            redact_in_pieces("mail jane@example.com now", 4),
            "mail \"[REDACTED_EMAIL]\" now"
        );
        // A string cut off at the end is closed.
        assert_eq!(
            redact_in_pieces("{\"a\":\"jane@example.com", 4),
            "{\"a\":\"[REDACTED_EMAIL]\""
        );
    }

    #[test]
    fn json_redaction_ends_in_linear_time() {
        assert_linear("JSON redaction", MAX_TEXT, |text| {
            redact_in_pieces(text, 16);
        });
        let mut rng = Rng::new(3);
        for _ in 0..50 {
            let len = rng.below(5_000);
            redact_in_pieces(&random_text(&mut rng, len), 7);
        }
    }
}
