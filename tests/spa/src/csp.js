// Runs under the strict Content-Security-Policy of csp.html (the one the README recommends): the
// Wasm loads with 'wasm-unsafe-eval' and nothing else, and the client signs in and calls the API.
import init, { AuthClient } from "reauth-client";
import { check, registerUser, run } from "./page.js";

run(async () => {
  await init();
  const auth = new AuthClient({ baseUrl: location.origin });
  const { username, password } = await registerUser();
  await auth.login(username, password);
  const response = await auth.fetch("/api/me");
  check(response.ok && (await response.json()).username === username, "signed in and called the API under the CSP");
  await auth.logout();
  auth.free();
});
