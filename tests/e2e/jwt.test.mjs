// JWT authentication in workerd with real keys made here (RSA, EC, HMAC), a JWKS served on
// 127.0.0.1, and every attack the policy must refuse.

import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { chat, startGateway } from "../support/gateway.mjs";

const ISSUER = "https://id.example.com/";
const AUDIENCE = "edge-gateway";
const HS_SECRET = "hs256-test-secret-0123456789abcdef0123";

const b64 = (data) => Buffer.from(typeof data === "string" ? data : JSON.stringify(data)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function keyPair(type, options) {
  const { publicKey, privateKey } = crypto.generateKeyPairSync(type, options);
  return { publicKey, privateKey, jwk: publicKey.export({ format: "jwk" }) };
}

/** A compact JWS over `header` and `claims`, signed as `alg` with `key` (or `signature`). */
function sign(header, claims, key, { signature } = {}) {
  const input = `${b64(header)}.${b64(claims)}`;
  let sig = signature;
  if (sig === undefined) {
    if (header.alg === "HS256") sig = crypto.createHmac("sha256", key).update(input).digest();
    else if (header.alg === "ES256") sig = crypto.sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
    else sig = crypto.sign("sha256", Buffer.from(input), key);
  }
  return `${input}.${Buffer.from(sig).toString("base64url")}`;
}

describe("JWT", () => {
  const rsa = keyPair("rsa", { modulusLength: 2048 });
  const rsaSmall = keyPair("rsa", { modulusLength: 1024 });
  const ec = keyPair("ec", { namedCurve: "P-256" });
  const ec384 = keyPair("ec", { namedCurve: "P-384" });
  const attacker = keyPair("rsa", { modulusLength: 2048 });
  let jwksFetches = 0;
  let jwksServer;
  let gateway;

  const claims = (extra = {}) => ({ sub: "user-jwt", iss: ISSUER, aud: AUDIENCE, iat: now(), exp: now() + 300, tier: "pro", ...extra });
  const rs = (extra, header = {}) => sign({ alg: "RS256", kid: "rsa-1", typ: "JWT", ...header }, claims(extra), rsa.privateKey);
  const withToken = (token) =>
    chat(gateway.url, { model: "mock", messages: [{ role: "user", content: "hi" }] }, { headers: { authorization: `Bearer ${token}` } });

  before(async () => {
    jwksServer = http.createServer((req, res) => {
      jwksFetches++;
      const keys = [
        { ...rsa.jwk, kid: "rsa-1", alg: "RS256", use: "sig" },
        { ...rsaSmall.jwk, kid: "rsa-small", alg: "RS256" },
        { ...ec.jwk, kid: "ec-1", alg: "ES256" },
        { ...ec384.jwk, kid: "ec-384" },
      ];
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise((resolve) => jwksServer.listen(0, "127.0.0.1", resolve));
    gateway = await startGateway({
      vars: {
        JWT_JWKS_URL: `http://127.0.0.1:${jwksServer.address().port}/jwks.json`,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        MOCK_CHUNK_DELAY_MS: "0",
      },
      secrets: { JWT_HS256_SECRET: HS_SECRET },
    });
  });
  after(async () => {
    await gateway?.close();
    jwksServer?.close();
  });

  test("valid RS256, ES256 and HS256 tokens authenticate, claims map to the principal", async () => {
    const tokens = [
      rs(),
      sign({ alg: "ES256", kid: "ec-1" }, claims({ sub: "user-ec" }), ec.privateKey),
      sign({ alg: "HS256" }, claims({ sub: "user-hs" }), HS_SECRET),
    ];
    const principals = [];
    for (const token of tokens) {
      const response = await withToken(token);
      assert.equal(response.status, 200, await response.clone().text());
      await response.json();
      principals.push((await gateway.logFor(response.headers.get("x-request-id"))).principal);
    }
    const issuer = "jwt:https%3A//id.example.com/";
    assert.deepEqual(principals, [`${issuer}:user-jwt`, `${issuer}:user-ec`, `${issuer}:user-hs`]);
  });

  const attacks = [
    ["alg none", () => `${b64({ alg: "none" })}.${b64(claims())}.`],
    ["alg None with a signature", () => sign({ alg: "None" }, claims(), HS_SECRET, { signature: Buffer.from("x") })],
    ["alg NONE", () => `${b64({ alg: "NONE", kid: "rsa-1" })}.${b64(claims())}.AA`],
    ["HS/RS key confusion (HS256 keyed with the RSA public key)", () =>
      sign({ alg: "HS256", kid: "rsa-1" }, claims(), rsa.publicKey.export({ type: "spki", format: "pem" }))],
    ["embedded jwk header", () => sign({ alg: "RS256", jwk: { ...attacker.jwk } }, claims(), attacker.privateKey)],
    ["jku header", () => sign({ alg: "RS256", kid: "rsa-1", jku: "http://127.0.0.1:1/evil.json" }, claims(), attacker.privateKey)],
    ["x5u header", () => sign({ alg: "RS256", kid: "rsa-1", x5u: "http://127.0.0.1:1/cert.pem" }, claims(), rsa.privateKey)],
    ["empty signature", () => rs().replace(/\.[^.]*$/, ".")],
    ["malformed signature", () => rs().replace(/\.[^.]*$/, ".!!notbase64!!")],
    ["tampered payload", () => { const [h, , s] = rs().split("."); return `${h}.${b64(claims({ sub: "admin" }))}.${s}`; }],
    ["signed by an unknown key", () => sign({ alg: "RS256", kid: "rsa-1" }, claims(), attacker.privateKey)],
    ["wrong curve (P-384 key as ES256)", () => sign({ alg: "ES256", kid: "ec-384" }, claims(), ec384.privateKey)],
    ["RSA key under 2048 bits", () => sign({ alg: "RS256", kid: "rsa-small" }, claims(), rsaSmall.privateKey)],
    ["EC kid used for RS256", () => sign({ alg: "RS256", kid: "ec-1" }, claims(), rsa.privateKey)],
    ["wrong issuer", () => rs({ iss: "https://evil.example.com/" })],
    ["wrong audience", () => rs({ aud: "someone-else" })],
    ["not yet valid", () => rs({ nbf: now() + 3600 })],
    ["issued in the future", () => rs({ iat: now() + 3600 })],
    ["no exp", () => rs({ exp: undefined })],
  ];

  for (const [name, make] of attacks) {
    test(`refused: ${name}`, async () => {
      const response = await withToken(make());
      assert.equal(response.status, 401);
      assert.match(response.headers.get("www-authenticate"), /^Bearer /);
      const { error } = await response.json();
      assert.equal(error.code, "invalid_token", error.message);
    });
  }

  test("an expired token gets 401 token_expired", async () => {
    const response = await withToken(rs({ exp: now() - 3600, iat: now() - 7200 }));
    assert.equal(response.status, 401);
    assert.equal((await response.json()).error.code, "token_expired");
  });

  test("a flood of made-up kids fetches the JWKS at most once per cooldown", async () => {
    const before = jwksFetches;
    for (let i = 0; i < 20; i++) {
      const token = sign({ alg: "RS256", kid: `forged-${i}` }, claims(), attacker.privateKey);
      assert.equal((await withToken(token)).status, 401);
    }
    assert.ok(jwksFetches - before <= 1, `${jwksFetches - before} JWKS fetches for 20 forged kids`);
    assert.equal((await withToken(rs())).status, 200, "real tokens still pass");
  });
});
