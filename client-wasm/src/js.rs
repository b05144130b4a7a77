//! Small bindings and helpers around browser globals.

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::timing::Instant;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, bound as a global so it works in windows and workers alike.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// `String(value)`: how fetch itself turns a URL object into text.
    #[wasm_bindgen(js_name = String)]
    pub(crate) fn to_js_string(value: &JsValue) -> String;
}

/// Both clocks at once; see [`Instant`].
pub(crate) fn now() -> Instant {
    Instant { monotonic: performance_now(), wall: js_sys::Date::now() }
}

/// Sets a property on a plain object we created; that cannot throw, so the result is ignored.
pub(crate) fn set_property(target: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &key.into(), value);
}

/// Reads a property, `undefined` when the target is not an object.
pub(crate) fn get_property(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}
