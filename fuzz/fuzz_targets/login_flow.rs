//! Any callback a browser can send (path, query, body, cookies) and any
//! redirect an app can answer: the login-flow decisions never panic.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::http::authority::Origin;
use oidc_edge::login_flow::{self, RequestMemo};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    path: &'a str,
    cookie: &'a [u8],
    body: &'a [u8],
    location: &'a str,
    fetch_mode: &'a [u8],
    fetch_dest: &'a [u8],
    fetch_site: &'a [u8],
    now_ms: u64,
    session: bool,
    over_http: bool,
    form_post: bool,
}

fuzz_target!(|input: Input| {
    let affinity = if input.session { "session" } else { "flow" };
    let response_mode = if input.form_post { "form_post" } else { "auto" };
    let json = format!(
        r#"{{"login_flow": {{"authorization_endpoints": ["https://idp.example.com/authorize"],
            "callback_paths": ["/callback"], "affinity": "{affinity}", "response_mode": "{response_mode}",
            "keys": [{{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}]}}}}"#
    );
    let Some(cfg) = Config::parse(json.as_bytes())
        .ok()
        .and_then(|c| c.login_flow)
    else {
        return;
    };
    let headers: Vec<(&str, &[u8])> = vec![
        ("cookie", input.cookie),
        ("sec-fetch-mode", input.fetch_mode),
        ("sec-fetch-dest", input.fetch_dest),
        ("sec-fetch-site", input.fetch_site),
    ];
    let origin = "https://app.example.com";
    let _ = login_flow::on_request(&cfg, input.path, &headers, input.now_ms, origin);
    let _ = login_flow::form_post_node(&cfg, &headers, input.now_ms, origin);
    let _ = login_flow::check_form_post(
        &cfg,
        input.body,
        Some("10.0.0.1:80"),
        &headers,
        input.now_ms,
        origin,
    );
    let _ = login_flow::session_node(&cfg, &headers, input.now_ms, origin);
    let scheme = if input.over_http { "http" } else { "https" };
    let external = Origin::parse(&format!("{scheme}://app.example.com")).ok();
    let memo = login_flow::memo(&cfg, input.path, &headers, external.as_ref());
    let _ = login_flow::on_response(
        &cfg,
        input.location,
        Some("10.0.0.1:80"),
        &memo,
        input.now_ms,
        origin,
    );
    let _ = RequestMemo::default();
});
