//! The README's "Try your own configuration", step by step: edge.yaml's
//! plugin configuration trusting only 127.0.0.2 (the pretend load
//! balancer), two `docs/try_app.py` nodes, and the answers the README says
//! to expect.

use integration_tests::{free_port, repo_root, Envoy, EnvoyConfig, Request, Response};
use serde_json::Value;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A `docs/try_app.py` node, killed on drop.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    fn start() -> Node {
        let port = free_port();
        let child = Command::new("python3")
            .arg(repo_root().join("docs/try_app.py"))
            .arg(port.to_string())
            .spawn()
            .expect("python3 docs/try_app.py");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "try_app.py did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Node { child, addr }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lb(path: &str) -> Request {
    Request::get("app.example.com", path)
        .from("127.0.0.2")
        .header("X-Forwarded-Proto", "https")
}

fn echo(resp: &Response) -> Value {
    assert_eq!(resp.status, 200, "{}", resp.text());
    serde_json::from_slice(&resp.body).expect("try_app.py answers JSON")
}

fn header<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn config(nodes: &[Node]) -> EnvoyConfig {
    let reference = EnvoyConfig::reference();
    let plugin = reference
        .plugin_config_value()
        .replace(r#""10.0.1.0/24""#, r#""127.0.0.2/32""#);
    assert!(plugin.contains("127.0.0.2/32"), "the README's sed applies");
    reference
        .plugin_config(&plugin)
        .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
        .env("OIDC_EDGE_KEY_1", KEY)
}

#[test]
fn the_readme_walkthrough_answers_as_it_says() {
    let nodes = [Node::start(), Node::start()];
    let envoy = Envoy::start(&config(&nodes));

    // 3. The load balancer's view, believed and made consistent.
    let v = echo(
        &lb("/account")
            .header("X-Forwarded-For", "203.0.113.9")
            .send(envoy.port),
    );
    for (h, want) in [
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        assert_eq!(header(&v, h), Some(want), "{h}: {v}");
    }
    assert!(
        !v["headers"].to_string().contains("x-oidc-edge"),
        "no internal header reaches the node: {v}"
    );

    // 4. An untrusted client chooses none of it.
    let v = echo(
        &Request::get("app.example.com", "/account")
            .from("127.0.0.3")
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.example")
            .header("X-Forwarded-For", "10.0.1.5")
            .header("x-oidc-edge-peer", "127.0.0.2")
            .send(envoy.port),
    );
    assert_eq!(header(&v, "x-forwarded-proto"), Some("http"), "{v}");
    assert_eq!(header(&v, "x-forwarded-host"), Some("app.example.com"));
    assert_eq!(header(&v, "x-forwarded-for"), Some("127.0.0.3"));
    let resp = Request::get("evil.example", "/")
        .from("127.0.0.2")
        .header("X-Forwarded-Proto", "https")
        .send(envoy.port);
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("x-oidc-edge-reason"), Some("host_not_allowed"));

    // 5. A login, and its callbacks on the node that started it.
    let login = lb("/login").send(envoy.port);
    assert_eq!(login.status, 302, "{}", login.text());
    let location = login.header("location").expect("location");
    assert!(
        location.contains("redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback"),
        "{location}"
    );
    let set_cookie = login.header("set-cookie").expect("flow cookie");
    assert!(set_cookie.starts_with("__Host-oidc-edge-"), "{set_cookie}");
    for attr in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().expect("name=value");
    let state = location
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("state");
    let callback = format!("/callback?code=x&state={state}");
    let nodes_seen: Vec<Value> = (0..4)
        .map(|_| echo(&lb(&callback).header("Cookie", cookie).send(envoy.port))["node"].clone())
        .collect();
    let unpinned: Vec<Value> = (0..4)
        .map(|_| echo(&lb("/account").send(envoy.port))["node"].clone())
        .collect();
    assert!(
        nodes_seen.iter().all(|n| *n == nodes_seen[0]),
        "every callback on one node: {nodes_seen:?}"
    );
    assert!(
        unpinned.iter().any(|n| *n != unpinned[0]),
        "the cluster is round robin: {unpinned:?}"
    );
    let resp = lb(&callback).send(envoy.port);
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("flow_cookie_missing")
    );
    let resp = Request::get("app.example.com", "/login")
        .from("127.0.0.3")
        .send(envoy.port);
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("redirect_uri_mismatch"),
        "the client's plain-http view gives the app an http:// redirect_uri"
    );
    assert!(envoy.counter("oidc_edge.login_flow.pinned") >= 4);
    drop(envoy);

    // 6. use_remote_address: true, and the app builds what the IdP refuses.
    let envoy = Envoy::start(&config(&nodes).edit(|doc| {
        doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["use_remote_address"] = true.into();
    }));
    let resp = lb("/login").send(envoy.port);
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("redirect_uri_mismatch")
    );
    let log = envoy.log();
    assert!(
        log.contains(
            r#"the app redirected to the IdP with redirect_uri="http://app.example.com/callback": redirect_uri is not registered; registered: ["https://app.example.com/callback"]"#
        ),
        "{log}"
    );
}
