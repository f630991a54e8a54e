//! oidc-edge: a proxy-wasm filter for Envoy that keeps OpenID Connect logins
//! working behind external load balancers.
//!
//! This crate is the logic, host-independent: it does not depend on
//! proxy-wasm, so the compiler keeps it free of host calls. The module Envoy
//! loads (`filter/module/`) adapts proxy-wasm to [`host::Host`] and hands
//! each request to an [`exchange::Exchange`]; tests use [`host::fake`].
//!
//! The pipeline, top to bottom:
//!
//! - [`exchange`]: one request from headers through body to response. It
//!   owns the feature order, enforce versus report, pinning and failover,
//!   and is the only module that sees [`host`].
//! - The features, in request order, each with its settings beside it
//!   (`<feature>::config`):
//!   [`forwarded`] (whose forwarding headers to believe, what the app is
//!   told) → [`idp`] (in front of an IdP: authorization requests checked
//!   first) → [`redirects`] (return-to, redirect_uri, `Location`s) →
//!   [`login_flow`] (sealed per-login cookies that pin a callback to its
//!   node; session affinity; failover).
//! - [`outcome`]: what features decide (refusal reasons with their status,
//!   body, code and counter; header changes; enforce or report), and
//!   [`metrics`]: the counters.
//! - [`diagnostics`]: what operators are told about a request (its
//!   decisions for Envoy's access log, the request id in log lines, a pin
//!   another node answered).
//! - [`config`]: the operator's JSON, assembled from the features' sections
//!   and validated once at load; [`discovery`] (the IdP's metadata: what
//!   is learned, what is refused, the fetch schedule) and [`live`] (the
//!   configuration in force: the operator's plus what discovery learned,
//!   and the discovery state machine the module's root context drives).
//! - Primitives: [`seal`] (key ring, sealed cookies), [`http`] (header
//!   buffer, cookies, URIs, authorities, addresses, owned header names) and
//!   [`text`] (how messages quote a value someone else wrote).
//!
//! Dependency rule: primitives depend on nothing above them; features
//! depend on primitives, [`outcome`], [`metrics`] and `config::field`, never
//! on each other, [`exchange`] or [`host`]; [`config`] assembles the
//! features' settings and passes between them what one section's
//! validation needs of another's; [`discovery`] depends on primitives and
//! `config::field` only, and [`live`] on [`config`], [`discovery`] and the
//! types it merges into. No module cycles.

pub mod config;
pub mod diagnostics;
pub mod discovery;
pub mod exchange;
pub mod forwarded;
pub mod host;
pub mod http;
pub mod idp;
pub mod live;
pub mod login_flow;
pub mod metrics;
pub mod outcome;
pub mod redirects;
pub mod seal;
pub mod text;
