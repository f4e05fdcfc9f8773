// Text of the shapes that have hung or slowed text scanners (the guards' property tests in
// src/guard/hostile.rs generate the same kinds), for the end-to-end tests and the bench.

/**
 * `[name, text]` for each hostile shape, each about `bytes` long in UTF-8 (at least one
 * repetition of its unit).
 */
export function hostileTexts(bytes) {
  const repeat = (unit) => unit.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(unit))));
  const longLine = (lead, before) => `${lead}${"a".repeat(before)} ${"b".repeat(Math.max(1, bytes - before - 4))}`;
  return [
    // The message that hung the injection guard's segmenter: its only space past the
    // overlap of a long first line that starts with a multibyte character.
    ["multibyte lead, one long line", longLine("é", 199)],
    ["CJK lead, space at the overlap", longLine("日", 200)],
    ["emoji lead, one space", longLine("🙂", 400)],
    ["one letter, no spaces", repeat("a")],
    ["multibyte letters, no spaces", repeat("é")],
    ["digits and dots", repeat("1.")],
    ["spaced digits", repeat("1 ")],
    ["hex and colons", repeat("1:")],
    ["addresses without end", repeat("a@b.")],
    ["key prefixes", `${repeat("sk-")}é`],
    ["template openers", repeat("<|")],
    ["base64", repeat("QUJDRA")],
    ["zero-width characters", repeat("\u200B")],
    ["tag characters", repeat("\u{E0041}")],
  ];
}
