//! The constructor's options, read from a plain JS object and checked once.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Function, Reflect};
use wasm_bindgen::{JsCast, JsValue};

use crate::error::{AuthError, ErrorCode};
use crate::js::{concat, get_property, get_string, JsUrl};

const DEFAULT_REFRESH_MARGIN_SECONDS: f64 = 60.0;
const DEFAULT_REQUEST_TIMEOUT_MS: u32 = 10_000;

/// Checked configuration. Field docs match the `AuthClientOptions` TypeScript interface.
pub(crate) struct Options {
    /// `baseUrl` without a trailing slash; endpoints are appended to it.
    pub(crate) base_url: String,
    /// The origins `auth.fetch` attaches the token to: `baseUrl`'s, then those of `apiOrigins`.
    token_origins: Vec<String>,
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

        let token_origins = token_origins(get_string(&url, "origin").unwrap_or_default(), options)
            .ok_or_else(|| invalid("apiOrigins must be a list of origins like https://api.example.com (no paths)"))?;

        let debug = get_property(options, "debug");
        let debug = if debug.is_function() || debug.as_bool() == Some(true) {
            Some(debug)
        } else if debug.is_undefined() || debug.is_null() || debug.as_bool() == Some(false) {
            None
        } else {
            return Err(invalid("debug must be a boolean or a function"));
        };

        Ok(Self {
            token_origins,
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

    /// Whether a request to `href` (an absolute, normalised URL) may carry the access token.
    pub(crate) fn sends_token_to(&self, href: &str) -> bool {
        self.token_origins
            .iter()
            .any(|origin| href.strip_prefix(origin.as_str()).is_some_and(|rest| rest.starts_with('/')))
    }

    /// [`Self::sends_token_to`] for what `fetch` accepts as a URL: relative ones resolve against `baseUrl`.
    pub(crate) fn sends_token_to_url(&self, url: &JsValue) -> bool {
        JsUrl::new(url, &self.base_url.as_str().into())
            .ok()
            .and_then(|url| get_string(&url, "href"))
            .is_some_and(|href| self.sends_token_to(&href))
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

/// `baseUrl`'s origin followed by those of `apiOrigins`; `None` if `apiOrigins` is not a list of
/// http(s) origins and nothing more (a path, query or credentials would suggest a narrower scope
/// than the origin the token is then sent to). Origins come out as `URL.origin` spells them
/// (lower-case host, no default port).
fn token_origins(base_origin: String, options: &JsValue) -> Option<Vec<String>> {
    let mut origins = alloc::vec![base_origin];
    let list = get_property(options, "apiOrigins");
    if list.is_undefined() || list.is_null() {
        return Some(origins);
    }
    if !Array::is_array(&list) {
        return None;
    }
    // Indexed through `Reflect.get` (imported anyway) rather than js-sys's Array iterator: smaller.
    let count = get_property(&list, "length").as_f64().unwrap_or(0.0) as u32;
    for index in 0..count {
        // `new URL` turns a non-string into text first; none of those texts is an http(s) origin.
        let url = JsUrl::new(&Reflect::get(&list, &index.into()).ok()?, &JsValue::UNDEFINED).ok()?;
        let origin = get_string(&url, "origin")?;
        // An opaque origin ("null", for file: and the like) fails the scheme test.
        let is_http = origin.starts_with("https://") || origin.starts_with("http://");
        if !is_http || get_string(&url, "href")?.strip_prefix(origin.as_str()) != Some("/") {
            return None;
        }
        origins.push(origin);
    }
    Some(origins)
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
