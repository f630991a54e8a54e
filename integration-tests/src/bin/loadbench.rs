//! `./build.sh bench`: what oidc-edge costs inside Envoy 1.40.
//!
//! Runs the same load (wrk, keep-alive, one Envoy worker) against
//! envoy/edge.yaml in several variants and reports throughput, latency and
//! Envoy's CPU time per request (from /proc, so the number does not depend on
//! how fast the load generator is). Routes answer with `direct_response` so
//! the upstream's cost does not drown the filter's.

use integration_tests::{Envoy, EnvoyConfig};
use serde_json::{json, Value};
use std::process::Command;

struct Variant {
    name: &'static str,
    plugin: Option<&'static str>,
    headers: &'static [&'static str],
}

/// The external origin the LB headers below describe (sealed cookies are
/// bound to it).
const ORIGIN: &str = "https://app.example.com";

/// A valid session-affinity cookie for the session variant, sealed with the
/// same code and key the filter uses.
fn session_cookie_header(plugin: &str) -> String {
    let env = |k: &str| (k == "OIDC_EDGE_KEY_1").then(|| KEY.to_string());
    let cfg =
        oidc_edge::config::Config::parse_with_env(plugin.as_bytes(), &env).expect("plugin config");
    let lf = cfg.login_flow.expect("login_flow");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let set = oidc_edge::login_flow::session_cookie(&lf, "127.0.0.1:1", now_ms, ORIGIN);
    format!("Cookie: {}", set.split(';').next().unwrap_or_default())
}

const LB_HEADERS: &[&str] = &[
    "X-Forwarded-Proto: https",
    "X-Forwarded-Host: app.example.com",
    "X-Forwarded-Port: 443",
    "X-Forwarded-For: 203.0.113.9",
];

const VARIANTS: &[Variant] = &[
    Variant {
        name: "no wasm filter",
        plugin: None,
        headers: LB_HEADERS,
    },
    Variant {
        name: "oidc-edge, empty config (ABI floor)",
        plugin: Some("{}"),
        headers: LB_HEADERS,
    },
    Variant {
        name: "oidc-edge forwarded, trusted LB",
        plugin: Some(
            r#"{"forwarded": {"trusted_cidrs": ["127.0.0.1/32"], "allowed_hosts": ["app.example.com", "127.0.0.1"]}}"#,
        ),
        headers: LB_HEADERS,
    },
    Variant {
        name: "oidc-edge forwarded, untrusted client (strip)",
        plugin: Some(r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"]}}"#),
        headers: LB_HEADERS,
    },
    Variant {
        name: "oidc-edge forwarded + login_flow, ordinary request",
        plugin: Some(
            r#"{"forwarded": {"trusted_cidrs": ["127.0.0.1/32"]}, "login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"], "callback_paths": ["/callback"], "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}}"#,
        ),
        headers: LB_HEADERS,
    },
    Variant {
        name: "oidc-edge login_flow + session affinity, pinned request",
        plugin: Some(
            r#"{"login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"], "callback_paths": ["/callback"], "affinity": "session", "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}}"#,
        ),
        headers: &[],
    },
    Variant {
        name: "oidc-edge forwarded, RFC 7239 + emit + rewrite_host",
        plugin: Some(
            r#"{"forwarded": {"trusted_cidrs": ["127.0.0.1/32"], "prefer": "forwarded", "emit_forwarded": true, "rewrite_host": true}}"#,
        ),
        headers: &["Forwarded: for=\"[2001:db8::9]:4711\";proto=https;host=app.example.com"],
    },
];

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ticks_per_second() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().ok();
    out.and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn configure(v: &Variant) -> EnvoyConfig {
    let cfg = EnvoyConfig::reference().env("OIDC_EDGE_KEY_1", KEY).edit(|doc: &mut Value| {
        let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"];
        hcm["route_config"]["virtual_hosts"][0]["routes"] =
            json!([{"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]);
    });
    match v.plugin {
        Some(p) => cfg.plugin_config(p),
        None => cfg.edit(|doc| {
            let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
                [0]["typed_config"];
            if let Some(filters) = hcm["http_filters"].as_array_mut() {
                filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
            }
        }),
    }
}

fn main() {
    let seconds: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let hz = ticks_per_second();
    println!("| variant | requests/s | p50 | p99 | Envoy CPU per request |");
    println!("|---|---:|---:|---:|---:|");
    for v in VARIANTS {
        let envoy = Envoy::start(&configure(v));
        let url = format!("http://127.0.0.1:{}/account?tab=profile", envoy.port);
        let mut wrk = Command::new("wrk");
        wrk.args([
            "-t1",
            "-c16",
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            "Host: app.example.com",
        ]);
        for h in v.headers {
            wrk.args(["-H", h]);
        }
        if v.name.contains("session") {
            wrk.args(["-H", &session_cookie_header(v.plugin.unwrap_or_default())]);
        }
        // One request first: the variant must answer 200, or the numbers mean nothing.
        let mut probe = integration_tests::Request::get("app.example.com", "/account?tab=profile");
        for h in v.headers {
            if let Some((k, val)) = h.split_once(": ") {
                probe = probe.header(k, val);
            }
        }
        let answer = probe.send(envoy.port);
        if answer.status != 200 {
            eprintln!("{}: {} {}", v.name, answer.status, answer.text().trim());
        }
        // Warm up (V8 tiers up hot functions), then measure.
        let _ = Command::new("wrk")
            .args(["-t1", "-c16", "-d2s", &url])
            .output();
        let before = cpu_ticks(envoy.pid());
        let out = wrk
            .arg(&url)
            .output()
            .expect("wrk (./build.sh bench installs it)");
        let after = cpu_ticks(envoy.pid());
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |prefix: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(prefix))
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("?")
                .to_string()
        };
        let requests: f64 = text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        let non2xx = text.lines().any(|l| l.contains("Non-2xx"));
        let cpu_us = if requests > 0.0 {
            (after - before) as f64 / hz * 1e6 / requests
        } else {
            f64::NAN
        };
        println!(
            "| {}{} | {} | {} | {} | {:.1} µs |",
            v.name,
            if non2xx { " (NON-2xx answers!)" } else { "" },
            field("Requests/sec:"),
            field("50%"),
            field("99%"),
            cpu_us
        );
    }
}
