// Shared set-up for the end-to-end tests: a real reauth-server process on a SQLite file, serving the
// demo page, and Debian's Chromium driven by playwright-core.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const ROOT = new URL("../../", import.meta.url).pathname;
export const SERVER_BIN = process.env.REAUTH_SERVER_BIN ?? join(ROOT, "target/debug/reauth-server");

// The flags shared/TOOLCHAIN.md found necessary for Chromium on a closed network.
const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
  "--disable-default-apps", "--disable-extensions",
];

export const PASSWORD = "correct horse battery";

/** `backForwardCache`: keep Chromium's back/forward cache on (Playwright turns it off by default). */
export function launchBrowser({ backForwardCache = false } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreDefaultArgs: backForwardCache ? ["--disable-back-forward-cache"] : [],
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

/**
 * A reauth-server on a fixed loopback port (so it can be stopped and started again at the same
 * address) over a SQLite file that outlives restarts.
 */
export class ReauthServer {
  static async start(env = {}) {
    const server = new ReauthServer(await freePort(), env);
    await server.start();
    return server;
  }

  constructor(port, env) {
    this.port = port;
    this.url = `http://127.0.0.1:${port}`;
    this.dir = mkdtempSync(join(tmpdir(), "reauth-e2e-"));
    this.env = {
      ...process.env,
      REAUTH_BIND: `127.0.0.1:${port}`,
      REAUTH_STORE: `sqlite://${join(this.dir, "reauth.db")}`,
      REAUTH_WWW_DIR: join(ROOT, "www"),
      REAUTH_COOKIE_SECURE: "false",
      JWT_ACCESS_EXPIRES_IN: "3s",
      JWT_REFRESH_EXPIRES_IN: "1h",
      RUST_LOG: "warn",
      ...env,
    };
    this.output = "";
  }

  start() {
    this.process = spawn(SERVER_BIN, ["serve"], { env: this.env, stdio: ["ignore", "pipe", "pipe"] });
    this.process.stderr.on("data", (chunk) => { this.output += chunk; });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${this.output}`)), 15_000);
      this.process.stdout.on("data", (chunk) => {
        if (String(chunk).includes("listening on")) {
          clearTimeout(timer);
          resolve();
        }
      });
      this.process.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`server exited with ${code}:\n${this.output}`));
      });
    });
  }

  async stop() {
    if (!this.process || this.process.exitCode !== null) return;
    const exited = new Promise((resolve) => this.process.once("exit", resolve));
    this.process.kill("SIGKILL");
    await exited;
  }

  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A fresh server, a fresh browser context (one "device"), and cleanup for both after test `t`. Any
 * uncaught error in a page of the test fails the test.
 */
export async function setUpDevice(t, browser, env) {
  const server = await ReauthServer.start(env);
  const context = await browser.newContext();
  const pageErrors = [];
  context.on("page", (page) => page.on("pageerror", (error) => pageErrors.push(error)));
  t.after(async () => {
    await context.close();
    await server.close();
    assert.deepEqual(pageErrors.map(String), [], "uncaught errors in the page");
  });
  return { server, context };
}

/** Registers and signs in through the page's own form. */
export async function registerThroughPage(page, username) {
  await page.fill("#username", username);
  await page.fill("#password", PASSWORD);
  await page.click("#register");
  await page.waitForSelector("#signed-in:not([hidden])");
}

/** The types of the events in the page's log, oldest first. */
export async function eventTypes(page) {
  const types = await page.$$eval("#events li", (items) => items.map((item) => item.dataset.type));
  return types.reverse();
}

export async function waitForEvent(page, type, { count = 1, timeout = 15_000 } = {}) {
  await page.waitForFunction(
    ([wanted, n]) => document.querySelectorAll(`#events li[data-type="${wanted}"]`).length >= n,
    [type, count],
    { timeout },
  );
}

/** A free loopback port. */
export { freePort };

/** Opens the demo page at `url` (default: the server's) and waits until its start-up has settled. */
export async function openDemo(context, server, url = server.url) {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector("#status:not([data-state=loading])");
  return page;
}
