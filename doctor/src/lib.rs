//! oidc-edge-doctor: reads an Envoy bootstrap and reports the settings
//! around the oidc-edge filter that break OpenID Connect logins behind a
//! load balancer, each with its line, why it breaks logins and the fix.
//!
//! The checks follow the reference configuration (`envoy/edge.yaml`) and
//! the Envoy behaviour its tests show; `docs/troubleshooting.md` and the
//! README list them. The plugin configuration is checked by the filter's
//! own parser, so its errors are the ones Envoy would log at load.

mod chain;
mod listener;
mod plugin;
mod report;
mod retries;
pub mod yaml;

pub use report::{Finding, Report};
use yaml::Node;

/// Checks a bootstrap given as YAML or JSON text. `Err` when it cannot be
/// read as an Envoy bootstrap at all (exit code 2).
pub fn diagnose(text: &str) -> Result<Report, String> {
    diagnose_with(text, &|_| None)
}

/// Like [`diagnose`], reading the files the bootstrap names (an ECDS
/// resource holding the oidc-edge filter) through `read`.
pub fn diagnose_with(text: &str, read: &dyn Fn(&str) -> Option<String>) -> Result<Report, String> {
    let doc = yaml::parse(text).map_err(|e| format!("not valid YAML or JSON: {e}"))?;
    if !matches!(doc.kind, yaml::Kind::Map(_)) {
        return Err("not an Envoy bootstrap: the top level is not a mapping".to_string());
    }
    if let Some(kind) = doc.str_at(&["kind"]) {
        return Err(format!(
            "not an Envoy bootstrap but a Kubernetes manifest (kind: {kind}); give the Envoy configuration itself"
        ));
    }
    if doc.get("static_resources").is_none() && doc.get("dynamic_resources").is_none() {
        return Err(
            "not an Envoy bootstrap: it has neither static_resources nor dynamic_resources"
                .to_string(),
        );
    }
    let mut report = Report::default();
    let clusters = doc.items_at(&["static_resources", "clusters"]);
    let mut wasm_found = false;
    for (li, l) in doc
        .items_at(&["static_resources", "listeners"])
        .iter()
        .enumerate()
    {
        let lname = l
            .str_at(&["name"])
            .map(str::to_string)
            .unwrap_or_else(|| format!("#{li}"));
        let chains = l
            .items_at(&["filter_chains"])
            .iter()
            .chain(l.get("default_filter_chain"));
        for fc in chains {
            for f in fc.items_at(&["filters"]) {
                if !is_hcm(f) {
                    continue;
                }
                let Some(hcm) = f.get("typed_config") else {
                    continue;
                };
                let place = format!("listener {lname}");
                let hcm_ctx = listener::Hcm {
                    node: hcm,
                    place: &place,
                    tls: fc.get("transport_socket").is_some(),
                    clusters,
                    read,
                };
                wasm_found |= listener::check(&hcm_ctx, &mut report);
            }
        }
    }
    if !wasm_found {
        report.push(Finding {
            check: "no_oidc_edge_filter",
            line: doc
                .at(&["static_resources", "listeners"])
                .map_or(1, |n| n.line),
            place: "bootstrap".into(),
            problem: "no HTTP connection manager in static_resources has the oidc-edge wasm filter".into(),
            why: "without it nothing pins login callbacks to their node or corrects the forwarded \
                  headers, so logins behind the load balancer fail at random (listeners from xDS are \
                  not checked)"
                .into(),
            fix: "add the envoy.filters.http.wasm filter with the oidc-edge module, as in envoy/edge.yaml".into(),
        });
    }
    report.sort();
    Ok(report)
}

/// Whether a network filter is the HTTP connection manager.
fn is_hcm(f: &Node) -> bool {
    f.str_at(&["name"]) == Some("envoy.filters.network.http_connection_manager")
        || type_is(f.get("typed_config"), "HttpConnectionManager")
}

/// Whether a `typed_config` has an `@type` ending in `.name`.
fn type_is(typed_config: Option<&Node>, name: &str) -> bool {
    typed_config
        .and_then(|t| t.str_at(&["@type"]))
        .is_some_and(|t| t.rsplit('.').next() == Some(name))
}
