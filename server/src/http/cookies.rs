//! The cookies: the HttpOnly refresh cookie, a script-readable indicator (path `/`) that only says
//! "a session may exist", so a page can skip a pointless refresh call, and, when
//! [`CookieSettings::access_cookie`] is on, an HttpOnly access cookie (path `/`) for server-rendered
//! pages.
//!
//! **Names.** With `Secure` cookies and no `Domain` (the production default), the refresh and access
//! cookies carry the `__Host-` prefix: the browser then accepts them only host-only, `Secure`, with
//! `Path=/`, so a page on a sibling subdomain cannot plant a cookie of the same name (the attack the
//! `__Secure-` prefix alone allows: `Domain=.example.com` and a longer `Path`, sent first). The
//! refresh cookie's path is therefore `/`. With `REAUTH_COOKIE_DOMAIN` (cookies shared by
//! subdomains) the prefix is `__Secure-`, and over plain http there is none; there the refresh path
//! is `/auth`, or `/` with the access cookie, because the pages behind
//! [`crate::edge::SilentRefreshLayer`] must see it to refresh.
//!
//! **Duplicates.** A request carrying one of these cookies twice with different values is either a
//! stale cookie at the other path or a planted one; nothing tells which is ours, so neither is used:
//! [`CookieValue::Conflicting`].

use axum::http::{header, HeaderMap, HeaderValue};

use crate::config::CookieSettings;
use crate::service::Issued;

const REFRESH_NAME: &str = "reauth_refresh";
const INDICATOR_NAME: &str = "reauth_session";
const ACCESS_NAME: &str = "reauth_access";
const AUTH_PATH: &str = "/auth";
const ROOT_PATH: &str = "/";

/// One cookie as the request carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CookieValue<'a> {
    /// Not sent (or sent empty).
    Absent,
    /// Sent once, or several times with the same value.
    One(&'a str),
    /// Sent several times with different values: a stale cookie at another path, or one planted by
    /// a sibling subdomain. Neither is used.
    Conflicting,
}

impl<'a> CookieValue<'a> {
    /// The value when there is exactly one.
    pub fn single(self) -> Option<&'a str> {
        match self {
            Self::One(value) => Some(value),
            Self::Absent | Self::Conflicting => None,
        }
    }
}

/// Names and attributes of the cookies, from [`CookieSettings`].
#[derive(Clone, Debug)]
pub struct Cookies {
    refresh_name: String,
    refresh_path: &'static str,
    access_name: String,
    access_enabled: bool,
    secure: bool,
    /// `__Host-` names: one path (`/`), no `Domain`.
    host_only: bool,
    domain: Option<String>,
}

impl Cookies {
    /// The cookie names and attributes for these settings.
    pub fn new(settings: &CookieSettings) -> Self {
        // __Host-: Secure, set over https, host-only, Path=/ (no sibling can plant it). __Secure-
        // (with a Domain): Secure and set over https, so at least no network attacker can plant it.
        let host_only = settings.secure && settings.domain.is_none();
        let name = |base: &str| match (host_only, settings.secure) {
            (true, _) => format!("__Host-{base}"),
            (false, true) => format!("__Secure-{base}"),
            (false, false) => base.to_owned(),
        };
        Self {
            refresh_name: name(REFRESH_NAME),
            refresh_path: if host_only || settings.access_cookie { ROOT_PATH } else { AUTH_PATH },
            access_name: name(ACCESS_NAME),
            access_enabled: settings.access_cookie,
            secure: settings.secure,
            host_only,
            domain: settings.domain.clone(),
        }
    }

    /// The refresh cookie's name.
    pub fn refresh_name(&self) -> &str {
        &self.refresh_name
    }

    /// The access cookie's name, when that cookie is enabled.
    pub fn access_name(&self) -> Option<&str> {
        self.access_enabled.then_some(self.access_name.as_str())
    }

    /// The refresh cookie as the request carries it.
    pub fn refresh_cookie<'a>(&self, headers: &'a HeaderMap) -> CookieValue<'a> {
        single_cookie(headers, &self.refresh_name)
    }

    /// The refresh token from the request's `Cookie` headers, when it is sent exactly once.
    pub fn refresh_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        self.refresh_cookie(headers).single()
    }

    /// Every distinct refresh token the request carries (logout ends the sessions of them all).
    pub fn refresh_tokens<'a>(&self, headers: &'a HeaderMap) -> Vec<&'a str> {
        let mut tokens: Vec<&str> =
            cookie_values(headers, &self.refresh_name).filter(|value| !value.is_empty()).collect();
        tokens.dedup();
        tokens
    }

    /// The access token from the request's `Cookie` headers (`None` unless the cookie is enabled,
    /// and unless it is sent exactly once).
    pub fn access_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        single_cookie(headers, self.access_name()?).single()
    }

    /// `Set-Cookie` values deleting a refresh cookie of ours left at the path we no longer use (after
    /// the access cookie was switched on or off): the answer to [`CookieValue::Conflicting`] that
    /// removes a stale duplicate and leaves the cookie in use, and any planted one, alone.
    pub fn clear_other_path(&self) -> Vec<HeaderValue> {
        if self.host_only {
            return Vec::new(); // a __Host- cookie has one path
        }
        vec![self.build(&self.refresh_name, "", self.other_refresh_path(), true, 0)]
    }

    fn other_refresh_path(&self) -> &'static str {
        if self.refresh_path == ROOT_PATH {
            AUTH_PATH
        } else {
            ROOT_PATH
        }
    }

    /// `Set-Cookie` values for freshly issued tokens: refresh and indicator cookies valid as long as
    /// the refresh token, and the access cookie (when enabled) as long as the access token.
    pub fn issue(&self, issued: &Issued) -> Vec<HeaderValue> {
        if issued.refresh_expires_in <= 0 || issued.refresh_token.is_empty() {
            // An already-expired cookie would only delete the one the browser has.
            return self.clear();
        }
        let mut cookies = vec![
            self.build(&self.refresh_name, &issued.refresh_token, self.refresh_path, true, issued.refresh_expires_in),
            self.build(INDICATOR_NAME, "1", ROOT_PATH, false, issued.refresh_expires_in),
        ];
        if self.access_enabled && issued.expires_in > 0 && !issued.access_token.is_empty() {
            cookies.push(self.build(&self.access_name, &issued.access_token, ROOT_PATH, true, issued.expires_in));
        }
        cookies
    }

    /// `Set-Cookie` values that delete every cookie reauth sets, whatever the settings, including a
    /// refresh cookie left at the other path by an earlier setting (or, with `__Host-` names, the
    /// `__Secure-` cookies of earlier versions).
    pub fn clear(&self) -> Vec<HeaderValue> {
        let mut cookies = vec![
            self.build(&self.refresh_name, "", self.refresh_path, true, 0),
            self.build(INDICATOR_NAME, "", ROOT_PATH, false, 0),
            self.build(&self.access_name, "", ROOT_PATH, true, 0),
        ];
        if self.host_only {
            // The __Secure- cookies of versions before the __Host- names, never read any more.
            let legacy = |base: &str| format!("__Secure-{base}");
            cookies.push(self.build(&legacy(REFRESH_NAME), "", AUTH_PATH, true, 0));
            cookies.push(self.build(&legacy(REFRESH_NAME), "", ROOT_PATH, true, 0));
            cookies.push(self.build(&legacy(ACCESS_NAME), "", ROOT_PATH, true, 0));
        } else {
            cookies.push(self.build(&self.refresh_name, "", self.other_refresh_path(), true, 0));
        }
        cookies
    }

    fn build(&self, name: &str, value: &str, path: &str, http_only: bool, max_age_secs: i64) -> HeaderValue {
        let mut cookie = format!("{name}={value}; Path={path}; Max-Age={max_age_secs}; SameSite=Strict");
        if http_only {
            cookie.push_str("; HttpOnly");
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(domain) = &self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        HeaderValue::try_from(cookie).unwrap_or_else(|_| unreachable!("tokens and configured domains are header-safe"))
    }
}

fn single_cookie<'a>(headers: &'a HeaderMap, name: &str) -> CookieValue<'a> {
    let mut values = cookie_values(headers, name).filter(|value| !value.is_empty());
    match values.next() {
        None => CookieValue::Absent,
        Some(first) if values.all(|other| other == first) => CookieValue::One(first),
        Some(_) => CookieValue::Conflicting,
    }
}

/// The values of every cookie called `name` in the request's `Cookie` headers, in order.
fn cookie_values<'h: 'n, 'n>(headers: &'h HeaderMap, name: &'n str) -> impl Iterator<Item = &'h str> + 'n {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(cookie_name, _)| *cookie_name == name)
        .map(|(_, value)| value.trim_matches('"'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::UserView;

    fn settings(secure: bool, domain: Option<&str>, access_cookie: bool) -> CookieSettings {
        CookieSettings { secure, domain: domain.map(str::to_owned), access_cookie }
    }

    fn issued(refresh_expires_in: i64, expires_in: i64) -> Issued {
        Issued {
            access_token: "at.jwt.sig".into(),
            expires_in,
            refresh_token: "rt1.abc".into(),
            refresh_expires_in,
            user: UserView { id: "u1".into(), username: "alice".into() },
            session_id: "s1".into(),
        }
    }

    fn lines(set: &[HeaderValue]) -> Vec<&str> {
        set.iter().map(|value| value.to_str().unwrap()).collect()
    }

    #[test]
    fn secure_host_only_cookies_carry_the_host_prefix_at_the_root_path() {
        let cookies = Cookies::new(&settings(true, None, false));
        assert_eq!(
            lines(&cookies.issue(&issued(86_400, 900))),
            [
                "__Host-reauth_refresh=rt1.abc; Path=/; Max-Age=86400; SameSite=Strict; HttpOnly; Secure",
                "reauth_session=1; Path=/; Max-Age=86400; SameSite=Strict; Secure",
            ]
        );
        let cleared = lines(&cookies.clear()).join("\n");
        assert!(!cleared.contains("__Host-reauth_refresh=; Path=/auth"), "{cleared}");
        assert!(cleared.contains("__Secure-reauth_refresh=; Path=/auth; Max-Age=0"), "{cleared}");
    }

    #[test]
    fn secure_cookies_with_a_domain_carry_the_secure_prefix() {
        let cookies = Cookies::new(&settings(true, Some("example.com"), false));
        assert_eq!(
            lines(&cookies.issue(&issued(86_400, 900)))[0],
            "__Secure-reauth_refresh=rt1.abc; Path=/auth; Max-Age=86400; SameSite=Strict; HttpOnly; Secure; Domain=example.com"
        );
    }

    #[test]
    fn a_cookie_sent_twice_with_different_values_is_not_used() {
        let cookies = Cookies::new(&settings(false, None, true));
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("reauth_refresh=planted; reauth_refresh=ours; reauth_access=a1; reauth_access=a2"),
        );
        assert_eq!(cookies.refresh_cookie(&headers), CookieValue::Conflicting);
        assert_eq!(cookies.refresh_token(&headers), None);
        assert_eq!(cookies.access_token(&headers), None);
        assert_eq!(cookies.refresh_tokens(&headers), ["planted", "ours"]);
        headers.insert(header::COOKIE, HeaderValue::from_static("reauth_refresh=same; reauth_refresh=same"));
        assert_eq!(cookies.refresh_cookie(&headers), CookieValue::One("same"));
    }

    #[test]
    fn the_access_cookie_mode_adds_an_httponly_access_cookie_and_widens_the_refresh_path() {
        let cookies = Cookies::new(&settings(true, Some("example.com"), true));
        assert_eq!(
            lines(&cookies.issue(&issued(86_400, 900))),
            [
                "__Secure-reauth_refresh=rt1.abc; Path=/; Max-Age=86400; SameSite=Strict; HttpOnly; Secure; Domain=example.com",
                "reauth_session=1; Path=/; Max-Age=86400; SameSite=Strict; Secure; Domain=example.com",
                "__Secure-reauth_access=at.jwt.sig; Path=/; Max-Age=900; SameSite=Strict; HttpOnly; Secure; Domain=example.com",
            ]
        );
    }

    #[test]
    fn a_non_positive_lifetime_clears_instead_of_setting() {
        let cookies = Cookies::new(&settings(false, Some("example.com"), true));
        let set = cookies.issue(&issued(0, 900));
        assert!(lines(&set).iter().all(|line| line.contains("=; ") && line.contains("Max-Age=0")), "{set:?}");
        assert_eq!(
            set[0].to_str().unwrap(),
            "reauth_refresh=; Path=/; Max-Age=0; SameSite=Strict; HttpOnly; Domain=example.com"
        );
        let expired_access = cookies.issue(&issued(86_400, 0));
        assert!(lines(&expired_access).iter().all(|line| !line.starts_with("reauth_access")), "{expired_access:?}");
    }

    #[test]
    fn clearing_deletes_every_cookie_at_both_refresh_paths() {
        for access_cookie in [false, true] {
            let set = Cookies::new(&settings(false, None, access_cookie)).clear();
            let mut deleted: Vec<(&str, &str)> = lines(&set)
                .iter()
                .map(|line| {
                    assert!(line.contains("Max-Age=0"), "{line}");
                    let name = line.split('=').next().unwrap();
                    (name, line.split("Path=").nth(1).unwrap().split(';').next().unwrap())
                })
                .collect();
            deleted.sort_unstable();
            assert_eq!(
                deleted,
                [("reauth_access", "/"), ("reauth_refresh", "/"), ("reauth_refresh", "/auth"), ("reauth_session", "/")]
            );
        }
    }

    #[test]
    fn the_refresh_token_is_found_among_other_cookies() {
        let cookies = Cookies::new(&settings(false, None, false));
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; reauth_refresh_x=no"));
        headers.append(header::COOKIE, HeaderValue::from_static("reauth_session=1;  reauth_refresh=rt1.xyz"));
        assert_eq!(cookies.refresh_token(&headers), Some("rt1.xyz"));
        assert_eq!(cookies.refresh_token(&HeaderMap::new()), None);
        assert_eq!(cookies.access_token(&headers), None);
    }

    #[test]
    fn the_access_token_is_read_only_when_the_access_cookie_is_enabled() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("reauth_access=at.jwt.sig; reauth_refresh=rt1.xyz"));
        assert_eq!(Cookies::new(&settings(false, None, true)).access_token(&headers), Some("at.jwt.sig"));
        assert_eq!(Cookies::new(&settings(false, None, false)).access_token(&headers), None);
        headers.insert(header::COOKIE, HeaderValue::from_static("reauth_access="));
        assert_eq!(Cookies::new(&settings(false, None, true)).access_token(&headers), None);
    }
}
