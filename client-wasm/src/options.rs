//! The constructor's options, read from a plain JS object and checked once.

use alloc::borrow::ToOwned;
use alloc::string::String;

use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{AuthError, ErrorCode};
use crate::js::{concat, get_property, get_string, JsUrl};

const DEFAULT_REFRESH_MARGIN_SECONDS: f64 = 60.0;
const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 10_000;

/// Checked configuration. Field docs match the `AuthClientOptions` TypeScript interface.
pub(crate) struct Options {
    /// `baseUrl` without a trailing slash; endpoints are appended to it.
    pub(crate) base_url: String,
    /// The origin of `baseUrl`: `auth.fetch` attaches the token to requests for it only.
    pub(crate) base_origin: String,
    /// The host of `baseUrl`: a page on the same host can read the server's session indicator cookie.
    pub(crate) base_host: String,
    pub(crate) refresh_margin_seconds: f64,
    pub(crate) request_timeout_ms: u32,
    /// How long to wait for another tab's refresh lock before stealing it.
    pub(crate) lock_timeout_ms: u32,
    pub(crate) auto_refresh: bool,
    pub(crate) cross_tab: bool,
    pub(crate) fetch: Option<Function>,
    /// `debug`: `true` (log to `console.debug`) or a function `(message, detail?)`; `None` when off.
    pub(crate) debug: Option<JsValue>,
}

impl Options {
    pub(crate) fn from_js(options: &JsValue) -> Result<Self, AuthError> {
        let base = get_property(options, "baseUrl")
            .as_string()
            .ok_or_else(|| invalid("baseUrl is required: the URL of the reauth server"))?;
        let url =
            JsUrl::new(&base.into(), &JsValue::UNDEFINED).map_err(|_| invalid("baseUrl must be an absolute URL"))?;
        let protocol = get_string(&url, "protocol");
        if !matches!(protocol.as_deref(), Some("https:" | "http:")) {
            return Err(invalid("baseUrl must be an http(s) URL"));
        }
        let base_url = get_string(&url, "href").unwrap_or_default().trim_end_matches('/').to_owned();

        let refresh_margin_seconds = number(options, "refreshMarginSeconds")?.unwrap_or(DEFAULT_REFRESH_MARGIN_SECONDS);
        let request_timeout_ms = number(options, "requestTimeoutMs")?.map_or(DEFAULT_REQUEST_TIMEOUT_MS, milliseconds);
        // Long enough for a healthy holder to finish its own (time-limited) refresh.
        let lock_timeout_ms =
            number(options, "lockTimeoutMs")?.map_or(request_timeout_ms.saturating_add(5_000), milliseconds);

        let fetch = get_property(options, "fetch");
        let fetch = if fetch.is_undefined() || fetch.is_null() {
            None
        } else {
            Some(fetch.dyn_into::<Function>().map_err(|_| invalid("fetch must be a function"))?)
        };

        let debug = get_property(options, "debug");
        let debug = if debug.is_function() || debug.as_bool() == Some(true) {
            Some(debug)
        } else if debug.is_undefined() || debug.is_null() || debug.as_bool() == Some(false) {
            None
        } else {
            return Err(invalid("debug must be a boolean or a function"));
        };

        Ok(Self {
            base_origin: get_string(&url, "origin").unwrap_or_default(),
            base_host: get_string(&url, "hostname").unwrap_or_default(),
            base_url,
            refresh_margin_seconds,
            request_timeout_ms,
            lock_timeout_ms,
            auto_refresh: flag(options, "autoRefresh"),
            cross_tab: flag(options, "crossTab"),
            fetch,
            debug,
        })
    }

    pub(crate) fn endpoint(&self, path: &str) -> String {
        concat(&self.base_url, path)
    }

    /// Names the lock and the channel after the server, so clients of different servers on one
    /// page never coordinate with each other.
    pub(crate) fn coordination_name(&self) -> String {
        concat("reauth:", &self.base_url)
    }
}

/// A non-negative finite number, or `None` when absent.
fn number(options: &JsValue, key: &str) -> Result<Option<f64>, AuthError> {
    let value = get_property(options, key);
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(number) if number.is_finite() && number >= 0.0 => Ok(Some(number)),
        _ => Err(invalid(&concat(key, " must be a non-negative number"))),
    }
}

/// A boolean option that defaults to `true`.
fn flag(options: &JsValue, key: &str) -> bool {
    get_property(options, key).as_bool().unwrap_or(true)
}

fn milliseconds(value: f64) -> u32 {
    // Saturating float-to-int: huge values become "practically never".
    value as u32
}

fn invalid(message: &str) -> AuthError {
    AuthError::new(ErrorCode::InvalidOptions, message)
}
