//! What an app that trusts exactly one proxy believes about the client,
//! behind real load balancers and oidc-edge: Flask with werkzeug's
//! `ProxyFix(x_for=1, x_proto=1, x_host=1, x_port=1)` (the same reading as
//! Express `trust proxy` 1: the rightmost X-Forwarded-For entry), behind
//! Debian's HAProxy in `mode http`, and in `mode tcp` with `send-proxy-v2`
//! into `envoy/proxy-protocol.yaml`; and Express with `trust proxy` 1
//! (`integration-tests/e2e/onehop_express.js`).

use integration_tests::node::NodeProcess;
use integration_tests::real_lb::{self, LbProcess, HAPROXY_HTTP_FROM, HAPROXY_PROXY_FROM};
use integration_tests::tls::{pki, Pki};
use integration_tests::{free_port, repo_root, Envoy, EnvoyConfig, Request};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;

/// The app behind Envoy.
enum App {
    Flask(LbProcess),
    Express(NodeProcess),
}

impl App {
    fn port(&self) -> u16 {
        match self {
            App::Flask(p) => p.port,
            App::Express(p) => p.port,
        }
    }
}

struct Bed {
    dir: PathBuf,
    _pki: Pki,
    _app: App,
    edge: Envoy,
    _lb: LbProcess,
    lb_port: u16,
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Lb {
    HaproxyHttp,
    HaproxyTcpProxy,
}

fn bed(lb: Lb, yaml: &str, plugin: &str, edit: impl FnOnce(&mut Value)) -> Bed {
    bed_with(lb, yaml, plugin, false, edit)
}

fn bed_with(lb: Lb, yaml: &str, plugin: &str, express: bool, edit: impl FnOnce(&mut Value)) -> Bed {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("oidc-edge-onehop-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = pki(&dir, &["app.test"]);
    let app = if express {
        App::Express(NodeProcess::start(
            "onehop",
            "onehop_express.js",
            &[("PORT", "0".into())],
        ))
    } else {
        App::Flask(real_lb::flask_app(&dir))
    };
    let edge = Envoy::start(
        &EnvoyConfig::load(&repo_root().join("envoy").join(yaml))
            .plugin_config(plugin)
            .upstreams(&[SocketAddr::from(([127, 0, 0, 1], app.port()))])
            .edit(edit),
    );
    let lb_port = free_port();
    let lb_proc = match lb {
        Lb::HaproxyHttp => real_lb::haproxy_http(&dir, &pki, lb_port, edge.port),
        Lb::HaproxyTcpProxy => real_lb::haproxy_tcp_proxy(&dir, &pki, lb_port, edge.port),
    };
    Bed {
        dir,
        _pki: pki,
        _app: app,
        edge,
        _lb: lb_proc,
        lb_port,
    }
}

impl Bed {
    /// What the app believes about one browser request through the LB
    /// (curl from [`BROWSER`]), with the browser's own extra headers.
    fn whoami(&self, extra: &[&str]) -> Value {
        let port = self.lb_port;
        let out = Command::new("curl")
            .args(["-sS", "--fail", "--interface", BROWSER, "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .args(["--resolve", &format!("app.test:{port}:127.0.0.1")])
            .args(extra.iter().flat_map(|h| ["-H", h]))
            .arg(format!("https://app.test:{port}/whoami"))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).expect("the app's JSON")
    }
}

/// The browser's address (Envoy reaches the app from 127.0.0.1: the app
/// must not see that address when it reads the client right).
const BROWSER: &str = "127.0.0.9";

/// The browser tries to name another client and scheme; the LB is the one
/// hop the app trusts.
const SPOOF: &[&str] = &[
    "X-Forwarded-For: 6.6.6.6",
    "X-Forwarded-Proto: http",
    "X-Real-IP: 6.6.6.6",
];

fn http_plugin(extra: &str) -> String {
    format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["{HAPROXY_HTTP_FROM}/32"], "allowed_hosts": ["app.test"]{extra}}}}}"#
    )
}

fn proxy_plugin() -> String {
    format!(
        r#"{{"forwarded": {{"tcp_load_balancers": [{{"cidrs": ["{HAPROXY_PROXY_FROM}/32"], "scheme": "https", "proxy_protocol": true}}],
            "allowed_hosts": ["app.test"]}}}}"#
    )
}

#[test]
fn a_one_hop_app_sees_the_browser_behind_haproxy_and_oidc_edge() {
    let bed = bed(Lb::HaproxyHttp, "edge.yaml", &http_plugin(""), |_| {});
    let me = bed.whoami(SPOOF);
    let origin = format!("https://app.test:{}", bed.lb_port);
    assert_eq!(me["remote_addr"], BROWSER, "{me}");
    assert_eq!(me["scheme"], "https", "{me}");
    assert_eq!(me["host"], format!("app.test:{}", bed.lb_port), "{me}");
    assert_eq!(me["callback"], format!("{origin}/callback"), "{me}");
    assert_eq!(me["x_forwarded_for"], BROWSER, "{me}");
}

#[test]
fn an_express_app_trusting_one_proxy_sees_the_browser_over_http_and_proxy() {
    for (lb, yaml, plugin) in [
        (Lb::HaproxyHttp, "edge.yaml", http_plugin("")),
        (Lb::HaproxyTcpProxy, "proxy-protocol.yaml", proxy_plugin()),
    ] {
        let bed = bed_with(lb, yaml, &plugin, true, |_| {});
        let me = bed.whoami(SPOOF);
        assert_eq!(me["remote_addr"], BROWSER, "{yaml}: {me}");
        assert_eq!(me["scheme"], "https", "{yaml}: {me}");
        assert_eq!(
            me["callback"],
            format!("https://app.test:{}/callback", bed.lb_port),
            "{yaml}: {me}"
        );
    }
}

/// The control, as the issue found it: with the chain form (`client,
/// proxies…, peer`) a one-hop app takes the LB for the client.
#[test]
fn with_the_chain_form_a_one_hop_app_takes_the_load_balancer_for_the_client() {
    let bed = bed(
        Lb::HaproxyHttp,
        "edge.yaml",
        &http_plugin(r#", "x_forwarded_for": "chain""#),
        |_| {},
    );
    let me = bed.whoami(SPOOF);
    assert_eq!(me["remote_addr"], HAPROXY_HTTP_FROM, "{me}");
    assert_eq!(
        me["x_forwarded_for"],
        format!("{BROWSER}, {HAPROXY_HTTP_FROM}"),
        "{me}"
    );
}

#[test]
fn behind_haproxy_with_the_proxy_protocol_the_app_sees_the_browser() {
    let bed = bed(
        Lb::HaproxyTcpProxy,
        "proxy-protocol.yaml",
        &proxy_plugin(),
        |_| {},
    );
    // HAProxy in mode tcp passes the browser's headers on unchanged: none
    // of them is believed; the client is the PROXY header's, the scheme the
    // configured one, the host and port the browser's Host.
    let mut spoof = SPOOF.to_vec();
    spoof.push("X-Forwarded-Host: evil.test");
    let me = bed.whoami(&spoof);
    assert_eq!(me["remote_addr"], BROWSER, "{me}");
    assert_eq!(me["scheme"], "https", "{me}");
    assert_eq!(me["host"], format!("app.test:{}", bed.lb_port), "{me}");
    assert_eq!(me["x_forwarded_for"], BROWSER, "{me}");
    assert!(bed.edge.counter("oidc_edge.forwarded.tcp_peer") >= 1);
    assert_eq!(bed.edge.counter("oidc_edge.forwarded.trusted_peer"), 0);
}

/// Why proxy-protocol.yaml sets `use_remote_address: true`: without it,
/// Envoy takes `source.address` from the rightmost X-Forwarded-For entry,
/// which behind a TCP load balancer the browser wrote. oidc-edge knows such
/// an address by its port 0: it believes no client rather than the
/// browser's claim, and logs the fix.
#[test]
fn without_use_remote_address_the_client_is_hidden_not_spoofed() {
    let bed = bed(
        Lb::HaproxyTcpProxy,
        "proxy-protocol.yaml",
        &proxy_plugin(),
        |doc| {
            let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
                [0]["typed_config"];
            assert_eq!(
                hcm["use_remote_address"], true,
                "proxy-protocol.yaml sets it"
            );
            hcm["use_remote_address"] = false.into();
        },
    );
    let me = bed.whoami(SPOOF);
    assert_ne!(me["remote_addr"], "6.6.6.6", "{me}");
    assert_eq!(me["x_forwarded_for"], Value::Null, "{me}");
    assert!(
        bed.edge.log().contains("set use_remote_address: true"),
        "the operator is told the fix"
    );
    assert_eq!(
        bed.edge
            .counter("oidc_edge.forwarded.proxy_client_unusable"),
        1
    );
    // A browser that sends no X-Forwarded-For is still seen right.
    assert_eq!(bed.whoami(&[])["remote_addr"], BROWSER);
}

/// A client that reaches the PROXY listener directly can write its own
/// PROXY header; its direct address is not the load balancer's, so it is
/// not believed: the app sees the client's own address and its plain http.
#[test]
fn a_forged_proxy_header_from_a_direct_client_is_not_believed() {
    let bed = bed(
        Lb::HaproxyTcpProxy,
        "proxy-protocol.yaml",
        &proxy_plugin(),
        |_| {},
    );
    let resp = Request::get("app.test", "/whoami")
        .from("127.0.0.3")
        .proxy_v1(&format!(
            "PROXY TCP4 203.0.113.9 127.0.0.1 5555 {}",
            bed.edge.port
        ))
        .header("X-Forwarded-Proto", "https")
        .send(bed.edge.port);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let me: Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(me["remote_addr"], "127.0.0.3", "{me}");
    assert_eq!(me["scheme"], "http", "{me}");
    assert_eq!(bed.edge.counter("oidc_edge.forwarded.untrusted_peer"), 1);
}
