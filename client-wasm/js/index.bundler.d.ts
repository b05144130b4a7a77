export * from "./reauth_client.js";
export { ReauthError, isReauthError } from "./__ERROR_MODULE__";
