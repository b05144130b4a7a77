// Opens the built SPA in Debian's Chromium (playwright-core, no downloaded browser) and waits for
// src/exercise.js to report. Usage: node tests/spa/check-in-browser.mjs URL
// Exits 0 only when the page shows "ok".
import { chromium } from "playwright-core";

const url = process.argv[2];
const args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run", "--disable-default-apps",
  "--disable-extensions"];
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args });
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(error.message));
  page.on("console", (message) => message.type() === "error" && problems.push(message.text()));
  await page.goto(url);
  const status = page.locator("#status");
  await status.filter({ hasNotText: "loading" }).waitFor({ timeout: 30_000 });
  const text = await status.textContent();
  console.log(`${url}: ${text}${problems.length ? `\n  console: ${problems.join("\n  console: ")}` : ""}`);
  process.exitCode = text === "ok" ? 0 : 1;
} finally {
  await browser.close();
}
