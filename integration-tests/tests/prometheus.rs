//! Metrics as operators use them: a real Prometheus server (Debian's
//! `prometheus`) scrapes a real Envoy 1.40 loaded from `envoy/edge.yaml`
//! and finds oidc-edge's series under the names `docs/metrics.md`
//! documents, with the rules of `envoy/prometheus/` loaded; `promtool`
//! checks and unit-tests those rules; the Grafana dashboard is JSON and
//! names only series the filter exports. The names come from
//! `oidc_edge::metrics::Counter`, the one table the module defines its
//! counters from.

use integration_tests::{free_port, repo_root, Envoy, EnvoyConfig, Request, Upstream};
use oidc_edge::metrics::Counter;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// Envoy's own counters for the plugin, which the rules also use.
const ENVOY_SERIES: [&str; 4] = [
    "envoy_wasm_oidc_edge_vm_reload",
    "envoy_wasm_oidc_edge_vm_reload_backoff",
    "envoy_wasm_oidc_edge_vm_reload_failure",
    "envoy_wasm_oidc_edge_vm_reload_success",
];

/// A counter's name in `/stats/prometheus`: Envoy drops `wasmcustom.` and
/// turns `.` into `_` (observed on Envoy 1.40; see docs/metrics.md).
fn prometheus_name(c: Counter) -> String {
    c.name().replace('.', "_")
}

fn exported() -> BTreeSet<String> {
    Counter::ALL.iter().map(|c| prometheus_name(*c)).collect()
}

/// A Debian tool: `<NAME>_BIN`, else on `PATH` (`./build.sh test` installs it).
fn tool(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.to_ascii_uppercase());
    if let Ok(p) = std::env::var(&var) {
        return PathBuf::from(p);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("no {name}: run ./build.sh test (it installs Debian's prometheus), or set {var}")
    })
}

fn prometheus_dir() -> PathBuf {
    repo_root().join("envoy/prometheus")
}

/// The recording rules' names in rules.yml, and every expression there.
fn rules() -> (BTreeSet<String>, Vec<String>) {
    let text = std::fs::read_to_string(prometheus_dir().join("rules.yml")).expect("rules.yml");
    let doc: Value = serde_yaml::from_str(&text).expect("rules.yml is YAML");
    let mut records = BTreeSet::new();
    let mut exprs = Vec::new();
    for g in doc["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            if let Some(name) = r["record"].as_str() {
                records.insert(name.to_string());
            }
            exprs.push(r["expr"].as_str().expect("expr").to_string());
        }
    }
    (records, exprs)
}

/// The series names an expression mentions: `oidc_edge_*`, `oidc_edge:*`
/// (recording rules) and `envoy_wasm_oidc_edge_*`. A name ending in `_` is
/// a regex prefix (`{__name__=~"oidc_edge_login_flow_rejected_.+"}`).
fn mentioned(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(off) = expr[i..].find("oidc_edge") {
        let mut start = i + off;
        if expr[..start].ends_with("envoy_wasm_") {
            start -= "envoy_wasm_".len();
        }
        let mut end = i + off;
        while end < b.len()
            && (b[end].is_ascii_lowercase()
                || b[end].is_ascii_digit()
                || b[end] == b'_'
                || b[end] == b':')
        {
            end += 1;
        }
        out.push(expr[start..end].to_string());
        i = end;
    }
    out
}

/// Every name an expression mentions is exported (or recorded), and
/// returns the exported ones it covers.
fn check_names(what: &str, expr: &str, records: &BTreeSet<String>) -> BTreeSet<String> {
    let exported = exported();
    let mut covered = BTreeSet::new();
    for name in mentioned(expr) {
        if let Some(prefix) = name
            .strip_suffix('_')
            .filter(|_| expr.contains("__name__=~"))
        {
            let matching: Vec<&String> =
                exported.iter().filter(|e| e.starts_with(prefix)).collect();
            assert!(!matching.is_empty(), "{what}: {name}.+ matches no series");
            covered.extend(matching.into_iter().cloned());
        } else if exported.contains(&name) {
            covered.insert(name);
        } else {
            assert!(
                records.contains(&name) || ENVOY_SERIES.contains(&name.as_str()),
                "{what}: {name} is neither exported by the filter nor recorded: {expr}"
            );
        }
    }
    covered
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let promtool = tool("promtool");
    for args in [
        vec!["check", "rules", "rules.yml"],
        vec!["test", "rules", "rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(&args)
            .current_dir(prometheus_dir())
            .output()
            .expect("run promtool");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?}:\n{text}");
        assert!(text.contains("SUCCESS"), "promtool {args:?}:\n{text}");
    }
}

#[test]
fn the_rules_name_only_exported_series() {
    let (records, exprs) = rules();
    assert!(records.contains("oidc_edge:login_flow_rejected:rate5m"));
    let mut covered = BTreeSet::new();
    for e in &exprs {
        covered.extend(check_names("rules.yml", e, &records));
    }
    for must in [
        Counter::FlowPinIgnored,
        Counter::ForwardedPeerMissing,
        Counter::FlowRecovered,
        Counter::FlowBadSignature,
        Counter::ForwardedHostRejected,
        Counter::InternalError,
    ] {
        assert!(
            covered.contains(&prometheus_name(must)),
            "no rule watches {}",
            must.name()
        );
    }
}

#[test]
fn the_dashboard_is_json_and_shows_every_counter() {
    let path = prometheus_dir().join("grafana-dashboard.json");
    let text = std::fs::read_to_string(&path).expect("dashboard");
    let dash: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert_eq!(dash["uid"], "oidc-edge");
    let (records, _) = rules();
    let mut covered = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for p in dash["panels"].as_array().expect("panels") {
        let title = p["title"].as_str().expect("title");
        assert!(
            ids.insert(p["id"].as_u64().expect("id")),
            "{title}: id repeated"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            covered.extend(check_names(title, expr, &records));
        }
    }
    let missing: Vec<String> = exported().difference(&covered).cloned().collect();
    assert!(
        missing.is_empty(),
        "the dashboard does not show {missing:?}"
    );
}

#[test]
fn docs_metrics_names_every_counter_both_ways_and_the_readme_names_are_real() {
    let root = repo_root();
    let docs = std::fs::read_to_string(root.join("docs/metrics.md")).expect("docs/metrics.md");
    for c in Counter::ALL {
        let stats = format!("`wasmcustom.{}`", c.name());
        let prom = format!("`{}`", prometheus_name(c));
        assert!(docs.contains(&stats), "docs/metrics.md lacks {stats}");
        assert!(docs.contains(&prom), "docs/metrics.md lacks {prom}");
    }
    let mut dotted: BTreeSet<&str> = Counter::ALL.iter().map(|c| c.name()).collect();
    dotted.insert(oidc_edge::metrics::VM_MEMORY_GAUGE);
    dotted.insert(oidc_edge::metrics::DISCOVERY_STATE_GAUGE);
    let gauge = format!("`wasmcustom.{}`", oidc_edge::metrics::VM_MEMORY_GAUGE);
    assert!(docs.contains(&gauge), "docs/metrics.md lacks {gauge}");
    for file in ["README.md", "docs/metrics.md", "docs/configuration.md"] {
        let text = std::fs::read_to_string(root.join(file)).expect(file);
        for (i, _) in text.match_indices("oidc_edge.") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_' || *c == '.')
                .collect();
            // The module file (and placeholders for its digest), the filter
            // state `wasm.oidc_edge.decisions`,
            // and patterns such as `oidc_edge.<section>.<name>` are no counters.
            if name.starts_with("oidc_edge.wasm")
                || text[..i].ends_with("wasm.")
                || name.ends_with('.')
            {
                continue;
            }
            assert!(
                dotted.contains(name.as_str()),
                "{file} names {name}, which the filter does not export"
            );
        }
    }
}

/// A Prometheus server on loopback, killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Prometheus {
    fn start(envoy_admin: u16, dir: &Path) -> Prometheus {
        std::fs::create_dir_all(dir).expect("dir");
        let rules = prometheus_dir().join("rules.yml");
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{rules:?}]\n\
             scrape_configs:\n- job_name: envoy\n  metrics_path: /stats/prometheus\n  \
             static_configs:\n  - targets: ['127.0.0.1:{envoy_admin}']\n",
            rules = rules.display().to_string()
        );
        std::fs::write(dir.join("prometheus.yml"), cfg).expect("write config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new(tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn api(&self, path: &str) -> Option<Value> {
        let resp = Request::get("127.0.0.1", path).try_send(self.port).ok()?;
        (resp.status == 200)
            .then(|| serde_json::from_slice(&resp.body).ok())
            .flatten()
    }

    /// An instant query's samples as (labels, value).
    fn query(&self, q: &str) -> Vec<(Value, f64)> {
        let path = format!(
            "/api/v1/query?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("query", q)
                .finish()
        );
        let Some(v) = self.api(&path) else {
            return Vec::new();
        };
        v["data"]["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| {
                        let value = s["value"][1].as_str()?.parse().ok()?;
                        Some((s["metric"].clone(), value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits (at most 90 s) until `q` returns exactly `want` in one sample.
    fn wait_for(&self, q: &str, want: f64) -> Vec<(Value, f64)> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let got = self.query(q);
            if got.len() == 1 && got[0].1 == want {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{q}: got {got:?}, want {want}\n{}",
                std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_documented_series() {
    let upstream = Upstream::start("app-1");
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .upstreams(&[upstream.addr])
            .env("OIDC_EDGE_KEY_1", K1),
    );
    // Two refused callbacks and a host outside allowed_hosts.
    for _ in 0..2 {
        let r = Request::get("app.example.com", "/callback?code=c&state=s1").send(envoy.port);
        assert_eq!(r.status, 400, "{}", r.text());
    }
    let r = Request::get("evil.example", "/").send(envoy.port);
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(envoy.counter("oidc_edge.login_flow.rejected.missing"), 2);

    let dir = std::env::temp_dir().join(format!("oidc-edge-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let prom = Prometheus::start(envoy.admin_port, &dir);
    let got = prom.wait_for("oidc_edge_login_flow_rejected_missing", 2.0);
    assert_eq!(got[0].0["job"], "envoy");
    prom.wait_for("oidc_edge_forwarded_host_rejected", 1.0);
    // Every counter the filter defines is a series, under its documented name.
    let names = prom
        .api("/api/v1/label/__name__/values")
        .expect("label values");
    let names: BTreeSet<String> = names["data"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    for want in exported() {
        assert!(names.contains(&want), "Prometheus has no series {want}");
    }
    for want in ENVOY_SERIES {
        assert!(names.contains(want), "Prometheus has no series {want}");
    }
    // The recording rules work on the scraped data.
    let by_reason = prom.wait_for(
        r#"oidc_edge:login_flow_rejected:total{reason="missing"}"#,
        2.0,
    );
    assert_eq!(by_reason[0].0["reason"], "missing");
    let _ = std::fs::remove_dir_all(&dir);
}
