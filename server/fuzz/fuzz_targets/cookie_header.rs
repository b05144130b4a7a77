//! `Cookie` header parsing: each input line is one `Cookie` header (lines that are not valid header
//! values are dropped, as the HTTP parser would). Under every cookie setting (plain names over http,
//! `__Host-` names, `__Secure-` names with a domain; with and without the access cookie), the refresh
//! and access tokens read from them are values that were sent under the setting's cookie name,
//! never spanning two cookies; the refresh token is read only when every refresh cookie sent
//! carries the same value (the list logout ends is then that one token).
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use reauth_server::config::CookieSettings;
use reauth_server::http::cookies::Cookies;

fuzz_target!(|input: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in input.split(|byte| *byte == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(header::COOKIE, value);
        }
    }
    let sent = |text: &str| {
        text.is_empty()
            || headers
                .get_all(header::COOKIE)
                .iter()
                .any(|value| value.as_bytes().windows(text.len()).any(|window| window == text.as_bytes()))
    };
    for secure in [false, true] {
        for domain in [None, Some(reauth_fuzz::COOKIE_DOMAIN.to_owned())] {
            for access_cookie in [false, true] {
                let cookies = Cookies::new(&CookieSettings { secure, domain: domain.clone(), access_cookie });
                let read = [
                    (cookies.refresh_name(), cookies.refresh_token(&headers)),
                    (cookies.access_name().unwrap_or_default(), cookies.access_token(&headers)),
                ];
                for (name, token) in read {
                    let Some(token) = token else { continue };
                    assert!(!token.contains(';'), "{token:?} spans two cookies");
                    assert!(sent(token), "{token:?} was not sent");
                    assert!(sent(&format!("{name}=")), "{token:?} read as {name:?}, which was not sent");
                }
                let all_refresh = cookies.refresh_tokens(&headers);
                match cookies.refresh_token(&headers) {
                    Some(token) => assert_eq!(all_refresh, [token], "one refresh cookie, yet several values"),
                    None => assert_ne!(all_refresh.len(), 1, "one refresh value {all_refresh:?}, yet not read"),
                }
                if !access_cookie {
                    assert_eq!(cookies.access_token(&headers), None, "access cookie read while off");
                }
            }
        }
    }
});
