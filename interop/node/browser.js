// Headless Chromium (Debian's package, driven by playwright-core) uses the page that
// `hybi serve` returns at / : it waits for the page to connect, types messages, and checks
// that each echo appears. Prints one JSON line, with the page's WebSocket `extensions` (what
// Chromium agreed to); exits 0 when every echo came back.
//
//   node browser.js http://127.0.0.1:PORT/ [screenshot.png]
"use strict";

const { chromium } = require("playwright-core");

const [, , url, screenshot] = process.argv;
// Two large ones: 70 KB that compress to almost nothing, and 120 KB of printable ASCII from a
// linear congruential generator that compress to some 70 KB, a frame with a 64-bit length.
function noiseText(size) {
  const characters = [];
  let state = size;
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    characters.push(String.fromCharCode(33 + ((state >>> 24) % 94)));
  }
  return characters.join("");
}
const MESSAGES = ["hello from chromium", "ünïcödé ✓", "x".repeat(70000), noiseText(120000)];

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const result = { event: "done", url, echoed: [], status: null, userAgent: null, extensions: null };
  try {
    const page = await browser.newPage();
    result.userAgent = await page.evaluate(() => navigator.userAgent);
    await page.goto(url, { timeout: 15000 });
    await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"), null, { timeout: 15000 });
    result.extensions = await page.evaluate(() => socket.extensions); // the page's WebSocket
    for (const message of MESSAGES) {
      await page.fill("#message", message);
      await page.press("#message", "Enter");
      await page.waitForFunction(
        (expected) => [...document.querySelectorAll(".received")].some((row) => row.textContent === "← " + expected),
        message,
        { timeout: 15000 },
      );
      result.echoed.push(message.length);
    }
    result.status = await page.textContent("#status");
    if (screenshot) await page.screenshot({ path: screenshot });
  } catch (error) {
    result.event = "error";
    result.error = String(error && error.message ? error.message : error);
  } finally {
    await browser.close();
  }
  // Exit from the write's callback: standard output is a pipe, which Node writes to
  // asynchronously, and process.exit() would drop a line still waiting for room in it.
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.event === "done" ? 0 : 1));
})();
