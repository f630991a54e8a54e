//! HTTP/2 on every hop: the login scenarios with the LB → Envoy hop over
//! HTTP/1.1, h2c (prior knowledge) and TLS with ALPN `h2`, and the browser →
//! LB hop over HTTP/2 (curl sending cookie crumbs, and Chromium).
//!
//! What HTTP/2 changes on the way: the request line becomes pseudo-headers
//! (`:authority` instead of `Host`), header names are lower case on the wire
//! (Envoy lower-cases them on every codec, so the filter never sees another
//! case), a client may split `cookie` into one header per cookie ("crumbs",
//! RFC 9113 §8.2.3), and an upgrade to WebSocket becomes an extended CONNECT
//! (RFC 8441). The tests check that reads, cookies, pinning, redirects and
//! WebSockets come out the same.

use integration_tests::browser::Browser;
use integration_tests::chromium::{final_dom, pre_text};
use integration_tests::fleet::{FleetBed, KeySource, Upstream};
use integration_tests::oidc_bed::{Flavour, Login, Options};
use integration_tests::Envoy;
use std::process::Command;

fn start(upstream: Upstream) -> FleetBed {
    FleetBed::start_with(
        1,
        KeySource::Env,
        &["k1"],
        Options::new(Flavour::Http),
        None,
        upstream,
    )
}

fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy
        .admin("/stats")
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no stat {name}"))
}

fn assert_logged_in(login: &Login, what: &str) {
    assert!(
        login.ok() && login.server_errors().is_empty(),
        "{what}: not logged in:\n{}",
        login.describe()
    );
}

fn is_callback(u: &url::Url) -> bool {
    u.path() == "/callback"
}

/// The same checks over each LB → Envoy protocol: logins pinned to their
/// node, the redirect URI on the external origin, a silent renewal, a
/// WebSocket on the session's node; and the hop really used that protocol.
#[test]
fn logins_with_the_lb_to_envoy_hop_over_http1_h2c_and_h2_with_alpn() {
    for upstream in [Upstream::Http1, Upstream::H2c, Upstream::H2Tls] {
        let what = format!("{upstream:?}");
        let bed = start(upstream);
        let mut b = bed.browser();
        for n in 0..2 {
            let login = bed.login(&mut b, "");
            assert_logged_in(&login, &format!("{what}: login {n}"));
            assert_eq!(login.callback_node(), login.login_node(), "{what}");
            assert_eq!(
                login.redirect_uri(),
                Some(format!("{}/callback", bed.origin())),
                "{what}"
            );
        }
        let silent = bed.login(&mut b, "?prompt=none");
        assert_logged_in(&silent, &format!("{what}: prompt=none"));
        let node = silent.me()["node"].as_str().unwrap().to_string();
        let mut ws = b
            .websocket(&format!("{}/ws", bed.origin().replace("https:", "wss:")))
            .unwrap_or_else(|r| panic!("{what}: upgrade refused: {} {}", r.status, r.text()));
        assert_eq!(
            ws.response.header("x-app-node"),
            Some(node.as_str()),
            "{what}"
        );
        ws.send("hi").unwrap();
        assert!(ws.recv().unwrap().contains("echoes"), "{what}");
        // A forged redirect_uri is refused the same way.
        let mut evil = bed.browser();
        let page = evil.get(&format!(
            "{}/login?next=https://evil.example/",
            bed.origin()
        ));
        assert!(page.status() < 500, "{what}: {}", page.text());

        let edge = bed.edge(0);
        let (h1, h2) = (
            stat(edge, "http.edge.downstream_cx_http1_total"),
            stat(edge, "http.edge.downstream_cx_http2_total"),
        );
        match upstream {
            Upstream::Http1 => assert!(h1 > 0 && h2 == 0, "{what}: h1 {h1} h2 {h2}"),
            _ => assert!(h2 > 0 && h1 == 0, "{what}: h1 {h1} h2 {h2}"),
        }
        let ssl = stat(edge, "http.edge.downstream_cx_ssl_total");
        assert_eq!(ssl > 0, upstream == Upstream::H2Tls, "{what}: TLS {ssl}");
    }
}

/// A callback sent over HTTP/2 with every cookie in its own `cookie`
/// header (crumbs, as HTTP/2 clients may send them), through both HTTP/2
/// hops: oidc-edge finds the flow cookie among the crumbs, pins the node
/// and the app reads its session from the same crumbs.
#[test]
fn a_callback_with_cookie_crumbs_over_http2_is_pinned_and_finishes() {
    let bed = start(Upstream::H2c);
    let mut b: Browser = bed.browser();
    let paused = b
        .navigate_until(&format!("{}/login", bed.origin()), is_callback)
        .expect_err("paused before the callback");
    let login_node = b.trace[0].node.clone().expect("node");
    let crumbs: Vec<String> = b
        .cookies()
        .iter()
        .filter(|c| c.host == "app.test")
        .map(|c| format!("cookie: {}={}", c.name, c.value))
        .collect();
    assert!(crumbs.len() >= 2, "a flow cookie and the app's: {crumbs:?}");
    let callback = paused.next.to_string();
    let port = bed.lb_port;
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "--http2", "-o", "/dev/null", "-D", "-"])
        .arg("--cacert")
        .arg(&bed.pki.ca)
        .arg("--resolve")
        .arg(format!("app.test:{port}:127.0.0.1"));
    for c in &crumbs {
        cmd.arg("-H").arg(c);
    }
    let out = cmd.arg(&callback).output().expect("curl");
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.starts_with("http/2 302"), "{head}");
    assert!(
        head.contains("location: /me"),
        "the app finished the login: {head}"
    );
    assert!(
        head.contains(&format!("x-app-node: {login_node}")),
        "pinned to the login's node: {head}"
    );
    assert_eq!(
        stat(bed.edge(0), "wasmcustom.oidc_edge.login_flow.pinned"),
        1,
        "through oidc-edge's pin"
    );
    let lb_h2 = stat(&bed.lb, "http.lb.downstream_cx_http2_total");
    assert!(lb_h2 > 0, "curl spoke HTTP/2 to the LB");
}

/// Chromium negotiates HTTP/2 with the LB (ALPN) and logs in through
/// oidc-edge, the LB → Envoy hop on HTTP/2 as well.
#[test]
fn chromium_logs_in_over_http2_to_the_lb() {
    let bed = start(Upstream::H2Tls);
    let dom = final_dom(&format!("{}/login", bed.origin()), "app.test");
    let text = pre_text(&dom).unwrap_or_else(|| panic!("no JSON page: {dom}"));
    let me: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(me["sub"].is_string(), "{me}");
    assert_eq!(me["login_node"], me["callback_node"], "{me}");
    assert!(stat(&bed.lb, "http.lb.downstream_cx_http2_total") > 0);
    assert_eq!(stat(&bed.lb, "http.lb.downstream_cx_http1_total"), 0);
    assert!(stat(bed.edge(0), "http.edge.downstream_cx_http2_total") > 0);
}
