//! Writes the token seeds of `corpus/access_token` and `corpus/refresh_token`: valid tokens under the
//! fixture key set (the current stored keys and the configured, retired one), and near misses the fuzzer would take long to build by itself. Deterministic, so
//! running it again changes nothing: `cargo run --example make_seeds` in server/fuzz.

use std::fs;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reauth_fuzz::{access_tokens, claims, key_set, refresh_secret, NOW, ROTATED_AT};
use reauth_server::tokens::AccessClaims;
use reauth_server::tokens::RefreshToken;

fn main() -> std::io::Result<()> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let tokens = access_tokens();
    let valid = tokens.sign(&claims());
    let (header, rest) = valid.split_once('.').expect("three parts");
    let b64 = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let access = [
        ("valid", valid.clone()),
        // Signed by the configured key, current at its iat: still published at NOW.
        ("retired-key", tokens.sign(&AccessClaims { iat: ROTATED_AT - 60, ..claims() })),
        ("expired", tokens.sign(&AccessClaims { exp: NOW - 3600, ..claims() })),
        ("within-leeway", tokens.sign(&AccessClaims { exp: NOW - 1, ..claims() })),
        ("alg-none", format!("{}.{rest}", b64(r#"{"alg":"none","typ":"at+jwt"}"#))),
        ("no-kid", format!("{}.{rest}", b64(r#"{"alg":"EdDSA","typ":"at+jwt"}"#))),
        ("four-parts", format!("{valid}.e30")),
        ("header-only", header.to_owned()),
    ];
    write(&corpus.join("access_token"), &access)?;

    let set = key_set();
    let current = set.refresh_secret_at(NOW);
    let root = refresh_secret(&set, None, NOW).expect("the configured key's secret is accepted at NOW");
    let family = "c2Vzc2lvbi1maXhlZC0wMQ";
    let refresh = [
        ("generation-0", RefreshToken::encode(current, family, 0)),
        ("generation-max", RefreshToken::encode(current, family, u64::MAX)),
        ("rt1-generation-7", RefreshToken::encode(root, family, 7)),
        ("rt1-as-rt2", RefreshToken::encode(root, family, 7).replacen("rt1.", "rt2.", 1)),
        ("rt2-as-rt1", RefreshToken::encode(current, family, 7).replacen("rt2.", "rt1.", 1)),
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
