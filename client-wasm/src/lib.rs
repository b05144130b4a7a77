//! `reauth-client`: silent re-authentication for single-page apps, compiled to WebAssembly.
//!
//! The access token lives only in this module's memory; the refresh token is an HttpOnly cookie
//! the browser keeps. The JavaScript API is [`AuthClient`]; see `README.md` for its use and
//! `client.rs` for the invariants of the session engine.

#![cfg_attr(all(target_arch = "wasm32", not(feature = "std")), no_std)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod client;
mod engine;
mod error;
mod events;
mod http;
mod js;
mod options;
mod protocol;
mod tabs;
mod timing;
mod wallet;

use alloc::rc::Rc;

use crate::js::promise;
use js_sys::{Function, Promise};
use wasm_bindgen::prelude::*;

use crate::client::Inner;
use crate::options::Options;

/// Talc instead of std's dlmalloc: a few KB less Wasm. The client is single-threaded (no `atomics`).
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[wasm_bindgen(typescript_custom_section)]
const TYPESCRIPT_TYPES: &'static str = r#"
/** Options of `new AuthClient(...)`. */
export interface AuthClientOptions {
  /** Absolute URL of the reauth server, e.g. "https://app.example.com". Relative URLs given to `fetch` resolve against it. */
  baseUrl: string;
  /** Renew this many seconds before the access token expires (default 60). Never earlier than half the token's lifetime. */
  refreshMarginSeconds?: number;
  /** Deadline for each request to the auth endpoints, in ms (default 10000). */
  requestTimeoutMs?: number;
  /** How long to wait for another tab's refresh lock before stealing it, in ms (default requestTimeoutMs + 5000). */
  lockTimeoutMs?: number;
  /** Renew on a timer before expiry (default true). When false, renewal happens on demand and when the page wakes up. */
  autoRefresh?: boolean;
  /** Coordinate refreshes and sign-outs with other tabs through Web Locks and BroadcastChannel (default true). */
  crossTab?: boolean;
  /** The fetch implementation for all requests (default: the global fetch, looked up at each call). */
  fetch?: typeof fetch;
  /**
   * Origins besides baseUrl's whose requests get the access token, e.g. ["https://api.example.com"]:
   * exact origins (scheme, host, port), no paths. Default: none.
   */
  apiOrigins?: string[];
  /** Log the engine's decisions (renewals scheduled, refreshes joined, locks taken or stolen, tokens adopted from other tabs, backoffs): `true` for `console.debug`, or your own function. Off by default. */
  debug?: boolean | ((message: string, detail?: object) => void);
}

/** What `loginWithWallet` needs: the account and a way to have the wallet sign a message. */
export interface WalletLoginOptions {
  /** The Stellar account id (`G…` strkey) signing in. */
  account: string;
  /**
   * Signs `message` per SEP-53 (Ed25519 over SHA-256("Stellar Signed Message:\n" + message)) with the
   * account's key, resolving to the base64 signature, e.g. through the wallet's message-signing API.
   * A rejection (the user declined) reaches the caller of `loginWithWallet` unchanged.
   */
  signMessage: (message: string) => Promise<string> | string;
}

/** The signed-in user, as the server describes it. */
export interface User {
  id: string;
  username: string;
}

/** Why a session ended. */
export type SignOutReason = "logout" | "expired" | "revoked" | "reused" | "inactive";

/** Stable `code` of every error the client rejects with. */
export type ReauthErrorCode =
  | "invalid_options"
  | "invalid_credentials"
  | "rate_limited"
  | "network"
  | "timeout"
  | "temporarily_unavailable"
  | "session_expired"
  | "unauthenticated"
  | "forbidden"
  | "http_error"
  | "invalid_response"
  /** A call on a client after its `free()` (or under way when `free()` came). */
  | "disposed"
  /** `init()`: WebAssembly is missing (iOS Lockdown Mode), blocked by the CSP, or the `.wasm` did not load. */
  | "wasm_unavailable";

/** The server's `reason` on a `ReauthError`: why a session is dead, or why a token was refused. */
export type ReauthErrorReason = "missing" | "invalid" | "expired" | "revoked" | "reused" | "inactive";

/** Where the session stands: `loading` until the start-up (see `restore()`) has settled it. */
export type AuthStatus = "loading" | "signed_in" | "signed_out";

/** What `getSnapshot()` returns: frozen, and the same object until the next change. */
export interface AuthSnapshot {
  readonly status: AuthStatus;
  readonly user: Readonly<User> | null;
  /** When the access token expires, in ms since the epoch; `null` without a session. */
  readonly expiresAt: number | null;
}

/** What `onChange` listeners receive. */
export type AuthEvent =
  | { type: "signed_in"; user: User; expiresAt: number }
  | { type: "refreshed"; user: User; expiresAt: number }
  | { type: "signed_out"; reason: SignOutReason }
  /** A renewal failed for a transient reason (the `reason` is its error code); the session is kept and retried. */
  | { type: "refresh_failed"; reason: ReauthErrorCode; user: User; expiresAt: number };
"#;

#[wasm_bindgen]
extern "C" {
    /// The second argument of `fetch`, typed as such in TypeScript.
    #[wasm_bindgen(typescript_type = "RequestInit")]
    pub type FetchInit;
}

/// The client an application creates once per page (or per server it signs in to).
#[wasm_bindgen]
pub struct AuthClient {
    inner: Rc<Inner>,
}

#[wasm_bindgen]
impl AuthClient {
    /// Checks the options and starts listening for other tabs and page-lifecycle events.
    /// Throws a `ReauthError` with code `invalid_options` for bad options.
    #[wasm_bindgen(skip_jsdoc, constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "AuthClientOptions")] options: &JsValue,
    ) -> Result<AuthClient, JsValue> {
        install_panic_hook();
        let options = Options::from_js(options)?;
        Ok(AuthClient { inner: Inner::new(options) })
    }

    /// Calls `listener` on every session change; returns a function that unsubscribes it.
    #[wasm_bindgen(skip_jsdoc, js_name = onChange, unchecked_return_type = "() => void")]
    pub fn on_change(
        &self,
        #[wasm_bindgen(unchecked_param_type = "(event: AuthEvent) => void")] listener: Function,
    ) -> JsValue {
        self.add_listener(listener, true)
    }

    /// Calls `listener()` (no arguments) after each change of `getSnapshot()`; returns a function
    /// that unsubscribes it. Fits `useSyncExternalStore(auth.subscribe, auth.getSnapshot)`.
    #[wasm_bindgen(skip_jsdoc, unchecked_return_type = "() => void")]
    pub fn subscribe(&self, #[wasm_bindgen(unchecked_param_type = "() => void")] listener: Function) -> JsValue {
        self.add_listener(listener, false)
    }

    /// The frozen `{status, user, expiresAt}`: the same object until the next change.
    #[wasm_bindgen(skip_jsdoc, js_name = getSnapshot, unchecked_return_type = "AuthSnapshot")]
    pub fn get_snapshot(&self) -> JsValue {
        self.inner.snapshot()
    }

    /// Signs in silently from the refresh cookie (call it at page load). Resolves to the user,
    /// or `null` when there is no live session; rejects only when the server cannot be reached.
    /// Without the server's session indicator cookie it resolves `null` with no request; a live
    /// token in another tab is handed over without one.
    #[wasm_bindgen(skip_jsdoc, unchecked_return_type = "Promise<User | null>")]
    pub fn restore(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.restore().await?.map_or(JsValue::NULL, |user| user.to_js())) })
    }

    /// Signs in with a username and password; resolves to the user.
    #[wasm_bindgen(skip_jsdoc, unchecked_return_type = "Promise<User>")]
    pub fn login(
        &self,
        // JS strings go straight into the request body: copying them into Wasm memory and back
        // would cost code and time for nothing.
        #[wasm_bindgen(unchecked_param_type = "string")] username: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string")] password: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.login(&username, &password).await?.to_js()) })
    }

    /// Signs in with a Stellar wallet: gets the server's challenge for `account`, has
    /// `signMessage` sign it (SEP-53), and signs in with the signature; resolves to the user.
    #[wasm_bindgen(skip_jsdoc, js_name = loginWithWallet, unchecked_return_type = "Promise<User>")]
    pub fn login_with_wallet(
        &self,
        #[wasm_bindgen(unchecked_param_type = "WalletLoginOptions")] options: JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(wallet::login_with_wallet(&inner, &options).await?.to_js()) })
    }

    /// A drop-in for `window.fetch`: attaches the access token to requests for `baseUrl`'s origin
    /// (renewing it first if due) and retries once after a 401.
    #[wasm_bindgen(skip_jsdoc, unchecked_return_type = "Promise<Response>")]
    pub fn fetch(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RequestInfo | URL")] input: JsValue,
        init: Option<FetchInit>,
    ) -> Promise {
        let inner = self.inner.clone();
        let init: JsValue = init.map_or(JsValue::UNDEFINED, Into::into);
        promise(async move { inner.fetch(input, init).await })
    }

    /// A valid access token, renewed first if it is due.
    #[wasm_bindgen(skip_jsdoc, js_name = accessToken, unchecked_return_type = "Promise<string>")]
    pub fn access_token(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move { Ok(inner.valid_token().await?.0.into()) })
    }

    /// A token to retry with after the server answered 401 to `rejectedToken`: a newer one this
    /// client holds, else the shared refresh's; `null` when there is none (signed out).
    #[wasm_bindgen(skip_jsdoc, js_name = accessTokenAfter401, unchecked_return_type = "Promise<string | null>")]
    pub fn access_token_after_401(
        &self,
        #[wasm_bindgen(js_name = rejectedToken, unchecked_param_type = "string")] rejected_token: &JsValue,
    ) -> Promise {
        let inner = self.inner.clone();
        // A non-string matches no token the client holds: the caller gets the current or a new one.
        let rejected = rejected_token.as_string().unwrap_or_default();
        promise(async move { Ok(inner.token_after_rejection(&rejected).await?.map_or(JsValue::NULL, JsValue::from)) })
    }

    /// Signs out here and in every tab, and revokes the session on the server.
    #[wasm_bindgen(skip_jsdoc, unchecked_return_type = "Promise<void>")]
    pub fn logout(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.logout().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Revokes every session of this user on every device, then signs out here and in every tab.
    #[wasm_bindgen(skip_jsdoc, js_name = logoutAll, unchecked_return_type = "Promise<void>")]
    pub fn logout_all(&self) -> Promise {
        let inner = self.inner.clone();
        promise(async move {
            inner.logout_all().await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Whether a session is held (its access token may be due for renewal).
    #[wasm_bindgen(skip_jsdoc, getter = isAuthenticated)]
    pub fn is_authenticated(&self) -> bool {
        self.inner.user().is_some()
    }

    /// The signed-in user, or `null`.
    #[wasm_bindgen(skip_jsdoc, getter, unchecked_return_type = "User | null")]
    pub fn user(&self) -> JsValue {
        self.inner.user_js()
    }

    /// When the access token expires (ms since the epoch, for display), or `null`.
    #[wasm_bindgen(skip_jsdoc, getter = expiresAt, unchecked_return_type = "number | null")]
    pub fn expires_at(&self) -> JsValue {
        self.inner.expires_at().map_or(JsValue::NULL, JsValue::from)
    }

    /// When the next renewal is due (ms since the epoch, for display), or `null`.
    #[wasm_bindgen(skip_jsdoc, getter = refreshAt, unchecked_return_type = "number | null")]
    pub fn refresh_at(&self) -> JsValue {
        self.inner.refresh_at().map_or(JsValue::NULL, JsValue::from)
    }

    /// Whether requests to `url` (relative: to `baseUrl`) get the token: `baseUrl`'s origin or `apiOrigins`.
    #[wasm_bindgen(skip_jsdoc, js_name = sendsTokenTo)]
    pub fn sends_token_to(&self, #[wasm_bindgen(unchecked_param_type = "string | URL")] url: &JsValue) -> bool {
        self.inner.sends_token_to(url)
    }

    /// Treats the current access token as expired, keeping the session: the next call that needs a
    /// token refreshes first. For when the server changed what a token should say (roles), or to
    /// demonstrate that many callers share one refresh.
    #[wasm_bindgen(skip_jsdoc, js_name = invalidateAccessToken)]
    pub fn invalidate_access_token(&self) {
        self.inner.invalidate_access_token();
    }
}

impl AuthClient {
    /// Registers an `onChange` (`wants_events`) or `subscribe` listener; returns its unsubscribe function.
    fn add_listener(&self, listener: Function, wants_events: bool) -> JsValue {
        let id = self.inner.subscribe(listener, wants_events);
        let inner = Rc::downgrade(&self.inner);
        Closure::<dyn FnMut()>::new(move || {
            if let Some(inner) = inner.upgrade() {
                inner.unsubscribe(id);
            }
        })
        .into_js_value()
    }
}

/// `free()` (or dropping the client in Rust) stops its timers, listeners and tab channel.
impl Drop for AuthClient {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

/// Without std (the shipped Wasm) a panic traps: no message formatting code is linked, which is
/// most of what std's panic machinery weighs. Debug builds with `panic-hook` log the panic first.
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    #[cfg(all(feature = "panic-hook", debug_assertions))]
    web_sys::console::error_1(&alloc::string::ToString::to_string(info).into());
    let _ = info;
    core::arch::wasm32::unreachable()
}

/// Sends Rust panics to the console in debug builds with std; release builds carry none of this.
fn install_panic_hook() {
    #[cfg(all(feature = "panic-hook", feature = "std", debug_assertions))]
    {
        use alloc::boxed::Box;
        use alloc::string::ToString;
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            std::panic::set_hook(Box::new(|info| web_sys::console::error_1(&info.to_string().into())));
        });
    }
}
