//! `loginWithWallet`: the server's challenge, signed by the application's wallet, then the same
//! sign-in path as a password login (same lock, events, tab messages and errors).

use alloc::rc::Rc;

use js_sys::{Function, Object, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::client::Inner;
use crate::error::{AuthError, ErrorCode};
use crate::js::{get_property, set_property};
use crate::protocol::{path, User};

/// Signs in with `{ account, signMessage }`. Rejections of `signMessage` (the user declined, the
/// wallet is locked) reach the caller unchanged; everything else rejects as `login` does.
pub(crate) async fn login_with_wallet(inner: &Rc<Inner>, options: &JsValue) -> Result<User, JsValue> {
    let account = get_property(options, "account");
    let sign_message = get_property(options, "signMessage").dyn_into::<Function>();
    let (true, Ok(sign_message)) = (account.is_string(), sign_message) else {
        return Err(invalid_options("loginWithWallet needs { account: string, signMessage: function }"));
    };
    let body = Object::new();
    set_property(&body, "account", &account);
    let challenge_url = inner.options.endpoint(path::WALLET_CHALLENGE);
    let answer = inner.transport.post(&challenge_url, Some(&body), None, false).await?;
    if !answer.is_success() {
        return Err(answer.into_error(ErrorCode::InvalidCredentials).into());
    }
    let message = get_property(&answer.body, "message");
    if !message.is_string() {
        return Err(AuthError::new(ErrorCode::InvalidResponse, "the challenge answer lacks message").into());
    }
    let signing = sign_message.call1(&JsValue::UNDEFINED, &message)?;
    let signature = JsFuture::from(Promise::resolve(&signing)).await?;
    if !signature.is_string() {
        return Err(invalid_options("signMessage must resolve to the base64 signature (a string)"));
    }
    set_property(&body, "message", &message);
    set_property(&body, "signature", &signature);
    Ok(inner.sign_in(path::WALLET_LOGIN, body).await?)
}

fn invalid_options(message: &str) -> JsValue {
    AuthError::new(ErrorCode::InvalidOptions, message).into()
}
