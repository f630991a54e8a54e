//! Property tests over the whole forwarded-header decision: for any headers
//! a client or a proxy can send, under any of several trust configurations,
//! the logic does not panic and the app receives only well-formed,
//! consistent forwarding headers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use oidc_edge::config::Config;
use oidc_edge::forwarded::rfc7239;
use oidc_edge::forwarded::{decide, Connection};
use oidc_edge::http::authority::{Authority, Proto};
use oidc_edge::http::node::{parse_ip_with_port, parse_port};
use oidc_edge::outcome::{HeaderOp, Verdict};
use proptest::prelude::*;
use std::net::IpAddr;

struct Conn(bool);

impl Connection for Conn {
    fn source_address(&mut self) -> Option<IpAddr> {
        "10.0.0.5".parse().ok()
    }
    fn is_tls(&mut self) -> bool {
        self.0
    }
}

const CONFIGS: &[&str] = &[
    r#"{"forwarded": {}}"#,
    r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "fd00::/8"]}}"#,
    r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "trusted_hops": 3, "family": "forwarded", "accept_host": true, "emit_forwarded": true, "rewrite_host": true}}"#,
    r#"{"forwarded": {"trusted_hops": 2, "accept_host": true, "accept_prefix": true, "allowed_hosts": ["app.example.com", "*.example.org"]}}"#,
    r#"{"forwarded": {"peer_address_from": "source_address", "trusted_cidrs": ["10.0.0.0/8"], "external_origin": "https://app.example.com:8443"}}"#,
    MULTI,
    r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["fd00::/8"], "tcp_load_balancers": [{"cidrs": ["10.0.0.0/8"], "scheme": "http"}], "external_origins": ["https://app.example.com"]}}"#,
];

/// One Envoy behind an HTTP LB (fd00::/8) and a PROXY-protocol TCP LB
/// (10.0.0.0/8), serving declared and undeclared hosts.
const MULTI: &str = r#"{"forwarded": {"trusted_cidrs": ["fd00::/8"],
    "tcp_load_balancers": [{"cidrs": ["10.0.0.0/8"], "proxy_protocol": true}],
    "external_origins": ["https://app.example.com", "http://app.example.com:8080", "https://b.example.org:8443"]}}"#;

/// The peer token of the trusted configurations: the reference
/// header_mutation writes `<address>;<token>`.
const TOKEN: &str = "prop-peer-token-0123456789abcdefghijklmn";

fn parse(cfg: &str) -> oidc_edge::forwarded::config::ForwardedConfig {
    Config::parse_with_env(cfg.as_bytes(), &|k| {
        (k == "OIDC_EDGE_PEER_TOKEN").then(|| TOKEN.to_string())
    })
    .unwrap()
    .forwarded
    .unwrap()
}

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
    "x-other",
];

/// Bytes biased towards the syntax these headers use.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let interesting = prop::sample::select(
        b"0123456789abcdefABCDEF.:[]/,;=\" \t\\_-%?#@xhtpsunkowfrb\xff\xc3\x00\x7f".to_vec(),
    );
    let token = prop::sample::select(vec![
        &b"10.0.0.5"[..],
        b"10.0.0.5;prop-peer-token-0123456789abcdefghijklmn",
        b"203.0.113.9",
        b"[2001:db8::1]:443",
        b"fd00::7",
        b"https",
        b"http",
        b"app.example.com",
        b"for=",
        b"proto=",
        b"host=",
        b"unknown",
        b", ",
        b";",
        b"\"",
    ]);
    prop::collection::vec(
        prop_oneof![3 => interesting.prop_map(|b| vec![b]), 2 => token.prop_map(|t| t.to_vec()), 1 => any::<u8>().prop_map(|b| vec![b])],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

fn headers() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec((prop::sample::select(NAMES), value()), 0..10)
        .prop_map(|v| v.into_iter().map(|(n, v)| (n.to_string(), v)).collect())
}

fn apply(headers: &mut Vec<(String, Vec<u8>)>, ops: &[HeaderOp]) {
    for op in ops {
        match op {
            HeaderOp::Set(n, v) => {
                headers.retain(|(h, _)| h != n);
                headers.push((n.to_string(), v.clone().into_bytes()));
            }
            HeaderOp::Remove(n) => headers.retain(|(h, _)| h != n),
            HeaderOp::RemoveNamed(n) => headers.retain(|(h, _)| h != n),
            HeaderOp::SetNamed(n, v) => {
                headers.retain(|(h, _)| h != n);
                headers.push((n.clone(), v.clone().into_bytes()));
            }
        }
    }
}

fn one<'a>(h: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    let mut it = h.iter().filter(|(n, _)| n == name);
    let first = it
        .next()
        .map(|(_, v)| std::str::from_utf8(v).expect("forwarding headers we send are UTF-8"));
    assert!(it.next().is_none(), "{name} sent twice");
    first
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_app_only_ever_receives_well_formed_forwarding_headers(
        cfg in prop::sample::select(CONFIGS),
        mut req in headers(),
        tls in any::<bool>(),
    ) {
        let cfg = parse(cfg);
        let borrowed: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let d = decide(&cfg, &borrowed, &mut Conn(tls));
        drop(borrowed);
        let Verdict::Forward(ops) = d.verdict else { return Ok(()); };
        apply(&mut req, &ops);
        let proto = one(&req, "x-forwarded-proto").expect("XFP always set");
        let proto = Proto::parse(proto).expect("XFP is http or https");
        let host = Authority::parse(one(&req, "x-forwarded-host").expect("XFH always set")).expect("XFH valid");
        let port = parse_port(one(&req, "x-forwarded-port").expect("port always set")).expect("port valid");
        prop_assert_eq!(host.port.unwrap_or(proto.default_port()), port, "XFH's port agrees with X-Forwarded-Port");
        if let Some(xff) = one(&req, "x-forwarded-for") {
            for e in xff.split(", ") {
                prop_assert!(parse_ip_with_port(e).is_some(), "XFF entry {:?}", e);
            }
        }
        if let Some(prefix) = one(&req, "x-forwarded-prefix") {
            prop_assert!(prefix.starts_with('/') && !prefix.contains("//") && !prefix.contains(".."));
        }
        // Client-address headers name the same client as X-Forwarded-For's
        // leftmost entry, or are absent (issue points 3 and 6).
        let xff_first = one(&req, "x-forwarded-for").and_then(|x| x.split(", ").next()).map(str::to_string);
        for name in ["x-real-ip", "true-client-ip"] {
            if let Some(v) = one(&req, name) {
                prop_assert!(parse_ip_with_port(v).is_some(), "{} {:?}", name, v);
                prop_assert_eq!(Some(v.to_string()), xff_first.clone(), "{} agrees with XFF", name);
            }
        }
        prop_assert!(one(&req, "x-forwarded-ssl").is_none(), "scheme variants never reach the app");
        if let Some(fw) = one(&req, "forwarded") {
            prop_assert!(rfc7239::parse([fw]).is_some_and(|e| e.len() == 1), "we emit what we parse: {}", fw);
        }
        if cfg.peer == oidc_edge::forwarded::config::PeerSource::Header("x-oidc-edge-peer".into()) {
            prop_assert!(one(&req, "x-oidc-edge-peer").is_none());
        }
    }

    /// Issue point 1: the family the LB does not emit is the client's to
    /// write; nothing it says changes what the app is told (beyond its own
    /// removal and the counters).
    #[test]
    fn the_other_family_never_changes_the_decision(
        fw_cfg in any::<bool>(),
        req in headers(),
        other in prop::collection::vec(value(), 1..3),
        tls in any::<bool>(),
    ) {
        let (cfg, other_names): (&str, &[&str]) = if fw_cfg {
            (r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "family": "forwarded", "accept_host": true, "emit_forwarded": true}}"#,
             &["x-forwarded-for", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-proto"])
        } else {
            (r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "accept_host": true, "accept_prefix": true}}"#, &["forwarded"])
        };
        let cfg = parse(cfg);
        let own: Vec<(String, Vec<u8>)> = req.into_iter().filter(|(n, _)| !other_names.contains(&n.as_str())).collect();
        let mut with_other = own.clone();
        for (i, v) in other.iter().enumerate() {
            with_other.push((other_names[i % other_names.len()].to_string(), v.clone()));
        }
        let outcome = |h: &[(String, Vec<u8>)]| {
            let borrowed: Vec<(&str, &[u8])> = h.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            let d = decide(&cfg, &borrowed, &mut Conn(tls));
            drop(borrowed);
            match d.verdict {
                Verdict::Reject(r) => Err(r),
                Verdict::Forward(ops) => {
                    let mut out = h.to_vec();
                    apply(&mut out, &ops);
                    out.sort();
                    Ok(out)
                }
            }
        };
        prop_assert_eq!(outcome(&own), outcome(&with_other));
    }

    /// Issue 11 §1b: behind a TCP load balancer every forwarding header is
    /// the client's: none of them changes what the app is told.
    #[test]
    fn a_tcp_load_balancers_forwarding_headers_never_change_the_decision(
        req in headers(),
        extra in headers(),
        tls in any::<bool>(),
    ) {
        let cfg = parse(MULTI);
        let peer = ("x-oidc-edge-peer".to_string(), format!("10.0.0.7;{TOKEN}").into_bytes());
        let keep = |h: &(String, Vec<u8>)| h.0 == ":authority";
        let mut base: Vec<(String, Vec<u8>)> = req.into_iter().filter(keep).collect();
        base.push(peer);
        let mut spoofed = base.clone();
        spoofed.extend(extra.into_iter().filter(|h| !keep(h) && h.0 != "x-oidc-edge-peer"));
        let outcome = |h: &[(String, Vec<u8>)]| {
            let borrowed: Vec<(&str, &[u8])> = h.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            let d = decide(&cfg, &borrowed, &mut Conn(tls));
            drop(borrowed);
            match d.verdict {
                Verdict::Reject(r) => Err(r),
                Verdict::Forward(ops) => {
                    let mut out = h.to_vec();
                    apply(&mut out, &ops);
                    out.retain(|(n, _)| n.starts_with("x-forwarded") || n == "forwarded" || n == "x-real-ip");
                    out.sort();
                    Ok((out, d.external.map(|o| o.serialize())))
                }
            }
        };
        prop_assert_eq!(outcome(&base), outcome(&spoofed));
    }

    /// Issue 11 §1: a request to a declared host is told that host's
    /// origin, whoever the peer and whatever else it sends.
    #[test]
    fn a_declared_host_gets_its_declared_origin(
        req in headers(),
        host in prop::sample::select(&[
            ("app.example.com", "https://app.example.com"),
            ("APP.example.com:443", "https://app.example.com"),
            ("app.example.com:8080", "http://app.example.com:8080"),
            ("b.example.org", "https://b.example.org:8443"),
            ("b.example.org:8443", "https://b.example.org:8443"),
        ][..]),
        tls in any::<bool>(),
    ) {
        let cfg = parse(MULTI);
        let mut req: Vec<(String, Vec<u8>)> = req.into_iter().filter(|(n, _)| n != ":authority").collect();
        req.insert(0, (":authority".to_string(), host.0.as_bytes().to_vec()));
        let borrowed: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
        let d = decide(&cfg, &borrowed, &mut Conn(tls));
        drop(borrowed);
        let external = d.external.map(|o| o.serialize());
        prop_assert_eq!(external.as_deref(), Some(host.1));
        let Verdict::Forward(ops) = d.verdict else { return Err(TestCaseError::fail("rejected")); };
        apply(&mut req, &ops);
        let (scheme, rest) = host.1.split_once("://").unwrap();
        prop_assert_eq!(one(&req, "x-forwarded-proto"), Some(scheme));
        prop_assert_eq!(one(&req, "x-forwarded-host"), Some(rest));
    }

    #[test]
    fn rfc7239_parser_never_panics(line in value()) {
        if let Ok(s) = std::str::from_utf8(&line) {
            let _ = rfc7239::parse([s]);
        }
    }

    #[test]
    fn config_parser_never_panics(json in "[{}\\[\\]\":,a-z_0-9./ ]{0,80}") {
        let _ = Config::parse(json.as_bytes());
    }
}

mod cookie_codec {
    use oidc_edge::seal::keyring::{Key, KeyRing};
    use oidc_edge::seal::sealed_cookie::{
        cookie_name, open_flow, seal, state_hash, Binding, FlowClaims, Purpose, Validity,
    };
    use proptest::prelude::*;

    fn ring() -> KeyRing {
        KeyRing::new(vec![
            Key::new("k1", &[7; 32]).unwrap(),
            Key::new("k0", &[9; 32]).unwrap(),
        ])
        .unwrap()
    }

    fn claims() -> impl Strategy<Value = FlowClaims> {
        (
            "[0-9.:]{1,40}",
            0u64..u64::MAX / 4,
            1u64..100_000,
            any::<u32>(),
            0u8..3,
            "[ -~]{0,200}",
        )
            .prop_map(
                |(node, issued_at, life, seq, restarts, return_to)| FlowClaims {
                    node,
                    issued_at,
                    expires_at: issued_at / 1000 + life,
                    seq,
                    restarts,
                    return_to,
                },
            )
    }

    fn binding(name: &str) -> Binding<'_> {
        Binding {
            purpose: Purpose::Flow,
            name,
            origin: "https://app.example.com",
        }
    }

    fn at(c: &FlowClaims) -> Validity {
        Validity {
            now_ms: c.issued_at,
            max_lifetime_s: 100_000,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

        /// Seal then open gives back exactly what was sealed.
        #[test]
        fn round_trip(state in "[!-~]{1,64}", c in claims()) {
            let r = ring();
            let name = cookie_name("__Host-oidc-edge-", &state);
            let v = seal(r.signing(), &binding(&name), &state_hash(&state), &c);
            prop_assert_eq!(open_flow(&r, &binding(&name), &state, &v, &at(&c)), Ok(c));
        }

        /// Any single-byte change to the cookie's value, or any change to its
        /// name, origin or state, is refused.
        #[test]
        fn every_single_byte_change_is_refused(state in "[!-~]{1,64}", c in claims(), pos in any::<prop::sample::Index>(), delta in 1u8..=255) {
            use base64::Engine;
            let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let r = ring();
            let name = cookie_name("__Host-oidc-edge-", &state);
            let v = seal(r.signing(), &binding(&name), &state_hash(&state), &c);
            let now = at(&c);
            prop_assert!(open_flow(&r, &binding(&name), &state, &v, &now).is_ok());
            let mut raw = e.decode(&v).unwrap();
            let i = pos.index(raw.len());
            raw[i] = raw[i].wrapping_add(delta);
            prop_assert!(open_flow(&r, &binding(&name), &state, &e.encode(&raw), &now).is_err(), "byte {} changed", i);
            let mut other_name = name.clone().into_bytes();
            let j = pos.index(other_name.len());
            other_name[j] = if other_name[j] == b'A' { b'B' } else { b'A' };
            let other_name = String::from_utf8(other_name).unwrap();
            prop_assert!(open_flow(&r, &binding(&other_name), &state, &v, &now).is_err());
            let other_origin = Binding { origin: "https://app.example.com:444", ..binding(&name) };
            prop_assert!(open_flow(&r, &other_origin, &state, &v, &now).is_err());
            let other_state = format!("{state}x");
            prop_assert!(open_flow(&r, &binding(&name), &other_state, &v, &now).is_err());
            let as_session = Binding { purpose: Purpose::Session, ..binding(&name) };
            prop_assert!(open_flow(&r, &as_session, &state, &v, &now).is_err());
        }

        /// A ring that remembers what it opened answers every later open
        /// exactly as a ring that never saw the cookie: same claims, same
        /// refusals, at any time, for any binding.
        #[test]
        fn remembering_never_changes_an_answer(
            state in "[!-~]{1,16}",
            c in claims(),
            opens in prop::collection::vec((0usize..4, 0u8..3, -2i64..3), 1..12),
        ) {
            // Session cookies are the ones a ring remembers.
            let r = ring();
            let name = cookie_name("__Host-oidc-edge-", &state);
            let session = |n| Binding { purpose: Purpose::Session, ..binding(n) };
            let v = seal(r.signing(), &session(&name), &state_hash(&state), &c);
            let mut tampered = v.clone().into_bytes();
            let last = tampered.len() - 1;
            tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            let values = [v.clone(), tampered, v.clone(), format!("{v}A")];
            for (which, bind, days) in opens {
                let b = match bind {
                    0 => session(&name),
                    1 => Binding { origin: "https://other.example.com", ..session(&name) },
                    _ => binding(&name),
                };
                let now = Validity {
                    now_ms: c.issued_at.saturating_add_signed(days * 40_000_000),
                    max_lifetime_s: 100_000,
                };
                let fresh = r.clone(); // a copy starts with nothing remembered
                prop_assert_eq!(
                    open_flow(&r, &b, &state, &values[which], &now),
                    open_flow(&fresh, &b, &state, &values[which], &now)
                );
            }
        }
    }
}

mod return_to {
    use oidc_edge::http::authority::{HostPattern, Origin};
    use oidc_edge::redirects::is_safe_target;
    use proptest::prelude::*;

    /// Strings built from the pieces open-redirect payloads are made of.
    fn target() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "/",
            "//",
            "\\",
            "%2f",
            "%2F",
            "%5c",
            "%09",
            "\t",
            "\n",
            " ",
            ".",
            "..",
            "%2e",
            ":",
            "@",
            "?",
            "#",
            "https:",
            "http:",
            "HTTPS:",
            "javascript:",
            "evil.example",
            "app.example.com",
            "https://app.example.com",
            "http://app.example.com",
            "https://docs.example.org",
            "http://docs.example.org",
            ":443",
            ":8443",
            ":80",
            "a",
            "%40",
            "%3a",
            "\u{3002}",
            "\u{ff0f}",
            "\u{0}",
            "[::1]",
            "127.0.0.1",
            "%25",
            "&",
            "=",
        ]);
        prop::collection::vec(piece, 1..8).prop_map(|p| p.concat())
    }

    /// The external origins the guard runs behind: default and other port.
    fn external() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "https://app.example.com",
            "https://app.example.com:8443",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever the guard accepts, a browser (the WHATWG URL parser)
        /// resolves to the site's own origin (scheme, host and port: RFC
        /// 6454), before and after one more round of percent-decoding by a
        /// careless app.
        #[test]
        fn accepted_targets_stay_on_the_site(v in target(), ext in external()) {
            let origin = Origin::parse(ext).unwrap();
            if is_safe_target(&v, &origin, &[]) {
                let base = url::Url::parse(&format!("{ext}/login")).unwrap();
                let resolved = base.join(&v).unwrap();
                prop_assert_eq!(resolved.origin(), base.origin(), "{:?} -> {}", v, resolved);
                let decoded: String = form_urlencoded::parse(format!("x={}", v.replace('+', "%2B")).as_bytes())
                    .map(|(_, d)| d.into_owned()).next().unwrap_or_default();
                let again = base.join(&decoded).unwrap();
                prop_assert_eq!(again.origin(), base.origin(), "{:?} decoded to {:?} -> {}", v, decoded, again);
            }
        }

        /// Allowed hosts widen the hosts, never the scheme: an accepted
        /// target is the site's origin or an allowed host over https.
        #[test]
        fn allowed_hosts_only(v in target(), ext in external()) {
            let allowed = [HostPattern::parse("*.example.org").unwrap()];
            let origin = Origin::parse(ext).unwrap();
            if is_safe_target(&v, &origin, &allowed) {
                let base = url::Url::parse(&format!("{ext}/")).unwrap();
                let resolved = base.join(&v).unwrap();
                let host = resolved.host_str().unwrap_or_default().to_string();
                prop_assert!(
                    resolved.origin() == base.origin()
                        || (host.ends_with(".example.org") && resolved.scheme() == "https"),
                    "{:?} -> {}", v, resolved
                );
            }
        }
    }
}

mod routes {
    use oidc_edge::http::uri::route_matches;
    use proptest::prelude::*;

    /// Paths built from the pieces that spell one route several ways: half
    /// free combinations, half the endpoint with its segments and
    /// separators respelled.
    fn path() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "/",
            "//",
            "oauth2",
            "OAuth2",
            "authorize",
            "Authorize",
            "%61",
            "uthorize",
            "%2561",
            ".",
            "..",
            "%2e",
            "%2E",
            ";x",
            ";",
            "\\",
            "x",
            "%2f",
            "%3b",
            "?",
            "#",
            "%",
        ]);
        let free =
            prop::collection::vec(piece.clone(), 1..8).prop_map(|p| format!("/{}", p.concat()));
        let sep = || {
            prop::sample::select(vec![
                "/", "//", "\\", "/./", "/x/../", "/%2e/", ";x/", "/;/", "%2f",
            ])
        };
        let oauth2 =
            prop::sample::select(vec!["oauth2", "OAuth2", "%6Fauth2", "oauth2;a=b", "OAUTH2"]);
        let authorize = prop::sample::select(vec![
            "authorize",
            "Authorize",
            "%61uthorize",
            "%2561uthorize",
            "authorize;jsessionid=1",
            "authorize/",
            "authoriz%65",
        ]);
        let structured = (
            prop::collection::vec(piece.clone(), 0..2),
            sep(),
            oauth2,
            sep(),
            authorize,
            prop::collection::vec(piece, 0..2),
        )
            .prop_map(|(a, s1, o, s2, z, b)| {
                format!("/{}{s1}{o}{s2}{z}{}", a.concat(), b.concat())
            });
        prop_oneof![free, structured]
    }

    /// An independent lenient router: the WHATWG URL parser (dot segments,
    /// `%2e`, backslashes, as browsers and many servers resolve them), then
    /// case, empty segments and `;params` ignored.
    fn lenient(p: &str) -> String {
        let u = url::Url::parse(&format!("https://idp.example{p}")).unwrap();
        let segs: Vec<String> = u
            .path()
            .to_ascii_lowercase()
            .split('/')
            .map(|s| s.split(';').next().unwrap_or_default().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        format!("/{}", segs.join("/"))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// Whatever that router maps to the authorization endpoint, the
        /// check recognises: no spelling walks around it.
        #[test]
        fn every_spelling_a_lenient_router_maps_is_matched(p in path()) {
            if lenient(&p) == "/oauth2/authorize" {
                prop_assert!(route_matches(&p, "/oauth2/authorize"), "{:?}", p);
            }
        }

        /// Matching is reflexive for any configured path.
        #[test]
        fn a_path_matches_itself(p in path()) {
            let path = p.split(['?', '#']).next().unwrap_or("/");
            prop_assert!(route_matches(path, path), "{:?}", path);
        }
    }
}

mod locations {
    use oidc_edge::config::Config;
    use oidc_edge::http::authority::Origin;
    use oidc_edge::redirects::rewrite_location;
    use proptest::prelude::*;

    /// Locations built from the pieces of absolute, network-path and
    /// relative references to internal and other origins.
    fn location() -> impl Strategy<Value = String> {
        let piece = prop::sample::select(vec![
            "http://",
            "https://",
            "//",
            "///",
            "http:",
            "app.internal",
            "APP.internal",
            ":8080",
            ":8081",
            ":80",
            "evil.example",
            "@",
            "/",
            "/x",
            "?q=%2F",
            "#f",
            ".",
            "..",
            "%2e",
            "\\",
            ";p",
            "&",
        ]);
        prop::collection::vec(piece, 1..7).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

        /// A rewritten Location is where the browser would have gone on the
        /// internal origin (WHATWG resolution: path, query and fragment),
        /// now on the external origin.
        #[test]
        fn rewritten_locations_keep_their_target_on_the_external_origin(loc in location()) {
            let cfg = Config::parse(br#"{"forwarded": {}, "redirects": {"internal_origins": ["http://app.internal:8080"]}}"#)
                .unwrap().redirects.unwrap();
            let ext = Origin::parse("https://app.example.com").unwrap();
            if let Some(moved) = rewrite_location(&cfg, &loc, None, &ext) {
                let internal = url::Url::parse("http://app.internal:8080/page").unwrap();
                let before = internal.join(&loc).unwrap();
                prop_assert_eq!(before.origin(), internal.origin(), "{:?} was not internal", loc);
                let after = url::Url::parse(&moved).unwrap();
                prop_assert_eq!(after.origin(), url::Url::parse("https://app.example.com/").unwrap().origin());
                prop_assert_eq!(
                    (after.path(), after.query(), after.fragment()),
                    (before.path(), before.query(), before.fragment()),
                    "{:?} -> {:?}", loc, moved
                );
            }
        }
    }
}
