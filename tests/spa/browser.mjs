// Debian's Chromium through playwright-core (no downloaded browser), with the flags that keep it
// quiet on a closed network. Shared by the check-*.mjs scripts.
import { chromium } from "playwright-core";

const args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run", "--disable-default-apps",
  "--disable-extensions"];

export function launch() {
  return chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args });
}

/** A new page that collects uncaught errors and console errors into `page.problems`. */
export async function newPage(browser) {
  const page = await browser.newPage();
  page.problems = [];
  page.on("pageerror", (error) => page.problems.push(error.message));
  page.on("console", (message) => message.type() === "error" && page.problems.push(message.text()));
  return page;
}
