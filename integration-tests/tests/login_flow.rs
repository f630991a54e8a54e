//! Login-flow affinity in a real Envoy 1.40 loaded from `envoy/edge.yaml`,
//! with three app nodes behind round-robin load balancing. Each node issues
//! its own `state` on `/login` (as an app with in-memory login state does);
//! the callback must land on that node.

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Response, Upstream};
use oidc_edge::seal::keyring::{decode_secret, Key};
use oidc_edge::seal::sealed_cookie::{seal, state_hash, Binding, FlowClaims, Purpose};
use std::collections::{BTreeMap, HashSet};

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

fn plugin(keys: &str, extra: &str) -> String {
    format!(
        r#"{{"login_flow": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
            "callback_paths": ["/callback"], "keys": [{keys}]{extra}}}}}"#
    )
}

fn k1_only() -> String {
    plugin(r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#, "")
}

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

    fn envoy(&self, plugin: &str) -> Envoy {
        Envoy::start(&self.config(plugin))
    }

    /// Stops a node like a crash: port closed, connections cut.
    fn addr(&self, name: &str) -> std::net::SocketAddr {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| n.addr)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    fn kill(&mut self, name: &str) {
        self.nodes.retain(|n| n.name != name);
    }

    fn config(&self, plugin: &str) -> EnvoyConfig {
        EnvoyConfig::reference()
            .plugin_config(plugin)
            .upstreams(&self.nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .env("OIDC_EDGE_KEY_1", K1)
            .env("OIDC_EDGE_KEY_2", K2)
    }
}

/// A cookie jar that follows Set-Cookie (including deletion by Max-Age=0).
#[derive(Default)]
struct Browser {
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn send(&mut self, req: Request, port: u16) -> Response {
        req.send_with_cookies(&mut self.jar, port)
    }

    /// Starts a login: which node issued which state.
    fn login(&mut self, port: u16) -> (String, String) {
        let resp = self.send(Request::get("app.example.com", "/login"), port);
        assert_eq!(resp.status, 302, "{}", resp.text());
        let echo = Echo::parse(&resp.body);
        let state = echo.state.expect("state");
        assert!(resp
            .header("location")
            .unwrap()
            .contains(&format!("state={state}")));
        assert!(
            resp.header("x-oidc-edge-node").is_none(),
            "Envoy's session header must not reach the browser"
        );
        (echo.node, state)
    }

    /// Comes back from the IdP: which node served the callback.
    fn callback(&mut self, state: &str, port: u16) -> Response {
        self.send(
            Request::get(
                "app.example.com",
                &format!("/callback?code=c0de&state={state}"),
            ),
            port,
        )
    }
}

fn node_of(resp: &Response) -> String {
    assert_eq!(resp.status, 200, "{}", resp.text());
    Echo::parse(&resp.body).node
}

#[test]
fn a_callback_answered_with_a_new_login_gets_its_flow_cookie() {
    // The app answers a callback by sending the browser back to the IdP
    // (after a failed prompt=none, say). That response must start a flow
    // like any other, or the new login's callback lands on a random node.
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let mut browser = Browser::default();
    let (node, state) = browser.login(envoy.port);
    let resp = browser.send(
        Request::get(
            "app.example.com",
            &format!("/callback?code=c0de&state={state}&then=relogin"),
        ),
        envoy.port,
    );
    assert_eq!(resp.status, 302, "{}", resp.text());
    let echo = Echo::parse(&resp.body);
    assert_eq!(echo.node, node, "the callback was pinned");
    let again = echo.state.expect("a new state");
    assert_eq!(
        browser.jar.len(),
        1,
        "old flow cleared, new one set: {:?}",
        browser.jar
    );
    assert_eq!(envoy.counter("oidc_edge.login_flow.issued"), 2);
    for _ in 0..3 {
        // Round robin would move an unpinned callback; this one stays.
        let mut b = Browser {
            jar: browser.jar.clone(),
        };
        assert_eq!(node_of(&b.callback(&again, envoy.port)), node);
    }
}

#[test]
fn hundred_logins_under_round_robin_each_return_to_their_node() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let mut started_on = HashSet::new();
    for _ in 0..100 {
        let mut browser = Browser::default();
        let (node, state) = browser.login(envoy.port);
        assert_eq!(browser.jar.len(), 1, "one flow cookie per login");
        let name = browser.jar.keys().next().unwrap().clone();
        assert!(name.starts_with("__Host-oidc-edge-"));
        let resp = browser.callback(&state, envoy.port);
        assert_eq!(node_of(&resp), node, "callback for {state} left its node");
        let echo = Echo::parse(&resp.body);
        assert_eq!(
            echo.header("x-oidc-edge-node"),
            None,
            "the pinning header must not reach the app"
        );
        assert!(
            browser.jar.is_empty(),
            "the flow cookie is cleared after one use"
        );
        started_on.insert(node);
    }
    assert_eq!(
        started_on.len(),
        3,
        "round robin spread the logins, so pinning did real work"
    );
    assert_eq!(envoy.counter("oidc_edge.login_flow.issued"), 100);
    assert_eq!(envoy.counter("oidc_edge.login_flow.pinned"), 100);
}

#[test]
fn without_oidc_edge_pinning_callbacks_stray() {
    // Control for the test above: the same cluster with login_flow off sends
    // callbacks wherever round robin points, so most land on the wrong node.
    let cluster = Cluster::start();
    let envoy = Envoy::start(&cluster.config("{}").edit(|doc| {
        let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        hcm["http_filters"]
            .as_array_mut()
            .unwrap()
            .retain(|f| f["name"] != "envoy.filters.http.stateful_session");
    }));
    let mut strays = 0;
    for _ in 0..30 {
        let mut browser = Browser::default();
        let (node, state) = browser.login(envoy.port);
        if node_of(&browser.callback(&state, envoy.port)) != node {
            strays += 1;
        }
    }
    assert!(
        strays >= 10,
        "only {strays} of 30 strayed: the test cluster does not load-balance"
    );
}

#[test]
fn two_parallel_logins_in_one_browser_both_complete() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let mut browser = Browser::default();
    let (node1, state1) = browser.login(envoy.port);
    let (node2, state2) = browser.login(envoy.port);
    assert_ne!(
        node1, node2,
        "round robin gave the two tabs different nodes"
    );
    assert_eq!(browser.jar.len(), 2);
    assert_eq!(node_of(&browser.callback(&state2, envoy.port)), node2);
    assert_eq!(node_of(&browser.callback(&state1, envoy.port)), node1);
}

#[test]
fn client_sent_session_header_cannot_pick_a_node() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    // Standard base64 of node-b's ip:port: what Envoy's stateful_session would honour.
    let target = cluster.nodes[1].addr.to_string();
    let forged = base64_std(target.as_bytes());
    let mut seen = HashSet::new();
    for _ in 0..9 {
        // The header, and a cookie in the shape Envoy's cookie-based session
        // state uses (unsigned there; not configured here).
        let resp = Request::get("app.example.com", "/anything")
            .header("X-Oidc-Edge-Node", &forged)
            .header(
                "Cookie",
                &format!("x-oidc-edge-node={forged}; envoy-session={forged}"),
            )
            .send(envoy.port);
        let echo = Echo::parse(&resp.body);
        assert_eq!(echo.header("x-oidc-edge-node"), None);
        seen.insert(echo.node);
    }
    assert_eq!(
        seen.len(),
        3,
        "the forged header steered requests: {seen:?}"
    );
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.session_header_stripped"),
        0,
        "edge.yaml's header_mutation removes the client's copy before oidc-edge sees it"
    );
}

/// The http_filters of the edge listener.
fn http_filters(doc: &mut serde_json::Value) -> &mut Vec<serde_json::Value> {
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .unwrap()
}

/// Issue (cookies and affinity, point 5): if the wasm filter were ever
/// skipped, edge.yaml's header_mutation still removes the session header
/// both ways: a client cannot pick a node through stateful_session, and no
/// internal address reaches the browser. The control (the same Envoy
/// without those removals, as edge.yaml was) shows both would happen.
#[test]
fn without_oidc_edge_the_node_header_still_neither_steers_nor_leaks() {
    let cluster = Cluster::start();
    let target = cluster.nodes[1].addr.to_string();
    let forged = base64_std(target.as_bytes());
    let run = |keep_removals: bool| {
        let envoy = Envoy::start(&cluster.config(&k1_only()).edit(|doc| {
            let filters = http_filters(doc);
            filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
            if !keep_removals {
                let m = &mut filters[0]["typed_config"]["mutations"];
                m.as_object_mut().unwrap().remove("response_mutations");
                m["request_mutations"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|r| r.get("remove").is_none());
            }
        }));
        let mut nodes = HashSet::new();
        let mut leaked = Vec::new();
        for _ in 0..9 {
            let resp = Request::get("app.example.com", "/anything")
                .header("x-oidc-edge-node", &forged)
                .send(envoy.port);
            nodes.insert(Echo::parse(&resp.body).node);
            leaked.extend(resp.header("x-oidc-edge-node").map(str::to_string));
            // A request without the header: stateful_session picks a node
            // and would echo it.
            let resp = Request::get("app.example.com", "/plain").send(envoy.port);
            leaked.extend(resp.header("x-oidc-edge-node").map(str::to_string));
        }
        (nodes, leaked)
    };
    let (nodes, leaked) = run(true);
    assert_eq!(
        nodes.len(),
        3,
        "the forged header steered requests: {nodes:?}"
    );
    assert!(
        leaked.is_empty(),
        "node addresses reached the browser: {leaked:?}"
    );
    let (nodes, leaked) = run(false);
    assert_eq!(
        nodes.len(),
        1,
        "control: the forged header pins every request"
    );
    assert!(
        !leaked.is_empty(),
        "control: stateful_session echoes the node"
    );
}

/// Issue (cookies and affinity, point 1): a cookie prefix without
/// `__Host-` is refused at load, naming the fix.
#[test]
fn a_cookie_prefix_without_host_is_refused_at_load() {
    let plugin = plugin(
        r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#,
        r#", "cookie_prefix": "oidc-""#,
    );
    let log = Envoy::try_start(
        &EnvoyConfig::reference()
            .plugin_config(&plugin)
            .env("OIDC_EDGE_KEY_1", K1),
    )
    .err()
    .expect("refused");
    assert!(
        log.contains(
            "invalid configuration: login_flow.cookie_prefix: \"oidc-\" must start with \"__Host-\""
        ) && log.contains("insecure_cookies"),
        "{log}"
    );
}

/// Issue (cookies and affinity, point 2): only navigations start flows;
/// the rest pass without a cookie. What Chromium sends for each.
#[test]
fn only_navigations_start_flows_in_envoy() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let rows: &[(&[(&str, &str)], bool, &str)] = &[
        (
            &[
                ("Sec-Fetch-Mode", "no-cors"),
                ("Sec-Fetch-Dest", "image"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            false,
            "<img src=/login> on another site",
        ),
        (
            &[
                ("Sec-Fetch-Mode", "cors"),
                ("Sec-Fetch-Dest", "empty"),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            false,
            "fetch()",
        ),
        (
            &[
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Dest", "iframe"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            false,
            "a frame another site embeds",
        ),
        (
            &[
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Dest", "document"),
                ("Sec-Fetch-Site", "none"),
            ],
            true,
            "top-level navigation",
        ),
        (
            &[
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Dest", "iframe"),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            true,
            "hidden-iframe silent refresh",
        ),
        (&[], true, "no Fetch Metadata (curl, old browsers)"),
    ];
    let mut refused = 0;
    for (headers, issued, why) in rows {
        let mut req = Request::get("app.example.com", "/login");
        for (n, v) in *headers {
            req = req.header(n, v);
        }
        let resp = req.send(envoy.port);
        assert_eq!(resp.status, 302, "{why}: the redirect passes");
        assert!(resp.header("location").unwrap().contains("state="), "{why}");
        assert_eq!(resp.header("set-cookie").is_some(), *issued, "{why}");
        refused += usize::from(!*issued);
    }
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.not_navigation"),
        refused as u64
    );
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.issued"),
        (rows.len() - refused) as u64
    );
}

/// Issue (cookies and affinity, point 3): a login on a plain-http external
/// origin is refused with its reason; the configuration that makes it
/// certain is flagged in Envoy's log at load.
#[test]
fn a_login_over_plain_http_is_refused_in_envoy() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&format!(
        r#"{{"forwarded": {{"external_origin": "http://app.example.com"}}, {}"#,
        &k1_only()[1..]
    ));
    assert!(
        envoy.log().contains("forwarded.external_origin is \"http://app.example.com\" but login_flow cookies are Secure"),
        "{}",
        envoy.log()
    );
    let resp = Request::get("app.example.com", "/login").send(envoy.port);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("flow_insecure_origin")
    );
    assert!(resp.header("set-cookie").is_none() && resp.header("location").is_none());
    assert!(resp.text().contains("https://"), "{}", resp.text());
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.rejected.insecure_origin"),
        1
    );
}

/// Issue (cookies and affinity, point 4): with `response_mode:
/// "form_post"`, a flow cookie is SameSite=None though the authorization
/// URL does not ask for form_post.
#[test]
fn response_mode_form_post_sets_same_site_none() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&plugin(
        r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#,
        r#", "response_mode": "form_post""#,
    ));
    let resp = Request::get("app.example.com", "/login").send(envoy.port);
    assert!(!resp.header("location").unwrap().contains("response_mode"));
    let cookie = resp.header("set-cookie").unwrap();
    assert!(
        cookie.ends_with("; Secure; HttpOnly; SameSite=None"),
        "{cookie}"
    );
}

/// Issue (cookies and affinity, point 6): a callback the app's router
/// serves under another spelling is checked and pinned too.
#[test]
fn callbacks_in_other_spellings_are_pinned() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    for path in ["/Callback", "/callback/", "/callback;jsessionid=1"] {
        let mut browser = Browser::default();
        let (node, state) = browser.login(envoy.port);
        let resp = browser.send(
            Request::get("app.example.com", &format!("{path}?code=c&state={state}")),
            envoy.port,
        );
        assert_eq!(node_of(&resp), node, "{path}");
        let resp = Request::get("app.example.com", &format!("{path}?code=c&state={state}"))
            .send(envoy.port);
        assert_eq!(
            resp.header("x-oidc-edge-reason"),
            Some("flow_cookie_missing"),
            "{path}"
        );
    }
    assert_eq!(envoy.counter("oidc_edge.login_flow.pinned"), 3);
}

fn base64_std(b: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Rewrites the flow cookie in the jar.
fn tamper(browser: &mut Browser, f: impl FnOnce(&str, &str) -> Vec<(String, String)>) {
    let (name, value) = browser
        .jar
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    browser.jar.clear();
    for (k, v) in f(&name, &value) {
        browser.jar.insert(k, v);
    }
}

/// Changes one base64url character inside the MAC (ten from the end, so it
/// carries six whole bits of the tag; the last character may carry padding
/// bits, and changing those is a decoding error, not a MAC mismatch).
fn flip_mac_char(v: &str) -> String {
    let mut chars: Vec<char> = v.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// A request stuffed with cookies: only the first 256 `;`-pieces are read
/// (browsers keep at most 180 per site), so the work per request is bounded.
/// A flow cookie behind 300 others is not seen (refused as missing, never
/// half-checked); in front of them it still pins the callback.
#[test]
fn cookies_beyond_the_first_256_pieces_are_not_read() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let mut browser = Browser::default();
    let (node, state) = browser.login(envoy.port);
    let (name, value) = browser
        .jar
        .iter()
        .find(|(k, _)| k.starts_with("__Host-oidc-edge-"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("flow cookie");
    let junk: Vec<String> = (0..300).map(|i| format!("j{i}=x")).collect();
    let junk = junk.join("; ");
    let callback = |cookie: String| {
        Request::get(
            "app.example.com",
            &format!("/callback?code=c0de&state={state}"),
        )
        .header("Cookie", &cookie)
        .send(envoy.port)
    };
    let behind = callback(format!("{junk}; {name}={value}"));
    assert_eq!(behind.status, 400, "{}", behind.text());
    assert_eq!(
        behind.header("x-oidc-edge-reason"),
        Some("flow_cookie_missing")
    );
    let in_front = callback(format!("{name}={value}; {junk}"));
    assert_eq!(node_of(&in_front), node);
}

#[test]
fn tampered_cookies_are_refused_with_their_reason_and_steer_nothing() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    type Tamper = Box<dyn Fn(&str, &str) -> Vec<(String, String)>>;
    let rows: Vec<(&str, Tamper, &str)> = vec![
        (
            "flipped MAC byte",
            Box::new(|n, v| vec![(n.into(), flip_mac_char(v))]),
            "flow_cookie_bad_signature",
        ),
        (
            "payload edit",
            Box::new(|n, v| {
                let mut b: Vec<char> = v.chars().collect();
                b[8] = if b[8] == 'A' { 'B' } else { 'A' };
                vec![(n.into(), b.into_iter().collect())]
            }),
            "flow_cookie_bad_signature",
        ),
        (
            "cookie under another name",
            Box::new(|_, v| vec![("__Host-oidc-edge-AAAAAAAAAAAAAAAA".into(), v.into())]),
            "flow_cookie_missing",
        ),
        (
            "truncated (no longer authentic)",
            Box::new(|n, v| vec![(n.into(), v[..v.len() - 4].into())]),
            "flow_cookie_bad_signature",
        ),
        (
            "truncated to its header",
            Box::new(|n, v| vec![(n.into(), v[..8].into())]),
            "flow_cookie_malformed",
        ),
        (
            "standard base64 alphabet",
            Box::new(|n, v| vec![(n.into(), v.replace('-', "+").replace('_', "/") + "==")]),
            "flow_cookie_malformed",
        ),
        (
            "10 KB cookie",
            Box::new(|n, _| vec![(n.into(), "A".repeat(10_000))]),
            "flow_cookie_too_large",
        ),
        ("no cookie", Box::new(|_, _| vec![]), "flow_cookie_missing"),
    ];
    for (why, f, reason) in rows {
        let mut browser = Browser::default();
        let (_, state) = browser.login(envoy.port);
        tamper(&mut browser, f);
        let resp = browser.callback(&state, envoy.port);
        assert_eq!(resp.status, 400, "{why}: {}", resp.text());
        assert_eq!(resp.header("x-oidc-edge-reason"), Some(reason), "{why}");
        assert!(
            resp.text().contains("Login could not be completed"),
            "{why}"
        );
    }
    // A cookie from another flow, renamed to this flow's name: the MAC binds name and state.
    let mut browser = Browser::default();
    let (_, state_a) = browser.login(envoy.port);
    let value_a = browser.jar.values().next().unwrap().clone();
    browser.jar.clear();
    let (_, state_b) = browser.login(envoy.port);
    let name_b = browser.jar.keys().next().unwrap().clone();
    browser.jar.insert(name_b, value_a);
    let resp = browser.callback(&state_b, envoy.port);
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("flow_cookie_bad_signature"),
        "{state_a} vs {state_b}"
    );
    // Expired, signed by a key not in the ring, issued in the future, valid
    // too long, minted for another origin: sealed with the filter's own
    // codec for a real flow, so only that one thing differs.
    let k1 = || Key::new("k1", &decode_secret(K1).unwrap()).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // Without `forwarded`, cookies are bound to the request's authority.
    let here = "//app.example.com";
    for (why, key, issued_at, expires_at, origin, reason) in [
        ("expired", k1(), 0, 1, here, "flow_cookie_expired"),
        (
            "unknown key",
            Key::new("k9", &[9; 32]).unwrap(),
            0,
            u64::MAX / 2,
            here,
            "flow_cookie_unknown_key",
        ),
        (
            "issued an hour from now",
            k1(),
            now_ms + 3_600_000,
            now_ms / 1000 + 3_700,
            here,
            "flow_cookie_not_yet_valid",
        ),
        (
            "valid for a day, max_age_seconds is 600",
            k1(),
            now_ms,
            now_ms / 1000 + 86_400,
            here,
            "flow_cookie_lifetime_too_long",
        ),
        (
            "minted for another host name",
            k1(),
            now_ms,
            now_ms / 1000 + 300,
            "//other.example.com",
            "flow_cookie_bad_signature",
        ),
    ] {
        let mut browser = Browser::default();
        let (node, state) = browser.login(envoy.port);
        let name = browser.jar.keys().next().unwrap().clone();
        let addr = cluster
            .nodes
            .iter()
            .find(|n| n.name == node)
            .unwrap()
            .addr
            .to_string();
        let claims = FlowClaims {
            node: addr,
            issued_at,
            expires_at,
            seq: 1,
            restarts: 0,
            return_to: "/".into(),
        };
        let binding = Binding {
            purpose: Purpose::Flow,
            name: &name,
            origin,
        };
        browser.jar.insert(
            name.clone(),
            seal(&key, &binding, &state_hash(&state), &claims),
        );
        let resp = browser.callback(&state, envoy.port);
        assert_eq!(
            resp.header("x-oidc-edge-reason"),
            Some(reason),
            "{why}: {}",
            resp.text()
        );
    }
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.expired"), 1);
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.rejected.unknown_key"),
        1
    );
    for c in ["not_yet_valid", "lifetime_too_long"] {
        assert_eq!(
            envoy.counter(&format!("oidc_edge.login_flow.rejected.{c}")),
            1,
            "{c}"
        );
    }

    // Duplicate cookies: the same pair twice in the Cookie header.
    let mut browser = Browser::default();
    let (_, state) = browser.login(envoy.port);
    let (n, v) = browser
        .jar
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    let resp = Request::get("app.example.com", &format!("/callback?state={state}"))
        .header("Cookie", &format!("{n}={v}; {n}={v}"))
        .send(envoy.port);
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("flow_cookie_duplicate")
    );

    assert_eq!(
        envoy.counter("oidc_edge.login_flow.rejected.bad_signature"),
        5,
        "flipped, edited, truncated, another flow's, another host's"
    );
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.missing"), 2);
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.malformed"), 2);
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.too_large"), 1);
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.duplicate"), 1);
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.pinned"),
        0,
        "no refused callback was pinned"
    );
}

#[test]
fn report_mode_passes_everything_and_counts_what_enforce_would_block() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&plugin(
        r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#,
        r#", "mode": "report""#,
    ));
    let mut browser = Browser::default();
    let (_, state) = browser.login(envoy.port);
    tamper(&mut browser, |n, v| vec![(n.into(), flip_mac_char(v))]);
    let resp = browser.callback(&state, envoy.port);
    assert_eq!(resp.status, 200, "report mode forwards: {}", resp.text());
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.rejected.bad_signature"),
        1
    );
    assert_eq!(envoy.counter("oidc_edge.login_flow.report_only"), 1);
    assert_eq!(envoy.counter("oidc_edge.login_flow.pinned"), 0);
    // A good flow is still pinned in report mode.
    let mut browser = Browser::default();
    let (node, state) = browser.login(envoy.port);
    assert_eq!(node_of(&browser.callback(&state, envoy.port)), node);
}

#[test]
fn key_rotation_never_fails_a_login_in_flight() {
    let cluster = Cluster::start();
    let k1 = r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#;
    let k2 = r#"{"id": "k2", "secret_env": "OIDC_EDGE_KEY_2"}"#;

    // Step 1: k1 signs. A login starts.
    let step1 = cluster.envoy(&plugin(k1, ""));
    let mut started_under_k1 = Browser::default();
    let (node1, state1) = started_under_k1.login(step1.port);
    drop(step1);

    // Step 2: k2 signs, k1 still verifies. The k1 login completes; a k2 login starts.
    let step2 = cluster.envoy(&plugin(&format!("{k2}, {k1}"), ""));
    let mut late_k1 = Browser {
        jar: started_under_k1.jar.clone(),
    };
    assert_eq!(
        node_of(&started_under_k1.callback(&state1, step2.port)),
        node1
    );
    let mut started_under_k2 = Browser::default();
    let (node2, state2) = started_under_k2.login(step2.port);
    drop(step2);

    // Step 3: k1 dropped. The k2 login completes; a k1 cookie is now "unknown key".
    let step3 = cluster.envoy(&plugin(k2, ""));
    assert_eq!(
        node_of(&started_under_k2.callback(&state2, step3.port)),
        node2
    );
    let resp = late_k1.callback(&state1, step3.port);
    assert_eq!(resp.status, 400);
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("flow_cookie_unknown_key")
    );
    assert!(resp.text().contains("retired"), "{}", resp.text());
}

#[test]
fn missing_secret_environment_variable_is_refused_at_load() {
    let plugin = plugin(r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_UNSET"}"#, "");
    let log = match Envoy::try_start(&EnvoyConfig::reference().plugin_config(&plugin)) {
        Ok(_) => panic!("Envoy started without the signing key"),
        Err(log) => log,
    };
    assert!(log.contains("invalid configuration: login_flow.keys[0]: environment variable \"OIDC_EDGE_KEY_UNSET\" is not set"), "{log}");
    let short = plugin_with_inline("c2hvcnQ=");
    let log = Envoy::try_start(&EnvoyConfig::reference().plugin_config(&short))
        .err()
        .expect("refused");
    assert!(log.contains("at least 32"), "{log}");
}

fn plugin_with_inline(secret: &str) -> String {
    plugin(&format!(r#"{{"id": "k1", "secret": "{secret}"}}"#), "")
}

#[test]
fn form_post_callback_completes_on_its_node() {
    let cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let mut browser = Browser::default();
    let resp = browser.send(
        Request::get("app.example.com", "/login?form_post"),
        envoy.port,
    );
    let started = Echo::parse(&resp.body);
    let state = started.state.unwrap();
    assert!(resp
        .header("location")
        .unwrap()
        .contains("response_mode=form_post"));
    assert!(
        resp.header("set-cookie")
            .unwrap()
            .ends_with("SameSite=None"),
        "the IdP's cross-site POST must carry the cookie"
    );
    let body = format!("code=c0de&state={state}");
    let resp = browser.send(
        Request::post(
            "app.example.com",
            "/callback",
            "application/x-www-form-urlencoded",
            &body,
        ),
        envoy.port,
    );
    let echo = Echo::parse(&resp.body);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(echo.node, started.node);
    assert_eq!(echo.body, body, "the form body reaches the app unchanged");
    assert!(browser.jar.is_empty());
    // Two form-post logins in progress on different nodes: the callback is
    // routed before its body (and state) arrives, so only the newest completes.
    let mut browser = Browser::default();
    let start = |b: &mut Browser| {
        let r = b.send(
            Request::get("app.example.com", "/login?form_post"),
            envoy.port,
        );
        let e = Echo::parse(&r.body);
        (e.node, e.state.unwrap())
    };
    let (older_node, older) = start(&mut browser);
    let (newer_node, newer) = start(&mut browser);
    assert_ne!(older_node, newer_node);
    let post = |state: &str| {
        Request::post(
            "app.example.com",
            "/callback",
            "application/x-www-form-urlencoded",
            &format!("code=c&state={state}"),
        )
    };
    let resp = browser.send(post(&older), envoy.port);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.header("x-oidc-edge-reason"), Some("flow_other_node"));
    let resp = browser.send(post(&newer), envoy.port);
    assert_eq!(node_of(&resp), newer_node);
    assert!(envoy.counter("oidc_edge.login_flow.form_post_ambiguous") >= 1);

    let too_big = format!("state={state}&pad={}", "x".repeat(20_000));
    let resp = Request::post(
        "app.example.com",
        "/callback",
        "application/x-www-form-urlencoded",
        &too_big,
    )
    .send(envoy.port);
    assert_eq!(resp.status, 413);
    assert_eq!(
        envoy.counter("oidc_edge.login_flow.rejected.body_too_large"),
        1
    );
}

#[test]
fn a_login_whose_node_dies_restarts_once_and_completes_elsewhere() {
    let mut cluster = Cluster::start();
    let envoy = cluster.envoy(&k1_only());
    let mut browser = Browser::default();
    let (first, state1) = browser.login(envoy.port);
    cluster.kill(&first);

    // The IdP sends the browser back; its node is gone.
    let resp = browser.callback(&state1, envoy.port);
    assert_eq!(
        resp.status,
        302,
        "expected a restart, got {}: {}",
        resp.status,
        resp.text()
    );
    assert_eq!(
        resp.header("location"),
        Some("/login"),
        "back to where the login started"
    );
    assert!(browser.jar.keys().any(|k| k.ends_with("restart")));

    // The browser follows; a live node starts a new flow, the IdP's SSO finishes it.
    let resp = browser.send(Request::get("app.example.com", "/login"), envoy.port);
    assert_eq!(resp.status, 302, "{}", resp.text());
    let restarted = Echo::parse(&resp.body);
    assert_ne!(restarted.node, first);
    assert!(
        !browser.jar.keys().any(|k| k.ends_with("restart")),
        "the marker is used up"
    );
    let state2 = restarted.state.unwrap();
    assert_eq!(
        node_of(&browser.callback(&state2, envoy.port)),
        restarted.node,
        "logged in"
    );
    assert_eq!(envoy.counter("oidc_edge.login_flow.recovered"), 1);

    // A restarted login whose node dies too is not restarted again: no loop.
    let (third, state3) = {
        browser
            .jar
            .insert("__Host-oidc-edge-restart".into(), "1".into());
        browser.login(envoy.port)
    };
    cluster.kill(&third);
    let resp = browser.callback(&state3, envoy.port);
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("x-oidc-edge-reason"), Some("flow_node_gone"));
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.node_gone"), 1);
}

#[test]
fn session_scope_keeps_the_browser_on_its_node_after_login() {
    let mut cluster = Cluster::start();
    let envoy = cluster.envoy(&plugin(
        r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#,
        r#", "affinity": "session""#,
    ));
    let mut browser = Browser::default();
    let (node, state) = browser.login(envoy.port);
    assert_eq!(node_of(&browser.callback(&state, envoy.port)), node);
    assert!(
        browser.jar.keys().any(|k| k == "__Host-oidc-edge-session"),
        "{:?}",
        browser.jar
    );
    for i in 0..20 {
        let resp = browser.send(
            Request::get("app.example.com", &format!("/page/{i}")),
            envoy.port,
        );
        assert_eq!(node_of(&resp), node, "request {i} left the session's node");
    }
    assert_eq!(envoy.counter("oidc_edge.session.pinned"), 20);
    // Routine: a pinned request's access-log line has nothing to tell
    // (and oidc-edge wrote no filter state for it).
    let resp = browser.send(
        Request::get("app.example.com", "/page/logged").header("X-Request-Id", "pinned-1"),
        envoy.port,
    );
    assert_eq!(node_of(&resp), node);
    let line = envoy.access_line("pinned-1");
    assert!(line.ends_with(" oidc_edge=-"), "{line}");
    // A different browser is balanced as usual.
    let others: HashSet<String> = (0..6)
        .map(|_| node_of(&Request::get("app.example.com", "/x").send(envoy.port)))
        .collect();
    assert_eq!(others.len(), 3);
    // The session's node dies: the affinity is dropped and the browser carries on elsewhere.
    let addr = cluster.addr(&node);
    cluster.kill(&node);
    envoy.wait_until_gone(addr);
    let resp = browser.send(
        Request::get("app.example.com", "/page/after").header("X-Request-Id", "gone-1"),
        envoy.port,
    );
    assert_eq!(resp.status, 302, "{}", resp.text());
    // What is not routine is logged: the node gone, from the response phase.
    let line = envoy.access_line("gone-1");
    assert!(line.contains("oidc_edge=session.node_gone"), "{line}");
    assert_eq!(resp.header("location"), Some("/page/after"));
    assert!(!browser.jar.contains_key("__Host-oidc-edge-session"));
    let resp = browser.send(Request::get("app.example.com", "/page/after"), envoy.port);
    assert_ne!(node_of(&resp), node);
    // A forged session cookie is cleared and steers nothing.
    let mut forger = Browser::default();
    forger
        .jar
        .insert("__Host-oidc-edge-session".into(), "AAAA".into());
    forger.send(Request::get("app.example.com", "/"), envoy.port);
    assert!(forger.jar.is_empty());
    assert_eq!(envoy.counter("oidc_edge.session.invalid"), 1);
}
