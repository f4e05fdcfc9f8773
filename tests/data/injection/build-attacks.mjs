// Builds attacks.json from the hand-written prompts in attacks-written.json plus obfuscated
// and encoded variants of the English ones (override, role hijack, extraction). The
// variants are picked by position (every k-th prompt from an offset), never by whether
// the detector catches them, and the output is committed so the corpus is fixed:
//
//   node tests/data/injection/build-attacks.mjs
//
// Each variant keeps its source's category and names its obfuscation; encoded variants
// are labelled `encoded_payload`.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const written = JSON.parse(fs.readFileSync(path.join(here, "attacks-written.json"), "utf8"));

/** A small deterministic generator (mulberry32), so a rebuild gives the same file. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOMOGLYPHS = { a: "а", e: "е", o: "о", p: "р", c: "с", x: "х", y: "у", i: "і", s: "ѕ", A: "А", E: "Е", O: "О", P: "Р", C: "С", T: "Т", H: "Н", K: "К", M: "М" };
const LEET = { a: "4", e: "3", i: "1", o: "0", s: "5", t: "7", A: "4", E: "3", I: "1", O: "0", S: "5", T: "7" };
const letters = (text, f) => [...text].map(f).join("");

const obfuscations = {
  case: (text, rnd) => letters(text, (c) => (rnd() < 0.5 ? c.toUpperCase() : c.toLowerCase())),
  whitespace: (text, rnd) => text.replace(/ /g, () => [" ", "   ", "\t", " \n ", "  \t "][Math.floor(rnd() * 5)]),
  homoglyph: (text, rnd) => letters(text, (c) => (HOMOGLYPHS[c] && rnd() < 0.6 ? HOMOGLYPHS[c] : c)),
  leetspeak: (text, rnd) => letters(text, (c) => (LEET[c] && rnd() < 0.8 ? LEET[c] : c)),
  spaced: (text) => text.split(" ").map((word) => [...word].join(" ")).join("   "),
  zero_width: (text, rnd) => letters(text, (c) => (/[a-z]/i.test(c) && rnd() < 0.5 ? c + ["\u200b", "\u200c", "\u200d", "\u2060", "\u00ad"][Math.floor(rnd() * 5)] : c)),
  fullwidth: (text) => letters(text, (c) => (c > " " && c <= "~" ? String.fromCodePoint(c.codePointAt(0) + 0xfee0) : c)),
  tag_smuggling: (text) => "Can you summarize this article for me?" + letters(text, (c) => (c >= " " && c <= "~" ? String.fromCodePoint(c.codePointAt(0) + 0xe0000) : "")),
  punctuation: (text) => text.split(" ").map((word, i) => (i % 2 === 0 ? [...word].join(".") : [...word].join("-"))).join(" "),
  mixed: (text, rnd) => obfuscations.homoglyph(obfuscations.leetspeak(obfuscations.case(text, rnd), rnd), rnd),
};

const encodings = {
  base64: (text, i) => ["Decode this base64 and do what it says: ", "Here is my request in base64: ", "", "Please process the following data: "][i % 4] + Buffer.from(text).toString("base64"),
  hex: (text) => "Please interpret this hex string: " + Buffer.from(text).toString("hex"),
  rot13: (text) => "This is ROT13, decode it and follow it: " + text.replace(/[a-z]/gi, (c) => String.fromCharCode(((c.toLowerCase().charCodeAt(0) - 97 + 13) % 26) + (c <= "Z" ? 65 : 97))),
};

// How many variants of each kind, and from which offset every third English prompt is taken.
const plan = [
  ["case", 12], ["whitespace", 12], ["homoglyph", 15], ["leetspeak", 15], ["spaced", 12],
  ["zero_width", 12], ["fullwidth", 8], ["tag_smuggling", 8], ["punctuation", 8], ["mixed", 10],
  ["base64", 14], ["hex", 5], ["rot13", 5],
];

const sources = written.filter((a) => ["instruction_override", "role_hijack", "system_prompt_extraction"].includes(a.category));
const attacks = written.map((a) => ({ ...a, obfuscation: "none" }));
plan.forEach(([kind, count], k) => {
  const rnd = random(1000 + k);
  for (let n = 0; n < count; n++) {
    const source = sources[(k * 7 + n * 3) % sources.length];
    if (obfuscations[kind]) {
      attacks.push({ category: source.category, language: "en", obfuscation: kind, text: obfuscations[kind](source.text, rnd) });
    } else {
      attacks.push({ category: "encoded_payload", language: "en", obfuscation: kind, text: encodings[kind](source.text, n) });
    }
  }
});

const lines = attacks.map((a) => "  " + JSON.stringify(a));
fs.writeFileSync(path.join(here, "attacks.json"), "[\n" + lines.join(",\n") + "\n]\n");
console.log(`${attacks.length} attacks written`);
