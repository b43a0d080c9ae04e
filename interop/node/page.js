// Headless Chromium looks at the page `hybi serve` returns at / and reports what it shows:
// for each element asked for, its rendered text (innerText) and its box on the screen, the
// page's background colour and the viewport, and a screenshot of the viewport.
//
//   node page.js http://127.0.0.1:PORT/ screenshot.png PLAN
//
// PLAN is JSON: {"waits": [[selector, text], ...], "click": selector or null,
// "after": [[selector, text], ...], "report": [selector, ...]}. Each wait holds until the
// element's text contains that text; `click` is clicked between the waits and the `after` waits.
// Prints one JSON line; exits 0 when every wait was met.
"use strict";

const { chromium } = require("playwright-core");

const [, , url, screenshot, planText] = process.argv;
const plan = JSON.parse(planText);
const VIEWPORT = { width: 1200, height: 1600 };

async function waitForText(page, selector, text) {
  await page.waitForFunction(
    ([s, t]) => { const e = document.querySelector(s); return e !== null && e.innerText.includes(t); },
    [selector, text],
    { timeout: 20000 },
  ).catch((error) => {
    throw new Error(`${selector} never showed ${JSON.stringify(text)}: ${error.message.split("\n")[0]}`);
  });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  const result = { event: "done", url, viewport: VIEWPORT, elements: {}, background: null };
  try {
    const page = await browser.newPage({ viewport: VIEWPORT });
    await page.goto(url, { timeout: 15000 });
    for (const [selector, text] of plan.waits || []) await waitForText(page, selector, text);
    if (plan.click) {
      await page.click(plan.click);
      for (const [selector, text] of plan.after || []) await waitForText(page, selector, text);
    }
    for (const selector of plan.report || []) {
      result.elements[selector] = await page.$eval(selector, (e) => {
        const r = e.getBoundingClientRect();
        const style = getComputedStyle(e);
        return {
          text: e.innerText, visible: style.visibility !== "hidden" && style.display !== "none",
          box: { x: r.x, y: r.y, width: r.width, height: r.height },
        };
      });
    }
    result.background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    await page.screenshot({ path: screenshot });
  } catch (error) {
    result.event = "error";
    result.error = String(error && error.message ? error.message : error);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.event === "done" ? 0 : 1));
})();
