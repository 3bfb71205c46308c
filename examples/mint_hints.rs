//! Benchmark helper (not part of the gateway), two modes, every ID token signed RS256 by the test
//! fixture key (kid rsa1):
//!
//! - end_session request paths, one per line, each with a distinct id_token_hint:
//!   `mint_hints ISSUER CLIENT COUNT SID_PREFIX OUT_FILE REDIRECT_URI`
//! - token endpoint responses, `OUT_DIR/<i>.json` for i in 0..COUNT (an ID token for session
//!   `<SID_PREFIX><i>`, and access token `at-<SID_PREFIX><i>`), for an upstream that serves them:
//!   `mint_hints tokens ISSUER CLIENT COUNT SID_PREFIX OUT_DIR`

use std::io::Write;

fn fail(what: impl std::fmt::Display) -> ! {
    eprintln!("{what}");
    std::process::exit(1)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let tokens = a.get(1).is_some_and(|m| m == "tokens");
    if a.len() != 7 {
        eprintln!("usage: mint_hints ISSUER CLIENT COUNT SID_PREFIX OUT_FILE REDIRECT_URI");
        eprintln!("       mint_hints tokens ISSUER CLIENT COUNT SID_PREFIX OUT_DIR");
        std::process::exit(2);
    }
    let b = if tokens { 2 } else { 1 };
    let (iss, client, count, prefix) = (&a[b], &a[b + 1], a[b + 2].parse::<usize>().unwrap_or(0), &a[b + 3]);
    let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa-op.pem")).unwrap_or_default();
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap_or_else(|e| fail(format!("fixture key: {e}")));
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let id_token = |i: usize| {
        let claims = serde_json::json!({
            "iss": iss, "aud": client, "sub": format!("user{i}"), "sid": format!("{prefix}{i}"),
            "iat": now, "exp": now + 3600,
        });
        jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| fail(format!("signing: {e}")))
    };
    if tokens {
        let dir = std::path::Path::new(&a[6]);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(format!("{}: {e}", dir.display())));
        for i in 0..count {
            let body = serde_json::json!({
                "access_token": format!("at-{prefix}{i}"), "token_type": "Bearer", "expires_in": 3600,
                "id_token": id_token(i),
            });
            let path = dir.join(format!("{i}.json"));
            std::fs::write(&path, body.to_string()).unwrap_or_else(|e| fail(format!("{}: {e}", path.display())));
        }
        return;
    }
    let (out, redirect) = (&a[5], &a[6]);
    let redirect: String = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
    let file = std::fs::File::create(out).unwrap_or_else(|e| fail(format!("{out}: {e}")));
    let mut f = std::io::BufWriter::new(file);
    for i in 0..count {
        let t = id_token(i);
        let _ = writeln!(f, "/session/end?id_token_hint={t}&post_logout_redirect_uri={redirect}&state=b{i}");
    }
}
