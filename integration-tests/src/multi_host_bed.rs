//! One edge Envoy (`envoy/multi-host.yaml`) behind four load balancers at
//! once, each serving two host names, in front of the real-OIDC bed's IdP
//! and app nodes (see [`crate::oidc_bed`]):
//!
//! ```text
//! browser --https--> HAProxy mode http  (a.test, b.test) --from 127.0.0.4--\
//!         --https--> nginx L7           (c.test, d.test) --from 127.0.0.5---+--> listener edge
//!         --https--> Envoy tcp_proxy    (e.test, f.test) --from 127.0.0.2--/
//!         --https--> HAProxy mode tcp   (g.test, h.test) --PROXY v2, from 127.0.0.6--> listener edge_proxy
//! ```
//!
//! The HTTP LBs are trusted (`trusted_cidrs`); HAProxy `mode tcp` is a
//! `tcp_load_balancers` entry with the PROXY protocol; the Envoy TCP LB is
//! not named at all: its hosts' origins are declared in `external_origins`,
//! as are nginx's (its `Host $host` drops the port).

use crate::browser::Browser;
use crate::envoy::{free_port, Envoy, EnvoyConfig};
use crate::node::NodeProcess;
use crate::oidc_bed::{lb_config, spawn_app, Flavour, Login, Options, CLIENT_SECRET, KEYS, NODES};
use crate::real_lb::{self, LbProcess};
use crate::repo_root;
use crate::tls::{pki, Pki};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The load balancers in front, and the host names each serves.
pub const FRONTS: [(&str, [&str; 2]); 4] = [
    ("haproxy-http", ["a.test", "b.test"]),
    ("nginx", ["c.test", "d.test"]),
    ("envoy-tcp", ["e.test", "f.test"]),
    ("haproxy-tcp-proxy", ["g.test", "h.test"]),
];

/// One load balancer of the bed.
pub struct Front {
    /// Its name in [`FRONTS`].
    pub name: &'static str,
    /// Its host names.
    pub hosts: [&'static str; 2],
    /// Its public port (every host on it).
    pub port: u16,
}

impl Front {
    /// `https://<host>:<port>` of each host.
    pub fn origins(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| format!("https://{h}:{}", self.port))
            .collect()
    }
}

/// The running bed; everything stops when it drops.
pub struct MultiHostBed {
    /// The IdP.
    pub idp: NodeProcess,
    /// The app nodes.
    pub nodes: Vec<NodeProcess>,
    /// The edge Envoy (oidc-edge, or none with `filter` false).
    pub edge: Envoy,
    /// The load balancers, in [`FRONTS`] order.
    pub fronts: Vec<Front>,
    _lbs: Vec<LbProcess>,
    _envoy_lb: Envoy,
    pki: Pki,
    dir: PathBuf,
}

/// oidc-edge's configuration for the bed: which peer is which kind of LB,
/// and the declared origins.
pub fn plugin_config(fronts: &[Front], idp_port: u16) -> String {
    let origins = |name: &str| -> Vec<String> {
        fronts
            .iter()
            .filter(|f| f.name == name)
            .flat_map(Front::origins)
            .collect()
    };
    let all: Vec<String> = fronts.iter().flat_map(Front::origins).collect();
    let hosts: Vec<&str> = fronts.iter().flat_map(|f| f.hosts).collect();
    let mut declared = origins("nginx");
    declared.extend(origins("envoy-tcp"));
    let keys: Vec<Value> = KEYS
        .iter()
        .take(1)
        .map(|(id, env, _)| json!({"id": id, "secret_env": env}))
        .collect();
    json!({
        "forwarded": {
            "trusted_cidrs": [format!("{}/32", real_lb::HAPROXY_HTTP_FROM), format!("{}/32", real_lb::NGINX_FROM)],
            "tcp_load_balancers": [
                {"cidrs": [format!("{}/32", real_lb::HAPROXY_PROXY_FROM)], "scheme": "https", "proxy_protocol": true}
            ],
            "external_origins": declared,
            "allowed_hosts": hosts
        },
        "login_flow": {
            "authorization_endpoints": [format!("https://127.0.0.1:{idp_port}/auth")],
            "callback_paths": ["/callback"],
            "keys": keys,
            "affinity": "session"
        },
        "redirects": {
            "redirect_uris": all.iter().map(|o| format!("{o}/callback")).collect::<Vec<_>>(),
            "redirect_uri_mode": "enforce",
            "rewrite_upstream_origin": true,
            "return_to": {"paths": ["/login", "/logout"]}
        }
    })
    .to_string()
}

impl MultiHostBed {
    /// Starts the IdP, three app nodes, the edge Envoy (with or without
    /// oidc-edge) and the four load balancers.
    pub fn start(filter: bool) -> MultiHostBed {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("oidc-edge-multi-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bed dir");
        let mut names: Vec<&str> = FRONTS.iter().flat_map(|(_, h)| *h).collect();
        names.push("127.0.0.1");
        let pki = pki(&dir, &names);
        let fronts: Vec<Front> = FRONTS
            .iter()
            .map(|(name, hosts)| Front {
                name,
                hosts: *hosts,
                port: free_port(),
            })
            .collect();
        let redirect_uris: Vec<String> = fronts
            .iter()
            .flat_map(Front::origins)
            .map(|o| format!("{o}/callback"))
            .collect();
        let idp = NodeProcess::start(
            "idp",
            "idp.js",
            &[
                ("IDP_PORT", "0".into()),
                ("TLS_KEY", pki.key.display().to_string()),
                ("TLS_CERT", pki.cert.display().to_string()),
                ("REDIRECT_URIS", redirect_uris.join(" ")),
                ("CLIENT_SECRET", CLIENT_SECRET.into()),
            ],
        );
        let issuer = format!("https://127.0.0.1:{}", idp.port);
        let options = Options::new(Flavour::Http);
        let starting: Vec<_> = NODES
            .iter()
            .map(|name| spawn_app(name, &issuer, &pki.ca.display().to_string(), &options))
            .collect();
        let nodes: Vec<NodeProcess> = starting.into_iter().map(|s| s.wait()).collect();
        let addrs: Vec<SocketAddr> = nodes
            .iter()
            .map(|n| SocketAddr::from(([127, 0, 0, 1], n.port)))
            .collect();
        let mut cfg = EnvoyConfig::load(&repo_root().join("envoy/multi-host.yaml"))
            .plugin_config(&plugin_config(&fronts, idp.port))
            .upstreams(&addrs);
        for (_, env, secret) in KEYS {
            cfg = cfg.env(env, secret);
        }
        if !filter {
            cfg = cfg.edit(|doc| {
                for l in doc["static_resources"]["listeners"]
                    .as_array_mut()
                    .expect("listeners")
                {
                    let filters = l["filter_chains"][0]["filters"][0]["typed_config"]
                        ["http_filters"]
                        .as_array_mut()
                        .expect("http_filters");
                    filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
                }
            });
        }
        let edge = Envoy::start(&cfg);
        let edge_proxy_port = edge.listener_port("edge_proxy");
        let lbs = vec![
            real_lb::haproxy_http(&dir, &pki, fronts[0].port, edge.port),
            real_lb::nginx(&dir, &pki, fronts[1].port, edge.port),
            real_lb::haproxy_tcp_proxy(&dir, &pki, fronts[3].port, edge_proxy_port),
        ];
        let envoy_lb =
            Envoy::start(&lb_config(Flavour::Tcp, edge.port, &pki).listen_port(fronts[2].port));
        MultiHostBed {
            idp,
            nodes,
            edge,
            fronts,
            _lbs: lbs,
            _envoy_lb: envoy_lb,
            pki,
            dir,
        }
    }

    /// The load balancer named `name`.
    pub fn front(&self, name: &str) -> &Front {
        self.fronts
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no front {name}"))
    }

    /// A new browser (empty jar) that finds every host at its LB.
    pub fn browser(&self) -> Browser {
        let mut b = Browser::new(&self.pki.ca);
        for f in &self.fronts {
            for h in f.hosts {
                b = b.resolve(
                    &format!("{h}:{}", f.port),
                    SocketAddr::from(([127, 0, 0, 1], f.port)),
                );
            }
        }
        b
    }

    /// One login at `origin`, every redirect followed.
    pub fn login(&self, browser: &mut Browser, origin: &str) -> Login {
        let from = browser.trace.len();
        let page = browser.navigate(&format!("{origin}/login"));
        Login {
            page,
            hops: browser.trace[from..].to_vec(),
        }
    }
}

impl Drop for MultiHostBed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
