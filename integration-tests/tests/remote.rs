//! Loading the module over HTTP: `envoy/remote.yaml` spliced into
//! `envoy/edge.yaml` (its `code` replaces the wasm filter's
//! `vm_config.code`, its clusters are added), with the module served from a
//! loopback server. What Envoy 1.40 does when the checksum is wrong or the
//! server is down is asserted here as observed, and remote.yaml says it.

use integration_tests::envoy::wasm_path;
use integration_tests::{repo_root, Envoy, EnvoyConfig, Request, Upstream};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PLUGIN: &str = r#"{"forwarded": {"trusted_cidrs": ["127.0.0.2/32"],
    "allowed_hosts": ["app.example.com"]}}"#;

/// A loopback HTTP server answering every GET with the module; counts the
/// fetches.
struct ModuleServer {
    port: u16,
    fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ModuleServer {
    fn start_on(listener: TcpListener) -> ModuleServer {
        let port = listener.local_addr().unwrap().port();
        let module = std::fs::read(wasm_path()).unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (fetches.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                f.fetch_add(1, Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    module.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&module);
            }
        });
        ModuleServer {
            port,
            fetches,
            stop,
        }
    }

    fn start() -> ModuleServer {
        ModuleServer::start_on(TcpListener::bind("127.0.0.1:0").unwrap())
    }
}

impl Drop for ModuleServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn module_sha256() -> String {
    Sha256::digest(std::fs::read(wasm_path()).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// edge.yaml with remote.yaml's edits, the module at 127.0.0.1:`port`.
fn remote_edge(port: u16, sha256: &str, upstream: &Upstream) -> EnvoyConfig {
    let text = std::fs::read_to_string(repo_root().join("envoy/remote.yaml")).unwrap();
    let remote: Value = serde_yaml::from_str(&text).unwrap();
    let mut code = remote["code"].clone();
    let uri = code["remote"]["http_uri"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let path = &uri[uri.find("://").unwrap() + 3..];
    let path = &path[path.find('/').unwrap()..];
    code["remote"]["http_uri"]["uri"] = format!("http://127.0.0.1:{port}{path}").into();
    code["remote"]["sha256"] = sha256.into();
    let mut clusters = remote["clusters"].as_array().unwrap().clone();
    assert_eq!(
        clusters[0]["name"], code["remote"]["http_uri"]["cluster"],
        "remote.yaml's cluster is the one http_uri names"
    );
    clusters[0]["type"] = "STATIC".into();
    clusters[0]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        ["socket_address"] = serde_json::json!({"address": "127.0.0.1", "port_value": port});
    EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(&[upstream.addr])
        .edit(move |doc| {
            let mut replaced = 0;
            replace_code(doc, &code, &mut replaced);
            assert_eq!(replaced, 1, "edge.yaml has one vm_config.code");
            doc["static_resources"]["clusters"]
                .as_array_mut()
                .unwrap()
                .extend(clusters);
        })
}

fn replace_code(v: &mut Value, code: &Value, n: &mut usize) {
    match v {
        Value::Object(m) => {
            if let Some(vm) = m.get_mut("vm_config") {
                vm["code"] = code.clone();
                *n += 1;
            }
            m.values_mut().for_each(|c| replace_code(c, code, n));
        }
        Value::Array(a) => a.iter_mut().for_each(|c| replace_code(c, code, n)),
        _ => {}
    }
}

/// The filter at work: an untrusted client's forged X-Forwarded-Host is
/// removed before the app.
fn assert_filter_runs(envoy: &Envoy) {
    let r = Request::get("app.example.com", "/")
        .header("x-forwarded-host", "evil.example")
        .from("127.0.0.3")
        .send(envoy.port);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        !r.text().contains("evil.example"),
        "oidc-edge removed the forged header: {}",
        r.text()
    );
}

/// Shortens remote.yaml's back-off (same number of retries) where a test
/// only needs every try to fail, not to be waited for.
fn quick_retries(cfg: EnvoyConfig) -> EnvoyConfig {
    cfg.edit(|doc| {
        let mut n = 0;
        visit_remote(doc, &mut |remote| {
            remote["retry_policy"]["retry_back_off"] =
                serde_json::json!({"base_interval": "0.05s", "max_interval": "0.2s"});
            n += 1;
        });
        assert_eq!(n, 1);
    })
}

fn visit_remote(v: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match v {
        Value::Object(m) => {
            if let Some(r) = m.get_mut("remote") {
                f(r);
            }
            m.values_mut().for_each(|c| visit_remote(c, f));
        }
        Value::Array(a) => a.iter_mut().for_each(|c| visit_remote(c, f)),
        _ => {}
    }
}

/// The number of tries remote.yaml allows: the first and its retries.
fn tries() -> usize {
    let text = std::fs::read_to_string(repo_root().join("envoy/remote.yaml")).unwrap();
    let remote: Value = serde_yaml::from_str(&text).unwrap();
    1 + remote["code"]["remote"]["retry_policy"]["num_retries"]
        .as_u64()
        .expect("remote.yaml sets num_retries") as usize
}

/// A port nothing listens on (yet).
fn closed_port() -> u16 {
    integration_tests::free_port()
}

/// With the module missing, the filter fails closed: every request 503,
/// nothing reaches the app unchecked.
fn assert_fails_closed(envoy: &Envoy) {
    for path in ["/", "/callback?code=x&state=y"] {
        let r = Request::get("app.example.com", path).send(envoy.port);
        assert_eq!(r.status, 503, "{path}: {}", r.text());
    }
    assert!(
        envoy.log().contains("Plugin oidc-edge failed to load"),
        "{}",
        envoy.log()
    );
}

#[test]
fn a_module_served_over_http_with_its_sha256_runs() {
    let server = ModuleServer::start();
    let upstream = Upstream::start("app-1");
    let envoy = Envoy::start(&remote_edge(server.port, &module_sha256(), &upstream));
    assert!(server.fetches.load(Ordering::SeqCst) >= 1);
    assert_filter_runs(&envoy);
}

#[test]
fn a_module_whose_sha256_differs_never_runs_and_the_filter_fails_closed() {
    // Envoy 1.40 treats a checksum mismatch as a failed fetch: it tries
    // again per retry_policy, then gives up on the plugin. With a static
    // listener Envoy still starts, and the filter fails closed.
    let server = ModuleServer::start();
    let upstream = Upstream::start("app-1");
    let wrong = "0".repeat(64);
    let envoy = Envoy::start(&quick_retries(remote_edge(server.port, &wrong, &upstream)));
    assert_eq!(
        server.fetches.load(Ordering::SeqCst),
        tries(),
        "every try downloaded the module and refused it"
    );
    assert_fails_closed(&envoy);
    assert!(
        !envoy.log().contains("(commit "),
        "the module never started"
    );
}

#[test]
fn a_server_down_throughout_start_leaves_the_filter_failed_closed_until_restart() {
    let port = closed_port();
    let upstream = Upstream::start("app-1");
    let envoy = Envoy::start(&quick_retries(remote_edge(
        port,
        &module_sha256(),
        &upstream,
    )));
    assert!(
        envoy
            .log()
            .contains("Retry limit exceeded for fetching data from remote data source"),
        "{}",
        envoy.log()
    );
    assert_fails_closed(&envoy);
    // Envoy never fetches again: the server coming back changes nothing
    // until Envoy restarts (or the listener's configuration is updated).
    let server = ModuleServer::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        Request::get("app.example.com", "/").send(envoy.port).status,
        503
    );
    assert_eq!(server.fetches.load(Ordering::SeqCst), 0);
}

#[test]
fn a_server_down_at_start_is_waited_for_within_the_retry_policy() {
    // The first try is refused (nothing listens); the server comes up
    // 300 ms after Envoy began fetching, well within remote.yaml's back-off.
    let port = closed_port();
    let upstream = Upstream::start("app-1");
    let cfg = remote_edge(port, &module_sha256(), &upstream);
    let late = std::thread::spawn(move || {
        let fetching = Instant::now() + Duration::from_secs(60);
        while !envoy_began_fetching(port) {
            assert!(Instant::now() < fetching, "Envoy never began fetching");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(300));
        ModuleServer::start_on(TcpListener::bind(("127.0.0.1", port)).unwrap())
    });
    let envoy = Envoy::start(&cfg);
    let server = late.join().unwrap();
    assert!(server.fetches.load(Ordering::SeqCst) >= 1);
    assert_filter_runs(&envoy);
}

/// Whether the Envoy whose config names the module at `port` has reached
/// its init manager (where the fetch starts): found through the harness's
/// per-Envoy directories.
fn envoy_began_fetching(port: u16) -> bool {
    let prefix = format!("oidc-edge-it-{}-", std::process::id());
    let needle = format!("127.0.0.1:{port}/");
    std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .any(|e| {
            let dir = e.path();
            std::fs::read_to_string(dir.join("envoy.json")).is_ok_and(|c| c.contains(&needle))
                && std::fs::read_to_string(dir.join("envoy.log"))
                    .is_ok_and(|l| l.contains("initializing init manager"))
        })
}
