//! Silent renewals under peak load, then after failover, through a
//! [`FleetBed`]: N logged-in users renew at once (`/login?prompt=none`,
//! every redirect followed) while background requests and open WebSockets
//! run through the same Envoys; then the same with one edge Envoy killed,
//! and again with one app node killed. Used by `tests/refresh_load.rs` (a
//! short run) and `./build.sh refresh-load` (the figures in
//! `docs/refresh-under-load.md`).

use crate::browser::{Browser, Hop, WebSocket};
use crate::fleet::FleetBed;
use crate::oidc_bed::{describe_hop, Login};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// The size of a run.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// Logged-in users who renew at once in each phase.
    pub users: usize,
    /// Threads sending background requests in a loop (half as a logged-in
    /// user, half anonymous: pinned and unpinned traffic).
    pub background: usize,
    /// Open WebSockets, each echoing a message every 100 ms.
    pub websockets: usize,
    /// Anonymous requests sent at once right after a node is killed (new
    /// visitors, balanced round robin: some reach the dead node before
    /// outlier detection rests it, and are retried).
    pub burst: usize,
}

/// What one phase came to.
#[derive(Debug, Clone, Default)]
pub struct Phase {
    /// "peak", "Envoy e0 killed", "node-a killed".
    pub name: String,
    /// Renewals attempted.
    pub renewals: usize,
    /// Renewals that did not end logged in without a form and without a 5xx,
    /// each described hop by hop.
    pub failed: Vec<String>,
    /// Renewals whose user's session node was the dead node, and ended on a live one.
    pub moved: usize,
    /// Renewal latency (the whole navigation), p50 and p99, ms.
    pub p50_ms: u64,
    /// See `p50_ms`.
    pub p99_ms: u64,
    /// Background requests during the renewals.
    pub background: u64,
    /// Background requests per second during the renewals.
    pub background_rps: f64,
    /// Background answers of 500 or more (or failed connections), and the
    /// first few described.
    pub background_5xx: u64,
    /// See `background_5xx`.
    pub background_examples: Vec<String>,
    /// WebSocket echoes that failed during the renewals.
    pub ws_failures: u64,
    /// Background 5xx and broken WebSockets at the moment of the failure
    /// (requests in flight through a killed Envoy, sockets through it or
    /// to a killed node), before the renewals start.
    pub at_failure: (u64, u64),
    /// The edge Envoys' `upstream_rq_retry_overflow` for the app cluster
    /// from the failure to the end of the phase (the retry circuit breaker
    /// said no).
    pub retry_overflow: u64,
    /// The first moved user's renewal, hop by hop (empty if none moved).
    pub moved_example: Vec<Hop>,
}

impl Phase {
    /// One line of the results table.
    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} | {} / {} | {} |",
            self.name,
            self.renewals,
            self.failed.len(),
            self.moved,
            self.p50_ms,
            self.p99_ms,
            self.background_rps,
            self.background_5xx,
            self.ws_failures,
            self.at_failure.0,
            self.at_failure.1,
            self.retry_overflow
        )
    }
}

/// The results table's header.
pub const TABLE_HEADER: &str = "| phase | renewals | failed | moved to a live node | p50 ms | p99 ms | background rps | background 5xx | WebSocket failures | at the failure: 5xx / sockets lost | retry overflow |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

/// A renewal ended well: logged in, no IdP form, no 5xx on the way.
pub fn renewed(login: &Login) -> bool {
    login.ok()
        && login.server_errors().is_empty()
        && !login
            .hops
            .iter()
            .any(|h| h.url.path().starts_with("/interaction/"))
}

struct Background {
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    examples: Arc<Mutex<Vec<String>>>,
    ws_failures: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Background {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.requests.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            self.ws_failures.load(Ordering::SeqCst),
        )
    }
}

fn log_in(bed: &FleetBed) -> Browser {
    let mut b = bed.browser();
    let login = bed.login(&mut b, "");
    assert!(
        login.ok() && login.server_errors().is_empty(),
        "login failed:\n{}",
        login.describe()
    );
    b
}

/// Logs in `n` users, 16 at a time.
fn log_in_many(bed: &FleetBed, n: usize) -> Vec<Browser> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let k = (n - out.len()).min(16);
        let batch: Vec<Browser> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..k).map(|_| s.spawn(|| log_in(bed))).collect();
            hs.into_iter().map(|h| h.join().expect("login")).collect()
        });
        out.extend(batch);
    }
    out
}

fn start_background(bed: &FleetBed, p: &Params) -> Background {
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ws_failures = Arc::new(AtomicU64::new(0));
    let examples = Arc::new(Mutex::new(Vec::new()));
    let mut threads = Vec::new();
    let origin = bed.origin();
    for (i, mut b) in log_in_many(bed, p.background).into_iter().enumerate() {
        if i % 2 == 1 {
            // Anonymous: no session, so no affinity; round robin decides.
            b = bed.browser();
        }
        let (stop, requests, errors, examples) = (
            stop.clone(),
            requests.clone(),
            errors.clone(),
            examples.clone(),
        );
        let url = format!("{origin}/me");
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let from = b.trace.len();
                let page = b.get(&url);
                requests.fetch_add(1, Ordering::SeqCst);
                if page.status() >= 500 || page.status() == 0 {
                    errors.fetch_add(1, Ordering::SeqCst);
                    let mut ex = examples.lock().unwrap();
                    if ex.len() < 5 {
                        ex.push(describe_hop(&b.trace[from]));
                    }
                }
                // A logged-in user whose node died gets a new session
                // elsewhere (401 then): log in again to keep pinned traffic.
                if page.status() == 401 && i % 2 == 0 {
                    b.navigate(&format!("{}/login", url.trim_end_matches("/me")));
                }
                b.trace.clear();
            }
        }));
    }
    let sockets: Vec<(Browser, WebSocket)> = log_in_many(bed, p.websockets)
        .into_iter()
        .map(|mut b| {
            let ws = b
                .websocket(&format!("{}/ws", origin.replace("https:", "wss:")))
                .unwrap_or_else(|r| panic!("upgrade refused: {} {}", r.status, r.text()));
            (b, ws)
        })
        .collect();
    for (_b, mut ws) in sockets {
        let (stop, ws_failures) = (stop.clone(), ws_failures.clone());
        threads.push(std::thread::spawn(move || {
            let mut open = true;
            while !stop.load(Ordering::SeqCst) {
                if open && (ws.send("ping").is_err() || ws.recv().is_err()) {
                    ws_failures.fetch_add(1, Ordering::SeqCst);
                    // A socket through a dead node or Envoy stays dead; count it once.
                    open = false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }));
    }
    Background {
        stop,
        requests,
        errors,
        examples,
        ws_failures,
        threads,
    }
}

fn retry_overflow(bed: &FleetBed) -> u64 {
    bed.running_edges()
        .map(|e| {
            e.admin("/stats?filter=cluster\\.app\\.upstream_rq_retry_overflow")
                .lines()
                .find_map(|l| l.strip_prefix("cluster.app.upstream_rq_retry_overflow: "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Every user renews at once; `dead` is a node that died (its users must
/// end on another).
fn renew_all(
    bed: &FleetBed,
    users: &mut [Browser],
    bg: &Background,
    nodes: &mut [Option<String>],
    name: &str,
    dead: Option<&str>,
) -> Phase {
    let origin = bed.origin();
    let overflow_before = retry_overflow(bed);
    let (r0, e0, w0) = bg.snapshot();
    let barrier = Barrier::new(users.len());
    let start = Instant::now();
    let results: Vec<(bool, bool, u64, String, Vec<Hop>)> = std::thread::scope(|s| {
        let hs: Vec<_> = users
            .iter_mut()
            .zip(nodes.iter_mut())
            .map(|(b, node)| {
                let (barrier, origin) = (&barrier, &origin);
                s.spawn(move || {
                    b.trace.clear();
                    barrier.wait();
                    let t = Instant::now();
                    let page = b.navigate(&format!("{origin}/login?prompt=none"));
                    let ms = t.elapsed().as_millis() as u64;
                    let login = Login {
                        page,
                        hops: std::mem::take(&mut b.trace),
                    };
                    let on_dead = dead.is_some() && node.as_deref() == dead;
                    let now = login.me()["node"].as_str().map(str::to_string);
                    let ok = renewed(&login) && (dead.is_none() || now.as_deref() != dead);
                    *node = now;
                    let moved = if on_dead && ok {
                        login.hops.clone()
                    } else {
                        Vec::new()
                    };
                    (ok, on_dead && ok, ms, login.describe(), moved)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("renewal")).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let (r1, e1, w1) = bg.snapshot();
    let mut ms: Vec<u64> = results.iter().map(|r| r.2).collect();
    ms.sort_unstable();
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    Phase {
        name: name.to_string(),
        renewals: results.len(),
        failed: results
            .iter()
            .filter(|r| !r.0)
            .map(|r| r.3.clone())
            .collect(),
        moved: results.iter().filter(|r| r.1).count(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        background: r1 - r0,
        background_rps: (r1 - r0) as f64 / elapsed,
        background_5xx: e1 - e0,
        background_examples: bg.examples.lock().unwrap().clone(),
        ws_failures: w1 - w0,
        at_failure: (0, 0),
        retry_overflow: retry_overflow(bed) - overflow_before,
        moved_example: results
            .iter()
            .find(|r| r.1)
            .map(|r| r.4.clone())
            .unwrap_or_default(),
    }
}

/// No background traffic (the failover case alone).
fn quiet() -> Background {
    Background {
        stop: Arc::new(AtomicBool::new(false)),
        requests: Arc::new(AtomicU64::new(0)),
        errors: Arc::new(AtomicU64::new(0)),
        examples: Arc::new(Mutex::new(Vec::new())),
        ws_failures: Arc::new(AtomicU64::new(0)),
        threads: Vec::new(),
    }
}

/// The failover case alone, small enough for `./build.sh demo`: `users`
/// log in (each pinned to its session's node by oidc-edge) and renew once,
/// then node `dead` is killed and every user renews again (`prompt=none`).
/// Returns both phases and how many users were on `dead`; the second phase
/// counts those that ended logged in on a live node without a form
/// (`moved`) and shows one of them hop by hop (`moved_example`). The bed is
/// left with `dead` dead.
pub fn failover(bed: &mut FleetBed, users: usize, dead: &str) -> (Phase, Phase, usize) {
    let mut browsers = log_in_many(bed, users);
    let mut nodes = vec![None; browsers.len()];
    let bg = quiet();
    let before = renew_all(bed, &mut browsers, &bg, &mut nodes, "before", None);
    let on_dead = nodes.iter().filter(|n| n.as_deref() == Some(dead)).count();
    bed.kill_node(dead);
    let name = format!("{dead} killed");
    let after = renew_all(bed, &mut browsers, &bg, &mut nodes, &name, Some(dead));
    (before, after, on_dead)
}

/// `n` anonymous requests at once (new visitors, balanced round robin):
/// how many got a 5xx.
fn burst(bed: &FleetBed, n: usize) -> u64 {
    let url = format!("{}/me", bed.origin());
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (mut b, url) = (bed.browser(), url.clone());
                s.spawn(move || {
                    let st = b.get(&url).status();
                    u64::from(st >= 500 || st == 0)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("burst")).sum()
    })
}

/// The whole scenario: log in, renew at peak; kill edge Envoy 0 and renew;
/// start it again, kill node-a (with a burst of new visitors right then)
/// and renew. The bed is left with node-a dead.
pub fn run(bed: &mut FleetBed, p: &Params) -> Vec<Phase> {
    let mut users = log_in_many(bed, p.users);
    let mut nodes = vec![None; users.len()];
    let bg = start_background(bed, p);
    // Let the background reach its pace.
    std::thread::sleep(Duration::from_millis(500));
    let mut phases = vec![renew_all(bed, &mut users, &bg, &mut nodes, "peak", None)];
    // What the failure itself breaks (wait for the background to notice),
    // plus the burst's 5xx.
    let fail = |bed: &mut FleetBed, what: &dyn Fn(&mut FleetBed) -> u64| {
        let (_, e0, w0) = bg.snapshot();
        let o0 = retry_overflow(bed);
        let extra = what(bed);
        std::thread::sleep(Duration::from_millis(500));
        let (_, e1, w1) = bg.snapshot();
        ((e1 - e0 + extra, w1 - w0), retry_overflow(bed) - o0)
    };
    let (at, overflow) = fail(bed, &|bed| {
        bed.stop_edge(0);
        0
    });
    let mut phase = renew_all(bed, &mut users, &bg, &mut nodes, "Envoy e0 killed", None);
    phase.at_failure = at;
    phase.retry_overflow += overflow;
    phases.push(phase);
    bed.start_edge(0);
    let n = p.burst;
    let (at, overflow) = fail(bed, &|bed| {
        bed.kill_node("node-a");
        burst(bed, n)
    });
    let mut phase = renew_all(
        bed,
        &mut users,
        &bg,
        &mut nodes,
        "node-a killed",
        Some("node-a"),
    );
    phase.at_failure = at;
    phase.retry_overflow += overflow;
    phases.push(phase);
    bg.stop.store(true, Ordering::SeqCst);
    for t in bg.threads {
        let _ = t.join();
    }
    phases
}
