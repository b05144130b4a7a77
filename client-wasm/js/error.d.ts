// Types of error.js. scripts/package-client.mjs puts this file next to the snippet copy of
// error.js that wasm-bindgen writes under snippets/<crate>-<hash>/js/, three levels below the glue.
import type { ReauthErrorCode, ReauthErrorReason } from "../../../reauth_client.js";

/** What every rejection of the client is: an `Error` with a stable `code`. */
export declare class ReauthError extends Error {
  constructor(code: ReauthErrorCode, message: string, options?: { cause?: unknown });
  readonly name: "ReauthError";
  /** Stable across releases: branch on it, not on `message`. */
  readonly code: ReauthErrorCode;
  /** HTTP status, when the server answered. */
  status?: number;
  /** Seconds to wait, from the server's Retry-After (when exposed to the page). */
  retryAfter?: number;
  /** The server's reason, e.g. why a session is dead. */
  reason?: ReauthErrorReason;
}

/**
 * Whether `value` is a ReauthError (with that `code`, if given). Unlike `instanceof`, also true for
 * one made by another copy of the package or in another realm.
 */
export declare function isReauthError<C extends ReauthErrorCode = ReauthErrorCode>(
  value: unknown,
  code?: C,
): value is ReauthError & { readonly code: C };
