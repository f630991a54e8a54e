//! The Istio (`envoy/istio/`) and Envoy Gateway (`envoy/gateway/`)
//! manifests, checked as far as can be done without Kubernetes:
//!
//! - they validate against the schemas of the npm packages
//!   `@kubernetes-models/istio` (Istio 1.29.2's CRDs) and
//!   `@kubernetes-models/envoy-gateway` (Envoy Gateway's Go API types),
//!   installed by `./build.sh test` (`manifest-check/check.mjs`: the
//!   packages' validators, plus a type check of each document against the
//!   packages' types so that unknown fields are errors; CEL rules are not
//!   evaluated);
//! - the plugin configuration in each is `envoy/edge.yaml`'s, and oidc-edge's
//!   own parser accepts it with the environment they pass into the VM;
//! - their Envoy patches, applied the way Istio (EnvoyFilter) and Envoy
//!   Gateway (EnvoyPatchPolicy, ClientTrafficPolicy) apply them to Envoy
//!   configurations shaped like the ones those control planes generate for
//!   a gateway, give a real Envoy 1.40 that starts and works: a trusted load
//!   balancer's view reaches the app, an untrusted client's does not, the
//!   internal headers stay inside, and a login's callback returns to the
//!   node that started it. The shaped configurations follow Istio's
//!   `pilot/pkg/model/extensions.go` and Envoy Gateway's
//!   `internal/xds/translator` (wasm.go, listener.go, httpfilters.go); the
//!   module is loaded from a local file, as Istio's agent and Envoy
//!   Gateway's module server finally hand it to Envoy (`remote.rs` covers
//!   the HTTP step).

#![recursion_limit = "256"]

use integration_tests::envoy::PEER_TOKEN;
use integration_tests::{repo_root, Echo, Envoy, EnvoyConfig, Request, Response, Upstream};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const HCM: &str = "envoy.filters.network.http_connection_manager";
const HCM_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
/// The loopback address that plays the load balancer in these tests.
const LB: &str = "127.0.0.2";

fn path(rel: &str) -> PathBuf {
    repo_root().join(rel)
}

/// Every document of a YAML file, as JSON values.
fn docs(rel: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn doc(rel: &str, kind: &str) -> Value {
    let mut found: Vec<Value> = docs(rel)
        .into_iter()
        .filter(|d| d["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "one {kind} in {rel}");
    found.remove(0)
}

/// Runs manifest-check/check.mjs on `files`; returns (success, output).
fn check(files: &[PathBuf]) -> (bool, String) {
    let dir = path("integration-tests/manifest-check");
    assert!(
        dir.join("node_modules/@kubernetes-models").is_dir(),
        "the manifest check's npm packages are missing (./build.sh test installs them: npm ci in integration-tests/manifest-check)"
    );
    let out = Command::new("node")
        .arg(dir.join("check.mjs"))
        .args(files)
        .output()
        .expect("node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The errors check.mjs printed for `file` (the indented lines after its
/// `FAIL` line), or None if it was not refused.
fn refused<'a>(out: &'a str, file: &Path) -> Option<Vec<&'a str>> {
    let mut lines = out.lines();
    lines.find(|l| *l == format!("FAIL {}", file.display()))?;
    Some(lines.take_while(|l| l.starts_with("  ")).collect())
}

/// A copy of `file` in the temporary directory with `from` replaced by `to`
/// (which must be there).
fn altered(file: &Path, tag: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{} has {from:?}", file.display());
    let copy = std::env::temp_dir().join(format!(
        "oidc-edge-{tag}-{}-{}",
        std::process::id(),
        file.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&copy, text.replacen(from, to, 1)).unwrap();
    copy
}

/// Every manifest passes the check, and the check is not lenient: copies
/// of the first manifest with one field misspelled (at the top of `spec`
/// and, `nested`, deeper down) or one value of the wrong type are each
/// refused, naming the field (one run: loading the models' types is the
/// slow part).
/// `nested` is a line of the first manifest (with its newline) and a
/// misspelled field added after it at its indentation; `wrong_type` a
/// `field: value` there and the value of the wrong type.
fn validate_manifests(manifests: &[&str], nested: (&str, &str), wrong_type: (&str, &str)) {
    let manifests: Vec<PathBuf> = manifests.iter().map(|m| path(m)).collect();
    let first = &manifests[0];
    let misspelled = altered(first, "misspelled", "spec:\n", "spec:\n  fialStrategy: x\n");
    let (line, deep_field) = nested;
    let indent = &line[..line.len() - line.trim_start().len()];
    let misspelled_deep = altered(
        first,
        "misspelled-deep",
        line,
        &format!("{line}{indent}{deep_field}: x\n"),
    );
    let (field, value) = wrong_type.0.split_once(": ").unwrap();
    let field = field.trim();
    let mistyped = altered(
        first,
        "mistyped",
        wrong_type.0,
        &wrong_type.0.replacen(value, wrong_type.1, 1),
    );
    let mut files = manifests.clone();
    files.extend([
        misspelled.clone(),
        misspelled_deep.clone(),
        mistyped.clone(),
    ]);
    let (ok, out) = check(&files);
    for f in [&misspelled, &misspelled_deep, &mistyped] {
        let _ = std::fs::remove_file(f);
    }
    assert!(!ok, "the altered copies must fail: {out}");
    for m in &manifests {
        assert!(
            out.lines().any(|l| l == format!("ok {}", m.display())),
            "{} validates: {out}",
            m.display()
        );
    }
    let unknown = |file: &Path, field: &str| {
        let errors = refused(&out, file).unwrap_or_else(|| panic!("{field} refused: {out}"));
        assert!(
            errors
                .iter()
                .any(|e| e.contains(&format!("\"{field}\"' does not exist"))),
            "{out}"
        );
    };
    unknown(&misspelled, "fialStrategy");
    unknown(&misspelled_deep, deep_field);
    let errors = refused(&out, &mistyped).unwrap_or_else(|| panic!("{out}"));
    // Both layers say so: the schema validator and the type check.
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&format!("/{field} must be"))),
        "{out}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains(&format!("/{field}: Type"))),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAIL ")).count(),
        3,
        "{out}"
    );
}

/// The Secret's keys, and the env entries that read them, agree.
fn secret_keys(rel: &str) -> Vec<String> {
    let s = doc(rel, "Secret");
    s["stringData"]
        .as_object()
        .expect("stringData")
        .keys()
        .cloned()
        .collect()
}

fn assert_env_from_secret(env: &Value, secret: &str, keys: &[String]) {
    let env = env.as_array().expect("env entries");
    let mut named = Vec::new();
    for e in env {
        let r = &e["valueFrom"]["secretKeyRef"];
        assert_eq!(r["name"], secret, "{e}");
        assert!(
            keys.contains(&r["key"].as_str().unwrap().to_string()),
            "{e}"
        );
        named.push(e["name"].as_str().unwrap().to_string());
    }
    for needed in ["OIDC_EDGE_KEY_1", "OIDC_EDGE_PEER_TOKEN"] {
        assert!(named.iter().any(|n| n == needed), "{needed} is passed");
    }
}

/// edge.yaml's plugin configuration and its VM environment keys.
fn edge_plugin() -> (Value, Vec<String>) {
    let cfg = EnvoyConfig::reference();
    let plugin: Value = serde_json::from_str(&cfg.plugin_config_value()).unwrap();
    let keys = cfg
        .doc
        .to_string()
        .split("\"host_env_keys\":")
        .nth(1)
        .and_then(|s| {
            serde_json::Deserializer::from_str(s)
                .into_iter::<Value>()
                .next()
        })
        .and_then(Result::ok)
        .expect("host_env_keys");
    let keys = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    (plugin, keys)
}

fn assert_is_edge_plugin_config(config: &Value, vm_env: &[String]) {
    let (edge, edge_keys) = edge_plugin();
    assert_eq!(config, &edge, "the plugin configuration is edge.yaml's");
    assert_eq!(
        vm_env,
        edge_keys.as_slice(),
        "the VM gets edge.yaml's variables"
    );
    let env: BTreeMap<&str, &str> = [
        ("OIDC_EDGE_KEY_1", K1),
        ("OIDC_EDGE_PEER_TOKEN", PEER_TOKEN),
    ]
    .into_iter()
    .filter(|(k, _)| vm_env.iter().any(|e| e == k))
    .collect();
    oidc_edge::config::Config::parse_with_env(config.to_string().as_bytes(), &|k| {
        env.get(k).map(|v| v.to_string())
    })
    .unwrap_or_else(|e| panic!("oidc-edge refuses it: {e}"));
}

// ---------------------------------------------------------------- Istio --

fn wasm_plugin() -> Value {
    doc("envoy/istio/wasmplugin.yaml", "WasmPlugin")
}

fn istio_vm_env(plugin: &Value) -> Vec<String> {
    plugin["spec"]["vmConfig"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["valueFrom"] == "HOST")
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn istio_manifests_validate_against_the_istio_models_schemas() {
    validate_manifests(
        &[
            "envoy/istio/wasmplugin.yaml",
            "envoy/istio/envoyfilter.yaml",
            "envoy/istio/secret.yaml",
        ],
        ("      valueFrom: HOST\n", "valeuFrom"),
        ("failStrategy: FAIL_RELOAD", "1"),
    );
    let values = docs("envoy/istio/gateway-values.yaml").remove(0);
    assert_env_from_secret(
        &values["envVarFrom"],
        "oidc-edge",
        &secret_keys("envoy/istio/secret.yaml"),
    );
    // The WasmPlugin pins the image by a manifest digest and fails reloading.
    let p = wasm_plugin();
    assert!(p["spec"]["url"].as_str().unwrap().starts_with("oci://"));
    let sha = p["spec"]["sha256"].as_str().unwrap();
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(p["spec"]["failStrategy"], "FAIL_RELOAD");
    assert_eq!(p["spec"]["phase"], "AUTHN");
}

#[test]
fn the_istio_and_envoy_gateway_plugin_configurations_are_edge_yaml_s() {
    let p = wasm_plugin();
    assert_is_edge_plugin_config(&p["spec"]["pluginConfig"], &istio_vm_env(&p));
    let e = eg_wasm();
    let keys: Vec<String> = e["env"]["hostKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_is_edge_plugin_config(&e["config"], &keys);
}

/// The wasm filter Istio 1.30 builds from a WasmPlugin (extensions.go:
/// name `<namespace>.<name>`, root_id from pluginName, the configuration
/// as a JSON string, HOST variables as host_env_keys, Istio's own
/// variables as key_values, failStrategy as failure_policy), with the
/// module where Istio's agent stores it.
fn istio_wasm_filter(plugin: &Value) -> Value {
    let name = format!(
        "{}.{}",
        plugin["metadata"]["namespace"].as_str().unwrap(),
        plugin["metadata"]["name"].as_str().unwrap()
    );
    let spec = &plugin["spec"];
    let failure_policy = match spec["failStrategy"].as_str() {
        Some("FAIL_OPEN") => "FAIL_OPEN",
        Some("FAIL_RELOAD") => "FAIL_RELOAD",
        Some("FAIL_CLOSE") => "FAIL_CLOSED",
        other => panic!("failStrategy {other:?}"),
    };
    json!({
        "name": name,
        "typed_config": {"@type": WASM_TYPE, "config": {
            "name": name,
            "root_id": spec["pluginName"],
            "failure_policy": failure_policy,
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": spec["pluginConfig"].to_string()},
            "vm_config": {
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": format!("/var/lib/istio/data/{}.wasm", spec["sha256"].as_str().unwrap())}},
                "environment_variables": {
                    "key_values": {
                        "ISTIO_META_WASM_IMAGE_PULL_POLICY": spec["imagePullPolicy"],
                        "ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "1"
                    },
                    "host_env_keys": istio_vm_env(plugin)
                }
            }
        }}
    })
}

fn app_cluster(name: &str, nodes: &[Upstream]) -> Value {
    let endpoints: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({"endpoint": {"address": {"socket_address": {
            "address": n.addr.ip().to_string(), "port_value": n.addr.port()}}}})
        })
        .collect();
    json!({"name": name, "type": "STATIC", "connect_timeout": "2s", "lb_policy": "ROUND_ROBIN",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": endpoints}]}})
}

/// A bootstrap with one listener as Istio 1.30 generates it for an ingress
/// gateway's HTTP port (use_remote_address, Istio's default route retries,
/// the WasmPlugin in the AUTHN phase, then cors, fault, router).
fn istio_gateway(plugin: &Value, nodes: &[Upstream]) -> Value {
    let cluster = "outbound|80||app.default.svc.cluster.local";
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "0.0.0.0_8080",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 8080}},
                "filter_chains": [{"filters": [{
                    "name": HCM,
                    "typed_config": {
                        "@type": HCM_TYPE,
                        "stat_prefix": "outbound_0.0.0.0_8080",
                        "use_remote_address": true,
                        "normalize_path": true,
                        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
                        "server_name": "istio-envoy",
                        "stream_idle_timeout": "0s",
                        "upgrade_configs": [{"upgrade_type": "websocket"}],
                        "route_config": {
                            "name": "http.8080",
                            "validate_clusters": false,
                            "virtual_hosts": [{
                                "name": "app.example.com:80",
                                "domains": ["app.example.com", "app.example.com:*"],
                                "routes": [{
                                    "name": "app.default.svc.cluster.local:80",
                                    "match": {"prefix": "/"},
                                    "route": {
                                        "cluster": cluster,
                                        "timeout": "0s",
                                        "retry_policy": {
                                            "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                                            "num_retries": 2,
                                            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                                                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}],
                                            "host_selection_retry_max_attempts": "5",
                                            "retriable_status_codes": [503]
                                        }
                                    }
                                }]
                            }]
                        },
                        "http_filters": [
                            istio_wasm_filter(plugin),
                            {"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
                            {"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}]
            }],
            "clusters": [app_cluster(cluster, nodes)]
        }
    })
}

/// Proto merge, as Istio's MERGE does it: messages field by field,
/// repeated fields appended, scalars replaced.
fn proto_merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(slot) => proto_merge(slot, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => a.extend(b.iter().cloned()),
        (slot, v) => *slot = v.clone(),
    }
}

/// Applies an EnvoyFilter's configPatches to a gateway's bootstrap, with
/// Istio's semantics for what envoy/istio/envoyfilter.yaml uses; any other
/// kind of patch fails the test (so the manifest cannot outgrow this
/// patcher), and so does a patch that matches nothing (Istio would skip it
/// silently).
fn apply_envoy_filter(bootstrap: &mut Value, filter: &Value) {
    for patch in filter["spec"]["configPatches"].as_array().unwrap() {
        assert_eq!(patch["match"]["context"], "GATEWAY", "{patch}");
        let op = patch["patch"]["operation"].as_str().unwrap();
        let value = &patch["patch"]["value"];
        let want = &patch["match"]["listener"]["filterChain"]["filter"];
        let mut applied = 0;
        for listener in bootstrap["static_resources"]["listeners"]
            .as_array_mut()
            .unwrap()
        {
            for chain in listener["filter_chains"].as_array_mut().unwrap() {
                for f in chain["filters"].as_array_mut().unwrap() {
                    let named = f["name"] == want["name"];
                    match (patch["applyTo"].as_str().unwrap(), op) {
                        ("NETWORK_FILTER", "MERGE") => {
                            if named {
                                proto_merge(f, value);
                                applied += 1;
                            }
                        }
                        ("HTTP_FILTER", _) if named => {
                            let filters = f["typed_config"]["http_filters"].as_array_mut().unwrap();
                            let at = match op {
                                "INSERT_FIRST" => Some(0),
                                "INSERT_BEFORE" => filters
                                    .iter()
                                    .position(|h| h["name"] == want["subFilter"]["name"]),
                                "INSERT_AFTER" => filters
                                    .iter()
                                    .position(|h| h["name"] == want["subFilter"]["name"])
                                    .map(|i| i + 1),
                                other => panic!("HTTP_FILTER {other} not implemented"),
                            };
                            if let Some(i) = at {
                                filters.insert(i, value.clone());
                                applied += 1;
                            }
                        }
                        ("ROUTE_CONFIGURATION", "MERGE") => {
                            if let Some(rc) = f["typed_config"].get_mut("route_config") {
                                proto_merge(rc, value);
                                applied += 1;
                            }
                        }
                        (a, o) => panic!("{a} {o} is not implemented by this patcher"),
                    }
                }
            }
        }
        assert!(applied > 0, "the patch matched nothing: {patch}");
    }
}

/// The bed both control planes' configurations are run in: three app
/// nodes and an Envoy.
struct Gateway {
    envoy: Envoy,
    _nodes: Vec<Upstream>,
}

fn nodes() -> Vec<Upstream> {
    ["node-a", "node-b", "node-c"]
        .iter()
        .map(|n| Upstream::start(n))
        .collect()
}

/// Runs a generated bootstrap: the listener renamed `edge` (the harness
/// finds its port by that name), the LB subnet pointed at loopback.
fn run(mut bootstrap: Value, nodes: Vec<Upstream>) -> Gateway {
    let text = bootstrap
        .to_string()
        .replace("10.0.1.0/24", &format!("{LB}/32"));
    bootstrap = serde_json::from_str(&text).unwrap();
    // Envoy Gateway's XFF extension names the subnet as prefix and length.
    crate::visit(&mut bootstrap, &mut |v| {
        if v["address_prefix"] == "10.0.1.0" {
            *v = json!({"address_prefix": LB, "prefix_len": 32});
        }
    });
    bootstrap["static_resources"]["listeners"][0]["name"] = "edge".into();
    let cfg = EnvoyConfig::reference()
        .edit(|d| *d = bootstrap)
        .env("OIDC_EDGE_KEY_1", K1);
    Gateway {
        envoy: Envoy::start(&cfg),
        _nodes: nodes,
    }
}

fn visit(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    f(v);
    match v {
        Value::Object(m) => m.values_mut().for_each(|c| visit(c, f)),
        Value::Array(a) => a.iter_mut().for_each(|c| visit(c, f)),
        _ => {}
    }
}

fn send(g: &Gateway, req: Request) -> Response {
    req.send(g.envoy.port)
}

/// What a user of either gateway relies on.
fn assert_gateway_works(g: &Gateway) {
    // The load balancer's view reaches the app; the internal headers do not.
    let r = send(
        g,
        Request::get("app.example.com", "/")
            .from(LB)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-for", "203.0.113.7"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = Echo::parse(&r.body);
    assert_eq!(
        e.header("x-forwarded-proto").as_deref(),
        Some("https"),
        "{}",
        r.text()
    );
    assert!(
        e.header("x-forwarded-for")
            .is_some_and(|x| x.starts_with("203.0.113.7")),
        "{}",
        r.text()
    );
    assert_eq!(e.header("x-oidc-edge-peer"), None);
    // A client that is not the LB cannot claim to be it.
    let r = send(
        g,
        Request::get("app.example.com", "/")
            .from("127.0.0.3")
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", "evil.example")
            .header("x-oidc-edge-peer", &format!("{LB};forged")),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let e = Echo::parse(&r.body);
    assert_ne!(e.header("x-forwarded-proto").as_deref(), Some("https"));
    assert!(!r.text().contains("evil.example"), "{}", r.text());
    // A login's callback returns to the node that started it.
    for _ in 0..3 {
        let login = send(
            g,
            Request::get("app.example.com", "/login")
                .from(LB)
                .header("x-forwarded-proto", "https"),
        );
        assert_eq!(login.status, 302, "{}", login.text());
        let started = Echo::parse(&login.body);
        let cookie = login
            .header("set-cookie")
            .expect("a flow cookie")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(login.header("x-oidc-edge-node"), None);
        for _ in 0..2 {
            let cb = send(
                g,
                Request::get(
                    "app.example.com",
                    &format!(
                        "/callback?code=c0de&state={}",
                        started.state.as_deref().unwrap()
                    ),
                )
                .from(LB)
                .header("x-forwarded-proto", "https")
                .header("cookie", &cookie),
            );
            assert_eq!(cb.status, 200, "{}", cb.text());
            let at = Echo::parse(&cb.body);
            assert_eq!(at.node, started.node, "the callback is pinned");
            assert_eq!(at.header("x-oidc-edge-node"), None);
            assert_eq!(cb.header("x-oidc-edge-node"), None);
        }
    }
}

#[test]
fn an_istio_gateway_with_the_envoyfilter_applied_works() {
    let nodes = nodes();
    let mut bootstrap = istio_gateway(&wasm_plugin(), &nodes);
    apply_envoy_filter(
        &mut bootstrap,
        &doc("envoy/istio/envoyfilter.yaml", "EnvoyFilter"),
    );
    let http_filters: Vec<&str> = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]
        ["filters"][0]["typed_config"]["http_filters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        http_filters,
        [
            "envoy.filters.http.header_mutation",
            "istio-system.oidc-edge",
            "envoy.filters.http.cors",
            "envoy.filters.http.fault",
            "envoy.filters.http.stateful_session",
            "envoy.filters.http.router"
        ]
    );
    let g = run(bootstrap, nodes);
    assert_gateway_works(&g);
}

#[test]
fn without_the_envoyfilter_an_istio_gateway_loses_the_load_balancer_s_view() {
    // The control: Istio's own gateway configuration with only the
    // WasmPlugin. The peer header is missing, so oidc-edge trusts no one
    // (and says so), and the LB's https never reaches the app.
    let nodes = nodes();
    let g = run(istio_gateway(&wasm_plugin(), &nodes), nodes);
    let r = send(
        &g,
        Request::get("app.example.com", "/")
            .from(LB)
            .header("x-forwarded-proto", "https"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(
        Echo::parse(&r.body).header("x-forwarded-proto").as_deref(),
        Some("https")
    );
    assert!(g.envoy.counter("oidc_edge.forwarded.peer_unknown") >= 1);
}

// -------------------------------------------------------- Envoy Gateway --

fn eg_wasm() -> Value {
    let p = doc(
        "envoy/gateway/envoyextensionpolicy.yaml",
        "EnvoyExtensionPolicy",
    );
    let wasm = p["spec"]["wasm"].as_array().unwrap();
    assert_eq!(wasm.len(), 1);
    wasm[0].clone()
}

#[test]
fn envoy_gateway_manifests_validate_against_the_envoy_gateway_models_schemas() {
    validate_manifests(
        &[
            "envoy/gateway/envoyextensionpolicy.yaml",
            "envoy/gateway/clienttrafficpolicy.yaml",
            "envoy/gateway/envoypatchpolicy.yaml",
            "envoy/gateway/envoyproxy.yaml",
            "envoy/gateway/secret.yaml",
        ],
        ("    failOpen: false\n", "fialOpen"),
        ("failOpen: false", "\"no\""),
    );
    let proxy = doc("envoy/gateway/envoyproxy.yaml", "EnvoyProxy");
    assert_env_from_secret(
        &proxy["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"],
        "oidc-edge",
        &secret_keys("envoy/gateway/secret.yaml"),
    );
    let w = eg_wasm();
    assert_eq!(w["failOpen"], false);
    assert_eq!(w["code"]["type"], "Image");
    let sha = w["code"]["image"]["sha256"].as_str().unwrap();
    assert!(sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// The listener Envoy Gateway 1.9 generates for Gateway `eg`, listener
/// `http`, with the ClientTrafficPolicy (listener.go: any clientIPDetection
/// turns use_remote_address off and adds the XFF extension;
/// earlyRequestHeaders become an early header mutation; set means
/// OVERWRITE_IF_EXISTS_OR_ADD) and the EnvoyExtensionPolicy (wasm.go: vm_id
/// the filter's name, fail_open, host_env_keys, the configuration as a JSON
/// string) in EG's filter order (wasm late, router last).
fn eg_gateway(nodes: &[Upstream]) -> Value {
    let ctp = doc(
        "envoy/gateway/clienttrafficpolicy.yaml",
        "ClientTrafficPolicy",
    );
    let spec = &ctp["spec"];
    let early = &spec["headers"]["earlyRequestHeaders"];
    let mut mutations = Vec::new();
    for s in early["set"].as_array().into_iter().flatten() {
        mutations.push(
            json!({"append": {"header": {"key": s["name"], "value": s["value"]},
            "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}),
        );
    }
    for r in early["remove"].as_array().into_iter().flatten() {
        mutations.push(json!({"remove": r}));
    }
    let cidrs: Vec<Value> = spec["clientIPDetection"]["xForwardedFor"]["trustedCIDRs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let (ip, len) = c.as_str().unwrap().split_once('/').unwrap();
            json!({"address_prefix": ip, "prefix_len": len.parse::<u32>().unwrap()})
        })
        .collect();
    let underscores = match spec["headers"]["withUnderscoresAction"].as_str() {
        Some("DropHeader") => "DROP_HEADER",
        Some("RejectRequest") => "REJECT_REQUEST",
        _ => "ALLOW",
    };
    let w = eg_wasm();
    let filter_name = "envoy.filters.http.wasm/envoyextensionpolicy/default/oidc-edge/0";
    let wasm = json!({
        "name": filter_name,
        "typed_config": {"@type": WASM_TYPE, "config": {
            "name": "envoyextensionpolicy/default/oidc-edge/0",
            "root_id": w["rootID"],
            "fail_open": w["failOpen"],
            "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": w["config"].to_string()},
            "vm_config": {
                "vm_id": "envoyextensionpolicy/default/oidc-edge/0",
                "runtime": "envoy.wasm.runtime.v8",
                "code": {"local": {"filename": "/var/lib/eg/wasm/oidc-edge.wasm"}},
                "environment_variables": {"host_env_keys": w["env"]["hostKeys"]}
            }
        }}
    });
    json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "default/eg/http",
                "address": {"socket_address": {"address": "0.0.0.0", "port_value": 10080}},
                "default_filter_chain": {"filters": [{
                    "name": HCM,
                    "typed_config": {
                        "@type": HCM_TYPE,
                        "stat_prefix": "http-10080",
                        "use_remote_address": false,
                        "original_ip_detection_extensions": [{
                            "name": "envoy.extensions.http.original_ip_detection.xff",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.http.original_ip_detection.xff.v3.XffConfig",
                                "xff_trusted_cidrs": {"cidrs": cidrs}, "skip_xff_append": false}
                        }],
                        "early_header_mutation_extensions": [{
                            "name": "envoy.http.early_header_mutation.header_mutation",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation",
                                "mutations": mutations}
                        }],
                        "common_http_protocol_options": {"headers_with_underscores_action": underscores},
                        "normalize_path": true,
                        "merge_slashes": true,
                        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
                        "upgrade_configs": [{"upgrade_type": "websocket"}],
                        "route_config": {
                            "name": "default/eg/http",
                            "virtual_hosts": [{
                                "name": "default/eg/http/app_example_com",
                                "domains": ["app.example.com"],
                                "routes": [{
                                    "name": "httproute/default/app/rule/0/match/0/app_example_com",
                                    "match": {"prefix": "/"},
                                    "route": {"cluster": "httproute/default/app/rule/0", "timeout": "0s"}
                                }]
                            }]
                        },
                        "http_filters": [
                            wasm,
                            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
                        ]
                    }
                }]}
            }],
            "clusters": [app_cluster("httproute/default/app/rule/0", nodes)]
        }
    })
}

/// RFC 6901 pointers of the nodes `$..KEY[?(@.name=='VALUE')]` selects:
/// the one JSONPath form envoypatchpolicy.yaml uses (any other fails).
fn json_path(doc: &Value, expr: &str) -> Vec<String> {
    let rest = expr
        .strip_prefix("$..")
        .unwrap_or_else(|| panic!("JSONPath {expr} not implemented"));
    let (key, filter) = rest.split_once('[').unwrap();
    let value = filter
        .strip_prefix("?(@.name=='")
        .and_then(|f| f.strip_suffix("')]"))
        .unwrap_or_else(|| panic!("JSONPath filter {filter} not implemented"));
    let mut found = Vec::new();
    fn walk(v: &Value, at: String, key: &str, value: &str, found: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    if k == key {
                        if let Value::Array(a) = c {
                            for (i, e) in a.iter().enumerate() {
                                if e["name"] == value {
                                    found.push(format!("{here}/{i}"));
                                }
                            }
                        }
                    }
                    walk(c, here, key, value, found);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    walk(c, format!("{at}/{i}"), key, value, found);
                }
            }
            _ => {}
        }
    }
    walk(doc, String::new(), key, value, &mut found);
    found
}

/// RFC 6902 `add`: into an array at an index (before what is there), or a
/// member of an object.
fn json_patch_add(doc: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let target = doc
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    let last = last.replace("~1", "/").replace("~0", "~");
    match target {
        Value::Array(a) => a.insert(last.parse().unwrap(), value),
        Value::Object(m) => {
            m.insert(last, value);
        }
        _ => panic!("{parent} is neither array nor object"),
    }
}

/// Applies an EnvoyPatchPolicy as Envoy Gateway does (jsonPath located
/// first, path appended, then the JSON Patch operation) to the resources
/// of that type and name; only `add` is implemented, and a patch that
/// matches nothing fails.
fn apply_envoy_patch_policy(bootstrap: &mut Value, policy: &Value) {
    for p in policy["spec"]["jsonPatches"].as_array().unwrap() {
        let op = &p["operation"];
        assert_eq!(op["op"], "add", "only add is implemented: {p}");
        let name = p["name"].as_str().unwrap();
        let resources: Vec<String> = match p["type"].as_str().unwrap() {
            "type.googleapis.com/envoy.config.listener.v3.Listener" => {
                let listeners = bootstrap["static_resources"]["listeners"]
                    .as_array()
                    .unwrap();
                let i = listeners.iter().position(|l| l["name"] == name);
                i.map(|i| format!("/static_resources/listeners/{i}"))
                    .into_iter()
                    .collect()
            }
            "type.googleapis.com/envoy.config.route.v3.RouteConfiguration" => {
                json_path(bootstrap, &format!("$..filters[?(@.name=='{HCM}')]"))
                    .into_iter()
                    .map(|f| format!("{f}/typed_config/route_config"))
                    .filter(|rc| bootstrap.pointer(rc).is_some_and(|r| r["name"] == name))
                    .collect()
            }
            other => panic!("{other} not implemented"),
        };
        assert_eq!(resources.len(), 1, "{name} names one resource: {p}");
        let resource = bootstrap.pointer_mut(&resources[0]).unwrap();
        let path = op["path"].as_str().unwrap_or("");
        let pointers = match op["jsonPath"].as_str() {
            Some(jp) => json_path(resource, jp)
                .into_iter()
                .map(|ptr| format!("{ptr}{path}"))
                .collect(),
            None => vec![path.to_string()],
        };
        assert!(!pointers.is_empty(), "the patch matched nothing: {p}");
        for ptr in pointers {
            json_patch_add(resource, &ptr, op["value"].clone());
        }
    }
}

#[test]
fn an_envoy_gateway_listener_with_the_policies_applied_works() {
    let nodes = nodes();
    let mut bootstrap = eg_gateway(&nodes);
    apply_envoy_patch_policy(
        &mut bootstrap,
        &doc("envoy/gateway/envoypatchpolicy.yaml", "EnvoyPatchPolicy"),
    );
    let g = run(bootstrap, nodes);
    assert_gateway_works(&g);
}
