//! `./build.sh refresh-load [USERS] [--compare]`: the refresh-under-load
//! scenario (`integration_tests::refresh_load`) at full size with
//! `envoy/edge.yaml` as it is, and with `--compare` once more with Envoy's
//! default retry circuit breaker (3 retries at once) instead of edge.yaml's,
//! printing the results tables of `docs/refresh-under-load.md`.

use integration_tests::fleet::{FleetBed, KeySource, Upstream};
use integration_tests::oidc_bed::{Flavour, Options};
use integration_tests::refresh_load::{run, Params, TABLE_HEADER};
use serde_json::Value;

/// edge.yaml with the app cluster's circuit_breakers removed (Envoy's defaults).
fn default_breaker(doc: &mut Value) {
    for c in doc["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters")
    {
        if c["name"] == "app" {
            c.as_object_mut()
                .expect("cluster")
                .remove("circuit_breakers")
                .expect("edge.yaml sizes the app cluster's circuit breaker");
        }
    }
}

fn main() {
    let users: usize = std::env::args()
        .nth(1)
        .filter(|a| !a.starts_with("--"))
        .map(|a| a.parse().expect("USERS: a number"))
        .unwrap_or(200);
    let params = Params {
        users,
        background: 8,
        websockets: 20,
        burst: 100,
    };
    println!("{users} users, {} background threads, {} WebSockets, a burst of {} new visitors as the node dies; 3 edge Envoys, 3 app nodes\n", params.background, params.websockets, params.burst);
    let compare = std::env::args().any(|a| a == "--compare");
    let mut failed = false;
    for (what, edit) in [
        ("envoy/edge.yaml (max_retries: 1024)", None),
        (
            "Envoy's default retry breaker (max_retries: 3)",
            Some(default_breaker as fn(&mut Value)),
        ),
    ]
    .into_iter()
    .take(if compare { 2 } else { 1 })
    {
        let mut bed = FleetBed::start_with(
            3,
            KeySource::Env,
            &["k1"],
            Options::new(Flavour::Http),
            edit,
            Upstream::Http1,
        );
        let phases = run(&mut bed, &params);
        println!("{what}\n\n{TABLE_HEADER}");
        for p in &phases {
            println!("{}", p.row());
        }
        for p in &phases {
            for f in p.failed.iter().take(2) {
                println!("\n{}: failed renewal:\n{f}", p.name);
            }
            // Every failure by the hop it ended on (status and first line,
            // node and URL left out), to tell causes apart.
            let mut causes: std::collections::BTreeMap<String, usize> = Default::default();
            for f in &p.failed {
                let last = f.lines().last().unwrap_or_default();
                let cause = last.split_once(" -> ").map_or(last, |(_, c)| c);
                let cause: String = cause
                    .split(['[', ']'])
                    .enumerate()
                    .filter(|(i, _)| i % 2 == 0)
                    .map(|(_, s)| s)
                    .collect();
                *causes.entry(cause).or_default() += 1;
            }
            for (cause, n) in &causes {
                println!("{}: {n} failed renewals ended: {cause}", p.name);
            }
            for ex in &p.background_examples {
                println!("{}: background: {ex}", p.name);
            }
            failed |= edit.is_none() && !p.failed.is_empty();
        }
        println!();
    }
    if failed {
        std::process::exit(1);
    }
}
