//! Small bindings and helpers around browser globals.

use alloc::boxed::Box;
use alloc::string::String;
use core::cell::{Ref, RefCell, RefMut};
use core::future::Future;
use core::pin::Pin;

use js_sys::{Promise, Reflect};
use wasm_bindgen::prelude::*;

use crate::timing::Instant;

#[wasm_bindgen]
extern "C" {
    /// `performance.now()`, bound as a global so it works in windows and workers alike.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;

    /// A `URL`, read through [`get_property`]: one import instead of one per getter.
    #[wasm_bindgen(js_name = URL)]
    pub(crate) type JsUrl;

    /// `new URL(input, base)`: `input` may be a string or a URL object (the constructor turns it
    /// into text as fetch does); `base` may be `undefined`.
    #[wasm_bindgen(constructor, catch, js_class = "URL")]
    pub(crate) fn new(input: &JsValue, base: &JsValue) -> Result<JsUrl, JsValue>;

    #[wasm_bindgen(js_name = Request)]
    type JsRequest;

    /// `new Request(input, init)`, the one Request constructor binding for every use.
    #[wasm_bindgen(constructor, catch, js_class = "Request")]
    fn new(input: &JsValue, init: &JsValue) -> Result<JsRequest, JsValue>;

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, delay_ms: i32) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// A `setTimeout` that is cancelled when dropped or replaced (what gloo-timers' `Timeout` does,
/// without its dependency on std). Every timer shares one closure type, so one set of shims.
#[must_use = "dropping a Timeout cancels it"]
pub(crate) struct Timeout {
    id: JsValue,
    _callback: Closure<dyn FnMut()>,
}

impl Timeout {
    /// Calls `callback` once after `ms` milliseconds; delays beyond `setTimeout`'s signed 32-bit
    /// range are capped (a larger one would fire at once).
    pub(crate) fn new(ms: u32, callback: Box<dyn FnOnce()>) -> Self {
        let mut callback = Some(callback);
        let closure = Closure::<dyn FnMut()>::new(move || {
            if let Some(callback) = callback.take() {
                callback();
            }
        });
        let delay = ms.min(i32::MAX as u32) as i32;
        Self { id: set_timeout(closure.as_ref().unchecked_ref(), delay), _callback: closure }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        clear_timeout(&self.id);
    }
}

/// An event listener that is removed when dropped: `free()` drops them all, and none can be left
/// behind by mistake. The same closure type as the tab channel's, so one set of shims.
#[must_use = "dropping an EventListener removes it"]
pub(crate) struct EventListener {
    target: web_sys::EventTarget,
    event: &'static str,
    callback: Closure<dyn FnMut(JsValue)>,
}

impl EventListener {
    /// Listens for `event` on `target`; `None` if the target refused the listener.
    pub(crate) fn new(target: &JsValue, event: &'static str, callback: Box<dyn FnMut(JsValue)>) -> Option<Self> {
        let target: web_sys::EventTarget = target.clone().unchecked_into();
        let callback = Closure::wrap(callback);
        target.add_event_listener_with_callback(event, callback.as_ref().unchecked_ref()).ok()?;
        Some(Self { target, event, callback })
    }
}

impl Drop for EventListener {
    fn drop(&mut self) {
        let _ = self.target.remove_event_listener_with_callback(self.event, self.callback.as_ref().unchecked_ref());
    }
}

/// `new Request(input, init)`; throws (as fetch would) for a bad input or init.
pub(crate) fn new_request(input: &JsValue, init: &JsValue) -> Result<web_sys::Request, JsValue> {
    JsRequest::new(input, init).map(JsCast::unchecked_into)
}

/// Reads a string property, `None` when it is absent or not a string.
pub(crate) fn get_string(target: &JsValue, key: &str) -> Option<String> {
    get_property(target, key).as_string()
}

/// `a` followed by `b`: what `[a, b].concat()` does, without the generic join code it pulls in.
pub(crate) fn concat(a: &str, b: &str) -> String {
    let mut joined = String::with_capacity(a.len() + b.len());
    joined.push_str(a);
    joined.push_str(b);
    joined
}

/// `RefCell` access without `RefCell::borrow`'s panic path: each `borrow()` call site carries its
/// own panic location and message code, about 40 of them here. A conflicting borrow is a bug (the
/// engine never holds one across an `await` or a callback) and traps, as the panic did.
pub(crate) trait CellExt<T> {
    fn read(&self) -> Ref<'_, T>;
    fn write(&self) -> RefMut<'_, T>;
}

impl<T> CellExt<T> for RefCell<T> {
    fn read(&self) -> Ref<'_, T> {
        self.try_borrow().unwrap_or_else(|_| trap())
    }

    fn write(&self) -> RefMut<'_, T> {
        self.try_borrow_mut().unwrap_or_else(|_| trap())
    }
}

#[cold]
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("RefCell borrowed twice");
}

/// Resolves after `ms` milliseconds (a `setTimeout`).
pub(crate) async fn sleep(ms: i32) {
    let waited = js_sys::Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(waited).await;
}

/// Both clocks at once; see [`Instant`].
pub(crate) fn now() -> Instant {
    Instant { monotonic: performance_now(), wall: js_sys::Date::now() }
}

/// Sets a property: on a plain object we created, or a setter that cannot throw (`onmessage`,
/// an `Error`'s `name`), so the result is ignored.
pub(crate) fn set_property(target: &JsValue, key: &str, value: &JsValue) {
    let _ = Reflect::set(target, &key.into(), value);
}

/// Reads a property, `undefined` when the target is not an object.
pub(crate) fn get_property(target: &JsValue, key: &str) -> JsValue {
    Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

type BoxedJsFuture = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// `future_to_promise` through one boxed type: every generic instance of it costs 1–3 KB of Wasm,
/// and each async method would otherwise make its own.
pub(crate) fn promise(future: impl Future<Output = Result<JsValue, JsValue>> + 'static) -> Promise {
    let boxed: BoxedJsFuture = Box::pin(future);
    wasm_bindgen_futures::future_to_promise(boxed)
}

/// `spawn_local` through one boxed type, for the same reason.
pub(crate) fn spawn(future: impl Future<Output = ()> + 'static) {
    let boxed: Pin<Box<dyn Future<Output = ()>>> = Box::pin(future);
    wasm_bindgen_futures::spawn_local(boxed);
}
