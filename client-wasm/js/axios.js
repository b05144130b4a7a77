// reauth-client/axios: the access token on an axios instance's requests, and one retry after a 401.
// No import of axios itself: the application passes its instance in.

const BEARER = /^Bearer (.+)$/i;
// A config key (axios keeps unknown keys when it merges configs) marking the one retry.
const RETRIED = "reauthRetried";

/**
 * Installs a request interceptor that adds `Authorization: Bearer <token>` to requests whose URL
 * `auth.sendsTokenTo()` accepts (baseUrl's origin and `apiOrigins`), and a response interceptor
 * that answers a 401 to such a request with `auth.accessTokenAfter401()` and one retry.
 * Returns a function that removes both interceptors.
 */
export function installReauth(axios, auth) {
  const request = axios.interceptors.request.use(async (config) => {
    if (!auth.sendsTokenTo(new URL(axios.getUri(config), globalThis.location?.href))) return config;
    try {
      config.headers.set("Authorization", `Bearer ${await auth.accessToken()}`);
    } catch (error) {
      // Signed out: the request goes out as written, as with auth.fetch.
      if (error?.code !== "unauthenticated") throw error;
    }
    return config;
  });
  const response = axios.interceptors.response.use(undefined, async (error) => {
    const config = error?.config;
    const sent = BEARER.exec(config?.headers?.get?.("Authorization") ?? "")?.[1];
    if (error?.response?.status !== 401 || !sent || config[RETRIED]) throw error;
    // A failed refresh leaves the caller with the 401 (the session's end is an auth event).
    const token = await auth.accessTokenAfter401(sent).catch(() => null);
    if (!token) throw error;
    // The request interceptor runs again for the retry and finds this token (or a newer one).
    return axios.request({ ...config, [RETRIED]: true });
  });
  return () => {
    axios.interceptors.request.eject(request);
    axios.interceptors.response.eject(response);
  };
}
