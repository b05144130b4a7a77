//! `GET /account`: a page rendered on the server, with no script, behind [`SilentRefreshLayer`].
//! Reloading it after the access token expired renders it all the same: the layer refreshes on the
//! same request.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use super::error::ApiError;
use super::extract::{AuthRejection, AuthenticatedUser};
use crate::edge::SilentRefreshLayer;
use crate::service::{unix_now, AuthService};

/// The demo's sign-in page (the static page served at `/`).
const LOGIN_PATH: &str = "/";

pub(super) fn router(service: AuthService) -> Router {
    let silent_refresh = SilentRefreshLayer::local(service.clone())
        .login_path(LOGIN_PATH)
        .unwrap_or_else(|_| unreachable!("{LOGIN_PATH:?} is a path on this site"));
    Router::new()
        .route("/account", get(account))
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(silent_refresh)
        .layer(CatchPanicLayer::custom(super::panic_response))
        .layer(TraceLayer::new_for_http())
        .with_state(service)
}

async fn account(State(service): State<AuthService>, user: Result<AuthenticatedUser, AuthRejection>) -> Response {
    // Signed out (or never signed in): a page sends people to sign in rather than showing a 401.
    let Ok(AuthenticatedUser { claims }) = user else {
        return Redirect::to(LOGIN_PATH).into_response();
    };
    let user = match service.user(&claims.sub).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to(LOGIN_PATH).into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    let page = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Account · reauth</title></head>
<body>
<h1>Signed in as <span id="username">{username}</span></h1>
<dl>
<dt>Session</dt><dd id="session">{session}</dd>
<dt>Access token expires</dt><dd id="expires"><time data-unix="{exp}">{exp}</time> (in {remaining} s)</dd>
</dl>
<p>Rendered on the server; no script on this page. <a href="/">Back</a></p>
</body>
</html>
"#,
        username = escape_html(&user.username),
        session = escape_html(&claims.sid),
        exp = claims.exp,
        remaining = claims.exp - unix_now(),
    );
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(escape_html("alice"), "alice");
    }
}
