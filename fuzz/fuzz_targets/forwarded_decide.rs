//! Any request headers, any of several trust configurations: `decide` must
//! return a decision, never panic (a panic in Envoy's V8 fails requests).
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::forwarded::{decide, Connection};
use std::net::IpAddr;

const CONFIGS: &[&str] = &[
    r#"{"forwarded": {}}"#,
    r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "fd00::/8"]}}"#,
    // Verification off, so the fuzzer reaches the trusted paths without
    // guessing the token.
    r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "fd00::/8"], "peer_token_env": null, "accept_host": true, "accept_prefix": true}}"#,
    r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "trusted_hops": 3, "family": "forwarded", "accept_host": true, "emit_forwarded": true, "rewrite_host": true}}"#,
    r#"{"forwarded": {"trusted_hops": 10, "allowed_hosts": ["app.example.com", "*.example.org"]}}"#,
    r#"{"forwarded": {"peer_address_from": "source_address", "trusted_cidrs": ["10.0.0.0/8"], "external_origin": "https://app.example.com:8443"}}"#,
];

/// The peer token the trusted configurations expect (`<address>;<token>`).
const TOKEN: &str = "fuzz-peer-token-0123456789abcdefghijkl";

const NAMES: &[&str] = &[
    ":authority",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-oidc-edge-peer",
    "x-real-ip",
    "true-client-ip",
    "x-forwarded-ssl",
];

#[derive(Arbitrary, Debug)]
struct Input {
    config: u8,
    tls: bool,
    source: Option<[u8; 4]>,
    headers: Vec<(u8, Vec<u8>)>,
}

struct Conn<'a>(&'a Input);

impl Connection for Conn<'_> {
    fn source_address(&mut self) -> Option<IpAddr> {
        self.0.source.map(IpAddr::from)
    }
    fn is_tls(&mut self) -> bool {
        self.0.tls
    }
}

fuzz_target!(|input: Input| {
    let cfg_text = CONFIGS[input.config as usize % CONFIGS.len()];
    let env = |k: &str| (k == "OIDC_EDGE_PEER_TOKEN").then(|| TOKEN.to_string());
    let Some(cfg) = Config::parse_with_env(cfg_text.as_bytes(), &env)
        .ok()
        .and_then(|c| c.forwarded)
    else {
        return;
    };
    let headers: Vec<(&str, &[u8])> = input
        .headers
        .iter()
        .map(|(n, v)| (NAMES[*n as usize % NAMES.len()], v.as_slice()))
        .collect();
    let _ = decide(&cfg, &headers, &mut Conn(&input));
});
