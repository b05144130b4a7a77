import type { AuthClient } from "./index.js";

/** ky 2 hooks (structurally typed, so this file needs no ky types): pass as `hooks`. */
export interface ReauthKyHooks {
  beforeRequest: Array<(state: { request: Request }) => Promise<void>>;
  afterResponse: Array<(state: { request: Request; response: Response; retryCount: number }) => Promise<any>>;
}

/**
 * `ky.create({ hooks: reauthHooks(auth) })`: the access token on requests for `baseUrl`'s origin and
 * `apiOrigins`, and after a 401 `auth.accessTokenAfter401()` plus one retry through `ky.retry()`
 * (ky's `retry.limit` must be at least 1; its default is 2). Many 401s share one refresh.
 */
export declare function reauthHooks(auth: AuthClient): ReauthKyHooks;
