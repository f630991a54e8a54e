//! The HTTP filter chain around oidc-edge: the peer `header_mutation`
//! before it, `stateful_session` after it, the router last, and the
//! internal headers kept from the app.

use crate::listener::Hcm;
use crate::plugin::Plugin;
use crate::yaml::Node;
use crate::{type_is, Finding, Report};

const HEADER_MUTATION: &str = "envoy.filters.http.header_mutation";
const STATEFUL_SESSION: &str = "envoy.filters.http.stateful_session";
const ROUTER: &str = "envoy.filters.http.router";

fn is(f: &Node, name: &str, type_name: &str) -> bool {
    f.str_at(&["name"]) == Some(name) || type_is(f.get("typed_config"), type_name)
}

fn session_state(f: &Node) -> Option<&Node> {
    f.at(&["typed_config", "session_state"])
}

fn is_cookie_state(s: &Node) -> bool {
    s.str_at(&["name"]) == Some("envoy.http.stateful_session.cookie")
        || type_is(s.get("typed_config"), "CookieBasedSessionState")
}

/// Envoy's cookie-based session state anywhere: it is unsigned.
pub fn check_cookie_sessions(hcm: &Hcm<'_>, report: &mut Report) {
    for f in hcm.node.items_at(&["http_filters"]) {
        if !is(f, STATEFUL_SESSION, "StatefulSession") {
            continue;
        }
        if let Some(s) = session_state(f).filter(|s| is_cookie_state(s)) {
            report.push(Finding {
                check: "stateful_session_cookie",
                line: s.line,
                place: hcm.place.to_string(),
                problem: "stateful_session uses Envoy's cookie-based session state".into(),
                why: "that cookie is base64 of the upstream address and an expiry, unsigned: a \
                      browser can forge it to pick any node (a far expiry is honoured) and it shows \
                      your internal addresses to every browser"
                    .into(),
                fix: "envoy.http.stateful_session.header with the header oidc-edge writes \
                      (login_flow.session_header, default x-oidc-edge-node): oidc-edge pins from \
                      its sealed cookie; set \"affinity\": \"session\" for in-memory sessions"
                    .into(),
            });
        }
    }
}

/// The order and settings of the filters around oidc-edge at index `at`.
pub fn check(hcm: &Hcm<'_>, at: usize, p: &Plugin, report: &mut Report) {
    let filters = hcm.node.items_at(&["http_filters"]);
    let list_line = hcm
        .node
        .get("http_filters")
        .map_or(hcm.node.line, |n| n.line);
    let place = hcm.place.to_string();
    let mut push = |check, line, problem: String, why: &str, fix: &str| {
        report.push(Finding {
            check,
            line,
            place: place.clone(),
            problem,
            why: why.into(),
            fix: fix.into(),
        })
    };

    if let Some(h) = &p.peer_header {
        let writers: Vec<(usize, &Node)> = filters
            .iter()
            .enumerate()
            .filter(|(_, f)| is(f, HEADER_MUTATION, "HeaderMutation"))
            .flat_map(|(i, f)| {
                f.items_at(&["typed_config", "mutations", "request_mutations"])
                    .iter()
                    .filter_map(|m| m.get("append"))
                    .filter(|a| {
                        a.str_at(&["header", "key"])
                            .is_some_and(|k| k.eq_ignore_ascii_case(h))
                    })
                    .map(move |a| (i, a))
            })
            .collect();
        match writers.first() {
            None => push(
                "peer_header_not_written",
                list_line,
                format!("no header_mutation filter writes {h} before oidc-edge"),
                "oidc-edge learns the direct TCP peer from that header: without it every request \
                 is untrusted (peer_unverified/peer_unknown), the load balancer's X-Forwarded-Proto \
                 is removed, and the app builds http:// redirect URIs the IdP refuses",
                "add envoy.filters.http.header_mutation before oidc-edge, appending the header with \
                 %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%;%ENVIRONMENT(OIDC_EDGE_PEER_TOKEN)% \
                 and append_action: OVERWRITE_IF_EXISTS_OR_ADD (envoy/edge.yaml)",
            ),
            Some((i, a)) => {
                if *i > at {
                    push(
                        "header_mutation_after_oidc_edge",
                        filters.get(*i).map_or(list_line, |f| f.line),
                        format!("the header_mutation filter writing {h} runs after oidc-edge"),
                        "oidc-edge reads the peer header before it is written: every request is \
                         untrusted, or trusted on a client's own copy of the header",
                        "move the header_mutation filter before the oidc-edge wasm filter",
                    );
                }
                let action = a.str_at(&["append_action"]);
                if action != Some("OVERWRITE_IF_EXISTS_OR_ADD") {
                    push(
                        "peer_header_appended",
                        a.get("append_action").map_or(a.line, |n| n.line),
                        format!(
                            "{h} is written with append_action {}",
                            action.unwrap_or("APPEND_IF_EXISTS_OR_ADD (the default)")
                        ),
                        "a client-sent copy of the header survives beside Envoy's: only the peer \
                         token then keeps a client from naming your load balancer as its peer (and \
                         with peer_token_env null nothing does)",
                        "append_action: OVERWRITE_IF_EXISTS_OR_ADD",
                    );
                }
                let value = a.str_at(&["header", "value"]).unwrap_or("");
                let vline = a.at(&["header", "value"]).map_or(a.line, |n| n.line);
                if !value.starts_with("%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%") {
                    push(
                        "peer_header_not_direct",
                        vline,
                        format!("{h} is {value:?}, not the direct peer address"),
                        "only %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% is the TCP peer: \
                         %DOWNSTREAM_REMOTE_ADDRESS...% follows X-Forwarded-For or the PROXY \
                         protocol, which the client writes",
                        "value: \"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%;%ENVIRONMENT(OIDC_EDGE_PEER_TOKEN)%\"",
                    );
                }
                if let Some(t) = &p.peer_token_env {
                    if !value.contains(&format!(";%ENVIRONMENT({t})%")) {
                        push(
                            "peer_header_without_token",
                            vline,
                            format!("{h} does not end with ;%ENVIRONMENT({t})%"),
                            "oidc-edge believes the peer header only with the token after the \
                             address: every request is untrusted (peer_unverified) and the app \
                             builds http:// redirect URIs",
                            "append ;%ENVIRONMENT(OIDC_EDGE_PEER_TOKEN)% to the value (the variable \
                             named by forwarded.peer_token_env)",
                        );
                    }
                }
            }
        }
    }

    if let Some(session) = &p.session_header {
        let sessions: Vec<(usize, &Node)> = filters
            .iter()
            .enumerate()
            .filter(|(_, f)| is(f, STATEFUL_SESSION, "StatefulSession"))
            .collect();
        match sessions.first() {
            None => push(
                "stateful_session_missing",
                list_line,
                "login_flow is on but no stateful_session filter follows oidc-edge".into(),
                "nothing routes on the node oidc-edge writes into the session header: callbacks go \
                 wherever the load balancing points, land on nodes that never started the login, \
                 and the app refuses them (state mismatch)",
                "add envoy.filters.http.stateful_session after oidc-edge, with \
                 envoy.http.stateful_session.header named like login_flow.session_header and \
                 strict: true (envoy/edge.yaml)",
            ),
            Some((i, f)) => {
                let fline = f.line;
                if *i < at {
                    push(
                        "stateful_session_before_oidc_edge",
                        fline,
                        "stateful_session runs before oidc-edge".into(),
                        "it picks the upstream before oidc-edge writes the pinned node: callbacks \
                         go wherever the load balancing points and the app refuses them",
                        "move stateful_session after the oidc-edge wasm filter (before the router)",
                    );
                }
                let state = session_state(f);
                match state {
                    Some(s) if is_cookie_state(s) => {} // reported by check_cookie_sessions
                    Some(s)
                        if s.str_at(&["name"]) == Some("envoy.http.stateful_session.header")
                            || type_is(s.get("typed_config"), "HeaderBasedSessionState") =>
                    {
                        let name = s.str_at(&["typed_config", "name"]).unwrap_or("");
                        if !name.eq_ignore_ascii_case(session) {
                            push(
                                "stateful_session_header_mismatch",
                                s.at(&["typed_config", "name"]).map_or(s.line, |n| n.line),
                                format!(
                                    "stateful_session reads {name:?}, oidc-edge writes {session:?} \
                                     (login_flow.session_header)"
                                ),
                                "the pinned node is never read: callbacks go wherever the load \
                                 balancing points and the app refuses them",
                                "give both the same header name (default x-oidc-edge-node)",
                            );
                        }
                    }
                    _ => push(
                        "stateful_session_missing",
                        fline,
                        "stateful_session has no header-based session state".into(),
                        "nothing routes on the node oidc-edge writes into the session header: \
                         callbacks go wherever the load balancing points",
                        "session_state: envoy.http.stateful_session.header (HeaderBasedSessionState) \
                         named like login_flow.session_header",
                    ),
                }
                if !f.is_true(&["typed_config", "strict"]) {
                    push(
                        "stateful_session_not_strict",
                        f.at(&["typed_config", "strict"]).map_or(fline, |n| n.line),
                        "stateful_session is not strict".into(),
                        "a callback pinned to a node that is gone silently goes to another node, \
                         which cannot finish the login (the app refuses it); with strict Envoy \
                         answers 503 and oidc-edge restarts the login on a live node",
                        "strict: true",
                    );
                }
            }
        }
    }

    let last = filters.last();
    if !last.is_some_and(|f| is(f, ROUTER, "Router")) {
        push(
            "router_not_last",
            last.map_or(list_line, |f| f.line),
            "the router is not the last HTTP filter".into(),
            "Envoy refuses a chain whose terminal filter is not last, and a filter after the \
             router never runs",
            "put envoy.filters.http.router last",
        );
    }

    let mut internal = Vec::new();
    if let Some(s) = &p.session_header {
        internal.push(s.as_str());
    }
    if let Some(h) = &p.peer_header {
        internal.push(h.as_str());
    }
    let rc = hcm.node.get("route_config");
    let removes = |n: Option<&Node>, h: &str| {
        n.map(|n| n.items_at(&["request_headers_to_remove"]))
            .unwrap_or(&[])
            .iter()
            .any(|x| x.str().is_some_and(|x| x.eq_ignore_ascii_case(h)))
    };
    let Some(rc) = rc else { return };
    for h in internal {
        let everywhere = removes(Some(rc), h)
            || rc.items_at(&["virtual_hosts"]).iter().all(|vh| {
                removes(Some(vh), h) || vh.items_at(&["routes"]).iter().all(|r| removes(Some(r), h))
            });
        if !everywhere {
            let why = if p.session_header.as_deref() == Some(h) {
                "stateful_session leaves the header on the request: the pinned node's internal \
                 address reaches the app, and a client-sent copy does too whenever oidc-edge does not \
                 run (a failure policy, a route without it)"
            } else {
                "oidc-edge removes the peer header itself, but whenever it does not run (a failure \
                 policy, a route without it) the app receives the peer token that vouches for your \
                 load balancer"
            };
            push(
                "internal_header_reaches_app",
                rc.line,
                format!("{h} is not in route_config.request_headers_to_remove"),
                why,
                "route_config: { request_headers_to_remove: [x-oidc-edge-node, x-oidc-edge-peer] }",
            );
        }
    }
}
