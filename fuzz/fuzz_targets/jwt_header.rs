//! The id_token_hint checks that run before any key is looked up: `oidc::hint::inspect_header`
//! (size cap, compact-JWS shape, header JSON, `typ`, `crit`, algorithm family; RPI-03, CORE-02).
//!
//! An input starting with `{` is a header: the target wraps it into a token itself (so the
//! fuzzer works on JSON, not base64). Anything else is a whole token, as sent. Checks: no
//! panic; over `MAX_HINT` bytes is refused as too large whatever the content (the cap comes
//! before any base64 or JSON decoding); payload and signature never change the verdict; an
//! accepted header has an asymmetric `alg` (never `none`, never HMAC), an ID-token `typ`, no
//! `crit`, and its `kid` comes back byte for byte as an opaque string; `jku`, `x5u`, `jwk` and
//! `x5c` are ignored: adding or removing them never turns a verdict into an acceptance or
//! changes what an accepted header passes on.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use logout_gateway::probe::hint::{inspect_header, HeaderVerdict, MAX_HINT};
use serde_json::{json, Map, Value};

/// Header fields that name or carry a key: a verifier that used them would let the token
/// choose its own key.
const KEY_LOCATORS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

fuzz_target!(|data: &[u8]| {
    if data.first() == Some(&b'{') {
        header(data);
    } else {
        token(&String::from_utf8_lossy(data));
    }
});

fn wrap(header: &[u8]) -> String {
    format!("{}.eyJzdWIiOiJ1In0.c2ln", URL_SAFE_NO_PAD.encode(header))
}

fn token(t: &str) {
    let v = inspect_header(t);
    if t.len() > MAX_HINT {
        assert_eq!(v, Err("too large"));
        return;
    }
    assert_ne!(v, Err("too large"), "refused below the cap");
    assert_eq!(t.matches('.').count() == 2, v != Err("not a compact JWS"));
    let Ok(ok) = v else { return };
    let head = t.split('.').next().unwrap_or_default();
    let Ok(json) = URL_SAFE_NO_PAD.decode(head) else { panic!("accepted a header that is not base64url") };
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(&json) else {
        panic!("accepted a header that is not a JSON object")
    };
    accepted_header(&obj, &ok);
}

fn header(raw: &[u8]) {
    let t = wrap(raw);
    let v = inspect_header(&t);
    // Payload and signature do not matter before a key is chosen, up to the cap included.
    let padded = format!("{t}{}", "A".repeat(MAX_HINT.saturating_sub(t.len())));
    if padded.len() == MAX_HINT {
        assert_eq!(inspect_header(&padded), v, "the signature's length changed the verdict");
    }
    let over = format!("{t}{}", "A".repeat(MAX_HINT + 1 - t.len().min(MAX_HINT)));
    assert_eq!(inspect_header(&over), Err("too large"), "over the cap must be refused first");
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(raw) else {
        assert!(v.is_err(), "accepted a header that is not a JSON object");
        return;
    };
    if let Ok(ok) = &v {
        accepted_header(&obj, ok);
    }
    // Without the key locators, and with hostile ones added to that.
    let mut base = obj.clone();
    for k in KEY_LOCATORS {
        base.remove(k);
    }
    let v_base = inspect_header(&wrap(&serde_json::to_vec(&base).unwrap_or_default()));
    let mut hostile = base.clone();
    hostile.insert("jku".into(), json!("https://attacker.example/jwks.json"));
    hostile.insert("x5u".into(), json!("https://attacker.example/cert.pem"));
    hostile.insert("x5c".into(), json!(["MIIBszCCAVmgAwIBAgIUEvil"]));
    hostile.insert(
        "jwk".into(),
        json!({"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
               "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
    );
    let v_hostile = inspect_header(&wrap(&serde_json::to_vec(&hostile).unwrap_or_default()));
    if v.is_ok() {
        assert_eq!(v_base, v, "jku/x5u/jwk/x5c changed an accepted verdict");
    }
    if v_base.is_ok() || v_hostile.is_ok() {
        assert_eq!(v_hostile, v_base, "hostile jku/x5u/jwk/x5c changed the verdict");
    }
}

/// What an accepted header must look like, read with a plain JSON parser.
fn accepted_header(obj: &Map<String, Value>, ok: &HeaderVerdict) {
    let alg = obj.get("alg").and_then(Value::as_str).unwrap_or_default();
    assert_eq!(serde_json::to_value(ok.alg).ok(), Some(json!(alg)), "alg read differently");
    assert!(!alg.eq_ignore_ascii_case("none") && !alg.starts_with("HS"), "accepted alg {alg:?}");
    let typ = obj.get("typ").filter(|t| !t.is_null());
    let id_typ = |t: &str| t.eq_ignore_ascii_case("jwt") || t.eq_ignore_ascii_case("application/jwt");
    assert!(typ.is_none_or(|t| t.as_str().is_some_and(id_typ)), "accepted typ {typ:?}");
    assert!(obj.get("crit").is_none_or(Value::is_null), "accepted a crit header");
    let kid = obj.get("kid").filter(|k| !k.is_null());
    assert_eq!(ok.kid.as_deref(), kid.and_then(Value::as_str), "kid is not passed on byte for byte");
}
