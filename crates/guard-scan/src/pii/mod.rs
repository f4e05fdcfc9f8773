//! Personal data and secrets in text: found by hand-written scanners (no regex engine in
//! the wasm; `scan.rs`), checked where a checksum exists (Luhn for cards, mod-97 for IBANs,
//! the SSA's rules for SSNs), and replaced with typed markers such as `[REDACTED_EMAIL]`.
//!
//! [`StreamRedactor`] does the same to text that arrives in pieces: it holds back only
//! the tail that could still become (part of) a match, so a number or address split
//! across stream chunks is redacted exactly as if it had arrived whole. [`JsonRedactor`]
//! redacts JSON text (a tool call's arguments) inside its strings, keeping it valid.

mod json;
mod scan;
mod stream;

pub use self::json::JsonRedactor;
pub use self::scan::find;
pub use self::stream::StreamRedactor;

/// What a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An email address.
    Email,
    /// A phone number (international with `+`, or a national format with separators).
    Phone,
    /// A payment card number (Luhn-valid, known prefix).
    Card,
    /// A US social security number (`ddd-dd-dddd`, valid area, group and serial).
    Ssn,
    /// An IBAN (valid mod-97 check digits).
    Iban,
    /// An IPv4 or IPv6 address.
    Ip,
    /// A provider API key, cloud credential or JWT.
    Secret,
}

impl Kind {
    /// Whether a match of this kind may have spaces inside (numbers in groups), and so
    /// may grow past a space.
    fn may_span_spaces(self) -> bool {
        matches!(self, Kind::Phone | Kind::Card | Kind::Ssn | Kind::Iban)
    }

    /// The marker the match is replaced with.
    pub fn marker(self) -> &'static str {
        match self {
            Kind::Email => "[REDACTED_EMAIL]",
            Kind::Phone => "[REDACTED_PHONE]",
            Kind::Card => "[REDACTED_CARD]",
            Kind::Ssn => "[REDACTED_SSN]",
            Kind::Iban => "[REDACTED_IBAN]",
            Kind::Ip => "[REDACTED_IP]",
            Kind::Secret => "[REDACTED_SECRET]",
        }
    }
}

/// A match: byte range and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: Kind,
}

/// `text` with every match replaced by its marker.
pub fn redact(text: &str) -> String {
    replace(text, &find(text))
}

/// Replaces every match in `text` with its marker, in place; how many were replaced.
pub fn redact_in_place(text: &mut String) -> u32 {
    let matches = find(text);
    if !matches.is_empty() {
        *text = replace(text, &matches);
    }
    matches.len() as u32
}

/// Redacts tool-call `arguments` (JSON text) in place, as [`JsonRedactor`] does; how many
/// matches were replaced.
pub fn redact_json_in_place(arguments: &mut String) -> u32 {
    let mut redactor = JsonRedactor::default();
    let mut redacted = redactor.push(arguments);
    redacted.push_str(&redactor.finish());
    *arguments = redacted;
    redactor.take_replaced()
}

/// `text` with `matches` (in order, not overlapping, within `text`) replaced by their
/// markers.
fn replace(text: &str, matches: &[Match]) -> String {
    replace_after(text, 0, matches, Markers::Plain)
}

/// How markers are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Markers {
    /// `[REDACTED_EMAIL]`.
    #[default]
    Plain,
    /// `"[REDACTED_EMAIL]"`: a JSON string, where a match stood between JSON strings.
    Quoted,
}

impl Markers {
    /// Appends the marker of `kind` to `out`.
    pub(super) fn write(self, kind: Kind, out: &mut String) {
        match self {
            Markers::Plain => out.push_str(kind.marker()),
            Markers::Quoted => {
                out.push('"');
                out.push_str(kind.marker());
                out.push('"');
            }
        }
    }
}

/// `text[from..]` with `matches` (in order, not overlapping, within it) replaced by their
/// markers.
pub(super) fn replace_after(
    text: &str,
    from: usize,
    matches: &[Match],
    markers: Markers,
) -> String {
    let mut out = String::with_capacity(text.len() - from);
    let mut at = from;
    for m in matches {
        out.push_str(&text[at..m.start]);
        markers.write(m.kind, &mut out);
        at = m.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hostile::{assert_linear, MAX_TEXT};
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Positive {
        category: String,
        text: String,
        redacted: String,
    }

    #[derive(Deserialize)]
    struct Negative {
        category: String,
        text: String,
    }

    #[derive(Deserialize)]
    struct Corpus {
        positives: Vec<Positive>,
        negatives: Vec<Negative>,
    }

    fn corpus() -> Corpus {
        serde_json::from_str(include_str!("../../../../tests/data/pii.json")).unwrap()
    }

    /// Every sample with its expected redaction (negatives stay as they are).
    pub(super) fn samples() -> Vec<(String, String, String)> {
        let corpus = corpus();
        let positives = corpus
            .positives
            .into_iter()
            .map(|p| (p.category, p.text, p.redacted));
        let negatives = corpus
            .negatives
            .into_iter()
            .map(|n| (format!("negative {}", n.category), n.text.clone(), n.text));
        positives.chain(negatives).collect()
    }

    #[test]
    fn the_labelled_samples_are_redacted_exactly() {
        let mut per_category: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
        let mut failures = Vec::new();
        for (category, text, expected) in samples() {
            let entry = per_category.entry(category.clone()).or_default();
            entry.1 += 1;
            if redact(&text) == expected {
                entry.0 += 1;
            } else {
                failures.push(format!("{category}: {text:?} → {:?}", redact(&text)));
            }
        }
        for (category, (passed, total)) in &per_category {
            println!("{category:>18}: {passed}/{total}");
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    #[test]
    fn whole_text_redaction_ends_in_linear_time() {
        assert_linear("redaction", MAX_TEXT, |text| {
            redact(text);
        });
    }

    #[test]
    fn checksums_decide() {
        assert_eq!(redact("4111 1111 1111 1111"), "[REDACTED_CARD]");
        assert_eq!(redact("4111 1111 1111 1112"), "4111 1111 1111 1112");
        assert_eq!(redact("GB82WEST12345698765432"), "[REDACTED_IBAN]");
        assert_eq!(redact("GB82WEST12345698765433"), "GB82WEST12345698765433");
    }
}
