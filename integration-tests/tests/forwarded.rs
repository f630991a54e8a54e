//! Forwarded-header normalization in a real Envoy 1.40, loaded from
//! `envoy/edge.yaml`: what the app behind oidc-edge receives from a trusted
//! load balancer and from an untrusted client, plus the host allowlist,
//! route re-matching, bad configurations and the counters.

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Upstream};
use serde_json::json;

/// Plays the load balancer: the only peer in `trusted_cidrs`.
const LB: &str = "127.0.0.2";
/// Plays a client reaching Envoy directly (not trusted).
const CLIENT: &str = "127.0.0.3";

/// An LB that sets every X-Forwarded header itself, host and prefix included.
const PLUGIN: &str = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"],
    "accept_host": true, "accept_prefix": true,
    "allowed_hosts": ["app.example.com", "internal.example"]}}"#;

/// The defaults: the LB sets X-Forwarded-For/-Proto/-Port and passes the
/// client's X-Forwarded-Host and -Prefix through (ALB, GCLB, most nginx setups).
const PLUGIN_DEFAULTS: &str = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"],
    "allowed_hosts": ["app.example.com", "internal.example"]}}"#;

struct Edge {
    envoy: Envoy,
    _upstream: Upstream,
}

fn edge_with(cfg: EnvoyConfig) -> Edge {
    let upstream = Upstream::start("app-1");
    let envoy = Envoy::start(&cfg.upstreams(&[upstream.addr]));
    Edge {
        envoy,
        _upstream: upstream,
    }
}

fn edge(plugin: &str) -> Edge {
    edge_with(EnvoyConfig::reference().plugin_config(plugin))
}

impl Edge {
    fn echo(&self, req: Request) -> Echo {
        let resp = req.send(self.envoy.port);
        assert_eq!(
            resp.status,
            200,
            "expected the upstream's answer, got: {}",
            resp.text()
        );
        Echo::parse(&resp.body)
    }
}

/// The four values an app builds its redirect_uri and logs from.
fn view(e: &Echo) -> [Option<String>; 4] {
    [
        e.header("x-forwarded-proto"),
        e.header("x-forwarded-host"),
        e.header("x-forwarded-port"),
        e.header("x-forwarded-for"),
    ]
}

fn some(v: [&str; 4]) -> [Option<String>; 4] {
    v.map(|s| Some(s.to_string()))
}

#[test]
fn trusted_load_balancer_headers_reach_the_app_consistently() {
    let edge = edge(PLUGIN);
    let echo = edge.echo(
        Request::get("internal.example", "/account?next=%2Fhome")
            .from(LB)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "app.example.com")
            .header("X-Forwarded-Port", "443")
            .header("X-Forwarded-For", "203.0.113.9"),
    );
    assert_eq!(
        view(&echo),
        some(["https", "app.example.com", "443", "203.0.113.9"])
    );
    assert_eq!(
        echo.path, "/account?next=%2Fhome",
        "path and query untouched"
    );
    assert_eq!(
        echo.header("x-oidc-edge-peer"),
        None,
        "the internal peer header must not reach the app"
    );
    assert_eq!(echo.header("forwarded"), None);
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.trusted_peer"), 1);
    assert_eq!(
        edge.envoy.counter("oidc_edge.forwarded.rewritten"),
        0,
        "the LB's scheme, host and port reached the app as sent"
    );
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.untrusted_peer"), 0);
}

#[test]
fn untrusted_client_cannot_spoof_any_forwarding_header() {
    let edge = edge(PLUGIN);
    let echo = edge.echo(
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Port", "8443")
            .header("X-Forwarded-For", "198.51.100.1")
            .header("X-Forwarded-Prefix", "/evil")
            .header(
                "Forwarded",
                "for=198.51.100.1;proto=https;host=evil.example",
            )
            .header("X-Oidc-Edge-Peer", LB),
    );
    assert_eq!(
        view(&echo),
        some(["http", "app.example.com", "80", "127.0.0.3"])
    );
    assert_eq!(echo.header("forwarded"), None);
    assert_eq!(echo.header("x-forwarded-prefix"), None);
    assert_eq!(echo.header("x-oidc-edge-peer"), None);
    assert_eq!(
        edge.envoy.counter("oidc_edge.forwarded.untrusted_stripped"),
        1
    );
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.trusted_peer"), 0);
}

#[test]
fn client_claiming_a_trusted_address_in_x_forwarded_for_is_not_trusted() {
    // With use_remote_address: false Envoy would take source.address from the
    // rightmost XFF entry; edge.yaml's header_mutation records the real peer.
    let edge = edge(PLUGIN);
    let echo = edge.echo(
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X-Forwarded-For", LB)
            .header("X-Forwarded-Proto", "https"),
    );
    assert_eq!(
        view(&echo),
        some(["http", "app.example.com", "80", "127.0.0.3"])
    );
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.trusted_peer"), 0);
}

#[test]
fn underscore_variants_of_forwarding_headers_never_reach_the_app() {
    // CGI/WSGI servers read X_Forwarded_Host as X-Forwarded-Host.
    let edge = edge(PLUGIN);
    let echo = edge.echo(
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X_Forwarded_Host", "evil.example"),
    );
    assert!(
        echo.headers.iter().all(|(k, _)| !k.contains('_')),
        "{:?}",
        echo.headers
    );
}

#[test]
fn client_prepended_values_lose_to_the_load_balancers_appended_ones() {
    // An LB that appends (rather than overwrites) leaves the client's claims on the left.
    let edge = edge(PLUGIN);
    let echo = edge.echo(
        Request::get("internal.example", "/")
            .from(LB)
            .header("X-Forwarded-For", "10.9.9.9")
            .header("X-Forwarded-For", "203.0.113.9")
            .header("X-Forwarded-Proto", "http")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.example, app.example.com"),
    );
    assert_eq!(
        view(&echo),
        some(["https", "app.example.com", "443", "203.0.113.9"])
    );
}

#[test]
fn rfc7239_forwarded_from_the_load_balancer() {
    let edge = edge(
        r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "emit_forwarded": true, "family": "forwarded", "accept_host": true}}"#,
    );
    let echo = edge.echo(
        Request::get("internal.example", "/")
            .from(LB)
            .header("Forwarded", "for=198.51.100.1;proto=http")
            .header(
                "Forwarded",
                "For=\"[2001:db8::9]:4711\";Proto=https;Host=\"app.example.com:8443\"",
            )
            .header("X-Forwarded-Proto", "http"),
    );
    // The two Forwarded lines are one list; with one trusted hop the rightmost
    // element is the LB's, and X-Forwarded-Proto (not the LB's family) is not read.
    assert_eq!(
        view(&echo),
        some(["https", "app.example.com:8443", "8443", "2001:db8::9"])
    );
    assert_eq!(
        echo.header("forwarded").as_deref(),
        Some("for=\"[2001:db8::9]\";host=\"app.example.com:8443\";proto=https")
    );
}

#[test]
fn by_default_a_client_host_and_prefix_passed_through_by_the_lb_are_not_believed() {
    // The LB sets X-Forwarded-Proto/-For/-Port; X-Forwarded-Host and -Prefix
    // came from the client and the LB passed them on, as ALB and GCLB do.
    let edge = edge(PLUGIN_DEFAULTS);
    let echo = edge.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-Prefix", "/evil")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Port", "443")
            .header("X-Forwarded-For", "203.0.113.9"),
    );
    assert_eq!(
        view(&echo),
        some(["https", "app.example.com", "443", "203.0.113.9"])
    );
    assert_eq!(echo.header("x-forwarded-prefix"), None);
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.host_rejected"), 0);
}

#[test]
fn the_family_the_lb_does_not_emit_is_removed_never_a_fallback() {
    // family x-forwarded (the default): the LB's X-Forwarded-Proto is
    // malformed and a client-sent Forwarded rides along. The connection's
    // scheme is used, never Forwarded's.
    let xf = edge(PLUGIN);
    let echo = xf.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-Proto", "gopher")
            .header(
                "Forwarded",
                "for=198.51.100.1;proto=https;host=evil.example",
            ),
    );
    assert_eq!(
        view(&echo),
        some(["http", "app.example.com", "80", "127.0.0.2"])
    );
    assert_eq!(echo.header("forwarded"), None);
    assert_eq!(xf.envoy.counter("oidc_edge.forwarded.malformed"), 1);
    assert_eq!(
        xf.envoy.counter("oidc_edge.forwarded.other_family_removed"),
        1
    );

    // family forwarded: the LB's Forwarded is malformed; the client's
    // X-Forwarded-* are removed, not used instead.
    let fw = edge(
        r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "family": "forwarded", "accept_host": true}}"#,
    );
    let echo = fw.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("Forwarded", "for=\"unterminated")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-For", "198.51.100.1")
            .header("X-Forwarded-Prefix", "/evil"),
    );
    assert_eq!(
        view(&echo),
        some(["http", "app.example.com", "80", "127.0.0.2"])
    );
    assert_eq!(echo.header("x-forwarded-prefix"), None);
    assert_eq!(fw.envoy.counter("oidc_edge.forwarded.malformed"), 1);
    assert_eq!(
        fw.envoy.counter("oidc_edge.forwarded.other_family_removed"),
        1
    );
}

#[test]
fn every_client_address_header_tells_the_decided_client() {
    // An app may read its client from X-Real-IP or a CDN's header rather
    // than X-Forwarded-For: they all say what oidc-edge decided.
    let edge = edge(PLUGIN);
    let spoofed = edge.echo(
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X-Real-IP", LB)
            .header("True-Client-IP", "198.51.100.1")
            .header("CF-Connecting-IP", "198.51.100.2")
            .header("X-Forwarded-Ssl", "on")
            .header("X-Forwarded-Scheme", "https")
            .header("X-Original-Host", "evil.example"),
    );
    assert_eq!(spoofed.header("x-real-ip").as_deref(), Some(CLIENT));
    assert_eq!(spoofed.header("true-client-ip").as_deref(), Some(CLIENT));
    assert_eq!(spoofed.header("cf-connecting-ip").as_deref(), Some(CLIENT));
    for gone in ["x-forwarded-ssl", "x-forwarded-scheme", "x-original-host"] {
        assert_eq!(spoofed.header(gone), None, "{gone}");
    }
    assert_eq!(
        edge.envoy.counter("oidc_edge.forwarded.untrusted_stripped"),
        1
    );
    let via_lb = edge.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-For", "203.0.113.9")
            .header("X-Real-IP", "198.51.100.1"),
    );
    assert_eq!(via_lb.header("x-real-ip").as_deref(), Some("203.0.113.9"));
    assert_eq!(via_lb.header("true-client-ip"), None, "never added");
}

#[test]
fn a_client_the_trusted_chain_hides_is_not_replaced_by_a_proxy() {
    // RFC 7239 §6.2: the LB says it does not know (or will not say) who the
    // client is. The app must not be told the LB is the client.
    let edge = edge(
        r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "family": "forwarded", "emit_forwarded": true}}"#,
    );
    for hidden in [
        "for=unknown;proto=https",
        "for=\"_SEVKISEK:_47011\";proto=https",
    ] {
        let echo = edge.echo(
            Request::get("app.example.com", "/")
                .from(LB)
                .header("Forwarded", hidden)
                .header("X-Real-IP", "198.51.100.1"),
        );
        assert_eq!(
            echo.header("forwarded").as_deref(),
            Some("for=unknown;host=app.example.com;proto=https"),
            "{hidden}"
        );
        assert_eq!(
            echo.header("x-forwarded-for"),
            None,
            "{hidden}: no client entry invented, and the LB is not named as the client"
        );
        assert_eq!(echo.header("x-real-ip"), None, "{hidden}");
    }
}

/// edge.yaml without its header_mutation filter: the deployment mistake
/// that would let a client name its own peer.
fn without_header_mutation() -> EnvoyConfig {
    EnvoyConfig::reference().plugin_config(PLUGIN).edit(|doc| {
        let filters = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["http_filters"]
            .as_array_mut()
            .expect("http_filters");
        let before = filters.len();
        filters.retain(|f| f["name"] != "envoy.filters.http.header_mutation");
        assert_eq!(
            filters.len(),
            before - 1,
            "edge.yaml has a header_mutation filter"
        );
    })
}

#[test]
fn a_missing_header_mutation_filter_never_turns_into_trust() {
    let edge = edge_with(without_header_mutation());
    // A client names the LB as its peer (guessing at the token, too) and
    // sends the forwarding headers it wants the app to believe.
    for forged in [LB.to_string(), format!("{LB};guess"), format!("{LB};")] {
        let echo = edge.echo(
            Request::get("app.example.com", "/")
                .from(CLIENT)
                .header("X-Oidc-Edge-Peer", &forged)
                .header("X-Forwarded-Proto", "https")
                .header("X-Forwarded-Host", "internal.example")
                .header("X-Forwarded-For", "203.0.113.9"),
        );
        assert_eq!(
            view(&echo),
            [
                Some("http".to_string()),
                Some("app.example.com".to_string()),
                Some("80".to_string()),
                None
            ],
            "{forged}: connection values, no client address invented"
        );
        assert_eq!(echo.header("x-oidc-edge-peer"), None);
    }
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.trusted_peer"), 0);
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.peer_unverified"), 3);
    // The LB's own requests now arrive without the header: untrusted, and
    // the operator is told why.
    edge.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-Proto", "https"),
    );
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.peer_unknown"), 4);
    let log = edge.envoy.log();
    assert!(
        log.contains("the x-oidc-edge-peer header does not carry the peer token"),
        "{log}"
    );
    assert!(
        log.contains("a request without the x-oidc-edge-peer header"),
        "{log}"
    );
    assert!(log.contains("header_mutation"), "{log}");
}

#[test]
fn trusting_a_peer_header_without_the_token_in_the_environment_is_refused_at_load() {
    let mut cfg = EnvoyConfig::reference().plugin_config(PLUGIN);
    cfg.env
        .retain(|(k, _)| k != integration_tests::envoy::PEER_TOKEN_ENV);
    let log = match Envoy::try_start(&cfg) {
        Ok(_) => panic!("Envoy accepted a trusted peer header without a token"),
        Err(log) => log,
    };
    assert!(
        log.contains("invalid configuration: forwarded.peer_token_env: environment variable \"OIDC_EDGE_PEER_TOKEN\" is not set"),
        "{log}"
    );
}

#[test]
fn trusting_only_the_load_balancer_keeps_internal_clients_from_spoofing() {
    // edge.yaml used to trust all of RFC 1918. Here 127.0.0.0/8 plays the
    // internal network: the LB is 127.0.0.2, an internal client that reaches
    // Envoy directly is 127.0.0.3.
    let reference: serde_json::Value =
        serde_json::from_str(&EnvoyConfig::reference().plugin_config_value()).unwrap();
    let cidrs = reference["forwarded"]["trusted_cidrs"].as_array().unwrap();
    for c in cidrs {
        let c = c.as_str().unwrap();
        let len: u8 = c.split_once('/').map_or(32, |(_, l)| l.parse().unwrap());
        assert!(
            len >= 16 && !["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].contains(&c),
            "edge.yaml trusts {c}: list your LB subnets only"
        );
    }
    let with = |cidr: &str| {
        let mut plugin = reference.clone();
        plugin["forwarded"]["trusted_cidrs"] = json!([cidr]);
        plugin["forwarded"]["allowed_hosts"] = json!(["app.example.com", "evil.example"]);
        plugin["forwarded"]["accept_host"] = json!(true);
        plugin.as_object_mut().unwrap().remove("login_flow");
        plugin.as_object_mut().unwrap().remove("redirects");
        edge(&plugin.to_string())
    };
    let spoof = || {
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-For", "203.0.113.66")
    };
    let wide = with("127.0.0.0/8");
    assert_eq!(
        view(&wide.echo(spoof())),
        some(["https", "evil.example", "443", "203.0.113.66"]),
        "trusting the whole internal range believes an internal client"
    );
    let narrow = with("127.0.0.2/32");
    assert_eq!(
        view(&narrow.echo(spoof())),
        some(["http", "app.example.com", "80", "127.0.0.3"])
    );
}

#[test]
fn malformed_values_are_ignored_whole_and_counted() {
    let edge = edge(PLUGIN);
    let echo = edge.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-Proto", "javascript")
            .header("X-Forwarded-Port", "99999")
            .header("Forwarded", "for=\"unterminated"),
    );
    assert_eq!(
        view(&echo),
        some(["http", "app.example.com", "80", "127.0.0.2"])
    );
    assert_eq!(echo.header("forwarded"), None);
    assert!(edge.envoy.counter("oidc_edge.forwarded.malformed") >= 1);
}

#[test]
fn non_utf8_header_values_are_malformed_not_a_crash() {
    // proxy-wasm's header helpers unwrap on non-UTF-8 values; a panic would
    // turn this worker's filter into 503s. Several requests prove it held.
    let edge = edge(PLUGIN);
    for _ in 0..3 {
        let echo = edge.echo(
            Request::get("app.example.com", "/")
                .from(LB)
                .header("X-Forwarded-Proto", "https")
                .header_bytes("X-Forwarded-Host", b"evil.example\xff")
                .header_bytes("X-Other", b"caf\xe9"),
        );
        assert_eq!(
            view(&echo),
            some(["https", "app.example.com", "443", "127.0.0.2"])
        );
    }
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.malformed"), 3);
    assert!(edge
        .envoy
        .admin("/stats")
        .contains("wasm.oidc-edge.vm_reload_success: 0"));
}

#[test]
fn hosts_outside_the_allowlist_get_400_and_a_reason() {
    let edge = edge(PLUGIN);
    for req in [
        Request::get("internal.example", "/")
            .from(LB)
            .header("X-Forwarded-Host", "evil.example"),
        Request::get("evil.example", "/").from(CLIENT),
    ] {
        let resp = req.send(edge.envoy.port);
        assert_eq!(resp.status, 400, "{}", resp.text());
        assert_eq!(resp.header("x-oidc-edge-reason"), Some("host_not_allowed"));
        assert!(resp.text().contains("not served here"), "{}", resp.text());
    }
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.host_rejected"), 2);
}

#[test]
fn external_origin_for_load_balancers_that_forward_nothing() {
    let edge = edge(r#"{"forwarded": {"external_origin": "https://app.example.com"}}"#);
    let echo = edge.echo(Request::get("10.1.2.3:8080", "/callback?code=x&state=y").from(CLIENT));
    assert_eq!(
        view(&echo),
        some(["https", "app.example.com", "443", "127.0.0.3"])
    );
}

#[test]
fn prefix_from_the_load_balancer_is_validated() {
    let edge = edge(PLUGIN);
    let ok = edge.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-Prefix", "/app/"),
    );
    assert_eq!(ok.header("x-forwarded-prefix").as_deref(), Some("/app"));
    let bad = edge.echo(
        Request::get("app.example.com", "/")
            .from(LB)
            .header("X-Forwarded-Prefix", "//evil.example"),
    );
    assert_eq!(bad.header("x-forwarded-prefix"), None);
}

#[test]
fn rewriting_host_re_runs_envoy_route_matching() {
    // Test-only routes: app.example.com goes to the app, anything else gets a
    // 404 from Envoy, so the route taken shows which Host Envoy matched on.
    let routes = |cfg: &mut serde_json::Value| {
        let hcm = &mut cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        hcm["route_config"]["virtual_hosts"] = json!([
            {"name": "external", "domains": ["app.example.com"],
             "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "app"}}]},
            {"name": "other", "domains": ["*"],
             "routes": [{"match": {"prefix": "/"}, "direct_response": {"status": 404, "body": {"inline_string": "no such vhost"}}}]}
        ]);
    };
    let req = || {
        Request::get("internal.example", "/")
            .from(LB)
            .header("X-Forwarded-Host", "app.example.com")
    };

    let plain = edge_with(EnvoyConfig::reference().plugin_config(PLUGIN).edit(routes));
    assert_eq!(
        req().send(plain.envoy.port).status,
        404,
        "without rewrite_host Envoy routes on the internal Host"
    );

    let rewriting = edge_with(
        EnvoyConfig::reference()
            .plugin_config(
                r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "accept_host": true, "rewrite_host": true}}"#,
            )
            .edit(routes),
    );
    let echo = rewriting.echo(req());
    assert_eq!(echo.header("host").as_deref(), Some("app.example.com"));
}

#[test]
fn counters_are_exported_to_prometheus() {
    let edge = edge(PLUGIN);
    edge.echo(
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X-Forwarded-Proto", "https"),
    );
    let prom = edge.envoy.admin("/stats/prometheus");
    let line = prom
        .lines()
        .find(|l| l.starts_with("oidc_edge_forwarded_untrusted_stripped"))
        .unwrap_or_else(|| panic!("no oidc-edge counter in /stats/prometheus:\n{prom}"));
    assert!(line.ends_with(" 1"), "{line}");
}

#[test]
fn no_forwarded_section_leaves_requests_untouched() {
    let edge = edge("{}");
    let echo = edge.echo(
        Request::get("app.example.com", "/")
            .from(CLIENT)
            .header("X-Forwarded-Host", "kept.example"),
    );
    assert_eq!(
        echo.header("x-forwarded-host").as_deref(),
        Some("kept.example")
    );
    assert_eq!(edge.envoy.counter("oidc_edge.forwarded.untrusted_peer"), 0);
}

#[test]
fn bad_configurations_are_refused_at_load_with_the_field_named() {
    let rows = [
        (
            r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/33"]}}"#,
            "forwarded.trusted_cidrs[0]: \"10.0.0.0/33\" is not a valid CIDR",
        ),
        (
            r#"{"forwarded": {"trusted_cidr": ["10.0.0.0/8"]}}"#,
            "forwarded.trusted_cidr: unknown field `trusted_cidr`, expected one of `trusted_cidrs`",
        ),
        (
            r#"{"forwarded": {"trusted_hops": 40}}"#,
            "forwarded.trusted_hops: 40 is too many",
        ),
        (
            r#"{"forwarded": {"external_origin": "app.example.com"}}"#,
            "forwarded.external_origin: \"app.example.com\" is not valid",
        ),
        (
            r#"{"forwarded": {"allowed_hosts": ["*"]}}"#,
            "forwarded.allowed_hosts[0]",
        ),
        (
            r#"{"forwarded": {"family": "forwarded", "accept_prefix": true}}"#,
            "forwarded.accept_prefix: reads X-Forwarded-Prefix",
        ),
        (r#"not json"#, "(top level): expected a JSON object"),
    ];
    for (plugin, expected) in rows {
        let log = match Envoy::try_start(&EnvoyConfig::reference().plugin_config(plugin)) {
            Ok(_) => panic!("Envoy accepted a bad plugin configuration: {plugin}"),
            Err(log) => log,
        };
        assert!(
            log.contains(&format!("invalid configuration: {expected}")),
            "log for {plugin} lacks {expected:?}:\n{log}"
        );
    }
}

#[test]
fn reference_config_passes_envoy_validation() {
    let envoy = integration_tests::envoy::envoy_bin();
    let dir = std::env::temp_dir().join(format!("oidc-edge-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Only the module path changes: validation checks that the file exists.
    let wasm = integration_tests::envoy::wasm_path()
        .canonicalize()
        .unwrap();
    let yaml = std::fs::read_to_string(integration_tests::repo_root().join("envoy/edge.yaml"))
        .unwrap()
        .replace("/etc/envoy/oidc_edge.wasm", &wasm.display().to_string());
    let path = dir.join("edge.yaml");
    std::fs::write(&path, yaml).unwrap();
    // The plugin is configured during validation, so its signing key must be set.
    let out = std::process::Command::new(envoy)
        .args(["--mode", "validate", "-c"])
        .arg(&path)
        .env(
            "OIDC_EDGE_KEY_1",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env(
            integration_tests::envoy::PEER_TOKEN_ENV,
            integration_tests::envoy::PEER_TOKEN,
        )
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn direct_tls_client_gets_https_from_the_connection_not_from_headers() {
    // Envoy itself terminates TLS here (no LB in front): the untrusted
    // client's X-Forwarded-Proto is ignored and the scheme comes from the
    // connection (Envoy's connection.tls_version property).
    let dir = std::env::temp_dir().join(format!("oidc-edge-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = integration_tests::tls::pki(&dir, &["app.example.com"]);
    let tls = integration_tests::tls::downstream_transport_socket(&pki.key, &pki.cert);
    let edge = edge_with(EnvoyConfig::reference().plugin_config(PLUGIN).edit(|c| {
        c["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = tls
    }));
    let port = edge.envoy.port;
    let out = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(&pki.ca)
        .args([
            "--interface",
            CLIENT,
            "--resolve",
            &format!("app.example.com:{port}:127.0.0.1"),
        ])
        .args([
            "-H",
            "X-Forwarded-Proto: http",
            "-H",
            "X-Forwarded-Port: 80",
        ])
        .arg(format!("https://app.example.com:{port}/"))
        .output()
        .expect("curl (./build.sh test installs it)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echo = Echo::parse(&out.stdout);
    let host = format!("app.example.com:{port}");
    assert_eq!(
        view(&echo),
        some(["https", &host, &port.to_string(), "127.0.0.3"])
    );
}
