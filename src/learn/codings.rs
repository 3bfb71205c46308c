//! Content codings of the responses the gateway reads (token and registration responses,
//! form_post pages): which ones it can decode, decoding a copy (bounded), and narrowing the
//! request's `Accept-Encoding` to those codings. This is the issue's "ask the upstream for
//! identity or decode": the upstream is asked only for codings the gateway decodes, and what it
//! still compresses (gzip, deflate) is decoded from the copy.
//!
//! It never changes the bytes the client receives: the narrowed `Accept-Encoding` is a subset of
//! what the client offered (or `identity`), so whatever the upstream picks the client accepts.

use std::io::Read;

use crate::metrics::Metrics;

/// The content codings the gateway decodes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    #[default]
    Identity,
    Gzip,
    Deflate,
}

impl Encoding {
    /// The coding a `Content-Encoding` header names, or None when the gateway cannot decode it
    /// (br, zstd, compress, a chain such as `gzip, br`).
    pub(crate) fn parse(header: Option<&str>) -> Option<Encoding> {
        let Some(h) = header else { return Some(Encoding::Identity) };
        let h = h.trim();
        if h.is_empty() || h.eq_ignore_ascii_case("identity") {
            Some(Encoding::Identity)
        } else if h.eq_ignore_ascii_case("gzip") || h.eq_ignore_ascii_case("x-gzip") {
            Some(Encoding::Gzip)
        } else if h.eq_ignore_ascii_case("deflate") {
            Some(Encoding::Deflate)
        } else {
            None
        }
    }
}

/// `body` as sent, decompressed to at most `limit` bytes (a bound against compression bombs),
/// or None when it does not decode.
pub(crate) fn decode(body: Vec<u8>, encoding: Encoding, limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let limit = limit as u64;
    match encoding {
        Encoding::Identity => return Some(body),
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(&body[..]).take(limit).read_to_end(&mut out).ok()?,
        Encoding::Deflate => flate2::read::ZlibDecoder::new(&body[..]).take(limit).read_to_end(&mut out).ok()?,
    };
    Some(out)
}

/// The `Accept-Encoding` to send the upstream for a response the gateway reads: the client's
/// gzip, x-gzip and deflate entries (those it did not refuse with `q=0`), else `identity`.
pub(crate) fn narrow_accept_encoding(client: Option<&str>) -> String {
    let kept: Vec<&str> = client
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|item| {
            let mut parts = item.split(';');
            let name = parts.next().unwrap_or("").trim();
            let refused = parts
                .any(|p| p.trim().strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)));
            !refused && ["gzip", "x-gzip", "deflate"].iter().any(|c| name.eq_ignore_ascii_case(c))
        })
        .collect();
    if kept.is_empty() {
        "identity".to_string()
    } else {
        kept.join(", ")
    }
}

/// A response the gateway meant to learn from was not read, for `reason` (a fixed label:
/// `encoding`, `corrupt`, `too_large`, `unverified`). Callers log once per response.
pub(crate) fn count_skipped(reason: &'static str) {
    Metrics::get().learn_skipped.with_label_values(&[reason]).inc();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn decodes_gzip_and_deflate_and_refuses_garbage() {
        let text = br#"{"id_token":"x"}"#.to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        assert_eq!(decode(gz.finish().unwrap(), Encoding::Gzip, 1024).unwrap(), text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        assert_eq!(decode(z.finish().unwrap(), Encoding::Deflate, 1024).unwrap(), text);
        assert!(decode(b"not gzip".to_vec(), Encoding::Gzip, 1024).is_none());
        assert_eq!(decode(text.clone(), Encoding::Identity, 1024).unwrap(), text);
    }

    #[test]
    fn decoding_is_bounded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b'a'; 100_000]).unwrap();
        assert_eq!(decode(gz.finish().unwrap(), Encoding::Gzip, 1000).unwrap().len(), 1000);
    }

    #[test]
    fn content_encodings() {
        assert_eq!(Encoding::parse(None), Some(Encoding::Identity));
        assert_eq!(Encoding::parse(Some(" GZIP ")), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(Some("x-gzip")), Some(Encoding::Gzip));
        assert_eq!(Encoding::parse(Some("deflate")), Some(Encoding::Deflate));
        assert_eq!(Encoding::parse(Some("identity")), Some(Encoding::Identity));
        for e in ["br", "zstd", "gzip, br", "compress"] {
            assert_eq!(Encoding::parse(Some(e)), None, "{e}");
        }
    }

    #[test]
    fn accept_encoding_keeps_only_what_the_gateway_decodes() {
        assert_eq!(narrow_accept_encoding(Some("gzip, deflate, br")), "gzip, deflate");
        assert_eq!(narrow_accept_encoding(Some("br;q=1.0, gzip;q=0.8, *;q=0.1")), "gzip;q=0.8");
        assert_eq!(narrow_accept_encoding(Some("gzip;q=0, deflate")), "deflate");
        assert_eq!(narrow_accept_encoding(Some("br, zstd")), "identity");
        assert_eq!(narrow_accept_encoding(Some("")), "identity");
        assert_eq!(narrow_accept_encoding(None), "identity");
    }
}
