//! `onChange` listeners and the event objects they receive.

use alloc::vec::Vec;

use js_sys::{Function, Object};
use wasm_bindgen::JsValue;

use crate::js::set_property;
use crate::protocol::User;

/// The event types, as the `type` field spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    SignedIn,
    Refreshed,
    SignedOut,
    RefreshFailed,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::Refreshed => "refreshed",
            Self::SignedOut => "signed_out",
            Self::RefreshFailed => "refresh_failed",
        }
    }
}

/// Why a session ended, as `signed_out` reports it.
pub(crate) const LOGOUT: &str = "logout";

/// Maps the server's `reason` for a dead refresh cookie onto the `signed_out` reasons. A cookie
/// the browser no longer sends ("missing") has almost always hit its own Max-Age: that is expiry.
pub(crate) fn sign_out_reason(server_reason: Option<&str>) -> &'static str {
    match server_reason {
        Some("revoked") => "revoked",
        Some("reused") => "reused",
        Some("inactive") => "inactive",
        _ => "expired",
    }
}

/// Builds `{type, reason?, expiresAt?, user?}`; absent fields are left out, not `undefined`.
pub(crate) fn event_object(kind: EventKind, reason: Option<&str>, session: Option<(&User, f64)>) -> JsValue {
    let event = Object::new();
    set_property(&event, "type", &kind.as_str().into());
    if let Some(reason) = reason {
        set_property(&event, "reason", &reason.into());
    }
    if let Some((user, expires_at)) = session {
        set_property(&event, "expiresAt", &expires_at.into());
        set_property(&event, "user", &user.to_js());
    }
    event.into()
}

/// The registered listeners, each with the id its unsubscribe function removes.
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: u32,
    entries: Vec<(u32, Function)>,
}

impl Listeners {
    pub(crate) fn add(&mut self, listener: Function) -> u32 {
        self.next_id += 1;
        self.entries.push((self.next_id, listener));
        self.next_id
    }

    pub(crate) fn remove(&mut self, id: u32) {
        self.entries.retain(|(entry, _)| *entry != id);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// A copy to call from, so listeners may subscribe or unsubscribe while being called.
    pub(crate) fn snapshot(&self) -> Vec<Function> {
        self.entries.iter().map(|(_, listener)| listener.clone()).collect()
    }
}

/// Calls every listener; one that throws is reported on the console and does not stop the rest.
pub(crate) fn dispatch(listeners: Vec<Function>, event: &JsValue) {
    for listener in listeners {
        if let Err(thrown) = listener.call1(&JsValue::UNDEFINED, event) {
            web_sys::console::error_1(&thrown);
        }
    }
}
