import type { ReactElement, ReactNode } from "react";
import type { AuthClient, User } from "./index.js";

export interface AuthProviderProps {
  /** The page's one client; `null` during a server render. The provider never frees it. */
  client: AuthClient | null;
  children?: ReactNode;
}

/** Provides `client` to useAuth() and starts its silent sign-in (`restore()`) once. */
export declare function AuthProvider(props: AuthProviderProps): ReactElement;

export interface Auth {
  /** Not yet known whether a session exists (before the first restore settles, and on the server). */
  isLoading: boolean;
  isAuthenticated: boolean;
  user: User | null;
  /** When the access token expires, in ms since the epoch, or null. */
  expiresAt: number | null;
  login(username: string, password: string): Promise<User>;
  logout(): Promise<void>;
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** The client itself, for everything else; null during a server render. */
  client: AuthClient | null;
}

/** The session from the nearest AuthProvider; re-renders when it changes. */
export declare function useAuth(): Auth;
