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
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Polls `what` every 50 ms until it holds; panics with `describe()` after
/// `within`. (A wait for a state, never a timing assertion.)
pub fn wait_until(
    within: Duration,
    what: &str,
    mut cond: impl FnMut() -> bool,
    describe: impl Fn() -> String,
) {
    let deadline = Instant::now() + within;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}:\n{}",
            describe()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
