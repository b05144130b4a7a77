// Opens each built test page in Chromium and waits for its script to report in #status.
// Usage: node tests/spa/check-in-browser.mjs [--never-downloads=TEXT]... URL...
// With --never-downloads, a page also fails if any script it downloaded contains TEXT: how the
// tests show that an app which does not import an adapter never downloads its code.
// Exits 0 only when every page shows "ok".
import { launch, newPage } from "./browser.mjs";

const args = process.argv.slice(2);
const forbidden = args.filter((arg) => arg.startsWith("--never-downloads=")).map((arg) => arg.split("=")[1]);
const urls = args.filter((arg) => !arg.startsWith("--"));

const browser = await launch();
try {
  let failed = 0;
  for (const url of urls) {
    const page = await newPage(browser);
    const scripts = [];
    page.on("response", (response) => {
      if (response.request().resourceType() === "script") scripts.push(response.text().catch(() => ""));
    });
    await page.goto(url);
    const status = page.locator("#status");
    await status.filter({ hasNotText: "loading" }).waitFor({ timeout: 30_000 });
    let text = await status.textContent();
    const downloaded = (await Promise.all(scripts)).join("\n");
    const found = forbidden.filter((needle) => downloaded.includes(needle));
    if (text === "ok" && found.length) text = `error: downloaded code it does not import (${found.join(", ")})`;
    // Expected 401s and 404s (a favicon) show up as console errors: summarise, do not flood.
    const counted = new Map();
    for (const problem of page.problems) counted.set(problem, (counted.get(problem) ?? 0) + 1);
    const summary = [...counted].map(([problem, times]) => `\n  console (${times}x): ${problem}`).join("");
    console.log(`${url}: ${text} (${scripts.length} scripts)${summary}`);
    if (text !== "ok") failed += 1;
    await page.close();
  }
  process.exitCode = failed === 0 ? 0 : 1;
} finally {
  await browser.close();
}
