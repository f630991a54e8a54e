//! oidc-edge behind real TLS-terminating load balancers, both flavours the
//! field runs: an HTTP LB that sends X-Forwarded-* (an Envoy with
//! use_remote_address), and a TCP LB that forwards nothing (an Envoy
//! tcp_proxy). The LB connects to oidc-edge's Envoy from 127.0.0.2, the
//! address the edge trusts. The browser is curl, with a cookie jar that
//! honours Secure over https.

use integration_tests::oidc_bed::{lb_config, Flavour};
use integration_tests::{Echo, Envoy, EnvoyConfig, Upstream};
use std::path::PathBuf;
use std::process::Command;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

struct Bed {
    _nodes: Vec<Upstream>,
    _edge: Envoy,
    lb: Envoy,
    dir: PathBuf,
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bed(flavour: &str) -> Bed {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir =
        std::env::temp_dir().join(format!("oidc-edge-lb-{flavour}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pki = integration_tests::tls::pki(&dir, &["app.example.com"]);
    let nodes: Vec<Upstream> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Upstream::start(n))
        .collect();
    // The HTTP LB says who and what; the TCP LB says nothing, so its scheme
    // is configured and whatever forwarding headers arrive are the client's.
    let forwarded = if flavour == "http" {
        r#"{"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com"]}"#
    } else {
        r#"{"tcp_load_balancers": [{"cidrs": ["127.0.0.2/32"], "scheme": "https"}], "allowed_hosts": ["app.example.com"]}"#
    };
    let plugin = format!(
        r#"{{"forwarded": {forwarded},
            "login_flow": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                           "callback_paths": ["/callback"], "keys": [{{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}}]}},
            "redirects": {{"redirect_uris": ["https://app.example.com/callback"]}}}}"#
    );
    let edge = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(&plugin)
            .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .env("OIDC_EDGE_KEY_1", KEY),
    );
    let lb = Envoy::start(&lb_config(
        if flavour == "http" {
            Flavour::Http
        } else {
            Flavour::Tcp
        },
        edge.port,
        &pki,
    ));
    Bed {
        _nodes: nodes,
        _edge: edge,
        lb,
        dir,
    }
}

struct Curl {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Bed {
    /// One request through the LB over https, with the cookie jar.
    fn get(&self, path: &str) -> Curl {
        self.get_with(path, &[])
    }

    /// Like [`Bed::get`], with extra request headers.
    fn get_with(&self, path: &str, extra: &[&str]) -> Curl {
        let port = self.lb.port;
        let hdrs = self.dir.join("headers");
        let out = Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(self.dir.join("ca.pem"))
            .args([
                "--resolve",
                &format!("app.example.com:{port}:127.0.0.1"),
                "-c",
            ])
            .arg(self.dir.join("jar"))
            .arg("-b")
            .arg(self.dir.join("jar"))
            .arg("-D")
            .arg(&hdrs)
            .args(extra.iter().flat_map(|h| ["-H", h]))
            .arg(format!("https://app.example.com:{port}{path}"))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let headers = std::fs::read_to_string(&hdrs)
            .unwrap_or_default()
            .to_lowercase();
        let status = headers
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Curl {
            status,
            headers,
            body: out.stdout,
        }
    }
}

fn logins_survive(flavour: &str) {
    let bed = bed(flavour);
    let port = bed.lb.port;
    let mut nodes = std::collections::HashSet::new();
    for _ in 0..6 {
        let start = bed.get("/login");
        assert_eq!(start.status, 302, "{}", start.headers);
        assert!(
            start.headers.contains("set-cookie: __host-oidc-edge-"),
            "{}",
            start.headers
        );
        let login = Echo::parse(&start.body);
        // What the app saw: the external view, whatever the LB flavour.
        assert_eq!(
            login.header("x-forwarded-proto").as_deref(),
            Some("https"),
            "{flavour}"
        );
        let host = login.header("x-forwarded-host").unwrap();
        assert!(
            host == "app.example.com" || host == format!("app.example.com:{port}"),
            "{flavour}: {host}"
        );
        let state = login.state.unwrap();
        let back = bed.get(&format!("/callback?code=c0de&state={state}"));
        assert_eq!(
            back.status,
            200,
            "{flavour}: {}",
            String::from_utf8_lossy(&back.body)
        );
        assert_eq!(
            Echo::parse(&back.body).node,
            login.node,
            "{flavour}: the callback left its node"
        );
        nodes.insert(login.node);
    }
    assert_eq!(nodes.len(), 3, "logins were spread over the nodes");
}

#[test]
fn logins_survive_an_http_load_balancer() {
    logins_survive("http");
}

#[test]
fn logins_survive_a_tcp_load_balancer() {
    logins_survive("tcp");
}

#[test]
fn the_app_sees_the_browsers_address_through_the_http_load_balancer() {
    let bed = bed("http");
    // The browser tries to claim another address; the LB appends the one it
    // saw (for loopback clients Envoy writes its interface address, not
    // 127.0.0.1) and connects to the edge from 127.0.0.2. The app gets
    // that client alone, as one-hop apps read it.
    let echo = Echo::parse(&bed.get_with("/account", &["X-Forwarded-For: 6.6.6.6"]).body);
    let xff = echo.header("x-forwarded-for").unwrap();
    assert!(
        xff != "6.6.6.6" && xff != "127.0.0.2" && xff.parse::<std::net::IpAddr>().is_ok(),
        "{xff}"
    );
    assert_eq!(echo.header("x-real-ip").as_deref(), Some(xff.as_str()));
    assert_eq!(
        echo.header("x-forwarded-port").as_deref(),
        Some(bed.lb.port.to_string().as_str())
    );
}
