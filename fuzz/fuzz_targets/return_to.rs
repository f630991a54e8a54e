//! The return-to guard against a WHATWG URL parser (the `url` crate, as
//! browsers resolve a redirect): whatever the guard accepts, resolved
//! against any page of the site, stays on the external origin or on an
//! allowed host with the same scheme. The same holds through
//! `check_return_to`, the value arriving percent-encoded in a query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_edge::config::Config;
use oidc_edge::http::authority::{HostPattern, Origin};
use oidc_edge::redirects::{check_return_to, is_safe_target};
use url::Url;

const EXTERNAL: &[&str] = &["https://app.example.com", "https://app.example.com:8443", "http://app.example.com"];
const BASES: &[&str] = &["/", "/login", "/a/b/c?x=1", "/login;x/..%2f"];
const ALLOWED: &str = "*.example.org";

fn assert_on_site(resolved: &Url, external: &Origin, allowed: &HostPattern, v: &str) {
    let ext = Url::parse(&external.serialize()).expect("external origin");
    if resolved.origin() == ext.origin() {
        return;
    }
    let host = resolved.host_str().unwrap_or_default();
    assert!(
        resolved.scheme() == ext.scheme() && allowed.matches(host),
        "the guard accepted {v:?}, which a browser resolves to {resolved} (external {})",
        external.serialize()
    );
}

fuzz_target!(|v: &str| {
    let allowed = HostPattern::parse(ALLOWED).expect("pattern");
    for ext_s in EXTERNAL {
        let external = Origin::parse(ext_s).expect("origin");
        if !is_safe_target(v, &external, std::slice::from_ref(&allowed)) {
            continue;
        }
        for base in BASES {
            let base = Url::parse(&format!("{}{base}", external.serialize())).expect("base");
            // A target the WHATWG parser cannot resolve sends the browser nowhere.
            if let Ok(resolved) = base.join(v) {
                assert_on_site(&resolved, &external, &allowed, v);
            }
        }
    }
    // Through the whole check: the value as a query parameter of a guarded path.
    let json = format!(
        r#"{{"forwarded": {{}}, "redirects": {{"return_to": {{"paths": ["/login"], "allowed_hosts": ["{ALLOWED}"]}}}}}}"#
    );
    let Some(rt) = Config::parse(json.as_bytes())
        .ok()
        .and_then(|c| c.redirects)
        .and_then(|r| r.return_to)
    else {
        return;
    };
    let external = Origin::parse(EXTERNAL[0]).expect("origin");
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("next", v)
        .finish();
    if check_return_to(&rt, &format!("/login?{query}"), &external).is_ok() {
        let base = Url::parse("https://app.example.com/login").expect("base");
        if let Ok(resolved) = base.join(v) {
            assert_on_site(&resolved, &external, &allowed, v);
        }
    }
});
