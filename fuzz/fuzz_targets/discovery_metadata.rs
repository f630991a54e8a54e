//! Any bytes as the IdP's metadata document (and any `:status`): a refusal
//! or a learned endpoint, never a panic, and the endpoint lists grow by
//! one at most however many documents arrive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::live::LiveConfig;

const CONFIG: &[u8] = br#"{"discovery": {"issuer": "https://idp.example.com", "cluster": "idp"},
    "login_flow": {"authorization_endpoints": ["https://idp.example.com/auth"], "callback_paths": ["/callback"],
        "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]},
    "redirects": {"redirect_uris": ["https://app.example.com/callback"]}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::parse(CONFIG) else {
        return;
    };
    let mut live = LiveConfig::new(config, 1);
    // The input split into documents at NUL bytes: a sequence of answers.
    for (i, doc) in data.split(|b| *b == 0).enumerate() {
        if live.on_tick().is_none() {
            return;
        }
        let status: &[u8] = if i % 5 == 4 { b"503" } else { b"200" };
        let _ = live.on_response(Some(status), doc);
        let c = live.config();
        let lf = c.login_flow.as_ref().map_or(0, |l| l.authorization_endpoints.len());
        let r = c.redirects.as_ref().map_or(0, |r| r.authorization_endpoints.len());
        assert!(lf <= 2 && r <= 2, "endpoint lists grew: {lf}, {r}");
    }
});
