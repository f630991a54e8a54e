//! The oidc-edge wasm filter itself: its plugin configuration (checked by
//! the filter's own parser), where its secrets come from, and its failure
//! policy.

use crate::yaml::{self, Node};
use crate::{Finding, Report};
use ipnet::IpNet;
use oidc_edge::config::Config;
use oidc_edge::forwarded::config::PeerSource;
use oidc_edge::login_flow::config::Affinity;
use std::cell::RefCell;

/// A stand-in for every secret the parser asks the environment for: the
/// doctor never sees the real ones. 32 bytes in base64, as
/// `openssl rand -base64 32` gives, so it passes both the key and the
/// peer-token checks and only the configuration's own errors remain.
const PLACEHOLDER_SECRET: &str = "b2lkYy1lZGdlLWRvY3Rvci1wbGFjZWhvbGRlci0wMDA=";

/// What the rest of the chain must agree with, from a plugin configuration
/// that parsed.
#[derive(Debug, Default)]
pub struct Plugin {
    /// The header header_mutation must write the direct peer into, when
    /// oidc-edge trusts some peer and reads it from a header.
    pub peer_header: Option<String>,
    /// The environment variable whose value must follow the peer address.
    pub peer_token_env: Option<String>,
    /// The peer is Envoy's `source.address`.
    pub peer_from_source_address: bool,
    /// `forwarded` is on.
    pub forwarded: bool,
    /// The external scheme comes from the configuration, never from
    /// `X-Forwarded-Proto` (`external_origin`, or TCP load balancers only).
    pub external_origin: bool,
    /// `login_flow` is on: stateful_session must read this header.
    pub session_header: Option<String>,
    /// Every request of a logged-in browser is pinned.
    pub session_affinity: bool,
    /// `login_flow.callback_paths` as written.
    pub callback_paths: Vec<String>,
    /// `discovery.cluster`, which must be a cluster of this bootstrap,
    /// and its line.
    pub discovery_cluster: Option<(String, usize)>,
}

/// Whether an HTTP filter is the oidc-edge wasm filter (by its names or its
/// module's file name).
pub fn is_oidc_edge(f: &Node) -> bool {
    let wasm = f.str_at(&["name"]) == Some("envoy.filters.http.wasm")
        || crate::type_is(f.get("typed_config"), "Wasm");
    if !wasm {
        return false;
    }
    let c = f.at(&["typed_config", "config"]);
    let names = [
        c.and_then(|c| c.str_at(&["name"])),
        c.and_then(|c| c.str_at(&["root_id"])),
        c.and_then(|c| c.str_at(&["vm_config", "vm_id"])),
        c.and_then(|c| c.str_at(&["vm_config", "code", "local", "filename"])),
        c.and_then(|c| c.str_at(&["vm_config", "code", "remote", "http_uri", "uri"])),
    ];
    names
        .iter()
        .flatten()
        .any(|n| n.contains("oidc-edge") || n.contains("oidc_edge"))
}

/// Where an oidc-edge filter delivered through ECDS (`config_discovery`
/// with the wasm type) reads its configuration from, if it is one.
pub fn ecds_path(f: &Node) -> Option<&str> {
    let d = f.get("config_discovery")?;
    let wasm = d
        .items_at(&["type_urls"])
        .iter()
        .filter_map(Node::str)
        .any(|t| t.ends_with(".Wasm"));
    let named = f
        .str_at(&["name"])
        .is_some_and(|n| n.contains("oidc-edge") || n.contains("oidc_edge"));
    if !(wasm && named) {
        return None;
    }
    d.str_at(&["config_source", "path_config_source", "path"])
        .or(d.str_at(&["config_source", "path"]))
        .or(Some(""))
}

/// The resource named `name` (else the first) of an ECDS discovery
/// response: a `TypedExtensionConfig` whose `typed_config` is the filter's.
pub fn ecds_resource<'a>(doc: &'a Node, name: &str) -> Option<&'a Node> {
    let rs = doc.items_at(&["resources"]);
    rs.iter()
        .find(|r| r.str_at(&["name"]) == Some(name))
        .or(rs.first())
}

impl Plugin {
    /// What the chain is checked against when the configuration cannot be
    /// read: envoy/edge.yaml's header names, forwarded and login_flow on.
    pub fn reference_defaults() -> Plugin {
        Plugin {
            peer_header: Some(oidc_edge::forwarded::config::DEFAULT_PEER_HEADER.into()),
            peer_token_env: Some(oidc_edge::forwarded::config::DEFAULT_PEER_TOKEN_ENV.into()),
            forwarded: true,
            session_header: Some(oidc_edge::login_flow::config::DEFAULT_SESSION_HEADER.into()),
            ..Plugin::default()
        }
    }
}

/// Checks one oidc-edge filter; `None` when its configuration does not
/// parse (the chain checks then have nothing to agree with).
pub fn check(f: &Node, place: &str, report: &mut Report) -> Option<Plugin> {
    let config = f.at(&["typed_config", "config"]).unwrap_or(f);
    let place = format!("{place}: oidc-edge");
    check_failure_policy(config, &place, report);

    let env = config.at(&["vm_config", "environment_variables"]);
    let host_keys: Vec<&str> = env
        .map(|e| {
            e.items_at(&["host_env_keys"])
                .iter()
                .filter_map(Node::str)
                .collect()
        })
        .unwrap_or_default();
    let key_values = env.and_then(|e| e.get("key_values"));

    let value = config.at(&["configuration", "value"]);
    let text = value.and_then(Node::str).unwrap_or("");
    let base = value.map_or(config.line, Node::content_line);
    // The plugin JSON with its own lines, shifted to the bootstrap's when
    // it is a block scalar (a quoted string's lines are not the file's).
    let tree = yaml::parse(text).ok();
    let block = value.is_some_and(Node::is_block);
    let line_of = |field: &str| -> usize {
        match &tree {
            Some(t) if block => base + t.along(field).0.line.saturating_sub(1),
            _ => base,
        }
    };

    let asked = RefCell::new(Vec::<String>::new());
    let parsed = Config::parse_with_env(text.as_bytes(), &|name| {
        asked.borrow_mut().push(name.to_string());
        Some(PLACEHOLDER_SECRET.to_string())
    });
    let config_parsed = match parsed {
        Ok(c) => c,
        Err(e) => {
            report.push(Finding {
                check: "plugin_config_invalid",
                line: line_of(&e.field),
                place: place.clone(),
                problem: format!("{}: {}", e.field, e.message),
                why: "Envoy refuses this configuration at load with this very error, so the \
                      listener never starts"
                    .into(),
                fix: "correct the field as the message says (docs/configuration.md lists every field)"
                    .into(),
            });
            return None;
        }
    };

    for name in asked.borrow().iter() {
        let line = env.map_or(config.line, |e| e.line);
        if key_values.and_then(|kv| kv.get(name)).is_some() {
            report.push(Finding {
                check: "inline_secret",
                line: key_values.map_or(line, |kv| kv.line),
                place: place.clone(),
                problem: format!(
                    "the secret {name} is written in environment_variables.key_values"
                ),
                why:
                    "the signing key or peer token then lives in this file (and every copy, backup \
                      and config dump of it): whoever reads it can forge flow cookies or name a \
                      trusted peer"
                        .into(),
                fix: format!(
                    "remove {name} from key_values, list it in host_env_keys and set it in Envoy's \
                     environment (openssl rand -base64 32)"
                ),
            });
        } else if !host_keys.contains(&name.as_str()) {
            report.push(Finding {
                check: "secret_env_not_exposed",
                line,
                place: place.clone(),
                problem: format!("{name} is read by the plugin but is not in vm_config.environment_variables.host_env_keys"),
                why: format!(
                    "the Wasm VM sees only the variables host_env_keys lists: Envoy refuses the \
                     configuration at load (environment variable \"{name}\" is not set in the Wasm VM)"
                ),
                fix: format!("add {name} to host_env_keys, and set it in Envoy's environment"),
            });
        }
    }
    let json = tree.as_ref();
    if let Some(keys) = json.and_then(|t| t.at(&["login_flow", "keys"])) {
        for (i, k) in keys.items().iter().enumerate() {
            if k.get("secret").is_some() {
                report.push(Finding {
                    check: "inline_secret",
                    line: line_of(&format!("login_flow.keys[{i}].secret")),
                    place: place.clone(),
                    problem: format!("login_flow.keys[{i}].secret is written in the configuration"),
                    why: "the signing key then lives in this file (and every copy, backup and config \
                          dump of it): whoever reads it can forge flow cookies that pin callbacks \
                          to any node"
                        .into(),
                    fix: "use \"secret_env\": \"OIDC_EDGE_KEY_1\", list the variable in host_env_keys \
                          and set it in Envoy's environment (openssl rand -base64 32)"
                        .into(),
                });
            }
        }
    }
    for w in config_parsed.warnings() {
        // The inline secret has its own finding above; whether
        // source_address is the true peer is checked against the
        // connection manager's settings (source_address_spoofable).
        if w.contains(".secret is inline in the configuration")
            || w.contains("peer_address_from is \"source_address\"")
        {
            continue;
        }
        report.push(Finding {
            check: "plugin_config_warning",
            line: base,
            place: place.clone(),
            problem: w,
            why: "oidc-edge logs this at load: the configuration loads but does not do what a \
                  deployment behind a load balancer needs"
                .into(),
            fix: "change the setting the warning names".into(),
        });
    }
    if let Some(cidrs) = json.and_then(|t| t.at(&["forwarded", "trusted_cidrs"])) {
        for (i, c) in cidrs.items().iter().enumerate() {
            let Some(net) = c.str().and_then(parse_net) else {
                continue;
            };
            if let Some(range) = too_wide(&net) {
                report.push(Finding {
                    check: "trusted_cidrs_too_wide",
                    line: line_of(&format!("forwarded.trusted_cidrs[{i}]")),
                    place: place.clone(),
                    problem: format!("forwarded.trusted_cidrs[{i}] is {net}, which covers {range}"),
                    why:
                        "every address in it is a trusted proxy: an internal client (another pod, \
                          a VM, a compromised host) that reaches Envoy directly can send \
                          X-Forwarded-Proto/-For of its choosing and be believed"
                            .into(),
                    fix: "list only your load balancers' own subnets (e.g. 10.0.1.0/24)".into(),
                });
            }
        }
    }

    let mut p = Plugin::default();
    if let Some(fw) = &config_parsed.forwarded {
        p.forwarded = true;
        // The scheme comes from the configuration, not X-Forwarded-Proto:
        // a fixed external origin (or one per host), or only TCP load
        // balancers with their configured scheme.
        let raw = |k: &str| json.and_then(|t| t.at(&["forwarded", k]));
        let http_lbs = raw("trusted_cidrs").is_some_and(|c| !c.items().is_empty())
            || raw("trusted_hops")
                .and_then(Node::str)
                .is_some_and(|h| h != "0");
        p.external_origin = fw.external_origin.is_some()
            || raw("external_origins").is_some()
            || (raw("tcp_load_balancers").is_some() && !http_lbs);
        // A peer token is required exactly when some peer is trusted (the
        // parser decides, whatever section names the trusted peers).
        let trusts = fw.peer_token.is_some() || !fw.trusted_cidrs.is_empty() || fw.trusted_hops > 0;
        match &fw.peer {
            PeerSource::Header(h) if trusts => {
                p.peer_header = Some(h.clone());
                p.peer_token_env = fw.peer_token.as_ref().and_then(|_| {
                    match json.and_then(|t| t.at(&["forwarded", "peer_token_env"])) {
                        Some(n) => n.str().map(str::to_string),
                        None => {
                            Some(oidc_edge::forwarded::config::DEFAULT_PEER_TOKEN_ENV.to_string())
                        }
                    }
                });
            }
            PeerSource::Header(_) => {}
            PeerSource::SourceAddress => p.peer_from_source_address = trusts,
        }
    }
    if let Some(d) = &config_parsed.discovery {
        p.discovery_cluster = Some((d.cluster.clone(), line_of("discovery.cluster")));
    }
    if let Some(lf) = &config_parsed.login_flow {
        p.session_header = Some(lf.session_header.clone());
        p.session_affinity = lf.affinity == Affinity::Session;
        p.callback_paths = json
            .map(|t| t.items_at(&["login_flow", "callback_paths"]))
            .unwrap_or(&[])
            .iter()
            .filter_map(Node::str)
            .map(str::to_string)
            .collect();
    }
    Some(p)
}

fn check_failure_policy(config: &Node, place: &str, report: &mut Report) {
    let policy = config.get("failure_policy");
    let fail_open = config.is_true(&["fail_open"]);
    let got = policy.and_then(Node::str);
    if got == Some("FAIL_RELOAD") && !fail_open {
        return;
    }
    let (problem, why) = match got {
        _ if fail_open => (
            "fail_open: true".to_string(),
            "after one fault of the module every request on that worker skips oidc-edge for the \
             rest of Envoy's life: callbacks go unpinned and client-sent forwarding headers reach \
             the app",
        ),
        Some("FAIL_OPEN") => (
            "failure_policy is FAIL_OPEN".to_string(),
            "after one fault of the module every request on that worker skips oidc-edge for the \
             rest of Envoy's life: callbacks go unpinned and client-sent forwarding headers reach \
             the app",
        ),
        Some(other) => (
            format!("failure_policy is {other}"),
            "after one fault of the module every request on that worker is answered 503 until \
             Envoy restarts",
        ),
        None => (
            "failure_policy is not set (Envoy's default fails closed)".to_string(),
            "after one fault of the module every request on that worker is answered 503 until \
             Envoy restarts",
        ),
    };
    report.push(Finding {
        check: "failure_policy",
        line: policy.map_or(config.line, |p| p.line),
        place: place.to_string(),
        problem,
        why: why.into(),
        fix: "failure_policy: FAIL_RELOAD (the VM is reloaded on the next request)".into(),
    });
}

fn parse_net(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// The private range (or "every address") a trusted CIDR covers whole, if
/// any: a load balancer's subnet is far narrower.
fn too_wide(net: &IpNet) -> Option<&'static str> {
    const RANGES: [(&str, &str); 6] = [
        ("10.0.0.0/8", "all of 10.0.0.0/8 (RFC 1918)"),
        ("172.16.0.0/12", "all of 172.16.0.0/12 (RFC 1918)"),
        ("192.168.0.0/16", "all of 192.168.0.0/16 (RFC 1918)"),
        (
            "100.64.0.0/10",
            "all of 100.64.0.0/10 (shared address space)",
        ),
        ("fc00::/7", "all of fc00::/7 (unique local addresses)"),
        ("fe80::/10", "all of fe80::/10 (link-local addresses)"),
    ];
    if net.prefix_len() == 0 {
        return Some("every address");
    }
    for (r, what) in RANGES {
        if let Ok(r) = r.parse::<IpNet>() {
            if net.contains(&r) {
                return Some(what);
            }
        }
    }
    match net {
        IpNet::V4(n) if n.prefix_len() < 8 => Some("more than a /8"),
        IpNet::V6(n) if n.prefix_len() < 7 => Some("more than a /7"),
        _ => None,
    }
}
