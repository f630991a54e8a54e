//! Whole exchanges, natively: request headers → body → response headers,
//! through [`Exchange`] and an in-memory [`FakeHost`]. These pin the
//! policies the exchange owns (feature order, enforce versus report,
//! pinning, failover, what a callback's response is still checked for);
//! the real-Envoy tests in `integration-tests/` repeat the ones Envoy is
//! involved in.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // helpers of a test file

use oidc_edge::config::Config;
use oidc_edge::exchange::{callback_lost, node_unreachable, Exchange};
use oidc_edge::host::fake::FakeHost;
use oidc_edge::host::{Action, LogLevel};
use std::rc::Rc;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const IDP: &str = "https://idp.example.com/authorize";
const NODE_A: &str = "10.0.0.1:8080";
const NODE_B: &str = "10.0.0.2:8080";
const T0: u64 = 1_800_000_000_000;
const SESSION_HEADER: &str = "x-oidc-edge-node";
/// The token Envoy's header_mutation appends to the peer address.
const PEER_TOKEN: &str = "cGVlci10b2tlbi1mb3ItdGVzdHMtb25seS0wMTIzNDU2";

/// One Envoy's parsed configuration: `login_flow` options, and other
/// top-level sections, spliced into a base that trusts the loopback LB.
fn envoy(login_flow_extra: &str, sections: &str) -> Rc<Config> {
    let json = format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["10.9.0.0/16"], "allowed_hosts": ["app.example.com"]}},
            "login_flow": {{"authorization_endpoints": ["{IDP}"], "callback_paths": ["/callback"],
                            "keys": [{{"id": "k1", "secret": "{KEY}"}}]{login_flow_extra}}}{sections}}}"#
    );
    let env = |k: &str| (k == "OIDC_EDGE_PEER_TOKEN").then(|| PEER_TOKEN.to_string());
    Rc::new(Config::parse_with_env(json.as_bytes(), &env).unwrap())
}

/// A browser request through the trusted LB, `https://app.example.com`.
fn browser(method: &str, path: &str, cookie: &str, now: u64) -> FakeHost {
    let peer = format!("10.9.0.5;{PEER_TOKEN}");
    let mut h = vec![
        (":method", method),
        (":path", path),
        (":authority", "app.example.com"),
        ("x-oidc-edge-peer", &peer),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    if !cookie.is_empty() {
        h.push(("cookie", cookie));
    }
    FakeHost::request(&h, now)
}

/// Runs the request phase of a body-less request; asserts it is forwarded.
fn forward(ex: &mut Exchange, host: &mut FakeHost) {
    assert_eq!(
        ex.on_request_headers(host, true),
        Action::Continue,
        "{:?}",
        host.replies
    );
    assert!(host.replies.is_empty(), "{:?}", host.replies);
}

/// The app at `node` answers.
fn app_answers(ex: &mut Exchange, host: &mut FakeHost, node: &str, headers: &[(&str, &str)]) {
    host.respond(headers, Some(node), "via_upstream");
    assert_eq!(ex.on_response_headers(host), Action::Continue);
}

/// A login started on `node`: the app redirects to the IdP with `state`.
/// Returns the `Cookie` pair for the flow.
fn start_login(cfg: &Rc<Config>, node: &str, state: &str, cookie: &str, now: u64) -> String {
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/login?next=/account", cookie, now);
    forward(&mut ex, &mut host);
    let location = format!(
        "{IDP}?client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state={state}"
    );
    app_answers(
        &mut ex,
        &mut host,
        node,
        &[(":status", "302"), ("location", &location)],
    );
    assert_eq!(host.counter("oidc_edge.login_flow.issued"), 1);
    let (n, v) = host
        .set_cookies()
        .into_iter()
        .find(|(n, v)| !n.ends_with("session") && !v.is_empty())
        .unwrap();
    format!("{n}={v}")
}

/// An app with in-memory sessions creates the browser's session when it
/// starts a login, and keeps the login's state in it. A second tab's login
/// meanwhile must reach the same node: elsewhere it would get a new
/// session (and cookie), and the first login's callback would find no
/// state on its node. With `affinity: session` the response that starts a
/// login also pins the browser; with `flow` only the callback is pinned.
#[test]
fn with_session_affinity_the_browser_is_pinned_from_the_start_of_a_login() {
    for (affinity, pinned) in [("session", Some(NODE_B)), ("flow", None)] {
        let cfg = envoy(&format!(r#", "affinity": "{affinity}""#), "");
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", "/login", "", T0);
        forward(&mut ex, &mut host);
        let location = format!("{IDP}?client_id=app&state=tab1");
        app_answers(
            &mut ex,
            &mut host,
            NODE_B,
            &[(":status", "302"), ("location", &location)],
        );
        let jar: Vec<String> = host
            .set_cookies()
            .into_iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        assert_eq!(
            host.counter("oidc_edge.session.issued"),
            u64::from(pinned.is_some()),
            "{affinity}: {jar:?}"
        );
        // The second tab, with the cookies the first one got.
        let mut ex = Exchange::new(cfg);
        let mut host = browser("GET", "/login", &jar.join("; "), T0 + 1_000);
        forward(&mut ex, &mut host);
        assert_eq!(
            host.pinned_node(SESSION_HEADER).as_deref(),
            pinned,
            "{affinity}"
        );
    }
}

#[test]
fn a_login_started_on_one_envoy_is_pinned_by_another() {
    // Two Envoys: each parses the configuration itself, sharing only the key.
    let first = envoy("", "");
    let second = envoy("", "");
    let flow = start_login(&first, NODE_B, "s1", "", T0);

    let mut ex = Exchange::new(second);
    let mut host = browser("GET", "/callback?code=c&state=s1", &flow, T0 + 30_000);
    forward(&mut ex, &mut host);
    assert_eq!(host.pinned_node(SESSION_HEADER).as_deref(), Some(NODE_B));
    assert_eq!(
        host.request_value("x-envoy-max-retries"),
        Some("0"),
        "a retry would move the callback off its node"
    );
    assert_eq!(
        host.counter("oidc_edge.login_flow.pinned"),
        0,
        "pinned is counted once the node has answered"
    );
    app_answers(
        &mut ex,
        &mut host,
        NODE_B,
        &[(":status", "302"), ("location", "/account")],
    );
    assert_eq!(host.counter("oidc_edge.login_flow.pinned"), 1);
    assert_eq!(host.counter("oidc_edge.login_flow.pin_ignored"), 0);
    let flow_name = flow.split('=').next().unwrap();
    assert!(
        host.set_cookies()
            .contains(&(flow_name.to_string(), String::new())),
        "one use: the flow cookie is cleared: {:?}",
        host.set_cookies()
    );
}

#[test]
fn a_client_cannot_choose_the_node() {
    let cfg = envoy("", "");
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/", "", T0);
    host.request
        .push((SESSION_HEADER.into(), b"MTAuMC4wLjI6ODA4MA==".to_vec()));
    forward(&mut ex, &mut host);
    assert_eq!(host.request_value(SESSION_HEADER), None);
    assert_eq!(host.request_value("x-oidc-edge-peer"), None);
    assert_eq!(
        host.counter("oidc_edge.login_flow.session_header_stripped"),
        1
    );
}

#[test]
fn form_post_callbacks_are_routed_before_their_body_and_checked_after() {
    let cfg = envoy("", "");
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("POST", "/callback", &flow, T0 + 1_000);
    host.request.push((
        "content-type".into(),
        b"application/x-www-form-urlencoded".to_vec(),
    ));
    assert_eq!(ex.on_request_headers(&mut host, false), Action::Continue);
    assert_eq!(host.pinned_node(SESSION_HEADER).as_deref(), Some(NODE_A));
    host.body = b"code=c&state=s1".to_vec();
    assert_eq!(ex.on_request_body(&mut host, 7, false), Action::Pause);
    assert_eq!(ex.on_request_body(&mut host, 15, true), Action::Continue);
    assert!(host.replies.is_empty());

    // The same cookie with another login's state in the body is refused
    // once the body is read.
    let mut ex = Exchange::new(cfg);
    let mut host = browser("POST", "/callback", &flow, T0 + 1_000);
    assert_eq!(ex.on_request_headers(&mut host, false), Action::Continue);
    host.body = b"code=c&state=other".to_vec();
    assert_eq!(ex.on_request_body(&mut host, 18, true), Action::Pause);
    assert_eq!(host.replies[0].status, 400);
    assert_eq!(
        host.replies[0].header("x-oidc-edge-reason"),
        Some("flow_cookie_missing")
    );
}

#[test]
fn a_login_whose_node_is_gone_restarts_once_then_stops() {
    let cfg = envoy("", "");
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/callback?state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    host.respond(&[(":status", "503")], None, "no_healthy_upstream");
    ex.on_response_headers(&mut host);
    assert_eq!(host.response_value(":status"), Some("302"));
    assert_eq!(
        host.response_value("location"),
        Some("/login?next=/account"),
        "back to where the login started"
    );
    assert_eq!(host.counter("oidc_edge.login_flow.recovered"), 1);
    let restart = host
        .set_cookies()
        .into_iter()
        .find(|(n, _)| n.ends_with("restart"))
        .map(|(n, v)| format!("{n}={v}"))
        .unwrap();

    // The restarted login lands on a node that dies too: no loop.
    let flow2 = start_login(&cfg, NODE_B, "s2", &restart, T0 + 2_000);
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/callback?state=s2", &flow2, T0 + 3_000);
    forward(&mut ex, &mut host);
    host.respond(
        &[(":status", "503")],
        None,
        "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
    );
    ex.on_response_headers(&mut host);
    assert_eq!(host.response_value(":status"), Some("503"));
    assert_eq!(
        host.response_value("x-oidc-edge-reason"),
        Some("flow_node_gone")
    );
}

#[test]
fn a_callback_whose_connection_closed_under_it_is_restarted() {
    // A session keeps its node through a terminated connection (the node
    // may be alive); a login callback is restarted instead: a new login
    // costs nothing, an error page with the flow cookie used up does.
    let termination = "upstream_reset_before_response_started{connection_termination}";
    assert!(callback_lost(Some("503"), Some(termination.as_bytes())));
    assert!(callback_lost(Some("503"), Some(b"no_healthy_upstream")));
    assert!(!callback_lost(
        Some("503"),
        Some(b"upstream_reset_before_response_started{overflow}")
    ));
    assert!(!callback_lost(Some("503"), Some(b"via_upstream")));
    assert!(!callback_lost(Some("502"), Some(termination.as_bytes())));

    let cfg = envoy("", "");
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/callback?state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    host.respond(&[(":status", "503")], None, termination);
    ex.on_response_headers(&mut host);
    assert_eq!(host.response_value(":status"), Some("302"));
    assert_eq!(
        host.response_value("location"),
        Some("/login?next=/account")
    );
    assert_eq!(host.counter("oidc_edge.login_flow.recovered"), 1);
}

#[test]
fn only_an_unreachable_node_counts_as_gone() {
    let rows: &[(&str, &str, bool, &str)] = &[
        ("503", "no_healthy_upstream", true, "stateful_session strict, host gone"),
        (
            "503",
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}",
            true,
            "Envoy 1.40, node killed (observed)",
        ),
        (
            "503",
            "upstream_reset_before_response_started{connection_failure}",
            true,
            "connect failure",
        ),
        (
            "503",
            "upstream_reset_before_response_started{overflow}",
            false,
            "circuit breaker overflow: the node is busy, not gone",
        ),
        (
            "503",
            "upstream_reset_before_response_started{connection_termination}",
            false,
            "a pooled connection closed under the request: a live node's keep-alive \
             timer as often as a dead node (Envoy 1.40, both observed); the next \
             request tells",
        ),
        ("503", "via_upstream", false, "the app's own 503"),
        ("503", "upstream_response_timeout", false, "slow, not gone"),
        ("502", "no_healthy_upstream", false, "not a 503"),
    ];
    for (status, details, gone, why) in rows {
        assert_eq!(
            node_unreachable(Some(status), Some(details.as_bytes())),
            *gone,
            "{why}"
        );
    }

    // Through the exchange: an overflow keeps a session's affinity.
    let cfg = envoy(r#", "affinity": "session""#, "");
    let session = session_after_login(&cfg);
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/inbox", &session, T0 + 5_000);
    forward(&mut ex, &mut host);
    host.respond(
        &[(":status", "503")],
        None,
        "upstream_reset_before_response_started{overflow}",
    );
    ex.on_response_headers(&mut host);
    assert_eq!(host.response_value(":status"), Some("503"));
    assert!(host.set_cookies().is_empty(), "{:?}", host.set_cookies());
    assert_eq!(host.counter("oidc_edge.session.node_gone"), 0);
}

/// Logs in on NODE_B with session affinity; returns the session cookie pair.
fn session_after_login(cfg: &Rc<Config>) -> String {
    let flow = start_login(cfg, NODE_B, "s1", "", T0);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/callback?state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    app_answers(
        &mut ex,
        &mut host,
        NODE_B,
        &[(":status", "302"), ("location", "/account")],
    );
    assert_eq!(host.counter("oidc_edge.session.issued"), 1);
    let (n, v) = host
        .set_cookies()
        .into_iter()
        .find(|(n, v)| n.ends_with("session") && !v.is_empty())
        .unwrap();
    format!("{n}={v}")
}

#[test]
fn session_affinity_pins_and_recovers_to_a_local_path() {
    let cfg = envoy(r#", "affinity": "session""#, "");
    let session = session_after_login(&cfg);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/inbox", &session, T0 + 5_000);
    forward(&mut ex, &mut host);
    assert_eq!(host.pinned_node(SESSION_HEADER).as_deref(), Some(NODE_B));
    app_answers(&mut ex, &mut host, NODE_B, &[(":status", "200")]);
    assert_eq!(
        host.response_value(SESSION_HEADER),
        None,
        "the node address never reaches the browser"
    );

    // The node dies. The retry goes back to the request's path, which is
    // request data: one that would leave the site becomes `/`.
    for (path, location) in [
        ("/inbox?page=2", "/inbox?page=2"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
    ] {
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", path, &session, T0 + 6_000);
        forward(&mut ex, &mut host);
        host.respond(&[(":status", "503")], None, "no_healthy_upstream");
        ex.on_response_headers(&mut host);
        assert_eq!(host.response_value(":status"), Some("302"), "{path}");
        assert_eq!(host.response_value("location"), Some(location), "{path}");
        assert!(host
            .set_cookies()
            .iter()
            .any(|(n, v)| n.ends_with("session") && v.is_empty()));
    }
}

#[test]
fn a_callback_the_app_refuses_gets_no_session_cookie() {
    let cfg = envoy(r#", "affinity": "session""#, "");
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/callback?state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    app_answers(&mut ex, &mut host, NODE_A, &[(":status", "400")]);
    assert_eq!(host.counter("oidc_edge.session.issued"), 0);
    assert!(!host
        .set_cookies()
        .iter()
        .any(|(n, v)| n.ends_with("session") && !v.is_empty()));
}

#[test]
fn a_callback_response_is_still_checked_like_any_other() {
    // The app answers a callback by sending the browser back to the IdP
    // (e.g. prompt=none after a failed silent login), from an internal
    // origin: the new flow gets its cookie, the redirect_uri is checked,
    // and an internal Location is moved to the external origin.
    let sections = r#", "redirects": {"authorization_endpoints": ["https://idp.example.com/authorize"],
        "redirect_uris": ["https://app.example.com/callback"], "internal_origins": ["http://app.internal:8080"]}"#;
    let cfg = envoy("", sections);
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);

    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/callback?state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    let again = format!(
        "{IDP}?client_id=app&prompt=none&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=s2"
    );
    app_answers(
        &mut ex,
        &mut host,
        NODE_A,
        &[(":status", "302"), ("location", &again)],
    );
    assert_eq!(host.counter("oidc_edge.login_flow.issued"), 1, "new flow");
    assert_eq!(
        host.counter("oidc_edge.redirects.redirect_uri_registered"),
        1
    );

    let mut ex = Exchange::new(cfg.clone());
    let flow3 = start_login(&cfg, NODE_A, "s3", "", T0);
    let mut host = browser("GET", "/callback?state=s3", &flow3, T0 + 1_000);
    forward(&mut ex, &mut host);
    app_answers(
        &mut ex,
        &mut host,
        NODE_A,
        &[
            (":status", "302"),
            ("location", "http://app.internal:8080/account?x=1"),
        ],
    );
    assert_eq!(
        host.response_value("location"),
        Some("https://app.example.com/account?x=1")
    );

    let mut ex = Exchange::new(cfg.clone());
    let flow4 = start_login(&cfg, NODE_A, "s4", "", T0);
    let mut host = browser("GET", "/callback?state=s4", &flow4, T0 + 1_000);
    forward(&mut ex, &mut host);
    let bad = format!("{IDP}?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=s5");
    host.respond(
        &[(":status", "302"), ("location", &bad)],
        Some(NODE_A),
        "via_upstream",
    );
    assert_eq!(ex.on_response_headers(&mut host), Action::Pause);
    assert_eq!(host.replies[0].status, 502);
}

#[test]
fn an_internal_location_that_is_not_ascii_is_still_moved() {
    // Found by sending it through Envoy (integration-tests/tests/hostile.rs):
    // one non-ASCII byte in the path, UTF-8 or not, made the Location
    // unparseable, so an internal origin reached the browser as sent.
    let sections = r#", "redirects": {"redirect_uris": ["https://app.example.com/callback"],
        "internal_origins": ["http://app.internal:8080"]}"#;
    let cfg = envoy("", sections);
    for (path, moved) in [
        (
            b"/caf\xc3\xa9?q=\xe2\x82\xac".as_slice(),
            "/caf%C3%A9?q=%E2%82%AC",
        ),
        (b"/\xff\xfe".as_slice(), "/%FF%FE"),
    ] {
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", "/account", "", T0);
        forward(&mut ex, &mut host);
        host.respond(&[(":status", "302")], Some(NODE_A), "via_upstream");
        let mut location = b"http://app.internal:8080".to_vec();
        location.extend_from_slice(path);
        host.response.push(("location".to_string(), location));
        ex.on_response_headers(&mut host);
        assert_eq!(
            host.response_value("location"),
            Some(format!("https://app.example.com{moved}").as_str())
        );
        assert_eq!(host.counter("oidc_edge.redirects.location_rewritten"), 1);
    }
}

/// Enforce answers; report forwards, counts the reason and `report_only`
/// once each.
#[test]
fn report_mode_counts_once_per_feature() {
    struct Case {
        why: &'static str,
        /// (`login_flow` extra, other sections) in enforce, then in report mode.
        enforce: (&'static str, &'static str),
        report: (&'static str, &'static str),
        method: &'static str,
        path: &'static str,
        body: &'static str,
        response_location: Option<&'static str>,
        status: u32,
        reason_counter: &'static str,
        report_counter: &'static str,
    }
    const IDP_MODE: &str = r#", "idp": {"authorization_paths": ["/authorize"], "clients": {"app": ["https://app.example.com/callback"]}"#;
    const REDIRECTS: &str = r#", "redirects": {"authorization_endpoints": ["https://idp.example.com/authorize"], "redirect_uris": ["https://app.example.com/callback"]"#;
    let idp_enforce = format!("{IDP_MODE}}}");
    let idp_report = format!(r#"{IDP_MODE}, "mode": "report"}}"#);
    let redirects_enforce = format!("{REDIRECTS}}}");
    let redirects_report = format!(r#"{REDIRECTS}, "redirect_uri_mode": "report"}}"#);
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let cases = [
        Case {
            why: "login flow: callback without its cookie",
            enforce: ("", ""),
            report: (r#", "mode": "report""#, ""),
            method: "GET",
            path: "/callback?state=s9",
            body: "",
            response_location: None,
            status: 400,
            reason_counter: "oidc_edge.login_flow.rejected.missing",
            report_counter: "oidc_edge.login_flow.report_only",
        },
        Case {
            why: "return-to pointing off-site",
            enforce: ("", r#", "redirects": {"return_to": {"paths": ["/login"]}}"#),
            report: (
                "",
                r#", "redirects": {"return_to": {"paths": ["/login"], "mode": "report"}}"#,
            ),
            method: "GET",
            path: "/login?next=https://evil.example/",
            body: "",
            response_location: None,
            status: 400,
            reason_counter: "oidc_edge.redirects.return_to_rejected",
            report_counter: "oidc_edge.redirects.report_only",
        },
        Case {
            why: "unregistered redirect_uri in the app's redirect",
            enforce: ("", leak(redirects_enforce)),
            report: ("", leak(redirects_report)),
            method: "GET",
            path: "/login",
            body: "",
            response_location: Some(
                "https://idp.example.com/authorize?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=x",
            ),
            status: 502,
            reason_counter: "oidc_edge.redirects.redirect_uri_mismatch",
            report_counter: "oidc_edge.redirects.report_only",
        },
        Case {
            why: "IdP mode, GET with an unregistered redirect_uri",
            enforce: ("", leak(idp_enforce.clone())),
            report: ("", leak(idp_report.clone())),
            method: "GET",
            path: "/authorize?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code",
            body: "",
            response_location: None,
            status: 400,
            reason_counter: "oidc_edge.idp.rejected",
            report_counter: "oidc_edge.idp.report_only",
        },
        Case {
            why: "IdP mode, POST form with an unregistered redirect_uri",
            enforce: ("", leak(idp_enforce)),
            report: ("", leak(idp_report)),
            method: "POST",
            path: "/authorize",
            body: "client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code",
            response_location: None,
            status: 400,
            reason_counter: "oidc_edge.idp.rejected",
            report_counter: "oidc_edge.idp.report_only",
        },
    ];
    for case in cases {
        for report in [false, true] {
            let (lf, sections) = if report { case.report } else { case.enforce };
            let mut ex = Exchange::new(envoy(lf, sections));
            let mut host = browser(case.method, case.path, "", T0);
            if case.body.is_empty() {
                ex.on_request_headers(&mut host, true);
            } else {
                host.request.push((
                    "content-type".into(),
                    b"application/x-www-form-urlencoded".to_vec(),
                ));
                host.body = case.body.as_bytes().to_vec();
                assert_eq!(ex.on_request_headers(&mut host, false), Action::Continue);
                ex.on_request_body(&mut host, case.body.len(), true);
            }
            if let Some(location) = case.response_location {
                host.respond(
                    &[(":status", "302"), ("location", location)],
                    Some(NODE_A),
                    "via_upstream",
                );
                ex.on_response_headers(&mut host);
            }
            let mode = if report { "report" } else { "enforce" };
            let why = format!("{} ({mode})", case.why);
            assert_eq!(host.counter(case.reason_counter), 1, "{why}");
            if report {
                assert!(host.replies.is_empty(), "{why}: {:?}", host.replies);
                assert_eq!(host.counter(case.report_counter), 1, "{why}");
            } else {
                assert_eq!(
                    host.replies.first().map(|r| r.status),
                    Some(case.status),
                    "{why}"
                );
                assert_eq!(host.counter(case.report_counter), 0, "{why}");
            }
        }
    }
}

#[test]
fn a_clock_that_cannot_be_read_fails_closed() {
    let cfg = envoy("", "");
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/callback?state=s1", &flow, T0);
    host.now_ms = None;
    assert_eq!(ex.on_request_headers(&mut host, true), Action::Pause);
    assert_eq!(host.replies[0].status, 500);
    assert_eq!(host.counter("oidc_edge.internal_error"), 1);
    assert_eq!(host.pinned_node(SESSION_HEADER), None);
}

#[test]
fn a_failed_header_write_refuses_rather_than_forwards_unchecked() {
    let cfg = envoy("", "");
    let mut ex = Exchange::new(cfg);
    let mut host = browser("GET", "/", "", T0);
    host.fail_header_writes = true;
    assert_eq!(ex.on_request_headers(&mut host, true), Action::Pause);
    assert_eq!(host.replies[0].status, 500);
}

/// Issue points 2 and 3 through the exchange: `fix` chooses the registered
/// redirect_uri on the origin the browser addressed (the forwarded
/// decision's, which the exchange passes to the check), refuses when no
/// registered one is on it, and every rewrite's log line says what fix
/// cannot repair. (public host, expected status, registered URI sent, case)
#[test]
fn fix_uses_the_external_origin_and_says_what_it_cannot_repair() {
    let json = format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["10.9.0.0/16"], "allowed_hosts": ["a.example.com", "b.example.com", "c.example.com"]}},
            "redirects": {{"authorization_endpoints": ["{IDP}"], "redirect_uri_mode": "fix",
                "redirect_uris": ["https://a.example.com/callback", "https://b.example.com/callback"]}}}}"#
    );
    let env = |k: &str| (k == "OIDC_EDGE_PEER_TOKEN").then(|| PEER_TOKEN.to_string());
    let cfg = Rc::new(Config::parse_with_env(json.as_bytes(), &env).unwrap());
    let peer = format!("10.9.0.5;{PEER_TOKEN}");
    let rows = [
        (
            "b.example.com",
            302,
            Some("https://b.example.com/callback"),
            "second host: not the first registered",
        ),
        (
            "a.example.com",
            302,
            Some("https://a.example.com/callback"),
            "first host",
        ),
        (
            "c.example.com",
            502,
            None,
            "no registered redirect_uri on this host: refused, not sent elsewhere",
        ),
    ];
    for (public, status, want, why) in rows {
        let mut ex = Exchange::new(cfg.clone());
        let mut host = FakeHost::request(
            &[
                (":method", "GET"),
                (":path", "/login"),
                (":authority", public),
                ("x-oidc-edge-peer", &peer),
                ("x-forwarded-proto", "https"),
            ],
            T0,
        );
        forward(&mut ex, &mut host);
        let loc = format!(
            "{IDP}?client_id=app&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback&state=s"
        );
        host.respond(
            &[(":status", "302"), ("location", &loc)],
            Some(NODE_A),
            "via_upstream",
        );
        ex.on_response_headers(&mut host);
        let logs: Vec<&str> = host.logs.iter().map(|(_, m)| m.as_str()).collect();
        match want {
            Some(reg) => {
                let enc: String = form_urlencoded::byte_serialize(reg.as_bytes()).collect();
                let sent = host.response_value("location").unwrap();
                assert!(
                    sent.contains(&format!("redirect_uri={enc}&")),
                    "{why}: {sent}"
                );
                assert!(
                    logs.iter().any(|l| l.contains("redirect_uri_mode fix")
                        && l.contains(reg)
                        && l.contains("invalid_grant")
                        && l.contains("forwarded.trusted_cidrs")),
                    "{why}: {logs:?}"
                );
            }
            None => {
                assert_eq!(host.replies[0].status, status, "{why}");
                assert!(
                    logs.iter()
                        .any(|l| l.contains("external origin https://c.example.com")),
                    "{why}: {logs:?}"
                );
            }
        }
    }
}

/// Issue 11 §1 through the exchange: behind a TCP load balancer (which
/// sends nothing) and an LB that drops the port from Host, `fix` sends the
/// registered redirect_uri of the request's declared external origin, on
/// its port, never another host's. (peer, Host, registered URI sent)
#[test]
fn fix_chooses_the_registered_uri_of_the_hosts_declared_origin() {
    let json = format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["10.9.0.0/16"],
                "tcp_load_balancers": [{{"cidrs": ["10.8.0.0/16"], "scheme": "https"}}],
                "external_origins": ["https://shop.example.com:8443", "https://api.example.com:9443"]}},
            "redirects": {{"authorization_endpoints": ["{IDP}"], "redirect_uri_mode": "fix",
                "redirect_uris": ["https://api.example.com:9443/callback", "https://shop.example.com:8443/callback",
                                  "https://www.example.com:7443/callback"]}}}}"#
    );
    let env = |k: &str| (k == "OIDC_EDGE_PEER_TOKEN").then(|| PEER_TOKEN.to_string());
    let cfg = Rc::new(Config::parse_with_env(json.as_bytes(), &env).unwrap());
    let rows = [
        (
            "10.8.0.5",
            "shop.example.com:8443",
            "https://shop.example.com:8443/callback",
        ),
        (
            "10.9.0.5",
            "shop.example.com",
            "https://shop.example.com:8443/callback",
        ),
        (
            "10.8.0.5",
            "api.example.com:9443",
            "https://api.example.com:9443/callback",
        ),
        (
            "10.8.0.5",
            "www.example.com:7443",
            "https://www.example.com:7443/callback",
        ),
    ];
    for (peer, public, reg) in rows {
        let mut ex = Exchange::new(cfg.clone());
        let peer = format!("{peer};{PEER_TOKEN}");
        let mut host = FakeHost::request(
            &[
                (":method", "GET"),
                (":path", "/login"),
                (":authority", public),
                ("x-oidc-edge-peer", &peer),
                // Envoy's own, for the plain hop.
                ("x-forwarded-proto", "http"),
            ],
            T0,
        );
        forward(&mut ex, &mut host);
        let loc = format!(
            "{IDP}?client_id=app&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback&state=s"
        );
        host.respond(
            &[(":status", "302"), ("location", &loc)],
            Some(NODE_A),
            "via_upstream",
        );
        ex.on_response_headers(&mut host);
        let enc: String = form_urlencoded::byte_serialize(reg.as_bytes()).collect();
        let sent = host.response_value("location").unwrap();
        assert!(
            sent.contains(&format!("redirect_uri={enc}&")),
            "{public} via {peer}: {sent}"
        );
    }
}

/// Issue point 5 through the exchange: each return-to refusal answers with
/// its own reason (header, body), all under one counter.
/// (path and query, reason code, case)
#[test]
fn return_to_refusals_answer_with_their_own_reason() {
    let cfg = envoy("", r#", "redirects": {"return_to": {"paths": ["/login"]}}"#);
    let rows = [
        (
            "/login?next=https://evil.example/",
            "return_to_off_site",
            "another site",
        ),
        (
            "/login?rd=%2Fa&rd=%2Fb",
            "return_to_repeated",
            "a repeat is not another site",
        ),
        (
            "/login?x=1;rd=%2Fa",
            "return_to_semicolon",
            "CVE-2021-23336: ; as a separator",
        ),
        (
            "/login?rd=%2F%5Cevil",
            "return_to_malformed",
            "backslash spelling",
        ),
    ];
    for (i, (path, code, why)) in rows.iter().enumerate() {
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", path, "", T0);
        assert_eq!(
            ex.on_request_headers(&mut host, true),
            Action::Pause,
            "{why}"
        );
        let reply = &host.replies[0];
        assert_eq!(reply.status, 400, "{why}");
        assert_eq!(reply.header("x-oidc-edge-reason"), Some(*code), "{why}");
        assert!(String::from_utf8_lossy(&reply.body).contains(code), "{why}");
        assert_eq!(
            host.counter("oidc_edge.redirects.return_to_rejected"),
            1,
            "{why} (request {i})"
        );
    }
}

/// Issue (cookies and affinity, point 6): callback paths used to match byte
/// for byte, so a callback the app's router also serves skipped the flow
/// check and its pinning. (path, case and source)
#[test]
fn a_callback_in_another_spelling_is_checked_and_pinned() {
    let cfg = envoy("", "");
    let rows: &[(&str, &str)] = &[
        ("/Callback", "letter case (IIS, ASP.NET)"),
        ("/callback/", "trailing slash (Express, Spring MVC < 6)"),
        ("/callback;x", "path parameter (Tomcat, Jetty)"),
    ];
    for (i, (path, why)) in rows.iter().enumerate() {
        let state = format!("sp{i}");
        let flow = start_login(&cfg, NODE_B, &state, "", T0);
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", &format!("{path}?state={state}"), &flow, T0 + 1_000);
        forward(&mut ex, &mut host);
        assert_eq!(
            host.pinned_node(SESSION_HEADER).as_deref(),
            Some(NODE_B),
            "{why}: pinned"
        );
        // Without its cookie the same spelling is refused, not forwarded unchecked.
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", &format!("{path}?state={state}"), "", T0 + 1_000);
        assert_eq!(
            ex.on_request_headers(&mut host, true),
            Action::Pause,
            "{why}"
        );
        assert_eq!(
            host.replies[0].header("x-oidc-edge-reason"),
            Some("flow_cookie_missing"),
            "{why}"
        );
    }
}

/// The app at NODE_A answers a request to `/login` (with `extra` request
/// headers) by sending the browser to the IdP; returns the host.
fn login_with(cfg: &Rc<Config>, extra: &[(&str, &str)]) -> (Exchange, FakeHost) {
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/login", "", T0);
    for (n, v) in extra {
        host.request.retain(|(name, _)| name != n);
        host.request.push((n.to_string(), v.as_bytes().to_vec()));
    }
    forward(&mut ex, &mut host);
    let location = format!("{IDP}?client_id=app&state=s1");
    host.respond(
        &[(":status", "302"), ("location", &location)],
        Some(NODE_A),
        "via_upstream",
    );
    (ex, host)
}

/// Issue (cookies and affinity, point 2): only navigations start flows, so
/// a page cannot fill a browser's cookie jar with flows from `<img>`s,
/// `fetch`es or frames. (Fetch Metadata, flow started?, case and source)
#[test]
fn only_navigations_start_flows_and_the_rest_pass_without_a_cookie() {
    let cfg = envoy("", "");
    type Row<'a> = (&'a [(&'a str, &'a str)], bool, &'a str);
    let rows: &[Row] = &[
        (&[], true, "no Fetch Metadata (old browser, curl)"),
        (
            &[
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "document"),
            ],
            true,
            "top-level navigation",
        ),
        (
            &[
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "iframe"),
                ("sec-fetch-site", "same-origin"),
            ],
            true,
            "hidden-iframe silent refresh (Chromium)",
        ),
        (
            &[("sec-fetch-mode", "no-cors"), ("sec-fetch-dest", "image")],
            false,
            "<img src=/login> on another page",
        ),
        (
            &[
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-dest", "iframe"),
                ("sec-fetch-site", "cross-site"),
            ],
            false,
            "a frame another site embeds",
        ),
    ];
    for (extra, issued, why) in rows {
        let (mut ex, mut host) = login_with(&cfg, extra);
        assert_eq!(ex.on_response_headers(&mut host), Action::Continue, "{why}");
        assert!(host.replies.is_empty(), "{why}: the response passes");
        assert_eq!(host.response_value(":status"), Some("302"), "{why}");
        assert_eq!(
            host.counter("oidc_edge.login_flow.issued"),
            u64::from(*issued),
            "{why}"
        );
        assert_eq!(
            host.counter("oidc_edge.login_flow.not_navigation"),
            u64::from(!*issued),
            "{why}"
        );
        assert_eq!(host.set_cookies().is_empty(), !*issued, "{why}");
    }
}

/// Issue (cookies and affinity, point 3): the browser addressed plain
/// http, where it would drop the `__Host-` cookie: the login is refused
/// with its reason (enforce) or passes counted (report).
#[test]
fn a_login_over_plain_http_is_refused_with_its_reason() {
    for (extra, refused, why) in [
        ("", true, "enforce"),
        (r#", "mode": "report""#, false, "report"),
    ] {
        let cfg = envoy(extra, "");
        let (mut ex, mut host) = login_with(&cfg, &[("x-forwarded-proto", "http")]);
        let action = ex.on_response_headers(&mut host);
        assert_eq!(
            host.counter("oidc_edge.login_flow.rejected.insecure_origin"),
            1,
            "{why}"
        );
        assert_eq!(host.counter("oidc_edge.login_flow.issued"), 0, "{why}");
        if refused {
            assert_eq!(action, Action::Pause);
            assert_eq!(host.replies[0].status, 400);
            assert_eq!(
                host.replies[0].header("x-oidc-edge-reason"),
                Some("flow_insecure_origin")
            );
            assert!(String::from_utf8_lossy(&host.replies[0].body).contains("https://"));
        } else {
            assert_eq!(action, Action::Continue);
            assert!(host.replies.is_empty());
            assert_eq!(host.counter("oidc_edge.login_flow.report_only"), 1);
        }
    }
}

/// A browser request through the trusted LB with Envoy's request id.
fn browser_with_id(method: &str, path: &str, cookie: &str, now: u64, id: &str) -> FakeHost {
    let mut h = browser(method, path, cookie, now);
    h.request
        .push(("x-request-id".into(), id.as_bytes().to_vec()));
    h
}

#[test]
fn a_pin_another_node_answers_is_not_counted_as_pinned_and_is_warned_of_once() {
    // Envoy without stateful_session (or with it reading another header):
    // the pin is written, round robin sends the callback elsewhere.
    let cfg = envoy("", "");
    for (i, state) in ["s1", "s2"].into_iter().enumerate() {
        let flow = start_login(&cfg, NODE_A, state, "", T0);
        let mut ex = Exchange::new(cfg.clone());
        let id = format!("rid-{i}");
        let mut host = browser_with_id(
            "GET",
            &format!("/callback?code=c&state={state}"),
            &flow,
            T0 + 1_000,
            &id,
        );
        forward(&mut ex, &mut host);
        app_answers(&mut ex, &mut host, NODE_B, &[(":status", "200")]);
        assert_eq!(host.counter("oidc_edge.login_flow.pinned"), 0);
        assert_eq!(host.counter("oidc_edge.login_flow.pin_ignored"), 1);
        let warnings: Vec<&String> = host
            .logs
            .iter()
            .filter(|(l, m)| *l == LogLevel::Warn && m.contains("stateful_session"))
            .map(|(_, m)| m)
            .collect();
        if i == 0 {
            assert_eq!(warnings.len(), 1, "{:?}", host.logs);
            for w in [NODE_A, NODE_B, "\"x-oidc-edge-node\"", "request rid-0"] {
                assert!(warnings[0].contains(w), "{} lacks {w}", warnings[0]);
            }
        } else {
            assert!(warnings.is_empty(), "once per worker: {warnings:?}");
        }
        assert!(
            host.decisions
                .as_deref()
                .is_some_and(|d| d.contains("login_flow.pin_ignored")),
            "{:?}",
            host.decisions
        );
    }
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn a_session_pin_another_node_answers_is_counted_apart() {
    let cfg = envoy(r#", "affinity": "session""#, "");
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/callback?code=c&state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    app_answers(
        &mut ex,
        &mut host,
        NODE_A,
        &[(":status", "302"), ("location", "/me")],
    );
    assert_eq!(host.counter("oidc_edge.login_flow.pinned"), 1);
    let (n, v) = host
        .set_cookies()
        .into_iter()
        .find(|(n, v)| n.contains("session") && !v.is_empty())
        .unwrap();
    let session = format!("{n}={v}");
    for (answered_by, pinned, ignored) in [(NODE_A, 1, 0), (NODE_B, 0, 1)] {
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser("GET", "/me", &session, T0 + 2_000);
        forward(&mut ex, &mut host);
        assert_eq!(host.pinned_node(SESSION_HEADER).as_deref(), Some(NODE_A));
        // Envoy echoes the node it chose when it is not the one named; an
        // app that reflects request headers echoes it even when it is.
        let echo = base64_of(answered_by);
        let response = [(":status", "200"), (SESSION_HEADER, echo.as_str())];
        app_answers(&mut ex, &mut host, answered_by, &response);
        assert_eq!(host.counter("oidc_edge.session.pinned"), pinned);
        assert_eq!(host.counter("oidc_edge.session.pin_ignored"), ignored);
        assert_eq!(
            host.response_value(SESSION_HEADER),
            None,
            "no node address reaches the browser ({answered_by})"
        );
    }
}

#[test]
fn without_the_peer_header_the_redirect_uri_log_names_the_wiring_not_the_app() {
    // header_mutation missing: the LB's request arrives without the peer
    // header, so the app is told plain http and builds an http redirect_uri.
    let cfg = envoy(
        "",
        r#", "redirects": {"redirect_uris": ["https://app.example.com/callback"]}"#,
    );
    let mut ex = Exchange::new(cfg);
    let mut host = FakeHost::request(
        &[
            (":method", "GET"),
            (":path", "/login"),
            (":authority", "app.example.com"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", "4004b4d8-43d1-4c7f-af01-b5488dddc0f3"),
        ],
        T0,
    );
    forward(&mut ex, &mut host);
    assert_eq!(host.request_value("x-forwarded-proto"), Some("http"));
    assert_eq!(host.counter("oidc_edge.forwarded.peer_missing"), 1);
    assert_eq!(host.counter("oidc_edge.forwarded.peer_unknown"), 1);
    let location = format!(
        "{IDP}?client_id=app&redirect_uri=http%3A%2F%2Fapp.example.com%2Fcallback&state=s1"
    );
    host.respond(
        &[(":status", "302"), ("location", &location)],
        Some(NODE_A),
        "via_upstream",
    );
    ex.on_response_headers(&mut host);
    assert_eq!(host.replies[0].status, 502);
    let line = host
        .logs
        .iter()
        .find(|(_, m)| m.contains("redirect_uri="))
        .map(|(_, m)| m.as_str())
        .unwrap();
    for w in [
        "without the peer header",
        "header_mutation",
        "not the app's redirect_uri",
        "request 4004b4d8-43d1-4c7f-af01-b5488dddc0f3",
    ] {
        assert!(line.contains(w), "{line} lacks {w}");
    }
    let d = host.decisions.unwrap();
    for w in [
        "forwarded.peer_missing",
        "redirects.redirect_uri_mismatch",
        "reason=redirect_uri_mismatch",
    ] {
        assert!(d.contains(w), "{d} lacks {w}");
    }
}

#[test]
fn each_request_leaves_its_decisions_for_the_access_log() {
    let cfg = envoy("", "");
    // A plain request through the LB: nothing notable, nothing written.
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/", "", T0);
    forward(&mut ex, &mut host);
    app_answers(&mut ex, &mut host, NODE_A, &[(":status", "200")]);
    assert_eq!(host.decisions, None);
    assert_eq!(host.decision_writes, 0, "no host call for nothing to tell");

    // A pinned callback: written once, when the response phase knew it.
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = browser("GET", "/callback?code=c&state=s1", &flow, T0 + 1_000);
    forward(&mut ex, &mut host);
    app_answers(&mut ex, &mut host, NODE_A, &[(":status", "200")]);
    assert_eq!(host.decisions.as_deref(), Some("login_flow.pinned"));
    assert_eq!(host.decision_writes, 1);

    // A refused callback (enforce), and the same in report mode.
    for (extra, want) in [
        ("", "login_flow.rejected.missing,reason=flow_cookie_missing"),
        (
            r#", "mode": "report""#,
            "login_flow.rejected.missing,login_flow.report_only,reason=flow_cookie_missing",
        ),
    ] {
        let mut ex = Exchange::new(envoy(extra, ""));
        let mut host = browser("GET", "/callback?code=c&state=s9", "", T0);
        ex.on_request_headers(&mut host, true);
        // Stored as the request phase ends: a stream reset before any
        // response still logs why.
        assert_eq!(host.decisions.as_deref(), Some(want), "{extra}");
        if host.replies.is_empty() {
            app_answers(&mut ex, &mut host, NODE_A, &[(":status", "200")]);
        }
        assert_eq!(host.decisions.as_deref(), Some(want), "{extra}");
        assert_eq!(
            host.decision_writes, 1,
            "unchanged decisions are not rewritten"
        );
    }
}

#[test]
fn log_lines_about_refusals_name_the_request_and_no_secret() {
    // Refusals of every kind the request phase makes, each with a request
    // id, a sealed-looking cookie value and the peer token on the wire: the
    // log may say which request and why, never a cookie value or a secret.
    let cfg = envoy(
        r#", "mode": "report""#,
        r#", "redirects": {"redirect_uris": ["https://app.example.com/callback"],
                          "return_to": {"paths": ["/login"], "mode": "report"}}"#,
    );
    let cookie_value = "Zm9yZ2VkLWZsb3ctY29va2llLXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw";
    let flow = start_login(&cfg, NODE_A, "s1", "", T0);
    let flow_value = flow.split_once('=').unwrap().1.to_string();
    let cases = [
        (
            "/callback?code=c&state=s1",
            format!("__Host-oidc-edge-x={cookie_value}; {flow}; {flow}"),
        ),
        (
            "/callback?code=c&state=s2",
            format!("__Host-oidc-edge-x={cookie_value}"),
        ),
        (
            "/login?next=https://evil.example/",
            format!("sid={cookie_value}"),
        ),
    ];
    for (i, (path, cookie)) in cases.iter().enumerate() {
        let id = format!("req-{i}");
        let mut ex = Exchange::new(cfg.clone());
        let mut host = browser_with_id("GET", path, cookie, T0 + 1_000, &id);
        forward(&mut ex, &mut host);
        let location =
            format!("{IDP}?client_id=app&redirect_uri=http%3A%2F%2Finternal%2Fcallback&state=s3");
        // The app's redirect_uri is refused too (502, enforce).
        host.respond(
            &[(":status", "302"), ("location", &location)],
            Some(NODE_B),
            "via_upstream",
        );
        ex.on_response_headers(&mut host);
        let refusals: Vec<&String> = host
            .logs
            .iter()
            .filter(|(l, m)| {
                *l >= LogLevel::Info && (m.contains("would answer") || m.contains("redirect_uri="))
            })
            .map(|(_, m)| m)
            .collect();
        assert!(!refusals.is_empty(), "{path}: {:?}", host.logs);
        for line in &refusals {
            assert!(line.contains(&format!("request {id}")), "{line}");
        }
        for (_, line) in &host.logs {
            for secret in [cookie_value, flow_value.as_str(), KEY, PEER_TOKEN] {
                assert!(!line.contains(secret), "{line} contains {secret}");
            }
        }
    }
}
