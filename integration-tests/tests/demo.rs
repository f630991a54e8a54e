//! `./build.sh demo` keeps telling the truth: run it once, non-interactively.

#[test]
fn the_demo_shows_logins_surviving_with_oidc_edge_and_failing_without() {
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
    let (with, without) = text
        .split_once("without oidc-edge")
        .expect("both halves of the comparison");
    assert_eq!(
        with.matches("same node: login completes").count(),
        4,
        "{text}"
    );
    assert_eq!(
        without.matches("DIFFERENT NODE: login fails").count(),
        4,
        "{text}"
    );
    assert!(text.contains("400 flow_cookie_missing"), "{text}");
    assert!(
        text.contains("=> the app builds redirect_uri=https://app.example.com/callback"),
        "{text}"
    );
    assert!(
        text.contains("400 oidc-edge: this host name is not served here"),
        "{text}"
    );
}
