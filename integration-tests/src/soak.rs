//! A bounded soak through a real Envoy with the filter (`envoy/edge.yaml`):
//! keep-alive clients send a fixed mix of ordinary traffic, login starts,
//! callbacks (query and form-post), tampered and expired flow cookies,
//! untrusted clients, app redirects, off-site return-to values and
//! unknown hosts, and every answer is checked against the kind sent.
//!
//! What it measures and asserts (see [`Report::problems`]): no 5xx, no VM
//! failure or reload, every oidc-edge counter equal to what the mix sent,
//! and memory flat from the first 10 % of requests to the end: the VM's
//! linear memory (`oidc_edge.vm.memory_bytes`, exported by the module) and
//! Envoy's resident set (`VmRSS` of the process) and heap (`/memory`).
//! `./build.sh soak` runs it long; `tests/soak.rs` runs a short one.

use crate::envoy::{Envoy, EnvoyConfig};
use crate::upstream::{Echo, Upstream};
use oidc_edge::seal::keyring::{decode_secret, Key};
use oidc_edge::seal::sealed_cookie::{cookie_name, seal, state_hash, Binding, FlowClaims, Purpose};
use socket2::{Domain, Socket, Type};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const LB: &str = "127.0.0.2";
const CLIENT: &str = "127.0.0.3";
const HOST: &str = "app.example.com";
const ORIGIN: &str = "https://app.example.com";

/// The plugin configuration of the soak: every app-side feature on.
pub const PLUGIN: &str = r#"{
  "forwarded": {"trusted_cidrs": ["127.0.0.2/32"], "allowed_hosts": ["app.example.com"]},
  "login_flow": {"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                 "callback_paths": ["/callback"],
                 "keys": [{"id": "k1", "secret_env": "OIDC_EDGE_KEY_1"}]},
  "redirects": {"redirect_uris": ["https://app.example.com/callback"],
                "internal_origins": ["http://app.internal:8080"],
                "rewrite_upstream_origin": true, "return_to": {"paths": ["/login"]}}
}"#;

/// One kind of request in the mix, with the answer it must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A page from the LB: 200.
    Ordinary,
    /// A client bypassing the LB, with forged forwarding headers: 200,
    /// forged values replaced.
    Untrusted,
    /// The app redirects to the IdP: 302 with a flow cookie.
    LoginStart,
    /// The IdP's redirect back with that cookie: 200 on the login's node.
    Callback,
    /// A form-post login: start, then the IdP's POST: 200 on its node.
    FormPost,
    /// A callback with an edited flow cookie: 400.
    Tampered,
    /// A callback with an expired flow cookie: 400.
    Expired,
    /// The app redirects to its internal origin: 302 moved outside.
    Redirect,
    /// `/login?next=` off-site: 400.
    OffSiteReturn,
    /// A host outside `allowed_hosts`: 400.
    UnknownHost,
}

/// The mix, in the order each client cycles through it (20 steps; a
/// callback step uses the login its client started just before).
pub const MIX: [Kind; 20] = [
    Kind::Ordinary,
    Kind::LoginStart,
    Kind::Callback,
    Kind::Ordinary,
    Kind::Untrusted,
    Kind::Ordinary,
    Kind::FormPost,
    Kind::Redirect,
    Kind::Ordinary,
    Kind::Tampered,
    Kind::Ordinary,
    Kind::Untrusted,
    Kind::LoginStart,
    Kind::Callback,
    Kind::Expired,
    Kind::Ordinary,
    Kind::OffSiteReturn,
    Kind::Ordinary,
    Kind::UnknownHost,
    Kind::Ordinary,
];

/// HTTP requests one step of a kind sends.
fn requests_of(kind: Kind) -> u64 {
    match kind {
        Kind::FormPost => 2,
        _ => 1,
    }
}

/// A memory sample taken during the run.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Requests sent so far.
    pub requests: u64,
    /// The VM's linear memory (`oidc_edge.vm.memory_bytes`).
    pub vm_bytes: u64,
    /// Envoy's resident set size (`VmRSS`).
    pub rss_bytes: u64,
    /// Envoy's heap in use (`/memory` `allocated`).
    pub heap_bytes: u64,
}

/// What a soak run saw.
#[derive(Debug, Clone)]
pub struct Report {
    /// HTTP requests sent.
    pub requests: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Steps per kind.
    pub sent: BTreeMap<Kind, u64>,
    /// Answers that were not what their kind must get (first few kept).
    pub wrong: Vec<String>,
    /// How many answers were wrong.
    pub wrong_count: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Memory samples, in order.
    pub samples: Vec<Sample>,
    /// oidc-edge counters at the end: (name, expected from the mix, seen).
    pub counters: Vec<(&'static str, u64, u64)>,
    /// Envoy's wasm VM stats at the end (reloads, failures).
    pub vm_stats: Vec<(String, u64)>,
}

impl Report {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The sample at 10 % of the run (the end of warm-up) and the last.
    pub fn memory_window(&self) -> Option<(Sample, Sample)> {
        let first = self
            .samples
            .iter()
            .find(|s| s.requests * 10 >= self.requests)?;
        Some((*first, *self.samples.last()?))
    }

    /// Everything that makes the run a failure, empty when it passed.
    /// `rss_slack` is how much Envoy's resident set may grow after warm-up.
    pub fn problems(&self, rss_slack: u64) -> Vec<String> {
        let mut p = Vec::new();
        if self.wrong_count > 0 {
            p.push(format!(
                "{} wrong answers: {:?}",
                self.wrong_count, self.wrong
            ));
        }
        if self.server_errors > 0 {
            p.push(format!("{} answers were 5xx", self.server_errors));
        }
        for (name, v) in &self.vm_stats {
            if *v != 0 {
                p.push(format!("{name} = {v}"));
            }
        }
        for (name, want, got) in &self.counters {
            if want != got {
                p.push(format!("{name}: the mix sent {want}, counted {got}"));
            }
        }
        match self.memory_window() {
            Some((a, b)) => {
                if b.vm_bytes != a.vm_bytes {
                    p.push(format!(
                        "the VM's memory grew after warm-up: {} -> {} bytes",
                        a.vm_bytes, b.vm_bytes
                    ));
                }
                if b.rss_bytes > a.rss_bytes + rss_slack {
                    p.push(format!(
                        "Envoy's resident set grew after warm-up: {} -> {} bytes",
                        a.rss_bytes, b.rss_bytes
                    ));
                }
            }
            None => p.push("no memory samples".into()),
        }
        p
    }

    /// A table of the figures, for the log and the docs.
    pub fn render(&self) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut out = format!(
            "requests: {} in {:.1} s ({:.0} requests/s), wrong answers: {}, 5xx: {}\n",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.wrong_count,
            self.server_errors
        );
        if let (Some((a, b)), Some(s0)) = (self.memory_window(), self.samples.first()) {
            out += &format!(
                "memory            at start   at 10 %    at end\n\
                 VM linear memory  {:7.2}    {:7.2}    {:7.2} MiB\n\
                 Envoy RSS         {:7.2}    {:7.2}    {:7.2} MiB\n\
                 Envoy heap        {:7.2}    {:7.2}    {:7.2} MiB\n",
                mib(s0.vm_bytes),
                mib(a.vm_bytes),
                mib(b.vm_bytes),
                mib(s0.rss_bytes),
                mib(a.rss_bytes),
                mib(b.rss_bytes),
                mib(s0.heap_bytes),
                mib(a.heap_bytes),
                mib(b.heap_bytes),
            );
        }
        out += "sent (steps per kind):";
        for (k, n) in &self.sent {
            out += &format!(" {k:?} {n}");
        }
        out += "\ncounter                                           expected       seen\n";
        for (name, want, got) in &self.counters {
            out += &format!("{name:<48} {want:>9} {got:>10}\n");
        }
        for (name, v) in &self.vm_stats {
            out += &format!("{name}: {v}\n");
        }
        out
    }
}

/// The counters each kind must move by one, per step.
fn counters_of(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Ordinary => &["forwarded.trusted_peer"],
        Kind::Untrusted => &["forwarded.untrusted_peer", "forwarded.untrusted_stripped"],
        Kind::LoginStart => &[
            "forwarded.trusted_peer",
            "login_flow.issued",
            "redirects.redirect_uri_registered",
        ],
        Kind::Callback => &[
            "forwarded.trusted_peer",
            "login_flow.valid",
            "login_flow.pinned",
        ],
        // Two requests: the start and the POST.
        Kind::FormPost => &[
            "forwarded.trusted_peer",
            "forwarded.trusted_peer",
            "login_flow.issued",
            "redirects.redirect_uri_registered",
            "login_flow.valid",
            "login_flow.pinned",
        ],
        Kind::Tampered => &[
            "forwarded.trusted_peer",
            "login_flow.rejected.bad_signature",
        ],
        Kind::Expired => &["forwarded.trusted_peer", "login_flow.rejected.expired"],
        Kind::Redirect => &["forwarded.trusted_peer", "redirects.location_rewritten"],
        Kind::OffSiteReturn => &["forwarded.trusted_peer", "redirects.return_to_rejected"],
        Kind::UnknownHost => &["forwarded.trusted_peer", "forwarded.host_rejected"],
    }
}

/// Counters compared at the end (every one a kind moves, and some no kind
/// may move).
const WATCHED: &[&str] = &[
    "forwarded.trusted_peer",
    "forwarded.untrusted_peer",
    "forwarded.untrusted_stripped",
    "forwarded.host_rejected",
    "forwarded.malformed",
    "login_flow.issued",
    "login_flow.valid",
    "login_flow.pinned",
    "login_flow.rejected.bad_signature",
    "login_flow.rejected.expired",
    "login_flow.rejected.missing",
    "login_flow.rejected.wrong_state",
    "login_flow.recovered",
    "redirects.redirect_uri_registered",
    "redirects.location_rewritten",
    "redirects.return_to_rejected",
    "internal_error",
];

/// A keep-alive HTTP/1.1 connection from a chosen loopback address.
struct Conn {
    source: &'static str,
    port: u16,
    stream: Option<BufReader<TcpStream>>,
}

/// An answer: status, headers (names lower-cased), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Conn {
    fn new(source: &'static str, port: u16) -> Conn {
        Conn {
            source,
            port,
            stream: None,
        }
    }

    fn connect(&self) -> std::io::Result<BufReader<TcpStream>> {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        let src: SocketAddr = format!("{}:0", self.source)
            .parse()
            .map_err(std::io::Error::other)?;
        sock.bind(&src.into())?;
        let dst = SocketAddr::from(([127, 0, 0, 1], self.port));
        sock.connect_timeout(&dst.into(), Duration::from_secs(5))?;
        let s: TcpStream = sock.into();
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        s.set_nodelay(true)?;
        Ok(BufReader::new(s))
    }

    /// Sends one request (a keep-alive connection is reused, and reopened
    /// once if Envoy had closed it) and reads its answer.
    fn send(&mut self, raw: &[u8]) -> Result<Answer, String> {
        for attempt in 0..2 {
            if self.stream.is_none() {
                self.stream = Some(self.connect().map_err(|e| format!("connect: {e}"))?);
            }
            let Some(s) = self.stream.as_mut() else {
                continue;
            };
            match s.get_mut().write_all(raw).and_then(|_| read_answer(s)) {
                Ok(a) => {
                    if a.header("connection") == Some("close") {
                        self.stream = None;
                    }
                    return Ok(a);
                }
                Err(e) => {
                    self.stream = None;
                    if attempt == 1 {
                        return Err(format!("I/O: {e}"));
                    }
                }
            }
        }
        Err("unreachable".into())
    }
}

fn read_answer(s: &mut BufReader<TcpStream>) -> std::io::Result<Answer> {
    let mut line = String::new();
    if s.read_line(&mut line)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed",
        ));
    }
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        s.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn get(host: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Proto: https\r\n{extra}\r\n")
        .into_bytes()
}

fn cookie_pair(a: &Answer) -> Option<String> {
    let c = a.header("set-cookie")?;
    Some(c.split(';').next()?.to_string())
}

/// An expired flow cookie for `state`, sealed with the real key.
fn expired_cookie(key: &Key, node: &str, state: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let name = cookie_name("__Host-oidc-edge-", state);
    let claims = FlowClaims {
        node: node.to_string(),
        issued_at: (now - 1200) * 1000,
        expires_at: now - 600,
        seq: 1,
        restarts: 0,
        return_to: "/".into(),
    };
    let binding = Binding {
        purpose: Purpose::Flow,
        name: &name,
        origin: ORIGIN,
    };
    format!(
        "{name}={}",
        seal(key, &binding, &state_hash(state), &claims)
    )
}

/// One client's loop over [`MIX`] until the shared budget of requests is
/// spent. Returns steps per kind.
fn client(
    port: u16,
    node: String,
    budget: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
    wrong: Arc<Mutex<(u64, Vec<String>)>>,
    server_errors: Arc<AtomicU64>,
) -> BTreeMap<Kind, u64> {
    let key = decode_secret(K1)
        .and_then(|s| Key::new("k1", &s).ok())
        .expect("key");
    let mut lb = Conn::new(LB, port);
    let mut untrusted = Conn::new(CLIENT, port);
    let mut sent = BTreeMap::new();
    let mut login: Option<(String, String, String)> = None;
    let mut n = 0u64;
    'run: loop {
        for kind in MIX {
            let cost = requests_of(kind);
            if budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(cost))
                .is_err()
            {
                break 'run;
            }
            n += 1;
            let check = |ok: bool, what: &dyn Fn() -> String, status: u16| {
                if status >= 500 {
                    server_errors.fetch_add(1, Ordering::SeqCst);
                }
                if !ok {
                    let mut w = wrong.lock().expect("lock");
                    w.0 += 1;
                    if w.1.len() < 5 {
                        w.1.push(format!("{kind:?}: {}", what()));
                    }
                }
            };
            let describe = |a: &Result<Answer, String>| match a {
                Ok(a) => format!("{} {}", a.status, String::from_utf8_lossy(&a.body)),
                Err(e) => e.clone(),
            };
            match kind {
                Kind::Ordinary => {
                    let a = lb.send(&get(HOST, &format!("/page/{n}"), ""));
                    let ok = a.as_ref().is_ok_and(|a| a.status == 200);
                    check(ok, &|| describe(&a), status(&a));
                }
                Kind::Untrusted => {
                    let a = untrusted.send(&get(
                        HOST,
                        "/account",
                        "X-Forwarded-Host: evil.example\r\nX-Forwarded-For: 198.51.100.7\r\n",
                    ));
                    let ok = a.as_ref().is_ok_and(|a| {
                        a.status == 200 && {
                            let e = Echo::parse(&a.body);
                            e.header("x-forwarded-proto").as_deref() == Some("http")
                                && e.header("x-forwarded-host").as_deref() == Some(HOST)
                        }
                    });
                    check(ok, &|| describe(&a), status(&a));
                }
                Kind::LoginStart | Kind::FormPost => {
                    let path = if kind == Kind::FormPost {
                        "/login?form_post"
                    } else {
                        "/login"
                    };
                    let a = lb.send(&get(HOST, path, ""));
                    let started = a.as_ref().ok().and_then(|a| {
                        let e = (a.status == 302).then(|| Echo::parse(&a.body))?;
                        Some((cookie_pair(a)?, e.state?, e.node))
                    });
                    check(started.is_some(), &|| describe(&a), status(&a));
                    if kind == Kind::LoginStart {
                        login = started;
                    } else if let Some((cookie, state, node)) = started {
                        let body = format!("code=c&state={state}");
                        let raw = format!(
                            "POST /callback HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-Proto: https\r\n\
                             Cookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                             Content-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        let a = lb.send(raw.as_bytes());
                        let ok = a
                            .as_ref()
                            .is_ok_and(|a| a.status == 200 && Echo::parse(&a.body).node == node);
                        check(ok, &|| describe(&a), status(&a));
                    }
                }
                Kind::Callback => {
                    let Some((cookie, state, node)) = login.take() else {
                        check(false, &|| "no login to call back".into(), 0);
                        continue;
                    };
                    let a = lb.send(&get(
                        HOST,
                        &format!("/callback?code=c&state={state}"),
                        &format!("Cookie: {cookie}\r\n"),
                    ));
                    let ok = a
                        .as_ref()
                        .is_ok_and(|a| a.status == 200 && Echo::parse(&a.body).node == node);
                    check(ok, &|| describe(&a), status(&a));
                }
                Kind::Tampered | Kind::Expired => {
                    let state = format!("soak.{n}");
                    let cookie = expired_cookie(&key, &node, &state);
                    let (cookie, reason) = if kind == Kind::Tampered {
                        // Change one character of the sealed record (not
                        // the last, whose low bits base64 may ignore): not
                        // authentic.
                        let mut c = cookie.into_bytes();
                        let at = c.len().saturating_sub(10);
                        if let Some(b) = c.get_mut(at) {
                            *b = if *b == b'A' { b'B' } else { b'A' };
                        }
                        (
                            String::from_utf8(c).unwrap_or_default(),
                            "flow_cookie_bad_signature",
                        )
                    } else {
                        (cookie, "flow_cookie_expired")
                    };
                    let a = lb.send(&get(
                        HOST,
                        &format!("/callback?code=c&state={state}"),
                        &format!("Cookie: {cookie}\r\n"),
                    ));
                    let ok = a.as_ref().is_ok_and(|a| {
                        a.status == 400 && a.header("x-oidc-edge-reason") == Some(reason)
                    });
                    check(ok, &|| describe(&a), status(&a));
                }
                Kind::Redirect => {
                    let a = lb.send(&get(
                        HOST,
                        &format!("/redirect?to=http%3A%2F%2Fapp.internal%3A8080%2Fdone%2F{n}"),
                        "",
                    ));
                    let want = format!("{ORIGIN}/done/{n}");
                    let ok = a.as_ref().is_ok_and(|a| {
                        a.status == 302 && a.header("location") == Some(want.as_str())
                    });
                    check(ok, &|| describe(&a), status(&a));
                }
                Kind::OffSiteReturn => {
                    let a = lb.send(&get(HOST, "/login?next=https%3A%2F%2Fevil.example%2F", ""));
                    let ok = a.as_ref().is_ok_and(|a| a.status == 400);
                    check(ok, &|| describe(&a), status(&a));
                }
                Kind::UnknownHost => {
                    let a = lb.send(&get("evil.example", "/", ""));
                    let ok = a.as_ref().is_ok_and(|a| {
                        a.status == 400
                            && a.header("x-oidc-edge-reason") == Some("host_not_allowed")
                    });
                    check(ok, &|| describe(&a), status(&a));
                }
            }
            *sent.entry(kind).or_insert(0) += 1;
            done.fetch_add(cost, Ordering::SeqCst);
        }
    }
    sent
}

fn status(a: &Result<Answer, String>) -> u16 {
    a.as_ref().map(|a| a.status).unwrap_or(0)
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn sample(envoy: &Envoy, requests: u64) -> Sample {
    let heap = serde_json::from_str::<serde_json::Value>(&envoy.admin("/memory"))
        .ok()
        .and_then(|v| v["allocated"].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0);
    Sample {
        requests,
        vm_bytes: envoy.counter("oidc_edge.vm.memory_bytes"),
        rss_bytes: rss_bytes(envoy.pid()),
        heap_bytes: heap,
    }
}

/// Runs a soak of about `requests` HTTP requests from `clients` keep-alive
/// clients through a fresh Envoy with `envoy/edge.yaml` and two app nodes.
pub fn run(requests: u64, clients: usize) -> Report {
    let nodes = [Upstream::start("node-a"), Upstream::start("node-b")];
    let cfg = EnvoyConfig::reference()
        .plugin_config(PLUGIN)
        .upstreams(&nodes.iter().map(|n| n.addr).collect::<Vec<_>>())
        .env("OIDC_EDGE_KEY_1", K1);
    let envoy = Envoy::start(&cfg);
    let node = nodes[0].addr.to_string();
    let budget = Arc::new(AtomicU64::new(requests));
    let done = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(Mutex::new((0, Vec::new())));
    let server_errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut samples = vec![sample(&envoy, 0)];
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (node, budget, done, wrong, errors) = (
                node.clone(),
                budget.clone(),
                done.clone(),
                wrong.clone(),
                server_errors.clone(),
            );
            let port = envoy.port;
            std::thread::spawn(move || client(port, node, budget, done, wrong, errors))
        })
        .collect();
    // Twenty samples over the run, by requests done.
    let step = (requests / 20).max(1);
    let mut next = step;
    while handles.iter().any(|h| !h.is_finished()) {
        let d = done.load(Ordering::SeqCst);
        if d >= next {
            samples.push(sample(&envoy, d));
            next = d + step;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = start.elapsed();
    let mut sent = BTreeMap::new();
    for h in handles {
        for (k, n) in h.join().expect("client thread") {
            *sent.entry(k).or_insert(0) += n;
        }
    }
    let total = done.load(Ordering::SeqCst);
    samples.push(sample(&envoy, total));
    let mut expected: BTreeMap<&str, u64> = WATCHED.iter().map(|c| (*c, 0)).collect();
    for (k, n) in &sent {
        for c in counters_of(*k) {
            *expected.entry(c).or_insert(0) += n;
        }
    }
    let counters = WATCHED
        .iter()
        .map(|c| {
            (
                *c,
                expected.get(c).copied().unwrap_or(0),
                envoy.counter(&format!("oidc_edge.{c}")),
            )
        })
        .collect();
    let stats = envoy.admin("/stats");
    let vm_stats = stats
        .lines()
        .filter(|l| l.starts_with("wasm.oidc-edge.vm_reload"))
        .filter_map(|l| {
            let (k, v) = l.split_once(": ")?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect();
    let (wrong_count, wrong) = wrong.lock().expect("lock").clone();
    Report {
        requests: total,
        elapsed,
        sent,
        wrong,
        wrong_count,
        server_errors: server_errors.load(Ordering::SeqCst),
        samples,
        counters,
        vm_stats,
    }
}
