//! HTTP primitives every feature reads with: the ABI header buffer
//! ([`header_map`]), cookies ([`cookie`]), URIs ([`uri`]), hosts, origins
//! and ports ([`authority`]), addresses ([`node`]), and the names of the
//! headers oidc-edge owns ([`names`]). Nothing here decides anything about a
//! request.

pub mod authority;
pub mod cookie;
pub mod header_map;
pub mod names;
pub mod node;
pub mod uri;

/// The request headers, as read in one bulk call: lower-case names, raw
/// values (non-UTF-8 values are possible and are treated as malformed).
pub type Headers<'a> = [(&'a str, &'a [u8])];
