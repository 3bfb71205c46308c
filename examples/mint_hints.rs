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
    let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa-op.pem"))
        .unwrap_or_else(|e| fail(format!("fixture key: {e}")));
    let key = signing_key(&pem);
    let head = b64(br#"{"alg":"RS256","typ":"JWT","kid":"rsa1"}"#);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let id_token = |i: usize| {
        let claims = serde_json::json!({
            "iss": iss, "aud": client, "sub": format!("user{i}"), "sid": format!("{prefix}{i}"),
            "iat": now, "exp": now + 3600,
        });
        let input = format!("{head}.{}", b64(claims.to_string().as_bytes()));
        let mut sig = vec![0; key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        key.sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .unwrap_or_else(|e| fail(format!("signing: {e}")));
        format!("{input}.{}", b64(&sig))
    };
    if tokens {
        let dir = std::path::Path::new(&a[6]);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| fail(format!("{}: {e}", dir.display())));
        for (i, id_token) in minted(count, &id_token).into_iter().enumerate() {
            let body = serde_json::json!({
                "access_token": format!("at-{prefix}{i}"), "token_type": "Bearer", "expires_in": 3600,
                "id_token": id_token,
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
    for (i, t) in minted(count, &id_token).into_iter().enumerate() {
        let _ = writeln!(f, "/session/end?id_token_hint={t}&post_logout_redirect_uri={redirect}&state=b{i}");
    }
}

/// The PKCS#8 key of a PEM file, parsed once (signing is most of this tool's time: a parse per
/// signature would triple it).
fn signing_key(pem: &str) -> aws_lc_rs::signature::RsaKeyPair {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der =
        base64::engine::general_purpose::STANDARD.decode(body).unwrap_or_else(|e| fail(format!("fixture key: {e}")));
    aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).unwrap_or_else(|e| fail(format!("fixture key: {e}")))
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// `id_token(i)` for i in 0..count, in order, signed on every core.
fn minted(count: usize, id_token: &(impl Fn(usize) -> String + Sync)) -> Vec<String> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = count.div_ceil(cores).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..count)
            .step_by(chunk)
            .map(|from| s.spawn(move || (from..(from + chunk).min(count)).map(id_token).collect::<Vec<_>>()))
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap_or_else(|_| fail("a signing thread failed"))).collect()
    })
}
