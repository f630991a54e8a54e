//! The end-to-end bed: real OIDC software behind a TLS-terminating load
//! balancer, with oidc-edge's Envoy (from `envoy/edge.yaml`) in between.
//!
//! ```text
//! browser --https--> LB (Envoy, TLS, port P) --from 127.0.0.2--> edge Envoy + oidc-edge
//!    |                                          --round robin--> app nodes a, b, c (Express +
//!    |                                                           express-session + openid-client,
//!    |                                                           or Flask + Authlib: Options::rp)
//!    +--https--> IdP (oidc-provider, https://127.0.0.1:I) <--back channel-- app nodes
//! ```
//!
//! The app is at `https://app.test:P` (the browser resolves `app.test` to the
//! LB); the IdP at `https://127.0.0.1:I`. Both certificates come from a test
//! CA that the browser and Node trust. Two LB flavours: [`Flavour::Http`]
//! (an HTTP LB that sends `X-Forwarded-Proto`) and [`Flavour::Tcp`] (a TCP
//! LB that forwards nothing). [`Options::filter`] false removes oidc-edge
//! from the edge Envoy, to show what breaks without it.

use crate::browser::{Browser, Hop, Page};
use crate::envoy::{free_port, Envoy, EnvoyConfig};
use crate::node::{NodeProcess, Starting};
use crate::tls::{pki, Pki};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The client secret shared by the IdP and the app (test only).
pub const CLIENT_SECRET: &str = "e2e-client-secret";

/// Signing keys for oidc-edge (test only): id, environment variable, secret.
pub const KEYS: [(&str, &str, &str); 2] = [
    (
        "k1",
        "OIDC_EDGE_KEY_1",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ),
    (
        "k2",
        "OIDC_EDGE_KEY_2",
        "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
    ),
];

/// The app nodes' names.
pub const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

/// The load balancer in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// TLS-terminating HTTP LB: sends X-Forwarded-Proto and -For.
    Http,
    /// TLS-terminating TCP LB: forwards bytes, no headers.
    Tcp,
}

/// The relying-party app on the nodes: two OIDC client libraries from two
/// ecosystems, each keeping sessions (and the login in progress) in the
/// node's memory, so that oidc-edge is not tuned to one library's habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rp {
    /// `e2e/app.js`: Express, express-session's memory store, openid-client.
    Express,
    /// `e2e/authlib_app.py`: Flask behind ProxyFix, Authlib's Flask client,
    /// server-side sessions in memory (the cookie holds an id only).
    Authlib,
}

impl Rp {
    /// Both, for scenarios run against each.
    pub const ALL: [Rp; 2] = [Rp::Express, Rp::Authlib];

    /// Whether the app keeps each login's state apart, so that several
    /// logins in progress in one session (tabs) all finish. app.js keeps
    /// one login per session (the newest); Authlib one state per login.
    pub fn keeps_a_state_per_login(self) -> bool {
        self == Rp::Authlib
    }

    /// What the app answers (first line, status 400) to a callback that
    /// reaches a node holding no login for it (the login's state is in
    /// another node's memory).
    pub fn lost_login(self) -> &'static str {
        match self {
            // app.js's own check before openid-client's.
            Rp::Express => "no login in progress",
            // Authlib's MismatchingStateError: no state data in the session.
            Rp::Authlib => "mismatching_state",
        }
    }
}

/// How to build the bed.
#[derive(Debug, Clone)]
pub struct Options {
    /// The LB flavour.
    pub flavour: Flavour,
    /// oidc-edge in the edge Envoy (false: removed, to show what fails).
    pub filter: bool,
    /// Key ids in ring order (the first signs): from [`KEYS`].
    pub keys: Vec<&'static str>,
    /// The edge HCM's `stream_idle_timeout` instead of edge.yaml's (quick
    /// tests of long-lived requests).
    pub stream_idle_timeout: Option<&'static str>,
    /// The LB's port (the app's public port); `None`: any free one.
    pub lb_port: Option<u16>,
    /// The app's session cookie `SameSite` (`none` for form_post logins).
    pub app_session_same_site: &'static str,
    /// The relying-party app on the nodes.
    pub rp: Rp,
}

impl Options {
    /// oidc-edge behind this LB flavour, key k1.
    pub fn new(flavour: Flavour) -> Options {
        Options {
            flavour,
            filter: true,
            keys: vec!["k1"],
            stream_idle_timeout: None,
            lb_port: None,
            app_session_same_site: "lax",
            rp: Rp::Express,
        }
    }

    /// With this relying-party app on the nodes.
    pub fn rp(mut self, rp: Rp) -> Options {
        self.rp = rp;
        self
    }

    /// The same bed without oidc-edge.
    pub fn without_filter(self) -> Options {
        self.filter(false)
    }

    /// With or without oidc-edge (for scenarios run both ways).
    pub fn filter(mut self, on: bool) -> Options {
        self.filter = on;
        self
    }
}

/// A running bed; everything stops when it drops.
pub struct OidcBed {
    /// How it was built.
    pub options: Options,
    /// The IdP.
    pub idp: NodeProcess,
    /// The app nodes, in [`NODES`] order.
    pub nodes: Vec<NodeProcess>,
    edge: Option<Envoy>,
    /// The LB.
    pub lb: Envoy,
    /// The edge Envoy's listener port (kept across restarts).
    pub edge_port: u16,
    /// The LB's port: the app's public port.
    pub lb_port: u16,
    /// The test CA and the server certificate.
    pub pki: Pki,
    dir: PathBuf,
}

/// What one login through the bed came to.
#[derive(Debug, Clone)]
pub struct Login {
    /// The last page: `/me` with the user when the login worked.
    pub page: Page,
    /// The requests made, in order.
    pub hops: Vec<Hop>,
}

/// The app's public origin behind a load balancer on `lb_port`.
pub fn public_origin(lb_port: u16) -> String {
    format!("https://app.test:{lb_port}")
}

/// A new browser (empty jar) that trusts `pki`'s CA and finds `app.test`
/// at the load balancer on `lb_port`.
pub fn browser_at(pki: &Pki, lb_port: u16) -> Browser {
    Browser::new(&pki.ca).resolve(
        &format!("app.test:{lb_port}"),
        SocketAddr::from(([127, 0, 0, 1], lb_port)),
    )
}

impl Login {
    /// One login in `browser` at `origin`: `/login` (with `query`), every
    /// redirect followed through the IdP and back.
    pub fn run(browser: &mut Browser, origin: &str, query: &str) -> Login {
        let from = browser.trace.len();
        let page = browser.navigate(&format!("{origin}/login{query}"));
        Login {
            page,
            hops: browser.trace[from..].to_vec(),
        }
    }

    /// The user ended logged in: `/me` answered 200 with a `sub`.
    pub fn ok(&self) -> bool {
        self.page.url.path() == "/me"
            && self.page.status() == 200
            && self.me().get("sub").is_some_and(Value::is_string)
    }

    /// `/me`'s JSON (Null if it is not JSON).
    pub fn me(&self) -> Value {
        serde_json::from_slice(&self.page.response.body).unwrap_or(Value::Null)
    }

    /// The node that served the first `/login` of this flow.
    pub fn login_node(&self) -> Option<&str> {
        self.hop("/login").and_then(|h| h.node.as_deref())
    }

    /// The node that served the (last) `/callback`.
    pub fn callback_node(&self) -> Option<&str> {
        self.hops
            .iter()
            .rev()
            .find(|h| h.url.path() == "/callback")
            .and_then(|h| h.node.as_deref())
    }

    /// The `redirect_uri` the app sent to the IdP (first authorization request).
    pub fn redirect_uri(&self) -> Option<String> {
        self.hops
            .iter()
            .find(|h| h.url.path() == "/auth")
            .and_then(|h| h.url.query_pairs().find(|(k, _)| k == "redirect_uri"))
            .map(|(_, v)| v.into_owned())
    }

    /// Any answer of 500 or more on the way (or a failed connection).
    pub fn server_errors(&self) -> Vec<&Hop> {
        self.hops
            .iter()
            .filter(|h| h.status >= 500 || h.status == 0)
            .collect()
    }

    /// The first hop to this path.
    pub fn hop(&self, path: &str) -> Option<&Hop> {
        self.hops.iter().find(|h| h.url.path() == path)
    }

    /// Every hop, one per line, for failure messages and the demo.
    pub fn describe(&self) -> String {
        self.hops
            .iter()
            .map(describe_hop)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One hop on one line: method, URL (shortened), status, node, reason.
pub fn describe_hop(h: &Hop) -> String {
    let mut url = h.url.to_string();
    if url.len() > 110 {
        url.truncate(107);
        url.push_str("...");
    }
    let mut s = format!("{} {url} -> {}", h.method, h.status);
    if let Some(n) = &h.node {
        s.push_str(&format!(" [{n}]"));
    }
    if let Some(r) = &h.reason {
        s.push_str(&format!(" x-oidc-edge-reason: {r}"));
    }
    if h.status >= 400 && !h.summary.is_empty() {
        s.push_str(&format!(" \"{}\"", h.summary));
    }
    s
}

impl OidcBed {
    /// Starts the IdP, three app nodes, the edge Envoy and the LB.
    pub fn start(options: Options) -> OidcBed {
        static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("oidc-edge-e2e-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bed dir");
        let pki = pki(&dir, &["app.test", "127.0.0.1"]);
        let lb_port = options.lb_port.unwrap_or_else(free_port);
        let edge_port = free_port();
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
        // Spawned here (see NodeProcess::spawn), started in parallel.
        let starting: Vec<_> = NODES
            .iter()
            .map(|name| spawn_app(name, &issuer, &pki.ca.display().to_string(), &options))
            .collect();
        let nodes: Vec<NodeProcess> = starting.into_iter().map(|s| s.wait()).collect();
        let edge = Envoy::start(&edge_config(&options, &nodes, edge_port, lb_port, idp.port));
        let lb = Envoy::start(&lb_config(options.flavour, edge_port, &pki).listen_port(lb_port));
        OidcBed {
            options,
            idp,
            nodes,
            edge: Some(edge),
            lb,
            edge_port,
            lb_port,
            pki,
            dir,
        }
    }

    /// The edge Envoy (oidc-edge), listening on `edge_port`.
    pub fn edge(&self) -> &Envoy {
        self.edge.as_ref().expect("edge Envoy running")
    }

    /// The app's public origin, `https://app.test:<LB port>`.
    pub fn origin(&self) -> String {
        public_origin(self.lb_port)
    }

    /// A new browser (empty jar) that finds `app.test` at the LB.
    pub fn browser(&self) -> Browser {
        browser_at(&self.pki, self.lb_port)
    }

    /// One login in `browser`: `/login` (with `query`, e.g. `?prompt=none`),
    /// every redirect followed through the IdP and back.
    pub fn login(&self, browser: &mut Browser, query: &str) -> Login {
        Login::run(browser, &self.origin(), query)
    }

    /// Restarts the edge Envoy in place (same port) with this key ring: a
    /// rollout of a new oidc-edge configuration.
    pub fn restart_edge(&mut self, keys: &[&'static str]) {
        self.options.keys = keys.to_vec();
        let cfg = edge_config(
            &self.options,
            &self.nodes,
            self.edge_port,
            self.lb_port,
            self.idp.port,
        );
        self.replace_edge(&cfg);
    }

    /// Replaces the edge Envoy by one started from `cfg` (which must
    /// listen on `edge_port`, as [`edge_config`] does): a test's own
    /// variant of the bed's configuration.
    pub fn replace_edge(&mut self, cfg: &EnvoyConfig) {
        // The old Envoy must release the port first.
        drop(self.edge.take());
        let mut last = String::new();
        for _ in 0..50 {
            match Envoy::try_start(cfg) {
                Ok(e) => {
                    self.edge = Some(e);
                    return;
                }
                Err(log) => last = log,
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "edge Envoy did not restart on port {}:\n{last}",
            self.edge_port
        );
    }

    /// Kills an app node (as if it crashed), by name.
    ///
    /// Returns once the edge Envoy has seen the node's connections close, as
    /// it has long before a user's next click: a request sent in the
    /// instant between the kill and Envoy reading the close would go out on
    /// a pooled connection ([`Envoy::wait_until_gone`]).
    pub fn kill_node(&mut self, name: &str) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"));
        node.kill();
        let addr = SocketAddr::from(([127, 0, 0, 1], node.port));
        if let Some(edge) = &self.edge {
            edge.wait_until_gone(addr);
        }
    }
}

impl Drop for OidcBed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Spawns one app node (see [`NodeProcess::spawn`]) of `options.rp`.
pub fn spawn_app(name: &str, issuer: &str, ca: &str, options: &Options) -> Starting {
    let mut env = vec![
        ("NODE_NAME", name.into()),
        ("PORT", "0".into()),
        ("ISSUER", issuer.into()),
        ("CLIENT_SECRET", CLIENT_SECRET.into()),
        ("SESSION_SAMESITE", options.app_session_same_site.into()),
    ];
    match options.rp {
        Rp::Express => {
            env.push(("NODE_EXTRA_CA_CERTS", ca.into()));
            NodeProcess::spawn(name, "app.js", &env)
        }
        Rp::Authlib => {
            // requests (Authlib's HTTP client) trusts this bundle only.
            env.push(("REQUESTS_CA_BUNDLE", ca.into()));
            let path = crate::node::python_path().to_string_lossy().into_owned();
            env.push(("PYTHONPATH", path));
            env.push(("PYTHONUNBUFFERED", "1".into()));
            NodeProcess::spawn_with("python3", name, "authlib_app.py", &env)
        }
    }
}

/// oidc-edge's configuration for the bed.
pub fn plugin_config(options: &Options, lb_port: u16, idp_port: u16) -> String {
    let origin = format!("https://app.test:{lb_port}");
    // The HTTP LB says https itself; the TCP LB says nothing: its scheme is
    // configured, and the forwarding headers that reach Envoy through it
    // are the client's.
    let forwarded = match options.flavour {
        Flavour::Http => json!({"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.test"]}),
        Flavour::Tcp => {
            json!({"tcp_load_balancers": [{"cidrs": ["127.0.0.2/32"], "scheme": "https"}],
                               "allowed_hosts": ["app.test"]})
        }
    };
    let keys: Vec<Value> = options
        .keys
        .iter()
        .map(|id| {
            let (_, env, _) = KEYS
                .iter()
                .find(|(k, _, _)| k == id)
                .unwrap_or_else(|| panic!("no key {id}"));
            json!({"id": id, "secret_env": env})
        })
        .collect();
    json!({
        "forwarded": forwarded,
        "login_flow": {
            "authorization_endpoints": [format!("https://127.0.0.1:{idp_port}/auth")],
            "callback_paths": ["/callback"],
            "keys": keys,
            // The app keeps sessions in memory: keep each browser on its node.
            "affinity": "session"
        },
        "redirects": {
            "redirect_uris": [format!("{origin}/callback")],
            "redirect_uri_mode": "enforce",
            "rewrite_upstream_origin": true,
            "return_to": {"paths": ["/login", "/logout"]}
        }
    })
    .to_string()
}

/// The edge Envoy: `envoy/edge.yaml` with the bed's plugin config, nodes and
/// keys (or without oidc-edge).
pub fn edge_config(
    options: &Options,
    nodes: &[NodeProcess],
    edge_port: u16,
    lb_port: u16,
    idp_port: u16,
) -> EnvoyConfig {
    let addrs: Vec<SocketAddr> = nodes
        .iter()
        .map(|n| SocketAddr::from(([127, 0, 0, 1], n.port)))
        .collect();
    let mut cfg = EnvoyConfig::reference()
        .plugin_config(&plugin_config(options, lb_port, idp_port))
        .upstreams(&addrs)
        .listen_port(edge_port);
    for (_, env, secret) in KEYS {
        cfg = cfg.env(env, secret);
    }
    let filter = options.filter;
    let idle = options.stream_idle_timeout;
    cfg.edit(|doc| {
        let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
            ["typed_config"];
        if let Some(t) = idle {
            hcm["stream_idle_timeout"] = json!(t);
        }
        if !filter {
            let filters = hcm["http_filters"].as_array_mut().expect("http_filters");
            let before = filters.len();
            filters.retain(|f| f["name"] != "envoy.filters.http.wasm");
            assert_eq!(filters.len() + 1, before, "edge.yaml has one wasm filter");
        }
    })
}

/// The LB's bootstrap: a TLS listener named "edge" (the harness finds it by
/// that name) forwarding to the edge Envoy from 127.0.0.2, configured as an
/// operator should configure an LB in front of OIDC apps: WebSocket
/// upgrades on, no overall route timeout (long polls, SSE).
pub fn lb_config(flavour: Flavour, edge_port: u16, pki: &Pki) -> EnvoyConfig {
    let tls = crate::tls::downstream_transport_socket(&pki.key, &pki.cert);
    let filter = match flavour {
        Flavour::Http => {
            json!({"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "lb", "use_remote_address": true,
            "upgrade_configs": [{"upgrade_type": "websocket"}],
            "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "edge", "timeout": "0s"}}]}]},
            "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}})
        }
        Flavour::Tcp => json!({"name": "envoy.filters.network.tcp_proxy", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "lb", "cluster": "edge"}}),
    };
    let doc = json!({
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{"name": "edge", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"transport_socket": tls, "filters": [filter]}]}],
            "clusters": [{"name": "edge", "type": "STATIC", "connect_timeout": "2s",
                "upstream_bind_config": {"source_address": {"address": "127.0.0.2", "port_value": 0}},
                "load_assignment": {"cluster_name": "edge", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": edge_port}}}}]}]}}]
        }
    });
    EnvoyConfig {
        doc,
        env: Vec::new(),
        listen_port: None,
        module: None,
    }
}
