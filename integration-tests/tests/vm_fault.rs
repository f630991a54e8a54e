//! What a fault in the module does inside a real Envoy 1.40 with the
//! reference configuration's `failure_policy: FAIL_RELOAD`, using a
//! test-only build of the module that traps when a request carries
//! `x-oidc-edge-test-fault` (feature `fault-injection`, built by
//! `./build.sh test` into `target/oidc_edge_fault.wasm`; never shipped).
//!
//! What must hold: the faulting request is answered 503 (never forwarded
//! unchecked); Envoy reloads the VM (counted in `wasm.oidc-edge.*`), and
//! until it has, requests are refused with 503 too (observed: the one
//! request right after the fault); every later request is checked again
//! by the reloaded VM, with its configuration and keys. A fault soon
//! after a reload puts Envoy in backoff (`vm_reload_backoff`): requests are
//! then refused, still never passed unchecked.

use integration_tests::envoy::fault_wasm_path;
use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Response, Upstream};
use std::time::{Duration, Instant};

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const LB: &str = "127.0.0.2";
const CLIENT: &str = "127.0.0.3";
const FAULT: &str = "x-oidc-edge-test-fault";
const PLUGIN: &str = r#"{
  "forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com"]},
  "login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                 "callback_paths": ["/callback"],
                 "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}
}"#;

fn stat(envoy: &Envoy, name: &str) -> u64 {
    let key = format!("{name}: ");
    envoy
        .admin("/stats")
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /stats"))
}

/// An untrusted client claims https and another host: a checked request
/// reaches the app with the connection's scheme and the real host.
fn forged(fault: bool) -> Request {
    let r = Request::get("app.example.com", "/account")
        .from(CLIENT)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "evil.example");
    if fault {
        r.header(FAULT, "1")
    } else {
        r
    }
}

fn assert_checked(resp: &Response, when: &str) {
    assert_eq!(resp.status, 200, "{when}: {}", resp.text());
    let echo = Echo::parse(&resp.body);
    assert_eq!(
        echo.header("x-forwarded-proto").as_deref(),
        Some("http"),
        "{when}: a client's forged scheme reached the app unchecked"
    );
    assert_eq!(
        echo.header("x-forwarded-host").as_deref(),
        Some("app.example.com"),
        "{when}"
    );
    assert_eq!(echo.header("x-oidc-edge-peer"), None, "{when}");
}

/// Sends checked-or-refused requests until one is served: every answer is
/// a 503 from Envoy or a request the filter checked. Returns the refusals.
fn until_served(envoy: &Envoy, when: &str) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut refused = 0;
    loop {
        let resp = forged(false).send(envoy.port);
        if resp.status != 503 {
            assert_checked(&resp, when);
            return refused;
        }
        refused += 1;
        assert!(Instant::now() < deadline, "{when}: no recovery within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_fault_reloads_the_vm_and_later_requests_are_checked_again() {
    let nodes = [Upstream::start("node-a"), Upstream::start("node-b")];
    let cfg = EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
        .env("OIDC_EDGE_KEY_1", K1)
        .module(fault_wasm_path());
    assert_eq!(
        cfg.doc.to_string().matches("FAIL_RELOAD").count(),
        1,
        "the reference configuration reloads a faulted VM"
    );
    let envoy = Envoy::start(&cfg);
    assert_checked(&forged(false).send(envoy.port), "before any fault");
    // A login started before the fault: its flow cookie is sealed with k1.
    let login = Request::get("app.example.com", "/login")
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .send(envoy.port);
    assert_eq!(login.status, 302);
    let state = Echo::parse(&login.body).state.expect("state");
    let node = Echo::parse(&login.body).node;
    let flow = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .expect("flow cookie")
        .to_string();
    assert_eq!(stat(&envoy, "wasm.oidc-edge.vm_reload_success"), 0);

    // The fault: Envoy answers 503 itself; nothing reaches the app.
    let resp = forged(true).send(envoy.port);
    assert_eq!(resp.status, 503, "{}", resp.text());
    assert!(
        serde_json::from_slice::<serde_json::Value>(&resp.body).is_err(),
        "the faulting request reached the app: {}",
        resp.text()
    );

    // The next requests run in a reloaded VM, and are checked.
    let refused = until_served(&envoy, "after the first fault");
    eprintln!("first fault: {refused} requests refused before the reload");
    assert_eq!(stat(&envoy, "wasm.oidc-edge.vm_reload_success"), 1);
    assert_eq!(stat(&envoy, "wasm.oidc-edge.vm_reload_failure"), 0);
    // The reloaded VM has the configuration and keys: the login started
    // before the fault completes on its node, and a tampered one is refused.
    let callback = |cookie: &str| {
        Request::get(
            "app.example.com",
            &format!("/callback?code=c&state={state}"),
        )
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .header("Cookie", cookie)
        .send(envoy.port)
    };
    let resp = callback(&flow);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        Echo::parse(&resp.body).node,
        node,
        "pinned after the reload"
    );
    let (name, value) = flow.split_once('=').expect("name=value");
    let tampered = format!("{name}={}A", &value[..value.len() - 1]);
    let resp = callback(&tampered);
    assert_eq!(resp.status, 400, "{}", resp.text());
    // Counters live in Envoy, not in the VM: they survive the reload.
    assert_eq!(envoy.counter("oidc_edge.login_flow.issued"), 1);
    assert_eq!(envoy.counter("oidc_edge.login_flow.pinned"), 1);

    // A second fault right after a reload: Envoy backs off before the next
    // reload. During the backoff requests are refused (503), never passed
    // unchecked; afterwards they are checked again.
    let resp = forged(true).send(envoy.port);
    assert_eq!(resp.status, 503);
    let refused = until_served(&envoy, "after the second fault");
    eprintln!(
        "second fault: {refused} requests refused during the backoff; reloads {}, backoffs {}",
        stat(&envoy, "wasm.oidc-edge.vm_reload_success"),
        stat(&envoy, "wasm.oidc-edge.vm_reload_backoff")
    );
    assert_eq!(stat(&envoy, "wasm.oidc-edge.vm_reload_success"), 2);
    assert_checked(&forged(false).send(envoy.port), "after the second reload");
}
