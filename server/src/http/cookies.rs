//! The two cookies: the HttpOnly refresh cookie (path `/auth`) and a script-readable indicator
//! (path `/`) that only says "a session may exist", so a page can skip a pointless refresh call.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::config::CookieSettings;

const REFRESH_NAME: &str = "reauth_refresh";
const INDICATOR_NAME: &str = "reauth_session";

/// Names and attributes of the cookies, from [`CookieSettings`].
#[derive(Clone, Debug)]
pub struct Cookies {
    refresh_name: String,
    secure: bool,
    domain: Option<String>,
}

impl Cookies {
    /// The cookie names and attributes for these settings.
    pub fn new(settings: &CookieSettings) -> Self {
        // The __Secure- prefix makes browsers refuse the cookie unless it is Secure and was set over
        // https, so a network attacker cannot plant one over plain http.
        let refresh_name = if settings.secure { format!("__Secure-{REFRESH_NAME}") } else { REFRESH_NAME.to_owned() };
        Self { refresh_name, secure: settings.secure, domain: settings.domain.clone() }
    }

    /// The refresh cookie's name.
    pub fn refresh_name(&self) -> &str {
        &self.refresh_name
    }

    /// The refresh token from the request's `Cookie` headers.
    pub fn refresh_token<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == self.refresh_name)
            .map(|(_, value)| value.trim_matches('"'))
    }

    /// `Set-Cookie` values for a fresh refresh token valid `max_age_secs`.
    pub fn issue(&self, refresh_token: &str, max_age_secs: i64) -> Vec<HeaderValue> {
        if max_age_secs <= 0 || refresh_token.is_empty() {
            // An already-expired cookie would only delete the one the browser has.
            return self.clear();
        }
        vec![
            self.build(&self.refresh_name, refresh_token, "/auth", true, max_age_secs),
            self.build(INDICATOR_NAME, "1", "/", false, max_age_secs),
        ]
    }

    /// `Set-Cookie` values that delete both cookies.
    pub fn clear(&self) -> Vec<HeaderValue> {
        vec![self.build(&self.refresh_name, "", "/auth", true, 0), self.build(INDICATOR_NAME, "", "/", false, 0)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_cookies_carry_the_prefix_and_every_attribute() {
        let cookies = Cookies::new(&CookieSettings { secure: true, domain: None });
        let set = cookies.issue("rt1.abc", 86_400);
        assert_eq!(
            set[0].to_str().unwrap(),
            "__Secure-reauth_refresh=rt1.abc; Path=/auth; Max-Age=86400; SameSite=Strict; HttpOnly; Secure"
        );
        assert_eq!(set[1].to_str().unwrap(), "reauth_session=1; Path=/; Max-Age=86400; SameSite=Strict; Secure");
    }

    #[test]
    fn a_non_positive_lifetime_clears_instead_of_setting() {
        let cookies = Cookies::new(&CookieSettings { secure: false, domain: Some("example.com".into()) });
        let set = cookies.issue("rt1.abc", 0);
        assert_eq!(set[0].to_str().unwrap(), "reauth_refresh=; Path=/auth; Max-Age=0; SameSite=Strict; HttpOnly; Domain=example.com");
    }

    #[test]
    fn the_refresh_token_is_found_among_other_cookies() {
        let cookies = Cookies::new(&CookieSettings { secure: false, domain: None });
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; reauth_refresh_x=no"));
        headers.append(header::COOKIE, HeaderValue::from_static("reauth_session=1;  reauth_refresh=rt1.xyz"));
        assert_eq!(cookies.refresh_token(&headers), Some("rt1.xyz"));
        assert_eq!(cookies.refresh_token(&HeaderMap::new()), None);
    }
}
