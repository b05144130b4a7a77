// The README's usage, step by step, with a check after each step; then the error contract of the
// package's entry module (ReauthError, calls after free()).
import { check, outcome, registerUser } from "./page.js";

export async function exercise({ AuthClient, ReauthError, isReauthError }) {
  const baseUrl = location.origin;
  const auth = new AuthClient({ baseUrl, refreshMarginSeconds: 60 });
  const seen = [];
  const off = auth.onChange((event) => seen.push(event.type));

  const restored = await auth.restore();
  check(restored === null, "restore() without a session resolves to null");

  const { username, password } = await registerUser(baseUrl);
  const refused = (await outcome(auth.login(username, "wrong password"))).rejected;
  check(refused instanceof ReauthError && refused instanceof Error, "rejections are ReauthError instances");
  check(isReauthError(refused, "invalid_credentials") && !isReauthError(refused, "network"), `code: ${refused?.code}`);
  check(refused.name === "ReauthError" && refused.status === 401 && typeof refused.stack === "string", "error fields");
  check(!isReauthError(new Error("x")) && !isReauthError(null), "isReauthError() refuses other values");

  const user = await auth.login(username, password);
  check(user.username === username && auth.isAuthenticated, "login resolves to the user");
  const res = await auth.fetch("/api/me", { method: "GET" });
  check(res.status === 200 && (await res.json()).username === username, "auth.fetch carries the token");
  const token = await auth.accessToken();
  check(typeof token === "string" && token.length > 20, "accessToken()");
  check(typeof auth.expiresAt === "number" && auth.user.username === username, "getters");

  const again = new AuthClient({ baseUrl });
  check((await again.restore())?.username === username, "restore() in a new client");
  again.free();

  await auth.logout();
  // The second client's restore may reach this one as a "refreshed" from another tab first.
  const transitions = seen.filter((type) => type !== "refreshed").join();
  check(!auth.isAuthenticated && transitions === "signed_in,signed_out", `events: ${seen.join()}`);
  const unauthenticated = (await outcome(auth.accessToken())).rejected;
  check(isReauthError(unauthenticated, "unauthenticated"), `accessToken() after logout: ${unauthenticated?.code}`);
  await auth.login(username, password);
  await auth.logoutAll();
  check(!auth.isAuthenticated && seen.at(-1) === "signed_out", "logoutAll() signs out");
  const reloaded = new AuthClient({ baseUrl });
  check((await reloaded.restore()) === null, "no session survives logoutAll()");
  reloaded.free();
  off();
  auth.free();

  // After free(): every call fails with ReauthError "disposed" (async ones reject, the rest throw),
  // not with wasm-bindgen's null-pointer error; free() again is harmless.
  for (const call of [() => auth.login(username, password), () => auth.accessToken(), () => auth.fetch("/api/me")]) {
    const { rejected } = await outcome(call());
    check(rejected instanceof ReauthError && rejected.code === "disposed", `after free(): ${rejected?.message}`);
  }
  for (const call of [() => auth.onChange(() => {}), () => auth.isAuthenticated, () => auth.invalidateAccessToken()]) {
    let thrown;
    try {
      call();
    } catch (error) {
      thrown = error;
    }
    check(isReauthError(thrown, "disposed"), `after free(), sync: ${thrown?.message}`);
  }
  auth.free();
  if (typeof Symbol.dispose === "symbol") auth[Symbol.dispose]();
  // A call under way when free() comes fails with "disposed" too.
  const freedMidway = new AuthClient({ baseUrl });
  const pending = outcome(freedMidway.login(username, "wrong password"));
  freedMidway.free();
  const { rejected } = await pending;
  check(isReauthError(rejected, "disposed"), `a call under way at free(): ${rejected?.code}`);
}
