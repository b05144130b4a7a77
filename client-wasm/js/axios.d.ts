import type { AuthClient } from "./index.js";

/** The parts of an axios instance (axios 1.x) the adapter uses. */
export interface AxiosInstanceLike {
  interceptors: {
    request: { use(onFulfilled: (config: any) => any): number; eject(id: number): void };
    response: { use(onFulfilled: undefined, onRejected: (error: any) => any): number; eject(id: number): void };
  };
  getUri(config?: any): string;
  request(config: any): Promise<any>;
}

/**
 * Adds the access token to the instance's requests for `baseUrl`'s origin and `apiOrigins`, and
 * answers a 401 with `auth.accessTokenAfter401()` and one retry (many 401s share one refresh).
 * Returns a function that removes the interceptors again.
 */
export declare function installReauth(axios: AxiosInstanceLike, auth: AuthClient): () => void;
