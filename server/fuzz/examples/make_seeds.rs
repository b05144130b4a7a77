//! Writes the token seeds of `corpus/access_token` and `corpus/refresh_token`: valid tokens under the
//! fixture key, and near misses the fuzzer would take long to build by itself. Deterministic, so
//! running it again changes nothing: `cargo run --example make_seeds` in server/fuzz.

use std::fs;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reauth_fuzz::{access_tokens, claims, keys, NOW};
use reauth_server::tokens::RefreshToken;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let tokens = access_tokens();
    let valid = tokens.sign(&claims());
    let (header, rest) = valid.split_once('.').expect("three parts");
    let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let access = [
        ("valid", valid.clone()),
        ("expired", tokens.sign(&reauth_server::tokens::AccessClaims { exp: NOW - 1, ..claims() })),
        ("alg-none", format!("{}.{rest}", b64(r#"{"alg":"none","typ":"at+jwt"}"#))),
        ("no-kid", format!("{}.{rest}", b64(r#"{"alg":"EdDSA","typ":"at+jwt"}"#))),
        ("four-parts", format!("{valid}.e30")),
        ("header-only", header.to_owned()),
    ];
    write(&corpus.join("access_token"), &access)?;

    let keys = keys();
    let family = "c2Vzc2lvbi1maXhlZC0wMQ";
    let refresh = [
        ("generation-0", RefreshToken::encode(&keys, family, 0)),
        ("generation-max", RefreshToken::encode(&keys, family, u64::MAX)),
        ("wrong-prefix", RefreshToken::encode(&keys, family, 7).replacen("rt1.", "rt2.", 1)),
    ];
    write(&corpus.join("refresh_token"), &refresh)
}

fn write(dir: &Path, seeds: &[(&str, String)]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for (name, seed) in seeds {
        fs::write(dir.join(name), seed)?;
    }
    Ok(())
}
