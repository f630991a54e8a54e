//! The end-to-end logins again, in headless Chromium: the browser users
//! have decides which cookies travel, not our scripted one. Each case also
//! runs in the scripted browser, which must reach the same verdict, so the
//! faster scenarios in `oidc_e2e.rs` stay true to a real browser.

use integration_tests::chromium::{final_dom, pre_text};
use integration_tests::oidc_bed::{Flavour, OidcBed, Options};
use serde_json::Value;

/// What Chromium ended on: `/me`'s JSON when logged in, else the page text.
fn chromium_login(bed: &OidcBed, query: &str) -> Result<Value, String> {
    let dom = final_dom(&format!("{}/login{query}", bed.origin()), "app.test");
    let text = pre_text(&dom).unwrap_or_else(|| dom.clone());
    match serde_json::from_str::<Value>(&text) {
        Ok(me) if me["sub"].is_string() => Ok(me),
        _ => Err(text),
    }
}

fn scripted_login(bed: &OidcBed, query: &str) -> Result<Value, String> {
    let login = bed.login(&mut bed.browser(), query);
    if login.ok() {
        Ok(login.me())
    } else {
        Err(login.page.text())
    }
}

#[test]
fn chromium_logs_in_through_both_load_balancers_with_oidc_edge() {
    for flavour in [Flavour::Http, Flavour::Tcp] {
        let bed = OidcBed::start(Options::new(flavour));
        for _ in 0..3 {
            let me = chromium_login(&bed, "").unwrap_or_else(|e| panic!("{flavour:?}: {e}"));
            assert_eq!(me["sub"], "alice");
            assert_eq!(me["login_node"], me["callback_node"], "{flavour:?}: {me}");
            assert_eq!(me["node"], me["login_node"], "{flavour:?}: {me}");
            assert!(
                scripted_login(&bed, "").is_ok(),
                "{flavour:?}: scripted browser disagrees"
            );
        }
        assert_eq!(bed.edge().counter("oidc_edge.login_flow.valid"), 6);
    }
}

#[test]
fn chromium_fails_without_oidc_edge_where_the_scripted_browser_does() {
    let bed = OidcBed::start(Options::new(Flavour::Tcp).without_filter());
    let err = chromium_login(&bed, "").expect_err("logged in without oidc-edge");
    assert!(err.contains("invalid_redirect_uri"), "{err}");
    let scripted = scripted_login(&bed, "").expect_err("scripted browser logged in");
    assert!(scripted.contains("invalid_redirect_uri"), "{scripted}");

    let bed = OidcBed::start(Options::new(Flavour::Http).without_filter());
    let failed = (0..3)
        .filter(|_| chromium_login(&bed, "").is_err_and(|e| e.contains("no login in progress")))
        .count();
    assert!(
        failed >= 2,
        "only {failed} of 3 Chromium logins failed without oidc-edge"
    );
}

/// form_post: the IdP's page POSTs cross-site. Chromium sends only
/// SameSite=None cookies with it: oidc-edge's flow cookie is one, so the
/// POST reaches the login's node; the app's own session cookie must be too.
/// With the app's cookie Lax, the login fails in Chromium and in the
/// scripted browser alike (the app's mistake, not the routing).
#[test]
fn chromium_form_post_logins_and_samesite() {
    let mut options = Options::new(Flavour::Http);
    options.app_session_same_site = "none";
    let bed = OidcBed::start(options);
    for _ in 0..3 {
        let me = chromium_login(&bed, "?response_mode=form_post").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(me["login_node"], me["callback_node"], "{me}");
        assert!(scripted_login(&bed, "?response_mode=form_post").is_ok());
    }
    let bed = OidcBed::start(Options::new(Flavour::Http));
    let err = chromium_login(&bed, "?response_mode=form_post").expect_err("Lax session cookie");
    assert!(err.contains("no login in progress"), "{err}");
    let scripted = scripted_login(&bed, "?response_mode=form_post").expect_err("scripted");
    assert!(scripted.contains("no login in progress"), "{scripted}");
}

/// Silent refresh as single-page apps do it: a hidden iframe runs
/// `/login?prompt=none` while the user is on a page of the app. The frame is
/// same-site with its page, so Chromium sends oidc-edge's `SameSite=Lax`
/// flow cookie with the iframe's callback, and the callback is checked and
/// pinned like any other. Whether the IdP finds its own session inside the
/// frame is the browser's third-party cookie policy (the IdP is another site
/// here): Chromium withholds it and the IdP answers `login_required`, which
/// reaches the app. Either way no refusal comes from oidc-edge.
#[test]
fn chromium_silent_refresh_in_an_iframe_passes_oidc_edge() {
    let bed = OidcBed::start(Options::new(Flavour::Http));
    // Log in, then land on /silent, whose iframe re-authenticates.
    let dom = final_dom(&format!("{}/login?next=/silent", bed.origin()), "app.test");
    let result = pre_text(&dom).expect("the /silent page");
    assert!(
        result.contains("login_required") || result.contains("\"sub\":\"alice\""),
        "the iframe did not get the IdP's answer: {result}"
    );
    let edge = bed.edge();
    assert_eq!(edge.counter("oidc_edge.login_flow.issued"), 2, "{result}");
    assert_eq!(edge.counter("oidc_edge.login_flow.valid"), 2, "{result}");
    assert_eq!(edge.counter("oidc_edge.login_flow.pinned"), 2, "{result}");
    assert_eq!(edge.counter("oidc_edge.login_flow.rejected.missing"), 0);
}
