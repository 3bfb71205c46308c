//! URI and path primitives every layer may use: percent-decoding, path normalisation, redirect
//! URI patterns and the loopback rule. Imports nothing of the crate.

mod path;
mod pattern;
mod percent;

pub(crate) use self::path::{canonical, normalize, same_path, under_path};
pub(crate) use self::pattern::is_loopback_host;
pub use self::pattern::RedirectPattern;
pub use self::percent::{decode, percent_decode};
