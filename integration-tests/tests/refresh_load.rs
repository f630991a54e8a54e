//! Silent renewals under load, then after failover (a short run of
//! `./build.sh refresh-load`; see `integration_tests::refresh_load`).

use integration_tests::fleet::{FleetBed, KeySource};
use integration_tests::oidc_bed::{Flavour, Options};
use integration_tests::refresh_load::{run, Params, TABLE_HEADER};

#[test]
fn renewals_at_peak_and_after_an_envoy_and_a_node_die_all_end_logged_in() {
    let mut bed = FleetBed::start(3, KeySource::Env, &["k1"], Options::new(Flavour::Http));
    let phases = run(
        &mut bed,
        &Params {
            users: 30,
            background: 4,
            websockets: 6,
            burst: 30,
        },
    );
    eprintln!("{TABLE_HEADER}");
    for p in &phases {
        eprintln!("{}", p.row());
    }
    for p in &phases {
        assert!(
            p.failed.is_empty(),
            "{}: {} of {} renewals failed; first:\n{}",
            p.name,
            p.failed.len(),
            p.renewals,
            p.failed[0]
        );
        assert_eq!(
            p.background_5xx, 0,
            "{}: background 5xx: {:?}",
            p.name, p.background_examples
        );
        assert!(p.background > 0, "{}: background traffic ran", p.name);
        assert_eq!(p.retry_overflow, 0, "{}", p.name);
    }
    // Open WebSockets ride out renewals and a dead Envoy's absence once the
    // failure has passed; only those on a dead node or Envoy are lost.
    assert_eq!(phases[0].ws_failures, 0, "{:?}", phases[0]);
    let node_phase = &phases[2];
    assert!(
        node_phase.moved > 0,
        "some users were on node-a and moved: {node_phase:?}"
    );
    // (Requests in flight at the instant of a crash may fail:
    // `at_failure`, reported by ./build.sh refresh-load, not asserted.)
    // Each moved user lost its affinity through oidc-edge (background
    // users pinned to node-a too).
    assert!(bed.counter("oidc_edge.session.node_gone") as usize >= node_phase.moved);
}
