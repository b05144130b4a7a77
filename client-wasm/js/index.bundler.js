// Entry ("."), bundler target: the glue (it instantiates the Wasm on import), ReauthError and the
// after-free guard. scripts/package-client.mjs replaces ./__ERROR_MODULE__ with the snippet.
import { AuthClient } from "./reauth_client.js";
import { guardAfterFree } from "./__ERROR_MODULE__";

export * from "./reauth_client.js";
export { ReauthError, isReauthError } from "./__ERROR_MODULE__";

guardAfterFree(AuthClient);
