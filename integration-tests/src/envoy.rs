//! Starting a real Envoy with the built module and a config derived from
//! `envoy/edge.yaml`.
//!
//! The reference file is loaded as-is; the harness only points listeners and
//! the admin interface at ephemeral loopback ports, the module path at the
//! build output, the `app` cluster at the test's upstreams, and (per test)
//! the plugin configuration. Each of those edits fails loudly if the file no
//! longer has the place it edits.

use crate::client::Request;
use crate::repo_root;
use serde_json::Value;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The wasm HTTP filter's config type.
pub const WASM_FILTER_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/// The environment variable edge.yaml's peer token comes from.
pub const PEER_TOKEN_ENV: &str = "OIDC_EDGE_PEER_TOKEN";
/// The peer token every test Envoy gets (see [`EnvoyConfig::load`]).
pub const PEER_TOKEN: &str = "dGVzdC1wZWVyLXRva2VuLW5vdC1hLXNlY3JldC0wMTIzNDU2Nzg5";

/// An Envoy bootstrap being prepared for a test.
#[derive(Debug, Clone)]
pub struct EnvoyConfig {
    /// The bootstrap document (YAML read into JSON values).
    pub doc: Value,
    /// Environment variables for the Envoy process (signing keys).
    pub env: Vec<(String, String)>,
    /// The `edge` listener's port; `None` lets the kernel choose.
    pub listen_port: Option<u16>,
    /// The wasm module to load; `None` is the module under test ([`wasm_path`]).
    pub module: Option<PathBuf>,
}

impl EnvoyConfig {
    /// `envoy/edge.yaml`, the reference configuration operators start from.
    pub fn reference() -> EnvoyConfig {
        EnvoyConfig::load(&repo_root().join("envoy/edge.yaml"))
    }

    /// Loads a YAML bootstrap.
    pub fn load(path: &Path) -> EnvoyConfig {
        let text =
            fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let doc: Value =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        EnvoyConfig {
            doc,
            // edge.yaml's header_mutation writes this after the peer address,
            // and oidc-edge refuses to trust a peer header without it.
            env: vec![(PEER_TOKEN_ENV.to_string(), PEER_TOKEN.to_string())],
            listen_port: None,
            module: None,
        }
    }

    /// Loads this wasm module instead of the module under test (a test-only
    /// build, say).
    pub fn module(mut self, path: PathBuf) -> EnvoyConfig {
        self.module = Some(path);
        self
    }

    /// Listens on this port (from [`free_port`]) rather than one the kernel
    /// picks: for a bed whose URLs must be known before Envoy starts, or an
    /// Envoy restarted in place.
    pub fn listen_port(mut self, port: u16) -> EnvoyConfig {
        self.listen_port = Some(port);
        self
    }

    /// Sets an environment variable for the Envoy process.
    pub fn env(mut self, key: &str, value: &str) -> EnvoyConfig {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Replaces the oidc-edge plugin configuration (the JSON string).
    pub fn plugin_config(mut self, json: &str) -> EnvoyConfig {
        let n = visit(&mut self.doc, &mut |v| {
            if v.get("@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE) {
                v["config"]["configuration"]["value"] = Value::String(json.to_string());
                true
            } else {
                false
            }
        });
        // One filter, or one per listener sharing it (YAML aliases, as in
        // multi-host.yaml, arrive here as copies).
        assert!(n >= 1, "expected an oidc-edge wasm filter in the config");
        self
    }

    /// The plugin configuration currently in the document.
    pub fn plugin_config_value(&self) -> String {
        let mut found = None;
        let mut doc = self.doc.clone();
        visit(&mut doc, &mut |v| {
            if v.get("@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE) {
                found = v["config"]["configuration"]["value"]
                    .as_str()
                    .map(str::to_string);
                true
            } else {
                false
            }
        });
        found.expect("plugin configuration")
    }

    /// Points the `app` cluster at these upstreams.
    pub fn upstreams(mut self, addrs: &[SocketAddr]) -> EnvoyConfig {
        let endpoints: Vec<Value> = addrs
            .iter()
            .map(|a| {
                serde_json::json!({"endpoint": {"address": {"socket_address": {
                    "address": a.ip().to_string(), "port_value": a.port()}}}})
            })
            .collect();
        let clusters = self.doc["static_resources"]["clusters"]
            .as_array_mut()
            .expect("clusters");
        let app = clusters
            .iter_mut()
            .find(|c| c["name"] == "app")
            .expect("cluster named app");
        app["load_assignment"]["endpoints"] = serde_json::json!([{"lb_endpoints": endpoints}]);
        self
    }

    /// Any other edit a test needs (say why in the test).
    pub fn edit(mut self, f: impl FnOnce(&mut Value)) -> EnvoyConfig {
        f(&mut self.doc);
        self
    }

    /// The document with loopback ephemeral ports and the module path filled in.
    fn finalize(&self, wasm: &Path) -> Value {
        let mut doc = self.doc.clone();
        doc["admin"]["address"]["socket_address"] =
            serde_json::json!({"address": "127.0.0.1", "port_value": 0});
        for l in doc["static_resources"]["listeners"]
            .as_array_mut()
            .expect("listeners")
        {
            let port = match l["name"].as_str() {
                Some("edge") => self.listen_port.unwrap_or(0),
                _ => 0,
            };
            l["address"]["socket_address"] =
                serde_json::json!({"address": "127.0.0.1", "port_value": port});
        }
        let n = visit(&mut doc, &mut |v| match v.get_mut("local") {
            Some(local)
                if local
                    .get("filename")
                    .and_then(Value::as_str)
                    .is_some_and(|f| f.ends_with(".wasm")) =>
            {
                local["filename"] = Value::String(wasm.display().to_string());
                true
            }
            _ => false,
        });
        // An inline wasm filter (a filter fetched through ECDS names the
        // type in `type_urls` only, and its module path is in its own file).
        let has_wasm_filter = visit(&mut doc.clone(), &mut |v| {
            v.get("@type").and_then(Value::as_str) == Some(WASM_FILTER_TYPE)
        }) > 0;
        // A module fetched over HTTP (envoy/remote.yaml) has no local path.
        let remote_code = doc.to_string().contains("\"http_uri\"");
        assert!(
            n >= 1 || !has_wasm_filter || remote_code,
            "no wasm module path found in the config"
        );
        doc
    }
}

/// Applies `f` to every object in the tree; returns how many it changed.
fn visit(v: &mut Value, f: &mut dyn FnMut(&mut Value) -> bool) -> usize {
    let mut n = 0;
    if v.is_object() && f(v) {
        n += 1;
    }
    match v {
        Value::Object(m) => m.values_mut().for_each(|c| n += visit(c, f)),
        Value::Array(a) => a.iter_mut().for_each(|c| n += visit(c, f)),
        _ => {}
    }
    n
}

/// A free loopback port below the kernel's ephemeral range (32768 and up on
/// Linux), so a port chosen now cannot be taken by some other test's bind
/// to port 0 before it is used; each call in this process gets a new one.
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let offset = std::process::id() as usize * 97;
    for _ in 0..2000 {
        let port = (20000 + (offset + NEXT.fetch_add(1, Ordering::SeqCst)) % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000")
}

/// The module under test: `OIDC_EDGE_WASM`, or the build output of `./build.sh build`.
pub fn wasm_path() -> PathBuf {
    if let Ok(p) = std::env::var("OIDC_EDGE_WASM") {
        return PathBuf::from(p);
    }
    let root = repo_root();
    let candidates = [
        root.join("target/oidc_edge.wasm"),
        root.join("target/wasm32-wasip1/release/oidc_edge.wasm"),
    ];
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no oidc_edge.wasm: run ./build.sh build (or ./build.sh test), or set OIDC_EDGE_WASM"))
}

/// The test-only module that traps on demand (see `build_fault_module` in
/// build.sh): `OIDC_EDGE_FAULT_WASM`, or `target/oidc_edge_fault.wasm`.
pub fn fault_wasm_path() -> PathBuf {
    let p = std::env::var("OIDC_EDGE_FAULT_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/oidc_edge_fault.wasm"));
    assert!(
        p.exists(),
        "no test-only fault module at {}: ./build.sh test builds it (build_fault_module)",
        p.display()
    );
    p
}

/// The Envoy binary: `ENVOY_BIN`, or the one `./build.sh test` installs.
pub fn envoy_bin() -> PathBuf {
    if let Ok(p) = std::env::var("ENVOY_BIN") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".tools/envoy/envoy/_bin/envoy");
    assert!(
        p.exists(),
        "no Envoy at {}: run ./build.sh test (it installs Envoy 1.40), or set ENVOY_BIN",
        p.display()
    );
    p
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running Envoy; killed when dropped (its log is printed if the test failed).
pub struct Envoy {
    child: Child,
    container: Option<String>,
    dir: PathBuf,
    /// Admin interface port.
    pub admin_port: u16,
    /// The `edge` listener's port.
    pub port: u16,
}

impl Envoy {
    /// Starts Envoy and waits until it is ready; panics with its log if it
    /// does not start.
    pub fn start(cfg: &EnvoyConfig) -> Envoy {
        Envoy::try_start(cfg).unwrap_or_else(|log| panic!("Envoy did not start:\n{log}"))
    }

    /// Starts Envoy; `Err` carries its log when it exits or is not ready in time.
    pub fn try_start(cfg: &EnvoyConfig) -> Result<Envoy, String> {
        let id = format!(
            "{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(format!("oidc-edge-it-{id}"));
        fs::create_dir_all(&dir).expect("temp dir");
        let wasm = cfg
            .module
            .clone()
            .unwrap_or_else(wasm_path)
            .canonicalize()
            .expect("wasm path");
        let cfg_path = dir.join("envoy.json");
        fs::write(
            &cfg_path,
            serde_json::to_vec_pretty(&cfg.finalize(&wasm)).expect("json"),
        )
        .expect("write config");
        let admin_path = dir.join("admin");
        let log = fs::File::create(dir.join("envoy.log")).expect("log file");
        let args: Vec<String> = vec![
            "-c".into(),
            cfg_path.display().to_string(),
            "--disable-hot-restart".into(),
            "--concurrency".into(),
            "1".into(),
            "-l".into(),
            std::env::var("ENVOY_LOG_LEVEL").unwrap_or_else(|_| "info".into()),
            "--admin-address-path".into(),
            admin_path.display().to_string(),
            // Access-log lines reach the log within 100 ms rather than
            // Envoy's default 10 s flush interval, for tests that read them.
            "--file-flush-interval-msec".into(),
            "100".into(),
        ];
        let (mut cmd, container) = match std::env::var("ENVOY_IMAGE") {
            Ok(image) => {
                let name = format!("oidc-edge-it-{id}");
                let mut c = Command::new("docker");
                c.args([
                    "run",
                    "--rm",
                    "--name",
                    &name,
                    "--network",
                    "host",
                    "--entrypoint",
                    "envoy",
                ]);
                // The temp dir holds this Envoy's config and every file a
                // test's config may name (certificates, keys).
                for m in [
                    &std::env::temp_dir(),
                    &wasm.parent().expect("wasm dir").to_path_buf(),
                ] {
                    c.arg("-v").arg(format!("{0}:{0}", m.display()));
                }
                c.arg(image).args(&args);
                (c, Some(name))
            }
            Err(_) => {
                let mut c = Command::new(envoy_bin());
                c.args(&args).envs(cfg.env.iter().map(|(k, v)| (k, v)));
                (c, None)
            }
        };
        // If this test process dies without unwinding (killed, timed out),
        // take Envoy with it rather than leave it running.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn Envoy: {e}"));
        let mut envoy = Envoy {
            child,
            container,
            dir,
            admin_port: 0,
            port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                return Err(format!("Envoy exited with {status}\n{}", envoy.log()));
            }
            if Instant::now() > deadline {
                return Err(format!("Envoy not ready within 60 s\n{}", envoy.log()));
            }
            // Read again on every turn: Envoy writes the file in place, so
            // a read can catch it half written (a port cut short), and a
            // port read once would then be asked forever.
            if let Some(p) = fs::read_to_string(&admin_path)
                .ok()
                .and_then(|s| s.trim().rsplit(':').next().and_then(|p| p.parse().ok()))
            {
                envoy.admin_port = p;
            }
            if envoy.admin_port != 0
                && Request::get("127.0.0.1", "/ready")
                    .try_send(envoy.admin_port)
                    .is_ok_and(|r| r.text().contains("LIVE"))
            {
                let listeners: Value = serde_json::from_str(&envoy.admin("/listeners?format=json"))
                    .expect("listeners json");
                let port = listeners["listener_statuses"]
                    .as_array()
                    .and_then(|a| a.iter().find(|l| l["name"] == "edge"))
                    .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
                    .expect("edge listener port");
                envoy.port = port as u16;
                return Ok(envoy);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port of the listener named `name` (the harness binds every
    /// listener but `edge` to a port the kernel picks).
    pub fn listener_port(&self, name: &str) -> u16 {
        let listeners: Value =
            serde_json::from_str(&self.admin("/listeners?format=json")).expect("listeners json");
        let port = listeners["listener_statuses"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["name"] == name))
            .and_then(|l| l["local_address"]["socket_address"]["port_value"].as_u64())
            .unwrap_or_else(|| panic!("no listener named {name}"));
        port as u16
    }

    /// Waits (at most 10 s) until an upstream node that was just stopped is
    /// gone as far as Envoy can tell: its port refuses connections and Envoy
    /// holds no connection to it any more. Until Envoy has read the close of
    /// a pooled connection it may still send a request on it, and that
    /// request fails as `connection_termination` (which oidc-edge does not
    /// take for a node gone) instead of the `connection_failure` the next
    /// connection attempt gives.
    pub fn wait_until_gone(&self, node: SocketAddr) {
        let active = format!("::{node}::cx_active::");
        crate::wait_until(
            Duration::from_secs(10),
            &format!("{node} refusing connections and Envoy holding none to it"),
            || {
                let refused =
                    std::net::TcpStream::connect_timeout(&node, Duration::from_millis(200))
                        .is_err();
                refused
                    && self.admin("/clusters").lines().all(|l| {
                        l.split_once(active.as_str())
                            .is_none_or(|(_, n)| n.trim() == "0")
                    })
            },
            || self.admin("/clusters"),
        );
    }

    /// GET on the admin interface.
    pub fn admin(&self, path: &str) -> String {
        Request::get("127.0.0.1", path).send(self.admin_port).text()
    }

    /// A counter oidc-edge exports (name without the `wasmcustom.` prefix).
    /// Panics if Envoy does not know it: every counter is defined at load.
    pub fn counter(&self, name: &str) -> u64 {
        let stats = self.admin("/stats");
        let key = format!("wasmcustom.{name}: ");
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("counter {name} not in /stats"))
    }

    /// The Envoy process id (the docker client's, with `ENVOY_IMAGE`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Envoy's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("envoy.log")).unwrap_or_default()
    }

    /// The access-log line of the request with this `x-request-id` (the
    /// reference configs print it as `id=`), waiting up to 5 s for Envoy
    /// to write it. Panics with the log if it never comes.
    pub fn access_line(&self, id: &str) -> String {
        let needle = format!("id={id} ");
        let mut log = self.log();
        for _ in 0..100 {
            if log.contains(&needle) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            log = self.log();
        }
        log.lines()
            .find(|l| l.contains(&needle))
            .unwrap_or_else(|| panic!("no access-log line for {id}:\n{log}"))
            .to_string()
    }

    /// Envoy's config file as written for this run.
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("envoy.json")
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            eprintln!(
                "---- Envoy log (last 40 lines; all in {}) ----\n{}",
                self.dir.display(),
                tail.join("\n")
            );
            if self.admin_port != 0 && self.child.try_wait().ok().flatten().is_none() {
                let stats = self.admin("/stats");
                let ours: Vec<&str> = stats.lines().filter(|l| l.contains("oidc")).collect();
                eprintln!("---- oidc-edge stats ----\n{}", ours.join("\n"));
            }
        }
        if let Some(name) = &self.container {
            let _ = Command::new("docker")
                .args(["rm", "-f", name])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}
