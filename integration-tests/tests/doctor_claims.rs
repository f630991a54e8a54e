//! What the doctor (`oidc-edge-doctor`) predicts, shown in a real Envoy
//! 1.40: `envoy/edge.yaml` with one of its settings undone, next to the
//! file as it is. Each test names the doctor check it backs; the checks
//! backed elsewhere are listed in docs/troubleshooting.md.

use integration_tests::{free_port, Echo, Envoy, EnvoyConfig, Request, Response, Upstream};
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Plays the load balancer: the only peer in `trusted_cidrs`.
const LB: &str = "127.0.0.2";

const LOGIN_FLOW: &str = r#"{"login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
    "callback_paths": ["/callback"], "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}}"#;

const FORWARDED: &str =
    r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com"]}}"#;

fn http_filters(doc: &mut Value) -> &mut Vec<Value> {
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .expect("http_filters")
}

fn hcm(doc: &mut Value) -> &mut Value {
    &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
}

/// Moves the filter named `name` to just after the wasm filter.
fn move_after_wasm(doc: &mut Value, name: &str) {
    let filters = http_filters(doc);
    let at = filters.iter().position(|f| f["name"] == name).expect(name);
    let f = filters.remove(at);
    let wasm = filters
        .iter()
        .position(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("wasm");
    filters.insert(wasm + 1, f);
}

/// Moves the filter named `name` to just before the wasm filter.
fn move_before_wasm(doc: &mut Value, name: &str) {
    let filters = http_filters(doc);
    let at = filters.iter().position(|f| f["name"] == name).expect(name);
    let f = filters.remove(at);
    let wasm = filters
        .iter()
        .position(|f| f["name"] == "envoy.filters.http.wasm")
        .expect("wasm");
    filters.insert(wasm, f);
}

/// A browser's cookie jar, enough for a login and its callback.
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn send(&mut self, req: Request, port: u16) -> Response {
        req.send_with_cookies(&mut self.jar, port)
    }
}

/// Logins through Envoy: how many of `n` callbacks reached another node
/// than the one that started the login.
fn strays(envoy: &Envoy, n: usize) -> usize {
    let mut strays = 0;
    for _ in 0..n {
        let mut b = Browser::default();
        let resp = b.send(Request::get("app.example.com", "/login"), envoy.port);
        assert_eq!(resp.status, 302, "{}", resp.text());
        let start = Echo::parse(&resp.body);
        let state = start.state.expect("state");
        let resp = b.send(
            Request::get(
                "app.example.com",
                &format!("/callback?code=c0de&state={state}"),
            ),
            envoy.port,
        );
        assert_eq!(resp.status, 200, "{}", resp.text());
        if Echo::parse(&resp.body).node != start.node {
            strays += 1;
        }
    }
    strays
}

/// Backs `stateful_session_missing`, `stateful_session_header_mismatch`
/// and `stateful_session_before_oidc_edge`: with login_flow on, each of
/// these sends callbacks wherever round robin points, while edge.yaml as
/// it is returns every one to its node.
#[test]
fn without_a_matching_stateful_session_after_oidc_edge_callbacks_stray() {
    let nodes: Vec<Upstream> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Upstream::start(n))
        .collect();
    let base = || {
        EnvoyConfig::reference()
            .plugin_config(LOGIN_FLOW)
            .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .env("OIDC_EDGE_KEY_1", K1)
    };
    let reference = Envoy::start(&base());
    assert_eq!(strays(&reference, 12), 0, "edge.yaml pins every callback");
    drop(reference);

    let variants: [(&str, fn(&mut Value)); 3] = [
        ("stateful_session removed", |doc| {
            http_filters(doc).retain(|f| f["name"] != "envoy.filters.http.stateful_session")
        }),
        ("stateful_session reading x-session", |doc| {
            let f = http_filters(doc)
                .iter_mut()
                .find(|f| f["name"] == "envoy.filters.http.stateful_session")
                .expect("stateful_session");
            f["typed_config"]["session_state"]["typed_config"]["name"] = "x-session".into();
        }),
        ("stateful_session before oidc-edge", |doc| {
            move_before_wasm(doc, "envoy.filters.http.stateful_session")
        }),
    ];
    for (what, edit) in variants {
        let envoy = Envoy::start(&base().edit(edit));
        let n = strays(&envoy, 24);
        assert!(
            n >= 8,
            "{what}: only {n} of 24 callbacks strayed; round robin over 3 nodes strays 2 in 3"
        );
    }
}

fn lb_request() -> Request {
    Request::get("app.example.com", "/")
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-For", "203.0.113.9")
}

fn proto_seen_by_app(envoy: &Envoy) -> Option<String> {
    let resp = lb_request().send(envoy.port);
    assert_eq!(resp.status, 200, "{}", resp.text());
    Echo::parse(&resp.body).header("x-forwarded-proto")
}

/// Backs `peer_header_not_written` and `header_mutation_after_oidc_edge`:
/// the load balancer's own requests become untrusted, its
/// `X-Forwarded-Proto: https` is replaced by this hop's `http` (the app then
/// builds http:// redirect URIs), and the counters say why.
#[test]
fn a_missing_or_late_header_mutation_makes_the_load_balancer_untrusted() {
    let app = Upstream::start("app-1");
    let base = || {
        EnvoyConfig::reference()
            .plugin_config(FORWARDED)
            .upstreams(&[app.addr])
    };
    let reference = Envoy::start(&base());
    assert_eq!(proto_seen_by_app(&reference).as_deref(), Some("https"));
    assert_eq!(reference.counter("oidc_edge.forwarded.trusted_peer"), 1);
    drop(reference);

    let variants: [(&str, fn(&mut Value)); 2] = [
        ("header_mutation removed", |doc| {
            http_filters(doc).retain(|f| f["name"] != "envoy.filters.http.header_mutation")
        }),
        ("header_mutation after oidc-edge", |doc| {
            move_after_wasm(doc, "envoy.filters.http.header_mutation")
        }),
    ];
    for (what, edit) in variants {
        let envoy = Envoy::start(&base().edit(edit));
        assert_eq!(proto_seen_by_app(&envoy).as_deref(), Some("http"), "{what}");
        assert_eq!(
            envoy.counter("oidc_edge.forwarded.trusted_peer"),
            0,
            "{what}"
        );
        assert_eq!(
            envoy.counter("oidc_edge.forwarded.peer_unknown"),
            1,
            "{what}"
        );
    }
}

/// Backs `use_remote_address_overwrites_proto`: with `use_remote_address:
/// true`, Envoy replaces the trusted load balancer's `X-Forwarded-Proto:
/// https` with this hop's `http` before oidc-edge sees it.
#[test]
fn use_remote_address_true_overwrites_the_load_balancers_proto() {
    let app = Upstream::start("app-1");
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(FORWARDED)
            .upstreams(&[app.addr])
            .edit(|doc| hcm(doc)["use_remote_address"] = true.into()),
    );
    assert_eq!(proto_seen_by_app(&envoy).as_deref(), Some("http"));
    assert_eq!(
        envoy.counter("oidc_edge.forwarded.trusted_peer"),
        1,
        "the peer was trusted: it is Envoy, not oidc-edge, that lost https"
    );
}

fn cluster_stat(envoy: &Envoy, name: &str) -> u64 {
    let key = format!("cluster.app.{name}: ");
    envoy
        .admin("/stats")
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `n` requests at once, each answered after `ms` by the live node: the
/// statuses, in no order.
fn at_once(port: u16, n: usize, ms: u64) -> Vec<u16> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(move || {
                Request::get("app.example.com", &format!("/poll?ms={ms}"))
                    .send(port)
                    .status
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("request"))
        .collect()
}

/// Backs `default_retry_circuit_breaker`: one node of two refuses
/// connections, the other is busy (each answer takes two seconds). Every
/// request routed to the dead node is retried on the live one, and with
/// Envoy's default retry circuit breaker (3 retries at once) the rest are
/// answered 503 at once; with edge.yaml's `max_retries` every request is
/// served.
#[test]
fn the_default_retry_circuit_breaker_turns_a_dead_node_into_503s() {
    let live = Upstream::start("live");
    let dead: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let base = || {
        EnvoyConfig::reference()
            .plugin_config("{}")
            .upstreams(&[live.addr, dead])
            // Keep the dead node in rotation for the whole burst: this test
            // is about the retries, not about how fast outlier detection
            // ejects the node.
            .edit(|doc| {
                let app = doc["static_resources"]["clusters"]
                    .as_array_mut()
                    .expect("clusters")
                    .iter_mut()
                    .find(|c| c["name"] == "app")
                    .expect("app");
                app.as_object_mut()
                    .expect("cluster")
                    .remove("outlier_detection");
            })
    };
    let defaults = Envoy::start(&base().edit(|doc| {
        let app = doc["static_resources"]["clusters"]
            .as_array_mut()
            .expect("clusters")
            .iter_mut()
            .find(|c| c["name"] == "app")
            .expect("app");
        assert!(app.get("circuit_breakers").is_some(), "edge.yaml sizes it");
        app.as_object_mut()
            .expect("cluster")
            .remove("circuit_breakers");
    }));
    let statuses = at_once(defaults.port, 32, 2000);
    let refused = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        refused >= 1 && cluster_stat(&defaults, "upstream_rq_retry_overflow") >= 1,
        "the default breaker: {statuses:?}, overflow {}",
        cluster_stat(&defaults, "upstream_rq_retry_overflow")
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    drop(defaults);

    let sized = Envoy::start(&base());
    let statuses = at_once(sized.port, 32, 2000);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "edge.yaml's breaker serves every request: {statuses:?}"
    );
    assert_eq!(cluster_stat(&sized, "upstream_rq_retry_overflow"), 0);
    assert!(
        cluster_stat(&sized, "upstream_rq_retry") >= 1,
        "requests did go to the dead node and were retried"
    );
}

/// Backs `router_not_last`: Envoy refuses the configuration.
#[test]
fn envoy_refuses_a_chain_whose_router_is_not_last() {
    let app = Upstream::start("app-1");
    let err = Envoy::try_start(
        &EnvoyConfig::reference()
            .plugin_config(FORWARDED)
            .upstreams(&[app.addr])
            .edit(|doc| move_before_wasm(doc, "envoy.filters.http.router")),
    )
    .err()
    .expect("Envoy refuses it");
    assert!(err.contains("must be the last filter"), "{err}");
}

/// Backs `stateful_session_cookie`: Envoy's cookie-based session state is
/// the upstream address in base64'd protobuf, unsigned. The browser reads
/// the internal address, and an edited cookie picks any node.
#[test]
fn envoys_session_cookie_shows_the_node_and_a_forged_one_picks_any() {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    let nodes: Vec<Upstream> = ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Upstream::start(n))
        .collect();
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config("{}")
            .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .edit(|doc| {
                let f = http_filters(doc)
                    .iter_mut()
                    .find(|f| f["name"] == "envoy.filters.http.stateful_session")
                    .expect("stateful_session");
                f["typed_config"]["session_state"] = serde_json::json!({
                    "name": "envoy.http.stateful_session.cookie",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState",
                        "cookie": {"name": "route", "path": "/", "ttl": "3600s"}
                    }
                });
            }),
    );
    let first = Request::get("app.example.com", "/").send(envoy.port);
    let served_by = Echo::parse(&first.body).node;
    let set = first
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("route="))
        .expect("Envoy sets its session cookie");
    let value = set["route=".len()..]
        .split(';')
        .next()
        .unwrap_or_default()
        .trim_matches('"');
    let raw = STANDARD.decode(value).expect("base64");
    let node = nodes.iter().find(|n| n.name == served_by).expect("node");
    let addr = node.addr.to_string();
    assert!(
        raw.windows(addr.len()).any(|w| w == addr.as_bytes()),
        "the cookie holds the internal address {addr} in clear: {raw:?}"
    );
    // Field 1 (the address) is first: rewrite it to another node's.
    let other = nodes.iter().find(|n| n.name != served_by).expect("other");
    let new_addr = other.addr.to_string();
    assert_eq!((raw[0], raw[1] as usize), (0x0a, addr.len()), "{raw:?}");
    let mut forged = vec![0x0a, new_addr.len() as u8];
    forged.extend_from_slice(new_addr.as_bytes());
    forged.extend_from_slice(&raw[2 + addr.len()..]);
    let forged = STANDARD.encode(forged);
    for _ in 0..4 {
        let resp = Request::get("app.example.com", "/")
            .header("Cookie", &format!("route=\"{forged}\""))
            .send(envoy.port);
        assert_eq!(
            Echo::parse(&resp.body).node,
            other.name,
            "the forged cookie chose the node"
        );
    }
}
