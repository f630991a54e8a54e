//! One HTTP connection manager: finds oidc-edge in it and runs every check
//! that concerns the listener (forwarded headers, upgrades, timeouts), the
//! filter chain and the routes.

use crate::plugin::{self, Plugin};
use crate::yaml::{duration_secs, Node};
use crate::{chain, retries, Finding, Report};

/// The connection manager under check, with what its checks need around it.
pub struct Hcm<'a> {
    /// Its `typed_config`.
    pub node: &'a Node,
    /// "listener NAME".
    pub place: &'a str,
    /// Envoy itself terminates TLS on this filter chain.
    pub tls: bool,
    /// The bootstrap's static clusters.
    pub clusters: &'a [Node],
    /// Reads a file the bootstrap names (an ECDS resource), if it can.
    pub read: &'a dyn Fn(&str) -> Option<String>,
}

/// One route of the inline route configuration.
pub struct Route<'a> {
    /// The route entry.
    pub node: &'a Node,
    /// Its virtual host (for a virtual-host-wide retry policy).
    pub vhost: &'a Node,
    /// "listener NAME: route VHOST/NAME".
    pub place: String,
}

impl Hcm<'_> {
    /// Every route of the inline route configuration.
    pub fn routes(&self) -> Vec<Route<'_>> {
        let mut out = Vec::new();
        for vh in self.node.items_at(&["route_config", "virtual_hosts"]) {
            let vname = vh.str_at(&["name"]).unwrap_or("?");
            for (i, r) in vh.items_at(&["routes"]).iter().enumerate() {
                let rname = r
                    .str_at(&["name"])
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("#{i}"));
                out.push(Route {
                    node: r,
                    vhost: vh,
                    place: format!("{}: route {vname}/{rname}", self.place),
                });
            }
        }
        out
    }
}

/// Checks one connection manager; whether it holds oidc-edge.
pub fn check(hcm: &Hcm<'_>, report: &mut Report) -> bool {
    let filters = hcm.node.items_at(&["http_filters"]);
    chain::check_cookie_sessions(hcm, report);
    let Some(at) = filters
        .iter()
        .position(|f| plugin::is_oidc_edge(f) || plugin::ecds_path(f).is_some())
    else {
        return false;
    };
    let Some(f) = filters.get(at) else {
        return false;
    };
    let p = match plugin::ecds_path(f) {
        None => plugin::check(f, hcm.place, report),
        Some(path) => check_ecds(hcm, f, path, report),
    };
    let Some(p) = p else {
        return true;
    };
    chain::check(hcm, at, &p, report);
    check_forwarded(hcm, &p, report);
    check_streams(hcm, report);
    check_discovery_cluster(hcm, &p, report);
    retries::check(hcm, &p, report);
    true
}

/// `discovery.cluster` must name a cluster of this bootstrap: otherwise
/// Envoy refuses every metadata fetch (logged at run time only).
fn check_discovery_cluster(hcm: &Hcm<'_>, p: &Plugin, report: &mut Report) {
    let Some((cluster, line)) = &p.discovery_cluster else {
        return;
    };
    let names: Vec<&str> = hcm
        .clusters
        .iter()
        .filter_map(|c| c.str_at(&["name"]))
        .collect();
    if names.contains(&cluster.as_str()) {
        return;
    }
    report.push(Finding {
        check: "discovery_cluster_missing",
        line: *line,
        place: format!("{}: oidc-edge", hcm.place),
        problem: format!(
            "discovery.cluster is {cluster:?}, which is none of static_resources.clusters ({})",
            names.join(", ")
        ),
        why: "Envoy refuses every fetch of the IdP's metadata, so no authorization endpoint is learned \
              (logins work only on the statically configured ones); the load itself succeeds"
            .into(),
        fix: format!(
            "add a cluster named {cluster:?} that reaches the IdP over TLS (envoy/README.md shows one), \
             or name an existing one in discovery.cluster (clusters delivered by CDS are not seen here)"
        ),
    });
}

/// An oidc-edge filter delivered through ECDS: its configuration is in the
/// resource file, read through `hcm.read`; its findings point at the filter
/// in the bootstrap and name the line in that file.
fn check_ecds(hcm: &Hcm<'_>, f: &Node, path: &str, report: &mut Report) -> Option<Plugin> {
    let name = f.str_at(&["name"]).unwrap_or("oidc-edge");
    let doc = (hcm.read)(path).and_then(|t| crate::yaml::parse(&t).ok());
    let Some(resource) = doc.as_ref().and_then(|d| plugin::ecds_resource(d, name)) else {
        report.notes.push(format!(
            "{}: the oidc-edge configuration comes through ECDS from {path:?}, which could not be read: \
             the filters around it were checked against envoy/edge.yaml's header names (give the file \
             with --ecds FILE)",
            hcm.place
        ));
        return Some(Plugin::reference_defaults());
    };
    let mut own = Report::default();
    let p = plugin::check(resource, hcm.place, &mut own);
    for mut finding in own.findings {
        finding.place = format!("{} (ECDS {path}:{})", finding.place, finding.line);
        finding.line = f.line;
        report.push(finding);
    }
    p
}

fn check_forwarded(hcm: &Hcm<'_>, p: &Plugin, report: &mut Report) {
    let n = hcm.node;
    let place = hcm.place.to_string();
    let remote = n.is_true(&["use_remote_address"]);
    let hops: u64 = n
        .str_at(&["xff_num_trusted_hops"])
        .and_then(|h| h.parse().ok())
        .unwrap_or(0);
    let line_of = |key: &str| n.get(key).map_or(n.line, |v| v.line);
    if p.forwarded && remote && !p.external_origin && !hcm.tls {
        report.push(Finding {
            check: "use_remote_address_overwrites_proto",
            line: line_of("use_remote_address"),
            place: place.clone(),
            problem: "use_remote_address: true on a plain-HTTP listener behind a load balancer".into(),
            why: "Envoy then overwrites the load balancer's X-Forwarded-Proto: https with this hop's \
                  http before oidc-edge runs: the app builds http:// redirect URIs, the IdP refuses \
                  them, and Secure flow cookies are refused over http"
                .into(),
            fix: "use_remote_address: false (oidc-edge reads the true peer from the header_mutation \
                  filter), or set forwarded.external_origin"
                .into(),
        });
    }
    if p.peer_from_source_address && (!remote || hops > 0) {
        let problem = if remote {
            format!("forwarded.peer_address_from is \"source_address\" with xff_num_trusted_hops: {hops}")
        } else {
            "forwarded.peer_address_from is \"source_address\" with use_remote_address: false"
                .into()
        };
        report.push(Finding {
            check: "source_address_spoofable",
            line: line_of(if remote { "xff_num_trusted_hops" } else { "use_remote_address" }),
            place: place.clone(),
            problem,
            why: "Envoy then takes source.address from X-Forwarded-For, which the client writes: a \
                  client names your load balancer's address and is trusted to set every forwarding \
                  header"
                .into(),
            fix: "use the peer header (the default peer_address_from, with the header_mutation \
                  filter of envoy/edge.yaml), or use_remote_address: true with xff_num_trusted_hops: 0"
                .into(),
        });
    }
    let underscores = n.at(&[
        "common_http_protocol_options",
        "headers_with_underscores_action",
    ]);
    if !matches!(
        underscores.and_then(Node::str),
        Some("DROP_HEADER" | "REJECT_REQUEST")
    ) {
        report.push(Finding {
            check: "underscore_headers_allowed",
            line: underscores.map_or_else(|| line_of("common_http_protocol_options"), |u| u.line),
            place,
            problem: "headers with underscores in their names are passed (headers_with_underscores_action \
                      is not DROP_HEADER)"
                .into(),
            why: "a client's X_Forwarded_Host or X_Forwarded_Proto passes every check under its \
                  spelling, and CGI/WSGI-style servers (and some frameworks) read it as \
                  X-Forwarded-Host: the client picks the host of your redirect URIs"
                .into(),
            fix: "common_http_protocol_options: { headers_with_underscores_action: DROP_HEADER }".into(),
        });
    }
}

/// The range each timeout must fall in, and why (envoy/edge.yaml explains
/// the values it sets).
fn check_streams(hcm: &Hcm<'_>, report: &mut Report) {
    let n = hcm.node;
    let place = hcm.place.to_string();
    let websocket = n.items_at(&["upgrade_configs"]).iter().any(|u| {
        u.str_at(&["upgrade_type"])
            .is_some_and(|t| t.eq_ignore_ascii_case("websocket"))
            && u.str_at(&["enabled"]) != Some("false")
    });
    if !websocket {
        report.push(Finding {
            check: "websocket_upgrades_refused",
            line: n.get("upgrade_configs").map_or(n.line, |u| u.line),
            place: place.clone(),
            problem: "no upgrade_configs entry for websocket".into(),
            why: "Envoy answers every WebSocket upgrade 403 before any filter runs, even when the \
                  load balancer passes it"
                .into(),
            fix: "upgrade_configs: [{ upgrade_type: websocket }]".into(),
        });
    }
    let stream_idle = duration_secs(n.get("stream_idle_timeout"));
    if let Some(s) = stream_idle {
        if s == 0.0 || !(60.0..=3600.0).contains(&s) {
            report.push(Finding {
                check: "stream_idle_timeout_out_of_range",
                line: n.get("stream_idle_timeout").map_or(n.line, |v| v.line),
                place: place.clone(),
                problem: if s == 0.0 {
                    "stream_idle_timeout is 0 (off)".into()
                } else {
                    format!("stream_idle_timeout is {s}s, outside 60s to 3600s")
                },
                why: if s < 60.0 && s != 0.0 {
                    "it closes long polls and event streams between two messages (504) and silent \
                     WebSockets while the app still holds them open"
                } else {
                    "silent streams (half-dead WebSockets, stalled clients) hold a connection and \
                     an upstream stream for as long as the peer likes"
                }
                .into(),
                fix: "stream_idle_timeout: 300s, longer than the longest silence your app allows \
                      (heartbeats), and no longer than your load balancer's own idle timeout needs"
                    .into(),
            });
        }
    }
    let idle_node = n.at(&["common_http_protocol_options", "idle_timeout"]);
    if let Some(s) = duration_secs(idle_node) {
        if s != 0.0 && s < 620.0 {
            report.push(Finding {
                check: "idle_timeout_out_of_range",
                line: idle_node.map_or(n.line, |v| v.line),
                place: place.clone(),
                problem: format!("idle_timeout is {s}s, shorter than 620s"),
                why: "Envoy closes idle keep-alive connections before the load balancer does \
                      (AWS ALB keeps them 60 s, Google's 600 s): the load balancer sends the next \
                      request on a connection Envoy is closing and answers the browser 502"
                    .into(),
                fix:
                    "idle_timeout: 3600s (Envoy's default; it never cuts a long poll or WebSocket)"
                        .into(),
            });
        }
    }
    let req = n.get("request_timeout");
    if let Some(s) = duration_secs(req) {
        if s != 0.0 && s < 10.0 {
            report.push(Finding {
                check: "request_timeout_out_of_range",
                line: req.map_or(n.line, |v| v.line),
                place: place.clone(),
                problem: format!("request_timeout is {s}s, shorter than 10s"),
                why: "a slow client's request body (a form_post callback, an upload over a mobile \
                      link) is cut with 408 before it arrives"
                    .into(),
                fix:
                    "request_timeout: 300s (it bounds sending the request only, never a long poll)"
                        .into(),
            });
        }
    }
    let stream_idle = stream_idle.filter(|s| *s > 0.0).unwrap_or(300.0);
    for r in hcm.routes() {
        let Some(action) = r.node.get("route") else {
            continue;
        };
        let timeout = duration_secs(action.get("timeout"));
        let cut = match timeout {
            None => Some(15.0),
            Some(t) if t > 0.0 && t < stream_idle => Some(t),
            Some(_) => None,
        };
        if let Some(t) = cut {
            report.push(Finding {
                check: "route_timeout_cuts_streams",
                line: action.get("timeout").map_or(action.line, |v| v.line),
                place: r.place.clone(),
                problem: if timeout.is_none() {
                    "no route timeout: Envoy's default deadline of 15s applies".into()
                } else {
                    format!(
                        "route timeout {t}s is shorter than stream_idle_timeout ({stream_idle}s)"
                    )
                },
                why: format!(
                    "every response still streaming after {t}s is cut (504), busy or not: long \
                     polls, server-sent events, slow downloads"
                ),
                fix: "timeout: 0s on routes that carry long-lived responses; stream_idle_timeout \
                      still bounds silent ones"
                    .into(),
            });
        }
        if let Some(t) = duration_secs(action.get("idle_timeout")) {
            if t > 0.0 && t < 60.0 {
                report.push(Finding {
                    check: "route_idle_timeout_cuts_streams",
                    line: action.get("idle_timeout").map_or(action.line, |v| v.line),
                    place: r.place.clone(),
                    problem: format!("route idle_timeout is {t}s (it replaces stream_idle_timeout on this route)"),
                    why: "long polls, event streams and WebSockets that are silent for that long are \
                          closed while the app still holds them open"
                        .into(),
                    fix: "remove the route's idle_timeout, or make it at least 60s and longer than \
                          your app's heartbeat interval"
                        .into(),
                });
            }
        }
    }
}
