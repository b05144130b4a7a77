import type { default as initWasm } from "./reauth_client.js";

export * from "./reauth_client.js";
export { ReauthError, isReauthError } from "./__ERROR_MODULE__";

/**
 * Fetches and instantiates the client's WebAssembly (once; later calls resolve at once). Rejects
 * with a `ReauthError` of code `wasm_unavailable` where WebAssembly is missing (iOS Lockdown Mode),
 * blocked (a CSP without 'wasm-unsafe-eval') or the `.wasm` file cannot be fetched.
 */
export default function init(...args: Parameters<typeof initWasm>): ReturnType<typeof initWasm>;
