//! The decision table, row by row (the T-numbers and requirement IDs of docs/requirements.md).

use super::*;

const A_BYE: &str = "https://a.example.org/logged-out";

fn clients() -> BTreeMap<String, Client> {
    let mut m = BTreeMap::new();
    m.insert(
        "rp-a".to_string(),
        Client {
            post_logout_redirect_uris: vec![A_BYE.into(), "https://a.example.org/bye?lang=en".into()],
            ..Client::default()
        },
    );
    m.insert(
        "rp-b".to_string(),
        Client {
            post_logout_redirect_uris: vec!["https://b.example.net/out".into()],
            default_post_logout_redirect_uri: Some("https://b.example.net/out".into()),
            ..Client::default()
        },
    );
    m
}

fn valid(client: &str, expired: bool) -> HintCheck {
    HintCheck::Valid(HintClaims { client_id: client.into(), sub: "U1".into(), sid: Some("SA".into()), expired })
}

fn end_a(next: Option<&str>) -> Plan {
    Plan::End {
        next: Next { client_id: Some("rp-a".into()), redirect: next.map(String::from) },
        end: EndRequest { sid: "SA".into(), sub: "U1".into(), accept_unknown: false },
    }
}

fn p(hint: &HintCheck, client: Option<&str>, uri: Option<&str>, state: Option<&str>) -> Plan {
    plan(hint, client, uri, state, &clients(), &Policy::default())
}

#[test]
fn a_registered_clients_redirect_is_confirmed_unless_the_operator_allows_it() {
    let mut m = clients();
    m.get_mut("rp-a").unwrap().registered = true;
    let hint = valid("rp-a", false);
    let asked = plan(&hint, None, Some(A_BYE), Some("s"), &m, &Policy::default());
    assert_eq!(
        asked,
        Plan::Confirm {
            next: Next {
                client_id: Some("rp-a".into()),
                redirect: Some("https://a.example.org/logged-out?state=s".into())
            },
            end: Some(EndRequest { sid: "SA".into(), sub: "U1".into(), accept_unknown: false }),
        }
    );
    let policy = Policy {
        registered_redirect_patterns: vec![RedirectPattern::parse("https://a.example.org").unwrap()],
        ..Policy::default()
    };
    assert_eq!(
        plan(&hint, None, Some(A_BYE), Some("s"), &m, &policy),
        end_a(Some("https://a.example.org/logged-out?state=s"))
    );
    // No redirect asked for: nothing to vet.
    assert_eq!(plan(&hint, None, None, None, &m, &Policy::default()), end_a(None));
}

#[test]
fn t1_t2_t12_valid_hint_and_registered_uri_end_the_session_with_state() {
    assert_eq!(
        p(&valid("rp-a", false), None, Some(A_BYE), Some("s1")),
        end_a(Some("https://a.example.org/logged-out?state=s1"))
    );
    assert_eq!(
        p(&valid("rp-a", true), None, Some(A_BYE), Some("s2")),
        end_a(Some("https://a.example.org/logged-out?state=s2"))
    );
}

#[test]
fn t4_invalid_hint_is_rejected_even_with_a_registered_uri() {
    assert_eq!(p(&HintCheck::Invalid("bad signature"), None, Some(A_BYE), None), Plan::Reject(Reject::HintInvalid));
}

#[test]
fn t5_t9_t10_no_hint_no_client_asks_and_never_redirects() {
    let confirm = Plan::Confirm { next: Next::default(), end: None };
    assert_eq!(p(&HintCheck::Absent, None, Some(A_BYE), Some("s3")), confirm);
    assert_eq!(p(&HintCheck::Absent, None, None, None), confirm);
    assert_eq!(p(&HintCheck::Absent, None, None, Some("only-state")), confirm);
}

#[test]
fn t6_client_id_and_registered_uri_asks_then_may_redirect() {
    assert_eq!(
        p(&HintCheck::Absent, Some("rp-a"), Some(A_BYE), Some("s")),
        Plan::Confirm {
            next: Next { client_id: Some("rp-a".into()), redirect: Some(format!("{A_BYE}?state=s")) },
            end: None
        }
    );
    // ... but an unregistered URI for that client is refused outright.
    assert_eq!(
        p(&HintCheck::Absent, Some("rp-a"), Some("https://evil.example/"), None),
        Plan::Reject(Reject::RedirectNotRegistered)
    );
}

#[test]
fn t7_client_id_mismatch_and_unknown_clients_are_rejected() {
    assert_eq!(
        p(&valid("rp-a", false), Some("rp-b"), Some("https://b.example.net/out"), None),
        Plan::Reject(Reject::ClientMismatch)
    );
    assert_eq!(p(&HintCheck::Absent, Some("nope"), None, None), Plan::Reject(Reject::UnknownClient));
}

#[test]
fn t8_rpi21_only_byte_exact_registered_uris() {
    for bad in [
        "https://a.example.org/logged-out?foo=bar",
        "https://a.example.org:443/logged-out",
        "https://A.EXAMPLE.ORG/logged-out",
        "https://a.example.org/logged-out/",
        "https://b.example.net/out",
        "https://a.example.org/logged-out#x",
    ] {
        assert_eq!(
            p(&valid("rp-a", false), None, Some(bad), None),
            Plan::Reject(Reject::RedirectNotRegistered),
            "{bad}"
        );
    }
}

#[test]
fn t11_valid_hint_without_uri_uses_the_default_or_no_redirect() {
    assert_eq!(p(&valid("rp-a", false), None, None, Some("s")), end_a(None));
    match p(&valid("rp-b", false), None, None, Some("s")) {
        Plan::End { next, .. } => assert_eq!(next.redirect.as_deref(), Some("https://b.example.net/out?state=s")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_hint_without_sid_ends_the_browsers_session_of_its_subject() {
    let h = HintCheck::Valid(HintClaims { client_id: "rp-a".into(), sub: "U1".into(), sid: None, expired: false });
    assert_eq!(
        p(&h, None, Some(A_BYE), None),
        Plan::EndBrowserSession {
            next: Next { client_id: Some("rp-a".into()), redirect: Some(A_BYE.into()) },
            sub: "U1".into()
        }
    );
}

#[test]
fn switches() {
    let strict = Policy { require_hint: true, reject_expired: true, ..Policy::default() };
    assert_eq!(plan(&HintCheck::Absent, None, None, None, &clients(), &strict), Plan::Reject(Reject::HintRequired));
    assert_eq!(plan(&valid("rp-a", true), None, None, None, &clients(), &strict), Plan::Reject(Reject::HintExpired));
    let lax = Policy {
        accept_unknown_sid: true,
        unregistered_redirect_patterns: vec![RedirectPattern::parse("https://*.example.org").unwrap()],
        ..Policy::default()
    };
    match plan(&valid("rp-a", false), None, Some("https://x.example.org/y"), None, &clients(), &lax) {
        Plan::End { end, next } => {
            assert!(end.accept_unknown);
            assert_eq!(next.redirect.as_deref(), Some("https://x.example.org/y"));
        }
        other => panic!("{other:?}"),
    }
    // Expired hints never log out an unknown sid, whatever the switch says (RPI-04/05).
    match plan(&valid("rp-a", true), None, None, None, &clients(), &lax) {
        Plan::End { end, .. } => assert!(!end.accept_unknown),
        other => panic!("{other:?}"),
    }
}

#[test]
fn store_answers() {
    let next = Next { client_id: Some("rp-a".into()), redirect: Some(A_BYE.into()) };
    let end = EndRequest { sid: "SA".into(), sub: "U1".into(), accept_unknown: false };
    for a in [StoreAnswer::Ended, StoreAnswer::AlreadyEnded, StoreAnswer::Recorded] {
        assert_eq!(after_store(next.clone(), end.clone(), a), Outcome::LoggedOut(next.clone()));
    }
    assert!(matches!(
        after_store(next.clone(), end.clone(), StoreAnswer::Unknown),
        Outcome::Confirm { end: Some(_), .. }
    ));
    assert_eq!(after_store(next.clone(), end, StoreAnswer::SubjectMismatch), Outcome::Confirm { next, end: None });
}
