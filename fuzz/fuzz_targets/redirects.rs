//! Any Location an app can answer and any return-to value or authorization
//! request (GET or POST form) a client can send: the redirect checks never
//! panic, fix sends only registered bytes, a rewritten Location (absolute or network-path) keeps everything
//! after the origin byte for byte, and loose route matching is reflexive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::http::authority::Origin;
use oidc_edge::{idp, redirects};

fuzz_target!(|data: &str| {
    let json = br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_token_env": null},
        "redirects": {"authorization_endpoints": ["https://idp.example.com/authorize"],
                      "redirect_uris": ["https://app.example.com/callback"], "redirect_uri_mode": "fix",
                      "internal_origins": ["http://app.internal:8080"], "rewrite_upstream_origin": true,
                      "return_to": {}},
        "idp": {"authorization_paths": ["/authorize"], "clients": {"app": ["https://app.example.com/cb"]}}}"#;
    let Ok(cfg) = Config::parse(json) else { return };
    let (Some(rc), Some(ic)) = (cfg.redirects, cfg.idp) else { return };
    let Ok(ext) = Origin::parse("https://app.example.com") else { return };
    for external in [None, Some(&ext)] {
        // fix only ever sends a registered URI's exact bytes.
        if let (redirects::RedirectUriVerdict::Fixed { registered, .. }, _) =
            redirects::check_authorization_redirect(&rc, data, external)
        {
            assert!(rc.registered().contains(&registered.as_str()));
        }
    }
    if let Some(moved) = redirects::rewrite_location(&rc, data, Some("127.0.0.1:8080"), &ext) {
        // After the authority, of an absolute or a network-path reference.
        let tail = |s: &str| {
            let after = s
                .strip_prefix("//")
                .or_else(|| s.split_once("://").map(|(_, r)| r));
            after
                .and_then(|r| r.find(['/', '?', '#']).map(|i| r[i..].to_string()))
                .unwrap_or_default()
        };
        assert_eq!(tail(&moved), tail(data));
        assert!(moved.starts_with("https://app.example.com"));
    }
    if let Some(rt) = &rc.return_to {
        let _ = redirects::check_return_to(rt, data, &ext);
    }
    // Loose route matching: never panics, and a path always matches itself.
    let path = data.split(['?', '#']).next().unwrap_or("");
    assert!(oidc_edge::http::uri::route_matches(path, path));
    let _ = idp::is_authorization_path(&ic, data);
    let _ = idp::check_authorization_request(&ic, data);
    // The same bytes as a POST form, split anywhere between query and body.
    let cut = data.len() / 2;
    if data.is_char_boundary(cut) {
        let (path, body) = data.split_at(cut);
        let get = idp::check_authorization_request(&ic, path);
        let post = idp::check_authorization_post(
            &ic,
            path,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        );
        // A body can only add parameters, never turn a known non-authorization path into one.
        assert_eq!(get.is_none(), post.is_none());
    }
});
