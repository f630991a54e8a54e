//! Whole exchanges with arbitrary requests, bodies and app responses,
//! through the in-memory host, checking what must hold whatever arrives:
//!
//! - a client-sent session (`x-oidc-edge-node`) or peer header never reaches
//!   an upstream: the session header the app's Envoy routes on is absent or
//!   names the node of a flow cookie oidc-edge itself issued;
//! - a request the filter refuses never reaches an upstream: once a local
//!   answer is sent, every later request-phase step stops the stream;
//! - no `Location` the filter writes leaves the site: a changed `Location`
//!   is a local path or on the external origin (or the IdP, for a login the
//!   app started);
//! - the node address never reaches the browser.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::exchange::Exchange;
use oidc_edge::host::fake::FakeHost;
use oidc_edge::host::Action;
use std::rc::Rc;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const NODE: &str = "10.0.0.1:8080";
const SESSION: &str = "x-oidc-edge-node";
const PEER: &str = "x-oidc-edge-peer";
const T0: u64 = 1_800_000_000_000;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    session_affinity: bool,
    report: bool,
    post: bool,
    /// Picks a path start the checks care about; `path` follows it.
    path_kind: u8,
    path: &'a str,
    cookie: &'a str,
    /// Prepend the flow cookie of a login really started on NODE, from
    /// `login_path` (where a restart returns to).
    with_issued_flow: bool,
    login_path: &'a str,
    /// Also complete that login first: the session cookie it earns (with
    /// session affinity) is sent too.
    with_session: bool,
    headers: Vec<(u8, &'a str)>,
    body: &'a [u8],
    body_in_two: bool,
    status: u16,
    location: &'a str,
    upstream_answered: bool,
    details: u8,
    elapsed_ms: u16,
}

const PATHS: &[&str] = &[
    "/callback?code=c&state=s1",
    "/callback",
    "/login?next=",
    "/account",
    "",
];

const NAMES: &[&str] = &[
    SESSION,
    PEER,
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "forwarded",
    "x-real-ip",
    "content-type",
    "sec-fetch-mode",
    "cookie",
    ":authority",
];

const DETAILS: &[&str] = &[
    "via_upstream",
    "no_healthy_upstream",
    "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_111}",
    "upstream_reset_before_response_started{overflow}",
];

fn config(session: bool, report: bool) -> Option<Rc<Config>> {
    let affinity = if session { "session" } else { "flow" };
    let mode = if report { "report" } else { "enforce" };
    let json = format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["10.9.0.0/16"], "allowed_hosts": ["app.example.com"], "peer_token_env": null}},
            "login_flow": {{"authorization_endpoints": ["https://idp.example.com/authorize"], "callback_paths": ["/callback"],
                            "keys": [{{"id": "k1", "secret": "{KEY}"}}], "affinity": "{affinity}", "mode": "{mode}"}},
            "redirects": {{"authorization_endpoints": ["https://idp.example.com/authorize"],
                           "redirect_uris": ["https://app.example.com/callback"], "redirect_uri_mode": "{mode}",
                           "internal_origins": ["http://app.internal:8080"], "rewrite_upstream_origin": true,
                           "return_to": {{"mode": "{mode}"}}}}}}"#
    );
    Config::parse(json.as_bytes()).ok().map(Rc::new)
}

fn lb_request(method: &str, path: &str, cookie: &str) -> FakeHost {
    let mut h = vec![
        (":method", method),
        (":path", path),
        (":authority", "app.example.com"),
        (PEER, "10.9.0.5"),
        ("x-forwarded-proto", "https"),
    ];
    if !cookie.is_empty() {
        h.push(("cookie", cookie));
    }
    FakeHost::request(&h, T0)
}

/// Runs one exchange whose app on NODE answers a redirect to `location`;
/// returns the first cookie it set whose name ends in `suffix`.
fn cookie_from(
    cfg: &Rc<Config>,
    path: &str,
    cookie: &str,
    location: &str,
    suffix: &str,
) -> Option<String> {
    let mut ex = Exchange::new(cfg.clone());
    let mut host = lb_request("GET", path, cookie);
    ex.on_request_headers(&mut host, true);
    host.respond(
        &[(":status", "302"), ("location", location)],
        Some(NODE),
        "via_upstream",
    );
    ex.on_response_headers(&mut host);
    let (n, v) = host
        .set_cookies()
        .into_iter()
        .find(|(n, v)| n.ends_with(suffix) && !v.is_empty())?;
    Some(format!("{n}={v}"))
}

/// A flow cookie for state `s1`, issued by a real exchange for a login on
/// NODE started at `login_path`.
fn issued_flow(cfg: &Rc<Config>, login_path: &str) -> Option<String> {
    let idp = "https://idp.example.com/authorize?redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=s1";
    cookie_from(cfg, login_path, "", idp, "")
}

/// The session cookie a completed login on NODE earns, if any.
fn issued_session(cfg: &Rc<Config>, flow: &str) -> Option<String> {
    cookie_from(cfg, "/callback?code=c&state=s1", flow, "/", "session")
}

/// Whether `loc` stays on the site: a local path, or the external origin.
fn on_site(loc: &str) -> bool {
    let b = loc.as_bytes();
    let local = b.first() == Some(&b'/') && !matches!(b.get(1), Some(b'/' | b'\\'));
    local || loc.starts_with("https://app.example.com/") || loc == "https://app.example.com"
}

fuzz_target!(|input: Input| {
    let Some(cfg) = config(input.session_affinity, input.report) else {
        return;
    };
    let mut cookie = input.cookie.to_string();
    if input.with_issued_flow {
        let login = format!("/login{}", input.login_path);
        let Some(flow) = issued_flow(&cfg, &login) else {
            return;
        };
        if input.with_session {
            if let Some(session) = issued_session(&cfg, &flow) {
                cookie = format!("{session}; {cookie}");
            }
        }
        cookie = format!("{flow}; {cookie}");
    }
    let method = if input.post { "POST" } else { "GET" };
    let path = format!(
        "{}{}",
        PATHS[usize::from(input.path_kind) % PATHS.len()],
        input.path
    );
    let mut host = lb_request(method, &path, &cookie);
    host.now_ms = Some(T0 + u64::from(input.elapsed_ms));
    for (i, v) in &input.headers {
        let name = NAMES[usize::from(*i) % NAMES.len()];
        host.request.push((name.to_string(), v.as_bytes().to_vec()));
    }
    host.body = input.body.to_vec();
    let mut ex = Exchange::new(cfg);

    let end = input.body.is_empty();
    let mut stopped = ex.on_request_headers(&mut host, end) == Action::Pause;
    if !end {
        let mut steps = vec![(input.body.len(), true)];
        if input.body_in_two {
            steps.insert(0, (input.body.len() / 2, false));
        }
        for (size, last) in steps {
            let answered_before = !host.replies.is_empty();
            let a = ex.on_request_body(&mut host, size, last);
            if answered_before {
                assert_eq!(a, Action::Pause, "a refused request must stay stopped");
            }
            stopped |= a == Action::Pause && last;
        }
    }
    if !host.replies.is_empty() {
        assert!(stopped, "a local answer was sent but the request went on");
        return;
    }
    if stopped {
        return;
    }

    // What reaches the upstream.
    assert_eq!(
        host.request_value(PEER),
        None,
        "the peer header reached the app"
    );
    let session_values: Vec<_> = host.request.iter().filter(|(n, _)| n == SESSION).collect();
    assert!(session_values.len() <= 1, "{session_values:?}");
    match host.pinned_node(SESSION) {
        Some(node) => {
            assert!(
                input.with_issued_flow,
                "pinned to {node} without a cookie oidc-edge issued"
            );
            assert_eq!(node, NODE, "pinned to a node no cookie named");
        }
        None => assert_eq!(
            host.request_value(SESSION),
            None,
            "a client-sent session header reached the app"
        ),
    }

    // The app (or Envoy) answers.
    let status = format!("{}", 100 + input.status % 500);
    let upstream = input.upstream_answered.then_some(NODE);
    let details = DETAILS[usize::from(input.details) % DETAILS.len()];
    let mut response = vec![
        (":status", status.as_str()),
        (SESSION, "MTAuMC4wLjE6ODA4MA=="),
    ];
    if !input.location.is_empty() {
        response.push(("location", input.location));
    }
    host.respond(&response, upstream, details);
    ex.on_response_headers(&mut host);
    assert_eq!(
        host.response_value(SESSION),
        None,
        "the node address reached the browser"
    );
    if !host.replies.is_empty() {
        return;
    }
    if let Some(loc) = host.response_value("location") {
        if loc != input.location {
            assert!(
                on_site(loc) || loc.starts_with("https://idp.example.com/authorize"),
                "oidc-edge wrote an off-site Location {loc:?} (app sent {:?})",
                input.location
            );
        }
    }
});
