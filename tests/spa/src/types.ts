// Type-checked (tsc --noEmit, tsconfig.json) against the installed tarball by scripts/test-client.sh,
// never run: the .d.ts files of the entry and of each adapter must fit the real axios, ky and React
// types and say what the README says. `@ts-expect-error` lines must fail to compile.
import axios from "axios";
import ky from "ky";
import { createElement } from "react";
import init, { AuthClient, ReauthError, isReauthError } from "reauth-client";
import type { AuthSnapshot, ReauthErrorCode, ReauthErrorReason } from "reauth-client";
import { installReauth } from "reauth-client/axios";
import { reauthHooks } from "reauth-client/ky";
import { AuthProvider, useAuth } from "reauth-client/react";

export async function typed(): Promise<string | undefined> {
  await init();
  const auth = new AuthClient({ baseUrl: "https://app.example.com", apiOrigins: ["https://api.example.com"] });
  const uninstall: () => void = installReauth(axios.create(), auth);
  uninstall();
  const api = ky.create({ hooks: reauthHooks(auth) });
  await api.get("https://api.example.com/items").json();
  const snapshot: AuthSnapshot = auth.getSnapshot();
  const sends: boolean = auth.sendsTokenTo(new URL("https://api.example.com/items"));
  try {
    await auth.login("alice", "secret");
  } catch (error) {
    if (isReauthError(error, "rate_limited")) {
      const code: "rate_limited" = error.code;
      const wait: number | undefined = error.retryAfter;
      return `${code} ${wait}`;
    }
    if (error instanceof ReauthError) {
      const code: ReauthErrorCode = error.code;
      const reason: ReauthErrorReason | undefined = error.reason;
      return `${code} ${reason} ${error.status}`;
    }
  }
  // @ts-expect-error: not an error code
  isReauthError(null, "no_such_code");
  // @ts-expect-error: apiOrigins is a list of strings
  new AuthClient({ baseUrl: "https://app.example.com", apiOrigins: "https://api.example.com" });
  createElement(AuthProvider, { client: auth }, "children");
  createElement(AuthProvider, { client: null });
  return `${snapshot.status} ${sends}`;
}

export function Profile(): string {
  const { isLoading, isAuthenticated, user, login, logout, fetch } = useAuth();
  void login("alice", "secret").then((signedIn) => signedIn.username);
  void logout();
  void fetch("/api/me", { method: "GET" }).then((response: Response) => response.ok);
  return isLoading ? "…" : isAuthenticated ? (user?.username ?? "") : "signed out";
}
