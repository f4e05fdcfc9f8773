//! Redaction of text that arrives in pieces.

use super::scan::{find_after, is_secret_byte, is_word, starts_like_secret, MAX_SECRET_WORD};
use super::{replace_after, Kind, Markers};

/// The longest stretch of text with spaces inside a match (a spaced IBAN: 34 characters
/// and 8 spaces); with the trailing word it bounds what the stream redactor holds back.
const MAX_SPACED_MATCH: usize = 48;
/// The longest word held back while it might still grow into an address or a token; a
/// longer unbroken word is released (and redacted only within what has arrived), unless
/// it looks like a secret.
const MAX_HELD_WORD: usize = 2_048;
/// Redacts text that arrives in pieces.
///
/// Each piece costs time linear in itself and in what is held: a piece that only makes
/// the trailing word longer releases nothing and is not scanned again (see
/// [`StreamRedactor::push`]), and what is held is bounded by the longest word
/// ([`MAX_HELD_WORD`], or [`MAX_SECRET_WORD`] for a word that looks like a secret) and
/// [`MAX_SPACED_MATCH`]. The last few released bytes are kept as context, so that text
/// after a cut is scanned as it would be in the whole text.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    /// Released context (the first `context` bytes), then the text held back.
    pending: String,
    /// How many bytes at the start of `pending` were released already.
    context: usize,
    /// Where the trailing word of the held text starts (after its last whitespace).
    word_start: usize,
    /// The last scan held the trailing word and at least [`MAX_SPACED_MATCH`] bytes of it
    /// had arrived: making it longer cannot release anything.
    settled: bool,
    /// The secret still being written at the end of `pending`, if one is.
    open_secret: OpenSecret,
    /// A secret too long to hold was replaced: the rest of it is dropped as it arrives.
    dropping_secret: bool,
    /// How markers are written.
    markers: Markers,
    /// Matches replaced since [`StreamRedactor::take_replaced`] was last called.
    pub(super) replaced: u32,
}

/// How many released bytes are kept before the held text: the scanners look at most two
/// bytes back from a start (an IP address is not the tail of a dotted number).
const CONTEXT: usize = 4;

/// What the redactor knows about the run of secret bytes (letters, digits, `_`, `-`, `.`)
/// at the end of its pending text.
#[derive(Debug, Default)]
struct OpenSecret {
    /// Where the run starts.
    run_start: usize,
    /// How far it was searched for a secret's prefix.
    searched_to: usize,
    /// Where the first secret in it starts.
    found: Option<usize>,
}

impl OpenSecret {
    /// Where a secret starts in the run at the end of `text` (not before `from`),
    /// searching only the bytes not searched before (a run is searched once, however
    /// many pieces it arrives in).
    fn find(&mut self, text: &[u8], from: usize) -> Option<usize> {
        if self.found.is_none() {
            // A prefix may straddle what was searched and what is new.
            let first = from
                .max(self.run_start)
                .max(self.searched_to.saturating_sub(16));
            self.found = (first..text.len()).find(|&at| {
                let starts = at == self.run_start || !is_word(text[at - 1]);
                starts && starts_like_secret(&text[at..])
            });
            self.searched_to = text.len();
        }
        self.found
    }

    /// Takes in `piece`, appended to a text that was `before` bytes long.
    fn extend(&mut self, before: usize, piece: &[u8]) {
        if let Some(last) = piece.iter().rposition(|b| !is_secret_byte(*b)) {
            *self = OpenSecret {
                run_start: before + last + 1,
                searched_to: before + last + 1,
                found: None,
            };
        }
    }

    /// The same run after the first `dropped` bytes of the text were dropped.
    fn shift(&mut self, dropped: usize) {
        self.run_start = self.run_start.saturating_sub(dropped);
        self.searched_to = self.searched_to.saturating_sub(dropped);
        self.found = self.found.and_then(|at| at.checked_sub(dropped));
    }
}

impl StreamRedactor {
    /// A redactor that writes its markers as JSON strings (`"[REDACTED_CARD]"`), for the
    /// text between the strings of a JSON document.
    pub(super) fn quoting_markers() -> Self {
        StreamRedactor {
            markers: Markers::Quoted,
            ..StreamRedactor::default()
        }
    }

    /// Takes in `piece`; returns the redacted text that can be released now.
    pub fn push(&mut self, piece: &str) -> String {
        let mut piece = piece;
        if self.dropping_secret {
            piece = piece.trim_start_matches(|c: char| c.is_ascii() && is_secret_byte(c as u8));
            if piece.is_empty() {
                return String::new();
            }
            self.dropping_secret = false;
        }
        let before = self.pending.len();
        self.pending.push_str(piece);
        self.open_secret.extend(before, piece.as_bytes());
        let spaced = piece.rfind(char::is_whitespace).map(|at| {
            let space = piece[at..].chars().next().map_or(1, char::len_utf8);
            self.word_start = before + at + space;
        });
        self.word_start = self.word_start.max(self.context);
        let word = self.pending.len() - self.word_start;
        let mut limit = MAX_HELD_WORD;
        let secret = |redactor: &mut Self| {
            let text = redactor.pending.as_bytes();
            redactor.open_secret.find(text, redactor.context).is_some()
        };
        if word > MAX_HELD_WORD && secret(self) {
            limit = MAX_SECRET_WORD;
        }
        if word > MAX_SECRET_WORD && limit == MAX_SECRET_WORD {
            return self.replace_open_secret();
        }
        // A piece without whitespace only makes the trailing word longer. While the word
        // is all that is held, or a scan already held it and enough of it (so no digit
        // near the cut and no match before it changes), nothing more can be released.
        let growing = spaced.is_none() && (self.word_start == self.context || self.settled);
        if growing && word <= limit {
            return String::new();
        }
        self.release(limit)
    }

    /// Releases what can no longer become (part of) a match, redacted.
    fn release(&mut self, limit: usize) -> String {
        let text = &self.pending;
        let held = self.context;
        // Hold the trailing word (an address or token may still be growing) and, when the
        // last few dozen bytes have a digit, everything from the word holding the first of
        // them (a spaced number may still be growing). Text without digits waits for its
        // word to end, no longer.
        let word_start_before = |at: usize| {
            let after_space = text[..at].rfind(char::is_whitespace).map_or(0, |space| {
                space + text[space..].chars().next().map_or(1, char::len_utf8)
            });
            after_space.max(held)
        };
        let mut cut = self.word_start;
        if text.len() - cut > limit {
            cut = text.len();
        }
        let tail = text.ceil_char_boundary(text.len().saturating_sub(MAX_SPACED_MATCH));
        if let Some(digit) = text[tail..].find(|c: char| c.is_ascii_digit()) {
            let number_start = word_start_before(tail + digit).max(tail.saturating_sub(4));
            cut = cut.min(number_start);
        }
        let mut cut = text.floor_char_boundary(cut).max(held);
        let matches = find_after(text, held);
        // Never cut through a match, nor release one that ends near the cut and may still
        // grow: one of a kind written with spaces, or one in the trailing word.
        if let Some(m) = matches.iter().find(|m| {
            let through = m.start < cut && m.end > cut;
            let growing = m.start < cut
                && m.end + MAX_SPACED_MATCH > cut
                && (m.kind.may_span_spaces() || m.end >= self.word_start);
            through || growing
        }) {
            cut = m.start;
        }
        let released = matches.iter().take_while(|m| m.end <= cut).count();
        self.replaced += released as u32;
        let out = replace_after(&text[..cut], held, &matches[..released], self.markers);
        // Keep the last few released bytes as the context of what follows.
        let keep = text.floor_char_boundary(cut.saturating_sub(CONTEXT));
        self.pending.drain(..keep);
        self.context = cut - keep;
        self.word_start = self.word_start.max(cut) - keep;
        self.settled = self.pending.len() - self.word_start >= MAX_SPACED_MATCH + 4;
        self.open_secret.shift(keep);
        out
    }

    /// Replaces the secret being written at the end of the pending text, which outgrew
    /// [`MAX_SECRET_WORD`], without waiting for its end: what precedes it goes out
    /// redacted, then the marker; the rest of the secret is dropped as it arrives.
    fn replace_open_secret(&mut self) -> String {
        let held = self.context;
        let start = self
            .open_secret
            .find(self.pending.as_bytes(), held)
            .unwrap_or(held);
        let before = &self.pending[..start];
        let markers = self.markers;
        let matches = find_after(before, held);
        let mut out = replace_after(before, held, &matches, markers);
        markers.write(Kind::Secret, &mut out);
        *self = StreamRedactor {
            dropping_secret: true,
            markers,
            replaced: self.replaced + matches.len() as u32 + 1,
            ..StreamRedactor::default()
        };
        out
    }

    /// The rest, redacted, at the end of the text.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        let (held, markers) = (self.context, self.markers);
        let matches = find_after(&rest, held);
        *self = StreamRedactor {
            markers,
            replaced: self.replaced + matches.len() as u32,
            ..StreamRedactor::default()
        };
        replace_after(&rest, held, &matches, markers)
    }

    /// How many matches were replaced since the last call (markers written: what it
    /// released, and what it will release from what it holds when it is finished).
    pub fn take_replaced(&mut self) -> u32 {
        std::mem::take(&mut self.replaced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::{assert_linear, pieces, random_text, Rng, MAX_TEXT};
    use crate::pii::redact;
    use crate::pii::tests::samples;

    fn stream_in_pieces(text: &str, size: usize) -> String {
        let mut redactor = StreamRedactor::default();
        let mut out = String::with_capacity(text.len());
        for piece in pieces(text, size) {
            out.push_str(&redactor.push(piece));
        }
        out.push_str(&redactor.finish());
        out
    }

    #[test]
    fn streaming_redaction_equals_whole_redaction_at_every_split_point() {
        for (_, text, expected) in samples() {
            let boundaries: Vec<usize> = (0..=text.len())
                .filter(|i| text.is_char_boundary(*i))
                .collect();
            for &split in &boundaries {
                let mut redactor = StreamRedactor::default();
                let mut out = redactor.push(&text[..split]);
                out.push_str(&redactor.push(&text[split..]));
                out.push_str(&redactor.finish());
                assert_eq!(out, expected, "split at {split} of {text:?}");
            }
            // And one character at a time.
            let mut redactor = StreamRedactor::default();
            let mut out = String::new();
            for (index, c) in text.char_indices() {
                out.push_str(&redactor.push(&text[index..index + c.len_utf8()]));
            }
            out.push_str(&redactor.finish());
            assert_eq!(out, expected, "char by char: {text:?}");
        }
    }

    #[test]
    fn text_without_digits_waits_only_for_its_word_to_end() {
        let mut redactor = StreamRedactor::default();
        let sentence = "The quick brown fox jumps over the lazy dog. ".repeat(10);
        assert_eq!(
            redactor.push(&sentence),
            sentence,
            "complete words go out at once"
        );
        assert_eq!(redactor.push("Hel"), "");
        assert_eq!(redactor.push("lo there"), "Hello ");
        assert_eq!(redactor.finish(), "there");
        // Digits hold back at most the window (a spaced number may still be growing).
        let mut redactor = StreamRedactor::default();
        let text = format!("{} the year 2024 ended", "word ".repeat(20));
        let released = redactor.push(&text);
        assert!(
            text.len() - released.len() <= MAX_SPACED_MATCH + 4,
            "held {}",
            text.len() - released.len()
        );
        assert_eq!(released + &redactor.finish(), text);
    }

    #[test]
    fn streaming_redaction_ends_in_linear_time() {
        assert_linear("streaming redaction, 1-byte pieces", MAX_TEXT, |text| {
            stream_in_pieces(text, 1);
        });
        assert_linear("streaming redaction, 37-byte pieces", MAX_TEXT, |text| {
            stream_in_pieces(text, 37);
        });
    }

    #[test]
    fn generated_streams_are_redacted_as_the_whole_text_is() {
        let mut rng = Rng::new(17);
        for round in 0..300 {
            let len = 1 + rng.below(3_000);
            let text = random_text(&mut rng, len);
            // Words longer than the hold are released in parts, by design.
            if text
                .split(char::is_whitespace)
                .any(|w| w.len() > MAX_HELD_WORD)
            {
                continue;
            }
            let whole = redact(&text);
            for size in [1, 2, 3, 1 + rng.below(64)] {
                let streamed = stream_in_pieces(&text, size);
                if streamed != whole {
                    let at = streamed
                        .bytes()
                        .zip(whole.bytes())
                        .take_while(|(a, b)| a == b)
                        .count();
                    let around = |text: &str| {
                        let from = text.floor_char_boundary(at.saturating_sub(80));
                        text[from..text.ceil_char_boundary((at + 80).min(text.len()))].to_owned()
                    };
                    panic!(
                        "round {round}, {size}-byte pieces: streamed {:?}, whole {:?}",
                        around(&streamed),
                        around(&whole)
                    );
                }
            }
        }
    }

    #[test]
    fn a_long_secret_in_many_pieces_never_leaks() {
        let header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9";
        let payload = format!(
            "eyJ{}",
            "c3ViIjoiYWxpY2UiLCJyb2xlcyI6WyJhZG1pbiJd".repeat(250)
        );
        let jwt = format!("{header}.{payload}.{}", "s1gnatur3_-".repeat(40));
        assert!(jwt.len() > 4 * MAX_HELD_WORD && jwt.len() < MAX_SECRET_WORD);
        let text = format!("token: {jwt} (keep it safe)");
        for size in [1, 7, 100, 1000] {
            let out = stream_in_pieces(&text, size);
            assert_eq!(
                out, "token: [REDACTED_SECRET] (keep it safe)",
                "{size}-byte pieces"
            );
        }
        // Longer than any hold: replaced without waiting for its end, the rest dropped.
        let huge = format!("key sk-{} end", "A".repeat(MAX_SECRET_WORD * 2));
        for size in [1, 500, 5000] {
            assert_eq!(stream_in_pieces(&huge, size), "key [REDACTED_SECRET] end");
        }
        assert_eq!(redact(&huge), "key [REDACTED_SECRET] end");
    }
}
