//! `./build.sh bench`: what oidc-edge costs inside Envoy 1.40, against what
//! an operator would run instead.
//!
//! Every variant is its own Envoy built from `envoy/edge.yaml` (one worker,
//! pinned to CPU 0; wrk and the nginx upstream on CPU 1), all started before
//! measuring. Rounds are interleaved — A B C … B C A … C A B …, each round
//! starting one variant further on — so a machine that drifts during the
//! run moves every variant alike and no variant always runs in the same
//! place of a round; each round's variants are compared with each other
//! ("paired"): the tables report the median of the per-round differences
//! and their spread, never a difference of medians taken at different
//! times.
//!
//! "µs/request" is Envoy's CPU time (all its threads, from
//! `/proc/<pid>/task/*/schedstat`) divided by the requests it served, which
//! does not depend on how fast wrk is. Routes answer either with
//! `direct_response` (no upstream cost hides the filter's) or through the
//! reference route to nginx.
//!
//! Environment: `BENCH_ROUNDS` (default 5), `BENCH_SECONDS` per variant and
//! round (default 5), `BENCH_ONLY` (only variants whose name contains one
//! of these comma-separated words), `BENCH_TABLES` (some of `direct`,
//! `proxied`, `growth`),
//! `BENCH_BASE_WASM` (also run each oidc-edge variant with this module, to
//! measure a change), `BENCH_PROBES` (`kind=module.wasm` words: the host-call
//! probes of `./build.sh hostcall-costs`), `BENCH_NOOP_WASM` (the no-op filter; default
//! `target/noop_filter.wasm`), `BENCH_README` (write the tables into this
//! file between the loadbench markers).

use integration_tests::{repo_root, Envoy, EnvoyConfig, Request};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The external origin the LB headers describe (sealed cookies are bound to it).
const HOST: &str = "app.example.com";
/// Signing key of every variant (the first of the ring).
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// Where the app sends the browser to log in (a registered redirect_uri).
const IDP_LOCATION: &str = "https://idp.example.com/oauth2/authorize?response_type=code&client_id=app&scope=openid&state=bench-state-0123456789&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
const STATE: &str = "bench-state-0123456789";
/// Stands in a plugin configuration for the session header value that pins
/// a request to the nginx upstream (replaced when the Envoy is configured).
const UPSTREAM_NODE: &str = "{upstream_node}";

/// What a trusted HTTP load balancer adds to every request.
const LB_HEADERS: &[&str] = &[
    "X-Forwarded-Proto: https",
    "X-Forwarded-Host: app.example.com",
    "X-Forwarded-Port: 443",
    "X-Forwarded-For: 203.0.113.9",
];

/// What a browser's top-level navigation carries (login_flow starts flows on these only).
const NAVIGATION: &[&str] = &[
    "Sec-Fetch-Mode: navigate",
    "Sec-Fetch-Dest: document",
    "Sec-Fetch-Site: none",
];

/// The Lua filter a team might write instead: the forwarded work only. It
/// believes the forwarding headers when the direct peer (the address the
/// header_mutation filter wrote) is the LB, and otherwise replaces them;
/// it sets X-Forwarded-Proto/Host/Port/For and removes the rest.
const LUA: &str = r#"
function envoy_on_request(handle)
  local h = handle:headers()
  local peer = h:get("x-oidc-edge-peer") or ""
  local ip = string.match(peer, "^([^;]+)") or ""
  local proto, host, port = "http", h:get(":authority") or "", "80"
  local client = ip
  if ip == "127.0.0.1" then
    proto = h:get("x-forwarded-proto") or proto
    host = h:get("x-forwarded-host") or host
    port = h:get("x-forwarded-port") or (proto == "https" and "443" or "80")
    local xff = h:get("x-forwarded-for")
    if xff then client = string.match(xff, "([^,%s]+)%s*$") or ip end
  end
  h:replace("x-forwarded-proto", proto)
  h:replace("x-forwarded-host", host)
  h:replace("x-forwarded-port", port)
  h:replace("x-forwarded-for", client)
  h:remove("forwarded")
  h:remove("x-forwarded-prefix")
  h:remove("x-oidc-edge-peer")
end
"#;

#[derive(Clone)]
enum Filter {
    /// No filter in the wasm filter's place.
    None,
    /// The no-op Rust wasm filter (the ABI floor).
    Noop,
    /// The Lua filter above.
    Lua,
    /// oidc-edge with this plugin configuration, from this module (`None`:
    /// the module under test).
    Edge(String, Option<PathBuf>),
}

#[derive(Clone, Copy, PartialEq)]
enum Backend {
    Direct,
    Proxied,
}

#[derive(Clone)]
struct Variant {
    name: String,
    /// Which table the variant belongs to.
    table: Table,
    filter: Filter,
    backend: Backend,
    path: String,
    headers: Vec<String>,
    /// The status every answer must have.
    status: u16,
    /// Key ring size (keys 2.. verify only).
    keys: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Table {
    Direct,
    Proxied,
    Growth,
}

/// nginx as the fast upstream: one worker on CPU 1, the same answers the
/// direct routes give.
struct Nginx {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Nginx {
    fn start() -> Nginx {
        let port = integration_tests::free_port();
        let dir =
            std::env::temp_dir().join(format!("oidc-edge-bench-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               keepalive_requests 1000000;\n\
               server {{\n    listen 127.0.0.1:{port};\n\
                 location = /login {{ return 302 \"{IDP_LOCATION}\"; }}\n\
                 location / {{ default_type text/plain; return 200 \"ok\"; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new("taskset")
            .args(["-c", "1", "nginx", "-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (./build.sh bench installs it)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The reference plugin configuration, as an operator behind this bench's
/// LB (127.0.0.1) would adapt it: the LB's address, session affinity.
fn full_plugin(trusted: &str, edit: impl FnOnce(&mut Value)) -> String {
    let text = EnvoyConfig::reference().plugin_config_value();
    let mut v: Value = serde_json::from_str(&text).expect("edge.yaml plugin config is JSON");
    v["forwarded"]["trusted_cidrs"] = json!([trusted]);
    v["login_flow"]["affinity"] = json!("session");
    edit(&mut v);
    v.to_string()
}

fn forwarded_plugin() -> String {
    let text = EnvoyConfig::reference().plugin_config_value();
    let v: Value = serde_json::from_str(&text).expect("edge.yaml plugin config is JSON");
    let mut f = v["forwarded"].clone();
    f["trusted_cidrs"] = json!(["127.0.0.1/32"]);
    json!({ "forwarded": f }).to_string()
}

fn http_filters(doc: &mut Value) -> &mut Vec<Value> {
    doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"]
        .as_array_mut()
        .expect("http_filters")
}

fn configure(v: &Variant, upstream: u16, noop: &Path) -> EnvoyConfig {
    let mut cfg = EnvoyConfig::reference();
    for i in 1..=v.keys.max(1) {
        // Key 1 signs (the cookies below are sealed with it); the others verify.
        let secret = if i == 1 {
            KEY.to_string()
        } else {
            base64_of(&[u8::try_from(i).unwrap_or(0); 32])
        };
        cfg = cfg.env(&format!("OIDC_EDGE_KEY_{i}"), &secret);
    }
    cfg = cfg.upstreams(&[std::net::SocketAddr::from(([127, 0, 0, 1], upstream))]);
    if v.keys > 2 {
        cfg = cfg.edit(|doc| {
            let keys: Vec<Value> = (3..=v.keys)
                .map(|i| json!(format!("OIDC_EDGE_KEY_{i}")))
                .collect();
            let n = edit_wasm(doc, |w| {
                w["config"]["vm_config"]["environment_variables"]["host_env_keys"]
                    .as_array_mut()
                    .expect("host_env_keys")
                    .extend(keys.clone());
            });
            assert_eq!(n, 1);
        });
    }
    if v.backend == Backend::Direct {
        cfg = cfg.edit(|doc| {
            let hcm = &mut doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
                ["typed_config"];
            hcm["route_config"]["virtual_hosts"][0]["routes"] = json!([
                {"match": {"path": "/login"},
                 "direct_response": {"status": 302},
                 // (Envoy reads % as a substitution: escaped.)
                 "response_headers_to_add": [{"header": {"key": "location", "value": IDP_LOCATION.replace('%', "%%")}}]},
                {"match": {"prefix": "/"},
                 "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
            ]);
        });
    }
    match &v.filter {
        Filter::Edge(plugin, module) => {
            let node = base64_of(format!("127.0.0.1:{upstream}").as_bytes());
            cfg = cfg.plugin_config(&plugin.replace(UPSTREAM_NODE, &node));
            if let Some(m) = module {
                cfg = cfg.module(m.clone());
            }
            cfg
        }
        Filter::Noop => cfg.plugin_config("{}").module(noop.to_path_buf()),
        Filter::None => cfg.edit(|doc| {
            http_filters(doc).retain(|f| f["name"] != "envoy.filters.http.wasm");
        }),
        Filter::Lua => cfg.edit(|doc| {
            for f in http_filters(doc).iter_mut() {
                if f["name"] == "envoy.filters.http.wasm" {
                    *f = json!({"name": "envoy.filters.http.lua", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                        "default_source_code": {"inline_string": LUA}}});
                }
            }
        }),
    }
}

fn edit_wasm(doc: &mut Value, f: impl Fn(&mut Value)) -> usize {
    let mut n = 0;
    for filter in http_filters(doc).iter_mut() {
        if filter["name"] == "envoy.filters.http.wasm" {
            f(&mut filter["typed_config"]);
            n += 1;
        }
    }
    n
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn request_of(path: &str, headers: &[String]) -> Request {
    let mut r = Request::get(HOST, path);
    for h in headers {
        if let Some((k, v)) = h.split_once(": ") {
            if !k.eq_ignore_ascii_case("host") {
                r = r.header(k, v);
            }
        }
    }
    r
}

fn set_cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_string()
}

/// A browser's real cookies, made by the filter itself through a full
/// Envoy: a flow cookie for [`STATE`] (from `/login`), then the session
/// cookie its callback answers with. Node: the nginx upstream.
fn mint_cookies(upstream: u16, noop: &Path) -> (String, String) {
    let v = Variant {
        name: "mint".into(),
        table: Table::Proxied,
        filter: Filter::Edge(full_plugin("127.0.0.1/32", |_| {}), None),
        backend: Backend::Proxied,
        path: String::new(),
        headers: Vec::new(),
        status: 0,
        keys: 1,
    };
    let envoy = Envoy::start(&configure(&v, upstream, noop));
    let mut headers: Vec<String> = LB_HEADERS.iter().map(|s| s.to_string()).collect();
    headers.extend(NAVIGATION.iter().map(|s| s.to_string()));
    let login = request_of("/login", &headers).send(envoy.port);
    let flow = login
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("__Host-oidc-edge-") && !c.contains("Max-Age=0"))
        .map(set_cookie_pair)
        .unwrap_or_else(|| panic!("/login issued no flow cookie: {login:?}\n{}", envoy.log()));
    let mut cb_headers = headers.clone();
    cb_headers.push(format!("Cookie: {flow}"));
    let cb =
        request_of(&format!("/callback?code=c0de&state={STATE}"), &cb_headers).send(envoy.port);
    let session = cb
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("__Host-oidc-edge-") && !c.contains("Max-Age=0"))
        .map(set_cookie_pair)
        .unwrap_or_else(|| {
            panic!(
                "the callback issued no session cookie: {cb:?}\n{}",
                envoy.log()
            )
        });
    (flow, session)
}

fn variants(flow: &str, session: &str) -> Vec<Variant> {
    let lb: Vec<String> = LB_HEADERS.iter().map(|s| s.to_string()).collect();
    let mut browser = lb.clone();
    browser.extend(NAVIGATION.iter().map(|s| s.to_string()));
    let app_cookie = "app.sid=s%3AZk9vYmFyYmF6cXV4LTAxMjM0NTY3ODk.c2lnbmF0dXJlLXZhbHVlLWhlcmU";
    let mut logged_in = browser.clone();
    logged_in.push(format!("Cookie: {app_cookie}; {session}"));
    let mut callback = browser.clone();
    callback.push(format!("Cookie: {flow}"));
    let base_wasm = std::env::var("BENCH_BASE_WASM").ok().map(PathBuf::from);
    let full = full_plugin("127.0.0.1/32", |_| {});
    let untrusted = full_plugin("10.0.1.0/24", |_| {});

    let mut out = Vec::new();
    for (backend, table, suffix) in [
        (Backend::Direct, Table::Direct, ""),
        (Backend::Proxied, Table::Proxied, ", proxied"),
    ] {
        let v = |name: &str, filter: Filter, path: &str, headers: &[String], status: u16| Variant {
            name: format!("{name}{suffix}"),
            table,
            filter,
            backend,
            path: path.to_string(),
            headers: headers.to_vec(),
            status,
            keys: 1,
        };
        out.push(v(
            "no filter",
            Filter::None,
            "/account?tab=profile",
            &logged_in,
            200,
        ));
        out.push(v(
            "no-op wasm filter",
            Filter::Noop,
            "/account?tab=profile",
            &logged_in,
            200,
        ));
        out.push(v(
            "Lua forwarded filter",
            Filter::Lua,
            "/account?tab=profile",
            &logged_in,
            200,
        ));
        let callback_path = format!("/callback?code=c0de&state={STATE}");
        let edge = [
            (
                "oidc-edge forwarded only",
                forwarded_plugin(),
                "/account?tab=profile",
                &logged_in,
                200,
            ),
            (
                "oidc-edge full: (a) logged-in request",
                full.clone(),
                "/account?tab=profile",
                &logged_in,
                200,
            ),
            (
                "oidc-edge full: (b) callback",
                full.clone(),
                callback_path.as_str(),
                &callback,
                200,
            ),
            (
                "oidc-edge full: (c) redirect to the IdP",
                full.clone(),
                "/login",
                &browser,
                302,
            ),
            (
                "oidc-edge full: (d) untrusted client",
                untrusted.clone(),
                "/account?tab=profile",
                &logged_in,
                200,
            ),
        ];
        for (name, plugin, path, headers, status) in edge {
            out.push(v(
                name,
                Filter::Edge(plugin.clone(), None),
                path,
                headers,
                status,
            ));
            if let Some(base) = &base_wasm {
                out.push(v(
                    &format!("{name} [base]"),
                    Filter::Edge(plugin, Some(base.clone())),
                    path,
                    headers,
                    status,
                ));
            }
        }
    }

    // What one host call costs: the no-op filter plus 20 calls of one kind
    // per request (benches/hostcall-probe, one module per kind, listed in
    // BENCH_PROBES as `kind=path` words; `./build.sh hostcall-costs`).
    for probe in std::env::var("BENCH_PROBES")
        .unwrap_or_default()
        .split_whitespace()
    {
        let Some((kind, path)) = probe.split_once('=') else {
            panic!("BENCH_PROBES: {probe:?} is not kind=path");
        };
        let probe_variant = |name: String, table, backend, plugin: String| Variant {
            name,
            table,
            filter: Filter::Edge(plugin, Some(PathBuf::from(path))),
            backend,
            path: "/account?tab=profile".to_string(),
            headers: logged_in.clone(),
            status: 200,
            keys: 1,
        };
        if kind.starts_with("replay") {
            // The probe pins to the node the session cookie of (a) names
            // (the nginx upstream), so that proxied it is routed as (a) is.
            for (table, backend, suffix) in [
                (Table::Direct, Backend::Direct, ""),
                (Table::Proxied, Backend::Proxied, ", proxied"),
            ] {
                out.push(probe_variant(
                    format!("host calls of (a), replayed: {kind}{suffix}"),
                    table,
                    backend,
                    format!("node={UPSTREAM_NODE}"),
                ));
            }
        } else {
            out.push(probe_variant(
                format!("host calls x20: {kind}"),
                Table::Direct,
                Backend::Direct,
                forwarded_plugin(),
            ));
        }
    }

    // How cost grows with the request and the configuration: the logged-in
    // request, direct_response.
    let growth = |name: &str, plugin: String, headers: Vec<String>, keys: usize| Variant {
        name: name.to_string(),
        table: Table::Growth,
        filter: Filter::Edge(plugin, None),
        backend: Backend::Direct,
        path: "/account?tab=profile".into(),
        headers,
        status: 200,
        keys,
    };
    let with_cookies = |n: usize| {
        let mut h = browser.clone();
        let mut c: Vec<String> = (1..n)
            .map(|i| format!("pref{i}=v{i:04}abcdefghij"))
            .collect();
        c.push(session.to_string());
        h.push(format!("Cookie: {}", c.join("; ")));
        h
    };
    let with_headers = |n: usize| {
        let mut h = with_cookies(1);
        let extra = n.saturating_sub(h.len() + 1);
        h.extend((0..extra).map(|i| format!("X-Extra-{i}: value-{i:04}-abcdefghijklmnop")));
        h
    };
    out.push(growth(
        "1 cookie, 9 headers (baseline)",
        full.clone(),
        with_cookies(1),
        1,
    ));
    out.push(growth("10 cookies", full.clone(), with_cookies(10), 1));
    out.push(growth("50 cookies", full.clone(), with_cookies(50), 1));
    out.push(growth("60 headers", full.clone(), with_headers(60), 1));
    let eight_keys = full_plugin("127.0.0.1/32", |v| {
        v["login_flow"]["keys"] = json!((1..=8)
            .map(|i| json!({"id": format!("k{i}"), "secret_env": format!("OIDC_EDGE_KEY_{i}")}))
            .collect::<Vec<_>>());
    });
    out.push(growth("8 keys in the ring", eight_keys, with_cookies(1), 8));
    let hundred_hosts = full_plugin("127.0.0.1/32", |v| {
        let mut hosts: Vec<Value> = (0..99)
            .map(|i| json!(format!("app{i}.example.org")))
            .collect();
        hosts.push(json!(HOST));
        v["forwarded"]["allowed_hosts"] = json!(hosts);
        let mut uris: Vec<Value> = (0..99)
            .map(|i| json!(format!("https://app{i}.example.org/callback")))
            .collect();
        uris.push(json!("https://app.example.com/callback"));
        v["redirects"]["redirect_uris"] = json!(uris);
    });
    out.push(growth(
        "100 allowed hosts and redirect URIs",
        hundred_hosts,
        with_cookies(1),
        1,
    ));

    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let tables = std::env::var("BENCH_TABLES").unwrap_or_default();
    out.into_iter()
        .filter(|v| only.is_empty() || only.split(',').any(|o| v.name.contains(o)))
        .filter(|v| {
            let t = match v.table {
                Table::Direct => "direct",
                Table::Proxied => "proxied",
                Table::Growth => "growth",
            };
            tables.is_empty() || tables.split(',').any(|x| x == t)
        })
        .collect()
}

/// CPU time of every thread of `pid`, in nanoseconds.
fn cpu_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
        })
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next().and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// One wrk run's figures.
#[derive(Clone, Copy, Default)]
struct Run {
    us_per_request: f64,
    rps: f64,
    p50_us: f64,
    p99_us: f64,
    bad: u64,
}

fn duration_us(s: &str) -> f64 {
    let num = |suffix: &str| s.strip_suffix(suffix).and_then(|n| n.parse::<f64>().ok());
    num("us")
        .or_else(|| num("ms").map(|v| v * 1e3))
        .or_else(|| num("s").map(|v| v * 1e6))
        .unwrap_or(f64::NAN)
}

fn wrk(v: &Variant, port: u16, seconds: u32) -> Command {
    let mut c = Command::new("taskset");
    c.args([
        "-c",
        "1",
        "wrk",
        "-t1",
        "-c16",
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    c.args(["-H", &format!("Host: {HOST}")]);
    for h in &v.headers {
        c.args(["-H", h]);
    }
    c.arg(format!("http://127.0.0.1:{port}{}", v.path));
    c
}

fn measure(v: &Variant, envoy: &Envoy, seconds: u32) -> Run {
    let before = cpu_ns(envoy.pid());
    let out = wrk(v, envoy.port, seconds)
        .output()
        .expect("wrk (./build.sh bench installs it)");
    let after = cpu_ns(envoy.pid());
    let text = String::from_utf8_lossy(&out.stdout);
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string()
    };
    let requests: f64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    let bad = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Run {
        us_per_request: (after.saturating_sub(before)) as f64 / 1e3 / requests.max(1.0),
        rps: value("Requests/sec:").parse().unwrap_or(0.0),
        p50_us: duration_us(&value("50%")),
        p99_us: duration_us(&value("99%")),
        bad,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| x.is_finite());
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn spread(xs: &[f64], digits: usize) -> String {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.digits$} … {hi:.digits$}")
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let envoy = Command::new(integration_tests::envoy::envoy_bin())
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .and_then(|s| {
            // "envoy  version: <commit>/1.40.0/Clean/RELEASE/BoringSSL"
            let v = s.split("version:").nth(1)?.split_whitespace().next()?;
            v.split('/').nth(1).map(str::to_string)
        })
        .unwrap_or_default();
    let commit = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(repo_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let module = integration_tests::envoy::wasm_path();
    let size = std::fs::metadata(&module).map_or(0, |m| m.len());
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "{date}; {cpu}, {cores} cores; Envoy {envoy} (V8); oidc-edge {commit}, module {size} bytes"
    )
}

fn main() {
    let rounds: usize = env_num("BENCH_ROUNDS", 5);
    let seconds: u32 = env_num("BENCH_SECONDS", 5);
    let noop = std::env::var("BENCH_NOOP_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("target/noop_filter.wasm"));
    assert!(
        noop.exists(),
        "no no-op filter at {} (./build.sh bench builds it)",
        noop.display()
    );
    let nginx = Nginx::start();
    let (flow, session) = mint_cookies(nginx.port, &noop);
    let variants = variants(&flow, &session);
    eprintln!(
        "{} variants, {rounds} interleaved rounds of {seconds} s: about {} minutes",
        variants.len(),
        (variants.len() as u64 * (u64::from(seconds) * rounds as u64 + 3)).div_ceil(60)
    );

    // Start every Envoy, check each answers as intended, warm V8 up.
    let envoys: Vec<Envoy> = variants
        .iter()
        .map(|v| {
            let e = Envoy::start(&configure(v, nginx.port, &noop));
            let _ = Command::new("taskset")
                .args(["-a", "-cp", "0", &e.pid().to_string()])
                .stdout(Stdio::null())
                .status();
            let probe = request_of(&v.path, &v.headers).send(e.port);
            assert_eq!(
                probe.status,
                v.status,
                "{}: answered {} {:?}\n{}",
                v.name,
                probe.status,
                probe.headers,
                e.log()
            );
            let _ = wrk(v, e.port, 2).output();
            e
        })
        .collect();

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    for r in 0..rounds {
        eprintln!("round {}/{rounds}", r + 1);
        // Each round starts one variant further on (A B C, B C A, C A B …):
        // on this machine a variant's place in the round moved its result
        // by several µs, and rotating spreads that over every variant.
        for step in 0..variants.len() {
            let i = (step + r) % variants.len();
            let v = &variants[i];
            let run = measure(v, &envoys[i], seconds);
            if run.bad > 0 {
                eprintln!(
                    "{}: {} answers were not the expected status class",
                    v.name, run.bad
                );
            }
            runs[i].push(run);
        }
    }
    let rss: Vec<u64> = envoys.iter().map(|e| rss_kib(e.pid())).collect();
    let vm: Vec<Option<u64>> = envoys.iter().map(vm_memory).collect();
    drop(envoys);
    drop(nginx);

    let report = report(&variants, &runs, &rss, &vm, rounds, seconds);
    println!("{report}");
    if let Some(path) = std::env::var("BENCH_README").ok().filter(|p| !p.is_empty()) {
        write_between_markers(Path::new(&path), &report);
        eprintln!("wrote the tables into {path}");
    }
}

/// The wasm VM's linear memory after the run, as oidc-edge's own gauge
/// reports it (Envoy has no stat for it; other filters have no gauge).
fn vm_memory(envoy: &Envoy) -> Option<u64> {
    let key = format!("wasmcustom.{}: ", oidc_edge::metrics::VM_MEMORY_GAUGE);
    envoy
        .admin("/stats?filter=vm.memory_bytes")
        .lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
}

fn env_num<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn report(
    variants: &[Variant],
    runs: &[Vec<Run>],
    rss: &[u64],
    vm: &[Option<u64>],
    rounds: usize,
    seconds: u32,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Run: {}; {rounds} interleaved rounds of {seconds} s per variant, wrk 16 connections on CPU 1, Envoy's one worker on CPU 0.\n", machine());
    let find = |table: Table, name: &str| {
        variants
            .iter()
            .position(|v| v.table == table && v.name.starts_with(name))
    };
    for table in [Table::Direct, Table::Proxied, Table::Growth] {
        let members: Vec<usize> = (0..variants.len())
            .filter(|&i| variants[i].table == table)
            .collect();
        if members.is_empty() {
            continue;
        }
        let (title, reference) = match table {
            Table::Direct => ("`direct_response`", find(table, "no-op wasm filter")),
            Table::Proxied => ("proxied to nginx", find(table, "no-op wasm filter")),
            Table::Growth => (
                "how cost grows (logged-in request, `direct_response`)",
                find(table, "1 cookie"),
            ),
        };
        let no_filter = find(table, "no filter");
        let _ = writeln!(s, "#### {title}\n");
        let against = if table == Table::Growth {
            "over the baseline row"
        } else {
            "over the no-op wasm filter"
        };
        let _ = write!(
            s,
            "| variant | µs/request | {against}, µs (per-round spread) |"
        );
        if table == Table::Proxied {
            let _ = write!(s, " requests/s ÷ no filter (spread) |");
        }
        let _ = writeln!(s, " requests/s | p50 | p99 | Envoy RSS | wasm VM memory |");
        let _ = write!(s, "|---|---:|---:|");
        if table == Table::Proxied {
            let _ = write!(s, "---:|");
        }
        let _ = writeln!(s, "---:|---:|---:|---:|---:|");
        for &i in &members {
            let r = &runs[i];
            let us = median(r.iter().map(|x| x.us_per_request).collect());
            let diff = reference.filter(|&j| j != i).map(|j| {
                let d: Vec<f64> = (0..rounds)
                    .map(|k| r[k].us_per_request - runs[j][k].us_per_request)
                    .collect();
                format!("{:+.1} ({})", median(d.clone()), spread(&d, 1))
            });
            let _ = write!(
                s,
                "| {} | {us:.1} | {} |",
                variants[i].name,
                diff.unwrap_or_else(|| "—".into())
            );
            if table == Table::Proxied {
                let ratio = no_filter.filter(|&j| j != i).map(|j| {
                    let q: Vec<f64> = (0..rounds)
                        .map(|k| r[k].rps / runs[j][k].rps.max(1.0))
                        .collect();
                    format!("{:.2} ({})", median(q.clone()), spread(&q, 2))
                });
                let _ = write!(s, " {} |", ratio.unwrap_or_else(|| "—".into()));
            }
            let _ = writeln!(
                s,
                " {:.0} | {:.0} µs | {:.0} µs | {} MiB | {} |",
                median(r.iter().map(|x| x.rps).collect()),
                median(r.iter().map(|x| x.p50_us).collect()),
                median(r.iter().map(|x| x.p99_us).collect()),
                rss[i] / 1024,
                vm[i].map_or_else(|| "—".into(), |b| format!("{} KiB", b / 1024)),
            );
        }
        let _ = writeln!(s);
    }
    s
}

fn write_between_markers(path: &Path, report: &str) {
    const BEGIN: &str = "<!-- loadbench:begin -->";
    const END: &str = "<!-- loadbench:end -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{BEGIN}\n{report}{}", &text[..b], &text[e..]),
        _ => format!("{text}\n{BEGIN}\n{report}{END}\n"),
    };
    std::fs::write(path, new).expect("write the bench README");
}
