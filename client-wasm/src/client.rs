//! The session engine behind `AuthClient`: token state, the shared refresh, scheduling, and the
//! wiring to timers, page-lifecycle events and other tabs.
//!
//! Invariants worth knowing before changing anything here:
//! - The access token exists only in `State::session` (Wasm memory) and in Authorization headers.
//! - `State::epoch` changes whenever the session's identity changes (login, sign-out, free). Every
//!   network answer is checked against the epoch it was requested under and dropped if stale, so a
//!   late refresh can never bring back a session the user left.
//! - At most one refresh per client is in flight (`State::flight`); everyone who needs one awaits it.
//! - JS callbacks (timers, DOM events, channel messages) only schedule work with `spawn_local` and
//!   return: a listener that calls `free()` must never drop a closure while it is running.
//! - No `RefCell` borrow is held across an `await` or while listeners run.

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::rc::{Rc, Weak};
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{EventTarget, Headers, ReadableStream, Request, Response};

use crate::error::{AuthError, ErrorCode};
use crate::events::{self, dispatch, event_object, sign_out_reason, EventKind, Listeners, Snapshot, Status};
use crate::http::{bearer_value, Transport};
use crate::js::{
    get_property, get_string, new_request, now, promise, set_property, sleep, spawn, CellExt, JsUrl, Timeout,
};
use crate::options::Options;
use crate::protocol::{path, TokenResponse, User};
use crate::tabs::{self, LockManager, TabChannel, TabMessage};
use crate::timing::{backoff_ms, Expiry};

/// How long, in all, a tab that waited for the refresh lock listens for the holder's tokens.
const OTHER_TAB_GRACE_POLLS: u32 = 25;
const OTHER_TAB_GRACE_POLL_MS: i32 = 10;

/// `setTimeout` takes a signed 32-bit delay; longer delays fire at once.
const MAX_TIMER_DELAY_MS: f64 = 2_147_483_647.0;

pub(crate) struct Inner {
    options: Options,
    transport: Transport,
    locks: Option<LockManager>,
    state: RefCell<State>,
    listeners: RefCell<Listeners>,
    snapshot: RefCell<Snapshot>,
    channel: RefCell<Option<TabChannel>>,
    page_hooks: RefCell<Vec<PageHook>>,
}

#[derive(Default)]
struct State {
    epoch: u32,
    /// Bumped on every new access token, from this tab or another: tells a stale 401 from a real one.
    token_generation: u32,
    session: Option<Session>,
    flight: Option<Rc<Flight>>,
    /// The next scheduled renewal or retry; replacing or dropping it cancels it.
    timer: Option<Timeout>,
    /// Consecutive transient refresh failures, for the backoff.
    failures: u32,
    /// Until this monotonic time a call that finds the token due but still valid uses it as is,
    /// instead of hammering a server that just failed.
    backoff_until: f64,
    /// A sign-out happened here (or reached us from another tab) and no sign-in since. Another
    /// tab's renewal that crossed the sign-out in flight must not revive the session; only a new
    /// login, here or in another tab, does.
    signed_out: bool,
    /// Whether the session state is known: a session is held, or a sign-out or a restore that
    /// found no session settled it. Until then the snapshot says `loading`.
    known: bool,
    closed: bool,
}

struct Session {
    access_token: String,
    user: User,
    generation: u32,
    expiry: Expiry,
}

/// One refresh in flight: its promise, awaited by everyone who needs it, and its outcome.
struct Flight {
    done: Promise,
    outcome: Rc<RefCell<Option<Result<(), AuthError>>>>,
}

/// A page-lifecycle listener, kept to be removed again by `free()`.
struct PageHook {
    target: EventTarget,
    event: &'static str,
    callback: Closure<dyn FnMut(JsValue)>,
}

/// What a caller finds when it needs a token.
enum TokenState {
    None,
    Fresh { token: String, generation: u32 },
    Due { token: String, generation: u32, expired: bool, backing_off: bool },
}

impl Inner {
    pub(crate) fn new(options: Options) -> Rc<Self> {
        let transport = Transport::new(options.fetch.clone(), options.request_timeout_ms);
        let locks = if options.cross_tab { tabs::lock_manager() } else { None };
        let inner = Rc::new(Self {
            options,
            transport,
            locks,
            state: RefCell::default(),
            listeners: RefCell::default(),
            snapshot: RefCell::new(Snapshot::new(Status::Loading)),
            channel: RefCell::default(),
            page_hooks: RefCell::default(),
        });
        if inner.options.cross_tab {
            let weak = Rc::downgrade(&inner);
            let channel = TabChannel::open(&inner.options.coordination_name(), move |message| {
                if let Some(inner) = weak.upgrade() {
                    spawn(async move { inner.on_tab_message(message) });
                }
            });
            *inner.channel.write() = channel;
        }
        inner.hook_page_lifecycle();
        inner
    }

    // ----- what AuthClient exposes -----

    pub(crate) fn user(&self) -> Option<User> {
        self.state.read().session.as_ref().map(|session| session.user.clone())
    }

    /// `auth.user`: the snapshot's frozen user object, the same one until the next event.
    pub(crate) fn user_js(&self) -> JsValue {
        self.snapshot.read().user()
    }

    pub(crate) fn snapshot(&self) -> JsValue {
        self.snapshot.read().value()
    }

    pub(crate) fn expires_at(&self) -> Option<f64> {
        self.state.read().session.as_ref().map(|session| session.expiry.expires_at_wall_ms())
    }

    pub(crate) fn refresh_at(&self) -> Option<f64> {
        self.state.read().session.as_ref().map(|session| session.expiry.renew_at_wall_ms())
    }

    /// Marks the access token as expired; the session stays, and the next caller that needs a
    /// token starts the (shared) refresh.
    pub(crate) fn invalidate_access_token(&self) {
        if let Some(session) = self.state.write().session.as_mut() {
            session.expiry = Expiry::expired_now(now());
        }
    }

    /// `wants_events`: an `onChange` listener; otherwise a `subscribe` one (snapshot changes).
    pub(crate) fn subscribe(&self, listener: Function, wants_events: bool) -> u32 {
        self.listeners.write().add(listener, wants_events)
    }

    pub(crate) fn unsubscribe(&self, id: u32) {
        self.listeners.write().remove(id);
    }

    /// Silent sign-in from the refresh cookie. `Ok(None)` when there is no live session.
    pub(crate) async fn restore(self: &Rc<Self>) -> Result<Option<User>, AuthError> {
        if let TokenState::Fresh { .. } = self.token_state() {
            return Ok(self.user());
        }
        let outcome = self.refresh().await;
        match (self.user(), outcome) {
            (Some(user), _) => Ok(Some(user)),
            (None, Err(error)) if !matches!(error.code, ErrorCode::SessionExpired | ErrorCode::Unauthenticated) => {
                Err(error)
            }
            (None, _) => Ok(None),
        }
    }

    pub(crate) async fn login(self: &Rc<Self>, username: &JsValue, password: &JsValue) -> Result<User, AuthError> {
        let body = Object::new();
        set_property(&body, "username", username);
        set_property(&body, "password", password);
        let this = self.clone();
        // Under the refresh lock: another tab's refresh answering after our login would overwrite
        // the new cookie with a rotated one from the old session.
        let tokens = self
            .with_refresh_lock(move |_| async move {
                let answer = this.transport.post(&this.options.endpoint(path::LOGIN), Some(&body), None, true).await?;
                if answer.is_success() {
                    answer.tokens()
                } else {
                    Err(answer.into_error(ErrorCode::InvalidCredentials))
                }
            })
            .await?;
        if self.state.read().closed {
            return Err(AuthError::unauthenticated());
        }
        self.begin_new_epoch();
        let user = tokens.user.clone();
        self.accept_tokens(&tokens, EventKind::SignedIn);
        self.post_to_tabs(&TabMessage::Tokens { response: tokens, new_login: true, age_ms: 0.0 });
        Ok(user)
    }

    /// Ends the session here and in every tab at once, then tells the server. The local sign-out
    /// stands even if the server cannot be reached (the error says so).
    pub(crate) async fn logout(self: &Rc<Self>) -> Result<(), AuthError> {
        self.end_session(events::LOGOUT, true);
        let answer = self.transport.post(&self.options.endpoint(path::LOGOUT), None, None, true).await?;
        if answer.is_success() {
            Ok(())
        } else {
            Err(answer.into_error(ErrorCode::Unauthenticated))
        }
    }

    /// Revokes every session of the user; this one ends only once the server confirmed.
    pub(crate) async fn logout_all(self: &Rc<Self>) -> Result<(), AuthError> {
        let (token, _) = self.valid_token().await?;
        // With the cookie, so the server can clear this browser's refresh cookie as well.
        let answer = self.transport.post(&self.options.endpoint(path::LOGOUT_ALL), None, Some(&token), true).await?;
        if !answer.is_success() {
            return Err(answer.into_error(ErrorCode::Unauthenticated));
        }
        self.end_session(events::LOGOUT, true);
        Ok(())
    }

    /// A valid access token and its generation, renewing first when it is due.
    pub(crate) async fn valid_token(self: &Rc<Self>) -> Result<(String, u32), AuthError> {
        let state_before = self.token_state();
        let had_session = !matches!(state_before, TokenState::None);
        match state_before {
            // Not signed in, unless a restore is under way: then its outcome decides.
            TokenState::None if self.state.read().flight.is_none() => return Err(AuthError::unauthenticated()),
            TokenState::None => {}
            TokenState::Fresh { token, generation } => return Ok((token, generation)),
            // A refresh failed moments ago and the token still works: use it, do not hammer.
            TokenState::Due { token, generation, expired: false, backing_off: true } => return Ok((token, generation)),
            TokenState::Due { .. } => {}
        }
        let outcome = self.refresh().await;
        match (self.token_state(), outcome) {
            (
                TokenState::Fresh { token, generation } | TokenState::Due { token, generation, expired: false, .. },
                _,
            ) => Ok((token, generation)),
            // A restore that found no session: nothing expired, there was simply none.
            (_, Err(error)) if !had_session && error.code == ErrorCode::SessionExpired => {
                Err(AuthError::unauthenticated())
            }
            (_, Err(error)) => Err(error),
            (TokenState::None, Ok(())) => Err(AuthError::unauthenticated()),
            (TokenState::Due { .. }, Ok(())) => {
                Err(AuthError::new(ErrorCode::Network, "the access token expired and could not be renewed"))
            }
        }
    }

    /// A token other than `rejected` (which a server answered 401 to): the newer one this client
    /// holds, else the outcome of the one shared refresh. `None` when there is no session, or the
    /// refresh brought no other token; transient refresh failures are errors, as for `accessToken()`.
    pub(crate) async fn token_after_rejection(self: &Rc<Self>, rejected: &str) -> Result<Option<String>, AuthError> {
        if self.current_token().is_none_or(|(token, _)| token != rejected) {
            // A newer token (renewed first if due), or none held: whatever `accessToken()` finds.
            return match self.valid_token().await {
                Ok((token, _)) => Ok(Some(token).filter(|token| token != rejected)),
                Err(error) if error.code == ErrorCode::Unauthenticated => Ok(None),
                Err(error) => Err(error),
            };
        }
        let outcome = self.refresh().await;
        match (self.current_token(), outcome) {
            (Some((token, _)), _) if token != rejected => Ok(Some(token)),
            (_, Err(error)) if error.code != ErrorCode::Unauthenticated => Err(error),
            _ => Ok(None),
        }
    }

    /// `window.fetch` with the access token attached for `baseUrl`'s origin, and one retry after
    /// a 401. Errors from building the request pass through unchanged, as fetch's own would.
    pub(crate) async fn fetch(self: &Rc<Self>, input: JsValue, init: JsValue) -> Result<JsValue, JsValue> {
        let request = self.build_request(&input, &init)?;
        let url = get_string(&request, "url").unwrap_or_default();
        if !self.options.sends_token_to(&url) {
            return JsFuture::from(self.transport.fetch(&request)).await;
        }
        let (token, _) = match self.valid_token().await {
            Ok(found) => found,
            // Signed out: the request goes out as the application wrote it, without a token.
            Err(error) if error.code == ErrorCode::Unauthenticated => {
                return JsFuture::from(self.transport.fetch(&request)).await;
            }
            Err(error) => return Err(error.into()),
        };
        // A copy for the retry, taken before the body is consumed. A ReadableStream body cannot be
        // replayed without buffering all of it, so such requests go out once (see README).
        let replayable = !get_property(&init, "body").is_instance_of::<ReadableStream>();
        let is_auth_endpoint = url.starts_with(&self.options.endpoint(path::AUTH_PREFIX));
        let spare = if replayable && !is_auth_endpoint { request.clone().ok() } else { None };

        let first = self.send_with_token(&request, &token).await?;
        let Some(spare) = spare else { return Ok(first.into()) };
        if get_property(&first, "status").as_f64() != Some(401.0) {
            return Ok(first.into());
        }
        // A newer token that arrived while this request was out (the 401 was for the old one: no
        // rotation is wasted), or the shared refresh's. With none to try, the caller gets the 401.
        match self.token_after_rejection(&token).await {
            Ok(Some(retry_token)) => Ok(self.send_with_token(&spare, &retry_token).await?.into()),
            _ => Ok(first.into()),
        }
    }

    /// Stops everything: timers, page listeners, the tab channel, listeners, and the session.
    pub(crate) fn shutdown(&self) {
        {
            let mut state = self.state.write();
            state.closed = true;
            state.epoch = state.epoch.wrapping_add(1);
            state.session = None;
            state.flight = None;
            state.timer = None;
        }
        self.listeners.write().clear();
        drop(self.channel.write().take());
        for hook in self.page_hooks.write().drain(..) {
            let _ = hook.target.remove_event_listener_with_callback(hook.event, hook.callback.as_ref().unchecked_ref());
        }
    }

    // ----- the shared refresh -----

    /// Joins the refresh in flight or starts one; resolves with its outcome.
    fn refresh(self: &Rc<Self>) -> impl Future<Output = Result<(), AuthError>> {
        let flight = self.join_or_start_flight();
        async move {
            let _ = JsFuture::from(flight.done.clone()).await;
            let outcome = flight.outcome.read().clone();
            outcome.unwrap_or_else(|| Err(AuthError::unauthenticated()))
        }
    }

    fn join_or_start_flight(self: &Rc<Self>) -> Rc<Flight> {
        if let Some(flight) = &self.state.read().flight {
            return flight.clone();
        }
        let outcome = Rc::new(RefCell::new(None));
        let this = self.clone();
        let slot = outcome.clone();
        let done = promise(async move {
            let result = this.run_refresh().await;
            *slot.write() = Some(result);
            let mut state = this.state.write();
            if state.flight.as_ref().is_some_and(|flight| Rc::ptr_eq(&flight.outcome, &slot)) {
                state.flight = None;
            }
            Ok(JsValue::UNDEFINED)
        });
        let flight = Rc::new(Flight { done, outcome });
        self.state.write().flight = Some(flight.clone());
        flight
    }

    async fn run_refresh(self: &Rc<Self>) -> Result<(), AuthError> {
        let (epoch, generation) = {
            let state = self.state.read();
            (state.epoch, state.token_generation)
        };
        let this = self.clone();
        self.with_refresh_lock(move |waited_for_another_tab| async move {
            if waited_for_another_tab {
                this.await_other_tabs_outcome(epoch, generation).await;
            }
            if let Some(settled) = this.settled_while_waiting(epoch, generation) {
                return settled;
            }
            this.refresh_over_network(epoch).await
        })
        .await
    }

    /// The tab that held the lock posts its tokens just before releasing it, but the message can
    /// arrive a little after the lock does (it crosses processes). Give it a moment rather than
    /// rotating the cookie a second time; a holder that failed posts nothing, so this is bounded.
    async fn await_other_tabs_outcome(&self, epoch: u32, generation: u32) {
        for _ in 0..OTHER_TAB_GRACE_POLLS {
            if self.settled_while_waiting(epoch, generation).is_some() {
                return;
            }
            sleep(OTHER_TAB_GRACE_POLL_MS).await;
        }
    }

    /// After waiting for the lock: did another tab refresh for us, or did the session change?
    fn settled_while_waiting(&self, epoch: u32, generation: u32) -> Option<Result<(), AuthError>> {
        let state = self.state.read();
        if state.closed || state.epoch != epoch {
            return Some(Err(AuthError::unauthenticated()));
        }
        let renewed_elsewhere = state.token_generation != generation
            && state.session.as_ref().is_some_and(|session| !session.expiry.needs_renewal(now()));
        renewed_elsewhere.then_some(Ok(()))
    }

    async fn refresh_over_network(self: &Rc<Self>, epoch: u32) -> Result<(), AuthError> {
        let answer = self.transport.post(&self.options.endpoint(path::REFRESH), None, None, true).await;
        let result = answer.and_then(|answer| {
            if answer.is_success() {
                answer.tokens()
            } else {
                Err(answer.into_error(ErrorCode::SessionExpired))
            }
        });
        if self.is_stale(epoch) {
            return Err(AuthError::unauthenticated());
        }
        match result {
            Ok(tokens) => {
                let kind = if self.user().is_some() { EventKind::Refreshed } else { EventKind::SignedIn };
                self.accept_tokens(&tokens, kind);
                self.post_to_tabs(&TabMessage::Tokens { response: tokens, new_login: false, age_ms: 0.0 });
                Ok(())
            }
            Err(error) if error.code == ErrorCode::SessionExpired => {
                self.end_session(sign_out_reason(error.reason.as_deref()), true);
                Err(error)
            }
            Err(error) => {
                self.after_failed_refresh(&error);
                Err(error)
            }
        }
    }

    async fn with_refresh_lock<T, F, Fut>(&self, work: F) -> Result<T, AuthError>
    where
        T: 'static,
        F: FnOnce(bool) -> Fut + 'static,
        Fut: Future<Output = Result<T, AuthError>> + 'static,
    {
        let name = self.options.coordination_name();
        let output: Rc<RefCell<Option<Result<T, AuthError>>>> = Rc::default();
        let slot = output.clone();
        let work: tabs::LockedWork = Box::new(move |contended| {
            Box::pin(async move {
                let result = work(contended).await;
                *slot.write() = Some(result);
            })
        });
        tabs::with_lock(self.locks.as_ref(), &name, self.options.lock_timeout_ms, work).await;
        let result = output.write().take();
        result.unwrap_or_else(|| Err(AuthError::new(ErrorCode::Network, "the cross-tab lock failed")))
    }

    // ----- session state changes -----

    fn is_stale(&self, epoch: u32) -> bool {
        let state = self.state.read();
        state.closed || state.epoch != epoch
    }

    /// Whatever is in flight belongs to the previous session from now on.
    fn begin_new_epoch(&self) {
        let mut state = self.state.write();
        state.epoch = state.epoch.wrapping_add(1);
        state.flight = None;
    }

    fn accept_tokens(self: &Rc<Self>, tokens: &TokenResponse, kind: EventKind) {
        {
            let mut state = self.state.write();
            state.token_generation = state.token_generation.wrapping_add(1);
            state.session = Some(Session {
                access_token: tokens.access_token.clone(),
                user: tokens.user.clone(),
                generation: state.token_generation,
                expiry: Expiry::new(now(), tokens.expires_in, self.options.refresh_margin_seconds),
            });
            state.failures = 0;
            state.backoff_until = 0.0;
            state.signed_out = false;
        }
        self.schedule_renewal();
        self.emit(Some(kind), None);
    }

    /// Drops the session, tells listeners (if there was one) and, if `tell_tabs`, the other tabs.
    fn end_session(&self, reason: &str, tell_tabs: bool) {
        let had_session = {
            let mut state = self.state.write();
            state.epoch = state.epoch.wrapping_add(1);
            state.flight = None;
            state.timer = None;
            state.failures = 0;
            state.signed_out = true;
            state.known = true;
            state.session.take().is_some()
        };
        if had_session && tell_tabs {
            self.post_to_tabs(&TabMessage::SignedOut { reason: reason.to_owned() });
        }
        // Without a session before, there is no event, but `loading` may become `signed_out`.
        self.emit(had_session.then_some(EventKind::SignedOut), Some(reason));
    }

    /// A refresh failed but the session may live: keep the token, retry later with backoff.
    fn after_failed_refresh(self: &Rc<Self>, error: &AuthError) {
        let delay = {
            let mut state = self.state.write();
            if state.session.is_none() {
                return;
            }
            state.failures = state.failures.saturating_add(1);
            let delay = backoff_ms(state.failures, js_sys::Math::random(), error.retry_after);
            state.backoff_until = now().monotonic + delay;
            delay
        };
        if self.options.auto_refresh {
            self.arm_timer(delay);
        }
        self.emit(Some(EventKind::RefreshFailed), Some(error.code.as_str()));
    }

    fn on_tab_message(self: &Rc<Self>, message: TabMessage) {
        if self.state.read().closed {
            return;
        }
        match message {
            TabMessage::Tokens { new_login: false, .. } if self.state.read().signed_out => {}
            TabMessage::Tokens { response, new_login, .. } => {
                let kind = if new_login || self.user().is_none() { EventKind::SignedIn } else { EventKind::Refreshed };
                if new_login {
                    self.begin_new_epoch();
                }
                self.accept_tokens(&response, kind);
            }
            TabMessage::SignedOut { reason } => self.end_session(&reason, false),
            TabMessage::Ask => {}
        }
    }

    /// Brings the snapshot up to date, then calls the `onChange` listeners with the event (if
    /// any) and the `subscribe` listeners if the snapshot changed.
    fn emit(&self, kind: Option<EventKind>, reason: Option<&str>) {
        let (status, user, expires_at) = {
            let state = self.state.read();
            let session = state.session.as_ref();
            let status = match (session, state.known) {
                (Some(_), _) => Status::SignedIn,
                (None, true) => Status::SignedOut,
                (None, false) => Status::Loading,
            };
            (status, session.map(|session| session.user.clone()), session.map(|s| s.expiry.expires_at_wall_ms()))
        };
        let changed = self.snapshot.write().update(status, user.as_ref(), expires_at);
        if let Some(kind) = kind {
            let user = self.snapshot.read().user();
            let event = event_object(kind, reason, expires_at.map(|at| (&user, at)));
            dispatch(self.listeners.read().of_kind(true), Some(&event));
        }
        if changed {
            dispatch(self.listeners.read().of_kind(false), None);
        }
    }

    fn post_to_tabs(&self, message: &TabMessage) {
        if let Some(channel) = self.channel.read().as_ref() {
            channel.post(message);
        }
    }

    // ----- scheduling -----

    fn schedule_renewal(self: &Rc<Self>) {
        if !self.options.auto_refresh {
            return;
        }
        let delay = self.state.read().session.as_ref().map(|session| session.expiry.ms_until_renewal(now()));
        if let Some(delay) = delay {
            self.arm_timer(delay);
        }
    }

    fn arm_timer(self: &Rc<Self>, delay_ms: f64) {
        let weak = Rc::downgrade(self);
        let timer = Timeout::new(delay_ms.clamp(0.0, MAX_TIMER_DELAY_MS) as u32, Box::new(move || renew_soon(&weak)));
        let mut state = self.state.write();
        if !state.closed {
            state.timer = Some(timer);
        }
    }

    /// The page became visible, was restored from the back/forward cache, or came back online:
    /// timers may have been throttled or frozen meanwhile, so check the token now.
    fn on_wake(self: &Rc<Self>) {
        let due = self.state.read().session.as_ref().map(|session| session.expiry.needs_renewal(now()));
        match due {
            Some(true) => {
                let this = self.clone();
                spawn(async move {
                    let _ = this.refresh().await;
                });
            }
            Some(false) => self.schedule_renewal(),
            None => {}
        }
    }

    fn hook_page_lifecycle(self: &Rc<Self>) {
        // Pages only: a worker's global scope has no document and no page lifecycle.
        let window: JsValue = js_sys::global().into();
        let document = get_property(&window, "document");
        if document.is_undefined() || document.is_null() {
            return;
        }
        let mut hooks = self.page_hooks.write();
        for (target, event) in [(&window, "pageshow"), (&window, "online"), (&document, "visibilitychange")] {
            let target: EventTarget = target.clone().unchecked_into();
            let weak = Rc::downgrade(self);
            let document = document.clone();
            let callback = Closure::<dyn FnMut(JsValue)>::new(move |_| {
                if get_property(&document, "hidden").as_bool() == Some(true) {
                    return;
                }
                if let Some(inner) = weak.upgrade() {
                    spawn(async move { inner.on_wake() });
                }
            });
            if target.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref()).is_ok() {
                hooks.push(PageHook { target, event, callback });
            }
        }
    }

    // ----- tokens on requests -----

    fn token_state(&self) -> TokenState {
        let state = self.state.read();
        let Some(session) = &state.session else { return TokenState::None };
        let now = now();
        let token = session.access_token.clone();
        let generation = session.generation;
        if !session.expiry.needs_renewal(now) {
            return TokenState::Fresh { token, generation };
        }
        TokenState::Due {
            token,
            generation,
            expired: session.expiry.is_expired(now),
            backing_off: now.monotonic < state.backoff_until,
        }
    }

    fn current_token(&self) -> Option<(String, u32)> {
        let state = self.state.read();
        state.session.as_ref().map(|session| (session.access_token.clone(), session.generation))
    }

    fn build_request(&self, input: &JsValue, init: &JsValue) -> Result<Request, JsValue> {
        let init = if init.is_undefined() || init.is_null() { Object::new().into() } else { init.clone() };
        if input.is_instance_of::<Request>() {
            return new_request(input, &init);
        }
        // Strings and URL objects; relative paths are relative to baseUrl, not to the page.
        let url = JsUrl::new(input, &self.options.base_url.as_str().into())?;
        new_request(&url, &init)
    }

    /// Whether requests to `url` get the token (`AuthClient.sendsTokenTo`).
    pub(crate) fn sends_token_to(&self, url: &JsValue) -> bool {
        self.options.sends_token_to_url(url)
    }

    async fn send_with_token(&self, request: &Request, token: &str) -> Result<Response, JsValue> {
        get_property(request, "headers").unchecked_into::<Headers>().set("authorization", &bearer_value(token))?;
        JsFuture::from(self.transport.fetch(request)).await?.dyn_into()
    }
}

/// Timer callback: only schedules, so the timer is never dropped while its closure runs.
fn renew_soon(weak: &Weak<Inner>) {
    if let Some(inner) = weak.upgrade() {
        spawn(async move {
            let _ = inner.refresh().await;
        });
    }
}
