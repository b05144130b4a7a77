//! `onChange` and `subscribe` listeners, the event objects they receive, and the cached snapshot.

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

/// Maps the server's `reason` for a dead refresh cookie (or another tab's `signed_out` reason) onto
/// the `signed_out` reasons. A cookie the browser no longer sends ("missing") has almost always hit
/// its own Max-Age: that is expiry.
pub(crate) fn sign_out_reason(server_reason: Option<&str>) -> &'static str {
    match server_reason {
        Some(LOGOUT) => LOGOUT,
        Some("revoked") => "revoked",
        Some("reused") => "reused",
        Some("inactive") => "inactive",
        _ => "expired",
    }
}

/// Builds `{type, reason?, expiresAt?, user?}`; absent fields are left out, not `undefined`.
/// `user` is the snapshot's user object, so `event.user === auth.user` until the next event.
pub(crate) fn event_object(kind: EventKind, reason: Option<&str>, session: Option<(&JsValue, f64)>) -> JsValue {
    let event = Object::new();
    set_property(&event, "type", &kind.as_str().into());
    if let Some(reason) = reason {
        set_property(&event, "reason", &reason.into());
    }
    if let Some((user, expires_at)) = session {
        set_property(&event, "expiresAt", &expires_at.into());
        set_property(&event, "user", user);
    }
    event.into()
}

/// `getSnapshot().status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// The session state is not known yet: the start-up has not finished.
    Loading,
    SignedIn,
    SignedOut,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Loading => "loading",
            Self::SignedIn => "signed_in",
            Self::SignedOut => "signed_out",
        }
    }
}

/// The frozen `{status, user, expiresAt}` object `getSnapshot()` returns, kept until what it says
/// changes: React's `useSyncExternalStore` compares snapshots by identity.
pub(crate) struct Snapshot {
    status: Status,
    /// The engine's token generation when this was built: every new token (and so every change
    /// of user or expiry) bumps it, so it and `status` say whether anything changed.
    generation: u32,
    /// The frozen `{id, username}`, also what `auth.user` and events hand out.
    user_js: JsValue,
    value: JsValue,
}

impl Snapshot {
    pub(crate) fn new(status: Status) -> Self {
        Self::build(status, 0, None, None)
    }

    fn build(status: Status, generation: u32, user: Option<&User>, expires_at: Option<f64>) -> Self {
        let user_js = user.map_or(JsValue::NULL, |user| Object::freeze(&user.to_js().into()).into());
        let value = Object::new();
        set_property(&value, "status", &status.as_str().into());
        set_property(&value, "user", &user_js);
        set_property(&value, "expiresAt", &expires_at.map_or(JsValue::NULL, JsValue::from));
        Self { status, generation, user_js, value: Object::freeze(&value).into() }
    }

    /// Replaces the snapshot if the status or the token changed; says whether it did.
    pub(crate) fn update(
        &mut self,
        status: Status,
        generation: u32,
        user: Option<&User>,
        expires_at: Option<f64>,
    ) -> bool {
        if self.status == status && self.generation == generation {
            return false;
        }
        *self = Self::build(status, generation, user, expires_at);
        true
    }

    pub(crate) fn value(&self) -> JsValue {
        self.value.clone()
    }

    pub(crate) fn user(&self) -> JsValue {
        self.user_js.clone()
    }
}

/// The registered listeners, each with the id its unsubscribe function removes and whether it
/// wants events (`onChange`) or a call with no arguments after each snapshot change (`subscribe`).
#[derive(Default)]
pub(crate) struct Listeners {
    next_id: u32,
    entries: Vec<(u32, Function, bool)>,
}

impl Listeners {
    pub(crate) fn add(&mut self, listener: Function, wants_events: bool) -> u32 {
        self.next_id += 1;
        self.entries.push((self.next_id, listener, wants_events));
        self.next_id
    }

    pub(crate) fn remove(&mut self, id: u32) {
        self.entries.retain(|(entry, ..)| *entry != id);
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// A copy to call from, so listeners may subscribe or unsubscribe while being called.
    pub(crate) fn of_kind(&self, events: bool) -> Vec<Function> {
        self.entries.iter().filter(|(.., wants_events)| *wants_events == events).map(|(_, f, _)| f.clone()).collect()
    }
}

/// Calls every listener with the event, or with no arguments for `None`; one that throws is
/// reported on the console and does not stop the rest.
pub(crate) fn dispatch(listeners: Vec<Function>, event: Option<&JsValue>) {
    for listener in listeners {
        let called = match event {
            Some(event) => listener.call1(&JsValue::UNDEFINED, event),
            None => listener.call0(&JsValue::UNDEFINED),
        };
        if let Err(thrown) = called {
            web_sys::console::error_1(&thrown);
        }
    }
}
