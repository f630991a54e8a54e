//! The dependency rule of `src/lib.rs`, checked on the sources: which
//! top-level module may use which, and no cycles. A new `use` that breaks
//! the layering fails here, not in a review.

#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // a test file

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module and what it may depend on (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("text", &[]),
    ("http", &["text"]),
    ("metrics", &["text"]),
    ("seal", &["text"]),
    ("config::field", &["http", "text"]),
    // The JSON tree and the typed readers every section's config.rs uses.
    ("config::read", &["config::field", "text"]),
    ("outcome", &["http", "metrics", "seal", "text"]),
    (
        "forwarded",
        &[
            "config::field",
            "config::read",
            "http",
            "metrics",
            "outcome",
            "text",
        ],
    ),
    (
        "idp",
        &[
            "config::field",
            "config::read",
            "http",
            "metrics",
            "outcome",
            "text",
        ],
    ),
    (
        "redirects",
        &[
            "config::field",
            "config::read",
            "http",
            "metrics",
            "outcome",
            "text",
        ],
    ),
    (
        "login_flow",
        &[
            "config::field",
            "config::read",
            "http",
            "metrics",
            "outcome",
            "seal",
            "text",
        ],
    ),
    (
        "discovery",
        &[
            "config::field",
            "config::json",
            "config::read",
            "http",
            "text",
        ],
    ),
    (
        "config",
        &[
            "config::field",
            "config::read",
            "discovery",
            "forwarded",
            "idp",
            "login_flow",
            "outcome",
            "redirects",
            "text",
        ],
    ),
    (
        "live",
        &[
            "config",
            "discovery",
            "http",
            "login_flow",
            "metrics",
            "text",
        ],
    ),
    ("host", &["http", "metrics", "text"]),
    ("diagnostics", &["metrics", "text"]),
    (
        "exchange",
        &[
            "config",
            "diagnostics",
            "forwarded",
            "host",
            "http",
            "idp",
            "login_flow",
            "metrics",
            "outcome",
            "redirects",
            "seal",
            "text",
        ],
    ),
];

fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().map(String::as_str) == Some("mod") {
        parts.pop();
    }
    if parts == ["config", "field"] {
        "config::field".into()
    } else if parts == ["config", "read"] || parts == ["config", "json"] {
        "config::read".into()
    } else {
        parts.first().cloned().unwrap_or_default()
    }
}

fn uses(src: &str) -> BTreeSet<String> {
    // Only code, not tests, and not doc comments.
    let code = src.split("#[cfg(test)]").next().unwrap_or("");
    let mut out = BTreeSet::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + 7..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            let after = &rest[name.len()..];
            if name == "config" && after.starts_with("::field") {
                out.insert("config::field".to_string());
            } else if name == "config" && after.starts_with("::read") {
                out.insert("config::read".to_string());
            } else if name == "config" && after.starts_with("::json") {
                out.insert("config::json".to_string());
            } else if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            out.push((
                rel.to_string_lossy().into_owned(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn modules_depend_only_downwards() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in &files {
        if rel == "lib.rs" {
            continue;
        }
        let m = module_of(Path::new(rel));
        let ok = allowed
            .get(m.as_str())
            .unwrap_or_else(|| panic!("{rel}: module {m} is not in ALLOWED"));
        for u in uses(src) {
            if u == m {
                continue;
            }
            assert!(
                ok.contains(&u.as_str()),
                "{rel} ({m}) uses crate::{u}, which the layering does not allow"
            );
            graph.entry(m.clone()).or_default().insert(u);
        }
    }
    // No cycles (the table above has none; this keeps it honest).
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) {
        assert!(!path.iter().any(|p| p == n), "cycle: {path:?} -> {n}");
        if done.contains(n) {
            return;
        }
        path.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            visit(m, g, path, done);
        }
        path.pop();
        done.insert(n.to_string());
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
}
