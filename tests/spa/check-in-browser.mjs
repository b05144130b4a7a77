// Opens each built test page in Chromium and waits for its script to report in #status.
// Usage: node tests/spa/check-in-browser.mjs URL...   Exits 0 only when every page shows "ok".
import { launch, newPage } from "./browser.mjs";

const browser = await launch();
try {
  let failed = 0;
  for (const url of process.argv.slice(2)) {
    const page = await newPage(browser);
    await page.goto(url);
    const status = page.locator("#status");
    await status.filter({ hasNotText: "loading" }).waitFor({ timeout: 30_000 });
    const text = await status.textContent();
    const console_ = page.problems.length ? `\n  console: ${page.problems.join("\n  console: ")}` : "";
    console.log(`${url}: ${text}${console_}`);
    if (text !== "ok") failed += 1;
    await page.close();
  }
  process.exitCode = failed === 0 ? 0 : 1;
} finally {
  await browser.close();
}
