//! `Cookie` header parsing: each input line is one `Cookie` header (lines that are not valid header
//! values are dropped, as the HTTP parser would). Under every cookie setting, the refresh and access
//! tokens read from them are values that were sent, never spanning two cookies.
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
    let sent = |token: &str| {
        token.is_empty()
            || headers
                .get_all(header::COOKIE)
                .iter()
                .any(|value| value.as_bytes().windows(token.len()).any(|window| window == token.as_bytes()))
    };
    for secure in [false, true] {
        for access_cookie in [false, true] {
            let cookies = Cookies::new(&CookieSettings { secure, domain: None, access_cookie });
            for token in [cookies.refresh_token(&headers), cookies.access_token(&headers)].into_iter().flatten() {
                assert!(!token.contains(';'), "{token:?} spans two cookies");
                assert!(sent(token), "{token:?} was not sent");
            }
        }
    }
});
