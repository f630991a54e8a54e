//! Benchmarks live in `logic.rs` (`cargo bench -p oidc-edge-benches`); the load comparison in Envoy is `./build.sh bench`.
