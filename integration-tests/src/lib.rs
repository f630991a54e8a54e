//! Test harness: a real Envoy running the built oidc-edge module, echo
//! upstreams and a raw HTTP/1.1 client, all on loopback.
//!
//! Every port is chosen by the kernel (Envoy's admin and listener bind port 0
//! and are read back), so tests run in parallel. Every process started is
//! killed when its handle drops, also when a test panics; a failing test
//! prints Envoy's log and oidc-edge's counters.

pub mod browser;
pub mod chromium;
pub mod client;
pub mod discovery_bed;
pub mod envoy;
pub mod fleet;
pub mod multi_host_bed;
pub mod node;
pub mod oidc_bed;
pub mod real_lb;
pub mod refresh_load;
pub mod soak;
pub mod tls;
pub mod upstream;

pub use client::{Request, Response};
pub use envoy::{free_port, Envoy, EnvoyConfig};
pub use upstream::{Echo, Upstream};

use std::path::PathBuf;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}
