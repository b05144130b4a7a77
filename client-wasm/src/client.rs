//! The browser side of the session engine behind `AuthClient`: the public operations, the one
//! refresh in flight with the tab lock, start-up, page hooks and fetch. The rules themselves
//! (what a token, an answer, a tab message or a sign-out does to the state) live in
//! [`crate::engine`], which returns what to do; [`Inner::apply`] does it.
//!
//! Invariants worth knowing before changing anything here:
//! - The access token exists only in the engine's state (Wasm memory) and in Authorization headers.
//! - At most one refresh per client is in flight (`Inner::flight`); everyone who needs one awaits it.
//!   Before the session state is known, that refresh is the start-up restore.
//! - JS callbacks (timers, DOM events, channel messages) only schedule work with `spawn` and
//!   return: a listener that calls `free()` must never drop a closure while it is running.
//! - No `RefCell` borrow is held across an `await` or while listeners run.

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
use web_sys::{Headers, ReadableStream, Request, Response};

use crate::engine::{Decision, Effect, Effects, Engine, TokenNeed};
use crate::error::{AuthError, ErrorCode};
use crate::events::{self, dispatch, event_object, Listeners, Snapshot};
use crate::http::{bearer_value, Transport};
use crate::js::{
    concat, get_property, get_string, new_request, now, promise, set_property, sleep, spawn, CellExt, EventListener,
    JsUrl, Timeout,
};
use crate::options::Options;
use crate::protocol::{has_session_indicator, path, User};
use crate::tabs::{self, Grant, LockManager, TabChannel, TabMessage};

/// How long, in all, a tab that waited for the refresh lock listens for the holder's tokens, and a
/// new tab for a sibling's hand-over: the message crosses processes, so it can trail the lock
/// release, but a tab that has something to say says it within milliseconds.
const OTHER_TAB_GRACE_POLLS: u32 = 25;
const HANDOVER_POLLS: u32 = 10;
const OTHER_TAB_POLL_MS: i32 = 10;

/// `setTimeout` takes a signed 32-bit delay; longer delays fire at once.
const MAX_TIMER_DELAY_MS: f64 = 2_147_483_647.0;

pub(crate) struct Inner {
    pub(crate) options: Options,
    pub(crate) transport: Transport,
    locks: Option<LockManager>,
    engine: RefCell<Engine>,
    flight: RefCell<Option<Rc<Flight>>>,
    /// The next scheduled renewal or retry; replacing or dropping it cancels it.
    timer: RefCell<Option<Timeout>>,
    listeners: RefCell<Listeners>,
    snapshot: RefCell<Snapshot>,
    /// Closed while the page sits in the back/forward cache (an open channel keeps it out).
    channel: RefCell<Option<TabChannel>>,
    page_hooks: RefCell<Vec<EventListener>>,
}

/// One refresh in flight: its promise, awaited by everyone who needs it, and its outcome.
struct Flight {
    done: Promise,
    outcome: Rc<RefCell<Option<Result<(), AuthError>>>>,
}

impl Inner {
    pub(crate) fn new(options: Options) -> Rc<Self> {
        let transport = Transport::new(options.fetch.clone(), options.request_timeout_ms);
        let locks = if options.cross_tab { tabs::lock_manager() } else { None };
        let mut engine = Engine::new(options.refresh_margin_seconds, options.auto_refresh);
        // Known at once when the indicator cookie says there is no session: no `loading` flash.
        if session_indicator_absent(&options) {
            let _ = engine.no_session_found();
        }
        let snapshot = Snapshot::new(engine.status());
        let inner = Rc::new(Self {
            options,
            transport,
            locks,
            engine: RefCell::new(engine),
            flight: RefCell::default(),
            timer: RefCell::default(),
            listeners: RefCell::default(),
            snapshot: RefCell::new(snapshot),
            channel: RefCell::default(),
            page_hooks: RefCell::default(),
        });
        inner.open_channel();
        inner.hook_page_lifecycle();
        inner
    }

    // ----- what AuthClient exposes -----

    pub(crate) fn user(&self) -> Option<User> {
        self.engine.read().user().cloned()
    }

    /// `auth.user`: the snapshot's frozen user object, the same one until the next event.
    pub(crate) fn user_js(&self) -> JsValue {
        self.snapshot.read().user()
    }

    pub(crate) fn snapshot(&self) -> JsValue {
        self.snapshot.read().value()
    }

    pub(crate) fn expires_at(&self) -> Option<f64> {
        self.engine.read().expires_at()
    }

    pub(crate) fn refresh_at(&self) -> Option<f64> {
        self.engine.read().refresh_at()
    }

    /// Marks the access token as expired; the session stays, and the next caller that needs a
    /// token starts the (shared) refresh.
    pub(crate) fn invalidate_access_token(&self) {
        self.engine.write().invalidate(now());
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
        if let TokenNeed::Use(..) = self.engine.read().token_need(now(), false) {
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
        self.sign_in(path::LOGIN, body).await
    }

    /// The one sign-in path: POSTs `body` to the sign-in endpoint `path` and starts the session from
    /// its token answer. A 401 there means `invalid_credentials`.
    pub(crate) async fn sign_in(self: &Rc<Self>, path: &str, body: Object) -> Result<User, AuthError> {
        let this = self.clone();
        let endpoint = self.options.endpoint(path);
        // Under the refresh lock: another tab's refresh answering after our login would overwrite
        // the new cookie with a rotated one from the old session.
        let tokens = self
            .with_refresh_lock(move |_| async move {
                let answer = this.transport.post(&endpoint, Some(&body), None, true).await?;
                if answer.is_success() {
                    answer.tokens()
                } else {
                    Err(answer.into_error(ErrorCode::InvalidCredentials))
                }
            })
            .await?;
        if self.engine.read().is_closed() {
            return Err(AuthError::unauthenticated());
        }
        self.forget_flight();
        let user = tokens.user.clone();
        let effects = self.engine.write().logged_in(&tokens, now());
        self.apply(effects);
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

    /// A valid access token and its generation, renewing first when it is due. Before the
    /// session state is known, this joins (or starts) the start-up restore.
    pub(crate) async fn valid_token(self: &Rc<Self>) -> Result<(String, u32), AuthError> {
        let refresh_running = self.flight.read().is_some();
        let (need, had_session) = {
            let engine = self.engine.read();
            (engine.token_need(now(), refresh_running), engine.has_session())
        };
        match need {
            TokenNeed::Use(token, generation) => return Ok((token, generation)),
            TokenNeed::NoSession => return Err(AuthError::unauthenticated()),
            TokenNeed::Refresh => {}
        }
        let outcome = self.refresh().await;
        self.engine.read().token_after_refresh(now(), outcome, had_session)
    }

    /// A token other than `rejected` (which a server answered 401 to): the newer one this client
    /// holds, else the outcome of the one shared refresh. `None` when there is no session, or the
    /// refresh brought no other token; transient refresh failures are errors, as for `accessToken()`.
    pub(crate) async fn token_after_rejection(self: &Rc<Self>, rejected: &str) -> Result<Option<String>, AuthError> {
        {
            // The server refused the token we hold: for us it has expired, whatever its clock said.
            let mut engine = self.engine.write();
            if engine.current_token().is_some_and(|(token, _)| token == rejected) {
                engine.invalidate(now());
            }
        }
        match self.valid_token().await {
            Ok((token, _)) => Ok(Some(token).filter(|token| token != rejected)),
            Err(error) if error.code == ErrorCode::Unauthenticated => Ok(None),
            Err(error) => Err(error),
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
        self.engine.write().close();
        self.forget_flight();
        drop(self.timer.write().take());
        self.listeners.write().clear();
        drop(self.channel.write().take());
        drop(core::mem::take(&mut *self.page_hooks.write()));
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
        if let Some(flight) = &*self.flight.read() {
            self.log("joined the refresh in flight", None);
            return flight.clone();
        }
        let outcome = Rc::new(RefCell::new(None));
        let this = self.clone();
        let slot = outcome.clone();
        let done = promise(async move {
            let result = this.run_refresh().await;
            *slot.write() = Some(result);
            let mut flight = this.flight.write();
            if flight.as_ref().is_some_and(|flight| Rc::ptr_eq(&flight.outcome, &slot)) {
                *flight = None;
            }
            Ok(JsValue::UNDEFINED)
        });
        let flight = Rc::new(Flight { done, outcome });
        *self.flight.write() = Some(flight.clone());
        flight
    }

    /// Whatever is in flight belongs to the previous session from now on.
    fn forget_flight(&self) {
        drop(self.flight.write().take());
    }

    async fn run_refresh(self: &Rc<Self>) -> Result<(), AuthError> {
        let (epoch, generation, has_session) = {
            let engine = self.engine.read();
            (engine.epoch(), engine.token_generation(), engine.has_session())
        };
        if !has_session {
            // Start-up (or a restore after a sign-out): first the two ways that cost no request.
            if session_indicator_absent(&self.options) {
                self.log("no indicator cookie: signed out", None);
                let effects = self.engine.write().no_session_found();
                self.apply(effects);
                return Err(AuthError::unauthenticated());
            }
            if let Some(settled) = self.ask_other_tabs(epoch, generation).await {
                return settled;
            }
        }
        let this = self.clone();
        self.with_refresh_lock(move |grant| async move {
            if grant.contended() {
                this.await_other_tabs_outcome(epoch, generation, OTHER_TAB_GRACE_POLLS).await;
            }
            if let Some(settled) = this.settled_while_waiting(epoch, generation) {
                return settled;
            }
            this.refresh_over_network(epoch).await
        })
        .await
    }

    /// Asks the other tabs for their live token and gives them a short, bounded time to hand it
    /// over; `Some` when one did (or the session changed meanwhile), `None` to go on alone.
    async fn ask_other_tabs(self: &Rc<Self>, epoch: u32, generation: u32) -> Option<Result<(), AuthError>> {
        if self.channel.read().is_none() {
            return None;
        }
        self.log("asked the tabs for a token", None);
        self.post_to_tabs(&TabMessage::Ask);
        self.await_other_tabs_outcome(epoch, generation, HANDOVER_POLLS).await;
        self.settled_while_waiting(epoch, generation)
    }

    /// Polls until another tab's tokens arrived or `polls` ran out. A tab that has nothing to say
    /// (a lock holder that failed, no sibling with a live token) posts nothing, so this is bounded.
    async fn await_other_tabs_outcome(&self, epoch: u32, generation: u32, polls: u32) {
        for _ in 0..polls {
            if self.settled_while_waiting(epoch, generation).is_some() {
                return;
            }
            sleep(OTHER_TAB_POLL_MS).await;
        }
    }

    /// After waiting: did another tab renew for us, or did the session change?
    fn settled_while_waiting(&self, epoch: u32, generation: u32) -> Option<Result<(), AuthError>> {
        self.engine.read().settled_while_waiting(epoch, generation, now())
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
        let (outcome, effects) = self.engine.write().refresh_answered(epoch, result, now(), js_sys::Math::random());
        self.apply(effects);
        outcome
    }

    async fn with_refresh_lock<T, F, Fut>(&self, work: F) -> Result<T, AuthError>
    where
        T: 'static,
        F: FnOnce(Grant) -> Fut + 'static,
        Fut: Future<Output = Result<T, AuthError>> + 'static,
    {
        let name = self.options.coordination_name();
        let output: Rc<RefCell<Option<Result<T, AuthError>>>> = Rc::default();
        let slot = output.clone();
        let debug = self.options.debug.clone();
        let work: tabs::LockedWork = Box::new(move |grant| {
            Box::pin(async move {
                log_grant(debug.as_ref(), grant);
                let result = work(grant).await;
                *slot.write() = Some(result);
            })
        });
        tabs::with_lock(self.locks.as_ref(), &name, self.options.lock_timeout_ms, work).await;
        let result = output.write().take();
        result.unwrap_or_else(|| Err(AuthError::new(ErrorCode::Network, "the cross-tab lock failed")))
    }

    // ----- carrying out the engine's decisions -----

    fn end_session(self: &Rc<Self>, reason: &'static str, tell_tabs: bool) {
        self.forget_flight();
        let effects = self.engine.write().end_session(reason, tell_tabs);
        self.apply(effects);
    }

    /// Does what the engine decided, in order, after bringing the snapshot up to date; then tells
    /// the `subscribe` listeners if the snapshot changed.
    fn apply(self: &Rc<Self>, effects: Effects) {
        let (changed, expires_at) = {
            let engine = self.engine.read();
            let changed = self.snapshot.write().update(
                engine.status(),
                engine.token_generation(),
                engine.user(),
                engine.expires_at(),
            );
            (changed, engine.expires_at())
        };
        for effect in effects {
            match effect {
                Effect::Emit(kind, reason) => {
                    let user = self.snapshot.read().user();
                    let event = event_object(kind, reason, expires_at.map(|at| (&user, at)));
                    dispatch(self.listeners.read().of_kind(true), Some(&event));
                }
                Effect::Post(message) => self.post_to_tabs(&message),
                Effect::ArmTimer(delay_ms) => self.arm_timer(delay_ms),
                Effect::CancelTimer => drop(self.timer.write().take()),
                Effect::Log(decision) => self.log_decision(&decision),
            }
        }
        if changed {
            dispatch(self.listeners.read().of_kind(false), None);
        }
    }

    fn on_tab_message(self: &Rc<Self>, message: TabMessage) {
        let epoch = self.engine.read().epoch();
        let effects = self.engine.write().tab_message(message, now());
        if self.engine.read().epoch() != epoch {
            // A sign-out or a new login elsewhere: the refresh in flight belongs to the old session.
            self.forget_flight();
        }
        self.apply(effects);
    }

    fn post_to_tabs(&self, message: &TabMessage) {
        if let Some(channel) = self.channel.read().as_ref() {
            channel.post(message);
        }
    }

    fn open_channel(self: &Rc<Self>) {
        if !self.options.cross_tab {
            return;
        }
        let weak = Rc::downgrade(self);
        let channel = TabChannel::open(&self.options.coordination_name(), move |message| {
            if let Some(inner) = weak.upgrade() {
                spawn(async move { inner.on_tab_message(message) });
            }
        });
        *self.channel.write() = channel;
    }

    // ----- scheduling and page life -----

    fn arm_timer(self: &Rc<Self>, delay_ms: f64) {
        if self.engine.read().is_closed() {
            return;
        }
        let weak = Rc::downgrade(self);
        let timer = Timeout::new(delay_ms.clamp(0.0, MAX_TIMER_DELAY_MS) as u32, Box::new(move || renew_soon(&weak)));
        *self.timer.write() = Some(timer);
    }

    /// The page became visible, was restored from the back/forward cache, or came back online:
    /// timers may have been throttled or frozen meanwhile, so check the token now.
    fn on_wake(self: &Rc<Self>) {
        let (due, effects) = self.engine.read().on_wake(now());
        self.apply(effects);
        if due {
            let this = self.clone();
            spawn(async move {
                let _ = this.refresh().await;
            });
        }
    }

    /// Back from the back/forward cache: the channel was closed while the page was frozen, so
    /// whatever the other tabs said meanwhile was missed. A session that ended elsewhere shows as a
    /// missing indicator cookie; a renewal done elsewhere is asked for again.
    async fn catch_up(self: &Rc<Self>) {
        self.open_channel();
        self.log("reopened the tab channel", None);
        if self.engine.read().has_session() && session_indicator_absent(&self.options) {
            self.end_session(events::LOGOUT, false);
            return;
        }
        let (epoch, generation) = {
            let engine = self.engine.read();
            (engine.epoch(), engine.token_generation())
        };
        if self.engine.read().has_session() {
            let _ = self.ask_other_tabs(epoch, generation).await;
        }
        self.on_wake();
    }

    fn hook_page_lifecycle(self: &Rc<Self>) {
        // Pages only: a worker's global scope has no document and no page lifecycle.
        let window: JsValue = js_sys::global().into();
        let document = get_property(&window, "document");
        if document.is_undefined() || document.is_null() {
            return;
        }
        let mut hooks = self.page_hooks.write();
        for (target, event) in
            [(&window, "pagehide"), (&window, "pageshow"), (&window, "online"), (&document, "visibilitychange")]
        {
            let weak = Rc::downgrade(self);
            let document = document.clone();
            let callback = Box::new(move |_| {
                let Some(inner) = weak.upgrade() else { return };
                if event == "pagehide" {
                    // An open BroadcastChannel keeps the page out of the back/forward cache.
                    if inner.channel.write().take().is_some() {
                        inner.log("closed the tab channel", None);
                    }
                    return;
                }
                if get_property(&document, "hidden").as_bool() == Some(true) {
                    return;
                }
                let reopen = inner.options.cross_tab && inner.channel.read().is_none();
                spawn(async move {
                    if reopen && event == "pageshow" {
                        inner.catch_up().await;
                    } else {
                        inner.on_wake();
                    }
                });
            });
            hooks.extend(EventListener::new(target, event, callback));
        }
    }

    // ----- debug log -----

    fn log_decision(&self, decision: &Decision) {
        let (message, detail) = match decision {
            Decision::ScheduledRenewal(ms) => ("scheduled the renewal", Some(("inMs", *ms))),
            Decision::BackedOff(ms) => ("backed off", Some(("retryInMs", *ms))),
            Decision::AdoptedTabToken => ("adopted a tab's token", None),
            Decision::IgnoredTabToken => ("ignored a tab's token", None),
            Decision::HandedOverToken => ("handed the token to a tab", None),
        };
        self.log(message, detail);
    }

    fn log(&self, message: &str, detail: Option<(&str, f64)>) {
        log_to(self.options.debug.as_ref(), message, detail);
    }

    // ----- tokens on requests -----

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

/// Whether the server's session indicator cookie is known to be absent. Only a page on
/// `baseUrl`'s host can read it (cookies ignore ports); elsewhere, and in workers, absence proves
/// nothing and the client asks the server.
fn session_indicator_absent(options: &Options) -> bool {
    let global: JsValue = js_sys::global().into();
    let same_host = get_string(&get_property(&global, "location"), "hostname").as_deref() == Some(&options.base_host);
    let cookies = get_string(&get_property(&global, "document"), "cookie");
    match cookies {
        Some(cookies) if same_host => !has_session_indicator(&cookies),
        _ => false,
    }
}

/// Logs how the refresh lock was granted. Not generic, unlike its caller, so compiled once.
#[inline(never)]
fn log_grant(debug: Option<&JsValue>, grant: Grant) {
    let message = match grant {
        Grant::Free => "took the lock",
        Grant::AfterWaiting => "took the lock after another tab",
        Grant::Stolen => "stole the lock (held past lockTimeoutMs)",
        Grant::Unguarded => "no Web Locks: unguarded",
    };
    log_to(debug, message, None);
}

/// The `debug` option's output: `console.debug("[reauth] message", detail)`, or the
/// application's function called with `(message, detail)`.
fn log_to(debug: Option<&JsValue>, message: &str, detail: Option<(&str, f64)>) {
    let Some(debug) = debug else { return };
    let detail = detail.map_or(JsValue::UNDEFINED, |(key, value)| {
        let object = Object::new();
        set_property(&object, key, &value.into());
        object.into()
    });
    // `true`: console.debug, called on console; else the application's function.
    let console = get_property(&js_sys::global(), "console");
    let (function, this) = match debug.dyn_ref::<Function>() {
        Some(function) => (function.clone(), JsValue::UNDEFINED),
        None => (get_property(&console, "debug").unchecked_into::<Function>(), console),
    };
    if let Err(thrown) = function.call2(&this, &concat("reauth: ", message).into(), &detail) {
        web_sys::console::error_1(&thrown);
    }
}
