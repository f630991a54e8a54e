//! What an operator sees in a real Envoy 1.40 loaded from `envoy/edge.yaml`:
//! wiring mistakes around the filter (no `stateful_session`, a misnamed
//! session header, no peer `header_mutation`) reported where they happen,
//! contradictions refused at load, each request's decisions in the access
//! log, and the line a good load writes.

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Upstream};
use serde_json::Value;
use std::collections::BTreeMap;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// Plays the load balancer: the only peer in `trusted_cidrs`.
const LB: &str = "127.0.0.2";

const LOGIN_FLOW: &str = r#"{"login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
    "callback_paths": ["/callback"], "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}}"#;

struct Cluster {
    nodes: Vec<Upstream>,
}

impl Cluster {
    fn start() -> Cluster {
        Cluster {
            nodes: ["node-a", "node-b", "node-c"]
                .iter()
                .map(|n| Upstream::start(n))
                .collect(),
        }
    }

    fn config(&self, plugin: &str) -> EnvoyConfig {
        EnvoyConfig::reference()
            .plugin_config(plugin)
            .upstreams(&self.nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .env("OIDC_EDGE_KEY_1", K1)
    }
}

/// The HCM's http_filters of the edge listener.
fn http_filters(doc: &mut Value) -> &mut Vec<Value> {
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .expect("http_filters")
}

fn remove_filter(name: &'static str) -> impl FnOnce(&mut Value) {
    move |doc| {
        let filters = http_filters(doc);
        let before = filters.len();
        filters.retain(|f| f["name"] != name);
        assert_eq!(filters.len(), before - 1, "edge.yaml has {name}");
    }
}

/// One login through Envoy: `/login` on some node, then the callback with
/// the flow cookie. Returns (login node, callback node).
fn login(port: u16, id: &str) -> (String, String) {
    let resp = Request::get("app.example.com", "/login").send(port);
    assert_eq!(resp.status, 302, "{}", resp.text());
    let echo = Echo::parse(&resp.body);
    let state = echo.state.expect("state");
    let cookie: Vec<&str> = resp
        .all("set-cookie")
        .into_iter()
        .filter_map(|c| c.split(';').next())
        .collect();
    assert_eq!(cookie.len(), 1, "one flow cookie");
    let cb = Request::get(
        "app.example.com",
        &format!("/callback?code=c0de-secret&state={state}"),
    )
    .header("Cookie", cookie[0])
    .header("X-Request-Id", id)
    .send(port);
    assert_eq!(cb.status, 200, "{}", cb.text());
    (echo.node, Echo::parse(&cb.body).node)
}

/// Envoy's log, waiting (bounded) until `needle` appears: the access log
/// is written when a stream ends, just after the response.
fn log_with(envoy: &Envoy, needle: &str) -> String {
    for _ in 0..100 {
        let log = envoy.log();
        if log.contains(needle) {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    envoy.log()
}

fn pins_without_routing(edit: impl FnOnce(&mut Value), what: &str) {
    let cluster = Cluster::start();
    let envoy = Envoy::start(&cluster.config(LOGIN_FLOW).edit(edit));
    let mut strays = 0;
    const LOGINS: u64 = 12;
    for i in 0..LOGINS {
        let (started, answered) = login(envoy.port, &format!("stray-{i}"));
        if started != answered {
            strays += 1;
        }
    }
    assert!(
        strays >= LOGINS / 2,
        "{what}: only {strays} of {LOGINS} callbacks strayed: round robin is not at work"
    );
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.pin_ignored"),
        strays,
        "{what}"
    );
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.pinned"),
        LOGINS - strays,
        "{what}: only callbacks that reached their node count as pinned"
    );
    let log = envoy.log();
    let warnings = log
        .matches("Envoy did not route on the session header")
        .count();
    assert_eq!(warnings, 1, "{what}: warned once per worker:\n{log}");
    assert!(log.contains("envoy.filters.http.stateful_session"), "{log}");
    // The first stray's access-log line says so too.
    let stray = (0..LOGINS)
        .map(|i| envoy.access_line(&format!("stray-{i}")))
        .find(|l| l.contains("oidc_edge=login_flow.pin_ignored"));
    assert!(
        stray.is_some(),
        "{what}: no access-log line shows pin_ignored"
    );
}

#[test]
fn without_stateful_session_callbacks_are_not_counted_as_pinned() {
    pins_without_routing(
        remove_filter("envoy.filters.http.stateful_session"),
        "stateful_session removed",
    );
}

#[test]
fn a_stateful_session_reading_another_header_is_detected() {
    pins_without_routing(
        |doc| {
            let ss = http_filters(doc)
                .iter_mut()
                .find(|f| f["name"] == "envoy.filters.http.stateful_session")
                .expect("stateful_session");
            ss["typed_config"]["session_state"]["typed_config"]["name"] =
                Value::String("x-session".into());
        },
        "session header misnamed",
    );
}

#[test]
fn with_the_reference_wiring_every_callback_is_pinned_and_logged() {
    let cluster = Cluster::start();
    let envoy = Envoy::start(&cluster.config(LOGIN_FLOW));
    for i in 0..6 {
        let (started, answered) = login(envoy.port, &format!("pin-{i}"));
        assert_eq!(started, answered);
    }
    assert_eq!(envoy.counter("oidc_edge.login_flow.pinned"), 6);
    assert_eq!(envoy.counter("oidc_edge.login_flow.pin_ignored"), 0);
    let line = envoy.access_line("pin-0");
    assert!(line.contains("oidc_edge=login_flow.pinned"), "{line}");
    assert!(line.contains("\"GET /callback HTTP/1.1\" 200"), "{line}");
    assert!(
        !line.contains("c0de-secret"),
        "the authorization code never reaches the access log: {line}"
    );
}

#[test]
fn the_access_log_shows_refusals_and_quiet_requests() {
    let cluster = Cluster::start();
    let envoy = Envoy::start(&cluster.config(LOGIN_FLOW));
    let refused = Request::get("app.example.com", "/callback?code=c&state=s1")
        .header("X-Request-Id", "refused-1")
        .header(
            "Cookie",
            "__Host-oidc-edge-zz=Zm9yZ2VkLWNvb2tpZS12YWx1ZQ; sid=opaque-session",
        )
        .send(envoy.port);
    assert_eq!(refused.status, 400, "{}", refused.text());
    let line = envoy.access_line("refused-1");
    assert!(
        line.contains(
            "\" 400 - upstream=- id=refused-1 oidc_edge=login_flow.rejected.missing,reason=flow_cookie_missing"
        ),
        "{line}"
    );
    let quiet = Request::get("app.example.com", "/account")
        .header("X-Request-Id", "quiet-1")
        .send(envoy.port);
    assert_eq!(quiet.status, 200);
    let line = envoy.access_line("quiet-1");
    assert!(line.ends_with(" oidc_edge=-"), "{line}");
    assert!(line.contains("upstream=127.0.0.1:"), "{line}");
    let log = envoy.log();
    for secret in ["Zm9yZ2VkLWNvb2tpZS12YWx1ZQ", "opaque-session", K1] {
        assert!(!log.contains(secret), "Envoy's log contains {secret}");
    }
}

#[test]
fn without_header_mutation_a_redirect_uri_refusal_names_the_missing_filter() {
    // The LB's requests arrive without the peer header: untrusted, so the
    // app is told plain http and sends an http redirect_uri to the IdP.
    let upstream = Upstream::start("app-1");
    let plugin = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com"]},
        "redirects": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                      "redirect_uris": ["https://app.example.com/callback"]}}"#;
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(plugin)
            .upstreams(&[upstream.addr])
            .edit(remove_filter("envoy.filters.http.header_mutation")),
    );
    let echo = Request::get("app.example.com", "/")
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .send(envoy.port);
    assert_eq!(
        Echo::parse(&echo.body)
            .header("x-forwarded-proto")
            .as_deref(),
        Some("http")
    );
    let to = "https://idp.example.com/oauth2/authorize?client_id=app&state=s1\
              &redirect_uri=http%3A%2F%2Fapp.example.com%2Fcallback";
    let path = format!(
        "/redirect?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("to", to)
            .finish()
    );
    let resp = Request::get("app.example.com", &path)
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .header("X-Request-Id", "peer-1")
        .send(envoy.port);
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(envoy.counter("oidc_edge.forwarded.peer_missing"), 2);
    let log = log_with(&envoy, "id=peer-1 ");
    let line = log
        .lines()
        .find(|l| l.contains("redirect_uri=\"http://app.example.com/callback\""))
        .unwrap_or_else(|| panic!("no redirect_uri line:\n{log}"));
    for w in [
        "(request peer-1)",
        "without the peer header",
        "header_mutation",
        "not the app's redirect_uri",
    ] {
        assert!(line.contains(w), "{line} lacks {w}");
    }
    let access = envoy.access_line("peer-1");
    assert!(
        access.contains(
            "oidc_edge=forwarded.untrusted_stripped,forwarded.peer_unknown,redirects.redirect_uri_mismatch,\
             forwarded.peer_missing,reason=redirect_uri_mismatch"
        ),
        "{access}"
    );
}

#[test]
fn a_good_load_says_which_sections_are_on() {
    let upstream = Upstream::start("app-1");
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .upstreams(&[upstream.addr])
            .env("OIDC_EDGE_KEY_1", K1),
    );
    let log = envoy.log();
    assert!(
        log.contains(
            "oidc-edge: configuration loaded; sections on: forwarded, login_flow (enforce, affinity flow), \
             redirects (redirect_uri enforce, return_to enforce)"
        ),
        "{log}"
    );
}

#[test]
fn contradictions_in_the_configuration_are_refused_at_load() {
    let reference = EnvoyConfig::reference().plugin_config_value();
    let cases: BTreeMap<&str, (String, &str)> = [
        (
            "login_flow.callback_paths[0]",
            (
                reference.replace(
                    r#""callback_paths": ["/callback"]"#,
                    r#""callback_paths": ["/callbak"]"#,
                ),
                "is the end of no registered redirect_uri",
            ),
        ),
        (
            "redirects.redirect_uris[0]",
            (
                reference.replace(
                    r#""redirect_uris": ["https://app.example.com/callback"]"#,
                    r#""redirect_uris": ["https://app.example.net/callback"]"#,
                ),
                "which forwarded.allowed_hosts does not allow",
            ),
        ),
    ]
    .into_iter()
    .collect();
    for (field, (plugin, why)) in cases {
        assert_ne!(plugin, reference, "the edit applied");
        let cfg = EnvoyConfig::reference()
            .plugin_config(&plugin)
            .env("OIDC_EDGE_KEY_1", K1);
        let log = match Envoy::try_start(&cfg) {
            Ok(_) => panic!("{field}: Envoy accepted a contradictory configuration"),
            Err(log) => log,
        };
        assert!(
            log.contains(&format!("invalid configuration: {field}: ")) && log.contains(why),
            "{field}:\n{log}"
        );
    }
}
