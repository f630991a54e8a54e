//! Any request headers, any of several trust configurations: `decide` must
//! return a decision, never panic (a panic in Envoy's V8 fails requests),
//! and every header it emits re-parses to the same values: one scheme, one
//! host, one port, addresses only in X-Forwarded-For, X-Real-IP its client
//! (the first entry), and a single RFC 7239 element saying all of them.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::forwarded::rfc7239;
use oidc_edge::forwarded::{decide, Connection};
use oidc_edge::http::authority::{Authority, Proto};
use oidc_edge::http::node::{parse_port, Node};
use oidc_edge::outcome::{HeaderOp, Verdict};
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
    let decision = decide(&cfg, &headers, &mut Conn(&input));
    let Verdict::Forward(ops) = decision.verdict else {
        return;
    };
    let Some(external) = decision.external else {
        panic!("forwarded without an external origin");
    };
    let set = |name: &str| {
        ops.iter().rev().find_map(|op| match op {
            HeaderOp::Set(n, v) if *n == name => Some(Some(v.as_str())),
            HeaderOp::Remove(n) if *n == name => Some(None),
            _ => None,
        })
    };
    // A header the plan left alone already held the wanted value.
    let value = |name: &str| -> Option<String> {
        match set(name) {
            Some(v) => v.map(str::to_string),
            None => headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
        }
    };
    let proto = value("x-forwarded-proto").expect("X-Forwarded-Proto is always written");
    assert_eq!(Proto::parse(&proto), Some(external.proto), "{proto:?}");
    let host = value("x-forwarded-host").expect("X-Forwarded-Host is always written");
    let authority = Authority::parse(&host).unwrap_or_else(|| panic!("X-Forwarded-Host {host:?}"));
    assert_eq!(authority.host, external.authority.host);
    let port = value("x-forwarded-port").expect("X-Forwarded-Port is always written");
    assert_eq!(parse_port(&port), Some(external.port()), "{port:?}");
    let chain: Vec<IpAddr> = value("x-forwarded-for")
        .map(|v| {
            v.split(", ")
                .map(|m| m.parse().unwrap_or_else(|_| panic!("X-Forwarded-For member {m:?}")))
                .collect()
        })
        .unwrap_or_default();
    let real_ip = value("x-real-ip").map(|v| {
        v.parse::<IpAddr>()
            .unwrap_or_else(|_| panic!("X-Real-IP {v:?}"))
    });
    if let Some(ip) = real_ip {
        assert_eq!(chain.first(), Some(&ip), "X-Real-IP is the client");
    }
    if let Some(Some(fwd)) = set("forwarded") {
        let elements = rfc7239::parse([fwd]).unwrap_or_else(|| panic!("emitted Forwarded {fwd:?} does not parse"));
        assert_eq!(elements.len(), 1, "{fwd:?}");
        let e = &elements[0];
        assert_eq!(e.proto, Some(external.proto), "{fwd:?}");
        assert_eq!(e.host.as_ref().map(|a| &a.host), Some(&external.authority.host), "{fwd:?}");
        match real_ip {
            Some(ip) => assert_eq!(e.for_node, Some(Node::Ip(ip)), "{fwd:?}"),
            None => assert_eq!(e.for_node, Some(Node::Hidden), "{fwd:?}"),
        }
    }
});
