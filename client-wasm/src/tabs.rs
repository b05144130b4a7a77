//! Coordination between tabs of one origin, which share the refresh cookie.
//!
//! - A Web Lock per `baseUrl` serialises every request that rotates or replaces the cookie
//!   (refresh, login), so two tabs never present the same refresh token at once.
//! - A BroadcastChannel carries the outcome to the other tabs: fresh tokens (same origin only,
//!   never persisted) and sign-outs. A tab that waited for the lock finds the fresh token already
//!   delivered and skips its own request.
//!
//! Where either API is missing the client still works alone; the server's reuse interval then
//! absorbs concurrent refreshes from several tabs.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;

use js_sys::{Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, BroadcastChannel};

use crate::js::{get_property, promise, set_property, CellExt, Timeout};
use crate::protocol::TokenResponse;

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (web-sys keeps it behind its unstable-API flag).
    pub(crate) type LockManager;

    #[wasm_bindgen(method)]
    fn request(this: &LockManager, name: &str, options: &Object, callback: &JsValue) -> Promise;
}

/// `navigator.locks`, if this browser and context have it.
pub(crate) fn lock_manager() -> Option<LockManager> {
    let locks = get_property(&get_property(&js_sys::global(), "navigator"), "locks");
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

/// How [`with_lock`] got the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grant {
    /// It was free.
    Free,
    /// Another holder had it first and released it: that holder's outcome may be on its way.
    AfterWaiting,
    /// Another holder kept it past the wait: it hung, and the lock was taken from it.
    Stolen,
    /// No lock manager (or it failed): the work runs unguarded.
    Unguarded,
}

impl Grant {
    /// Whether another holder had the lock first.
    pub(crate) fn contended(self) -> bool {
        matches!(self, Self::AfterWaiting | Self::Stolen)
    }
}

/// The work [`with_lock`] runs: told how the lock was granted, it delivers its own result
/// (through what it captured). One boxed type, so `with_lock` is compiled once.
pub(crate) type LockedWork = Box<dyn FnOnce(Grant) -> Pin<Box<dyn Future<Output = ()>>>>;

/// Runs `work` while holding the exclusive lock `name`, and returns once it has finished. `work`
/// learns how it got the lock (after another holder, that holder's outcome may be on its way).
///
/// Waits at most `wait_ms` for the lock. A tab that closed or crashed has its locks released by
/// the browser; a lock still held after that long belongs to a tab that hung, so it is stolen.
/// Without a lock manager, or if the Locks API fails, `work` runs unguarded.
pub(crate) async fn with_lock(locks: Option<&LockManager>, name: &str, wait_ms: u32, work: LockedWork) {
    let Some(locks) = locks else { return work(Grant::Unguarded).await };
    let work = Rc::new(RefCell::new(Some(work)));
    // Once granted, the work runs as its own promise: the lock request may settle early (when the
    // lock is stolen from us) while the work is still going, and we must wait for the work.
    let running: Rc<RefCell<Option<Promise>>> = Rc::new(RefCell::new(None));

    let request = |options: &Object, grant: Grant| {
        let (work, running) = (work.clone(), running.clone());
        let callback = Closure::once_into_js(move |lock: JsValue| -> Promise {
            // `null` answers an `ifAvailable` request for a lock someone else holds.
            let work = if lock.is_null() { None } else { work.write().take() };
            let Some(work) = work else { return Promise::resolve(&JsValue::UNDEFINED) };
            let promise = promise(async move {
                work(grant).await;
                Ok(JsValue::UNDEFINED)
            });
            *running.write() = Some(promise.clone());
            promise
        });
        JsFuture::from(locks.request(name, options, &callback))
    };
    let not_granted_yet = || running.read().is_none() && work.read().is_some();

    let if_free = Object::new();
    set_property(&if_free, "ifAvailable", &JsValue::TRUE);
    let _ = request(&if_free, Grant::Free).await;

    if not_granted_yet() {
        let waiting = Object::new();
        let abort = AbortController::new().ok();
        let _give_up = abort.map(|controller| {
            set_property(&waiting, "signal", &get_property(&controller, "signal"));
            Timeout::new(wait_ms, Box::new(move || controller.abort()))
        });
        let _ = request(&waiting, Grant::AfterWaiting).await;
    }
    if not_granted_yet() {
        let steal = Object::new();
        set_property(&steal, "steal", &JsValue::TRUE);
        let _ = request(&steal, Grant::Stolen).await;
    }
    let granted = running.write().take();
    if let Some(promise) = granted {
        // The work's promise resolves only once the work has finished (it never rejects).
        let _ = JsFuture::from(promise).await;
        return;
    }
    let unguarded = work.write().take();
    if let Some(work) = unguarded {
        work(Grant::Unguarded).await;
    }
}

/// What one tab tells the others.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TabMessage {
    /// This tab holds these tokens, received `age_ms` ago (0: just now from the server, else handed
    /// over to a new tab); `new_login` marks a sign-in rather than a renewal.
    Tokens { response: TokenResponse, new_login: bool, age_ms: f64 },
    /// This tab's session ended; `reason` as in the `signed_out` event.
    SignedOut { reason: String },
    /// A new tab (or one back from the back/forward cache) asks for the live access token.
    Ask,
}

/// The `reauth` field marks our messages; its value is the message format's version.
const FORMAT: &str = "reauth";
const FORMAT_VERSION: f64 = 1.0;

impl TabMessage {
    /// `{reauth: 1, tokens, newLogin, age}`, `{reauth: 1, signedOut: reason}` or `{reauth: 1, ask: true}`.
    fn to_js(&self) -> JsValue {
        let object = Object::new();
        set_property(&object, FORMAT, &FORMAT_VERSION.into());
        match self {
            Self::Tokens { response, new_login, age_ms } => {
                set_property(&object, "tokens", &response.to_js());
                set_property(&object, "newLogin", &JsValue::from_bool(*new_login));
                set_property(&object, "age", &(*age_ms).into());
            }
            Self::SignedOut { reason } => set_property(&object, "signedOut", &reason.as_str().into()),
            Self::Ask => set_property(&object, "ask", &JsValue::TRUE),
        }
        object.into()
    }

    fn from_js(value: &JsValue) -> Option<Self> {
        if get_property(value, FORMAT).as_f64() != Some(FORMAT_VERSION) {
            return None;
        }
        if let Some(reason) = get_property(value, "signedOut").as_string() {
            return Some(Self::SignedOut { reason });
        }
        if get_property(value, "ask").is_truthy() {
            return Some(Self::Ask);
        }
        Some(Self::Tokens {
            response: TokenResponse::from_js(&get_property(value, "tokens"))?,
            new_login: get_property(value, "newLogin").as_bool()?,
            // Absent from a tab running an older client: then the token is taken as fresh.
            age_ms: get_property(value, "age").as_f64().unwrap_or(0.0),
        })
    }
}

/// An open BroadcastChannel with its message handler; closing happens on drop.
#[must_use = "dropping the channel closes it"]
pub(crate) struct TabChannel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(JsValue)>,
}

impl TabChannel {
    /// Opens the channel, or `None` where BroadcastChannel does not exist.
    pub(crate) fn open(name: &str, mut on_message: impl FnMut(TabMessage) + 'static) -> Option<Self> {
        let channel = BroadcastChannel::new(name).ok()?;
        // The same closure type as the page-lifecycle listeners: one set of shims for both.
        let on_message = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
            // Anything else posted on this channel name is not ours to act on.
            if let Some(message) = TabMessage::from_js(&get_property(&event, "data")) {
                on_message(message);
            }
        });
        set_property(&channel, "onmessage", on_message.as_ref());
        Some(Self { channel, _on_message: on_message })
    }

    pub(crate) fn post(&self, message: &TabMessage) {
        // Fails only for values that cannot be cloned, which ours never contain.
        let _ = self.channel.post_message(&message.to_js());
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        set_property(&self.channel, "onmessage", &JsValue::NULL);
        self.channel.close();
    }
}
