// What the mock upstreams share when they answer like a model: a value that follows a
// JSON Schema (a tool's input, a structured answer), text cut into stream pieces, and a
// checker that collects the first broken rule of a request.

/** A value that follows `schema` (the subset of JSON Schema tools and answers use). */
export function sampleOf(schema = {}) {
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case "object": {
      const value = {};
      for (const [name, property] of Object.entries(schema.properties ?? {})) value[name] = sampleOf(property);
      return value;
    }
    case "array":
      return schema.items ? [sampleOf(schema.items)] : [];
    case "string":
      return "Paris";
    case "integer":
    case "number":
      return 18;
    case "boolean":
      return true;
    default:
      return {};
  }
}

/** `text` in `count` pieces of about one size (fewer when it is shorter), as a model streams it. */
export function piecesOf(text, count = 3) {
  const n = Math.min(count, text.length);
  return Array.from({ length: n }, (_, i) => text.slice(Math.floor((i * text.length) / n), Math.floor(((i + 1) * text.length) / n)));
}

/** Collects the first rule a request breaks: `check(ok, message)` notes it, `first` reads it. */
export function rules() {
  let first = null;
  return {
    check(ok, message) {
      if (!ok && first === null) first = message;
      return Boolean(ok);
    },
    get first() {
      return first;
    },
  };
}

/**
 * The benchmark's models: one named `<name>-burst-<n>` answers in one write (see
 * upstream-server.mjs), with its text or tool input in `n` pieces; null for other models.
 */
export function burstPieces(model) {
  const match = /-burst-(\d+)$/.exec(model ?? "");
  return match ? Number(match[1]) : null;
}

/** `n` words of `words`, over and over. */
export const wordsFor = (words, n) => Array.from({ length: n }, (_, i) => words[i % words.length]);

export const isObject = (value) => typeof value === "object" && value !== null && !Array.isArray(value);
export const isBase64 = (text) => typeof text === "string" && text.length > 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(text);

/** A mock embedding: `dimensions` numbers in [-1, 1) from a hash of `input` (a string or token array), the same every time. */
export function vectorOf(input, dimensions) {
  let state = 2166136261;
  for (const char of JSON.stringify(input)) state = Math.imul(state ^ char.codePointAt(0), 16777619) >>> 0;
  return Array.from({ length: dimensions }, () => {
    state = Math.imul(state ^ (state >>> 15), 2246822519) >>> 0;
    return Math.round((state / 2 ** 31 - 1) * 1e6) / 1e6;
  });
}
