//! oidc-edge: a proxy-wasm filter for Envoy that keeps OpenID Connect logins
//! working behind external load balancers.
//!
//! This crate is the logic, host-independent: it does not depend on
//! proxy-wasm, so the compiler keeps it free of host calls. The module Envoy
//! loads (`module/`) adapts proxy-wasm to [`host::Host`] and hands each
//! request to an [`exchange::Exchange`]; tests use [`fake_host`].
//!
//! A request's path, one module per decision:
//!
//! - [`config`]: the operator's JSON, validated once at load.
//! - [`exchange`]: one request from headers through body to response; owns
//!   the feature order, enforce versus report, pinning and failover.
//! - [`forwarded`]: whose forwarding headers to believe and what the app is
//!   told ([`rfc7239`], [`authority`] and [`node`] parse what they carry).
//! - [`idp`]: in front of an IdP, authorization requests checked first.
//! - [`redirects`]: redirect_uri checks, `Location` rewriting, return-to.
//! - [`login_flow`]: sealed per-login cookies that pin a callback to its
//!   node, session affinity, failover ([`state_cookie`] seals them under
//!   the [`keyring`]; [`cookie`] reads and writes the headers).
//! - [`decision`]: the refusal reasons (status, body, code, counter) and
//!   header changes; [`metrics`]: the counters.
//! - Primitives: [`header_map`] (the ABI's header buffer), [`uri`].
//!
//! Dependency rule: features depend on primitives and [`decision`], never on
//! each other or on [`exchange`]; only [`exchange`] sees [`host`].

pub mod authority;
pub mod config;
pub mod cookie;
pub mod decision;
pub mod exchange;
pub mod fake_host;
pub mod forwarded;
pub mod header_map;
pub mod host;
pub mod idp;
pub mod keyring;
pub mod login_flow;
pub mod metrics;
pub mod node;
pub mod redirects;
pub mod rfc7239;
pub mod state_cookie;
pub mod uri;
