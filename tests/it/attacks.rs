//! The attacker's corpus: after a logout, every credential of the ended session is refused
//! however the request is spelled. Each row is one spelling, sent byte for byte over a raw
//! socket (no client library tidies it), to the real binary in front of a deliberately careless
//! fake OP (`upstream::lenient_path`: it answers every spelling of its endpoints, takes tokens
//! from headers in any scheme case, the query and any body, and the last of repeated
//! parameters). Each row is first sent with a live session's credentials, which must reach the
//! OP and succeed there: so a row that stops reaching the real handler fails instead of passing
//! for the wrong reason.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::edge::revoked_cookie;
use crate::harness::eventually;
use crate::learning::{token, wait_for_discovery};
use crate::logout::{env, Env};

/// How a row frames its body.
#[derive(Clone, Copy)]
enum Body {
    None,
    /// `Content-Length`.
    Len(&'static str),
    /// `Transfer-Encoding: chunked`, in chunks of at most 7 bytes (split mid-parameter).
    Chunked(&'static str),
}

/// What the ended session's credential must get.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// This status from the gateway, a body containing this, and the OP never sees the request.
    Refused(u16, &'static str),
    /// The OP sees the request without the OP cookie: `prompt=none` answers login_required.
    CookieStripped,
}

struct Row {
    /// Request line without the version, `{AT}`/`{RT}` standing for the tokens.
    line: &'static str,
    headers: &'static [&'static str],
    body: Body,
    want: Want,
    /// Send it with a live session's credentials first (it must reach the OP and succeed).
    control: bool,
}

const FORM: &str = "Content-Type: application/x-www-form-urlencoded";

fn rows() -> Vec<Row> {
    use Body::*;
    use Want::*;
    let r = |line, headers, body, want| Row { line, headers, body, want, control: true };
    let invalid_token = Refused(401, "invalid_token");
    let invalid_grant = Refused(400, "invalid_grant");
    let inactive = Refused(200, "\"active\":false");
    let bearer: &[&str] = &["Authorization: Bearer {AT}"];
    let refresh = "grant_type=refresh_token&refresh_token={RT}&client_id=rp-c";
    let mut rows = vec![
        // Userinfo: path spellings, scheme spellings, the token in the query and in bodies.
        r("GET /userinfo/", bearer, None, invalid_token),
        r("GET /USERINFO", bearer, None, invalid_token),
        r("GET /userinfo;jsessionid=1", bearer, None, invalid_token),
        r("GET //userinfo", bearer, None, invalid_token),
        r("GET /%75serinfo", bearer, None, invalid_token),
        r("GET /x/../userinfo", bearer, None, invalid_token),
        r("GET /userinfo%2f", bearer, None, invalid_token),
        r("GET /userinfo", &["Authorization: BEARER {AT}"], None, invalid_token),
        r("GET /userinfo", &["Authorization: Bearer\t{AT}"], None, invalid_token),
        r("GET /userinfo", &["authorization:   bearer    {AT}  "], None, invalid_token),
        r("GET /userinfo", &["AUTHORIZATION: Basic eDp5", "Authorization: Bearer {AT}"], None, invalid_token),
        r("GET /userinfo", &["Authorization: DPoP {AT}"], None, Refused(401, "invalid_token")),
        r("GET /userinfo?access_token={AT}", &[], None, invalid_token),
        r("GET /userinfo?ACCESS%5FTOKEN={AT}", &[], None, invalid_token),
        r("POST /userinfo", &[FORM], Chunked("access_token={AT}"), invalid_token),
        r("POST /userinfo", &[FORM], Len("access_token={AT}"), invalid_token),
        r("POST /userinfo", &["Content-Type: text/plain"], Len("access_token={AT}"), invalid_token),
        r("POST /USERINFO/", &[], Len("access_token={AT}"), invalid_token),
        // A bearer is refused on any path, not only at userinfo.
        r("GET /api/account", bearer, None, invalid_token),
        r("GET /anything?access_token={AT}", &[], None, invalid_token),
        // The token endpoint: path spellings, framings, places.
        r("POST /token/", &[FORM], Len(refresh), invalid_grant),
        r("POST /TOKEN", &[FORM], Len(refresh), invalid_grant),
        r("POST /token;x=1", &[FORM], Len(refresh), invalid_grant),
        r("POST //token", &[FORM], Len(refresh), invalid_grant),
        r("POST /token", &[FORM], Chunked(refresh), invalid_grant),
        r(
            "POST /token",
            &["Content-Type: APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8"],
            Len(refresh),
            invalid_grant,
        ),
        r("POST /token", &["Content-Type: text/plain"], Len(refresh), invalid_grant),
        r("POST /token", &[], Len(refresh), invalid_grant),
        r("POST /token?grant_type=refresh_token&refresh_token={RT}", &[FORM], Len("client_id=rp-c"), invalid_grant),
        r("POST /token", &[FORM], Len("grant_type=refresh_token&REFRESH_TOKEN={RT}"), invalid_grant),
        r(
            "POST /token",
            &[FORM],
            Len("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token={AT}"),
            invalid_grant,
        ),
        // JSON bodies (a careless OP reads them too), and a client that waits for 100-continue.
        r(
            "POST /token",
            &["Content-Type: application/json"],
            Len(r#"{"grant_type":"refresh_token","refresh_token":"{RT}","client_id":"rp-c"}"#),
            invalid_grant,
        ),
        r(
            "POST /TOKEN/",
            &["Content-Type: application/json; charset=utf-8"],
            Chunked(r#"{"grant_type":"refresh_token","REFRESH_TOKEN":"{RT}"}"#),
            invalid_grant,
        ),
        r("POST /userinfo", &["Content-Type: application/json"], Len(r#"{"access_token":"{AT}"}"#), invalid_token),
        r("POST /token", &[FORM, "Expect: 100-continue"], Len(refresh), invalid_grant),
        // Introspection.
        r("POST /introspect", &["Content-Type: application/json"], Len(r#"{"token":"{AT}"}"#), inactive),
        r("POST /introspect", &[FORM], Chunked("token={AT}"), inactive),
        r("POST /introspect", &[FORM], Len("token={AT}"), inactive),
        r("GET /introspect?token={AT}", &[], None, inactive),
        r("POST /introspect/", &[FORM], Len("token={AT}"), inactive),
        r("POST /INTROSPECT", &["Content-Type: text/plain"], Len("token={AT}"), inactive),
        // The OP cookie at the authorization endpoint, however spelled.
        r("GET /oauth/authorize/?client_id=rp-c&prompt=none&code_to_issue=q1", &["Cookie: {CK}"], None, CookieStripped),
        r("GET /OAUTH/AUTHORIZE?client_id=rp-c&prompt=none&code_to_issue=q2", &["Cookie: {CK}"], None, CookieStripped),
        r(
            "GET /oauth/authorize;x=1?client_id=rp-c&prompt=none&code_to_issue=q3",
            &["Cookie: {CK}"],
            None,
            CookieStripped,
        ),
        r("GET //oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=q4", &["Cookie: {CK}"], None, CookieStripped),
        r(
            "GET /oauth/authorize?client_id=rp-c&prompt=none&code_to_issue=q5",
            &["cookie: a=1;{CK}"],
            None,
            CookieStripped,
        ),
    ];
    // Refused whatever the credential: a body that cannot be checked, a repeated parameter.
    let no_control = |line, headers, body, want| Row { line, headers, body, want, control: false };
    let pad: &'static str = Box::leak(format!("{refresh}&pad={}", "x".repeat(70 * 1024)).into_boxed_str());
    rows.extend([
        no_control(
            "POST /token",
            &[FORM],
            Len("grant_type=refresh_token&refresh_token=junk&refresh_token={RT}"),
            Refused(400, "invalid_request"),
        ),
        no_control(
            "POST /token",
            &[FORM],
            Len("grant_type=refresh_token&grant_type=password&refresh_token={RT}"),
            Refused(400, "invalid_request"),
        ),
        no_control("POST /token?refresh_token={RT}", &[FORM], Len(refresh), Refused(400, "invalid_request")),
        no_control(
            "POST /token",
            &["Content-Type: application/json"],
            Len(r#"{"grant_type":"refresh_token","refresh_token":"junk","refresh_token":"{RT}"}"#),
            Refused(400, "invalid_request"),
        ),
        no_control(
            "POST /token",
            &["Content-Type: application/json"],
            Len(r#"{"grant_type":"refresh_token","refresh_token":"{RT}""#),
            Refused(400, "could not be read"),
        ),
        no_control("POST /token", &[FORM], Len(pad), Refused(413, "too large")),
        no_control("POST /token", &[FORM], Chunked(pad), Refused(413, "too large")),
        no_control("POST /token", &[FORM, "Content-Encoding: gzip"], Len(refresh), Refused(415, "compressed")),
        no_control(
            "POST /token",
            &["Content-Type: multipart/form-data; boundary=x"],
            Len(refresh),
            Refused(415, "x-www-form-urlencoded"),
        ),
        no_control(
            "POST /userinfo",
            &[FORM, "Content-Encoding: deflate"],
            Len("access_token={AT}"),
            Refused(415, "compressed"),
        ),
    ]);
    rows
}

/// A session's credentials: access token, refresh token, OP cookie (`op_session=...`).
struct Creds {
    at: String,
    rt: String,
    cookie: String,
}

/// The request bytes of `row` with `c`'s credentials and the marker header.
fn request(row: &Row, c: &Creds, port: u16, marker: &str) -> Vec<u8> {
    let fill = |s: &str| s.replace("{AT}", &c.at).replace("{RT}", &c.rt).replace("{CK}", &c.cookie);
    let mut out =
        format!("{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Attack: {marker}\r\nConnection: close\r\n", fill(row.line));
    for h in row.headers {
        out.push_str(&fill(h));
        out.push_str("\r\n");
    }
    match row.body {
        Body::None => out.push_str("\r\n"),
        Body::Len(b) => {
            let b = fill(b);
            out.push_str(&format!("Content-Length: {}\r\n\r\n{b}", b.len()));
        }
        Body::Chunked(b) => {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            let b = fill(b);
            for chunk in b.as_bytes().chunks(if b.len() > 4096 { 4096 } else { 7 }) {
                out.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), String::from_utf8_lossy(chunk)));
            }
            out.push_str("0\r\n\r\n");
        }
    }
    out.into_bytes()
}

/// Send raw bytes; the response's status, headers (lower-cased names) and body.
pub fn raw(port: u16, bytes: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The gateway may answer (and close) before reading a refused body: a write error then is fine.
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    // Interim 1xx answers (100 Continue) come before the final one.
    while text.starts_with("HTTP/1.1 1") {
        text = text.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, body.to_string())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Learn a session through the gateway (token response); its tokens.
pub fn learned(e: &Env, code: &str) -> (String, String, String) {
    let json: serde_json::Value = serde_json::from_slice(&token(e, code, "").bytes().unwrap()).unwrap();
    let sid = format!("sid-{code}");
    eventually("session learned", Duration::from_secs(10), || {
        (e.status(&sid).as_deref() == Some("active")).then_some(())
    });
    let s = |k: &str| json[k].as_str().unwrap().to_string();
    (s("access_token"), s("refresh_token"), s("id_token"))
}

/// A live browser session at the OP (never logged out): its cookie.
fn live_cookie(e: &Env, user: &str) -> String {
    crate::learning::op_login(e, user, &format!("{user}_x"), None).0
}

#[test]
fn every_spelling_of_an_ended_sessions_credential_is_refused() {
    let e = env();
    wait_for_discovery(&e);
    let (at, rt, hint) = learned(&e, "gone_1");
    let r = e.get(&[("id_token_hint", &hint), ("post_logout_redirect_uri", "https://c.example.com/out")]);
    assert_eq!(r.status(), 303);
    let ended = Creds { at, rt, cookie: revoked_cookie(&e, "eve") };
    let (lat, lrt, _) = learned(&e, "live_1");
    let live = Creds { at: lat, rt: lrt, cookie: live_cookie(&e, "liv") };

    let mut failures = Vec::new();
    for (i, row) in rows().iter().enumerate() {
        if row.control {
            // The live session's credentials reach the careless OP's real handler and work.
            let marker = format!("c{i}");
            let (status, h, body) = raw(e.gw.port, &request(row, &live, e.gw.port, &marker));
            let reached = e.up.seen().iter().any(|s| s.header("x-attack") == Some(marker.as_str()));
            let ok = match row.want {
                Want::CookieStripped => status == 302 && header(&h, "location").is_some_and(|l| l.contains("code=")),
                Want::Refused(..) => status == 200 && !body.contains("\"active\":false"),
            };
            if !(reached && ok) {
                failures.push(format!("row {i} `{}` control: {status} reached={reached} {body:.200}", row.line));
            }
        }
        let marker = format!("a{i}");
        let (status, h, body) = raw(e.gw.port, &request(row, &ended, e.gw.port, &marker));
        let seen: Vec<_> = e.up.seen().into_iter().filter(|s| s.header("x-attack") == Some(marker.as_str())).collect();
        let ok = match row.want {
            Want::Refused(code, text) => {
                let challenge = header(&h, "www-authenticate").unwrap_or("");
                let scheme_ok = code != 401
                    || (challenge.contains("error=\"invalid_token\"")
                        && challenge.starts_with(if row.headers.iter().any(|x| x.contains("DPoP")) {
                            "DPoP "
                        } else {
                            "Bearer "
                        }));
                status == code && body.contains(text) && seen.is_empty() && scheme_ok
            }
            Want::CookieStripped => {
                let location = header(&h, "location").unwrap_or("");
                let expired = h.iter().any(|(k, v)| k == "set-cookie" && v.starts_with("op_session=;"));
                status == 302
                    && location.contains("error=login_required")
                    && expired
                    && seen.len() == 1
                    && !seen[0].header("cookie").unwrap_or("").contains(&ended.cookie)
            }
        };
        if !ok {
            failures.push(format!(
                "row {i} `{}` {:?}: got {status}, OP saw it {} time(s), body {body:.200}",
                row.line,
                row.want,
                seen.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} rows failed:\n{}", failures.len(), rows().len(), failures.join("\n"));
}
