//! Personal data and secrets in text: found by hand-written scanners (no regex engine in
//! the wasm), checked where a checksum exists (Luhn for cards, mod-97 for IBANs, the SSA's
//! rules for SSNs), and replaced with typed markers such as `[REDACTED_EMAIL]`.
//!
//! [`StreamRedactor`] does the same to text that arrives in pieces: it holds back only
//! the tail that could still become (part of) a match, so a number or address split
//! across stream chunks is redacted exactly as if it had arrived whole.

use crate::api::chat::ChatRequest;

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

/// The longest stretch of text with spaces inside a match (a spaced IBAN: 34 characters
/// and 8 spaces); with the trailing word it bounds what the stream redactor holds back.
const MAX_SPACED_MATCH: usize = 48;
/// The longest word held back while it might still grow into an address or a token; a
/// longer unbroken word is released (and redacted only within what has arrived), unless
/// it looks like a secret.
const MAX_HELD_WORD: usize = 2_048;
/// The longest word held back when it looks like a secret (it holds one of
/// [`SECRET_PREFIXES`] or `eyJ`): long enough for any JWT a browser would carry. A longer
/// one is replaced whole, as a secret, without waiting for its end.
pub const MAX_SECRET_WORD: usize = 16 * 1024;

/// The longest local part of an email address (RFC 5321).
const MAX_EMAIL_LOCAL: usize = 64;
/// The longest domain name (RFC 1035).
const MAX_EMAIL_DOMAIN: usize = 253;
/// The longest text of an IP address: an IPv6 address with an embedded IPv4 one.
const MAX_IP_TEXT: usize = 45;
/// The longest text of a phone number: 15 digits and the separators between them.
const MAX_PHONE_TEXT: usize = 40;

/// Credential prefixes and the shortest body after each that counts as a secret.
const SECRET_PREFIXES: [(&[u8], usize); 9] = [
    (b"sk-", 20),
    (b"sk_live_", 16),
    (b"ghp_", 30),
    (b"github_pat_", 30),
    (b"xoxb-", 20),
    (b"xoxp-", 20),
    (b"AIza", 30),
    (b"AKIA", 16),
    (b"hf_", 30),
];
/// How a JWT starts: the base64url of `{"`.
const JWT_PREFIX: &[u8] = b"eyJ";

/// Finds a match of one kind starting at a byte offset: its end, if there is one.
type Scanner = fn(&mut Text, usize) -> Option<usize>;

/// The text being scanned, with what the scanners remember between the offsets they are
/// asked about.
struct Text<'a> {
    bytes: &'a [u8],
    /// The token runs the secret scan measured last, one for each part of a JWT (a key's
    /// body counts as a first part): every offset inside one reads its end without
    /// counting it again.
    token_runs: [RunEnd; 3],
    /// The run of secret bytes (a token's and dots) the last secret scan measured.
    secret_run: RunEnd,
}

/// The end of a run of bytes of one class, remembered for the run last measured: offsets
/// are asked in increasing order, so a text that is one long run costs one pass however
/// many scanner starts it holds.
struct RunEnd {
    class: fn(u8) -> bool,
    start: usize,
    end: usize,
}

impl RunEnd {
    fn new(class: fn(u8) -> bool) -> Self {
        RunEnd {
            class,
            start: 0,
            end: 0,
        }
    }

    /// Where the run of `class` bytes starting at `at` ends.
    fn from(&mut self, bytes: &[u8], at: usize) -> usize {
        if !(self.start..self.end).contains(&at) {
            self.start = at;
            self.end = at + count_while(bytes, at, self.class);
        }
        self.end
    }
}

/// Every match in `text`, in order, not overlapping (secrets first, then the kinds with
/// checksums, then the rest; earlier kinds win overlaps). Each scanner looks a bounded
/// number of bytes ahead of a start, or reads a run's end from what it remembers, so the
/// cost is linear in the text.
pub fn find(text: &str) -> Vec<Match> {
    find_after(text, 0)
}

/// Like [`find`], for matches that start at `from` or later: the bytes before it are
/// context (what precedes a start decides whether it is one).
fn find_after(text: &str, from: usize) -> Vec<Match> {
    let bytes = text.as_bytes();
    let mut scanned = Text {
        bytes,
        token_runs: [(); 3].map(|_| RunEnd::new(is_token)),
        secret_run: RunEnd::new(is_secret_byte),
    };
    let mut found: Vec<Match> = Vec::new();
    let scanners: [(Kind, Scanner); 7] = [
        (Kind::Secret, secret_at),
        (Kind::Email, |text, at| email_at(text.bytes, at)),
        (Kind::Iban, |text, at| iban_at(text.bytes, at)),
        (Kind::Card, |text, at| card_at(text.bytes, at)),
        (Kind::Ssn, |text, at| ssn_at(text.bytes, at)),
        (Kind::Ip, |text, at| ip_at(text.bytes, at)),
        (Kind::Phone, |text, at| phone_at(text.bytes, at)),
    ];
    // Matches start where a word does (or at punctuation): found once for all scanners.
    let starts: Vec<usize> = (from..bytes.len())
        .filter(|&at| at == 0 || !is_word(bytes[at - 1]))
        .collect();
    // Bytes inside a match found so far: a later (lower-priority) scanner may not overlap.
    let mut taken = vec![false; bytes.len()];
    for (kind, scan) in scanners {
        // Where this scanner's last match ended: it does not look inside its own matches.
        let mut free_from = 0;
        for &at in &starts {
            if at < free_from || taken[at] {
                continue;
            }
            if let Some(end) = scan(&mut scanned, at) {
                let end_ok = end == bytes.len() || !is_word(bytes[end]);
                if end_ok && !taken[at..end].contains(&true) {
                    found.push(Match {
                        start: at,
                        end,
                        kind,
                    });
                    taken[at..end].fill(true);
                    free_from = end;
                }
            }
        }
    }
    found.sort_by_key(|m| m.start);
    found
}

/// `text` with every match replaced by its marker.
pub fn redact(text: &str) -> String {
    replace(text, &find(text))
}

/// `text` with `matches` (in order, not overlapping, within `text`) replaced by their
/// markers.
fn replace(text: &str, matches: &[Match]) -> String {
    replace_after(text, 0, matches)
}

/// `text[from..]` with `matches` (in order, not overlapping, within it) replaced by their
/// markers.
fn replace_after(text: &str, from: usize, matches: &[Match]) -> String {
    let mut out = String::with_capacity(text.len() - from);
    let mut at = from;
    for m in matches {
        out.push_str(&text[at..m.start]);
        out.push_str(m.kind.marker());
        at = m.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Redacts the text of every message of `request` in place; returns how many matches
/// were replaced.
pub fn redact_request(request: &mut ChatRequest) -> u32 {
    let mut replaced = 0;
    request.for_each_text(|text| {
        let matches = find(text);
        if !matches.is_empty() {
            *text = replace(text, &matches);
            replaced += matches.len() as u32;
        }
    });
    replaced
}

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
        let out = replace_after(&text[..cut], held, &matches[..released]);
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
        let mut out = replace_after(before, held, &find_after(before, held));
        out.push_str(Kind::Secret.marker());
        *self = StreamRedactor {
            dropping_secret: true,
            ..StreamRedactor::default()
        };
        out
    }

    /// The rest, redacted, at the end of the text.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.pending);
        let held = self.context;
        *self = StreamRedactor::default();
        replace_after(&rest, held, &find_after(&rest, held))
    }
}

/// Whether `text` starts with a credential prefix or a JWT's.
fn starts_like_secret(text: &[u8]) -> bool {
    text.starts_with(JWT_PREFIX) || SECRET_PREFIXES.iter().any(|(p, _)| text.starts_with(p))
}

/// The bytes a secret is written in: a token's, and the dots between a JWT's parts.
fn is_secret_byte(b: u8) -> bool {
    is_token(b) || b == b'.'
}

/// Letters (of any script: bytes of multi-byte characters count), digits and `_`.
fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn count_while(bytes: &[u8], at: usize, test: impl Fn(u8) -> bool) -> usize {
    bytes[at.min(bytes.len())..]
        .iter()
        .take_while(|b| test(**b))
        .count()
}

/// The bytes of a token: letters, digits, `_` and `-` (API keys, base64url).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `count_while` that looks at most `max` bytes ahead: the count, `max + 1` meaning more.
fn count_at_most(bytes: &[u8], at: usize, max: usize, test: impl Fn(u8) -> bool) -> usize {
    let end = bytes.len().min(at.saturating_add(max + 1));
    count_while(&bytes[..end], at, test)
}

/// `local@domain.tld`, starting at the local part (at most 64 bytes before the `@`, 253
/// after it).
fn email_at(bytes: &[u8], at: usize) -> Option<usize> {
    // Internationalized addresses (RFC 6531) have UTF-8 local parts and domains.
    let local = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80 || b"._%+-".contains(&b);
    let local_len = count_at_most(bytes, at, MAX_EMAIL_LOCAL, local);
    if local_len == 0
        || local_len > MAX_EMAIL_LOCAL
        || bytes.get(at + local_len) != Some(&b'@')
        || bytes[at] == b'.'
    {
        return None;
    }
    let domain_start = at + local_len + 1;
    let domain = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80 || b == b'-' || b == b'.';
    let mut domain_len = count_at_most(bytes, domain_start, MAX_EMAIL_DOMAIN, domain);
    if domain_len > MAX_EMAIL_DOMAIN {
        return None;
    }
    while domain_len > 0 && matches!(bytes[domain_start + domain_len - 1], b'.' | b'-') {
        domain_len -= 1;
    }
    let domain_text = &bytes[domain_start..domain_start + domain_len];
    let last_dot = domain_text.iter().rposition(|b| *b == b'.')?;
    let tld = &domain_text[last_dot + 1..];
    (last_dot > 0 && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic))
        .then_some(domain_start + domain_len)
}

/// Digits with single spaces or dashes between groups, starting at `at`: the end and the
/// digits.
fn grouped_digits(bytes: &[u8], at: usize, max_digits: usize) -> (usize, Vec<u8>) {
    let mut digits = Vec::new();
    let mut end = at;
    let mut i = at;
    while i < bytes.len() && digits.len() < max_digits {
        match bytes[i] {
            b'0'..=b'9' => {
                digits.push(bytes[i] - b'0');
                i += 1;
                end = i;
            }
            b' ' | b'-' if i > at && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => i += 1,
            _ => break,
        }
    }
    (end, digits)
}

/// A Luhn-valid 13–19 digit card number with a known issuer prefix.
fn card_at(bytes: &[u8], at: usize) -> Option<usize> {
    if !bytes[at].is_ascii_digit() {
        return None;
    }
    let (end, digits) = grouped_digits(bytes, at, 19);
    let prefix = |p: &[u8]| digits.starts_with(p);
    let known = prefix(&[4])
        || (digits.len() >= 2 && (51..=55).contains(&(digits[0] * 10 + digits[1])))
        || (digits.len() >= 2 && (22..=27).contains(&(digits[0] * 10 + digits[1])))
        || prefix(&[3, 4])
        || prefix(&[3, 7])
        || prefix(&[6]);
    ((13..=19).contains(&digits.len()) && known && luhn(&digits)).then_some(end)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `ddd-dd-dddd` (dashes or spaces) with an issuable area (not 000, 666 or 900–999),
/// group (not 00) and serial (not 0000).
fn ssn_at(bytes: &[u8], at: usize) -> Option<usize> {
    let part = |from: usize, len: usize| -> Option<u32> {
        let slice = bytes.get(from..from + len)?;
        slice
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| slice.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let sep = bytes
        .get(at + 3)
        .copied()
        .filter(|b| *b == b'-' || *b == b' ')?;
    let area = part(at, 3)?;
    let group = part(at + 4, 2)?;
    if bytes.get(at + 6) != Some(&sep) {
        return None;
    }
    let serial = part(at + 7, 4)?;
    let valid = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    valid.then_some(at + 11)
}

/// Two letters, two check digits, then 11–30 letters or digits (optionally in groups of
/// four separated by spaces), valid under ISO 13616's mod-97 check.
fn iban_at(bytes: &[u8], at: usize) -> Option<usize> {
    let head = bytes.get(at..at + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let mut chars: Vec<u8> = head.to_vec();
    let mut end = at + 4;
    let mut i = at + 4;
    while i < bytes.len() && chars.len() < 34 {
        match bytes[i] {
            b if b.is_ascii_uppercase() || b.is_ascii_digit() => {
                chars.push(b);
                i += 1;
                end = i;
            }
            b' ' if (i - at) % 5 == 4
                && bytes.get(i + 1).is_some_and(|b| b.is_ascii_alphanumeric()) =>
            {
                i += 1
            }
            _ => break,
        }
    }
    if !(15..=34).contains(&chars.len()) {
        return None;
    }
    // Move the first four to the end, letters as 10..35, and take the number mod 97.
    let mut remainder = 0u32;
    for b in chars[4..].iter().chain(&chars[..4]) {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    (remainder == 1).then_some(end)
}

/// An IPv4 address (four octets 0–255) or an IPv6 address (parsed by the standard
/// library, with at least two colons), at most [`MAX_IP_TEXT`] bytes.
fn ip_at(bytes: &[u8], at: usize) -> Option<usize> {
    // An address starts with a digit (IPv4) or has a colon (IPv6): words like `bead` or
    // `cafe` are left before the costlier parse below.
    if !bytes[at].is_ascii_digit() && !bytes[at..].iter().take(40).any(|b| *b == b':') {
        return None;
    }
    let is_v6 = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
    // Not the tail of a longer dotted number (`1.2.3.4.5`) or address text: an address
    // is tried from the start of its run only, so a long run of `1.` or `::` costs one
    // try, not one per start inside it.
    if at >= 2 && matches!(bytes[at - 1], b'.' | b':') && is_v6(bytes[at - 2]) {
        return None;
    }
    let run = count_at_most(bytes, at, MAX_IP_TEXT, is_v6).min(MAX_IP_TEXT);
    let candidate = std::str::from_utf8(&bytes[at..at + run]).ok()?;
    // The longest prefix that parses, so trailing punctuation is left out.
    for len in (2..=candidate.len()).rev() {
        let text = candidate[..len].trim_end_matches('.');
        if text.len() != len {
            continue;
        }
        if text.contains(':') {
            if text.matches(':').count() >= 2 && text.parse::<std::net::Ipv6Addr>().is_ok() {
                return Some(at + len);
            }
        } else if text.matches('.').count() == 3 && text.parse::<std::net::Ipv4Addr>().is_ok() {
            let octets_plain = text.split('.').all(|o| o == "0" || !o.starts_with('0'));
            let more = bytes.get(at + len) == Some(&b'.')
                && bytes.get(at + len + 1).is_some_and(u8::is_ascii_digit);
            if octets_plain && !more {
                return Some(at + len);
            }
        }
    }
    None
}

/// A phone number: `+` and 8–15 digits, or 10–11 digits in groups of at least two
/// separated by spaces, dashes, dots or a parenthesized area code, the last group at
/// least 3 digits long unless there are four groups or more (`06 12 34 56 78`); at most
/// [`MAX_PHONE_TEXT`] bytes.
fn phone_at(bytes: &[u8], at: usize) -> Option<usize> {
    if bytes[at].is_ascii_alphabetic() {
        return None;
    }
    let international = bytes[at] == b'+';
    let start = at + usize::from(international);
    let stop = bytes.len().min(at + MAX_PHONE_TEXT);
    let mut digits = 0;
    // Groups so far (the current one included), the shortest finished one, the current
    // one's digits and the last non-empty group's.
    let (mut groups, mut shortest, mut current, mut last_group) = (1, usize::MAX, 0, 0);
    let mut end = None;
    let mut i = start;
    let mut open_paren = false;
    while i < stop {
        match bytes[i] {
            b'0'..=b'9' => {
                digits += 1;
                current += 1;
                last_group = current;
                i += 1;
                end = Some(i);
            }
            b'(' if !open_paren && current == 0 => {
                open_paren = true;
                i += 1;
            }
            b')' if open_paren && current > 0 => {
                open_paren = false;
                (groups, shortest, current) = (groups + 1, shortest.min(current), 0);
                i += 1;
                if bytes.get(i) == Some(&b' ') {
                    i += 1;
                }
            }
            b' ' | b'-' | b'.'
                if bytes
                    .get(i + 1)
                    .is_some_and(|b| b.is_ascii_digit() || *b == b'(')
                    && current > 0 =>
            {
                (groups, shortest, current) = (groups + 1, shortest.min(current), 0);
                i += 1;
            }
            _ => break,
        }
    }
    let end = end?;
    let shortest = shortest.min(current);
    let valid = if international {
        (8..=15).contains(&digits)
    } else {
        groups >= 2
            && (10..=11).contains(&digits)
            && (last_group >= 3 || groups >= 4)
            && shortest >= 2
    };
    valid.then_some(end)
}

/// A provider or cloud credential, or a JWT; or anything written like one that is longer
/// than [`MAX_SECRET_WORD`] (the stream redactor replaces those without waiting for
/// their end).
fn secret_at(text: &mut Text, at: usize) -> Option<usize> {
    let bytes = text.bytes;
    let rest = &bytes[at..];
    if starts_like_secret(rest) {
        let end = text.secret_run.from(bytes, at);
        if end - at > MAX_SECRET_WORD {
            return Some(end);
        }
    }
    for (prefix, min_body) in SECRET_PREFIXES {
        if rest.starts_with(prefix) {
            let end = text.token_runs[0].from(bytes, at + prefix.len());
            if end - (at + prefix.len()) >= min_body {
                return Some(end);
            }
        }
    }
    // A JWT: three base64url parts, the first two JSON objects (`eyJ`).
    if rest.starts_with(JWT_PREFIX) {
        let [first, second, third] = &mut text.token_runs;
        let first_end = first.from(bytes, at);
        let second_start = first_end + 1;
        if bytes.get(first_end) == Some(&b'.') && bytes[second_start..].starts_with(JWT_PREFIX) {
            let second_end = second.from(bytes, second_start);
            if bytes.get(second_end) == Some(&b'.') {
                let third_end = third.from(bytes, second_end + 1);
                let lengths = [
                    first_end - at,
                    second_end - second_start,
                    third_end - second_end - 1,
                ];
                if lengths[0] >= 10 && lengths[1] >= 10 && lengths[2] >= 16 {
                    return Some(third_end);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::hostile::{assert_linear, pieces, random_text, Rng, MAX_TEXT};
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
        serde_json::from_str(include_str!("../../tests/data/pii.json")).unwrap()
    }

    /// Every sample with its expected redaction (negatives stay as they are).
    fn samples() -> Vec<(String, String, String)> {
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
    fn whole_text_redaction_ends_in_linear_time() {
        assert_linear("redaction", MAX_TEXT, |text| {
            redact(text);
        });
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

    #[test]
    fn checksums_decide() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert_eq!(redact("GB82WEST12345698765432"), "[REDACTED_IBAN]");
        assert_eq!(redact("GB82WEST12345698765433"), "GB82WEST12345698765433");
    }
}
