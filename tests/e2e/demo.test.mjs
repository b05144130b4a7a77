// The demo page in a real headless Chromium against a real reauth-server with 3-second access tokens.
import assert from "node:assert/strict";
import { mkdirSync, copyFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import {
  PASSWORD, eventTypes, launchBrowser, openDemo, registerThroughPage, setUpDevice as setUpWith, waitForEvent,
} from "./harness.mjs";

const ROOT = new URL("../../", import.meta.url).pathname;
let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const setUp = (t, env) => setUpWith(t, browser, env);

describe("demo page", () => {
  test("signs in, shows /api/me, and renews the token before it expires", async (t) => {
    const { server, context } = await setUp(t);
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    assert.match(await page.textContent("#status"), /Signed in as alice/);
    await page.click("#call-me");
    await page.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"));
    assert.match(await page.textContent("#me"), /"username":"alice"/);

    // 3-second tokens: wait through more than two lifetimes.
    await waitForEvent(page, "refreshed", { count: 3, timeout: 12_000 });
    const types = await eventTypes(page);
    assert.ok(!types.includes("refresh_failed") && !types.includes("signed_out"), types.join(","));
    assert.notEqual(await page.textContent("#renews-at"), "–");
    await page.click("#call-me");
    await page.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"));
    assert.equal(await page.isVisible("#notice"), false);
  });

  test("a reload restores the session silently from the refresh cookie", async (t) => {
    const { server, context } = await setUp(t);
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    await page.reload();
    await page.waitForSelector("#status:not([data-state=loading])");
    assert.match(await page.textContent("#status"), /Signed in as alice/);
    assert.equal(await page.isVisible("#signed-out"), false, "no login form");
    assert.equal(await page.evaluate(() => Object.keys(localStorage).length + Object.keys(sessionStorage).length), 0,
      "nothing kept in web storage");
    const cookieNames = await page.evaluate(() => document.cookie);
    assert.doesNotMatch(cookieNames, /reauth_refresh/, "the refresh cookie is invisible to scripts");
  });

  test("twenty protected requests after a forced expiry share one refresh", async (t) => {
    const { server, context } = await setUp(t, { JWT_ACCESS_EXPIRES_IN: "60s" });
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    await page.click("#burst");
    await page.waitForSelector("#burst-result:not([hidden])");
    assert.equal(await page.getAttribute("#burst-result", "data-ok"), "20");
    assert.equal(await page.getAttribute("#burst-result", "data-refreshes"), "1");

    mkdirSync(`${ROOT}.tmp/e2e`, { recursive: true });
    const shot = `${ROOT}.tmp/e2e/signed-in.png`;
    await page.click("#call-me");
    await page.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"));
    await page.waitForSelector("#audit tr");
    await page.setViewportSize({ width: 900, height: 1200 });
    await page.screenshot({ path: shot, fullPage: true });
    if (process.env.REAUTH_UPDATE_SCREENSHOT === "1") copyFileSync(shot, `${ROOT}docs/demo.png`);
  });

  test("two tabs stay signed in across renewals and sign out together", async (t) => {
    const { server, context } = await setUp(t);
    const first = await openDemo(context, server);
    await registerThroughPage(first, "alice");
    const second = await openDemo(context, server);
    assert.match(await second.textContent("#status"), /Signed in as alice/);

    await waitForEvent(first, "refreshed", { count: 3, timeout: 15_000 });
    await waitForEvent(second, "refreshed", { count: 3, timeout: 15_000 });
    for (const page of [first, second]) {
      const types = await eventTypes(page);
      assert.ok(!types.includes("signed_out") && !types.includes("refresh_failed"), types.join(","));
    }
    await first.click("#reload-audit");
    await first.waitForSelector("#audit tr");
    const audit = await first.$$eval("#audit tr td:nth-child(2)", (cells) => cells.map((cell) => cell.textContent));
    assert.ok(!audit.includes("reuse_detected"), audit.join(","));

    await first.click("#logout");
    await second.waitForSelector("#signed-out:not([hidden])", { timeout: 10_000 });
    assert.match(await second.textContent("#status"), /Signed out/);
  });

  test("a session revoked from another device ends at its next renewal", async (t) => {
    const { server, context: laptop } = await setUp(t);
    const phone = await browser.newContext();
    t.after(() => phone.close());
    const laptopPage = await openDemo(laptop, server);
    await registerThroughPage(laptopPage, "alice");
    const phonePage = await openDemo(phone, server);
    await phonePage.fill("#username", "alice");
    await phonePage.fill("#password", PASSWORD);
    await phonePage.click("#login");
    await phonePage.waitForSelector("#signed-in:not([hidden])");

    await laptopPage.click("#reload-sessions");
    await laptopPage.waitForFunction(() => document.querySelectorAll("#sessions li").length === 2);
    const other = laptopPage.locator("#sessions li", { hasText: "Other session" });
    await other.getByRole("button", { name: "Revoke" }).click();

    await waitForEvent(phonePage, "signed_out", { timeout: 10_000 });
    assert.match(await phonePage.textContent("#notice"), /revoked/);
    const laptopTypes = await eventTypes(laptopPage);
    assert.ok(!laptopTypes.includes("signed_out"), "the revoking device stays signed in");
  });

  test("a server outage shows a transient failure and recovers without a login", async (t) => {
    const { server, context } = await setUp(t);
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    await server.stop();
    await waitForEvent(page, "refresh_failed", { timeout: 10_000 });
    assert.equal(await page.getAttribute("#status", "data-state"), "degraded");
    assert.match(await page.textContent("#notice"), /cannot be reached/);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await server.start();

    const failuresBefore = (await eventTypes(page)).lastIndexOf("refresh_failed");
    await page.waitForFunction(
      (index) => [...document.querySelectorAll("#events li")].reverse().slice(index + 1).some((item) => item.dataset.type === "refreshed"),
      failuresBefore,
      { timeout: 30_000 },
    );
    assert.match(await page.textContent("#status"), /Signed in as alice/);
    assert.ok(!(await eventTypes(page)).includes("signed_out"));
  });

  test("a server-rendered page reloaded after the access token expired renders without a login", async (t) => {
    const { server, context } = await setUp(t, { REAUTH_ACCESS_COOKIE: "true", JWT_ACCESS_EXPIRES_IN: "2s" });
    const demo = await openDemo(context, server);
    await registerThroughPage(demo, "alice");
    await demo.close(); // no client left to renew in the background
    const page = await context.newPage();
    await page.goto(`${server.url}/account`);
    assert.equal(await page.textContent("#username"), "alice");
    const firstSession = await page.textContent("#session");

    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const names = (await context.cookies()).map((cookie) => cookie.name);
    assert.ok(!names.includes("reauth_access"), `the access cookie has expired: ${names}`);
    const response = await page.reload();
    assert.equal(response.status(), 200);
    assert.equal(new URL(page.url()).pathname, "/account", "no redirect to a login page");
    assert.equal(await page.textContent("#username"), "alice");
    assert.equal(await page.textContent("#session"), firstSession, "the same session, rotated on the server");
    assert.ok((await context.cookies()).some((cookie) => cookie.name === "reauth_access"), "a fresh access cookie was set");
  });

  test("errors read as sentences: wrong password, then too many attempts", async (t) => {
    const { server, context } = await setUp(t, { REAUTH_LOGIN_MAX_FAILURES: "2" });
    const page = await openDemo(context, server);
    await registerThroughPage(page, "alice");
    await page.click("#logout");
    await page.waitForSelector("#signed-out:not([hidden])");
    for (let attempt = 0; attempt < 2; attempt += 1) {
      await page.fill("#password", "not the password");
      await page.click("#login");
      await page.waitForFunction(() => document.querySelector("#notice").textContent.includes("Wrong username or password"));
      await page.evaluate(() => { document.querySelector("#notice").textContent = ""; });
    }
    await page.fill("#password", PASSWORD);
    await page.click("#login");
    await page.waitForFunction(() => document.querySelector("#notice").textContent.includes("Too many failed attempts"));
    assert.equal(await page.isVisible("#signed-in"), false);
  });
});
