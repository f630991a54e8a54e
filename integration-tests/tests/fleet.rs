//! A fleet of three edge Envoys behind one LB, with real OIDC software
//! (see `integration_tests::fleet`): logins checked by several Envoys, an
//! Envoy lost mid-login, and rolling key rotations while logins run, by
//! restarts (keys from the environment) and with no restart (ECDS).

use integration_tests::fleet::{ecds_counter, ecds_version, FleetBed, KeySource};
use integration_tests::oidc_bed::{Flavour, Login, Options, KEYS};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

fn assert_logged_in(login: &Login, what: &str) {
    assert!(
        login.ok() && login.server_errors().is_empty(),
        "{what}: not logged in:\n{}",
        login.describe()
    );
}

/// The edge Envoys that answered the app's requests of one login.
fn edges(login: &Login) -> Vec<String> {
    login.hops.iter().filter_map(|h| h.edge.clone()).collect()
}

fn is_callback(u: &url::Url) -> bool {
    u.path() == "/callback"
}

#[test]
fn each_login_is_checked_by_three_envoys_and_survives_an_envoy_lost_mid_flow() {
    let mut bed = FleetBed::start(3, KeySource::Env, &["k1"], Options::new(Flavour::Http));
    for n in 0..3 {
        let mut b = bed.browser();
        let login = bed.login(&mut b, "");
        assert_logged_in(&login, &format!("login {n}"));
        // /login, the callback and /me: each through another Envoy.
        let seen = edges(&login);
        assert_eq!(seen.len(), 3, "{}", login.describe());
        assert_eq!(
            seen.iter().collect::<BTreeSet<_>>().len(),
            3,
            "three Envoys: {seen:?}"
        );
    }
    assert_eq!(bed.counter("oidc_edge.login_flow.pinned"), 3);

    // The Envoy that started a login dies while the user is at the IdP; the
    // LB sends the callback to another, which finishes the login on the
    // node that started it.
    let mut b = bed.browser();
    let paused = b
        .navigate_until(&format!("{}/login", bed.origin()), is_callback)
        .expect_err("paused before the callback");
    let started = b.trace[0].clone();
    let dead: usize = started.edge.as_deref().expect("edge")[1..].parse().unwrap();
    bed.stop_edge(dead);
    let page = b.resume(paused);
    let from = b.trace.iter().position(|h| is_callback(&h.url)).unwrap();
    let rest = Login {
        page,
        hops: b.trace.clone(),
    };
    assert_logged_in(&rest, "login whose Envoy died");
    let callback = &b.trace[from];
    assert_ne!(callback.edge, started.edge, "{}", rest.describe());
    assert_eq!(callback.node, started.node, "{}", rest.describe());
    // Back in place, it checks logins again.
    bed.start_edge(dead);
    let name = format!("e{dead}");
    let mut served = false;
    for _ in 0..3 {
        let mut b = bed.browser();
        let login = bed.login(&mut b, "");
        assert_logged_in(&login, "after the restart");
        served |= edges(&login).contains(&name);
    }
    assert!(served, "the restarted Envoy serves again");
}

/// Logins run one after another on `workers` threads until stopped; every
/// outcome is recorded.
struct Traffic {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    failed: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(bed: &Arc<RwLock<FleetBed>>, workers: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..workers)
            .map(|_| {
                let (bed, stop, done, failed) =
                    (bed.clone(), stop.clone(), done.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        // The browser is built under the lock, the login runs
                        // without it: the bed changes while logins are in flight.
                        let (mut b, origin) = {
                            let bed = bed.read().unwrap();
                            (bed.browser(), bed.origin())
                        };
                        let from = b.trace.len();
                        let page = b.navigate(&format!("{origin}/login"));
                        let login = Login {
                            page,
                            hops: b.trace[from..].to_vec(),
                        };
                        if login.ok() && login.server_errors().is_empty() {
                            done.fetch_add(1, Ordering::SeqCst);
                        } else {
                            failed.lock().unwrap().push(login.describe());
                        }
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            done,
            failed,
            threads,
        }
    }

    /// Waits until `n` more logins have finished: every login in flight
    /// when this was called has then ended (each worker runs one at a time).
    fn settle(&self, workers: usize) {
        let target = self.done.load(Ordering::SeqCst) + 2 * workers;
        while self.done.load(Ordering::SeqCst) < target && self.failed.lock().unwrap().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().expect("worker");
        }
        let failed = self.failed.lock().unwrap().clone();
        (self.done.load(Ordering::SeqCst), failed)
    }
}

/// The rotation of `envoy/fleet-oidc-edge.yaml`'s comment, Envoy by Envoy,
/// while logins run: add k2 everywhere, promote it, drop k1.
fn rolling_rotation(source: KeySource) -> (Arc<RwLock<FleetBed>>, usize) {
    const WORKERS: usize = 3;
    let bed = Arc::new(RwLock::new(FleetBed::start(
        3,
        source,
        &["k1"],
        Options::new(Flavour::Http),
    )));
    // A login sealed under k1 that waits at the IdP through the whole rotation.
    let (mut stale, stale_cb) = {
        let bed = bed.read().unwrap();
        let mut b = bed.browser();
        let p = b
            .navigate_until(&format!("{}/login", bed.origin()), is_callback)
            .expect_err("paused before the callback");
        (b, p)
    };
    let traffic = Traffic::start(&bed, WORKERS);
    traffic.settle(WORKERS);
    for ring in [&["k1", "k2"][..], &["k2", "k1"], &["k2"]] {
        for i in 0..3 {
            bed.write().unwrap().set_ring(i, ring);
            traffic.settle(WORKERS);
        }
    }
    let (done, failed) = traffic.finish();
    assert!(
        failed.is_empty(),
        "{} of {} logins failed during the rotation; first:\n{}",
        failed.len(),
        done + failed.len(),
        failed[0]
    );
    // 9 steps, each with at least two logins per worker after it.
    assert!(done >= 9 * 2 * WORKERS, "{done} logins");
    {
        let bed = bed.read().unwrap();
        for i in 0..3 {
            assert_eq!(bed.ring(i), ["k2"]);
        }
        // No callback met a key its Envoy did not have...
        assert_eq!(bed.counter("oidc_edge.login_flow.rejected.unknown_key"), 0);
        // ...and k1 is really gone: the login started under it is refused.
        let page = stale.resume(stale_cb);
        assert_eq!(page.status(), 400, "{}", page.text());
        assert_eq!(
            page.response.header("x-oidc-edge-reason"),
            Some("flow_cookie_unknown_key")
        );
        assert_eq!(bed.counter("oidc_edge.login_flow.rejected.unknown_key"), 1);
    }
    (bed, done)
}

#[test]
fn rolling_key_rotation_by_restarts_with_continuous_logins() {
    let (bed, done) = rolling_rotation(KeySource::Env);
    eprintln!("{done} logins, none failed, across 9 Envoy restarts");
    let bed = bed.read().unwrap();
    // Secrets came from the environment: the admin interface shows only the
    // variables' names.
    for e in bed.running_edges() {
        let dump = e.admin("/config_dump");
        for (_, env, secret) in KEYS {
            assert!(!dump.contains(secret), "secret in config_dump");
            assert!(dump.contains(env), "the variable's name is");
        }
    }
}

#[test]
fn rolling_key_rotation_through_ecds_with_no_restart() {
    let (bed, done) = rolling_rotation(KeySource::Ecds);
    eprintln!("{done} logins, none failed, across 9 ECDS updates");
    let mut bed = bed.write().unwrap();
    for i in 0..3 {
        let e = bed.edge(i);
        // Four versions: the start and three updates, in one process
        // (set_ring checks the pid too).
        assert_eq!(ecds_version(e).as_deref(), Some("v4"));
        assert_eq!(ecds_counter(e, "config_reload"), 4);
        // The trade-off: the ring is in the resource, so the admin
        // interface shows the signing secret to whoever can reach it.
        let dump = e.admin("/config_dump");
        let (_, _, k2) = KEYS[1];
        assert!(
            dump.contains(k2),
            "ECDS puts the secrets in config_dump: document it"
        );
    }
    // A configuration oidc-edge refuses (a 16-byte secret) is refused by
    // Envoy too, and the running one stays.
    let bad = r#"{"login_flow": {"authorization_endpoints": ["https://127.0.0.1:1/auth"],
        "callback_paths": ["/callback"], "keys": [{"id": "k3", "secret": "MDEyMzQ1Njc4OWFiY2RlZg=="}]}}"#;
    let fails = ecds_counter(bed.edge(0), "config_fail");
    bed.offer_plugin(0, bad);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ecds_counter(bed.edge(0), "config_fail") == fails {
        assert!(
            std::time::Instant::now() < deadline,
            "the bad update was not refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ecds_version(bed.edge(0)).as_deref(), Some("v4"));
    for n in 0..3 {
        let mut b = bed.browser();
        assert_logged_in(
            &bed.login(&mut b, ""),
            &format!("login {n} after a refused update"),
        );
    }
}

/// fleet.yaml is edge.yaml with the oidc-edge filter fetched through ECDS
/// (and the node identity ECDS needs): every other setting, tested through
/// edge.yaml, is the same. The ECDS resource carries edge.yaml's filter.
#[test]
fn fleet_yaml_is_edge_yaml_with_the_filter_through_ecds() {
    use integration_tests::EnvoyConfig;
    use serde_json::Value;
    let root = integration_tests::repo_root();
    let edge = EnvoyConfig::load(&root.join("envoy/edge.yaml")).doc;
    let mut fleet = EnvoyConfig::load(&root.join("envoy/fleet.yaml")).doc;
    let filters = |d: &Value| -> Vec<Value> {
        d["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (ef, ff) = (filters(&edge), filters(&fleet));
    let at = ef
        .iter()
        .position(|f| f["name"] == "envoy.filters.http.wasm")
        .unwrap();
    assert_eq!(ff[at]["name"], "oidc-edge");
    assert!(ff[at]["config_discovery"].is_object());
    let mut expected = ff.clone();
    expected[at] = ef[at].clone();
    assert_eq!(expected, ef, "only the oidc-edge filter differs");
    assert!(fleet["node"]["id"].is_string() && fleet["node"]["cluster"].is_string());
    fleet.as_object_mut().unwrap().remove("node");
    fleet["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"] = Value::Array(ef.clone());
    assert_eq!(fleet, edge, "the rest is edge.yaml's");

    // The resource: edge.yaml's wasm filter, but for the keys' source.
    let text = std::fs::read_to_string(root.join("envoy/fleet-oidc-edge.yaml")).unwrap();
    let res: Value = serde_yaml::from_str(&text).unwrap();
    let mut ecds = res["resources"][0]["typed_config"].clone();
    let mut inline = ef[at]["typed_config"].clone();
    for w in [&mut ecds, &mut inline] {
        w["config"]["configuration"]["value"] = Value::Null;
        w["config"]["vm_config"]["environment_variables"] = Value::Null;
    }
    assert_eq!(ecds, inline);
}
