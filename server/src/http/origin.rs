//! The CSRF defence of every state-changing route: where a browser says the request comes from.
//!
//! A request with any method but GET/HEAD/OPTIONS passes when
//! 1. the browser marks it `Sec-Fetch-Site: same-origin` (a header page scripts cannot set), or
//! 2. its `Origin` equals, in scheme, host and port, one of the server's public origins
//!    (`REAUTH_PUBLIC_ORIGIN`, else the listening address's) or of `REAUTH_ALLOWED_ORIGINS`, or
//! 3. it carries neither `Origin` nor `Sec-Fetch-Site`: not a browser's cross-site request (every
//!    current browser sends `Origin` on cross-origin POSTs), but a client such as curl or another
//!    server, which holds no victim's cookies.
//!
//! Anything else (a foreign origin, `Origin: null` from a sandboxed frame or a redirect, a
//! `same-site` or `cross-site` request whose origin is not listed) gets 403 `forbidden_origin`
//! before any handler runs. The `Host` header is never trusted on its own: it is whatever the client
//! or a proxy put there.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::config::normalize_origin;
use crate::service::AuthService;

/// The verdict on a request's provenance.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Provenance {
    /// Same origin, a listed origin, or not a browser at all.
    Trusted,
    /// A browser request from elsewhere.
    Foreign,
}

/// Decides a request's provenance from its headers against the trusted origins.
pub(crate) fn provenance(headers: &HeaderMap, trusted_origins: &[String], allowed_origins: &[String]) -> Provenance {
    let fetch_site = headers.get("sec-fetch-site").and_then(|value| value.to_str().ok());
    if fetch_site == Some("same-origin") {
        return Provenance::Trusted;
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        // A browser that sends Sec-Fetch-Site sends Origin on every non-GET request too; without
        // either, this is not a browser.
        return if fetch_site.is_some() { Provenance::Foreign } else { Provenance::Trusted };
    };
    let origin = origin.to_str().ok().and_then(normalize_origin);
    match origin {
        Some(origin) if trusted_origins.iter().chain(allowed_origins).any(|trusted| *trusted == origin) => {
            Provenance::Trusted
        }
        _ => Provenance::Foreign,
    }
}

/// The middleware applying [`provenance`] to every state-changing request.
pub(super) async fn check_origin(State(service): State<AuthService>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    match provenance(request.headers(), &service.public_origins(), &service.settings().allowed_origins) {
        Provenance::Trusted => next.run(request).await,
        Provenance::Foreign => {
            let origin = request.headers().get(header::ORIGIN).and_then(|value| value.to_str().ok());
            tracing::warn!(origin, path = %request.uri().path(), "cross-origin request refused");
            ApiError::ForbiddenOrigin.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn verdict(pairs: &[(&'static str, &'static str)]) -> Provenance {
        provenance(
            &headers(pairs),
            &["https://auth.example.com".into()],
            &["https://app.example.com".into(), "http://localhost:5173".into()],
        )
    }

    #[test]
    fn listed_origins_pass_in_scheme_host_and_port() {
        assert_eq!(verdict(&[("origin", "https://auth.example.com")]), Provenance::Trusted);
        assert_eq!(verdict(&[("origin", "https://AUTH.example.com:443")]), Provenance::Trusted);
        assert_eq!(
            verdict(&[("origin", "https://app.example.com"), ("sec-fetch-site", "same-site")]),
            Provenance::Trusted
        );
        assert_eq!(verdict(&[("origin", "http://localhost:5173")]), Provenance::Trusted);
        for foreign in [
            "http://auth.example.com",
            "https://auth.example.com:8443",
            "http://localhost:5174",
            "null",
            "https://evil.example",
        ] {
            assert_eq!(verdict(&[("origin", foreign)]), Provenance::Foreign, "{foreign}");
        }
    }

    #[test]
    fn the_host_header_alone_proves_nothing() {
        assert_eq!(verdict(&[("origin", "https://evil.example"), ("host", "evil.example")]), Provenance::Foreign);
    }

    #[test]
    fn fetch_metadata_is_used_when_present() {
        assert_eq!(verdict(&[("sec-fetch-site", "same-origin")]), Provenance::Trusted);
        assert_eq!(verdict(&[("sec-fetch-site", "cross-site")]), Provenance::Foreign);
        assert_eq!(
            verdict(&[("sec-fetch-site", "same-site"), ("origin", "https://sub.example.com")]),
            Provenance::Foreign
        );
    }

    #[test]
    fn a_request_without_origin_or_fetch_metadata_is_not_a_browser_and_passes() {
        assert_eq!(verdict(&[]), Provenance::Trusted);
    }
}
