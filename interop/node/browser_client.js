// Headless Chromium (Debian's package, driven by playwright-core) as a plain WebSocket client:
// from a blank page it connects to URL, sends text messages across the frame-length boundaries,
// checks each echo, closes with 4000, and prints one JSON line.
//
//   node browser_client.js ws://127.0.0.1:PORT/path
"use strict";

const { chromium } = require("playwright-core");

const [, , url] = process.argv;
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 200000];

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  let result;
  try {
    const page = await browser.newPage();
    result = await page.evaluate(
      ([target, sizes]) =>
        new Promise((resolve) => {
          const texts = sizes.map((size) => "é".repeat(Math.floor(size / 2)) + "x".repeat(size % 2));
          const socket = new WebSocket(target);
          const report = { event: "done", echoed: 0, total: texts.length, mismatches: [], code: null, reason: null, extensions: null };
          socket.onopen = () => {
            report.extensions = socket.extensions;
            socket.send(texts[0]);
          };
          socket.onmessage = (event) => {
            if (event.data !== texts[report.echoed]) report.mismatches.push(report.echoed);
            report.echoed += 1;
            if (report.echoed < texts.length) socket.send(texts[report.echoed]);
            else socket.close(4000, "browser-bye");
          };
          socket.onclose = (event) => {
            report.code = event.code;
            report.reason = event.reason;
            resolve(report);
          };
          setTimeout(() => resolve({ ...report, event: "timeout" }), 20000);
        }),
      [url, SIZES],
    );
  } catch (error) {
    result = { event: "error", error: String(error) };
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.event === "done" ? 0 : 2));
})();
