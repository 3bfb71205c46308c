//! Percent-decoding, as forms and paths need it (RFC 3986 §2.1, and `+` in forms).

/// Form decoding: `+` is a space, `%XX` a byte; a malformed escape stays as it is.
pub fn decode(s: &[u8]) -> Vec<u8> {
    percent_decode(s, true)
}

/// `%XX` to a byte (and `+` to a space when `plus_is_space`); a malformed escape stays as it is.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> Vec<u8> {
    // Most values (tokens, plain URLs) hold nothing to decode: copy up to the first escape whole.
    let first = if plus_is_space { memchr::memchr2(b'%', b'+', s) } else { memchr::memchr(b'%', s) };
    let Some(first) = first else {
        return s.to_vec();
    };
    let mut out = Vec::with_capacity(s.len());
    out.extend_from_slice(&s[..first]);
    let mut i = first;
    while i < s.len() {
        match s[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_edge_cases() {
        assert_eq!(decode(b"%"), b"%");
        assert_eq!(decode(b"%4"), b"%4");
        assert_eq!(decode(b"%41%zz"), b"A%zz");
        assert_eq!(decode(b"a+b%2B"), b"a b+");
        // Nothing to decode, or the first escape late in the value (the copied prefix).
        assert_eq!(decode(b"eyJhbGciOi.x_y-z"), b"eyJhbGciOi.x_y-z");
        assert_eq!(decode(b"abcdef%41+"), b"abcdefA ");
        assert_eq!(percent_decode(b"a+b%41", false), b"a+bA");
        assert_eq!(percent_decode(b"a+b", false), b"a+b");
        assert_eq!(decode(b""), b"");
    }
}
