//! Interoperability with `jsonwebtoken`, what a Rust service downstream of reauth verifies tokens
//! with: our tokens verify with it from the JWKS alone, tokens it makes the wrong way are refused
//! by our verifier, and the example service (examples/verify_with_jsonwebtoken.rs) works against a
//! live server through a key rotation.

use std::future::IntoFuture as _;
use std::sync::{Arc, Once};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use ed25519_dalek::SigningKey;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, KeyUtils};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::binary;
use crate::helpers::TestServer;
use crate::traffic::kid_of;

#[path = "../../examples/verify_with_jsonwebtoken.rs"]
#[allow(dead_code)]
mod example;

use example::ReauthKeys;

type SignFn = Box<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

/// An Ed25519 or HMAC signer for `jsonwebtoken`, to forge tokens with.
struct TestSigner {
    algorithm: Algorithm,
    sign: SignFn,
}

impl signature::Signer<Vec<u8>> for TestSigner {
    fn try_sign(&self, message: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok((self.sign)(message))
    }
}

impl JwtSigner for TestSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

fn test_signer(algorithm: &Algorithm, key: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    let algorithm = *algorithm;
    let sign: SignFn = match algorithm {
        Algorithm::EdDSA => {
            let signing = SigningKey::from_pkcs8_der(key.as_bytes()).map_err(|_| ErrorKind::InvalidEddsaKey)?;
            Box::new(move |message| signature::Signer::sign(&signing, message).to_bytes().to_vec())
        }
        Algorithm::HS256 => {
            use hmac::Mac as _;
            let secret = key.as_bytes().to_vec();
            Box::new(move |message| {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
                mac.update(message);
                mac.finalize().into_bytes().to_vec()
            })
        }
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    Ok(Box::new(TestSigner { algorithm, sign }))
}

/// The example's verify-only provider, plus the signers the forgeries need.
static TEST_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: test_signer,
    verifier_factory: example::crypto::new_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn install_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| TEST_PROVIDER.install_default().unwrap());
}

/// The server's own signing key, as `jsonwebtoken` takes it.
fn server_key(server: &TestServer) -> (EncodingKey, String) {
    let pem = std::fs::read_to_string(server.key_path()).unwrap();
    let signing = SigningKey::from_pkcs8_pem(&pem).unwrap();
    let der = signing.to_pkcs8_der().unwrap();
    (EncodingKey::from_ed_der(der.as_bytes()), reauth_server::Keys::load(&server.key_path()).unwrap().kid().to_owned())
}

fn claims_of(access_token: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(access_token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

fn header(algorithm: Algorithm, typ: &str, kid: &str) -> Header {
    let mut header = Header::new(algorithm);
    header.typ = Some(typ.to_owned());
    header.kid = Some(kid.to_owned());
    header
}

#[tokio::test]
async fn our_access_tokens_verify_with_jsonwebtoken_from_the_jwks_alone() {
    install_provider();
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let keys = ReauthKeys::fetch(&server.url(""), "reauth", "reauth").await.unwrap();
    let claims = keys.verify(&session.access_token).await.unwrap();
    assert_eq!(claims.sub, session.body["user"]["id"].as_str().unwrap());
    assert_eq!(claims.sid, claims_of(&session.access_token)["sid"].as_str().unwrap());
    // And jsonwebtoken holds us to issuer and audience.
    let billing = ReauthKeys::fetch(&server.url(""), "reauth", "billing").await.unwrap();
    assert!(billing.verify(&session.access_token).await.is_err());
}

#[tokio::test]
async fn tokens_jsonwebtoken_makes_the_wrong_way_are_refused_by_our_verifier() {
    install_provider();
    let server = TestServer::start().await;
    let session = server.signed_in("alice").await;
    let claims = claims_of(&session.access_token);
    let (our_key, our_kid) = server_key(&server);
    let jwks: Value = server.http.get(server.url("/.well-known/jwks.json")).send().await.unwrap().json().await.unwrap();
    let public_key = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let another_key = {
        let der = SigningKey::from_bytes(&[7; 32]).to_pkcs8_der().unwrap();
        EncodingKey::from_ed_der(der.as_bytes())
    };
    let encode =
        |header: &Header, claims: &Value, key: &EncodingKey| jsonwebtoken::encode(header, claims, key).unwrap();

    // The control: made right with jsonwebtoken, our verifier accepts it.
    let right = encode(&header(Algorithm::EdDSA, "at+jwt", &our_kid), &claims, &our_key);
    assert!(server.service().verify_access_token(&right).is_ok(), "a well-made token is accepted");
    assert_eq!(server.get_bearer("/api/me", &right).await.status(), StatusCode::OK);

    let alg_none = {
        // jsonwebtoken has no `none`: its EdDSA header, renamed, and no signature.
        let signed = encode(&header(Algorithm::EdDSA, "at+jwt", &our_kid), &claims, &our_key);
        let mut parts = signed.split('.');
        let mut header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
        header["alg"] = json!("none");
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(header.to_string()), parts.next().unwrap())
    };
    let hs256_with_our_public_key =
        encode(&header(Algorithm::HS256, "at+jwt", &our_kid), &claims, &EncodingKey::from_secret(&public_key));
    let typ_jwt = encode(&header(Algorithm::EdDSA, "JWT", &our_kid), &claims, &our_key);
    let with_crit = {
        let mut header = header(Algorithm::EdDSA, "at+jwt", &our_kid);
        header.crit = Some(vec!["exp".to_owned()]);
        encode(&header, &claims, &our_key)
    };
    let unknown_kid = encode(&header(Algorithm::EdDSA, "at+jwt", "not-a-kid-of-ours"), &claims, &our_key);
    let exp_as_string = {
        let mut claims = claims.clone();
        claims["exp"] = json!(claims["exp"].to_string());
        encode(&header(Algorithm::EdDSA, "at+jwt", &our_kid), &claims, &our_key)
    };
    let another_key_our_kid = encode(&header(Algorithm::EdDSA, "at+jwt", &our_kid), &claims, &another_key);

    use reauth_server::tokens::AccessTokenError as Refused;
    for (name, token, error) in [
        ("alg none", alg_none, Refused::Header),
        ("HS256 keyed with our public key", hs256_with_our_public_key, Refused::Header),
        ("typ JWT", typ_jwt, Refused::Header),
        ("a crit header", with_crit, Refused::Header),
        ("an unknown kid", unknown_kid, Refused::UnknownKey),
        ("exp as a string", exp_as_string, Refused::Malformed),
        ("another Ed25519 key", another_key_our_kid, Refused::Signature),
    ] {
        assert_eq!(server.service().verify_access_token(&token), Err(error), "{name}");
        let answer = server.get_bearer("/api/me", &token).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{name}");
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token", "{name}");
    }
}

#[tokio::test]
async fn the_example_service_verifies_tokens_and_refetches_the_jwks_for_a_new_kid() {
    install_provider();
    let server = TestServer::start_with(&["--key-refresh-interval", "1s"]).await;
    let session = server.signed_in("alice").await;
    let keys = Arc::new(ReauthKeys::fetch(&server.url(""), "reauth", "reauth").await.unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let downstream = format!("http://{}/whoami", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, example::app(keys)).into_future());
    let whoami = |token: String| {
        let (http, url) = (server.http.clone(), downstream.clone());
        async move { http.get(url).bearer_auth(token).send().await.unwrap() }
    };

    let answer = whoami(session.access_token.clone()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let claims: Value = answer.json().await.unwrap();
    assert_eq!(claims["sub"], session.body["user"]["id"]);
    assert_eq!(whoami("not.a.token".into()).await.status(), StatusCode::UNAUTHORIZED);

    // A rotation the example has not seen: the first token of the new key makes it refetch.
    let output = binary()
        .args(["keys", "rotate", "--activate-in", "0s"])
        .env("REAUTH_STORE", format!("sqlite://{}", server.db_path.display()))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let new_kid = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let mut token = server.login("alice").await.access_token;
    for _ in 0..120 {
        if kid_of(&token) == new_kid {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        token = server.login("alice").await.access_token;
    }
    assert_eq!(kid_of(&token), new_kid, "the server signs with the new key");
    assert_eq!(whoami(token).await.status(), StatusCode::OK, "verified after refetching the JWKS");
    assert_eq!(whoami(session.access_token).await.status(), StatusCode::OK, "and the old key still verifies");
}
