//! The scanners: where each kind of personal data or secret starts and ends in a text.

use super::{Kind, Match};

/// The longest word held back when it looks like a secret (it holds one of
/// the credential prefixes or `eyJ`): long enough for any JWT a browser would carry. A longer
/// one is replaced whole, as a secret, without waiting for its end.
pub(super) const MAX_SECRET_WORD: usize = 16 * 1024;

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
pub(super) fn find_after(text: &str, from: usize) -> Vec<Match> {
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

/// Letters (of any script: bytes of multi-byte characters count), digits and `_`.
pub(super) fn is_word(b: u8) -> bool {
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

/// Whether `text` starts with a credential prefix or a JWT's.
pub(super) fn starts_like_secret(text: &[u8]) -> bool {
    text.starts_with(JWT_PREFIX) || SECRET_PREFIXES.iter().any(|(p, _)| text.starts_with(p))
}

/// The bytes a secret is written in: a token's, and the dots between a JWT's parts.
pub(super) fn is_secret_byte(b: u8) -> bool {
    is_token(b) || b == b'.'
}
