// The client across real tabs (pages of one browser context, which share cookies, Web Locks and
// BroadcastChannel), across the back/forward cache, and through lost refresh answers: the demo page
// in headless Chromium against a real reauth-server.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";

import {
  ReauthServer, eventTypes, freePort, launchBrowser, openDemo, registerThroughPage, setUpDevice as setUpWith, waitForEvent,
} from "./harness.mjs";

const ROOT = new URL("../../", import.meta.url).pathname;
let browser;

// The back/forward cache stays on: one of the tests needs it, and the others must work with it.
before(async () => { browser = await launchBrowser({ backForwardCache: true }); });
after(async () => { await browser?.close(); });

const setUp = (t, env) => setUpWith(t, browser, env);

/** Every request for `path` that leaves any page of the context, as `{page, url}`. */
function recordRequests(context, path) {
  const seen = [];
  context.on("request", (request) => {
    if (new URL(request.url()).pathname === path) seen.push({ page: request.frame()?.page(), url: request.url() });
  });
  return seen;
}

const accessToken = (page) => page.evaluate(() => window.auth.accessToken());

async function auditTypes(page) {
  return page.evaluate(async () => (await (await window.auth.fetch("/auth/audit")).json()).map((event) => event.type));
}

describe("tabs", () => {
  test("a new tab adopts the live token from its sibling without a refresh", async (t) => {
    const { server, context } = await setUp(t, { JWT_ACCESS_EXPIRES_IN: "60s" });
    const first = await openDemo(context, server);
    await registerThroughPage(first, "alice");
    const refreshes = recordRequests(context, "/auth/refresh");

    const second = await openDemo(context, server);
    assert.match(await second.textContent("#status"), /Signed in as alice/);
    assert.equal(refreshes.length, 0, "handed over in memory, no refresh request");
    assert.equal(await accessToken(second), await accessToken(first), "the sibling's token");
    assert.deepEqual(await second.evaluate(() => window.auth.getSnapshot().status), "signed_in");
  });

  test("two tabs renew through one refresh and no reuse is detected", async (t) => {
    const { server, context } = await setUp(t, { JWT_ACCESS_EXPIRES_IN: "60s" });
    const first = await openDemo(context, server);
    await registerThroughPage(first, "alice");
    const second = await openDemo(context, server);
    const refreshes = recordRequests(context, "/auth/refresh");

    // Both tabs need a renewal at the same moment.
    await Promise.all([first, second].map((page) => page.evaluate(() => window.auth.invalidateAccessToken())));
    const [firstToken, secondToken] = await Promise.all([accessToken(first), accessToken(second)]);
    assert.equal(refreshes.length, 1, "one refresh request for both tabs");
    assert.equal(firstToken, secondToken, "both tabs hold the renewed token");
    for (const page of [first, second]) await waitForEvent(page, "refreshed");
    const audit = await auditTypes(first);
    assert.ok(audit.includes("refresh") && !audit.includes("reuse_detected"), audit.join(","));
  });

  test("logging out in one tab signs the other out at once", async (t) => {
    const { server, context } = await setUp(t);
    const first = await openDemo(context, server);
    await registerThroughPage(first, "alice");
    const second = await openDemo(context, server);
    await first.click("#logout");
    await second.waitForSelector("#signed-out:not([hidden])", { timeout: 5_000 });
    assert.equal(await second.evaluate(() => window.auth.getSnapshot().status), "signed_out");
    assert.equal((await eventTypes(second)).at(-1), "signed_out");

    // A reload after the logout knows it is signed out without asking the server.
    const refreshes = recordRequests(context, "/auth/refresh");
    await second.reload();
    await second.waitForSelector("#signed-out:not([hidden])");
    assert.equal(refreshes.length, 0, "no indicator cookie, no refresh request");
  });

  test("a tab that hangs holding the refresh lock has it stolen after lockTimeoutMs", async (t) => {
    const { server, context } = await setUp(t, { JWT_ACCESS_EXPIRES_IN: "60s" });
    const hung = await openDemo(context, server);
    await registerThroughPage(hung, "alice");
    const other = await openDemo(context, server, `${server.url}/?lockTimeoutMs=1000`);
    // The hung tab takes the lock and never lets go (its page stays open).
    await hung.evaluate(() => new Promise((granted) => {
      navigator.locks.request(`reauth:${location.origin}`, () => { granted(); return new Promise(() => {}); }).catch(() => {});
    }));
    const refreshes = recordRequests(context, "/auth/refresh");
    const before = await accessToken(other);
    const renewed = await other.evaluate(() => { window.auth.invalidateAccessToken(); return window.auth.accessToken(); });
    assert.notEqual(renewed, before);
    assert.equal(refreshes.length, 1, "the other tab refreshed once it took the lock over");
    await other.click("#call-me");
    await other.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"));
  });
});

describe("back/forward cache", () => {
  /** Leaves the demo for another page of the site and comes back with the Back button. */
  async function awayAndBack(page, server, whileAway = async () => {}) {
    await page.evaluate(() => {
      window.shownFromCache = null;
      addEventListener("pageshow", (event) => { window.shownFromCache = event.persisted; });
    });
    await page.goto(`${server.url}/style.css`);
    await whileAway();
    await page.goBack({ waitUntil: "commit" }); // a page from the cache fires no load event
    await page.waitForFunction(() => window.shownFromCache !== null);
    assert.equal(await page.evaluate(() => window.shownFromCache), true, "restored from the back/forward cache");
  }

  test("a page restored from the cache is still signed in and renews what expired meanwhile", async (t) => {
    const { server, context } = await setUp(t);
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    // 3-second tokens: away long enough for the token to expire.
    await awayAndBack(page, server, () => new Promise((resolve) => setTimeout(resolve, 3_500)));
    assert.match(await page.textContent("#status"), /Signed in as alice/);
    await page.click("#call-me");
    await page.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"));
    assert.ok(!(await eventTypes(page)).includes("signed_out"));
    const audit = await auditTypes(page);
    assert.ok(!audit.includes("reuse_detected"), audit.join(","));
  });

  test("a page restored from the cache learns of a logout that happened while it was away", async (t) => {
    const { server, context } = await setUp(t, { JWT_ACCESS_EXPIRES_IN: "60s" });
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    await awayAndBack(page, server, async () => {
      const other = await openDemo(context, server);
      await other.click("#logout");
      await other.waitForSelector("#signed-out:not([hidden])");
      await other.close();
    });
    await page.waitForSelector("#signed-out:not([hidden])", { timeout: 5_000 });
    assert.equal(await page.evaluate(() => window.auth.getSnapshot().status), "signed_out");
  });
});

describe("lost answers", () => {
  /** scripts/client-fault-proxy.mjs in front of `target`; resolves to its URL. */
  async function startProxy(t, target) {
    const proxy = spawn(process.execPath, [`${ROOT}scripts/client-fault-proxy.mjs`, target], { stdio: ["ignore", "pipe", "inherit"] });
    t.after(() => proxy.kill());
    return new Promise((resolve) => {
      proxy.stdout.on("data", (chunk) => {
        const found = String(chunk).match(/listening on (http:\/\/[0-9.:]+)/);
        if (found) resolve(found[1]);
      });
    });
  }

  test("refresh answers lost for several reuse intervals never end the session", async (t) => {
    const port = await freePort();
    const proxyUrl = await startProxy(t, `http://127.0.0.1:${port}`);
    // The page is served through the proxy, so the proxy is its origin.
    const server = new ReauthServer(port, {
      JWT_ACCESS_EXPIRES_IN: "3s", REAUTH_REUSE_INTERVAL: "1s",
      REAUTH_ALLOWED_ORIGINS: proxyUrl, REAUTH_PUBLIC_ORIGIN: proxyUrl,
    });
    await server.start();
    const context = await browser.newContext();
    t.after(async () => { await context.close(); await server.close(); });
    const setMode = (mode) => fetch(`${proxyUrl}/__proxy/mode/${mode}`, { method: "POST" });

    const page = await openDemo(context, server, proxyUrl);
    await registerThroughPage(page, "alice");
    const refreshes = recordRequests(context, "/auth/refresh");
    await setMode("lose");
    // Renewals are due every 1.5 s; every answer is lost after the server rotated: 8 s is eight
    // reuse intervals, and the access token expires meanwhile.
    await waitForEvent(page, "refresh_failed", { count: 2, timeout: 10_000 });
    await new Promise((resolve) => setTimeout(resolve, 8_000));
    const lost = refreshes.length;
    await setMode("up");

    await page.click("#call-me");
    await page.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"), null, { timeout: 40_000 });
    const types = await eventTypes(page);
    assert.ok(lost >= 3, `the client kept presenting its token with backoff (${lost} tries)`);
    assert.ok(!types.includes("signed_out"), types.join(","));
    assert.equal(types.at(-1), "refreshed");
    const audit = await auditTypes(page);
    assert.ok(!audit.includes("reuse_detected"), audit.join(","));
  });
});
