//! `./build.sh demo` keeps telling the truth: run it once, non-interactively,
//! and check its verdicts against what the bed did.

#[test]
fn the_demo_shows_real_logins_surviving_with_oidc_edge_and_failing_without() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .arg("--once")
        .output()
        .expect("run the demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = text.split_once("=== Summary").expect("a summary").1;
    for expected in [
        "HTTP LB with    oidc-edge: LOGGED IN as alice",
        "HTTP LB without oidc-edge: FAILED: the callback went to",
        "TCP LB  with    oidc-edge: LOGGED IN as alice",
        "TCP LB  without oidc-edge: FAILED: the IdP refused redirect_uri=http://app.test:",
        "several hosts on one Envoy (HAProxy http, nginx, TCP LB, HAProxy tcp + PROXY v2): 8 of 8 logged in",
    ] {
        assert!(summary.contains(expected), "{expected}\n{text}");
    }
    // The failover-refresh case: every silent renewal ended logged in, and
    // every user of the killed node moved to a live node without a form.
    let line = summary
        .lines()
        .find(|l| l.contains("failover refresh (node-a killed): "))
        .unwrap_or_else(|| panic!("the failover-refresh verdict\n{text}"));
    let numbers: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [ok, renewals, moved, on_dead] = numbers[..] else {
        panic!("{line}");
    };
    assert!(renewals > 0 && ok == renewals, "{line}\n{text}");
    assert!(on_dead > 0 && moved == on_dead, "{line}\n{text}");
    // Every hop is shown, and each login names its nodes (the failover
    // login has two callbacks, the failover renewal shown one).
    assert_eq!(text.matches(" GET /callback?").count(), 6, "{text}");
    let failover = text
        .split_once("stops while the user is at the IdP")
        .expect("the failover login")
        .1;
    let verdict = failover
        .lines()
        .find(|l| l.contains("=> "))
        .unwrap_or_default();
    assert!(verdict.contains("LOGGED IN as alice"), "{text}");
    assert!(
        text.contains(
            "X-Forwarded-Host: evil.example => the app sent redirect_uri=https://app.test:"
        ),
        "{text}"
    );
    assert!(
        text.contains("X-Forwarded-Host: evil.example => the app sent redirect_uri=https://evil.example/callback"),
        "{text}"
    );
}
