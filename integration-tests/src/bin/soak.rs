//! `./build.sh soak [REQUESTS] [CLIENTS]`: a bounded soak through a real
//! Envoy with the filter (see `integration_tests::soak`); prints the
//! figures and fails if any answer, counter or memory figure is off.

fn main() {
    let mut args = std::env::args().skip(1);
    let requests = args.next().and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let clients = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    eprintln!("soak: {requests} requests from {clients} keep-alive clients");
    let report = integration_tests::soak::run(requests, clients);
    println!("{}", report.render());
    // Envoy's resident set may move by allocator noise; a leak of a few
    // bytes per request over the run is far above it.
    let problems = report.problems(8 << 20);
    if problems.is_empty() {
        println!("PASS: no wrong answer, no 5xx, no VM failure, every counter as sent, memory flat after warm-up");
    } else {
        for p in &problems {
            println!("FAIL: {p}");
        }
        std::process::exit(1);
    }
}
