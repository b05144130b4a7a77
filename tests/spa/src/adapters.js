// The axios and ky adapters against the real server, through scripts/client-fault-proxy.mjs (which
// serves this page too, so everything is same-origin). The proxy answers 401 to a token it was told
// to reject, as a server does for a token it no longer accepts, and counts the requests it passes.
import axios from "axios";
import ky from "ky";
import init, { AuthClient } from "reauth-client";
import { installReauth } from "reauth-client/axios";
import { reauthHooks } from "reauth-client/ky";
import { check, registerUser, run } from "./page.js";

const proxyCounts = async () => (await fetch("/__proxy/counts")).json();
const sinceThen = (before, after, path) => (after[path] ?? 0) - (before[path] ?? 0);

async function rejectCurrentToken(auth) {
  const response = await fetch("/__proxy/reject-token", { method: "POST", body: await auth.accessToken() });
  check(response.ok, "the proxy takes the token to reject");
}

// `call` makes one GET /api/me through the adapter and resolves to the user it returned.
async function checkAdapter(name, auth, username, call) {
  const before = await proxyCounts();
  check((await call()).username === username, `${name}: the token is attached`);
  const plain = await proxyCounts();
  check(sinceThen(before, plain, "/auth/refresh") === 0, `${name}: no refresh while the token is good`);

  // One 401 → one refresh → one retry with the new token.
  await rejectCurrentToken(auth);
  const first = await proxyCounts();
  check((await call()).username === username, `${name}: the retry succeeds`);
  const second = await proxyCounts();
  check(sinceThen(first, second, "/auth/refresh") === 1, `${name}: one refresh after a 401`);
  check(sinceThen(first, second, "/api/me") === 2, `${name}: one retry (${sinceThen(first, second, "/api/me")} requests)`);

  // 50 concurrent calls that all meet a 401: still one refresh, and each call retried at most once.
  await rejectCurrentToken(auth);
  const users = await Promise.all(Array.from({ length: 50 }, call));
  const third = await proxyCounts();
  check(users.every((user) => user.username === username), `${name}: all 50 calls succeed`);
  const refreshes = sinceThen(second, third, "/auth/refresh");
  const refused = sinceThen(second, third, "rejected /api/me");
  check(refreshes === 1, `${name}: 50 concurrent 401s share one refresh (${refreshes})`);
  check(refused >= 1 && sinceThen(second, third, "/api/me") === 50 + refused, `${name}: one retry per 401 (${refused})`);
}

run(async () => {
  await init();
  const auth = new AuthClient({ baseUrl: location.origin });
  const { username, password } = await registerUser();

  const api = axios.create({ baseURL: location.origin });
  const uninstall = installReauth(api, auth);
  const anonymous = await api.get("/api/me", { validateStatus: () => true });
  check(anonymous.status === 401 && !anonymous.config.headers.has("Authorization"), "signed out: no token, no retry");

  await auth.login(username, password);
  await checkAdapter("axios", auth, username, async () => (await api.get("/api/me")).data);
  uninstall();
  const bare = await api.get("/api/me", { validateStatus: () => true });
  check(bare.status === 401, "uninstalled: the interceptors are gone");

  const kyApi = ky.create({ hooks: reauthHooks(auth) });
  await checkAdapter("ky", auth, username, () => kyApi.get(`${location.origin}/api/me`).json());
  // Another origin than baseUrl's (and not in apiOrigins) never gets the token.
  check(!auth.sendsTokenTo("https://elsewhere.example/api/me"), "other origins get no token");
  await auth.logout();
  auth.free();
});
