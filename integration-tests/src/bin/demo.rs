//! `./build.sh demo`: Envoy with oidc-edge (from envoy/edge.yaml) in front of
//! three app nodes under round-robin, showing logins that return to the node
//! that started them, and what the app receives from a trusted load balancer
//! and from a client that tries to spoof it. Stays up for you to try with
//! curl until Ctrl-C (or exits at once with `--once`).

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Upstream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LB: &str = "127.0.0.2";
const CLIENT: &str = "127.0.0.3";
const PLUGIN: &str = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com", "localhost"]},
    "login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                   "callback_paths": ["/callback"], "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]}}"#;

/// A fresh signing key for this demo run: 32 random bytes, base64.
fn demo_key() -> String {
    use std::io::Read;
    let mut b = [0u8; 32];
    let _ = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, x)| n | (u32::from(*x) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// One login through the LB: /login on some node, then the IdP's callback.
fn login(port: u16, n: usize) {
    let resp = Request::get("app.example.com", "/login").send(port);
    let start = Echo::parse(&resp.body);
    let cookie = resp
        .header("set-cookie")
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    let state = start.state.clone().unwrap_or_default();
    let cb = Request::get(
        "app.example.com",
        &format!("/callback?code=demo&state={state}"),
    )
    .header("Cookie", &cookie)
    .send(port);
    let end = if cb.status == 200 {
        Echo::parse(&cb.body).node
    } else {
        format!("{} {}", cb.status, cb.text())
    };
    let verdict = if end == start.node {
        "same node: login completes"
    } else {
        "DIFFERENT NODE: login fails"
    };
    println!("    login {n}: /login served by {:<7} state={state:<10} /callback served by {end:<7} -> {verdict}", start.node);
}

fn show(title: &str, sent: &[(&str, &str)], req: Request, port: u16) {
    println!("\n--- {title}");
    for (k, v) in sent {
        println!("    sent      {k}: {v}");
    }
    let resp = req.send(port);
    if resp.status != 200 {
        println!("    answer    {} {}", resp.status, resp.text().trim());
        return;
    }
    let echo = Echo::parse(&resp.body);
    println!("    app node  {}", echo.node);
    for name in [
        "host",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-for",
        "forwarded",
    ] {
        let v = echo.all(name);
        println!(
            "    app got   {name}: {}",
            if v.is_empty() {
                "(absent)".into()
            } else {
                v.join(" | ")
            }
        );
    }
    let proto = echo.header("x-forwarded-proto").unwrap_or_default();
    let host = echo.header("x-forwarded-host").unwrap_or_default();
    println!("    => the app builds redirect_uri={proto}://{host}/callback");
}

fn main() {
    let once = std::env::args().any(|a| a == "--once");
    let nodes = [
        Upstream::start("app-1"),
        Upstream::start("app-2"),
        Upstream::start("app-3"),
    ];
    let cfg = EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
        .env("OIDC_EDGE_KEY_1", &demo_key());
    let envoy = Envoy::start(&cfg);
    let port = envoy.port;
    println!(
        "oidc-edge demo: Envoy 1.40 on 127.0.0.1:{port} (admin :{}) with plugin configuration",
        envoy.admin_port
    );
    println!("    {PLUGIN}");
    println!("A connection from {LB} plays the TLS-terminating load balancer; anything else is an untrusted client.");

    println!("\n--- logins through round-robin: each node keeps its own login state in memory");
    for n in 1..=4 {
        login(port, n);
    }
    {
        // The same nodes behind the same Envoy configuration, minus oidc-edge.
        let without = EnvoyConfig::reference()
            .plugin_config("{}")
            .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
            .edit(|doc| {
                let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]
                    ["filters"][0]["typed_config"];
                if let Some(f) = hcm["http_filters"].as_array_mut() {
                    f.retain(|f| {
                        f["name"] != "envoy.filters.http.wasm"
                            && f["name"] != "envoy.filters.http.stateful_session"
                    });
                }
            });
        let plain = Envoy::start(&without);
        println!(
            "\n--- the same logins without oidc-edge (plain round-robin Envoy on :{})",
            plain.port
        );
        for n in 1..=4 {
            login(plain.port, n);
        }
    }
    let resp = Request::get("app.example.com", "/login").send(port);
    let state = Echo::parse(&resp.body).state.unwrap_or_default();
    let cb = Request::get(
        "app.example.com",
        &format!("/callback?code=demo&state={state}"),
    )
    .send(port);
    println!(
        "    a callback without the login cookie (another browser, or a forged link): {} {}",
        cb.status,
        cb.header("x-oidc-edge-reason").unwrap_or_default()
    );

    let lb_headers = [
        ("Host", "10.0.0.12:8080"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-For", "203.0.113.9"),
    ];
    let mut lb = Request::get("10.0.0.12:8080", "/account").from(LB);
    for (k, v) in &lb_headers[1..] {
        lb = lb.header(k, v);
    }
    show(
        &format!("the load balancer ({LB}) forwards a browser's https request"),
        &lb_headers,
        lb,
        port,
    );

    let spoof_headers = [
        ("Host", "app.example.com"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-For", LB),
    ];
    let mut spoof = Request::get("app.example.com", "/account").from(CLIENT);
    for (k, v) in &spoof_headers[1..] {
        spoof = spoof.header(k, v);
    }
    show(
        &format!("a client ({CLIENT}) tries to spoof the load balancer"),
        &spoof_headers,
        spoof,
        port,
    );

    let bad = [
        ("Host", "10.0.0.12:8080"),
        ("X-Forwarded-Host", "evil.example"),
    ];
    let req = Request::get("10.0.0.12:8080", "/account")
        .from(LB)
        .header("X-Forwarded-Host", "evil.example");
    show(
        "the load balancer forwards a host that is not in allowed_hosts",
        &bad,
        req,
        port,
    );

    let stats = envoy.admin("/stats");
    println!("\n--- counters (admin /stats)");
    for l in stats
        .lines()
        .filter(|l| l.starts_with("wasmcustom.oidc_edge"))
    {
        println!("    {l}");
    }
    if once {
        return;
    }
    println!("\nTry it (Ctrl-C stops Envoy and the app nodes):");
    println!(
        "    curl -s -H 'X-Forwarded-Proto: https' http://localhost:{port}/ | python3 -m json.tool"
    );
    println!("    curl -s --interface {LB} -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-Host: app.example.com' http://127.0.0.1:{port}/");
    println!(
        "    curl -s http://127.0.0.1:{}/stats | grep oidc_edge",
        envoy.admin_port
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    if ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)).is_err() {
        eprintln!("cannot catch Ctrl-C; stop with kill");
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("\nstopping");
}
