//! oidc-edge: a proxy-wasm filter for Envoy that keeps OpenID Connect logins
//! working behind external load balancers.
//!
//! A request's path through the filter, one module per decision:
//!
//! - [`config`]: the operator's JSON, validated once at load.
//! - [`forwarded`]: whose forwarding headers to believe ([`node`],
//!   [`rfc7239`] and [`authority`] parse what they carry), and what the
//!   upstream gets told about scheme, host, port and client.
//! - [`decision`]: the verdict handed to the glue; [`metrics`]: its counters.
//!
//! Everything above is plain Rust with no proxy-wasm types, tested natively.
//! The `glue` module (compiled for wasm only) gathers inputs from Envoy and
//! applies decisions; it never panics on request data.

pub mod authority;
pub mod config;
pub mod cookie;
pub mod decision;
pub mod forwarded;
pub mod header_map;
pub mod idp;
pub mod keyring;
pub mod login_flow;
pub mod metrics;
pub mod node;
pub mod redirects;
pub mod rfc7239;
pub mod state_cookie;
pub mod uri;

#[cfg(target_arch = "wasm32")]
mod glue;
