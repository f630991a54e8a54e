//! IdP discovery in a real Envoy 1.40 (issue 11 §5): the filter fetches
//! the issuer's `/.well-known/openid-configuration` through an Envoy
//! cluster with `dispatch_http_call`, learns the authorization endpoint
//! for `login_flow` and `redirects`, retries with backoff while the IdP is
//! unreachable (static endpoints keep working), refuses malformed
//! documents with a log line, and counts TLS disagreements.
//!
//! The IdP is oidc-provider from the OIDC bed (`integration_tests::
//! oidc_bed`), reached over TLS through a cluster named `idp`; intervals
//! are short through the configuration (`retry_initial_ms`,
//! `retry_max_seconds`), and every wait polls for a state.

use integration_tests::discovery_bed::{
    add_cluster, idp_cluster, wait_until, Forwarder, MetadataServer,
};
use integration_tests::oidc_bed::{edge_config, plugin_config, Flavour, OidcBed, Options};
use integration_tests::{Envoy, EnvoyConfig};
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// oidc-edge's gauge or counter (name without `wasmcustom.`).
fn stat(envoy: &Envoy, name: &str) -> u64 {
    envoy.counter(name)
}

fn state(envoy: &Envoy) -> u64 {
    stat(envoy, "oidc_edge.discovery.state")
}

/// The bed's plugin configuration with discovery through cluster `idp`;
/// `edit` changes the rest.
fn with_discovery(bed: &OidcBed, edit: impl FnOnce(&mut Value)) -> String {
    let mut cfg: Value =
        serde_json::from_str(&plugin_config(&bed.options, bed.lb_port, bed.idp.port))
            .expect("json");
    cfg["discovery"] = json!({
        "issuer": format!("https://127.0.0.1:{}", bed.idp.port),
        "cluster": "idp",
        "retry_initial_ms": 100,
        "retry_max_seconds": 1,
    });
    edit(&mut cfg);
    cfg.to_string()
}

fn edge_with(bed: &OidcBed, plugin: &str, idp_port: u16) -> EnvoyConfig {
    let ca = bed.pki.ca.clone();
    edge_config(
        &bed.options,
        &bed.nodes,
        bed.edge_port,
        bed.lb_port,
        bed.idp.port,
    )
    .plugin_config(plugin)
    .edit(|doc| add_cluster(doc, idp_cluster("idp", idp_port, Some(&ca))))
}

fn discovery_lines(envoy: &Envoy, words: &str) -> Vec<String> {
    envoy
        .log()
        .lines()
        .filter(|l| l.contains("discovery: ") && l.contains(words))
        .map(str::to_string)
        .collect()
}

/// The Envoy thread a log line came from (`[time][thread][level]...`).
fn thread(line: &str) -> &str {
    line.split(']').nth(1).unwrap_or("").trim_start_matches('[')
}

/// Each root context fetches on its own: Envoy's main thread has one
/// besides each worker's. Asserts `lines` came from some of them, at most
/// one per thread (one line per event, not one per retry).
fn once_per_root_context(lines: &[String], envoy: &Envoy) {
    assert!(!lines.is_empty(), "no such line:\n{}", envoy.log());
    let mut threads: Vec<&str> = lines.iter().map(|l| thread(l)).collect();
    threads.sort();
    let before = threads.len();
    threads.dedup();
    assert_eq!(
        threads.len(),
        before,
        "more than one line per root context:\n{}",
        lines.join("\n")
    );
}

/// With no authorization endpoint configured anywhere, the one learned from
/// oidc-provider's metadata makes logins start flows, get pinned and have
/// their redirect_uri checked.
#[test]
fn discovery_alone_learns_the_endpoint_and_logins_work() {
    let mut bed = OidcBed::start(Options::new(Flavour::Http));
    let plugin = with_discovery(&bed, |c| {
        c["login_flow"]
            .as_object_mut()
            .expect("login_flow")
            .remove("authorization_endpoints");
    });
    assert!(!plugin.contains("/auth\""), "no static endpoint: {plugin}");
    let cfg = edge_with(&bed, &plugin, bed.idp.port);
    bed.replace_edge(&cfg);
    let edge = bed.edge();
    wait_until(
        WAIT,
        "discovery healthy",
        || state(edge) == 1,
        || edge.log(),
    );
    let learned = format!(
        "learned authorization_endpoint https://127.0.0.1:{}/auth",
        bed.idp.port
    );
    once_per_root_context(&discovery_lines(edge, &learned), edge);
    assert_eq!(stat(edge, "oidc_edge.discovery.refused"), 0);
    assert_eq!(
        stat(edge, "oidc_edge.discovery.tls_mismatch"),
        0,
        "an https bed agrees on TLS"
    );
    const LOGINS: u64 = 4;
    for i in 0..LOGINS {
        let mut browser = bed.browser();
        let login = bed.login(&mut browser, "");
        assert!(login.ok(), "login {i}:\n{}", login.describe());
        assert_eq!(
            login.callback_node(),
            login.login_node(),
            "login {i} pinned:\n{}",
            login.describe()
        );
    }
    assert_eq!(
        stat(edge, "oidc_edge.login_flow.issued"),
        LOGINS,
        "every login started a flow"
    );
    assert_eq!(stat(edge, "oidc_edge.login_flow.pinned"), LOGINS);
    assert!(stat(edge, "oidc_edge.redirects.redirect_uri_registered") >= LOGINS);
}

/// The path from Envoy to the IdP is down at start: discovery retries with
/// backoff (counted, the gauge says unreachable, one log line), logins keep
/// working on the static endpoint, and when the path comes back discovery
/// recovers (gauge healthy, one line saying so).
#[test]
fn an_unreachable_idp_at_start_keeps_static_logins_working_and_recovers() {
    let mut bed = OidcBed::start(Options::new(Flavour::Http));
    let path = Forwarder::closed(bed.idp.port);
    let cfg = edge_with(&bed, &with_discovery(&bed, |_| {}), path.port);
    bed.replace_edge(&cfg);
    let edge = bed.edge();
    wait_until(
        WAIT,
        "three failed fetches",
        || stat(edge, "oidc_edge.discovery.unreachable") >= 3,
        || edge.log(),
    );
    assert_eq!(state(edge), 2, "the gauge says unreachable");
    assert_eq!(stat(edge, "oidc_edge.discovery.fetched"), 0);
    let failing = discovery_lines(edge, "cannot fetch");
    once_per_root_context(&failing, edge);
    assert!(
        failing[0].contains("configured authorization endpoints stay in use")
            && failing[0].contains("retrying with backoff"),
        "{}",
        failing[0]
    );
    for i in 0..2 {
        let mut browser = bed.browser();
        let login = bed.login(&mut browser, "");
        assert!(
            login.ok(),
            "login {i} while the IdP is unreachable:\n{}",
            login.describe()
        );
        assert_eq!(
            login.callback_node(),
            login.login_node(),
            "{}",
            login.describe()
        );
    }
    assert_eq!(stat(edge, "oidc_edge.login_flow.pinned"), 2);
    path.open();
    wait_until(
        WAIT,
        "discovery recovered",
        || state(edge) == 1,
        || edge.log(),
    );
    assert!(stat(edge, "oidc_edge.discovery.fetched") >= 1);
    let recovered = discovery_lines(edge, "failed attempts");
    once_per_root_context(&recovered, edge);
    assert!(
        recovered[0].contains("learned authorization_endpoint"),
        "{}",
        recovered[0]
    );
    assert!(
        discovery_lines(edge, "does not list").is_empty(),
        "the learned endpoint is the static one: no disagreement"
    );
    let mut browser = bed.browser();
    let login = bed.login(&mut browser, "");
    assert!(login.ok(), "after recovery:\n{}", login.describe());
    assert_eq!(stat(edge, "oidc_edge.login_flow.pinned"), 3);
}

/// A metadata server answering, in turn, a malformed document, one naming
/// another issuer, and a good one over plain http (a test bed with
/// `allow_http`): the first two are refused with a log line naming the
/// reason, the third is learned, and its TLS disagreement is counted and
/// logged.
#[test]
fn malformed_documents_are_refused_and_an_http_idp_is_counted() {
    let server = MetadataServer::start(|port| {
        let issuer = format!("http://127.0.0.1:{port}");
        vec![
            "{\"issuer\": ".to_string(),
            json!({"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/auth"})
                .to_string(),
            json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/auth"),
                   "token_endpoint": format!("{issuer}/token")})
            .to_string(),
        ]
    });
    let issuer = format!("http://127.0.0.1:{}", server.port);
    let plugin = json!({
        "discovery": {"issuer": issuer, "cluster": "idp", "allow_http": true,
                      "retry_initial_ms": 100, "retry_max_seconds": 1},
        "redirects": {"redirect_uris": ["https://app.example.com/callback"]}
    })
    .to_string();
    let port = server.port;
    let edge = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(&plugin)
            .edit(|doc| add_cluster(doc, idp_cluster("idp", port, None))),
    );
    wait_until(
        WAIT,
        "the good document learned",
        || state(&edge) == 1,
        || edge.log(),
    );
    let from = format!("refused the document from {issuer}/.well-known/openid-configuration");
    // Each scripted answer is served once, to whichever root context asks.
    let not_json = discovery_lines(&edge, "the document is not JSON");
    assert_eq!(not_json.len(), 1, "{}", edge.log());
    assert!(not_json[0].contains(&from), "{}", not_json[0]);
    let other = discovery_lines(
        &edge,
        "\"https://evil.example\" is not the configured discovery.issuer",
    );
    assert_eq!(other.len(), 1, "{}", edge.log());
    assert_eq!(stat(&edge, "oidc_edge.discovery.refused"), 2);
    assert!(stat(&edge, "oidc_edge.discovery.fetched") >= 1);
    assert!(stat(&edge, "oidc_edge.discovery.tls_mismatch") >= 1);
    let tls = discovery_lines(&edge, "disagree on TLS");
    once_per_root_context(&tls, &edge);
    for w in [
        format!("the issuer \"{issuer}\" is not https"),
        format!("authorization_endpoint \"{issuer}/auth\" is not https"),
        format!("token_endpoint \"{issuer}/token\" is not https"),
    ] {
        assert!(tls[0].contains(&w), "{} lacks {w}", tls[0]);
    }
    assert!(server.served.load(std::sync::atomic::Ordering::SeqCst) >= 3);
}

/// `discovery.cluster` names no cluster of this Envoy: `dispatch_http_call`
/// is refused, and the log says which setting to fix (the filter keeps
/// serving, the retries are counted).
#[test]
fn a_missing_cluster_is_named_in_the_log() {
    let plugin = json!({
        "discovery": {"issuer": "https://idp.example.com", "cluster": "no-such-cluster",
                      "retry_initial_ms": 100, "retry_max_seconds": 1},
        "redirects": {"redirect_uris": ["https://app.example.com/callback"]}
    })
    .to_string();
    let edge = Envoy::start(&EnvoyConfig::reference().plugin_config(&plugin));
    wait_until(
        WAIT,
        "two refused fetches",
        || stat(&edge, "oidc_edge.discovery.unreachable") >= 2,
        || edge.log(),
    );
    assert_eq!(state(&edge), 2);
    let lines = discovery_lines(
        &edge,
        "is there a cluster named \"no-such-cluster\" (discovery.cluster)?",
    );
    once_per_root_context(&lines, &edge);
    assert!(
        !edge.log().contains("panicked"),
        "the refused call must not fault the VM:\n{}",
        edge.log()
    );
}
