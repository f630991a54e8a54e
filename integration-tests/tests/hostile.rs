//! Hostile requests through a real Envoy 1.40 loaded from `envoy/edge.yaml`
//! with every oidc-edge feature on: cookies, headers and comma lists at and
//! past Envoy's limits, bytes that are not UTF-8 in every header oidc-edge
//! reads, repeated headers, huge, slow and truncated bodies, pipelining, and
//! an upstream that resets mid-response or answers with hostile headers.
//!
//! Each case gets its right answer (oidc-edge's, or Envoy's own limit
//! answer), and after each the worker still serves: a follow-up request is
//! checked as usual, and Envoy's wasm stats show no VM failure or reload
//! (a panic in the module would turn this worker's filter into 503s, or,
//! with FAIL_RELOAD, reload the VM).

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Response, Upstream};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// Plays the load balancer: the only peer in `trusted_cidrs`.
const LB: &str = "127.0.0.2";
/// Plays a client reaching Envoy directly (not trusted).
const CLIENT: &str = "127.0.0.3";
const HOST: &str = "app.example.com";

/// Every feature on: the forwarded view, login flows with session
/// affinity, redirect and return-to checks, and IdP-mode checks on
/// `/oauth2/authorize` (as if this Envoy also fronted the IdP).
const PLUGIN: &str = r#"{
  "forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com"]},
  "login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                 "callback_paths": ["/callback"], "affinity": "session",
                 "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]},
  "redirects": {"redirect_uris": ["https://app.example.com/callback"],
                "internal_origins": ["http://app.internal:8080"],
                "rewrite_upstream_origin": true, "return_to": {"paths": ["/login"]}},
  "idp": {"authorization_paths": ["/oauth2/authorize"],
          "clients": {"app": ["https://app.example.com/callback"]}}
}"#;

/// Envoy's HTTP connection manager defaults, which edge.yaml keeps.
const MAX_HEADERS_KB: usize = 60;
const MAX_HEADERS_COUNT: usize = 100;

struct Edge {
    envoy: Envoy,
    _nodes: Vec<Upstream>,
    /// The wasm VMs Envoy had created once ready (main thread and worker).
    vms_created: u64,
}

fn edge_with(upstreams: &[SocketAddr], nodes: Vec<Upstream>) -> Edge {
    let cfg = EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(upstreams)
        .env("OIDC_EDGE_KEY_1", K1);
    let envoy = Envoy::start(&cfg);
    let vms_created = wasm_stat(&envoy, "wasm.envoy.wasm.runtime.v8.created");
    Edge {
        envoy,
        _nodes: nodes,
        vms_created,
    }
}

fn edge() -> Edge {
    let nodes = vec![Upstream::start("node-a"), Upstream::start("node-b")];
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    edge_with(&addrs, nodes)
}

fn wasm_stat(envoy: &Envoy, name: &str) -> u64 {
    let key = format!("{name}: ");
    envoy
        .admin("/stats")
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /stats"))
}

/// A request from the load balancer, as a browser's navigation over https.
fn lb_get(path: &str) -> Request {
    Request::get(HOST, path)
        .from(LB)
        .header("X-Forwarded-Proto", "https")
}

impl Edge {
    /// The worker still serves and checks: an untrusted client's forged
    /// X-Forwarded-Proto is still replaced, a login still starts, and no
    /// VM failed or reloaded.
    fn assert_still_serving(&self, after: &str) {
        let resp = Request::get(HOST, "/after")
            .from(CLIENT)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "evil.example")
            .try_send(self.envoy.port)
            .unwrap_or_else(|e| panic!("after {after}: the follow-up request failed: {e}"));
        assert_eq!(resp.status, 200, "after {after}: {}", short(&resp));
        let echo = Echo::parse(&resp.body);
        assert_eq!(
            echo.header("x-forwarded-proto").as_deref(),
            Some("http"),
            "after {after}: a client's forged scheme reached the app"
        );
        assert_eq!(
            echo.header("x-forwarded-host").as_deref(),
            Some(HOST),
            "after {after}"
        );
        let login = lb_get("/login").send(self.envoy.port);
        assert_eq!(login.status, 302, "after {after}: {}", login.text());
        // The flow cookie, and (affinity: session) the browser's pin.
        assert_eq!(login.all("set-cookie").len(), 2, "after {after}");
        self.assert_no_vm_failure(after);
    }

    fn assert_no_vm_failure(&self, after: &str) {
        for stat in [
            "wasm.oidc-edge.vm_reload",
            "wasm.oidc-edge.vm_reload_success",
            "wasm.oidc-edge.vm_reload_failure",
            "wasm.oidc-edge.vm_reload_backoff",
        ] {
            assert_eq!(wasm_stat(&self.envoy, stat), 0, "after {after}: {stat}");
        }
        assert_eq!(
            wasm_stat(&self.envoy, "wasm.envoy.wasm.runtime.v8.created"),
            self.vms_created,
            "after {after}: a VM was created anew"
        );
        assert_eq!(
            self.envoy.counter("oidc_edge.internal_error"),
            0,
            "after {after}"
        );
        let log = self.envoy.log();
        assert!(
            !log.contains("panicked") && !log.contains("Function: proxy_on"),
            "after {after}: the module faulted:\n{log}"
        );
    }

    /// A flow cookie of a login the app started on some node, and its state.
    fn login(&self, path: &str) -> (String, String, String) {
        let resp = lb_get(path).send(self.envoy.port);
        assert_eq!(resp.status, 302, "{}", short(&resp));
        let echo = Echo::parse(&resp.body);
        let cookie = resp.header("set-cookie").expect("a flow cookie");
        let pair = cookie.split(';').next().expect("name=value").to_string();
        (pair, echo.state.expect("state"), echo.node)
    }

    fn raw(&self, source: &str, bytes: &[u8]) -> Vec<u8> {
        raw_exchange(self.envoy.port, source, bytes)
    }
}

/// Writes `bytes` on one connection (ignoring a write cut short: Envoy may
/// answer and close before the request ends) and reads everything until
/// Envoy closes (the last request says `Connection: close`; a half-close
/// would make Envoy drop the connection unanswered).
fn raw_exchange(port: u16, source: &str, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(port, source);
    let _ = s.write_all(bytes);
    read_all(&mut s)
}

fn connect(port: u16, source: &str) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let src: SocketAddr = format!("{source}:0").parse().expect("source");
    sock.bind(&src.into()).expect("bind");
    let dst = SocketAddr::from(([127, 0, 0, 1], port));
    sock.connect_timeout(&dst.into(), Duration::from_secs(5))
        .expect("connect");
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

fn read_all(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A reset after the answer: keep what arrived.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return buf,
            Err(e) => panic!(
                "read: {e} (got so far: {:?})",
                String::from_utf8_lossy(&buf)
            ),
        }
    }
}

/// Splits a byte stream into the HTTP/1.1 responses it holds (bodies
/// framed by Content-Length, as Envoy frames these).
fn responses(mut buf: &[u8]) -> Vec<Response> {
    let mut out = Vec::new();
    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let total = (end + 4 + len).min(buf.len());
        out.push(parse(&buf[..total]));
        buf = &buf[total..];
    }
    out
}

fn parse(buf: &[u8]) -> Response {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    }
}

fn one(buf: &[u8], what: &str) -> Response {
    let all = responses(buf);
    assert_eq!(
        all.len(),
        1,
        "{what}: expected one response, got {:?}",
        String::from_utf8_lossy(buf)
    );
    all.into_iter().next().expect("one")
}

/// The status and the first bytes of a response, for failure messages.
fn short(resp: &Response) -> String {
    let text = resp.text();
    let cut: String = text.chars().take(300).collect();
    format!("{} {cut}", resp.status)
}

fn reason(resp: &Response) -> Option<&str> {
    resp.header("x-oidc-edge-reason")
}

/// A GET request's bytes with these extra header lines.
fn get_bytes(path: &str, headers: &[(&str, &[u8])]) -> Vec<u8> {
    let mut raw = format!("GET {path} HTTP/1.1\r\nHost: {HOST}\r\n").into_bytes();
    for (k, v) in headers {
        raw.extend_from_slice(k.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(v);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"Connection: close\r\n\r\n");
    raw
}

#[test]
fn cookies_up_to_and_past_envoys_header_limit() {
    let edge = edge();
    let (flow, state, node) = edge.login("/login");
    let callback = format!("/callback?code=c&state={state}");

    // A valid flow cookie after 200 cookies of junk (a full cookie jar):
    // found and pinned.
    let junk: Vec<String> = (0..200).map(|i| format!("c{i}=v{i}")).collect();
    let resp = lb_get(&callback)
        .header("Cookie", &format!("{}; {flow}", junk.join("; ")))
        .send(edge.envoy.port);
    assert_eq!(resp.status, 200, "{}", short(&resp));
    assert_eq!(Echo::parse(&resp.body).node, node, "pinned to its node");

    // Past the 256 pieces oidc-edge reads (no browser sends that many):
    // the flow cookie is not seen, and the callback is answered as missing,
    // not half-checked.
    let junk: Vec<String> = (0..300).map(|i| format!("c{i}=v{i}")).collect();
    let resp = lb_get(&callback)
        .header("Cookie", &format!("{}; {flow}", junk.join("; ")))
        .send(edge.envoy.port);
    assert_eq!(resp.status, 400);
    assert_eq!(reason(&resp), Some("flow_cookie_missing"));
    edge.assert_still_serving("300 cookies");

    // Thousands of tiny cookies in one line, just under Envoy's limit: an
    // ordinary request passes; a callback does bounded work and is refused.
    let many = "a=b; ".repeat((MAX_HEADERS_KB * 1024 - 2048) / 5);
    let resp = lb_get("/account")
        .header("Cookie", &many)
        .send(edge.envoy.port);
    assert_eq!(resp.status, 200, "{}", short(&resp));
    let resp = lb_get(&callback)
        .header("Cookie", &format!("{many}{flow}"))
        .send(edge.envoy.port);
    assert_eq!(reason(&resp), Some("flow_cookie_missing"));

    // One huge cookie with a flow cookie's name: refused by size, before
    // any decryption.
    let name = flow.split('=').next().expect("name");
    let resp = lb_get(&callback)
        .header("Cookie", &format!("{name}={}", "A".repeat(20_000)))
        .send(edge.envoy.port);
    assert_eq!(resp.status, 400);
    assert_eq!(reason(&resp), Some("flow_cookie_too_large"));

    // Many Cookie lines (Envoy keeps them apart on HTTP/1.1), the flow
    // cookie in the last one: read across lines.
    let mut req = lb_get(&callback);
    for i in 0..(MAX_HEADERS_COUNT - 10) {
        req = req.header("Cookie", &format!("line{i}=x"));
    }
    let resp = req.header("Cookie", &flow).send(edge.envoy.port);
    assert_eq!(resp.status, 200, "{}", short(&resp));
    assert_eq!(Echo::parse(&resp.body).node, node);

    // Past Envoy's limits: Envoy answers 431 itself, before any filter.
    let over = "a=b; ".repeat(MAX_HEADERS_KB * 1024 / 5 + 100);
    let resp = one(
        &edge.raw(LB, &get_bytes("/account", &[("Cookie", over.as_bytes())])),
        "cookie past the size limit",
    );
    assert_eq!(resp.status, 431);
    let lines: Vec<(&str, &[u8])> = (0..MAX_HEADERS_COUNT + 5)
        .map(|_| ("Cookie", b"a=b".as_slice()))
        .collect();
    let resp = one(
        &edge.raw(LB, &get_bytes("/account", &lines)),
        "cookie lines past the count limit",
    );
    assert_eq!(resp.status, 431);
    edge.assert_still_serving("cookies past Envoy's limits");
}

#[test]
fn forwarding_headers_with_thousands_of_elements() {
    let edge = edge();
    // A trusted LB passes on an X-Forwarded-For a client filled with 5000
    // entries: the client is the entry the LB appended (the rightmost), and
    // the app receives that one client (x_forwarded_for "client", the
    // default), not the client's list.
    let xff = format!("{}203.0.113.9", "198.51.100.1, ".repeat(4000));
    let echo = Echo::parse(
        &lb_get("/")
            .header("X-Forwarded-For", &xff)
            .send(edge.envoy.port)
            .body,
    );
    assert_eq!(
        echo.header("x-forwarded-for").as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(echo.header("x-real-ip").as_deref(), Some("203.0.113.9"));

    // The same from an untrusted client: all of it removed.
    for (name, value) in [
        ("X-Forwarded-For", xff.clone()),
        ("Forwarded", "for=198.51.100.1, ".repeat(3000)),
    ] {
        let echo = Echo::parse(
            &Request::get(HOST, "/")
                .from(CLIENT)
                .header(name, &value)
                .send(edge.envoy.port)
                .body,
        );
        assert_eq!(echo.header("x-forwarded-for").as_deref(), Some(CLIENT));
        assert_eq!(echo.header("forwarded"), None);
    }

    // Thousands of elements in the headers the view is read from, from the
    // LB: a scheme list, a host list, an RFC 7239 list, a port list. Each
    // is answered (the outermost trusted proxy's value, or the value
    // ignored as malformed), never with a 5xx.
    let cases: Vec<(&str, String)> = vec![
        ("X-Forwarded-Proto", "https, ".repeat(4000) + "https"),
        ("X-Forwarded-Host", "app.example.com, ".repeat(3000) + HOST),
        ("X-Forwarded-Port", "443, ".repeat(5000) + "443"),
        (
            "Forwarded",
            "for=198.51.100.1;proto=https, ".repeat(1500) + "for=203.0.113.9",
        ),
        ("X-Forwarded-Prefix", "/a, ".repeat(5000) + "/a"),
        ("X-Forwarded-For", ",".repeat(20_000)),
    ];
    for (name, value) in &cases {
        let resp = lb_get("/").header(name, value).send(edge.envoy.port);
        assert_ne!(resp.status, 431, "{name}: {} bytes", value.len());
        assert_eq!(resp.status, 200, "{name}: {}", short(&resp));
        let echo = Echo::parse(&resp.body);
        assert_eq!(
            echo.header("x-forwarded-proto").as_deref(),
            Some("https"),
            "{name}"
        );
        assert!(
            echo.headers.iter().map(|(_, v)| v.len()).max().unwrap_or(0) < 200,
            "{name}: a long list reached the app: {:?}",
            echo.headers
        );
    }
    edge.assert_still_serving("thousands of list elements");
}

#[test]
fn bytes_that_are_not_utf8_in_every_header_oidc_edge_reads() {
    let edge = edge();
    let (flow, state, node) = edge.login("/login");
    let bad: &[u8] = b"\xff\xfe\x80 \xc3\x28 caf\xe9";
    // Every request header oidc-edge reads, from the trusted LB and from an
    // untrusted client: never a 5xx. Where a value cannot be read, it is
    // treated as absent or malformed (and the fallback decides).
    let names = [
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "x-oidc-edge-peer",
        "x-oidc-edge-node",
        "cookie",
        "content-type",
        "sec-fetch-mode",
        "sec-fetch-dest",
        "sec-fetch-site",
        "user-agent",
    ];
    for source in [LB, CLIENT] {
        for name in names {
            let raw = get_bytes(
                "/",
                &[("X-Forwarded-Proto", b"https".as_slice()), (name, bad)],
            );
            let resp = one(&edge.raw(source, &raw), name);
            assert!(
                resp.status == 200 || resp.status == 400,
                "{name} from {source}: {} {}",
                resp.status,
                short(&resp)
            );
            if resp.status == 200 {
                let echo = Echo::parse(&resp.body);
                assert!(!echo.node.is_empty());
                // The app's view is still one consistent set.
                let proto = echo.header("x-forwarded-proto");
                // From the LB, an unreadable X-Forwarded-Proto is ignored
                // whole: the connection's scheme stands.
                let expected = if source == LB && name != "x-forwarded-proto" {
                    "https"
                } else {
                    "http"
                };
                assert_eq!(proto.as_deref(), Some(expected), "{name} from {source}");
                assert_eq!(echo.header("x-forwarded-host").as_deref(), Some(HOST));
            }
        }
    }
    // The paths and the authority Envoy lets through with such bytes, on
    // a callback and a return-to path.
    for (path, host) in [
        (
            b"/callback?code=c&state=\xff\xfe".as_slice(),
            HOST.as_bytes(),
        ),
        (b"/login?next=/\xff\xfe".as_slice(), HOST.as_bytes()),
        (b"/".as_slice(), b"app.example.com\xff".as_slice()),
    ] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(path);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        raw.extend_from_slice(host);
        raw.extend_from_slice(b"\r\nX-Forwarded-Proto: https\r\nConnection: close\r\n\r\n");
        let resp = one(&edge.raw(LB, &raw), &String::from_utf8_lossy(path));
        assert_eq!(resp.status, 400, "{}", String::from_utf8_lossy(&raw));
    }
    // A valid callback whose other cookies are not UTF-8 (on another line):
    // still found, pinned.
    let raw = get_bytes(
        &format!("/callback?code=c&state={state}"),
        &[
            ("X-Forwarded-Proto", b"https".as_slice()),
            ("Cookie", bad),
            ("Cookie", flow.as_bytes()),
        ],
    );
    let resp = one(&edge.raw(LB, &raw), "callback");
    assert_eq!(resp.status, 200, "{}", short(&resp));
    assert_eq!(Echo::parse(&resp.body).node, node);
    edge.assert_still_serving("bytes that are not UTF-8");
}

#[test]
fn repeated_headers() {
    let edge = edge();
    let (flow, state, _) = edge.login("/login");
    let callback = format!("/callback?code=c&state={state}");

    // The flow cookie twice (two lines): refused as a duplicate.
    let resp = lb_get(&callback)
        .header("Cookie", &flow)
        .header("Cookie", &flow)
        .send(edge.envoy.port);
    assert_eq!(reason(&resp), Some("flow_cookie_duplicate"));

    // Two state parameters: refused.
    let resp = lb_get(&format!("{callback}&state={state}"))
        .header("Cookie", &flow)
        .send(edge.envoy.port);
    assert_eq!(reason(&resp), Some("flow_no_state"));

    // A client's repeated session and peer headers (naming the LB) never
    // reach the app nor pick a node or trust.
    let echo = Echo::parse(
        &Request::get(HOST, "/")
            .from(CLIENT)
            .header("X-Oidc-Edge-Node", "MTI3LjAuMC4xOjE=")
            .header("X-Oidc-Edge-Node", "MTI3LjAuMC4xOjI=")
            .header("X-Oidc-Edge-Peer", LB)
            .header("X-Oidc-Edge-Peer", LB)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Proto", "https")
            .send(edge.envoy.port)
            .body,
    );
    assert_eq!(echo.header("x-oidc-edge-node"), None);
    assert_eq!(echo.header("x-oidc-edge-peer"), None);
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("http"));

    // Repeated lines of every forwarding header from the LB: one value each.
    let mut req = lb_get("/");
    for name in [
        "X-Forwarded-Host",
        "X-Forwarded-Port",
        "X-Forwarded-Prefix",
        "Forwarded",
        "X-Real-IP",
        "True-Client-IP",
    ] {
        for _ in 0..20 {
            req = req.header(name, "x");
        }
    }
    let resp = req.send(edge.envoy.port);
    assert_eq!(resp.status, 200, "{}", short(&resp));
    let echo = Echo::parse(&resp.body);
    for name in [
        "x-forwarded-host",
        "x-forwarded-port",
        "forwarded",
        "x-real-ip",
    ] {
        assert!(echo.all(name).len() <= 1, "{name}: {:?}", echo.all(name));
    }

    // Two Host lines: Envoy refuses the request itself.
    let resp = one(
        &edge.raw(
            LB,
            b"GET / HTTP/1.1\r\nHost: app.example.com\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        ),
        "two Host lines",
    );
    assert_eq!(resp.status, 400);
    edge.assert_still_serving("repeated headers");
}

#[test]
fn headers_at_envoys_limits() {
    let edge = edge();
    // 99 header lines (Host included) and close to 60 KiB: checked as
    // usual (the client's X-Forwarded-Host, passed on by the LB, is not
    // believed by default).
    let filler = "x".repeat((MAX_HEADERS_KB * 1024 - 4096) / (MAX_HEADERS_COUNT - 5));
    let mut req = lb_get("/").header("X-Forwarded-Host", "evil.example");
    for i in 0..(MAX_HEADERS_COUNT - 5) {
        req = req.header(&format!("x-filler-{i}"), &filler);
    }
    let resp = req.send(edge.envoy.port);
    assert_eq!(resp.status, 200, "{}", short(&resp));
    let echo = Echo::parse(&resp.body);
    assert_eq!(echo.header("x-forwarded-host").as_deref(), Some(HOST));
    assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("https"));
    // The same with a Host outside allowed_hosts: refused.
    let mut req = Request::get("evil.example", "/")
        .from(LB)
        .header("X-Forwarded-Proto", "https");
    for i in 0..(MAX_HEADERS_COUNT - 5) {
        req = req.header(&format!("x-filler-{i}"), &filler);
    }
    let resp = req.send(edge.envoy.port);
    assert_eq!(resp.status, 400, "{}", short(&resp));
    assert_eq!(reason(&resp), Some("host_not_allowed"));

    // One more header than Envoy allows, or a few bytes more: 431 from Envoy.
    let lines: Vec<(String, Vec<u8>)> = (0..MAX_HEADERS_COUNT)
        .map(|i| (format!("x-filler-{i}"), b"1".to_vec()))
        .collect();
    let refs: Vec<(&str, &[u8])> = lines
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    let resp = one(&edge.raw(LB, &get_bytes("/", &refs)), "101 headers");
    assert_eq!(resp.status, 431);
    let big = "x".repeat(MAX_HEADERS_KB * 1024);
    let resp = one(
        &edge.raw(LB, &get_bytes("/", &[("X-Forwarded-Host", big.as_bytes())])),
        "a header past the size limit",
    );
    assert_eq!(resp.status, 431);
    // A path as long as the limit allows, on a guarded path.
    let path = format!("/login?next=/{}", "a".repeat(MAX_HEADERS_KB * 1024 - 2048));
    let resp = lb_get(&path).send(edge.envoy.port);
    assert_eq!(resp.status, 302, "{}", short(&resp));
    edge.assert_still_serving("headers at Envoy's limits");
}

fn post_bytes(path: &str, cookie: &str, content_type: &str, len: usize) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-Proto: https\r\n\
         Cookie: {cookie}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes()
}

const FORM: &str = "application/x-www-form-urlencoded";

#[test]
fn huge_slow_and_truncated_bodies_on_the_callback_and_idp_paths() {
    let edge = edge();
    let (flow, state, node) = edge.login("/login?form_post");

    // A form-post callback body over max_callback_body_bytes (16 KiB): 413.
    // Also one of 4 MiB, past Envoy's buffer too: answered, not buffered.
    for len in [20_000, 4 << 20] {
        let mut raw = post_bytes("/callback", &flow, FORM, len);
        raw.extend(std::iter::repeat_n(b'a', len));
        let resp = one(&edge.raw(LB, &raw), "a huge callback body");
        assert_eq!(resp.status, 413, "{len}: {}", short(&resp));
        // oidc-edge's answer, not Envoy's buffer limit.
        assert_eq!(reason(&resp), Some("callback_body_too_large"), "{len}");
    }
    assert_eq!(
        edge.envoy
            .counter("oidc_edge.login_flow.rejected.body_too_large"),
        2
    );
    // A POST authorization request over 64 KiB at the IdP path: refused.
    let len = 100_000;
    let mut raw = post_bytes("/oauth2/authorize", "", FORM, len);
    raw.extend(std::iter::repeat_n(b'a', len));
    let resp = one(&edge.raw(LB, &raw), "a huge authorization form");
    assert_eq!(resp.status, 400, "{}", short(&resp));
    edge.assert_still_serving("huge bodies");

    // Slow bodies: a byte at a time, 30 ms apart. The callback is checked
    // once the whole body is here, and pinned to its node; the IdP form too.
    let body = format!("code=c&state={state}");
    let resp = slow_post(
        &edge,
        &post_bytes("/callback", &flow, FORM, body.len()),
        &body,
    );
    assert_eq!(resp.status, 200, "{}", short(&resp));
    assert_eq!(Echo::parse(&resp.body).node, node);
    let body = "client_id=app&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb";
    let resp = slow_post(
        &edge,
        &post_bytes("/oauth2/authorize", "", FORM, body.len()),
        body,
    );
    assert_eq!(resp.status, 400, "{}", short(&resp));
    assert!(
        resp.text().starts_with("invalid_request"),
        "{}",
        short(&resp)
    );

    // Requests that end mid-body: the client goes away. Nothing reaches the
    // app half-checked, and the worker keeps serving.
    for path in ["/callback", "/oauth2/authorize"] {
        let mut s = connect(edge.envoy.port, LB);
        s.write_all(&post_bytes(path, &flow, FORM, 1000))
            .expect("write");
        s.write_all(b"code=c&state=").expect("write");
        drop(s);
        let mut s = connect(edge.envoy.port, LB);
        s.write_all(&post_bytes(path, &flow, FORM, 1000))
            .expect("write");
        s.write_all(b"code=c&state=").expect("write");
        s.shutdown(Shutdown::Write).expect("half-close");
        let got = read_all(&mut s);
        // Envoy answers an incomplete request with 400 or closes.
        for resp in responses(&got) {
            assert!(resp.status < 500, "{path}: {}", resp.status);
        }
    }
    thread::sleep(Duration::from_millis(200));
    edge.assert_still_serving("slow and truncated bodies");
}

fn slow_post(edge: &Edge, head: &[u8], body: &str) -> Response {
    let mut s = connect(edge.envoy.port, LB);
    s.write_all(head).expect("write head");
    for b in body.as_bytes().chunks(4) {
        thread::sleep(Duration::from_millis(30));
        s.write_all(b).expect("write body");
    }
    one(&read_all(&mut s), "a slow body")
}

#[test]
fn pipelined_requests_are_each_checked() {
    let edge = edge();
    let (flow, state, node) = edge.login("/login");
    let keep_on = |host: &str, path: &str, headers: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n")
    };
    let keep = |path: &str, headers: &str| keep_on(HOST, path, headers);
    // One write, four requests from the LB: an ordinary one, a callback
    // with its cookie, one for a host outside allowed_hosts, and an
    // ordinary one after it. Each is answered in order, each with its own decision.
    let xfp = "X-Forwarded-Proto: https\r\n";
    let raw = [
        keep("/one", xfp),
        keep(
            &format!("/callback?code=c&state={state}"),
            &format!("{xfp}Cookie: {flow}\r\n"),
        ),
        keep_on("evil.example", "/two", xfp),
        keep("/three", &format!("{xfp}Connection: close\r\n")),
    ]
    .concat();
    let got = responses(&edge.raw(LB, raw.as_bytes()));
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    // The host outside allowed_hosts is refused with 400, and Envoy closes
    // the connection after a 400: the request after it is not served.
    assert_eq!(statuses, [200, 200, 400], "{got:?}");
    assert_eq!(Echo::parse(&got[0].body).path, "/one");
    assert_eq!(
        Echo::parse(&got[1].body).node,
        node,
        "the callback was pinned"
    );
    assert_eq!(reason(&got[2]), Some("host_not_allowed"));

    // An untrusted client pipelines forged headers: every request's are
    // removed, not just the first's.
    let forged = "X-Forwarded-Proto: https\r\nX-Oidc-Edge-Node: MTI3LjAuMC4xOjE=\r\n";
    let raw = [
        keep("/a", forged),
        keep("/b", forged),
        keep("/c", &format!("{forged}Connection: close\r\n")),
    ]
    .concat();
    let got = responses(&edge.raw(CLIENT, raw.as_bytes()));
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.status, 200);
        let echo = Echo::parse(&r.body);
        assert_eq!(echo.header("x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(echo.header("x-oidc-edge-node"), None);
    }
    edge.assert_still_serving("pipelined requests");
}

/// An upstream that misbehaves by path: resets before answering, resets
/// mid-body, or answers with hostile headers.
fn hostile_upstream() -> (SocketAddr, thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let h = thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            thread::spawn(move || misbehave(conn));
        }
    });
    (addr, h)
}

fn misbehave(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reset = |c: TcpStream| {
        let s = socket2::Socket::from(c);
        let _ = s.set_linger(Some(Duration::ZERO));
        drop(s);
    };
    let answer: Vec<u8> = match path.as_str() {
        "/reset-before" => return reset(conn),
        "/reset-mid-body" => {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\nconnection: close\r\n\r\n");
            let _ = conn.write_all(&[b'x'; 1000]);
            // Long enough for Envoy to have read what was sent: a reset
            // discards what the peer has not read yet.
            thread::sleep(Duration::from_millis(300));
            return reset(conn);
        }
        "/reset-mid-redirect" => {
            let _ = conn.write_all(
                b"HTTP/1.1 302 Found\r\nlocation: http://app.internal:8080/x\r\ncontent-length: 100\r\nconnection: close\r\n\r\nab",
            );
            // Long enough for Envoy to have read what was sent: a reset
            // discards what the peer has not read yet.
            thread::sleep(Duration::from_millis(300));
            return reset(conn);
        }
        "/login-then-reset" => {
            let _ = conn.write_all(
                b"HTTP/1.1 302 Found\r\nlocation: https://idp.example.com/oauth2/authorize?state=s1&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback\r\ncontent-length: 100\r\nconnection: close\r\n\r\nab",
            );
            // Long enough for Envoy to have read what was sent: a reset
            // discards what the peer has not read yet.
            thread::sleep(Duration::from_millis(300));
            return reset(conn);
        }
        "/bad-location" => {
            b"HTTP/1.1 302 Found\r\nlocation: http://app.internal:8080/\xff\xfe\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
        }
        "/bad-idp-location" => {
            b"HTTP/1.1 302 Found\r\nlocation: https://idp.example.com/oauth2/authorize?state=\xff&redirect_uri=\xfe\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec()
        }
        "/huge-location" => {
            let mut a = b"HTTP/1.1 302 Found\r\nlocation: http://app.internal:8080/".to_vec();
            a.extend(std::iter::repeat_n(b'a', 50_000));
            a.extend_from_slice(b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            a
        }
        "/many-locations" => {
            let mut a = b"HTTP/1.1 302 Found\r\n".to_vec();
            for _ in 0..50 {
                a.extend_from_slice(b"location: https://idp.example.com/oauth2/authorize?state=s\r\n");
            }
            a.extend_from_slice(b"x-oidc-edge-node: MTI3LjAuMC4xOjE=\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            a
        }
        _ => b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_vec(),
    };
    let _ = conn.write_all(&answer);
    let _ = conn.shutdown(Shutdown::Both);
    // (Every answer says `connection: close`, so Envoy never sends a
    // request on a connection this server is closing.)
}

#[test]
fn an_upstream_that_resets_or_answers_hostile_headers() {
    let (addr, _server) = hostile_upstream();
    let edge = edge_with(&[addr], Vec::new());
    let get = |path: &str| {
        let raw = get_bytes(path, &[("X-Forwarded-Proto", b"https".as_slice())]);
        responses(&edge.raw(LB, &raw))
    };
    // Reset before the response: Envoy's own 503, passed by oidc-edge.
    let got = get("/reset-before");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].status, 503);
    // Reset mid-body: the client gets the head and part of the body, then
    // the connection is cut.
    for path in [
        "/reset-mid-body",
        "/reset-mid-redirect",
        "/login-then-reset",
    ] {
        let got = get(path);
        assert_eq!(got.len(), 1, "{path}");
        let declared: usize = got[0]
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .expect("content-length");
        assert!(got[0].body.len() < declared, "{path}: the body was cut");
    }
    assert_eq!(
        get("/reset-mid-redirect")[0].header("location"),
        Some("https://app.example.com/x")
    );
    // Hostile response headers: Locations that are not UTF-8, huge, or
    // repeated, and a node header from the app. Answered, never 5xx from the
    // filter; no node address reaches the client.
    for path in [
        "/bad-location",
        "/bad-idp-location",
        "/huge-location",
        "/many-locations",
    ] {
        let got = get(path);
        assert_eq!(got.len(), 1, "{path}");
        let r = &got[0];
        assert!(
            r.status == 302 || r.status == 502,
            "{path}: {} {:?} {}",
            r.status,
            r.headers,
            r.text()
        );
        assert_eq!(r.header("x-oidc-edge-node"), None, "{path}");
        for loc in r.all("location") {
            assert!(
                !loc.starts_with("http://app.internal"),
                "{path}: an internal Location reached the client: {loc}"
            );
        }
    }
    let ok = get("/ok");
    assert_eq!(ok[0].status, 200);
    edge.assert_no_vm_failure("an upstream that resets");
}
