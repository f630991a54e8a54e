//! WebSockets, server-sent events and long polls through oidc-edge, with the
//! settings `envoy/edge.yaml` gives them (upgrade_configs, no route timeout,
//! stream_idle_timeout, idle_timeout, request_timeout). The timeouts are cut
//! to a second or two here so the tests can show what each one bounds and
//! what it spares.

use integration_tests::{Envoy, EnvoyConfig, Request, Upstream};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const PLUGIN: &str = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"]},
    "login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                   "callback_paths": ["/callback"], "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}}"#;

fn edge(edit: impl FnOnce(&mut serde_json::Value)) -> (Envoy, Upstream) {
    let up = Upstream::start("app-1");
    let cfg = EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(&[up.addr])
        .env(
            "OIDC_EDGE_KEY_1",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .edit(|doc| {
            let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
                [0]["typed_config"];
            hcm["stream_idle_timeout"] = "2s".into();
            edit(doc);
        });
    (Envoy::start(&cfg), up)
}

fn upgrade(port: u16) -> (TcpStream, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    (s, String::from_utf8_lossy(&head).to_lowercase())
}

/// A masked text frame (RFC 6455 §5.2) and its echo.
fn ping_pong(s: &mut TcpStream, text: &str) -> bool {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | text.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    if s.write_all(&frame).is_err() {
        return false;
    }
    let mut back = vec![0u8; frame.len()];
    s.read_exact(&mut back).is_ok() && back == frame
}

#[test]
fn websocket_upgrades_pass_and_idle_sockets_are_closed() {
    let (envoy, _up) = edge(|_| {});
    let (mut ws, head) = upgrade(envoy.port);
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455 §1.3's example key and its accept value, untouched by the filter.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    assert!(
        !head.contains("x-oidc-edge-node"),
        "no node address on the 101"
    );
    // Busy: a message every second keeps it open past the 2 s idle timeout.
    for i in 0..4 {
        assert!(
            ping_pong(&mut ws, &format!("hello {i}")),
            "message {i} did not come back"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    // Idle for longer than stream_idle_timeout: Envoy closes it.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !ping_pong(&mut ws, "still there?"),
        "an idle WebSocket outlived stream_idle_timeout"
    );
}

#[test]
fn without_upgrade_configs_envoy_refuses_websockets() {
    // Shows why edge.yaml has upgrade_configs: Envoy answers 403 before any filter.
    let (envoy, _up) = edge(|doc| {
        let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        hcm.as_object_mut().unwrap().remove("upgrade_configs");
    });
    let (_, head) = upgrade(envoy.port);
    assert!(head.starts_with("http/1.1 403"), "{head}");
}

#[test]
fn server_sent_events_stream_longer_than_the_idle_timeout() {
    let (envoy, _up) = edge(|_| {});
    // 5 events 800 ms apart: 4 s in all, never 2 s silent.
    let resp = Request::get("app.example.com", "/events?count=5&every_ms=800").send(envoy.port);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("text/event-stream"));
    let text = resp.text();
    for i in 0..5 {
        assert!(
            text.contains(&format!("data: event {i} from app-1")),
            "event {i} missing: {text}"
        );
    }
}

#[test]
fn long_polls_answer_within_the_idle_timeout_and_are_cut_beyond_it() {
    let (envoy, _up) = edge(|_| {});
    assert_eq!(
        Request::get("app.example.com", "/poll?ms=1000")
            .send(envoy.port)
            .status,
        200,
        "no route timeout cuts it"
    );
    let cut = Request::get("app.example.com", "/poll?ms=4500").send(envoy.port);
    assert!(
        matches!(cut.status, 408 | 504),
        "a poll silent past stream_idle_timeout: {} {}",
        cut.status,
        cut.text()
    );
}

/// Why edge.yaml's route has `timeout: 0s`: with an overall deadline (here
/// 2 s; Envoy's default is 15 s) an event stream that is busy the whole
/// time is still cut when the deadline passes.
#[test]
fn a_route_timeout_would_cut_busy_event_streams() {
    let (envoy, _up) = edge(|doc| {
        let route = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]["route"];
        assert_eq!(
            route["timeout"], "0s",
            "edge.yaml disables the route timeout"
        );
        route["timeout"] = "2s".into();
    });
    // 8 events 500 ms apart: never idle, but longer than the deadline. Envoy
    // either answers 504 (no headers yet) or ends the stream early.
    let resp = Request::get("app.example.com", "/events?count=8&every_ms=500").send(envoy.port);
    let events = resp.text().matches("data: event").count();
    assert!(
        resp.status == 504 || events < 8,
        "a 2 s route timeout let a 4 s stream through: {} {events} events",
        resp.status
    );
}

/// `idle_timeout` (3600 s in edge.yaml; 1 s here) closes keep-alive
/// connections that carry no request; a long poll in progress is a request,
/// so it is not cut.
#[test]
fn idle_timeout_closes_idle_connections_not_long_polls() {
    let (envoy, _up) = edge(|doc| {
        let opts = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"]["common_http_protocol_options"];
        assert_eq!(opts["idle_timeout"], "3600s");
        opts["idle_timeout"] = "1s".into();
    });
    let poll = Request::get("app.example.com", "/poll?ms=1800").send(envoy.port);
    assert_eq!(poll.status, 200, "a 1.8 s poll under a 1 s idle_timeout");
    // A keep-alive connection after its answer: Envoy closes it.
    let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
    // (Envoy then drains for drain_timeout, 5 s, and closes: about 7 s in all.)
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    let closed = s.read_to_end(&mut all).is_ok();
    assert!(
        closed && String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"),
        "an idle keep-alive connection stayed open: {}",
        String::from_utf8_lossy(&all)
    );
}

/// `request_timeout` (300 s in edge.yaml; 1 s here) bounds how long a client
/// may take to send its request (a slow or stalled body gets 408); once the
/// request is in, waiting for the answer does not count, so long polls pass.
#[test]
fn request_timeout_bounds_slow_requests_not_long_polls() {
    let (envoy, _up) = edge(|doc| {
        let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        assert_eq!(hcm["request_timeout"], "300s");
        hcm["request_timeout"] = "1s".into();
    });
    let poll = Request::get("app.example.com", "/poll?ms=1800").send(envoy.port);
    assert_eq!(poll.status, 200, "a 1.8 s poll under a 1 s request_timeout");
    let mut s = TcpStream::connect(("127.0.0.1", envoy.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    s.write_all(
        b"POST /form HTTP/1.1\r\nHost: app.example.com\r\nContent-Type: text/plain\r\n\
          Content-Length: 100\r\nConnection: close\r\n\r\nonly part of it",
    )
    .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 408"), "a stalled body: {text}");
}
