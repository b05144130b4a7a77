// reauth-client/react: <AuthProvider client={auth}> and useAuth(), on the client's snapshot.
import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useSyncExternalStore } from "react";

const NO_PROVIDER = Symbol("no AuthProvider");
const AuthContext = createContext(NO_PROVIDER);
// What a server render (or a provider still without a client) shows: neither signed in nor out.
const LOADING = Object.freeze({ status: "loading", user: null, expiresAt: null });
const noClient = () => Promise.reject(new Error("reauth-client/react: AuthProvider has no client yet"));

/**
 * Makes `client` available to useAuth() below it and starts its silent sign-in (`restore()`) once.
 * The provider does not own the client: create it once per page and never free() it while mounted.
 * `client` may be null during a server render, where the snapshot stays "loading".
 */
export function AuthProvider({ client, children }) {
  useEffect(() => {
    if (client?.getSnapshot().status === "loading") client.restore().catch(() => {});
  }, [client]);
  return createElement(AuthContext.Provider, { value: client ?? null }, children);
}

/** The session (re-rendering on every change) and the calls that change it. */
export function useAuth() {
  const client = useContext(AuthContext);
  if (client === NO_PROVIDER) throw new Error("useAuth() must be called below <AuthProvider client={auth}>");
  const subscribe = useCallback((onChange) => (client ? client.subscribe(onChange) : () => {}), [client]);
  const snapshot = useSyncExternalStore(subscribe, () => (client ? client.getSnapshot() : LOADING), () => LOADING);
  const calls = useMemo(
    () =>
      client
        ? {
            login: (username, password) => client.login(username, password),
            logout: () => client.logout(),
            fetch: (input, init) => client.fetch(input, init),
          }
        : { login: noClient, logout: noClient, fetch: noClient },
    [client],
  );
  return useMemo(
    () => ({
      isLoading: snapshot.status === "loading",
      isAuthenticated: snapshot.status === "signed_in",
      user: snapshot.user,
      expiresAt: snapshot.expiresAt,
      ...calls,
      client,
    }),
    [snapshot, calls, client],
  );
}
