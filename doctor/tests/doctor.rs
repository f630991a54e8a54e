//! The doctor on the reference configurations (clean) and on edge.yaml with
//! one pitfall each (exactly that finding, on the line of the setting).

#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)] // helpers of a test file

use oidc_edge_doctor::diagnose;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn edge() -> String {
    std::fs::read_to_string(root().join("envoy/edge.yaml")).unwrap()
}

/// Replaces the one occurrence of `from` (it must occur exactly once, so a
/// changed edge.yaml fails here rather than testing nothing).
fn replace(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} must occur once in edge.yaml"
    );
    text.replacen(from, to, 1)
}

/// The text from the line holding `from` up to (not including) the line
/// holding `to`.
fn block<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let a = text
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not found"));
    let a = text[..a].rfind('\n').map_or(0, |i| i + 1);
    let b = a + text[a..]
        .find(to)
        .unwrap_or_else(|| panic!("{to:?} not found"));
    let b = text[..b].rfind('\n').map_or(0, |i| i + 1);
    &text[a..b]
}

fn cut(text: &str, from: &str, to: &str) -> String {
    replace(text, block(text, from, to), "")
}

/// Moves a block so that it starts at the line holding `before`.
fn move_before(text: &str, from: &str, to: &str, before: &str) -> String {
    let b = block(text, from, to).to_string();
    let t = replace(text, &b, "");
    let at = t.find(before).unwrap();
    let at = t[..at].rfind('\n').map_or(0, |i| i + 1);
    format!("{}{b}{}", &t[..at], &t[at..])
}

fn line_of(text: &str, needle: &str) -> usize {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not found"));
    text[..at].matches('\n').count() + 1
}

const HEADER_MUTATION: &str = "- name: envoy.filters.http.header_mutation";
const WASM: &str = "# 2. oidc-edge.";
const STATEFUL: &str = "# 3. Route to the node";
const ROUTER: &str = "- name: envoy.filters.http.router";
const CLUSTERS: &str = "\n  clusters:";

/// One broken configuration: the edited text, the one finding expected and
/// the text on the line it must point at.
struct Case {
    name: &'static str,
    config: String,
    check: &'static str,
    at: &'static str,
}

fn cases() -> Vec<Case> {
    let e = edge();
    let r = |from: &str, to: &str| replace(&e, from, to);
    let c = |name, config, check, at| Case {
        name,
        config,
        check,
        at,
    };
    vec![
        c(
            "discovery through a cluster the bootstrap lacks",
            r(
                r#""redirects": {"#,
                r#""discovery": {"issuer": "https://idp.example.com", "cluster": "idp"},
                      "redirects": {"#,
            ),
            "discovery_cluster_missing",
            r#""cluster": "idp""#,
        ),
        c(
            "a misspelt plugin field",
            r(r#""callback_paths": ["/callback"]"#, r#""callback_path": ["/callback"]"#),
            "plugin_config_invalid",
            r#""callback_path""#,
        ),
        c(
            "the signing key's variable not exposed to the VM",
            r(
                "host_env_keys: [OIDC_EDGE_KEY_1, OIDC_EDGE_KEY_2, OIDC_EDGE_PEER_TOKEN]",
                "host_env_keys: [OIDC_EDGE_KEY_2, OIDC_EDGE_PEER_TOKEN]",
            ),
            "secret_env_not_exposed",
            "environment_variables:",
        ),
        c(
            "an inline signing key",
            r(
                r#"{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}"#,
                r#"{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}"#,
            ),
            "inline_secret",
            r#""secret": "MDEy"#,
        ),
        c(
            "the signing key in key_values",
            r(
                "host_env_keys: [OIDC_EDGE_KEY_1, OIDC_EDGE_KEY_2, OIDC_EDGE_PEER_TOKEN]",
                "host_env_keys: [OIDC_EDGE_KEY_2, OIDC_EDGE_PEER_TOKEN]\n                    \
                 key_values: { OIDC_EDGE_KEY_1: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= }",
            ),
            "inline_secret",
            "key_values:",
        ),
        c(
            "FAIL_OPEN",
            r("failure_policy: FAIL_RELOAD", "failure_policy: FAIL_OPEN"),
            "failure_policy",
            "failure_policy: FAIL_OPEN",
        ),
        c(
            "no failure policy",
            r("                failure_policy: FAIL_RELOAD\n", ""),
            "failure_policy",
            "config:\n                name: oidc-edge",
        ),
        c(
            "no header_mutation filter",
            cut(&e, HEADER_MUTATION, WASM),
            "peer_header_not_written",
            "http_filters:",
        ),
        c(
            "header_mutation writing another header",
            r("key: x-oidc-edge-peer", "key: x-peer"),
            "peer_header_not_written",
            "http_filters:",
        ),
        c(
            "header_mutation after oidc-edge",
            move_before(&e, HEADER_MUTATION, WASM, STATEFUL),
            "header_mutation_after_oidc_edge",
            HEADER_MUTATION,
        ),
        c(
            "the peer header appended",
            r("append_action: OVERWRITE_IF_EXISTS_OR_ADD", "append_action: APPEND_IF_EXISTS_OR_ADD"),
            "peer_header_appended",
            "append_action: APPEND_IF_EXISTS_OR_ADD",
        ),
        c(
            "the peer header from X-Forwarded-For",
            r(
                "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%",
                "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
            ),
            "peer_header_not_direct",
            "value: \"%DOWNSTREAM_REMOTE",
        ),
        c(
            "the peer header without its token",
            r(";%ENVIRONMENT(OIDC_EDGE_PEER_TOKEN)%\"", "\""),
            "peer_header_without_token",
            "value: \"%DOWNSTREAM_DIRECT",
        ),
        c(
            "no stateful_session",
            cut(&e, STATEFUL, ROUTER),
            "stateful_session_missing",
            "http_filters:",
        ),
        c(
            "stateful_session before oidc-edge",
            move_before(&e, STATEFUL, ROUTER, WASM),
            "stateful_session_before_oidc_edge",
            "- name: envoy.filters.http.stateful_session",
        ),
        c(
            "stateful_session reading another header",
            r("  name: x-oidc-edge-node\n", "  name: x-session\n"),
            "stateful_session_header_mismatch",
            "name: x-session",
        ),
        c(
            "stateful_session not strict",
            r("strict: true", "strict: false"),
            "stateful_session_not_strict",
            "strict: false",
        ),
        c(
            "cookie-based stateful_session",
            r(
                "name: envoy.http.stateful_session.header\n                typed_config:\n                  \
                 \"@type\": type.googleapis.com/envoy.extensions.http.stateful_session.header.v3.HeaderBasedSessionState\n                  \
                 name: x-oidc-edge-node",
                "name: envoy.http.stateful_session.cookie\n                typed_config:\n                  \
                 \"@type\": type.googleapis.com/envoy.extensions.http.stateful_session.cookie.v3.CookieBasedSessionState\n                  \
                 cookie: { name: route }",
            ),
            "stateful_session_cookie",
            "session_state:",
        ),
        c(
            "the router before stateful_session",
            move_before(&e, ROUTER, CLUSTERS, STATEFUL),
            "router_not_last",
            "- name: envoy.filters.http.stateful_session",
        ),
        c(
            "the node header reaching the app",
            r(
                "request_headers_to_remove: [x-oidc-edge-node, x-oidc-edge-peer]",
                "request_headers_to_remove: [x-oidc-edge-peer]",
            ),
            "internal_header_reaches_app",
            "route_config:",
        ),
        c(
            "use_remote_address true",
            r("use_remote_address: false", "use_remote_address: true"),
            "use_remote_address_overwrites_proto",
            "use_remote_address: true",
        ),
        c(
            "source_address with use_remote_address false",
            r(
                r#""trusted_cidrs": ["10.0.1.0/24"],"#,
                r#""trusted_cidrs": ["10.0.1.0/24"], "peer_address_from": "source_address","#,
            ),
            "source_address_spoofable",
            "use_remote_address: false",
        ),
        c(
            "underscore headers allowed",
            r("headers_with_underscores_action: DROP_HEADER", "headers_with_underscores_action: ALLOW"),
            "underscore_headers_allowed",
            "headers_with_underscores_action: ALLOW",
        ),
        c(
            "all of 10.0.0.0/8 trusted",
            r(r#""trusted_cidrs": ["10.0.1.0/24"]"#, r#""trusted_cidrs": ["10.0.0.0/8"]"#),
            "trusted_cidrs_too_wide",
            r#""trusted_cidrs": ["10.0.0.0/8"]"#,
        ),
        c(
            "no trusted peer at all",
            r(r#""trusted_cidrs": ["10.0.1.0/24"],"#, r#""trusted_cidrs": [],"#),
            "plugin_config_warning",
            "{\n                      \"forwarded\"",
        ),
        c(
            "no upgrade_configs",
            r("          upgrade_configs:\n          - upgrade_type: websocket\n", ""),
            "websocket_upgrades_refused",
            "typed_config:\n          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager",
        ),
        c(
            "a 60 s route timeout",
            r("timeout: 0s", "timeout: 60s"),
            "route_timeout_cuts_streams",
            "timeout: 60s",
        ),
        c(
            "no route timeout (Envoy's 15 s)",
            r("                  timeout: 0s\n", ""),
            "route_timeout_cuts_streams",
            "route:\n                  cluster: app",
        ),
        c(
            "a 10 s route idle timeout",
            r("timeout: 0s\n", "timeout: 0s\n                  idle_timeout: 10s\n"),
            "route_idle_timeout_cuts_streams",
            "idle_timeout: 10s",
        ),
        c(
            "stream_idle_timeout off",
            r("stream_idle_timeout: 300s", "stream_idle_timeout: 0s"),
            "stream_idle_timeout_out_of_range",
            "stream_idle_timeout: 0s",
        ),
        c(
            "a 10 s stream_idle_timeout",
            r("stream_idle_timeout: 300s", "stream_idle_timeout: 10s"),
            "stream_idle_timeout_out_of_range",
            "stream_idle_timeout: 10s",
        ),
        c(
            "a 30 s idle_timeout",
            r("idle_timeout: 3600s", "idle_timeout: 30s"),
            "idle_timeout_out_of_range",
            "idle_timeout: 30s",
        ),
        c(
            "a 2 s request_timeout",
            r("request_timeout: 300s", "request_timeout: 2s"),
            "request_timeout_out_of_range",
            "request_timeout: 2s",
        ),
        c(
            "the default retry circuit breaker",
            r("    circuit_breakers:\n      thresholds:\n      - max_retries: 1024\n", ""),
            "default_retry_circuit_breaker",
            "- name: app\n    type: STATIC",
        ),
        c(
            "retrying callbacks on 5xx",
            r("retry_on: connect-failure", "retry_on: connect-failure,5xx"),
            "retries_on_pinned_route",
            "retry_on: connect-failure,5xx",
        ),
        c(
            "no oidc-edge filter",
            cut(&e, WASM, STATEFUL),
            "no_oidc_edge_filter",
            "listeners:",
        ),
    ]
}

#[test]
fn each_broken_configuration_yields_exactly_its_finding_on_its_line() {
    let mut failures = Vec::new();
    for case in cases() {
        let report = diagnose(&case.config).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let want = (case.check, line_of(&case.config, case.at));
        let got: Vec<_> = report.findings.iter().map(|f| (f.check, f.line)).collect();
        if got != [want] {
            failures.push(format!(
                "{}: want {want:?}, got {got:?}\n{}",
                case.name,
                report.text("x")
            ));
        }
        for f in &report.findings {
            assert!(
                !f.problem.is_empty() && f.why.len() > 40 && !f.fix.is_empty(),
                "{}: every finding says what, why and the fix: {f:?}",
                case.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_plugin_error_is_the_filters_own_load_error() {
    let config = replace(
        &edge(),
        r#""trusted_cidrs": ["10.0.1.0/24"]"#,
        r#""trusted_cidrs": ["10.0.1.0/33"]"#,
    );
    let report = diagnose(&config).unwrap();
    let f = &report.findings[0];
    let want =
        oidc_edge::config::Config::parse(br#"{"forwarded": {"trusted_cidrs": ["10.0.1.0/33"]}}"#)
            .unwrap_err();
    assert_eq!(f.problem, format!("{}: {}", want.field, want.message));
}

/// Every Envoy bootstrap under envoy/ (Kubernetes manifests, told by their
/// `kind`, and other files such as rules or dashboards are not bootstraps).
fn reference_bootstraps() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            {
                let text = std::fs::read_to_string(&p).unwrap();
                let doc = oidc_edge_doctor::yaml::parse(&text).unwrap();
                let bootstrap = doc.get("kind").is_none()
                    && (doc.get("static_resources").is_some()
                        || doc.get("dynamic_resources").is_some());
                if bootstrap {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("envoy"), &mut out);
    out.sort();
    out
}

#[test]
fn every_reference_configuration_passes_clean() {
    let files = reference_bootstraps();
    assert!(
        files.iter().any(|f| f.ends_with("envoy/edge.yaml")),
        "{files:?}"
    );
    for f in files {
        let report = diagnose(&std::fs::read_to_string(&f).unwrap()).unwrap();
        assert!(
            report.findings.is_empty(),
            "{}",
            report.text(&f.display().to_string())
        );
    }
}

fn to_json(n: &oidc_edge_doctor::yaml::Node) -> serde_json::Value {
    use oidc_edge_doctor::yaml::Kind;
    match &n.kind {
        Kind::Map(m) => m
            .iter()
            .map(|(k, v)| (k.clone(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Kind::Seq(s) => s.iter().map(to_json).collect(),
        Kind::Scalar(s, _, _) => match s.as_str() {
            "true" => true.into(),
            "false" => false.into(),
            _ => s
                .parse::<u64>()
                .map_or_else(|_| s.clone().into(), Into::into),
        },
        Kind::Null => serde_json::Value::Null,
    }
}

#[test]
fn json_bootstraps_are_checked_with_their_lines() {
    let doc = oidc_edge_doctor::yaml::parse(&edge()).unwrap();
    let json = serde_json::to_string_pretty(&to_json(&doc)).unwrap();
    assert!(
        diagnose(&json).unwrap().findings.is_empty(),
        "{}",
        diagnose(&json).unwrap().text("edge.json")
    );
    let broken = replace(
        &json,
        r#""use_remote_address": false"#,
        r#""use_remote_address": true"#,
    );
    let got: Vec<_> = diagnose(&broken)
        .unwrap()
        .findings
        .iter()
        .map(|f| (f.check, f.line))
        .collect();
    assert_eq!(
        got,
        [(
            "use_remote_address_overwrites_proto",
            line_of(&broken, "\"use_remote_address\"")
        )]
    );
    // The plugin configuration is one JSON string here: its errors point at it.
    let broken = replace(&json, r#"\"callback_paths\""#, r#"\"callback_path\""#);
    let f = &diagnose(&broken).unwrap().findings[0];
    assert_eq!(
        (f.check, f.line),
        ("plugin_config_invalid", line_of(&broken, "callback_path"))
    );
}

fn doctor(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_oidc-edge-doctor"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn exit_status_and_json_output() {
    let dir = std::env::temp_dir().join(format!("oidc-edge-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let edge_path = root().join("envoy/edge.yaml");
    let (code, out, _) = doctor(&[edge_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("no problems found\n"), "{out}");

    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, replace(&edge(), "strict: true", "strict: false")).unwrap();
    let (code, out, _) = doctor(&[broken.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(":  why: ") || out.contains("\n  why: "),
        "{out}"
    );
    assert!(out.ends_with(": 1 problem\n"), "{out}");
    let (code, out, _) = doctor(&["--json", broken.to_str().unwrap()]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["problems"][0]["check"], "stateful_session_not_strict");
    assert_eq!(
        v["problems"][0]["line"],
        line_of(&std::fs::read_to_string(&broken).unwrap(), "strict: false")
    );
    for k in ["where", "problem", "why", "fix"] {
        assert!(
            v["problems"][0][k].as_str().is_some_and(|s| !s.is_empty()),
            "{k}"
        );
    }

    std::fs::write(dir.join("rules.yml"), "groups: []\n").unwrap();
    let garbage = dir.join("garbage.yaml");
    std::fs::write(&garbage, "static_resources: [unclosed\n").unwrap();
    for args in [
        vec![garbage.to_str().unwrap()],
        vec![dir.join("missing.yaml").to_str().unwrap()],
        vec![root().join("envoy/istio-wasmplugin.yaml").to_str().unwrap()],
        vec![dir.join("rules.yml").to_str().unwrap()],
        vec![],
        vec!["--bogus", edge_path.to_str().unwrap()],
    ] {
        let (code, _, err) = doctor(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.is_empty(), "{args:?} says why");
    }
    let (code, out, _) = doctor(&["--json", garbage.to_str().unwrap()]);
    assert_eq!(code, 2);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["error"].as_str().unwrap().contains("not valid YAML"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The README's example: oidc-edge added by hand to an existing Envoy.
#[test]
fn a_first_try_gets_every_missing_piece_named() {
    let text = std::fs::read_to_string(root().join("doctor/tests/broken/first-try.yaml")).unwrap();
    let report = diagnose(&text).unwrap();
    assert_eq!(
        report.checks(),
        [
            "use_remote_address_overwrites_proto",
            "internal_header_reaches_app",
            "internal_header_reaches_app",
            "peer_header_not_written",
            "stateful_session_missing",
            "failure_policy",
            "secret_env_not_exposed",
        ],
        "{}",
        report.text("first-try.yaml")
    );
}

/// build.sh names what is wrong with a command line and exits 2, before
/// building or installing anything.
#[test]
fn build_sh_refuses_unknown_commands_and_bad_arguments() {
    let rows: &[(&[&str], &str)] = &[
        (&[], "no command given"),
        (&["frobnicate"], "unknown command: frobnicate"),
        (&["fuzz", "abc"], "fuzz takes a number of seconds"),
        (&["fuzz", "1", "2"], "fuzz takes at most 1"),
        (&["build", "x"], "build takes no arguments"),
        (&["test", "--fast"], "test takes no arguments"),
        (&["demo", "--twice"], "demo takes only --once"),
        (&["doctor"], "doctor needs the Envoy configuration"),
    ];
    for (args, says) in rows {
        let out = Command::new(root().join("build.sh"))
            .args(*args)
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.starts_with(&format!("build.sh: {says}")),
            "{args:?}: {err}"
        );
        assert!(
            err.contains("./build.sh test"),
            "{args:?} shows the usage: {err}"
        );
    }
    let out = Command::new(root().join("build.sh"))
        .arg("help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .contains("./build.sh doctor ENVOY_CONFIG"));
}

/// Every check name in the doctor's sources (`check: "..."`, and the first
/// argument of chain.rs's `push(`).
fn checks_in_sources() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root().join("doctor/src")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for marker in ["check: \"", "push(\n"] {
            for (at, _) in text.match_indices(marker) {
                let rest = text[at + marker.len()..]
                    .trim_start()
                    .trim_start_matches('"');
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if rest[name.len()..].starts_with('"') && !name.is_empty() {
                    out.push(name);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Every reason code the filter can answer with. The matches fail to
/// compile when a variant is added, so the list cannot fall behind.
fn reason_codes() -> Vec<&'static str> {
    use oidc_edge::outcome::{FlowProblem, Reason, ReturnToProblem};
    use oidc_edge::seal::sealed_cookie::CookieError;
    fn cookie(e: CookieError) -> CookieError {
        match e {
            CookieError::Malformed
            | CookieError::TooLarge
            | CookieError::UnknownKey
            | CookieError::BadSignature
            | CookieError::Expired
            | CookieError::WrongState
            | CookieError::NotYetValid
            | CookieError::LifetimeTooLong => e,
        }
    }
    fn flow(p: FlowProblem) -> FlowProblem {
        match p {
            FlowProblem::NoState
            | FlowProblem::Missing
            | FlowProblem::Duplicate
            | FlowProblem::Cookie(_)
            | FlowProblem::NodeGone
            | FlowProblem::OtherNode
            | FlowProblem::InsecureOrigin => p,
        }
    }
    fn reason(r: Reason) -> Reason {
        match r {
            Reason::HostNotAllowed
            | Reason::HostMalformed
            | Reason::Internal
            | Reason::LoginFlow(_)
            | Reason::CallbackBodyTooLarge
            | Reason::RedirectUriMismatch
            | Reason::ReturnTo(_)
            | Reason::IdpInvalidRequest(_) => r,
        }
    }
    let cookies = [
        CookieError::Malformed,
        CookieError::TooLarge,
        CookieError::UnknownKey,
        CookieError::BadSignature,
        CookieError::Expired,
        CookieError::WrongState,
        CookieError::NotYetValid,
        CookieError::LifetimeTooLong,
    ]
    .map(cookie);
    let mut flows = vec![
        FlowProblem::NoState,
        FlowProblem::Missing,
        FlowProblem::Duplicate,
        FlowProblem::NodeGone,
        FlowProblem::OtherNode,
        FlowProblem::InsecureOrigin,
    ];
    flows.extend(cookies.map(FlowProblem::Cookie));
    let mut reasons = vec![
        Reason::HostNotAllowed,
        Reason::HostMalformed,
        Reason::Internal,
        Reason::CallbackBodyTooLarge,
        Reason::RedirectUriMismatch,
        Reason::IdpInvalidRequest("x"),
    ];
    reasons.extend(flows.into_iter().map(|p| Reason::LoginFlow(flow(p))));
    reasons.extend(ReturnToProblem::ALL.map(Reason::ReturnTo));
    reasons.into_iter().map(|r| reason(r).code()).collect()
}

#[test]
fn troubleshooting_lists_every_reason_code_and_every_check() {
    let doc = std::fs::read_to_string(root().join("docs/troubleshooting.md")).unwrap();
    let codes = reason_codes();
    assert_eq!(codes.len(), 24, "{codes:?}");
    for code in codes {
        assert!(
            doc.contains(&format!("| `{code}` |")),
            "docs/troubleshooting.md has no row for {code}"
        );
    }
    let checks = checks_in_sources();
    assert!(checks.len() >= 30, "{checks:?}");
    let tested: Vec<&str> = cases().iter().map(|c| c.check).collect();
    for check in &checks {
        assert!(
            doc.contains(&format!("| `{check}` |")),
            "docs/troubleshooting.md has no row for the check {check}"
        );
        assert!(
            tested.contains(&check.as_str()),
            "no broken configuration yields {check}"
        );
    }
    // Every test the document cites exists.
    let mut cited = 0;
    for (at, _) in doc.match_indices("::") {
        let file: String = doc[..at]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect::<String>()
            .chars()
            .rev()
            .collect();
        let test: String = doc[at + 2..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        // Citations are written `file::test`.
        if test.is_empty() || !doc[..at - file.len()].ends_with('`') {
            continue;
        }
        let src =
            std::fs::read_to_string(root().join(format!("integration-tests/tests/{file}.rs")))
                .unwrap_or_else(|_| panic!("{file}::{test}: no integration-tests/tests/{file}.rs"));
        // (A scenario run once per relying party takes it as a parameter.)
        assert!(
            src.contains(&format!("fn {test}()")) || src.contains(&format!("fn {test}(rp: Rp)")),
            "{file}::{test} does not exist"
        );
        cited += 1;
    }
    assert!(cited >= 20, "only {cited} citations read");
}

#[test]
fn the_readme_shows_the_doctors_real_output_on_the_first_try() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let file = "doctor/tests/broken/first-try.yaml";
    let report = diagnose(&std::fs::read_to_string(root().join(file)).unwrap()).unwrap();
    let shown = format!("$ ./build.sh doctor {file}\n{}```", report.text(file));
    assert!(
        readme.contains(&shown),
        "update the README's example to:\n{shown}"
    );
}

/// edge.yaml with its oidc-edge filter delivered through ECDS, and the
/// resource file (JSON) that holds it.
fn ecds_edge() -> (String, String) {
    let e = edge();
    let doc = oidc_edge_doctor::yaml::parse(&e).unwrap();
    let filters = doc.at(&["static_resources", "listeners"]).unwrap().items()[0]
        .items_at(&["filter_chains"])[0]
        .items_at(&["filters"])[0]
        .items_at(&["typed_config", "http_filters"])
        .to_vec();
    let wasm = filters
        .iter()
        .find(|f| f.str_at(&["name"]) == Some("envoy.filters.http.wasm"))
        .unwrap();
    let resource = serde_json::json!({"resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": "oidc-edge",
        "typed_config": to_json(wasm.get("typed_config").unwrap()),
    }]});
    let bootstrap = replace(
        &e,
        block(&e, "- name: envoy.filters.http.wasm", STATEFUL),
        "          - name: oidc-edge\n            config_discovery:\n              config_source:\n                \
         path_config_source: { path: /etc/envoy/oidc-edge.json }\n              type_urls:\n              \
         - type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm\n",
    );
    (bootstrap, serde_json::to_string_pretty(&resource).unwrap())
}

#[test]
fn a_filter_through_ecds_is_checked_from_its_resource_file() {
    let (bootstrap, resource) = ecds_edge();
    let read = |r: String| move |p: &str| (p == "/etc/envoy/oidc-edge.json").then(|| r.clone());
    let report = oidc_edge_doctor::diagnose_with(&bootstrap, &read(resource.clone())).unwrap();
    assert!(
        report.findings.is_empty() && report.notes.is_empty(),
        "{}",
        report.text("x")
    );
    // Unreadable: checked against the reference header names, and said so.
    let report = diagnose(&bootstrap).unwrap();
    assert!(report.findings.is_empty(), "{}", report.text("x"));
    assert_eq!(report.notes.len(), 1);
    assert!(report.notes[0].contains("--ecds"), "{:?}", report.notes);
    // The resource's plugin configuration is the one checked.
    let broken = replace(&resource, "\\\"callback_paths\\\"", "\\\"callback_path\\\"");
    let report = oidc_edge_doctor::diagnose_with(&bootstrap, &read(broken)).unwrap();
    assert_eq!(
        report.checks(),
        ["plugin_config_invalid"],
        "{}",
        report.text("x")
    );
    let f = &report.findings[0];
    assert_eq!(f.line, line_of(&bootstrap, "- name: oidc-edge"));
    assert!(
        f.place.contains("(ECDS /etc/envoy/oidc-edge.json:"),
        "{}",
        f.place
    );
    let misnamed = replace(
        &resource,
        "\\\"callback_paths\\\": [\\\"/callback\\\"],",
        "\\\"callback_paths\\\": [\\\"/callback\\\"], \\\"session_header\\\": \\\"x-other\\\",",
    );
    let report = oidc_edge_doctor::diagnose_with(&bootstrap, &read(misnamed)).unwrap();
    assert_eq!(
        report.checks(),
        [
            "internal_header_reaches_app",
            "stateful_session_header_mismatch"
        ],
        "{}",
        report.text("x")
    );
}
