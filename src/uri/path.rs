//! Request paths compared the way any upstream might route them: percent-escapes decoded (all
//! of them, `%2F` too, until stable), `;params` dropped, empty and `.` segments removed, `..`
//! resolved, a trailing slash ignored, ASCII case folded. Used for end_session routing (GW-01),
//! endpoint classification at the edge, and configured path prefixes.

/// Whether a path needs nothing of `normalize` but case folding and a trailing slash removed.
fn is_plain(raw_path: &[u8]) -> bool {
    raw_path.iter().all(|b| b.is_ascii_alphanumeric() || b"/-_~".contains(b) || *b == b'.')
        && !raw_path.windows(2).any(|w| w == b"//" || w == b"/.")
        && raw_path.len() > 1
}

/// A path in a form to compare with [`same_path`] and [`under_path`] (ASCII case-insensitively):
/// borrowed without its trailing slash when plain, else [`normalize`]d.
pub(crate) fn canonical(raw_path: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if is_plain(raw_path) {
        std::borrow::Cow::Borrowed(raw_path.strip_suffix(b"/").unwrap_or(raw_path))
    } else {
        std::borrow::Cow::Owned(normalize(raw_path))
    }
}

/// Whether a [`canonical`] request path names the endpoint path `endpoint` (any spelling).
pub(crate) fn same_path(canon: &[u8], endpoint: &str) -> bool {
    canonical(endpoint.as_bytes()).eq_ignore_ascii_case(canon)
}

/// Whether a [`canonical`] request path is `base` or below it (any spelling).
pub(crate) fn under_path(canon: &[u8], base: &str) -> bool {
    let base = canonical(base.as_bytes());
    canon.len() >= base.len()
        && canon[..base.len()].eq_ignore_ascii_case(&base)
        && (canon.len() == base.len() || canon[base.len()] == b'/' || base.ends_with(b"/"))
}

/// The canonical form described in the module comment, as bytes.
pub(crate) fn normalize(raw_path: &[u8]) -> Vec<u8> {
    // Decoding can reveal new escapes (`%252F`); decode until stable, a few rounds at most.
    let mut decoded = raw_path.to_vec();
    for _ in 0..3 {
        let next = super::percent_decode(&decoded, false);
        if next == decoded {
            break;
        }
        decoded = next;
    }
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in decoded.split(|b| *b == b'/' || *b == b'\\') {
        let seg = match seg.iter().position(|b| *b == b';') {
            Some(i) => &seg[..i],
            None => seg,
        };
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut out = Vec::with_capacity(decoded.len() + 1);
    for s in segs {
        out.push(b'/');
        out.extend(s.iter().map(u8::to_ascii_lowercase));
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}
