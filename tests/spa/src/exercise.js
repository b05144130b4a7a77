// The README's usage, step by step, with a check after each step.
const status = document.querySelector("#status");

function check(condition, what) {
  if (!condition) throw new Error(`failed: ${what}`);
}

export async function exercise(AuthClient) {
  try {
    const baseUrl = location.origin;
    const auth = new AuthClient({ baseUrl, refreshMarginSeconds: 60 });
    const seen = [];
    const off = auth.onChange((event) => seen.push(event.type));

    const restored = await auth.restore();
    check(restored === null, "restore() without a session resolves to null");

    const username = `spa${Math.floor(Math.random() * 1e9)}`;
    const password = "correct horse battery";
    const registered = await fetch(`${baseUrl}/auth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username, password }),
    });
    check(registered.status === 201, "register");

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
    const refusal = await auth.accessToken().then(() => null, (error) => error);
    check(refusal?.code === "unauthenticated", `accessToken() after logout rejects: ${refusal?.code}`);
    await auth.login(username, password);
    await auth.logoutAll();
    check(!auth.isAuthenticated && seen.at(-1) === "signed_out", "logoutAll() signs out");
    const reloaded = new AuthClient({ baseUrl });
    check((await reloaded.restore()) === null, "no session survives logoutAll()");
    reloaded.free();
    off();
    auth.free();
    status.textContent = "ok";
  } catch (error) {
    status.textContent = `error: ${error.message ?? error}`;
  }
}
