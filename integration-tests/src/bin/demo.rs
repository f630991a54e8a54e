//! `./build.sh demo`: real OpenID Connect logins through a TLS-terminating
//! load balancer, with and without oidc-edge.
//!
//! The bed (see `integration_tests::oidc_bed`): oidc-provider as the IdP; an
//! Express app with in-memory sessions and openid-client on three nodes
//! under round robin; an Envoy LB terminating TLS in front, as an HTTP LB
//! (sends X-Forwarded-Proto) or a TCP LB (forwards nothing); Envoy with
//! oidc-edge from `envoy/edge.yaml` in between. A scripted browser logs in
//! and every request it makes is printed. Then one Envoy behind four load
//! balancers serves several host names (`envoy/multi-host.yaml`), and
//! logged-in users of a fleet of three Envoys renew silently after the node
//! their sessions live on is killed (`integration_tests::refresh_load::failover`). The beds with oidc-edge stay up
//! for you to try with curl or a browser until Ctrl-C (`--once`: exit).

use integration_tests::browser::{Browser, Hop};
use integration_tests::fleet::{FleetBed, KeySource};
use integration_tests::multi_host_bed::MultiHostBed;
use integration_tests::oidc_bed::{Flavour, Login, OidcBed, Options};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The public port of the first bed, if free (any other one otherwise).
const PREFERRED_PORT: u16 = 8443;

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// One hop as a line: who answered, what, and the facts that matter.
fn hop_line(n: usize, h: &Hop, origin: &str) -> String {
    let app = h.url.as_str().starts_with(origin);
    let who = if app {
        match &h.node {
            Some(node) => format!("app {node}"),
            None if h.reason.is_some() => "oidc-edge".to_string(),
            None => "Envoy".to_string(),
        }
    } else {
        "IdP".to_string()
    };
    let mut what = h.url.path().to_string();
    if let Some(q) = h.url.query() {
        let q: String = q.chars().take(40).collect();
        what.push_str(&format!("?{q}..."));
    }
    let mut line = format!("  {n:>2}. {who:<11} {} {what:<60} {}", h.method, h.status);
    if let Some(r) = &h.reason {
        line.push_str(&format!("  x-oidc-edge-reason: {r}"));
    }
    if h.status >= 400 && !h.summary.is_empty() {
        line.push_str(&format!("  \"{}\"", h.summary.trim()));
    }
    line
}

/// The verdict on one login, in words.
fn verdict(login: &Login) -> String {
    if login.ok() {
        return format!(
            "LOGGED IN as {}: /login served by {}, /callback by {}, /me by {}",
            login.me()["sub"].as_str().unwrap_or("?"),
            login.login_node().unwrap_or("?"),
            login.callback_node().unwrap_or("?"),
            login.me()["node"].as_str().unwrap_or("?")
        );
    }
    let last = login.hops.last();
    match last {
        Some(h) if h.url.path() == "/callback" && h.summary.contains("no login in progress") => {
            format!(
                "FAILED: the callback went to {}, but the login's session is on {}",
                login.callback_node().unwrap_or("?"),
                login.login_node().unwrap_or("?")
            )
        }
        Some(h) if h.summary.contains("invalid_redirect_uri") => format!(
            "FAILED: the IdP refused redirect_uri={} (the app was told plain http)",
            login.redirect_uri().unwrap_or_default()
        ),
        Some(h) if h.reason.is_some() => format!(
            "REFUSED by oidc-edge ({}) before any app node",
            h.reason.as_deref().unwrap_or_default()
        ),
        Some(h) => format!("FAILED: {} {}", h.status, h.summary),
        None => "FAILED: no request made".into(),
    }
}

fn show(title: &str, bed: &OidcBed, browser: &mut Browser) -> Login {
    let login = bed.login(browser, "");
    println!("\n=== {title}");
    for (i, h) in login.hops.iter().enumerate() {
        println!("{}", hop_line(i + 1, h, &bed.origin()));
    }
    if let Some(uri) = login.redirect_uri() {
        println!("      redirect_uri the app sent to the IdP: {uri}");
    }
    println!("  => {}", verdict(&login));
    login
}

/// A login whose node is stopped while the user is at the IdP.
fn node_dies_mid_login(bed: &mut OidcBed) {
    let mut browser = bed.browser();
    let origin = bed.origin();
    let paused =
        match browser.navigate_until(&format!("{origin}/login"), |u| u.path() == "/callback") {
            Ok(page) => {
                println!("  (the login ended before the callback: {})", page.status());
                return;
            }
            Err(paused) => paused,
        };
    let Some(started) = browser.trace.first().and_then(|h| h.node.clone()) else {
        return;
    };
    bed.kill_node(&started);
    println!("\n  {started} stops while the user is at the IdP; the browser comes back:");
    let from = browser.trace.len();
    let page = browser.resume(paused);
    for (i, h) in browser.trace[from..].iter().enumerate() {
        println!("{}", hop_line(i + 1, h, &origin));
    }
    let login = Login {
        page,
        hops: browser.trace.clone(),
    };
    println!("  => {}", verdict(&login));
    println!("     (oidc-edge sent the browser back to /login once; the IdP's session finished it without a form)");
}

/// Users renew silently after the node their sessions live on dies: the
/// summary line.
fn failover_refresh() -> String {
    /// Small, so the demo stays quick (`./build.sh refresh-load` runs 200).
    const USERS: usize = 12;
    let mut bed = FleetBed::start(3, KeySource::Env, &["k1"], Options::new(Flavour::Http));
    println!(
        "\n=== Silent renewal after failover: {USERS} logged-in users, 3 edge Envoys (envoy/edge.yaml, \
         \"affinity\": \"session\") behind the LB, at {}",
        bed.origin()
    );
    let (before, after, on_dead) =
        integration_tests::refresh_load::failover(&mut bed, USERS, "node-a");
    println!(
        "  {USERS} users log in and renew (/login?prompt=none): {} of {} renewed; {on_dead} have their session on node-a",
        before.renewals - before.failed.len(),
        before.renewals
    );
    println!("  node-a is killed (SIGKILL); everyone renews again. One of node-a's users:");
    for (i, h) in after.moved_example.iter().enumerate() {
        println!("{}", hop_line(i + 1, h, &bed.origin()));
    }
    if !after.moved_example.is_empty() {
        println!("     (1: the session pins the request to node-a, which refuses connections: oidc-edge clears");
        println!("      the session cookie and sends the browser back once; a live node starts a new login,");
        println!("      and the IdP's SSO session finishes it without a form)");
    }
    for f in after.failed.iter().take(2) {
        println!("  a renewal that failed:\n{f}");
    }
    println!(
        "  renewals: p50 {} ms, p99 {} ms; counters: session.node_gone {}",
        after.p50_ms,
        after.p99_ms,
        bed.counter("oidc_edge.session.node_gone")
    );
    format!(
        "failover refresh (node-a killed): {} of {} silent renewals logged in, {} of {on_dead} users of node-a moved to a live node, no IdP form",
        after.renewals - after.failed.len(),
        after.renewals,
        after.moved
    )
}

fn lb_name(f: Flavour) -> &'static str {
    match f {
        Flavour::Http => "HTTP load balancer (sends X-Forwarded-Proto)",
        Flavour::Tcp => "TCP load balancer (forwards nothing)",
    }
}

fn main() {
    let once = std::env::args().any(|a| a == "--once");
    println!("oidc-edge demo: OpenID Connect logins behind a TLS-terminating load balancer");
    println!(
        "  IdP: oidc-provider 8.8.1 (signs the test user in and grants consent without a form)"
    );
    println!("  app: Express 5 + express-session (sessions in memory) + openid-client 6 (code + PKCE + nonce),");
    println!(
        "       redirect_uri built from the request, on node-a, node-b and node-c, round robin"
    );
    println!("  browser --https--> LB --> Envoy 1.40 (envoy/edge.yaml, with or without oidc-edge) --> nodes");

    let mut results = Vec::new();
    let mut kept: Vec<OidcBed> = Vec::new();
    for flavour in [Flavour::Http, Flavour::Tcp] {
        for filter in [true, false] {
            let mut options = Options::new(flavour);
            options.filter = filter;
            if filter && flavour == Flavour::Http && port_free(PREFERRED_PORT) {
                options.lb_port = Some(PREFERRED_PORT);
            }
            let mut bed = OidcBed::start(options);
            let with = if filter {
                "WITH oidc-edge"
            } else {
                "WITHOUT oidc-edge"
            };
            let title = format!("{} {with}, at {}", lb_name(flavour), bed.origin());
            let login = show(&title, &bed, &mut bed.browser());
            results.push((flavour, filter, verdict(&login)));
            if flavour == Flavour::Http {
                let mut spoofer = bed.browser();
                spoofer
                    .extra_headers
                    .push(("X-Forwarded-Host".into(), "evil.example".into()));
                let spoof = bed.login(&mut spoofer, "");
                let said = match spoof.redirect_uri() {
                    Some(uri) => format!("the app sent redirect_uri={uri}"),
                    None => verdict(&spoof),
                };
                println!("  a client adds X-Forwarded-Host: evil.example => {said}");
            }
            if filter && flavour == Flavour::Tcp {
                node_dies_mid_login(&mut bed);
            }
            if filter {
                kept.push(bed);
            }
        }
    }

    let multi = MultiHostBed::start(true);
    println!(
        "\n=== One Envoy (envoy/multi-host.yaml) behind four load balancers at once, two host names each"
    );
    let mut multi_ok = 0;
    let mut multi_all = 0;
    for front in &multi.fronts {
        for origin in front.origins() {
            let login = multi.login(&mut multi.browser(), &origin);
            multi_all += 1;
            multi_ok += usize::from(login.ok());
            println!("  {:<18} {origin:<26} => {}", front.name, verdict(&login));
        }
    }

    let failover = failover_refresh();

    println!("\n=== Summary");
    println!("  {failover}");
    println!(
        "  several hosts on one Envoy (HAProxy http, nginx, TCP LB, HAProxy tcp + PROXY v2): {multi_ok} of {multi_all} logged in"
    );
    for (flavour, filter, v) in &results {
        let with = if *filter { "with   " } else { "without" };
        let lb = if *flavour == Flavour::Http {
            "HTTP LB"
        } else {
            "TCP LB "
        };
        println!("  {lb} {with} oidc-edge: {v}");
    }
    if once {
        return;
    }

    println!("\n=== Try it yourself (Ctrl-C stops everything)");
    for bed in &kept {
        let port = bed.lb_port;
        println!(
            "  {} at {}\n    curl -sS -L --cacert {} --resolve app.test:{port}:127.0.0.1 -c /tmp/oidc-edge-jar -b /tmp/oidc-edge-jar {}/login",
            lb_name(bed.options.flavour),
            bed.origin(),
            bed.pki.ca.display(),
            bed.origin()
        );
        println!(
            "    oidc-edge's counters: curl -s 127.0.0.1:{}/stats | grep oidc_edge",
            bed.edge().admin_port
        );
    }
    println!("  In a browser: map app.test to 127.0.0.1 (/etc/hosts), trust the CA above, open https://app.test:<port>/login");
    println!("  (the IdP is https://127.0.0.1:<its port>, with a certificate from the same CA).");

    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    if ctrlc::set_handler(move || s.store(true, Ordering::SeqCst)).is_err() {
        eprintln!("cannot catch Ctrl-C; stop with kill");
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("\nstopping the IdPs, app nodes, load balancers and Envoys");
    drop(kept);
    drop(multi);
}
