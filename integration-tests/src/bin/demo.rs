//! `./build.sh demo`: Envoy with oidc-edge (from envoy/edge.yaml) in front of
//! two echo app nodes, showing what the app receives from a trusted load
//! balancer and from a client that tries to spoof it. Stays up for you to
//! try with curl until Ctrl-C (or exits at once with `--once`).

use integration_tests::{Echo, Envoy, EnvoyConfig, Request, Upstream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const LB: &str = "127.0.0.2";
const CLIENT: &str = "127.0.0.3";
const PLUGIN: &str = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com", "localhost"]}}"#;

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
    let nodes = [Upstream::start("app-1"), Upstream::start("app-2")];
    let cfg = EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>());
    let envoy = Envoy::start(&cfg);
    let port = envoy.port;
    println!(
        "oidc-edge demo: Envoy 1.40 on 127.0.0.1:{port} (admin :{}) with plugin configuration",
        envoy.admin_port
    );
    println!("    {PLUGIN}");
    println!("A connection from {LB} plays the TLS-terminating load balancer; anything else is an untrusted client.");

    let lb_headers = [
        ("Host", "10.0.0.12:8080"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-For", "203.0.113.9"),
    ];
    let mut lb = Request::get("10.0.0.12:8080", "/login").from(LB);
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
    let mut spoof = Request::get("app.example.com", "/login").from(CLIENT);
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
    let req = Request::get("10.0.0.12:8080", "/login")
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
