// Pages where the Wasm cannot run (csp-without-wasm.html: a CSP without 'wasm-unsafe-eval';
// no-wasm.html: no WebAssembly at all, as in iOS Lockdown Mode): init() must reject, promptly, with
// a ReauthError whose code says so, never hang.
import init, { ReauthError } from "reauth-client";
import { check, outcome, run } from "./page.js";

run(async () => {
  const { rejected } = await outcome(init());
  check(rejected instanceof ReauthError, `init() rejects with a ReauthError: ${rejected}`);
  check(rejected.code === "wasm_unavailable", `code: ${rejected.code} (${rejected.message})`);
});
