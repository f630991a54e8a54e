//! Several public origins on one Envoy (`envoy/multi-host.yaml`): real
//! logins (oidc-provider, Express + openid-client on three nodes) through
//! four load balancers at once, HTTP ones that send X-Forwarded-Proto
//! (Debian's HAProxy in `mode http`, nginx) and TLS-terminating TCP ones
//! that send nothing (an Envoy `tcp_proxy`, HAProxy `mode tcp` with
//! `send-proxy-v2`), each with two host names.

use integration_tests::multi_host_bed::MultiHostBed;

#[test]
fn every_login_succeeds_through_every_load_balancer_and_host() {
    let bed = MultiHostBed::start(true);
    let mut failures = Vec::new();
    for front in &bed.fronts {
        for origin in front.origins() {
            let mut browser = bed.browser();
            let login = bed.login(&mut browser, &origin);
            let want = format!("{origin}/callback");
            if !login.ok() || login.redirect_uri().as_deref() != Some(want.as_str()) {
                failures.push(format!(
                    "{} {origin}: redirect_uri {:?}\n{}",
                    front.name,
                    login.redirect_uri(),
                    login.describe()
                ));
            }
            assert!(login.server_errors().is_empty(), "{}", login.describe());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Each kind of peer was recognised as what it is.
    assert!(bed.edge.counter("oidc_edge.forwarded.trusted_peer") > 0);
    assert!(bed.edge.counter("oidc_edge.forwarded.tcp_peer") > 0);
    assert!(bed.edge.counter("oidc_edge.forwarded.untrusted_peer") > 0);
    assert_eq!(bed.edge.counter("oidc_edge.forwarded.peer_unknown"), 0);
}

/// The control: without oidc-edge, the app behind a TCP load balancer
/// builds an `http://` redirect URI (Envoy's own X-Forwarded-Proto for the
/// plain hop) and the IdP refuses it, on every TCP-LB host.
#[test]
fn without_oidc_edge_the_tcp_load_balancers_hosts_cannot_log_in() {
    let bed = MultiHostBed::start(false);
    for name in ["envoy-tcp", "haproxy-tcp-proxy"] {
        for origin in bed.front(name).origins() {
            let mut browser = bed.browser();
            let login = bed.login(&mut browser, &origin);
            assert!(!login.ok(), "{name} {origin}:\n{}", login.describe());
            let sent = login.redirect_uri().unwrap_or_default();
            assert!(
                sent.starts_with("http://"),
                "{name} {origin}: {sent}\n{}",
                login.describe()
            );
        }
    }
}
