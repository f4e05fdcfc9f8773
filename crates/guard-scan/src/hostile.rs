//! Hostile text for the guards' property tests: generated shapes of the kind that has hung
//! or slowed text scanners (a multibyte lead before a long line, lines without spaces,
//! long runs of one character, runs of digits, dots, `@`, base64 and hex, invisible and
//! tag characters, template-token and credential fragments), and two checks on a scan of
//! such text: that it ends, and that its cost is linear in the text.
//!
//! The linearity check compares a scan's cost per byte on a large text with its cost per
//! byte on a text sixteen times smaller of the same shape, each the best of several runs:
//! linear work gives about the same figure, quadratic work a sixteen times larger one.
//! The bound it asserts (five times) leaves room for caches and noise, not for a worse
//! complexity.

use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A seeded xorshift generator: the same seed gives the same texts on every machine.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What generated texts are made of: characters and fragments the guards treat specially.
const ATOMS: &[&str] = &[
    "a",
    "Z",
    "é",
    "日",
    "🙂",
    "ß",
    " ",
    "  ",
    "\n",
    "\t",
    "\r",
    "0",
    "7",
    "9",
    ".",
    "@",
    "-",
    "+",
    ":",
    "(",
    ")",
    "/",
    "=",
    "_",
    "%",
    "#",
    "'",
    "\"",
    "<",
    ">",
    "[",
    "]",
    "|",
    "f",
    "A",
    "\u{200B}",
    "\u{200D}",
    "\u{202E}",
    "\u{FE0F}",
    "\u{E0041}",
    "\u{E0100}",
    "\u{0000}",
    "<|",
    "|>",
    "[INST]",
    "sk-",
    "eyJ",
    "ghp_",
    "AKIA",
    "ignore ",
    "previous ",
    "rot13 ",
    "1.2.",
    "::",
    "+44 ",
    "4111 ",
    "GB82",
    "a@b.",
    "\u{3000}",
];

/// A text of at least `len` bytes made of runs of [`ATOMS`], each repeated 1 to 300 times:
/// long runs of one kind next to their neighbours.
pub fn random_text(rng: &mut Rng, len: usize) -> String {
    let mut text = String::with_capacity(len + 4096);
    while text.len() < len {
        let atom = ATOMS[rng.below(ATOMS.len())];
        let run = 1 + rng.below(300);
        for _ in 0..run {
            text.push_str(atom);
        }
    }
    text
}

/// The shapes known to be hard for scanners, each about `len` bytes long (at least one
/// repetition of its unit).
pub fn shapes(len: usize) -> Vec<(&'static str, String)> {
    let repeat = |unit: &str| unit.repeat((len / unit.len()).max(1));
    let long_first_line = format!("é{} {}", "a".repeat(199), "b".repeat(len.max(300) - 201));
    vec![
        ("multibyte lead, one space, long line", long_first_line),
        ("one letter, no spaces", repeat("a")),
        ("multibyte letters, no spaces", repeat("é")),
        ("emoji, no spaces", repeat("🙂")),
        ("words", repeat("word ")),
        ("digits", repeat("1")),
        ("spaced digits", repeat("1 ")),
        ("grouped digits", repeat("12 34 ")),
        ("dots", repeat(".")),
        ("digits and dots", repeat("1.")),
        ("at signs", repeat("@")),
        ("local parts", repeat("a.")),
        ("addresses without end", repeat("a@b.")),
        ("base64", repeat("QUJDRA")),
        ("hex", repeat("deadbeef")),
        ("hex and colons", repeat("1:")),
        ("colons", repeat(":")),
        ("parentheses", repeat("()")),
        ("plus signs and digits", repeat("+1")),
        ("zero-width characters", repeat("\u{200B}")),
        ("tag characters", repeat("\u{E0041}")),
        ("template openers", repeat("<|")),
        ("brackets", repeat("[")),
        ("key prefixes", repeat("sk-")),
        ("key prefixes, then a letter", format!("{}é", repeat("sk-"))),
        ("JWT heads", repeat("eyJ.")),
        ("JWT heads joined", format!("{}é", repeat("eyJa-"))),
        ("attack words", repeat("ignore all previous ")),
        ("ROT13 mentions", repeat("rot13 ")),
    ]
}

/// Runs `scan` on `text` on a thread of its own and returns its result, failing (instead
/// of hanging the test run) if it does not end within a minute.
pub fn ends<T: Send + 'static>(what: &str, text: String, scan: fn(&str) -> T) -> T {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(scan(&text));
    });
    match result.recv_timeout(Duration::from_secs(60)) {
        Ok(value) => value,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: the scan did not end within a minute")
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: the scan panicked"),
    }
}

/// The best time of `runs` runs of `scan` on `text`.
fn best_time(text: &str, scan: fn(&str), runs: u32) -> Duration {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            scan(text);
            started.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Asserts that `scan` ends on every shape of [`shapes`] and on random texts, at `max`
/// bytes, and that its cost per byte at `max` bytes is at most five times its cost per
/// byte at `max / 16` (see the module's documentation).
pub fn assert_linear(guard: &str, max: usize, scan: fn(&str)) {
    let mut rng = Rng::new(max as u64);
    let mut cases: Vec<(String, String, String)> = shapes(max)
        .into_iter()
        .zip(shapes(max / 16))
        .map(|((name, large), (_, small))| (name.to_owned(), small, large))
        .collect();
    for seed in 0..3 {
        // The large text is the small one sixteen times over: the same mix of runs.
        let small = random_text(&mut rng, max / 16);
        let large = small.repeat(16);
        cases.push((format!("random text {seed}"), small, large));
    }
    for (name, small, large) in cases {
        let what = format!("{guard} on {name}");
        ends(&what, large.clone(), scan);
        let per_byte =
            |text: &str, runs| best_time(text, scan, runs).as_secs_f64() / text.len() as f64;
        let small_cost = per_byte(&small, 9);
        let large_cost = per_byte(&large, 3);
        // Below a few microseconds a timer says little: such a scan is fast whatever its
        // growth, and the ratio of two tiny figures would be noise.
        let floor = 2e-9;
        assert!(
            large_cost <= 5.0 * small_cost.max(floor),
            "{what}: {:.1} ns per byte at {} bytes, {:.1} ns at {} bytes: not linear",
            large_cost * 1e9,
            large.len(),
            small_cost * 1e9,
            small.len(),
        );
    }
}

/// The largest text the property tests scan: the default `MAX_MESSAGE_CHARS`, in bytes.
pub const MAX_TEXT: usize = 200_000;

/// `text` cut into pieces of `size` bytes (widened to end on character boundaries), as a
/// stream delivers it.
pub fn pieces(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::with_capacity(text.len() / size + 1);
    let mut start = 0;
    while start < text.len() {
        let end = text.ceil_char_boundary((start + size).min(text.len()));
        pieces.push(&text[start..end]);
        start = end;
    }
    pieces
}
