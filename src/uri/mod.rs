//! URI and path primitives every layer may use: percent-decoding, path normalisation, redirect
//! URI patterns and the loopback rule. Imports nothing of the crate.

mod path;
mod pattern;
mod percent;

pub use self::path::{canonical, normalize, same_path, under_path};
pub use self::pattern::{is_loopback_host, RedirectPattern};
pub use self::percent::{decode, percent_decode};
