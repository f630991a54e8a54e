//! A fleet of edge Envoys behind one load balancer, with real OIDC software
//! behind them: stateless affinity means any Envoy can check any login.
//!
//! ```text
//! browser --https--> LB (Envoy, TLS) --round robin, from 127.0.0.2--> edge Envoys e0, e1, e2
//!                                                   (each oidc-edge)  --> app nodes a, b, c
//! ```
//!
//! The LB balances every request (not every connection) over the edge
//! Envoys, so one login's `/login`, callback and `/me` are checked by three
//! different Envoys. Each Envoy adds `x-edge-envoy: e<i>` to its responses
//! (a test-only edit) so a [`Hop`](crate::browser::Hop) says which answered.
//!
//! The key ring reaches each Envoy one of two ways ([`KeySource`]):
//! - [`KeySource::Env`]: `envoy/edge.yaml` with every Envoy given the same
//!   secrets in its environment; the ring (which ids, in which order) is in
//!   the plugin configuration, so changing it means restarting that Envoy;
//! - [`KeySource::Ecds`]: `envoy/fleet.yaml`, whose oidc-edge filter is
//!   fetched through ECDS from a file (`envoy/fleet-oidc-edge.yaml`) with the
//!   secrets inline; rewriting that file changes the ring with no restart.

use crate::browser::Browser;
use crate::envoy::{free_port, Envoy, EnvoyConfig};
use crate::node::NodeProcess;
use crate::oidc_bed::{
    browser_at, edge_config, lb_config, plugin_config, public_origin, spawn_app, Flavour, Login,
    Options, CLIENT_SECRET, KEYS, NODES,
};
use crate::repo_root;
use crate::tls::{pki, Pki};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the edge Envoys get their key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Secrets in each Envoy's environment (`secret_env`), `envoy/edge.yaml`.
    Env,
    /// The plugin configuration, secrets inline, delivered through ECDS
    /// from a watched file, `envoy/fleet.yaml`.
    Ecds,
}

/// The protocol of the LB → edge Envoy hop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// HTTP/1.1 over TCP.
    Http1,
    /// HTTP/2 over TCP with prior knowledge (h2c), as some cloud LBs send.
    H2c,
    /// HTTP/2 over TLS, chosen by ALPN: the edge listener terminates TLS
    /// with the test certificate and offers `h2` and `http/1.1`.
    H2Tls,
}

/// A running fleet bed; everything stops when it drops.
pub struct FleetBed {
    /// The app nodes' options (flavour, affinity...); `keys` is unused here
    /// (each Envoy has its own ring, see [`FleetBed::ring`]).
    pub options: Options,
    /// How the Envoys get their keys.
    pub source: KeySource,
    /// The IdP.
    pub idp: NodeProcess,
    /// The app nodes, in [`NODES`] order.
    pub nodes: Vec<NodeProcess>,
    edges: Vec<Option<Envoy>>,
    rings: Vec<Vec<&'static str>>,
    versions: Vec<u64>,
    edge_edit: Option<fn(&mut Value)>,
    /// The LB → edge Envoy hop.
    pub upstream: Upstream,
    /// Each edge Envoy's listener port (kept across restarts).
    pub edge_ports: Vec<u16>,
    /// The LB.
    pub lb: Envoy,
    /// The LB's port: the app's public port.
    pub lb_port: u16,
    /// The test CA and the server certificate.
    pub pki: Pki,
    dir: PathBuf,
}

impl FleetBed {
    /// Starts the IdP, three app nodes, `edges` edge Envoys (all with
    /// `ring`) and the LB in front of them. `options.flavour` must be
    /// [`Flavour::Http`]: a TCP LB balances connections, not requests.
    pub fn start(
        edges: usize,
        source: KeySource,
        ring: &[&'static str],
        options: Options,
    ) -> FleetBed {
        FleetBed::start_with(edges, source, ring, options, None, Upstream::Http1)
    }

    /// Like [`FleetBed::start`], with `edit` applied to every edge Envoy's
    /// bootstrap (a benchmark comparing a setting, say).
    pub fn start_with(
        edges: usize,
        source: KeySource,
        ring: &[&'static str],
        options: Options,
        edit: Option<fn(&mut Value)>,
        upstream: Upstream,
    ) -> FleetBed {
        assert_eq!(
            options.flavour,
            Flavour::Http,
            "the fleet LB balances requests"
        );
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("oidc-edge-fleet-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bed dir");
        let pki = pki(&dir, &["app.test", "127.0.0.1"]);
        let lb_port = options.lb_port.unwrap_or_else(free_port);
        let origin = format!("https://app.test:{lb_port}");
        let idp = NodeProcess::start(
            "idp",
            "idp.js",
            &[
                ("IDP_PORT", "0".into()),
                ("TLS_KEY", pki.key.display().to_string()),
                ("TLS_CERT", pki.cert.display().to_string()),
                ("REDIRECT_URIS", format!("{origin}/callback")),
                ("CLIENT_SECRET", CLIENT_SECRET.into()),
            ],
        );
        let issuer = format!("https://127.0.0.1:{}", idp.port);
        let starting: Vec<_> = NODES
            .iter()
            .map(|name| spawn_app(name, &issuer, &pki.ca.display().to_string(), &options))
            .collect();
        let nodes: Vec<NodeProcess> = starting.into_iter().map(|s| s.wait()).collect();
        let edge_ports: Vec<u16> = (0..edges).map(|_| free_port()).collect();
        let lb = Envoy::start(&fleet_lb_config(&edge_ports, &pki, upstream).listen_port(lb_port));
        let mut bed = FleetBed {
            options,
            source,
            idp,
            nodes,
            edges: (0..edges).map(|_| None).collect(),
            rings: vec![ring.to_vec(); edges],
            versions: vec![0; edges],
            edge_edit: edit,
            upstream,
            edge_ports,
            lb,
            lb_port,
            pki,
            dir,
        };
        for i in 0..edges {
            bed.start_edge(i);
        }
        bed
    }

    /// Edge Envoy `i` (panics if it is stopped).
    pub fn edge(&self, i: usize) -> &Envoy {
        self.edges[i].as_ref().expect("edge Envoy running")
    }

    /// The running edge Envoys.
    pub fn running_edges(&self) -> impl Iterator<Item = &Envoy> {
        self.edges.iter().flatten()
    }

    /// The key ring edge Envoy `i` runs with.
    pub fn ring(&self, i: usize) -> &[&'static str] {
        &self.rings[i]
    }

    /// A counter summed over the running edge Envoys.
    pub fn counter(&self, name: &str) -> u64 {
        self.running_edges().map(|e| e.counter(name)).sum()
    }

    /// The app's public origin.
    pub fn origin(&self) -> String {
        public_origin(self.lb_port)
    }

    /// A new browser (empty jar) that finds `app.test` at the LB.
    pub fn browser(&self) -> Browser {
        browser_at(&self.pki, self.lb_port)
    }

    /// One login in `browser` (see [`crate::oidc_bed::OidcBed::login`]).
    pub fn login(&self, browser: &mut Browser, query: &str) -> Login {
        Login::run(browser, &self.origin(), query)
    }

    /// Stops edge Envoy `i` at once, as a crash does.
    pub fn stop_edge(&mut self, i: usize) {
        drop(self.edges[i].take());
    }

    /// Stops edge Envoy `i` the way a rolling restart should: it stops
    /// accepting connections (`/drain_listeners`; the LB sends new requests
    /// to the other Envoys), finishes the requests it has, then exits.
    pub fn drain_and_stop_edge(&mut self, i: usize) {
        let e = self.edge(i);
        let r = crate::Request::post("127.0.0.1", "/drain_listeners", "text/plain", "")
            .send(e.admin_port);
        assert_eq!(r.status, 200, "drain_listeners: {}", r.text());
        let deadline = Instant::now() + Duration::from_secs(30);
        while active_requests(e) > 0 {
            assert!(
                Instant::now() < deadline,
                "edge {i} still has requests after 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop_edge(i);
    }

    /// Starts edge Envoy `i` on its port with its ring (after [`FleetBed::stop_edge`]).
    pub fn start_edge(&mut self, i: usize) {
        assert!(self.edges[i].is_none(), "edge {i} is running");
        let cfg = self.edge_config(i);
        let mut last = String::new();
        // The port may linger a moment after the old process died.
        for _ in 0..50 {
            match Envoy::try_start(&cfg) {
                Ok(e) => {
                    self.edges[i] = Some(e);
                    return;
                }
                Err(log) => last = log,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "edge Envoy {i} did not start on port {}:\n{last}",
            self.edge_ports[i]
        );
    }

    /// Gives edge Envoy `i` this key ring the way its [`KeySource`] allows:
    /// a restart in place (`Env`), or a new ECDS resource with no restart
    /// (`Ecds`; returns once Envoy has applied it).
    pub fn set_ring(&mut self, i: usize, ring: &[&'static str]) {
        self.rings[i] = ring.to_vec();
        match self.source {
            KeySource::Env => {
                self.drain_and_stop_edge(i);
                self.start_edge(i);
            }
            KeySource::Ecds => {
                let pid = self.edge(i).pid();
                self.write_plugin_resource(i);
                self.wait_applied(i);
                assert_eq!(self.edge(i).pid(), pid, "the same Envoy process");
            }
        }
    }

    /// Kills an app node (as if it crashed), by name.
    pub fn kill_node(&mut self, name: &str) {
        self.nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
            .kill();
    }

    /// The options with edge `i`'s ring.
    fn options_for(&self, i: usize) -> Options {
        let mut o = self.options.clone();
        o.keys = self.rings[i].clone();
        o
    }

    fn edge_config(&mut self, i: usize) -> EnvoyConfig {
        let port = self.edge_ports[i];
        let cfg = match self.source {
            KeySource::Env => edge_config(
                &self.options_for(i),
                &self.nodes,
                port,
                self.lb_port,
                self.idp.port,
            ),
            KeySource::Ecds => {
                self.write_plugin_resource(i);
                let path = self.plugin_resource_path(i);
                fleet_config(&path)
                    .upstreams(&self.node_addrs())
                    .listen_port(port)
            }
        };
        let name = format!("e{i}");
        let extra = self.edge_edit;
        let tls = (self.upstream == Upstream::H2Tls).then(|| {
            let mut t = crate::tls::downstream_transport_socket(&self.pki.key, &self.pki.cert);
            t["typed_config"]["common_tls_context"]["alpn_protocols"] = json!(["h2", "http/1.1"]);
            t
        });
        cfg.edit(|doc| {
            if let Some(f) = extra {
                f(doc);
            }
            if let Some(t) = tls {
                doc["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"] = t;
            }
            let filters = hcm(doc)["http_filters"]
                .as_array_mut()
                .expect("http_filters");
            let mutation = filters
                .iter_mut()
                .find(|f| f["name"] == "envoy.filters.http.header_mutation")
                .expect("header_mutation filter");
            mutation["typed_config"]["mutations"]["response_mutations"]
                .as_array_mut()
                .expect("response_mutations")
                .push(
                    json!({"append": {"header": {"key": "x-edge-envoy", "value": name},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}}),
                );
        })
    }

    fn node_addrs(&self) -> Vec<SocketAddr> {
        self.nodes
            .iter()
            .map(|n| SocketAddr::from(([127, 0, 0, 1], n.port)))
            .collect()
    }

    fn plugin_resource_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("ecds-e{i}")).join("oidc-edge.yaml")
    }

    /// Writes edge `i`'s ECDS resource (`envoy/fleet-oidc-edge.yaml` with the
    /// bed's plugin configuration, its ring's secrets inline, the module
    /// path and a new version), replacing the old file atomically as a
    /// control plane or a ConfigMap update does.
    fn write_plugin_resource(&mut self, i: usize) {
        self.versions[i] += 1;
        let plugin = inline_secrets(&plugin_config(
            &self.options_for(i),
            self.lb_port,
            self.idp.port,
        ));
        let doc = plugin_resource(&plugin, &format!("v{}", self.versions[i]));
        self.replace_resource(i, &doc);
    }

    /// Offers edge Envoy `i` this plugin configuration (as is, secrets and
    /// all) through ECDS, without waiting for Envoy to take or refuse it.
    pub fn offer_plugin(&mut self, i: usize, plugin: &str) {
        self.versions[i] += 1;
        let doc = plugin_resource(plugin, &format!("v{}", self.versions[i]));
        self.replace_resource(i, &doc);
    }

    fn replace_resource(&self, i: usize, doc: &Value) {
        let path = self.plugin_resource_path(i);
        let dir = path.parent().expect("dir");
        std::fs::create_dir_all(dir).expect("ecds dir");
        let tmp = dir.join(".oidc-edge.yaml.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(doc).expect("json")).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
    }

    /// Waits until edge `i` runs the plugin resource version just written.
    fn wait_applied(&self, i: usize) {
        let want = format!("v{}", self.versions[i]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if ecds_version(self.edge(i)).as_deref() == Some(want.as_str()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "edge {i} did not apply ECDS version {want} (has {:?}); stats:\n{}",
                ecds_version(self.edge(i)),
                self.edge(i)
                    .admin("/stats")
                    .lines()
                    .filter(|l| l.contains("extension_config_discovery"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FleetBed {
    fn drop(&mut self) {
        for e in &mut self.edges {
            drop(e.take());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The HTTP connection manager of the `edge` listener.
fn hcm(doc: &mut Value) -> &mut Value {
    &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
}

/// Requests in progress on the edge listener.
fn active_requests(envoy: &Envoy) -> u64 {
    let stats = envoy.admin("/stats?filter=^http\\.edge\\.downstream_rq_active$");
    stats
        .lines()
        .find_map(|l| l.strip_prefix("http.edge.downstream_rq_active: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no downstream_rq_active in {stats}"))
}

/// An ECDS counter of the oidc-edge filter (`config_reload`, `config_fail`).
pub fn ecds_counter(envoy: &Envoy, name: &str) -> u64 {
    let stats = envoy.admin("/stats");
    let suffix = format!(".oidc-edge.{name}: ");
    stats
        .lines()
        .filter(|l| l.contains("extension_config_discovery"))
        .find_map(|l| l.split_once(&suffix).map(|(_, v)| v.to_string()))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ECDS counter {name}"))
}

/// The version of the oidc-edge ECDS resource Envoy runs (the
/// `version_text` stat: `/config_dump` names the last version offered, even
/// one Envoy refused).
pub fn ecds_version(envoy: &Envoy) -> Option<String> {
    let stats = envoy.admin("/stats");
    stats
        .lines()
        .find_map(|l| {
            l.strip_prefix("extension_config_discovery.http_filter.oidc-edge.version_text: ")
        })
        .map(|v| v.trim().trim_matches('"').to_string())
}

/// `envoy/fleet.yaml` watching the oidc-edge ECDS resource at `path`.
pub fn fleet_config(path: &Path) -> EnvoyConfig {
    let mut cfg = EnvoyConfig::load(&repo_root().join("envoy/fleet.yaml"));
    let filters = hcm(&mut cfg.doc)["http_filters"]
        .as_array_mut()
        .expect("http_filters");
    let ours = filters
        .iter_mut()
        .find(|f| f["name"] == "oidc-edge")
        .expect("fleet.yaml has an http filter named oidc-edge");
    let source = &mut ours["config_discovery"]["config_source"]["path_config_source"];
    assert!(
        source.is_object(),
        "oidc-edge comes from a path config source"
    );
    source["path"] = json!(path.display().to_string());
    source["watched_directory"]["path"] = json!(path.parent().expect("dir").display().to_string());
    cfg
}

/// `envoy/fleet-oidc-edge.yaml` (the ECDS resource) with this plugin
/// configuration, the built module and `version`.
pub fn plugin_resource(plugin: &str, version: &str) -> Value {
    let path = repo_root().join("envoy/fleet-oidc-edge.yaml");
    let text = std::fs::read_to_string(&path).expect("read fleet-oidc-edge.yaml");
    let mut doc: Value = serde_yaml::from_str(&text).expect("parse fleet-oidc-edge.yaml");
    doc["version_info"] = json!(version);
    let wasm = crate::envoy::wasm_path().canonicalize().expect("wasm path");
    let res = &mut doc["resources"][0];
    assert_eq!(
        res["name"], "oidc-edge",
        "the resource is named like the filter"
    );
    let config = &mut res["typed_config"]["config"];
    config["configuration"]["value"] = json!(plugin);
    config["vm_config"]["code"]["local"]["filename"] = json!(wasm.display().to_string());
    doc
}

/// The plugin configuration with each key's `secret_env` replaced by the
/// secret itself (`secret`): ECDS carries the whole ring.
pub fn inline_secrets(plugin: &str) -> String {
    let mut v: Value = serde_json::from_str(plugin).expect("plugin json");
    for k in v["login_flow"]["keys"].as_array_mut().expect("keys") {
        let env = k["secret_env"].as_str().expect("secret_env").to_string();
        let (_, _, secret) = KEYS.iter().find(|(_, e, _)| *e == env).expect("known key");
        let o = k.as_object_mut().expect("key object");
        o.remove("secret_env");
        o.insert("secret".into(), json!(secret));
    }
    v.to_string()
}

/// The LB in front of the fleet: the bed's HTTP LB, balancing each request
/// round robin over the edge Envoys, and retrying on another Envoy a request
/// that could not be sent to one (stopped, restarting), as an LB with
/// health checks would route around it.
///
/// Its listener offers `h2` and `http/1.1` by ALPN (browsers choose h2);
/// `upstream` is the protocol it speaks to the Envoys.
pub fn fleet_lb_config(edge_ports: &[u16], pki: &Pki, upstream: Upstream) -> EnvoyConfig {
    let ca = pki.ca.display().to_string();
    lb_config(Flavour::Http, edge_ports[0], pki).edit(|doc| {
        doc["static_resources"]["listeners"][0]["filter_chains"][0]["transport_socket"]
            ["typed_config"]["common_tls_context"]["alpn_protocols"] = json!(["h2", "http/1.1"]);
        let endpoints: Vec<Value> = edge_ports
            .iter()
            .map(|p| json!({"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": p}}}}))
            .collect();
        let cluster = &mut doc["static_resources"]["clusters"][0];
        cluster["load_assignment"]["endpoints"] = json!([{"lb_endpoints": endpoints}]);
        // Retries of many concurrent requests while an Envoy is down.
        cluster["circuit_breakers"] = json!({"thresholds": [{"max_retries": 1024}]});
        // One request per connection: an Envoy that stopped accepting
        // (draining) gets no more requests, as a deregistered target gets
        // none from a cloud LB.
        cluster["typed_extension_protocol_options"] = json!({
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"max_requests_per_connection": 1},
                "explicit_http_config": match upstream {
                    Upstream::Http1 => json!({"http_protocol_options": {}}),
                    // allow_connect: WebSockets travel as RFC 8441 extended CONNECT.
                    Upstream::H2c | Upstream::H2Tls =>
                        json!({"http2_protocol_options": {"allow_connect": true}}),
                }}});
        if upstream == Upstream::H2Tls {
            cluster["transport_socket"] = json!({"name": "envoy.transport_sockets.tls", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": "app.test",
                "common_tls_context": {"alpn_protocols": ["h2"],
                    "validation_context": {"trusted_ca": {"filename": ca},
                        "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "app.test"}}]}}}});
        }
        // Retried on another Envoy: a request that could not be sent (any
        // method), and a GET or HEAD whose connection was reset before an
        // answer (an Envoy that stopped the instant it arrived), as nginx
        // does by default (proxy_next_upstream error timeout, idempotent
        // methods only).
        let routes = &mut hcm(doc)["route_config"]["virtual_hosts"][0]["routes"];
        let plain = routes[0].clone();
        let policy = |on: &str| {
            json!({"retry_on": on, "num_retries": 3,
            "retry_host_predicate": [{"name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"}}]})
        };
        let mut idempotent = plain.clone();
        idempotent["match"]["headers"] = json!([{"name": ":method",
            "string_match": {"safe_regex": {"regex": "GET|HEAD"}}}]);
        idempotent["route"]["retry_policy"] = policy("connect-failure,reset");
        let mut other = plain;
        other["route"]["retry_policy"] = policy("connect-failure,reset-before-request");
        *routes = json!([idempotent, other]);
    })
}
