//! The cookies: the HttpOnly refresh cookie, a script-readable indicator (path `/`) that only says
//! "a session may exist", so a page can skip a pointless refresh call, and, when
//! [`CookieSettings::access_cookie`] is on, an HttpOnly access cookie (path `/`) for server-rendered
//! pages. The refresh cookie's path is `/auth`, or `/` with the access cookie, because the pages
//! behind [`crate::edge::SilentRefreshLayer`] must see it to refresh.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::config::CookieSettings;
use crate::service::Issued;

const REFRESH_NAME: &str = "reauth_refresh";
const INDICATOR_NAME: &str = "reauth_session";
const ACCESS_NAME: &str = "reauth_access";
const AUTH_PATH: &str = "/auth";
const ROOT_PATH: &str = "/";

/// Names and attributes of the cookies, from [`CookieSettings`].
#[derive(Clone, Debug)]
pub struct Cookies {
    refresh_name: String,
    refresh_path: &'static str,
    access_name: String,
    access_enabled: bool,
    secure: bool,
    domain: Option<String>,
}

impl Cookies {
    /// The cookie names and attributes for these settings.
    pub fn new(settings: &CookieSettings) -> Self {
        // The __Secure- prefix makes browsers refuse the cookie unless it is Secure and was set over
        // https, so a network attacker cannot plant one over plain http.
        let name = |base: &str| if settings.secure { format!("__Secure-{base}") } else { base.to_owned() };
        Self {
            refresh_name: name(REFRESH_NAME),
            refresh_path: if settings.access_cookie { ROOT_PATH } else { AUTH_PATH },
            access_name: name(ACCESS_NAME),
            access_enabled: settings.access_cookie,
            secure: settings.secure,
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

    /// The refresh token from the request's `Cookie` headers.
    pub fn refresh_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let mut values = cookie_values(headers, &self.refresh_name);
        // After the access cookie is switched on or off, a stale refresh cookie can linger at the
        // other path until it expires; reading it would present a rotated token and revoke the
        // session as reused. Browsers list longer paths first (RFC 6265 §5.4), so ours is the
        // first when it lives at `/auth` and the last when it lives at `/`.
        if self.refresh_path == ROOT_PATH {
            values.last()
        } else {
            values.next()
        }
    }

    /// The access token from the request's `Cookie` headers (`None` unless the cookie is enabled).
    pub fn access_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        cookie_values(headers, self.access_name()?).next().filter(|token| !token.is_empty())
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
    /// refresh cookie left at the other path by an earlier setting.
    pub fn clear(&self) -> Vec<HeaderValue> {
        let other_refresh_path = if self.refresh_path == ROOT_PATH { AUTH_PATH } else { ROOT_PATH };
        vec![
            self.build(&self.refresh_name, "", self.refresh_path, true, 0),
            self.build(INDICATOR_NAME, "", ROOT_PATH, false, 0),
            self.build(&self.access_name, "", ROOT_PATH, true, 0),
            self.build(&self.refresh_name, "", other_refresh_path, true, 0),
        ]
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
    fn secure_cookies_carry_the_prefix_and_every_attribute() {
        let cookies = Cookies::new(&settings(true, None, false));
        assert_eq!(
            lines(&cookies.issue(&issued(86_400, 900))),
            [
                "__Secure-reauth_refresh=rt1.abc; Path=/auth; Max-Age=86400; SameSite=Strict; HttpOnly; Secure",
                "reauth_session=1; Path=/; Max-Age=86400; SameSite=Strict; Secure",
            ]
        );
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
    fn a_stale_refresh_cookie_at_the_other_path_is_never_read() {
        // Browsers send the cookie with the longer path first.
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("reauth_refresh=at-auth-path; reauth_refresh=at-root-path"),
        );
        assert_eq!(Cookies::new(&settings(false, None, false)).refresh_token(&headers), Some("at-auth-path"));
        assert_eq!(Cookies::new(&settings(false, None, true)).refresh_token(&headers), Some("at-root-path"));
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
