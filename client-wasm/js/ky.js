// reauth-client/ky: hooks that put the access token on ky's requests and retry once after a 401.
import ky from "ky";

const BEARER = /^Bearer (.+)$/i;

/**
 * Hooks for `ky.create({ hooks: reauthHooks(auth) })` or `api.extend(...)` (ky 2): `beforeRequest`
 * adds `Authorization: Bearer <token>` to requests whose URL `auth.sendsTokenTo()` accepts;
 * `afterResponse` answers a 401 to such a request with `auth.accessTokenAfter401()` and one retry
 * through `ky.retry()`, so ky's own retry machinery (and its `beforeRetry` hooks) sees it.
 */
export function reauthHooks(auth) {
  return {
    beforeRequest: [
      async ({ request }) => {
        if (!auth.sendsTokenTo(request.url)) return;
        try {
          request.headers.set("Authorization", `Bearer ${await auth.accessToken()}`);
        } catch (error) {
          // Signed out: the request goes out as written, as with auth.fetch.
          if (error?.code !== "unauthenticated") throw error;
        }
      },
    ],
    afterResponse: [
      async ({ request, response, retryCount }) => {
        const sent = BEARER.exec(request.headers.get("Authorization") ?? "")?.[1];
        if (response.status !== 401 || !sent || retryCount > 0) return undefined;
        // A failed refresh leaves the caller with the 401 (the session's end is an auth event).
        const token = await auth.accessTokenAfter401(sent).catch(() => null);
        if (!token) return undefined;
        const headers = new Headers(request.headers);
        headers.set("Authorization", `Bearer ${token}`);
        return ky.retry({ request: new Request(request, { headers }), delay: 0, code: "REAUTH_TOKEN_RENEWED" });
      },
    ],
  };
}
