// Headless Chromium (Debian's package, driven by playwright-core) as a plain WebSocket client:
// from a blank page it connects to URL, sends text messages across the frame-length boundaries,
// checks each echo, closes with 4000 (or sends a text that asks the server to close), and
// prints one JSON line.
//
//   node browser_client.js ws://127.0.0.1:PORT/path [--max-size=N] [--close-with=TEXT]
//
//   --max-size=N       send the sizes up to N bytes only
//   --close-with=TEXT  after the last echo send TEXT (Netty's peer: "close:CODE:REASON") and
//                      wait for the server's close instead of closing
"use strict";

const { chromium } = require("playwright-core");

const options = Object.fromEntries(
  process.argv
    .slice(2)
    .filter((arg) => arg.startsWith("--"))
    .map((arg) => {
      const index = arg.indexOf("=");
      return index < 0 ? [arg.slice(2), true] : [arg.slice(2, index), arg.slice(index + 1)];
    }),
);
const [url] = process.argv.slice(2).filter((arg) => !arg.startsWith("--"));
const maxSize = options["max-size"] === undefined ? Infinity : Number(options["max-size"]);
const SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 200000].filter((size) => size <= maxSize);
const closeWith = options["close-with"] || null;

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
      ([target, sizes, closeWith]) =>
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
            else if (closeWith !== null) socket.send(closeWith);
            else socket.close(4000, "browser-bye");
          };
          socket.onclose = (event) => {
            report.code = event.code;
            report.reason = event.reason;
            resolve(report);
          };
          setTimeout(() => resolve({ ...report, event: "timeout" }), 20000);
        }),
      [url, SIZES, closeWith],
    );
  } catch (error) {
    result = { event: "error", error: String(error) };
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.event === "done" ? 0 : 2));
})();
