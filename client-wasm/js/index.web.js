// Entry ("."), web target: the glue, ReauthError, an init() that rejects with a ReauthError, and
// the after-free guard. scripts/package-client.mjs replaces ./__ERROR_MODULE__ with the snippet.
import initWasm, { AuthClient } from "./reauth_client.js";
import { guardAfterFree, loadWasm } from "./__ERROR_MODULE__";

export * from "./reauth_client.js";
export { ReauthError, isReauthError } from "./__ERROR_MODULE__";

guardAfterFree(AuthClient);

export default function init(moduleOrPath) {
  return loadWasm(initWasm, moduleOrPath);
}
