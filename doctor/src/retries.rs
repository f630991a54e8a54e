//! Retry policies: the cluster's retry circuit breaker, and retries of
//! requests the app has already seen on routes that carry pinned requests.

use crate::listener::Hcm;
use crate::plugin::Plugin;
use crate::yaml::Node;
use crate::{Finding, Report};

/// Retry conditions under which the request never reached the app, so a
/// retry cannot run it twice.
const BEFORE_THE_APP: [&str; 5] = [
    "connect-failure",
    "refused-stream",
    "reset-before-request",
    "http3-post-connect-failure",
    "envoy-ratelimited",
];

/// The clusters a route sends to.
fn clusters_of(action: &Node) -> Vec<&str> {
    let mut out: Vec<&str> = action.str_at(&["cluster"]).into_iter().collect();
    out.extend(
        action
            .items_at(&["weighted_clusters", "clusters"])
            .iter()
            .filter_map(|c| c.str_at(&["name"])),
    );
    out
}

/// Whether a route's match can carry one of the callback paths.
fn carries(route: &Node, paths: &[String]) -> bool {
    let Some(m) = route.get("match") else {
        return false;
    };
    if let Some(p) = m
        .str_at(&["prefix"])
        .or(m.str_at(&["path_separated_prefix"]))
    {
        return paths.iter().any(|c| c.starts_with(p));
    }
    if let Some(p) = m.str_at(&["path"]) {
        return paths.iter().any(|c| c == p);
    }
    // A regex or a path template: assume it may.
    true
}

/// Checks every route with a retry policy.
pub fn check(hcm: &Hcm<'_>, p: &Plugin, report: &mut Report) {
    for r in hcm.routes() {
        let Some(action) = r.node.get("route") else {
            continue;
        };
        let Some(policy) = action.get("retry_policy").or(r.vhost.get("retry_policy")) else {
            continue;
        };
        for name in clusters_of(action) {
            let Some(c) = hcm
                .clusters
                .iter()
                .find(|c| c.str_at(&["name"]) == Some(name))
            else {
                continue;
            };
            let sized = c
                .items_at(&["circuit_breakers", "thresholds"])
                .iter()
                .filter(|t| matches!(t.str_at(&["priority"]), None | Some("DEFAULT")))
                .any(|t| t.get("max_retries").is_some() || t.get("retry_budget").is_some());
            if !sized {
                report.push(Finding {
                    check: "default_retry_circuit_breaker",
                    line: c.get("circuit_breakers").map_or(c.line, |n| n.line),
                    place: format!("cluster {name}"),
                    problem: format!(
                        "routes retry into this cluster, but it keeps Envoy's default retry circuit \
                         breaker (max_retries 3) ({})",
                        r.place
                    ),
                    why: "at most 3 retries run at once across the cluster: when a node dies under \
                          load, the 4th concurrent retry is answered 503 at once \
                          (upstream_rq_retry_overflow), so users who were not pinned to that node \
                          fail too"
                        .into(),
                    fix: "circuit_breakers: { thresholds: [{ max_retries: N }] } with N at least the \
                          requests in flight to one node at peak (or a retry_budget)"
                        .into(),
                });
            }
        }
        let pinned = p.session_header.is_some()
            && (p.session_affinity || carries(r.node, &p.callback_paths));
        if !pinned {
            continue;
        }
        let retry_on = policy.str_at(&["retry_on"]).unwrap_or("");
        let after: Vec<&str> = retry_on
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty() && !BEFORE_THE_APP.contains(c))
            .collect();
        if !after.is_empty() {
            report.push(Finding {
                check: "retries_on_pinned_route",
                line: policy.get("retry_on").map_or(policy.line, |n| n.line),
                place: r.place.clone(),
                problem: format!(
                    "the route carries pinned requests ({}) and retries on {}",
                    if p.session_affinity {
                        "affinity: session pins every request"
                    } else {
                        "login callbacks"
                    },
                    after.join(",")
                ),
                why: "these conditions retry a request the app has already received. oidc-edge \
                      turns retries off for the requests it pins (x-envoy-max-retries: 0), but not \
                      for those it does not (report mode, or whenever the filter does not run): a \
                      callback then redeems its one-time authorization code twice (the second \
                      redemption fails at the IdP with invalid_grant), or lands on a node where the \
                      login or session does not exist"
                    .into(),
                fix: "retry_on: connect-failure (with the previous_hosts predicate), as in \
                      envoy/edge.yaml: the request never reached the refusing node"
                    .into(),
            });
        }
    }
}
