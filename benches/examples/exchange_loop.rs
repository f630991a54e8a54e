//! Replays one kind of request through the whole exchange (request and
//! response phase, [`FakeHost`] playing Envoy) many times, for a profiler:
//! `valgrind --tool=callgrind target/release/examples/exchange_loop a 20000`
//! counts instructions, which do not drift with the machine's load the way
//! times do. Kinds: `a` (a logged-in browser's ordinary request, the
//! reference configuration with session affinity), `b` (the IdP's callback
//! with a valid flow cookie, answered with a session cookie), `f`
//! (`forwarded` only).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use oidc_edge::config::Config;
use oidc_edge::exchange::Exchange;
use oidc_edge::host::fake::FakeHost;
use oidc_edge::host::{Host, LogLevel, Property};
use oidc_edge::metrics::{Counter, CounterSet};
use std::rc::Rc;

/// [`FakeHost`] that lists every host call made (`trace`).
struct Traced<'a>(&'a mut FakeHost, Vec<String>);

/// What Envoy does for the exchange, at about Envoy's cost to the module:
/// the request headers are one copy of a ready buffer (Envoy serializes
/// them on its side), header writes cost the module nothing but the call.
/// Everything else is [`FakeHost`]'s.
struct Envoyish<'a> {
    map: &'a [u8],
    inner: FakeHost,
    writes: u32,
    /// What the module keeps per request for its access-log decisions.
    touched: CounterSet,
}

impl Host for Envoyish<'_> {
    fn request_header_map(&mut self) -> Option<Box<[u8]>> {
        Some(self.map.into())
    }
    fn set_request_header(&mut self, name: &str, _value: Option<&str>) -> bool {
        self.writes += u32::from(name == "x-oidc-edge-node");
        true
    }
    fn request_body(&mut self, size: usize) -> Option<Vec<u8>> {
        self.inner.request_body(size)
    }
    fn response_header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.inner.response_header(name)
    }
    fn set_response_header(&mut self, _name: &str, _value: Option<&str>) -> bool {
        true
    }
    fn add_response_header(&mut self, name: &str, value: &str) -> bool {
        self.inner.add_response_header(name, value)
    }
    fn property(&mut self, p: Property) -> Option<Vec<u8>> {
        self.inner.property(p)
    }
    fn now_ms(&mut self) -> Option<u64> {
        self.inner.now_ms()
    }
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
        self.inner.send_response(status, headers, body)
    }
    fn increment(&mut self, c: Counter) {
        self.touched.add(c);
    }
    fn touched(&self) -> CounterSet {
        self.touched
    }
    fn log(&mut self, level: LogLevel, msg: &str) {
        self.inner.log(level, msg)
    }
    fn set_decisions(&mut self, value: &str) -> bool {
        self.inner.set_decisions(value)
    }
}

impl Host for Traced<'_> {
    fn request_header_map(&mut self) -> Option<Box<[u8]>> {
        self.1.push("request_header_map".into());
        self.0.request_header_map()
    }
    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> bool {
        self.1.push(format!("set_request_header {name} {value:?}"));
        self.0.set_request_header(name, value)
    }
    fn request_body(&mut self, size: usize) -> Option<Vec<u8>> {
        self.1.push("request_body".into());
        self.0.request_body(size)
    }
    fn response_header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.1.push(format!("response_header {name}"));
        self.0.response_header(name)
    }
    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> bool {
        self.1.push(format!("set_response_header {name} {value:?}"));
        self.0.set_response_header(name, value)
    }
    fn add_response_header(&mut self, name: &str, value: &str) -> bool {
        self.1.push(format!("add_response_header {name}"));
        self.0.add_response_header(name, value)
    }
    fn property(&mut self, p: Property) -> Option<Vec<u8>> {
        self.1.push(format!("property {p:?}"));
        self.0.property(p)
    }
    fn now_ms(&mut self) -> Option<u64> {
        self.1.push("now_ms".into());
        self.0.now_ms()
    }
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
        self.1.push(format!("send_response {status}"));
        self.0.send_response(status, headers, body)
    }
    fn increment(&mut self, c: Counter) {
        self.1.push(format!("increment {}", c.name()));
        self.0.increment(c)
    }
    fn touched(&self) -> CounterSet {
        self.0.touched()
    }
    fn log(&mut self, level: LogLevel, msg: &str) {
        self.1.push(format!("log {level:?} {msg}"));
        self.0.log(level, msg)
    }
    fn set_decisions(&mut self, value: &str) -> bool {
        self.1.push(format!("set_decisions {value}"));
        self.0.set_decisions(value)
    }
}

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const PEER_TOKEN: &str = "cGVlci10b2tlbi1mb3ItdGVzdHMtb25seS0wMTIzNDU2";
const NODE: &str = "10.0.0.2:8080";
const T0: u64 = 1_800_000_000_000;

fn config(full: bool) -> Rc<Config> {
    let forwarded =
        r#""forwarded": {"trusted_cidrs": ["10.9.0.0/16"], "allowed_hosts": ["app.example.com"]}"#;
    let json = if full {
        format!(
            r#"{{{forwarded},
            "login_flow": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                "callback_paths": ["/callback"], "affinity": "session",
                "keys": [{{"id": "k1", "secret": "{KEY}"}}]}},
            "redirects": {{"redirect_uris": ["https://app.example.com/callback"],
                "redirect_uri_mode": "enforce", "rewrite_upstream_origin": true,
                "return_to": {{"paths": ["/login", "/logout"]}}}}}}"#
        )
    } else {
        format!("{{{forwarded}}}")
    };
    let env = |k: &str| (k == "OIDC_EDGE_PEER_TOKEN").then(|| PEER_TOKEN.to_string());
    Rc::new(Config::parse_with_env(json.as_bytes(), &env).expect("config"))
}

/// What a trusted LB forwards for a browser's navigation to `path`.
fn request(path: &str, cookie: &str, now: u64) -> FakeHost {
    let peer = format!("10.9.0.5;{PEER_TOKEN}");
    let mut h = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "app.example.com"),
        (":scheme", "http"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0"),
        ("accept", "text/html,application/xhtml+xml"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-site", "none"),
        ("x-oidc-edge-peer", &peer),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-for", "203.0.113.7"),
        ("x-request-id", "4b7a6c1e-0000-4000-8000-000000000001"),
    ];
    if !cookie.is_empty() {
        h.push(("cookie", cookie));
    }
    FakeHost::request(&h, now)
}

/// The flow cookie of a login (state `s1`) started on [`NODE`].
fn flow_cookie(cfg: &Rc<Config>) -> String {
    let idp = "https://idp.example.com/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=s1";
    let mut ex = Exchange::new(cfg.clone());
    let mut host = request("/login", "", T0);
    ex.on_request_headers(&mut host, true);
    host.respond(
        &[(":status", "302"), ("location", idp)],
        Some(NODE),
        "via_upstream",
    );
    ex.on_response_headers(&mut host);
    // (With session affinity the login start also pins the session.)
    let (n, v) = host
        .set_cookies()
        .into_iter()
        .find(|(n, _)| !n.ends_with("session"))
        .expect("flow cookie");
    format!("{n}={v}")
}

/// A session cookie, as a login through the exchange would leave it.
fn session_cookie(cfg: &Rc<Config>) -> String {
    let flow = flow_cookie(cfg);
    let mut ex = Exchange::new(cfg.clone());
    let mut host = request("/callback?state=s1&code=c", &flow, T0 + 1_000);
    ex.on_request_headers(&mut host, true);
    host.respond(
        &[(":status", "302"), ("location", "/")],
        Some(NODE),
        "via_upstream",
    );
    ex.on_response_headers(&mut host);
    let (n, v) = host
        .set_cookies()
        .into_iter()
        .find(|(n, v)| n.ends_with("session") && !v.is_empty())
        .expect("session cookie");
    format!("_ga=GA1.1.1; {n}={v}")
}

/// One request's whole exchange (the profiler counts inside this).
#[inline(never)]
fn one_exchange(cfg: &Rc<Config>, host: &mut Envoyish) -> u32 {
    let mut ex = Exchange::new(cfg.clone());
    ex.on_request_headers(host, true);
    ex.on_response_headers(host);
    host.writes
}

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "a".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let cfg = config(kind != "f");
    let (path, cookie, status, location) = match kind.as_str() {
        "a" => ("/inbox", session_cookie(&cfg), "200", None),
        "b" => (
            "/callback?state=s1&code=c",
            flow_cookie(&cfg),
            "302",
            Some("/"),
        ),
        _ => ("/inbox", String::new(), "200", None),
    };
    let template = request(path, &cookie, T0 + 5_000);
    if args.next().as_deref() == Some("trace") {
        let mut host = template.clone();
        let mut ex = Exchange::new(cfg.clone());
        let mut t = Traced(&mut host, Vec::new());
        ex.on_request_headers(&mut t, true);
        let mut response = vec![(":status", status)];
        response.extend(location.map(|l| ("location", l)));
        t.0.respond(&response, Some(NODE), "via_upstream");
        ex.on_response_headers(&mut t);
        for (i, c) in t.1.iter().enumerate() {
            println!("{:2} {c}", i + 1);
        }
        return;
    }
    let mut response = FakeHost::request(&[], T0);
    let mut answer = vec![(":status", status)];
    answer.extend(location.map(|l| ("location", l)));
    response.respond(&answer, Some(NODE), "via_upstream");
    let map = template.clone().request_header_map().expect("header map");
    let start = std::time::Instant::now();
    let mut pinned = 0;
    for i in 0..n {
        let mut host = Envoyish {
            map: &map,
            inner: response.clone(),
            writes: 0,
            touched: CounterSet::default(),
        };
        host.inner.now_ms = Some(T0 + 5_000 + i);
        pinned += one_exchange(&cfg, &mut host);
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{kind}: {n} exchanges, {per:.2} µs each, {pinned} pinned");
}
