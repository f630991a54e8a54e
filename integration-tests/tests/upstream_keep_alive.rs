//! A user pinned to a live node stays logged in across the app server's
//! keep-alive timeout, and a node that really died is still left, in a real
//! Envoy 1.40 loaded from `envoy/edge.yaml`.
//!
//! App servers close idle keep-alive connections (Node after 5 s, gunicorn
//! after 2 s); Envoy keeps idle upstream connections for an hour unless the
//! cluster says otherwise. A request Envoy sends on a connection the app is
//! closing fails with `upstream_reset_before_response_started{connection_termination}`,
//! although the node is alive. edge.yaml closes idle app connections first
//! (`idle_timeout` below the apps' keep-alive), and oidc-edge does not take
//! a terminated connection alone for a dead node.

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Response, Upstream};
use std::collections::BTreeMap;
use std::time::Duration;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SESSION: &str = "__Host-oidc-edge-session";

const PLUGIN: &str = r#"{"login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
    "callback_paths": ["/callback"], "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}],
    "affinity": "session"}}"#;

fn envoy(nodes: &[Upstream]) -> Envoy {
    Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(PLUGIN)
            .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .env("OIDC_EDGE_KEY_1", K1),
    )
}

fn nodes(keep_alive: Option<Duration>) -> Vec<Upstream> {
    ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Upstream::start_with_keep_alive(n, keep_alive))
        .collect()
}

/// A cookie jar that follows Set-Cookie (including deletion by Max-Age=0).
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn get(&mut self, path: &str, port: u16) -> Response {
        Request::get("app.example.com", path).send_with_cookies(&mut self.jar, port)
    }

    /// Logs in (login start, callback on the same node): the session's node.
    fn log_in(&mut self, port: u16) -> String {
        let start = self.get("/login", port);
        assert_eq!(start.status, 302, "{}", start.text());
        let echo = Echo::parse(&start.body);
        let state = echo.state.expect("state");
        let node = node_of(&self.get(&format!("/callback?code=c0de&state={state}"), port));
        assert_eq!(node, echo.node, "the callback reached its node");
        assert!(self.jar.contains_key(SESSION), "{:?}", self.jar);
        node
    }
}

fn node_of(resp: &Response) -> String {
    assert_eq!(resp.status, 200, "{}", resp.text());
    Echo::parse(&resp.body).node
}

/// Node's default keep-alive timeout (`server.keepAliveTimeout`).
const NODE_KEEP_ALIVE: Duration = Duration::from_secs(5);

#[test]
fn a_pinned_request_after_the_apps_keep_alive_timeout_stays_on_its_node() {
    let nodes = nodes(Some(NODE_KEEP_ALIVE));
    let envoy = envoy(&nodes);
    let mut browser = Browser::default();
    let node = browser.log_in(envoy.port);
    assert_eq!(node_of(&browser.get("/inbox", envoy.port)), node);
    // The user reads for longer than the app keeps an idle connection.
    std::thread::sleep(NODE_KEEP_ALIVE + Duration::from_millis(500));
    let resp = browser.get("/inbox", envoy.port);
    assert_eq!(
        resp.status,
        200,
        "Envoy reused a connection the app had closed: {}",
        resp.text()
    );
    assert_eq!(node_of(&resp), node, "still on the session's node");
    assert!(browser.jar.contains_key(SESSION), "still pinned");
    assert_eq!(envoy.counter("oidc_edge.session.node_gone"), 0);
    // Envoy closed the idle connections itself (edge.yaml's idle_timeout).
    let stats = envoy.admin("/stats?filter=cluster\\.app\\.upstream_cx_idle_timeout");
    let idle_closed: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("cluster.app.upstream_cx_idle_timeout: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(idle_closed >= 1, "{stats}");
}

#[test]
fn a_live_node_that_closes_a_pooled_connection_keeps_its_users() {
    // An app whose keep-alive is shorter than edge.yaml's idle_timeout (an
    // operator who did not adapt it, gunicorn's 2 s): the race happens.
    let keep_alive = Duration::from_millis(1000);
    let nodes = nodes(Some(keep_alive));
    let envoy = envoy(&nodes);
    let mut browser = Browser::default();
    let node = browser.log_in(envoy.port);
    std::thread::sleep(keep_alive + Duration::from_millis(500));
    let resp = browser.get("/inbox", envoy.port);
    // Envoy's own answer: the request was sent and the connection closed
    // under it, so the route does not retry it (it may have been received).
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(
        resp.text().contains("connection termination"),
        "{}",
        resp.text()
    );
    // The node is alive: the user keeps the session's affinity, and the
    // next request (a new connection) is served there, logged in.
    assert!(browser.jar.contains_key(SESSION), "{:?}", browser.jar);
    assert_eq!(envoy.counter("oidc_edge.session.node_gone"), 0);
    assert_eq!(node_of(&browser.get("/inbox", envoy.port)), node);
}

#[test]
fn a_callback_whose_connection_closes_under_it_restarts_the_login() {
    let keep_alive = Duration::from_millis(1000);
    let nodes = nodes(Some(keep_alive));
    let envoy = envoy(&nodes);
    let mut browser = Browser::default();
    let start = browser.get("/login", envoy.port);
    let state = Echo::parse(&start.body).state.expect("state");
    // The user takes longer at the IdP than the node keeps the connection.
    std::thread::sleep(keep_alive + Duration::from_millis(500));
    let resp = browser.get(&format!("/callback?code=c0de&state={state}"), envoy.port);
    // The callback cannot be completed (its flow cookie is used up, the
    // node may or may not have seen it): the login starts over, and the
    // IdP's session would finish it without a form.
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert_eq!(resp.header("location"), Some("/login"));
    assert_eq!(envoy.counter("oidc_edge.login_flow.recovered"), 1);
    let again = browser.get("/login", envoy.port);
    assert_eq!(again.status, 302, "{}", again.text());
}

#[test]
fn a_node_killed_under_a_request_is_left_on_the_next_one() {
    let mut nodes = nodes(None);
    let envoy = envoy(&nodes);
    let mut browser = Browser::default();
    let node = browser.log_in(envoy.port);
    let cookies: Vec<String> = browser
        .jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let cookies = cookies.join("; ");
    let port = envoy.port;
    let in_flight = std::thread::spawn(move || {
        Request::get("app.example.com", "/poll?ms=5000")
            .header("Cookie", &cookies)
            .send(port)
    });
    std::thread::sleep(Duration::from_millis(500));
    nodes.retain(|n| n.name != node); // killed: port closed, connections cut
    let resp = in_flight.join().expect("in flight");
    // What a node that dies holding a request looks like to Envoy: the
    // same connection_termination as the keep-alive race, so it alone
    // cannot say "gone".
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(
        resp.text().contains("connection termination"),
        "{}",
        resp.text()
    );
    // The next request finds the node refusing connections: now it is
    // gone, the affinity is dropped and the browser is sent to try again.
    let resp = browser.get("/inbox", envoy.port);
    assert_eq!(resp.status, 302, "{}", resp.text());
    assert_eq!(resp.header("location"), Some("/inbox"));
    assert!(!browser.jar.contains_key(SESSION), "{:?}", browser.jar);
    assert_eq!(envoy.counter("oidc_edge.session.node_gone"), 1);
    assert_ne!(node_of(&browser.get("/inbox", envoy.port)), node);
}

/// The other reference configs front the same app nodes: they close idle
/// connections as edge.yaml does (whose behaviour the tests above check).
#[test]
fn every_reference_config_closes_idle_app_connections_first() {
    let root = integration_tests::repo_root();
    let options = |file: &str| {
        let doc = EnvoyConfig::load(&root.join("envoy").join(file)).doc;
        let app = doc["static_resources"]["clusters"]
            .as_array()
            .expect("clusters")
            .iter()
            .find(|c| c["name"] == "app")
            .unwrap_or_else(|| panic!("{file}: a cluster named app"))
            .clone();
        app["typed_extension_protocol_options"].clone()
    };
    let edge = options("edge.yaml");
    assert!(
        edge.to_string().contains(r#""idle_timeout":"4s""#),
        "{edge}"
    );
    for file in ["fleet.yaml", "multi-host.yaml", "proxy-protocol.yaml"] {
        assert_eq!(options(file), edge, "{file}");
    }
}
