//! A short soak (the long one is `./build.sh soak`): a fixed mix of
//! ordinary traffic, logins, callbacks, form posts, tampered and expired
//! cookies, untrusted clients, redirects and refusals through a real Envoy
//! with the filter. Every answer is the one its kind must get, no 5xx, no
//! VM failure, every counter equal to what the mix sent, and the VM's
//! linear memory unchanged after the first 10 % of requests.

#[test]
fn a_short_soak_answers_every_request_right_with_flat_vm_memory() {
    let report = integration_tests::soak::run(20_000, 4);
    eprintln!("{}", report.render());
    // Envoy's resident set is only reported here: over a short run it
    // still moves by allocator noise. The long soak bounds it.
    let problems = report.problems(u64::MAX / 2);
    assert!(problems.is_empty(), "{problems:#?}\n{}", report.render());
    assert!(report.requests >= 20_000 - 2);
}
