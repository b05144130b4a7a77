//! Requests to the auth endpoints: one deadline per request, JSON in and out, statuses mapped to
//! [`AuthError`]s. API requests made through `auth.fetch` pass through [`Transport::fetch`] too.

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use core::cell::Cell;

use js_sys::{Function, Object, Promise, JSON};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, Headers, Request, Response};

use crate::error::{AuthError, ErrorCode};
use crate::js::{concat, get_property, new_request, set_property, Timeout};
use crate::protocol::{ErrorBody, TokenResponse};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch`, looked up at each call, so instrumentation installed after the client
    /// was created (error trackers, test spies) still sees its requests.
    #[wasm_bindgen(js_name = fetch)]
    fn global_fetch(request: &Request) -> Promise;
}

/// How requests leave the client: the application's own `fetch` if it passed one, else the global.
pub(crate) struct Transport {
    custom_fetch: Option<Function>,
    timeout_ms: u32,
}

/// A server's answer, read in full before the deadline.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: JsValue,
    retry_after: Option<f64>,
}

impl Transport {
    pub(crate) fn new(custom_fetch: Option<Function>, timeout_ms: u32) -> Self {
        Self { custom_fetch, timeout_ms }
    }

    /// Starts a request exactly as `window.fetch` would, through the configured implementation.
    pub(crate) fn fetch(&self, request: &Request) -> Promise {
        match &self.custom_fetch {
            // A throwing custom fetch becomes a rejected promise, as the real fetch never throws.
            Some(fetch) => match fetch.call1(&JsValue::UNDEFINED, request) {
                Ok(result) => Promise::resolve(&result),
                Err(thrown) => Promise::reject(&thrown),
            },
            None => global_fetch(request),
        }
    }

    /// POSTs to an auth endpoint and reads the whole answer, all within `timeout_ms`: a hung
    /// server is aborted through an `AbortController` so nobody waiting on it waits forever.
    /// `with_cookie` sends `credentials: "include"`, which only the cookie endpoints need.
    pub(crate) async fn post(
        &self,
        url: &str,
        json_body: Option<&Object>,
        bearer: Option<&str>,
        with_cookie: bool,
    ) -> Result<Answer, AuthError> {
        // A plain object as RequestInit: one `Reflect.set` import instead of one per setter.
        let init = Object::new();
        set_property(&init, "method", &"POST".into());
        let headers = Object::new();
        if let Some(body) = json_body {
            let text = JSON::stringify(body).map_err(|_| invalid_response("body is not JSON"))?;
            set_property(&init, "body", &text);
            set_property(&headers, "content-type", &"application/json".into());
        }
        if let Some(token) = bearer {
            set_property(&headers, "authorization", &bearer_value(token).into());
        }
        set_property(&init, "headers", &headers);
        set_property(&init, "credentials", &(if with_cookie { "include" } else { "omit" }).into());

        let controller = AbortController::new().ok();
        if let Some(controller) = &controller {
            set_property(&init, "signal", &get_property(controller, "signal"));
        }
        let timed_out = Rc::new(Cell::new(false));
        let _deadline = controller.map(|controller| {
            let timed_out = timed_out.clone();
            Timeout::new(
                self.timeout_ms,
                Box::new(move || {
                    timed_out.set(true);
                    controller.abort();
                }),
            )
        });
        let failed = |_| {
            if timed_out.get() {
                AuthError::new(ErrorCode::Timeout, "the server did not answer in time")
            } else {
                AuthError::new(ErrorCode::Network, "the server could not be reached")
            }
        };

        let request = new_request(&url.into(), &init).map_err(failed)?;
        let response: Response = JsFuture::from(self.fetch(&request))
            .await
            .map_err(failed)?
            .dyn_into()
            .map_err(|_| invalid_response("fetch did not resolve to a Response"))?;
        let status = get_property(&response, "status").as_f64().unwrap_or(0.0) as u16;
        // Retry-After is readable cross-origin only if the server lists it in
        // Access-Control-Expose-Headers; without it backoff alone decides.
        let retry_after = get_property(&response, "headers")
            .unchecked_into::<Headers>()
            .get("retry-after")
            .ok()
            .flatten()
            .and_then(|value| value.trim().parse::<u32>().ok())
            .map(f64::from);
        // 204 has no body to parse; calling json() on it would leave a rejected promise behind.
        let parsing = if status == 204 { None } else { response.json().ok() };
        let body = match parsing {
            Some(parsing) => match JsFuture::from(parsing).await {
                Ok(body) => body,
                Err(error) if timed_out.get() => return Err(failed(error)),
                // Not JSON (a proxy's HTML error page, say): the status alone decides.
                Err(_) => JsValue::NULL,
            },
            None => JsValue::NULL,
        };
        Ok(Answer { status, body, retry_after })
    }
}

impl Answer {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The token body of a successful login or refresh.
    pub(crate) fn tokens(self) -> Result<TokenResponse, AuthError> {
        if !self.is_success() {
            return Err(self.into_error(ErrorCode::Unauthenticated));
        }
        TokenResponse::from_js(&self.body)
            .ok_or_else(|| invalid_response("the token answer lacks access_token, expires_in or user"))
    }

    /// The error this answer stands for; `on_unauthorized` is what a 401 means at this endpoint.
    pub(crate) fn into_error(self, on_unauthorized: ErrorCode) -> AuthError {
        let body = ErrorBody::from_js(&self.body);
        let code = match self.status {
            401 => on_unauthorized,
            403 => ErrorCode::Forbidden,
            429 => ErrorCode::RateLimited,
            503 => ErrorCode::TemporarilyUnavailable,
            _ => ErrorCode::HttpError,
        };
        let message =
            body.error_description.or(body.error).unwrap_or_else(|| String::from("unexpected answer from the server"));
        AuthError { code, message, status: Some(self.status), retry_after: self.retry_after, reason: body.reason }
    }
}

pub(crate) fn bearer_value(token: &str) -> String {
    concat("Bearer ", token)
}

fn invalid_response(message: &str) -> AuthError {
    AuthError::new(ErrorCode::InvalidResponse, message)
}
