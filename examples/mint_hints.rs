//! Benchmark helper (not part of the gateway): writes end_session request paths, one per line,
//! each with a distinct RS256 id_token_hint signed by the test fixture key (kid rsa1).
//!
//! cargo run --release --example mint_hints -- ISSUER CLIENT COUNT PREFIX OUT_FILE REDIRECT_URI

use std::io::Write;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        eprintln!("usage: mint_hints ISSUER CLIENT COUNT SID_PREFIX OUT_FILE REDIRECT_URI");
        std::process::exit(2);
    }
    let (iss, client, count, prefix, out, redirect) =
        (&a[1], &a[2], a[3].parse::<usize>().unwrap_or(0), &a[4], &a[5], &a[6]);
    let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa-op.pem")).unwrap_or_default();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| {
        eprintln!("fixture key: {e}");
        std::process::exit(1)
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let redirect: String = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(out).unwrap_or_else(|e| {
        eprintln!("{out}: {e}");
        std::process::exit(1)
    }));
    for i in 0..count {
        let claims = serde_json::json!({
            "iss": iss, "aud": client, "sub": format!("user{i}"), "sid": format!("{prefix}{i}"),
            "iat": now, "exp": now + 3600,
        });
        let Ok(t) = jsonwebtoken::encode(&header, &claims, &key) else { std::process::exit(1) };
        let _ = writeln!(f, "/session/end?id_token_hint={t}&post_logout_redirect_uri={redirect}&state=b{i}");
    }
}
