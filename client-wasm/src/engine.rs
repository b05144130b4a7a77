//! The session engine's rules, free of browser calls: what the client holds, and what each thing
//! that happens (an answer from the server, a message from another tab, a timer, a sign-out) does
//! to it. Every transition returns the [`Effect`]s the browser side (`client.rs`) must carry out —
//! emit an event, post to other tabs, arm or cancel the timer, log a decision — so every rule is
//! tested here on the host, without a browser or a server.
//!
//! Invariants:
//! - `epoch` changes whenever the session's identity changes (login, sign-out, free). Every network
//!   answer is checked against the epoch it was requested under and dropped if stale, so a late
//!   refresh can never bring back a session the user left.
//! - `token_generation` changes on every new access token, from this tab or another: it tells a
//!   stale 401 from a real one and a refresh another tab did for us from none.
//! - After a sign-out, only a new login (here or in another tab) brings a session back: a renewal
//!   from another tab that crossed the sign-out is ignored.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{AuthError, ErrorCode};
use crate::events::{sign_out_reason, EventKind, Status};
use crate::protocol::{TokenResponse, User};
use crate::tabs::TabMessage;
use crate::timing::{backoff_ms, Expiry, Instant};

/// Something the browser side must do after a transition, in the order given.
#[derive(Debug, PartialEq)]
pub(crate) enum Effect {
    /// Call the `onChange` listeners with this event; the reason is the `signed_out` reason or the
    /// `refresh_failed` error code.
    Emit(EventKind, Option<&'static str>),
    /// Tell the other tabs.
    Post(TabMessage),
    /// (Re)arm the one engine timer: a renewal or a retry, this many ms from now.
    ArmTimer(f64),
    /// Cancel the engine timer.
    CancelTimer,
    /// A decision worth showing to someone debugging (the `debug` option).
    Log(Decision),
}

/// The engine decisions the `debug` option reports.
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// The next renewal is due in this many ms.
    ScheduledRenewal(f64),
    /// A refresh failed for a transient reason; the next try is in this many ms.
    BackedOff(f64),
    /// A token another tab sent (renewed there, or handed over to this new tab) replaced ours.
    AdoptedTabToken,
    /// A token another tab sent was older than ours, or crossed a sign-out: ignored.
    IgnoredTabToken,
    /// A new tab asked for the live token and this one handed it over.
    HandedOverToken,
}

/// The effects of one transition.
pub(crate) type Effects = Vec<Effect>;

/// What a caller that needs an access token must do.
#[derive(Debug, PartialEq)]
pub(crate) enum TokenNeed {
    /// This token (with its generation) is good to send.
    Use(String, u32),
    /// Join or start the shared refresh (or the start-up restore) first.
    Refresh,
    /// There is no session, and no start-up in progress that could bring one.
    NoSession,
}

/// The session this client holds.
struct Session {
    access_token: String,
    user: User,
    generation: u32,
    expiry: Expiry,
}

/// The engine's state, and its rules.
pub(crate) struct Engine {
    margin_seconds: f64,
    auto_refresh: bool,
    epoch: u32,
    token_generation: u32,
    session: Option<Session>,
    /// Consecutive transient refresh failures, for the backoff.
    failures: u32,
    /// Until this monotonic time a call that finds the token due but still valid uses it as is,
    /// instead of hammering a server that just failed.
    backoff_until: f64,
    /// A sign-out happened here (or reached us from another tab) and no sign-in since.
    signed_out: bool,
    /// Whether the session state is known (a session is held, or a sign-out or a start-up that
    /// found none settled it). Until then the snapshot says `loading`, and a call that needs a
    /// token starts (or joins) the start-up restore.
    known: bool,
    closed: bool,
}

impl Engine {
    pub(crate) fn new(margin_seconds: f64, auto_refresh: bool) -> Self {
        Self {
            margin_seconds,
            auto_refresh,
            epoch: 0,
            token_generation: 0,
            session: None,
            failures: 0,
            backoff_until: 0.0,
            signed_out: false,
            known: false,
            closed: false,
        }
    }

    // ----- reading -----

    pub(crate) fn epoch(&self) -> u32 {
        self.epoch
    }

    pub(crate) fn token_generation(&self) -> u32 {
        self.token_generation
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn has_session(&self) -> bool {
        self.session.is_some()
    }

    pub(crate) fn user(&self) -> Option<&User> {
        self.session.as_ref().map(|session| &session.user)
    }

    pub(crate) fn current_token(&self) -> Option<(String, u32)> {
        self.session.as_ref().map(|session| (session.access_token.clone(), session.generation))
    }

    pub(crate) fn expires_at(&self) -> Option<f64> {
        self.session.as_ref().map(|session| session.expiry.expires_at_wall_ms())
    }

    pub(crate) fn refresh_at(&self) -> Option<f64> {
        self.session.as_ref().map(|session| session.expiry.renew_at_wall_ms())
    }

    pub(crate) fn status(&self) -> Status {
        match (&self.session, self.known) {
            (Some(_), _) => Status::SignedIn,
            (None, true) => Status::SignedOut,
            (None, false) => Status::Loading,
        }
    }

    /// What a caller that needs a token must do. `refresh_running`: a refresh (or restore) is in
    /// flight, whose outcome decides for a caller without a session.
    pub(crate) fn token_need(&self, now: Instant, refresh_running: bool) -> TokenNeed {
        let Some(session) = &self.session else {
            return if refresh_running || !self.known { TokenNeed::Refresh } else { TokenNeed::NoSession };
        };
        let use_it = TokenNeed::Use(session.access_token.clone(), session.generation);
        if !session.expiry.needs_renewal(now) {
            return use_it;
        }
        // A refresh failed moments ago and the token still works: use it, do not hammer.
        if now.monotonic < self.backoff_until && !session.expiry.is_expired(now) {
            return use_it;
        }
        TokenNeed::Refresh
    }

    /// After the refresh a caller waited for: the token to use, or why there is none.
    /// `had_session`: the caller held a session before (a restore that found none did not).
    pub(crate) fn token_after_refresh(
        &self,
        now: Instant,
        outcome: Result<(), AuthError>,
        had_session: bool,
    ) -> Result<(String, u32), AuthError> {
        match (&self.session, outcome) {
            (Some(session), _) if !session.expiry.is_expired(now) => {
                Ok((session.access_token.clone(), session.generation))
            }
            // A restore that found no session: nothing expired, there was simply none.
            (_, Err(error)) if !had_session && error.code == ErrorCode::SessionExpired => {
                Err(AuthError::unauthenticated())
            }
            (_, Err(error)) => Err(error),
            (None, Ok(())) => Err(AuthError::unauthenticated()),
            (Some(_), Ok(())) => {
                Err(AuthError::new(ErrorCode::Network, "the access token expired and could not be renewed"))
            }
        }
    }

    /// After waiting for the lock (or for a sibling tab's hand-over): did another tab renew for
    /// us, or did the session change under us?
    pub(crate) fn settled_while_waiting(
        &self,
        epoch: u32,
        generation: u32,
        now: Instant,
    ) -> Option<Result<(), AuthError>> {
        if self.closed || self.epoch != epoch {
            return Some(Err(AuthError::unauthenticated()));
        }
        let renewed_elsewhere = self.token_generation != generation
            && self.session.as_ref().is_some_and(|session| !session.expiry.needs_renewal(now));
        renewed_elsewhere.then_some(Ok(()))
    }

    /// Whether the page woke up (visible again, online, back from the back/forward cache) with a
    /// token past its renewal point; if not, re-arms the timer, which may have been frozen.
    pub(crate) fn on_wake(&self, now: Instant) -> (bool, Effects) {
        match &self.session {
            Some(session) if session.expiry.needs_renewal(now) => (true, Vec::new()),
            Some(_) => (false, self.schedule(now)),
            None => (false, Vec::new()),
        }
    }

    // ----- transitions -----

    /// A login answered: a new session, whatever was before.
    pub(crate) fn logged_in(&mut self, tokens: &TokenResponse, now: Instant) -> Effects {
        self.begin_new_epoch();
        let mut effects = self.accept(tokens, now, 0.0, EventKind::SignedIn);
        effects.push(Effect::Post(TabMessage::Tokens { response: tokens.clone(), new_login: true, age_ms: 0.0 }));
        effects
    }

    /// A refresh requested under `epoch` answered (or failed). Returns the caller's outcome.
    pub(crate) fn refresh_answered(
        &mut self,
        epoch: u32,
        result: Result<TokenResponse, AuthError>,
        now: Instant,
        random: f64,
    ) -> (Result<(), AuthError>, Effects) {
        if self.closed || self.epoch != epoch {
            return (Err(AuthError::unauthenticated()), Vec::new());
        }
        match result {
            Ok(tokens) => {
                let kind = if self.session.is_some() { EventKind::Refreshed } else { EventKind::SignedIn };
                let mut effects = self.accept(&tokens, now, 0.0, kind);
                effects.push(Effect::Post(TabMessage::Tokens { response: tokens, new_login: false, age_ms: 0.0 }));
                (Ok(()), effects)
            }
            Err(error) if error.code == ErrorCode::SessionExpired => {
                let effects = self.end_session(sign_out_reason(error.reason.as_deref()), true);
                (Err(error), effects)
            }
            Err(error) => {
                let effects = self.failed_refresh(&error, now, random);
                (Err(error), effects)
            }
        }
    }

    /// The session ends here: `reason` as in the `signed_out` event; `tell_tabs` unless the news
    /// came from another tab. Without a session there is no event, but the state becomes known.
    pub(crate) fn end_session(&mut self, reason: &'static str, tell_tabs: bool) -> Effects {
        self.epoch = self.epoch.wrapping_add(1);
        self.failures = 0;
        self.signed_out = true;
        self.known = true;
        let mut effects = alloc::vec![Effect::CancelTimer];
        if self.session.take().is_some() {
            if tell_tabs {
                effects.push(Effect::Post(TabMessage::SignedOut { reason: reason.into() }));
            }
            effects.push(Effect::Emit(EventKind::SignedOut, Some(reason)));
        }
        effects
    }

    /// The start-up found no session without asking the server (no indicator cookie).
    pub(crate) fn no_session_found(&mut self) -> Effects {
        self.known = true;
        Vec::new()
    }

    /// What another tab told us.
    pub(crate) fn tab_message(&mut self, message: TabMessage, now: Instant) -> Effects {
        if self.closed {
            return Vec::new();
        }
        match message {
            TabMessage::SignedOut { reason } => self.end_session(sign_out_reason(Some(&reason)), false),
            TabMessage::Ask => match &self.session {
                // Only a token that needs no renewal is worth handing over: the new tab would
                // otherwise renew at once, which it can do alone.
                Some(session) if !session.expiry.needs_renewal(now) => alloc::vec![
                    Effect::Post(TabMessage::Tokens {
                        response: TokenResponse {
                            access_token: session.access_token.clone(),
                            expires_in: session.expiry.lifetime_seconds(),
                            user: session.user.clone(),
                        },
                        new_login: false,
                        age_ms: session.expiry.age_ms(now),
                    }),
                    Effect::Log(Decision::HandedOverToken),
                ],
                _ => Vec::new(),
            },
            TabMessage::Tokens { response, new_login: true, age_ms } => {
                self.begin_new_epoch();
                self.adopt(&response, now, age_ms, EventKind::SignedIn)
            }
            TabMessage::Tokens { response, new_login: false, age_ms } => {
                let Some(session) = &self.session else {
                    // A renewal that crossed our sign-out must not revive the session.
                    if self.signed_out {
                        return alloc::vec![Effect::Log(Decision::IgnoredTabToken)];
                    }
                    return self.adopt(&response, now, age_ms, EventKind::SignedIn);
                };
                if session.user != response.user {
                    // Another user signed in there while we slept (back/forward cache): a new session.
                    self.begin_new_epoch();
                    return self.adopt(&response, now, age_ms, EventKind::SignedIn);
                }
                let theirs = Expiry::received_ago(now, age_ms, response.expires_in, self.margin_seconds);
                if theirs.expires_at_wall_ms() <= session.expiry.expires_at_wall_ms() {
                    // Ours, echoed back, or older than ours (a hand-over from a tab that missed a renewal).
                    return alloc::vec![Effect::Log(Decision::IgnoredTabToken)];
                }
                self.adopt(&response, now, age_ms, EventKind::Refreshed)
            }
        }
    }

    /// `invalidateAccessToken()`: the token counts as expired; the session stays.
    pub(crate) fn invalidate(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut() {
            session.expiry = Expiry::expired_now(now);
        }
    }

    /// `free()`: everything in flight is stale, and nothing happens any more.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        self.epoch = self.epoch.wrapping_add(1);
        self.session = None;
    }

    /// Whatever is in flight belongs to the previous session from now on.
    pub(crate) fn begin_new_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
    }

    // ----- helpers -----

    fn adopt(&mut self, tokens: &TokenResponse, now: Instant, age_ms: f64, kind: EventKind) -> Effects {
        let mut effects = self.accept(tokens, now, age_ms, kind);
        effects.push(Effect::Log(Decision::AdoptedTabToken));
        effects
    }

    /// Takes `tokens` as the session's, received `age_ms` ago; then the timer and the event.
    fn accept(&mut self, tokens: &TokenResponse, now: Instant, age_ms: f64, kind: EventKind) -> Effects {
        self.token_generation = self.token_generation.wrapping_add(1);
        self.session = Some(Session {
            access_token: tokens.access_token.clone(),
            user: tokens.user.clone(),
            generation: self.token_generation,
            expiry: Expiry::received_ago(now, age_ms, tokens.expires_in, self.margin_seconds),
        });
        self.failures = 0;
        self.backoff_until = 0.0;
        self.signed_out = false;
        self.known = true;
        let mut effects = self.schedule(now);
        effects.push(Effect::Emit(kind, None));
        effects
    }

    /// The renewal timer for the session held, when timers renew.
    fn schedule(&self, now: Instant) -> Effects {
        match &self.session {
            Some(session) if self.auto_refresh => {
                let delay = session.expiry.ms_until_renewal(now);
                alloc::vec![Effect::ArmTimer(delay), Effect::Log(Decision::ScheduledRenewal(delay))]
            }
            _ => Vec::new(),
        }
    }

    /// A refresh failed but the session may live: keep the token, retry later with backoff.
    fn failed_refresh(&mut self, error: &AuthError, now: Instant, random: f64) -> Effects {
        if self.session.is_none() {
            return Vec::new();
        }
        self.failures = self.failures.saturating_add(1);
        let delay = backoff_ms(self.failures, random, error.retry_after);
        self.backoff_until = now.monotonic + delay;
        let mut effects = alloc::vec![Effect::Log(Decision::BackedOff(delay))];
        if self.auto_refresh {
            effects.push(Effect::ArmTimer(delay));
        }
        effects.push(Effect::Emit(EventKind::RefreshFailed, Some(error.code.as_str())));
        effects
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::borrow::ToOwned;
    use alloc::vec;

    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn at(ms: f64) -> Instant {
        Instant { monotonic: ms, wall: 1_700_000_000_000.0 + ms }
    }

    fn user(name: &str) -> User {
        User { id: name.to_owned(), username: name.to_owned() }
    }

    fn tokens(token: &str, expires_in: f64) -> TokenResponse {
        TokenResponse { access_token: token.to_owned(), expires_in, user: user("alice") }
    }

    fn signed_in(token: &str) -> Engine {
        let mut engine = Engine::new(60.0, true);
        let epoch = engine.epoch();
        let _ = engine.refresh_answered(epoch, Ok(tokens(token, 900.0)), at(0.0), 0.0);
        engine
    }

    fn emitted(effects: &Effects) -> Vec<EventKind> {
        effects
            .iter()
            .filter_map(|effect| if let Effect::Emit(kind, _) = effect { Some(*kind) } else { None })
            .collect()
    }

    fn posted(effects: &Effects) -> Vec<&TabMessage> {
        effects
            .iter()
            .filter_map(|effect| if let Effect::Post(message) = effect { Some(message) } else { None })
            .collect()
    }

    #[test]
    fn a_new_client_is_loading_and_its_first_call_starts_the_restore() {
        let engine = Engine::new(60.0, true);
        assert_eq!(engine.status(), Status::Loading);
        assert_eq!(engine.token_need(at(0.0), false), TokenNeed::Refresh);
    }

    #[test]
    fn a_restore_that_finds_no_session_settles_signed_out_without_an_event() {
        let mut engine = Engine::new(60.0, true);
        let epoch = engine.epoch();
        let dead = AuthError { reason: Some("missing".into()), ..AuthError::new(ErrorCode::SessionExpired, "dead") };
        let (outcome, effects) = engine.refresh_answered(epoch, Err(dead), at(0.0), 0.0);
        assert_eq!(outcome.map_err(|error| error.code), Err(ErrorCode::SessionExpired));
        assert!(emitted(&effects).is_empty() && posted(&effects).is_empty(), "{effects:?}");
        assert_eq!(engine.status(), Status::SignedOut);
        assert_eq!(engine.token_need(at(0.0), false), TokenNeed::NoSession, "no second restore by itself");
        let after = engine.token_after_refresh(at(0.0), Err(AuthError::new(ErrorCode::SessionExpired, "")), false);
        assert_eq!(after.map_err(|error| error.code), Err(ErrorCode::Unauthenticated));
    }

    #[test]
    fn a_refresh_signs_in_schedules_the_renewal_and_tells_the_tabs() {
        let mut engine = Engine::new(60.0, true);
        let epoch = engine.epoch();
        let (outcome, effects) = engine.refresh_answered(epoch, Ok(tokens("t1", 900.0)), at(0.0), 0.0);
        assert!(outcome.is_ok());
        assert_eq!(
            effects,
            vec![
                Effect::ArmTimer(840_000.0),
                Effect::Log(Decision::ScheduledRenewal(840_000.0)),
                Effect::Emit(EventKind::SignedIn, None),
                Effect::Post(TabMessage::Tokens { response: tokens("t1", 900.0), new_login: false, age_ms: 0.0 }),
            ]
        );
        assert_eq!(engine.status(), Status::SignedIn);
        assert_eq!(engine.token_need(at(1.0), false), TokenNeed::Use("t1".into(), 1));
        assert_eq!(engine.token_need(at(840_000.0), false), TokenNeed::Refresh);
    }

    #[test]
    fn an_answer_for_an_older_epoch_is_dropped() {
        let mut engine = signed_in("t1");
        let epoch = engine.epoch();
        let _ = engine.end_session("logout", true);
        let (outcome, effects) = engine.refresh_answered(epoch, Ok(tokens("late", 900.0)), at(10.0), 0.0);
        assert_eq!(outcome.map_err(|error| error.code), Err(ErrorCode::Unauthenticated));
        assert!(effects.is_empty());
        assert!(!engine.has_session());
    }

    #[test]
    fn a_transient_failure_keeps_the_session_backs_off_and_uses_the_token_meanwhile() {
        let mut engine = signed_in("t1");
        let epoch = engine.epoch();
        let due = at(850_000.0);
        let error = AuthError::new(ErrorCode::Network, "down");
        let (_, effects) = engine.refresh_answered(epoch, Err(error), due, 0.0);
        assert_eq!(
            effects,
            vec![
                Effect::Log(Decision::BackedOff(500.0)),
                Effect::ArmTimer(500.0),
                Effect::Emit(EventKind::RefreshFailed, Some("network")),
            ]
        );
        assert!(engine.has_session());
        assert_eq!(engine.token_need(at(850_100.0), false), TokenNeed::Use("t1".into(), 1), "backing off");
        assert_eq!(engine.token_need(at(850_600.0), false), TokenNeed::Refresh, "the backoff is over");
        // The second failure in a row waits longer.
        let (_, effects) = engine.refresh_answered(epoch, Err(AuthError::new(ErrorCode::Timeout, "")), due, 0.0);
        assert!(effects.contains(&Effect::ArmTimer(1_000.0)), "{effects:?}");
    }

    #[test]
    fn lost_answers_keep_the_session_for_any_length_of_outage() {
        let mut engine = signed_in("t1");
        let epoch = engine.epoch();
        // Answers lost again and again, long past the token's expiry: never a sign-out.
        for attempt in 0..50 {
            let now = at(850_000.0 + f64::from(attempt) * 30_000.0);
            let (_, effects) =
                engine.refresh_answered(epoch, Err(AuthError::new(ErrorCode::Network, "lost")), now, 0.5);
            assert!(!emitted(&effects).contains(&EventKind::SignedOut));
            assert!(effects.iter().any(|effect| matches!(effect, Effect::ArmTimer(ms) if *ms <= 30_000.0)));
        }
        assert_eq!(engine.status(), Status::SignedIn);
        let expired = at(2_500_000.0);
        assert_eq!(engine.token_need(expired, false), TokenNeed::Refresh, "an expired token is never sent");
        let (outcome, _) = engine.refresh_answered(epoch, Ok(tokens("t2", 900.0)), expired, 0.0);
        assert!(outcome.is_ok(), "the first answer that arrives resumes the session");
    }

    #[test]
    fn a_dead_cookie_signs_out_with_the_servers_reason_in_every_tab() {
        let mut engine = signed_in("t1");
        let epoch = engine.epoch();
        let dead = AuthError { reason: Some("reused".into()), ..AuthError::new(ErrorCode::SessionExpired, "dead") };
        let (_, effects) = engine.refresh_answered(epoch, Err(dead), at(900_000.0), 0.0);
        assert_eq!(
            effects,
            vec![
                Effect::CancelTimer,
                Effect::Post(TabMessage::SignedOut { reason: "reused".into() }),
                Effect::Emit(EventKind::SignedOut, Some("reused")),
            ]
        );
        assert_eq!(engine.status(), Status::SignedOut);
    }

    #[test]
    fn a_renewal_from_another_tab_is_adopted_and_ends_our_wait() {
        let mut engine = signed_in("t1");
        let (epoch, generation) = (engine.epoch(), engine.token_generation());
        let now = at(840_000.0);
        assert!(engine.settled_while_waiting(epoch, generation, now).is_none());
        let message = TabMessage::Tokens { response: tokens("t2", 900.0), new_login: false, age_ms: 5.0 };
        let effects = engine.tab_message(message, now);
        assert_eq!(emitted(&effects), [EventKind::Refreshed]);
        assert!(effects.contains(&Effect::Log(Decision::AdoptedTabToken)));
        assert!(posted(&effects).is_empty(), "no echo back to the tabs");
        assert!(matches!(engine.settled_while_waiting(epoch, generation, now), Some(Ok(()))));
        assert_eq!(engine.current_token().map(|(token, _)| token).as_deref(), Some("t2"));
    }

    #[test]
    fn an_older_or_echoed_token_from_another_tab_is_ignored() {
        let mut engine = signed_in("t1");
        let now = at(100_000.0);
        // Handed over by a tab that got t0 before our t1.
        let older = TabMessage::Tokens { response: tokens("t0", 900.0), new_login: false, age_ms: 200_000.0 };
        assert_eq!(engine.tab_message(older, now), vec![Effect::Log(Decision::IgnoredTabToken)]);
        let echoed = TabMessage::Tokens { response: tokens("t1", 900.0), new_login: false, age_ms: 100_000.0 };
        assert_eq!(engine.tab_message(echoed, now), vec![Effect::Log(Decision::IgnoredTabToken)]);
        assert_eq!(engine.current_token().map(|(token, _)| token).as_deref(), Some("t1"));
    }

    #[test]
    fn after_a_sign_out_only_a_new_login_from_another_tab_signs_in() {
        let mut engine = signed_in("t1");
        let _ = engine.end_session("logout", true);
        let crossed = TabMessage::Tokens { response: tokens("t2", 900.0), new_login: false, age_ms: 0.0 };
        assert_eq!(engine.tab_message(crossed, at(1.0)), vec![Effect::Log(Decision::IgnoredTabToken)]);
        assert_eq!(engine.status(), Status::SignedOut);
        let login = TabMessage::Tokens { response: tokens("t3", 900.0), new_login: true, age_ms: 0.0 };
        assert_eq!(emitted(&engine.tab_message(login, at(2.0))), [EventKind::SignedIn]);
        assert_eq!(engine.status(), Status::SignedIn);
    }

    #[test]
    fn a_live_token_is_handed_over_to_a_new_tab_with_its_age() {
        let mut holder = signed_in("t1");
        let effects = holder.tab_message(TabMessage::Ask, at(300_000.0));
        let [Effect::Post(handed), Effect::Log(Decision::HandedOverToken)] = effects.as_slice() else {
            panic!("{effects:?}")
        };
        assert_eq!(*handed, TabMessage::Tokens { response: tokens("t1", 900.0), new_login: false, age_ms: 300_000.0 });

        // The new tab, created later (its clocks differ), adopts it with the holder's expiry.
        let mut new_tab = Engine::new(60.0, true);
        let (epoch, generation) = (new_tab.epoch(), new_tab.token_generation());
        let later = Instant { monotonic: 7.0, wall: 1_700_000_300_000.0 };
        let effects = new_tab.tab_message(handed.clone(), later);
        assert_eq!(emitted(&effects), [EventKind::SignedIn]);
        assert!(effects.contains(&Effect::ArmTimer(540_000.0)), "renews when the holder would: {effects:?}");
        assert_eq!(new_tab.expires_at(), holder.expires_at());
        assert!(matches!(new_tab.settled_while_waiting(epoch, generation, later), Some(Ok(()))));
    }

    #[test]
    fn a_token_due_for_renewal_is_not_handed_over() {
        let mut holder = signed_in("t1");
        assert!(holder.tab_message(TabMessage::Ask, at(850_000.0)).is_empty());
        let mut nobody = Engine::new(60.0, true);
        assert!(nobody.tab_message(TabMessage::Ask, at(0.0)).is_empty());
    }

    #[test]
    fn a_sign_out_from_another_tab_ends_the_session_without_echoing_it() {
        let mut engine = signed_in("t1");
        let effects = engine.tab_message(TabMessage::SignedOut { reason: "logout".into() }, at(1.0));
        assert_eq!(effects, vec![Effect::CancelTimer, Effect::Emit(EventKind::SignedOut, Some("logout"))]);
    }

    #[test]
    fn waking_up_renews_a_due_token_and_rearms_the_timer_otherwise() {
        let engine = signed_in("t1");
        assert_eq!(engine.on_wake(at(850_000.0)), (true, vec![]));
        let (due, effects) = engine.on_wake(at(800_000.0));
        assert!(!due);
        assert_eq!(effects[0], Effect::ArmTimer(40_000.0));
    }

    #[test]
    fn without_auto_refresh_no_timer_is_armed() {
        let mut engine = Engine::new(60.0, false);
        let epoch = engine.epoch();
        let (_, effects) = engine.refresh_answered(epoch, Ok(tokens("t1", 900.0)), at(0.0), 0.0);
        assert!(!effects.iter().any(|effect| matches!(effect, Effect::ArmTimer(_))), "{effects:?}");
    }

    #[test]
    fn a_closed_engine_ignores_everything() {
        let mut engine = signed_in("t1");
        let epoch = engine.epoch();
        engine.close();
        let (outcome, effects) = engine.refresh_answered(epoch, Ok(tokens("t2", 900.0)), at(1.0), 0.0);
        assert!(outcome.is_err() && effects.is_empty());
        let login = TabMessage::Tokens { response: tokens("t3", 900.0), new_login: true, age_ms: 0.0 };
        assert!(engine.tab_message(login, at(2.0)).is_empty());
        assert!(!engine.has_session());
    }

    #[test]
    fn an_expired_token_after_a_successful_wait_is_an_error_not_a_token() {
        let mut engine = signed_in("t1");
        engine.invalidate(at(10.0));
        let after = engine.token_after_refresh(at(20.0), Ok(()), true);
        assert_eq!(after.map_err(|error| error.code), Err(ErrorCode::Network));
    }
}
