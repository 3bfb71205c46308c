//! The revocation set across instances (filled in below).
