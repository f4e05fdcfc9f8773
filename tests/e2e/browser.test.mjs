// The demo chat page (public/) in a real browser: Debian's Chromium driven by
// playwright-core loads it from workerd, streams an answer into the page, stops a
// generation (which must abort the upstream call), and a page from another origin is
// refused by CORS. A screenshot is saved under test-artifacts/.

import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { startMockOpenAI } from "../support/mock-openai.mjs";
import { upstreamConfig, useGatewayWith } from "../support/scenarios.mjs";

const ARTIFACTS = path.resolve("test-artifacts");

describe("the demo chat page in Chromium", () => {
  // The built-in mock streams 12 chunks 40 ms apart; `hold` is the mock upstream's stream
  // that stops after its first chunk until released.
  const fixture = useGatewayWith(startMockOpenAI, (url) =>
    upstreamConfig(url, { MOCK_CHUNKS: "12", MOCK_CHUNK_DELAY_MS: "40" }),
  );
  let browser;
  let page;
  before(async () => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
    page = await browser.newPage();
    await page.goto(`${fixture.gateway.url}/`);
    await page.waitForFunction(() => [...document.querySelectorAll("#model option")].some((o) => o.value === "mock"));
  });
  after(async () => {
    await browser?.close();
  });

  test("streams the answer into the page as it arrives, and shows the rate limits", async () => {
    await page.evaluate(() => {
      window.updates = 0;
      new MutationObserver(() => window.updates++).observe(document.getElementById("answer"), {
        childList: true,
        characterData: true,
        subtree: true,
      });
    });
    await page.selectOption("#model", "mock");
    await page.click("#send");
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Done"), null, { timeout: 10_000 });
    const answer = await page.textContent("#answer");
    assert.match(answer, /^This is the mock provider of the edge gateway\. You said: /);
    assert.equal(answer.split(" ").length, 12, "one word per chunk");
    const updates = await page.evaluate(() => window.updates);
    assert.ok(updates >= 10, `the text grew in ${updates} steps, not at once`);
    assert.match(await page.textContent("#status"), /Done: 12 tokens/);
    assert.match(await page.textContent("#limits"), /Requests left: \d+ of 60/);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, "demo-chat.png"), fullPage: true });
  });

  test("a finished answer can be rated with a thumb, and a second click replaces the first", async () => {
    assert.equal(await page.isVisible("#rate"), true);
    // The gateway remembers the answer's caller in the background: the first click may
    // come before it is stored, so it is repeated (bounded) until accepted.
    for (let i = 0; i < 50; i++) {
      await page.evaluate(() => (document.getElementById("status").textContent = ""));
      await page.click("#thumbs-down");
      await page.waitForFunction(() => document.getElementById("status").textContent !== "");
      if ((await page.textContent("#status")) === "Thanks: rated bad.") break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await page.textContent("#status"), "Thanks: rated bad.");
    await page.click("#thumbs-up");
    await page.waitForFunction(() => document.getElementById("status").textContent === "Thanks: rated good.");
    const ratings = fixture.gateway.requestLogs().filter((line) => line.route === "feedback" && line.status === 200);
    assert.deepEqual(ratings.map((line) => [line.feedback.score, line.feedback.replaced]).slice(-2), [[1, false], [5, true]]);
    assert.equal(ratings.at(-1).model, "mock");
  });

  test("the page speaks the Responses API too, streaming the same answer", async () => {
    await page.selectOption("#model", "mock");
    await page.selectOption("#api", "responses");
    await page.click("#send");
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("Done"), null, { timeout: 10_000 });
    assert.match(await page.textContent("#answer"), /^This is the mock provider of the edge gateway\. You said: /);
    assert.match(await page.textContent("#status"), /Done: 12 tokens/);
    await page.selectOption("#api", "chat");
  });

  test("stop aborts the generation, and the gateway aborts the upstream call", async () => {
    const abortedBefore = fixture.upstream.aborted.length;
    await page.selectOption("#model", "hold");
    await page.click("#send");
    await page.waitForFunction(() => document.getElementById("answer").textContent.length > 0);
    await page.click("#stop");
    await page.waitForFunction(() => document.getElementById("status").textContent === "Stopped.");
    // The gateway notices the closed connection at its next write, once the upstream
    // sends more, and must then cut the upstream off.
    fixture.upstream.release();
    await fixture.upstream.waitForAborts(abortedBefore + 1, 3_000);
  });

  test("errors are explained in words", async () => {
    await page.fill("#credential", "sk-gw-wrong");
    await page.selectOption("#model", "mock");
    await page.click("#send");
    await page.waitForFunction(() => document.getElementById("status").className === "error");
    assert.match(await page.textContent("#status"), /did not accept the key/);
    await page.fill("#credential", "");
  });

  test("a page from an origin not in the allow-list is refused by CORS", async () => {
    const gateway = fixture.gateway.url;
    const other = http.createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(`<script>
        fetch(${JSON.stringify(`${gateway}/v1/models`)})
          .then((r) => { document.title = "read " + r.status; })
          .catch(() => { document.title = "blocked"; });
      </script>`);
    });
    await new Promise((resolve) => other.listen(0, "127.0.0.1", resolve));
    try {
      const foreign = await browser.newPage();
      await foreign.goto(`http://127.0.0.1:${other.address().port}/`);
      await foreign.waitForFunction(() => document.title !== "");
      assert.equal(await foreign.title(), "blocked");
      const refused = fixture.gateway.requestLogs().filter((line) => line.error === "origin_not_allowed");
      assert.ok(refused.length >= 1, "the gateway refused the foreign origin itself");
      await foreign.close();
    } finally {
      other.close();
    }
  });
});
