// The node side of a service downstream of reauth: access tokens verified with `jose` (npm) from
// nothing but the server's JWKS, across a key rotation done with `reauth-server keys rotate`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { PASSWORD, ReauthServer, SERVER_BIN } from "./harness.mjs";

async function post(server, path, body) {
  return fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: server.url },
    body: JSON.stringify(body),
  });
}

async function accessToken(server, username) {
  const response = await post(server, "/auth/login", { username, password: PASSWORD });
  assert.equal(response.status, 200);
  return (await response.json()).access_token;
}

test("jose verifies reauth's access tokens from the JWKS, through a key rotation", async (t) => {
  const server = await ReauthServer.start({ JWT_ACCESS_EXPIRES_IN: "5m", REAUTH_KEY_REFRESH_INTERVAL: "1s" });
  t.after(() => server.close());
  assert.equal((await post(server, "/auth/register", { username: "alice", password: PASSWORD })).status, 201);
  // What a node service would configure: the issuer's JWKS, its issuer and audience, EdDSA and
  // at+jwt only. jose refetches the set when a token names an unknown kid (after the cooldown).
  const jwks = createRemoteJWKSet(new URL(`${server.url}/.well-known/jwks.json`), { cooldownDuration: 0 });
  const options = { issuer: "reauth", audience: "reauth", algorithms: ["EdDSA"], typ: "at+jwt" };

  const before = await accessToken(server, "alice");
  const { payload, protectedHeader } = await jwtVerify(before, jwks, options);
  assert.equal(protectedHeader.alg, "EdDSA");
  assert.ok(payload.sub && payload.sid && payload.exp > payload.iat);
  await assert.rejects(jwtVerify(before, jwks, { ...options, audience: "billing" }), /aud/);

  const newKid = execFileSync(SERVER_BIN, ["keys", "rotate", "--activate-in", "0s"], {
    env: { ...process.env, REAUTH_STORE: server.env.REAUTH_STORE },
    stdio: ["ignore", "pipe", "pipe"],
  }).toString().trim();
  let after = await accessToken(server, "alice");
  for (let attempt = 0; attempt < 120 && decodeProtectedHeader(after).kid !== newKid; attempt += 1) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    after = await accessToken(server, "alice");
  }
  assert.equal(decodeProtectedHeader(after).kid, newKid, "the server signs with the rotated key");
  assert.equal((await jwtVerify(after, jwks, options)).payload.sub, payload.sub, "the new key's token verifies");
  assert.equal((await jwtVerify(before, jwks, options)).payload.jti, payload.jti, "and the old key's still does");
});
