// Wallet sign-in (Stellar, SEP-53) in a real headless Chromium against a real reauth-server with
// 3-second access tokens: the demo's development wallet in the page, and @stellar/stellar-sdk's
// Keypair on the node side as an independent implementation of the same convention.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Keypair } from "@stellar/stellar-sdk";

import { eventTypes, launchBrowser, openDemo, setUpDevice, waitForEvent } from "./harness.mjs";

let browser;

before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** A fresh server and device with the demo page open. */
async function setUp(t, env) {
  const { server, context } = await setUpDevice(t, browser, env);
  return { server, page: await openDemo(context, server) };
}

async function postJson(server, path, body) {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

describe("wallet sign-in", () => {
  test("the development wallet signs in, renews silently, survives a reload and signs out", async (t) => {
    const { page } = await setUp(t);
    await page.click("#wallet-login");
    await page.waitForSelector("#signed-in:not([hidden])");
    const account = await page.textContent("#wallet-account");
    assert.match(account, /^G[A-Z2-7]{55}$/);
    assert.equal(await page.textContent("#who"), `stellar:${account}`);

    // 3-second tokens: renewed twice without asking the wallet again.
    await waitForEvent(page, "refreshed", { count: 2, timeout: 12_000 });
    const types = await eventTypes(page);
    assert.deepEqual(types.filter((type) => type === "signed_in"), ["signed_in"], types.join(","));
    assert.ok(!types.includes("refresh_failed") && !types.includes("signed_out"), types.join(","));
    await page.click("#call-me");
    await page.waitForFunction(() => document.querySelector("#me").textContent.startsWith("200"));
    assert.match(await page.textContent("#me"), new RegExp(`"username":"stellar:${account}"`));
    await page.waitForSelector("#audit tr");

    await page.reload();
    await page.waitForSelector("#status:not([data-state=loading])");
    assert.match(await page.textContent("#status"), new RegExp(`Signed in as stellar:${account}`));
    assert.equal(await page.isVisible("#signed-out"), false, "restored from the refresh cookie, no signature");

    await page.click("#logout");
    await page.waitForSelector("#signed-out:not([hidden])");
    assert.match(await page.textContent("#status"), /Signed out/);
    await page.reload();
    await page.waitForSelector("#status:not([data-state=loading])");
    assert.match(await page.textContent("#status"), /Signed out/);
  });

  test("a Stellar SDK Keypair's SEP-53 signature signs in", async (t) => {
    const { server } = await setUp(t);
    const keypair = Keypair.random();
    const challenge = await postJson(server, "/auth/wallet/challenge", { account: keypair.publicKey() });
    assert.equal(challenge.status, 200);
    const signature = Buffer.from(keypair.signMessage(challenge.body.message)).toString("base64");
    const login = await postJson(server, "/auth/wallet/login", {
      account: keypair.publicKey(),
      message: challenge.body.message,
      signature,
    });
    assert.equal(login.status, 200, JSON.stringify(login.body));
    assert.equal(login.body.user.username, `stellar:${keypair.publicKey()}`);
    const replay = await postJson(server, "/auth/wallet/login", {
      account: keypair.publicKey(),
      message: challenge.body.message,
      signature,
    });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.error, "invalid_credentials");
  });

  test("the page's development wallet agrees with the Stellar SDK on account ids and signatures", async (t) => {
    const { page } = await setUp(t);
    const seed = Keypair.random().rawSecretKey();
    const message = "app.example.com wants you to sign in with your Stellar account:\nmultiline ✓";
    const fromPage = await page.evaluate(async ([seed, message]) => {
      const { walletFromSeed } = await import("/dev-wallet.js");
      const wallet = await walletFromSeed(new Uint8Array(seed));
      return { account: wallet.account, signature: await wallet.signMessage(message) };
    }, [[...seed], message]);
    const keypair = Keypair.fromRawEd25519Seed(seed);
    assert.equal(fromPage.account, keypair.publicKey());
    assert.ok(keypair.verifyMessage(message, Buffer.from(fromPage.signature, "base64")));
  });

  test("loginWithWallet rejects like login, and passes a wallet's refusal through", async (t) => {
    const { page } = await setUp(t);
    const outcome = await page.evaluate(async () => {
      const { default: init, AuthClient } = await import("/pkg/reauth_client.js");
      await init();
      const { developmentWallet } = await import("/dev-wallet.js");
      const [wallet, other] = [await developmentWallet(), await developmentWallet()];
      const auth = new AuthClient({ baseUrl: location.origin, crossTab: false });
      const failure = (promise) => promise.then(() => "resolved", (error) => ({ code: error.code ?? null, message: error.message }));
      const wrongKey = await failure(auth.loginWithWallet({ account: wallet.account, signMessage: other.signMessage }));
      const declined = await failure(auth.loginWithWallet({
        account: wallet.account,
        signMessage: () => Promise.reject(new Error("User declined")),
      }));
      const badAccount = await failure(auth.loginWithWallet({ account: "GABC", signMessage: wallet.signMessage }));
      const missing = await failure(auth.loginWithWallet({ account: wallet.account }));
      const user = await auth.loginWithWallet(wallet);
      const authenticated = auth.isAuthenticated;
      auth.free();
      return { wrongKey, declined, badAccount, missing, user, authenticated, account: wallet.account };
    });
    assert.equal(outcome.wrongKey.code, "invalid_credentials");
    assert.deepEqual(outcome.declined, { code: null, message: "User declined" });
    assert.equal(outcome.badAccount.code, "http_error", "400 from the challenge endpoint");
    assert.equal(outcome.missing.code, "invalid_options");
    assert.equal(outcome.user.username, `stellar:${outcome.account}`);
    assert.equal(outcome.authenticated, true);
  });
});
