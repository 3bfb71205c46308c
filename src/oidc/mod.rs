//! OpenID Connect pieces that talk to no session store: the upstream's keys ([`jwks`], which keys count: `keyset`) and
//! id_token_hint validation ([`hint`]). Never touches Redis.

mod discovery;
pub(crate) mod hint;
pub(crate) mod jwks;
mod keyset;
