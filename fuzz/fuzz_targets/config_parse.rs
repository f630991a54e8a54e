//! Any bytes as plugin configuration: a clear error or a config, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = oidc_edge::config::Config::parse(data) {
        let _ = cfg.warnings();
    }
});
