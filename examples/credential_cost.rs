//! The in-process cost of the per-request credential check, part by part, for
//! `bench/credentials.sh` (which measures whole requests, where the check is a small share and
//! the machine's noise is not): finding the credentials of a request (its `Authorization`
//! header, its query, a form body), hashing each with SHA-256, and the revocation set's
//! verdict, with one million revoked credentials in the set. Prints one line per case:
//! `case ns_per_request`.
//!
//! Run: `cargo run --release --example credential_cost [ITERATIONS]`

use std::hint::black_box;
use std::time::Instant;

use logout_gateway::probe::credentials::{authorization_token, scan};
use logout_gateway::probe::revoked::{key_of_digest, RevokedSet};
use sha2::Digest;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.c2Vzc2lvbi10b2tlbi1mb3ItYmVuY2htYXJr.c2lnbmF0dXJlLXBhcnQtb2YtYS10b2tlbg";

fn verdict(set: &RevokedSet, value: &[u8]) -> bool {
    let digest: [u8; 32] = sha2::Sha256::digest(value).into();
    set.verdict(key_of_digest(&digest)) == logout_gateway::probe::revoked::Verdict::Revoked
}

fn time(name: &str, n: u32, mut f: impl FnMut() -> usize) {
    let mut sink = 0usize;
    for _ in 0..n / 10 {
        sink = sink.wrapping_add(f());
    }
    let start = Instant::now();
    for _ in 0..n {
        sink = sink.wrapping_add(f());
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
    black_box(sink);
    println!("{name} {ns:.0}");
}

fn main() {
    let n: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let set = RevokedSet::authoritative();
    let far = 4_000_000_000u64;
    // One million revoked credentials (keys spread like SHA-256 prefixes).
    set.insert((0..1_000_000u64).map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), far)));
    let header = format!("Bearer {TOKEN}");
    let query = format!("access_token={TOKEN}&x=1");
    let form = format!("grant_type=refresh_token&refresh_token={TOKEN}&client_id=rp");
    time("plain_query", n, || black_box(scan(b"page=2&sort=asc", b"")).credentials.len());
    time("bearer", n, || {
        let (_, t) = authorization_token(black_box(&header))
            .unwrap_or((logout_gateway::probe::credentials::Source::Header { dpop: false }, ""));
        usize::from(verdict(&set, t.as_bytes()))
    });
    time("query", n, || {
        let p = scan(black_box(query.as_bytes()), b"");
        p.credentials.iter().map(|(_, v)| usize::from(verdict(&set, v.as_bytes()))).sum()
    });
    time("cookie", n, || usize::from(verdict(&set, black_box(TOKEN.as_bytes()))));
    time("form", n, || {
        let p = scan(b"", black_box(form.as_bytes()));
        p.credentials.iter().map(|(_, v)| usize::from(verdict(&set, v.as_bytes()))).sum()
    });
}
