//! Redirect checks in a real Envoy 1.40 loaded from `envoy/edge.yaml`: the
//! app's redirect_uri in each mode, Location rewriting, the return-to guard.

use integration_tests::{Envoy, EnvoyConfig, Request, Response, Upstream};

const LB: &str = "127.0.0.2";

fn edge(redirects: &str) -> (Envoy, Upstream) {
    let up = Upstream::start("app-1");
    let plugin = format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["127.0.0.2/32"], "accept_host": true}},
            "redirects": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                          "redirect_uris": ["https://app.example.com/callback"]{redirects}}}}}"#
    );
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(&plugin)
            .upstreams(&[up.addr]),
    );
    (envoy, up)
}

/// The app answers 302 to `location`; the browser came through the LB over https.
fn app_redirects_to(envoy: &Envoy, location: &str) -> Response {
    let to: String = form_urlencoded::byte_serialize(location.as_bytes()).collect();
    Request::get("10.0.0.12:8080", &format!("/redirect?to={to}"))
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "app.example.com")
        .send(envoy.port)
}

const AUTHORIZE: &str = "https://idp.example.com/oauth2/authorize?response_type=code&client_id=app";
const TAIL: &str = "&state=a%2Fb%20c&scope=openid+email&nonce=%E2%9C%93";

#[test]
fn enforce_replaces_an_unregistered_redirect_uri_with_a_clear_502() {
    let (envoy, _up) = edge("");
    let good = format!("{AUTHORIZE}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback{TAIL}");
    let resp = app_redirects_to(&envoy, &good);
    assert_eq!(resp.status, 302);
    assert_eq!(
        resp.header("location"),
        Some(good.as_str()),
        "a registered redirect passes byte for byte"
    );

    let bad = format!("{AUTHORIZE}&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback{TAIL}");
    let resp = app_redirects_to(&envoy, &bad);
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("redirect_uri_mismatch")
    );
    assert!(
        resp.header("location").is_none(),
        "the browser is not sent to the IdP"
    );
    assert!(
        envoy.log().contains(r#"redirect_uri="http://app.internal:8080/callback": redirect_uri is not registered; registered: ["https://app.example.com/callback"]"#),
        "the operator's log says what the app sent and what is registered"
    );
    assert_eq!(
        envoy.counter("oidc_edge.redirects.redirect_uri_registered"),
        1
    );
    assert_eq!(
        envoy.counter("oidc_edge.redirects.redirect_uri_mismatch"),
        1
    );
}

#[test]
fn fix_sends_the_registered_uri_and_keeps_every_other_byte() {
    let (envoy, _up) = edge(r#", "redirect_uri_mode": "fix""#);
    let bad = format!("{AUTHORIZE}&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback{TAIL}");
    let resp = app_redirects_to(&envoy, &bad);
    assert_eq!(resp.status, 302);
    let fixed = format!("{AUTHORIZE}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback{TAIL}");
    assert_eq!(resp.header("location"), Some(fixed.as_str()));
    assert_eq!(envoy.counter("oidc_edge.redirects.redirect_uri_fixed"), 1);
    // A different path is not a load-balancer mistake: refused, not "fixed".
    let other = format!("{AUTHORIZE}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fother{TAIL}");
    assert_eq!(app_redirects_to(&envoy, &other).status, 502);
}

/// Envoy with `redirects` as given and a trusted LB whose
/// `X-Forwarded-Host` names the public host.
fn edge_with(redirects: &str) -> (Envoy, Upstream) {
    let up = Upstream::start("app-1");
    let plugin = format!(
        r#"{{"forwarded": {{"trusted_cidrs": ["127.0.0.2/32"], "accept_host": true}},
            "redirects": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"]{redirects}}}}}"#
    );
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(&plugin)
            .upstreams(&[up.addr]),
    );
    (envoy, up)
}

/// The app answers 302 to `location` for a browser on `https://{public}`.
fn app_on_host_redirects_to(envoy: &Envoy, public: &str, location: &str) -> Response {
    let to: String = form_urlencoded::byte_serialize(location.as_bytes()).collect();
    Request::get("10.0.0.12:8080", &format!("/redirect?to={to}"))
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", public)
        .send(envoy.port)
}

/// Issue point 1: an IdP compares redirect URIs as strings (RFC 9700
/// §4.1.3), so a spelling that equals the registered URI only after case
/// folding or dropping `:443` is a mismatch in enforce (with the registered
/// spelling in the log) and the registered bytes in fix.
#[test]
fn a_respelled_redirect_uri_is_refused_by_enforce_and_respelled_by_fix() {
    let respelled =
        format!("{AUTHORIZE}&redirect_uri=HTTPS%3A%2F%2FApp.Example.com%3A443%2Fcallback{TAIL}");
    let (envoy, _up) = edge("");
    let resp = app_redirects_to(&envoy, &respelled);
    assert_eq!(resp.status, 502, "{}", resp.text());
    assert_eq!(
        resp.header("x-oidc-edge-reason"),
        Some("redirect_uri_mismatch")
    );
    assert!(
        envoy.log().contains(r#"equals the registered "https://app.example.com/callback" only after case-folding or dropping a default port"#),
        "{}",
        envoy.log()
    );
    let (envoy, _up) = edge(r#", "redirect_uri_mode": "fix""#);
    let resp = app_redirects_to(&envoy, &respelled);
    assert_eq!(resp.status, 302);
    let fixed = format!("{AUTHORIZE}&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback{TAIL}");
    assert_eq!(resp.header("location"), Some(fixed.as_str()));
    assert_eq!(envoy.counter("oidc_edge.redirects.redirect_uri_fixed"), 1);
}

/// Issue point 2: fix repairs the authorization request only; Envoy's log
/// says so at load and at every rewrite, naming the cure (the forwarded
/// view).
#[test]
fn fix_warns_at_load_and_at_each_rewrite_what_it_cannot_repair() {
    let (envoy, _up) = edge(r#", "redirect_uri_mode": "fix""#);
    let log = envoy.log();
    assert!(
        log.contains(
            r#"redirects.redirect_uri_mode is "fix": fix rewrites the authorization request only"#
        ) && log.contains("invalid_grant")
            && log.contains("forwarded.trusted_cidrs"),
        "load-time warning: {log}"
    );
    let bad = format!("{AUTHORIZE}&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback{TAIL}");
    assert_eq!(app_redirects_to(&envoy, &bad).status, 302);
    assert!(
        envoy.log().contains(r#"redirect_uri_mode fix: the app redirected to the IdP with redirect_uri="http://app.internal:8080/callback"; sent the registered "https://app.example.com/callback" instead. fix rewrites the authorization request only"#),
        "{}",
        envoy.log()
    );
}

/// Issue point 3: on a deployment with several public hosts, fix sends the
/// registered URI on the host the browser is on (from the trusted LB's
/// X-Forwarded-Host), never the first one listed, and refuses a host with
/// none.
#[test]
fn fix_sends_the_registered_uri_of_the_browsers_host() {
    let (envoy, _up) = edge_with(
        r#", "redirect_uri_mode": "fix",
           "redirect_uris": ["https://a.example.com/callback", "https://b.example.com/callback"]"#,
    );
    let bad = format!("{AUTHORIZE}&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback{TAIL}");
    for host in ["b.example.com", "a.example.com"] {
        let resp = app_on_host_redirects_to(&envoy, host, &bad);
        assert_eq!(resp.status, 302, "{host}");
        let want = format!("{AUTHORIZE}&redirect_uri=https%3A%2F%2F{host}%2Fcallback{TAIL}");
        assert_eq!(resp.header("location"), Some(want.as_str()), "{host}");
    }
    let resp = app_on_host_redirects_to(&envoy, "c.example.com", &bad);
    assert_eq!(resp.status, 502);
    assert!(
        envoy.log().contains("no registered redirect_uri with this path and query on the request's external origin https://c.example.com"),
        "{}",
        envoy.log()
    );
    assert_eq!(envoy.counter("oidc_edge.redirects.redirect_uri_fixed"), 2);
    assert_eq!(
        envoy.counter("oidc_edge.redirects.redirect_uri_mismatch"),
        1
    );
}

#[test]
fn report_counts_and_passes() {
    let (envoy, _up) = edge(r#", "redirect_uri_mode": "report""#);
    let bad = format!("{AUTHORIZE}&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback{TAIL}");
    let resp = app_redirects_to(&envoy, &bad);
    assert_eq!(resp.status, 302);
    assert_eq!(resp.header("location"), Some(bad.as_str()));
    assert_eq!(
        envoy.counter("oidc_edge.redirects.redirect_uri_mismatch"),
        1
    );
    assert_eq!(envoy.counter("oidc_edge.redirects.report_only"), 1);
}

#[test]
fn internal_locations_move_to_the_external_origin_byte_for_byte() {
    let (envoy, up) = edge(
        r#", "internal_origins": ["http://app.internal:8080"], "rewrite_upstream_origin": true"#,
    );
    let rows = [
        (
            "http://app.internal:8080/a/b?x=%2F&y=%E2%9C%93#frag",
            Some("https://app.example.com/a/b?x=%2F&y=%E2%9C%93#frag"),
        ),
        ("http://app.internal:8080.evil.example/", None),
        ("http://app.internal:8081/", None),
        ("/relative?x=%2F", None),
        ("https://elsewhere.example/x", None),
    ];
    for (loc, want) in rows {
        let resp = app_redirects_to(&envoy, loc);
        assert_eq!(resp.status, 302);
        assert_eq!(resp.header("location"), Some(want.unwrap_or(loc)), "{loc}");
    }
    // The answering node's own address (an app that builds URLs from its socket).
    let own = format!("http://{}/welcome?x=1", up.addr);
    assert_eq!(
        app_redirects_to(&envoy, &own).header("location"),
        Some("https://app.example.com/welcome?x=1")
    );
    assert_eq!(envoy.counter("oidc_edge.redirects.location_rewritten"), 2);
}

/// A network-path `Location` (`//host:port/x`, RFC 3986 §4.2) takes the
/// browser to the internal host as surely as an absolute one: it moves to
/// the external origin too.
#[test]
fn network_path_locations_move_to_the_external_origin() {
    let (envoy, up) = edge(
        r#", "internal_origins": ["http://app.internal:8080"], "rewrite_upstream_origin": true"#,
    );
    let own = format!("//{}/welcome", up.addr);
    let rows = [
        (
            "//app.internal:8080/a/b?x=%2F#frag",
            Some("https://app.example.com/a/b?x=%2F#frag"),
        ),
        (own.as_str(), Some("https://app.example.com/welcome")),
        ("//app.internal:8081/x", None),
        ("//app.internal:8080.evil.example/x", None),
        ("///app.internal:8080/x", None),
    ];
    for (loc, want) in rows {
        let resp = app_redirects_to(&envoy, loc);
        assert_eq!(resp.status, 302);
        assert_eq!(resp.header("location"), Some(want.unwrap_or(loc)), "{loc}");
    }
    assert_eq!(envoy.counter("oidc_edge.redirects.location_rewritten"), 2);
}

/// A browser request for `path` through the LB over https: the external
/// origin is `https://app.example.com`.
fn via_lb(envoy: &Envoy, path: &str) -> Response {
    Request::get("10.0.0.12:8080", path)
        .from(LB)
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "app.example.com")
        .send(envoy.port)
}

#[test]
fn return_to_parameters_cannot_leave_the_site() {
    let (envoy, _up) = edge(r#", "return_to": {"paths": ["/login", "/logout"]}"#);
    let send = |q: &str| via_lb(&envoy, &format!("/logout?{q}"));
    assert_eq!(send("rd=%2Faccount").status, 200);
    assert_eq!(send("next=https%3A%2F%2Fapp.example.com%2Fx").status, 200);
    assert_eq!(
        send("next=https%3A%2F%2Fapp.example.com%3A443%2Fx").status,
        200,
        "explicit default port: the same origin"
    );
    assert_eq!(
        send("q=a;b").status,
        200,
        "a ; without a return-to parameter"
    );
    // (query, reason code: one per problem, so the answer says what is
    // wrong; case and source)
    let rows = [
        (
            "rd=%2F%2Fevil.example",
            "return_to_off_site",
            "scheme-relative",
        ),
        ("rd=%2F%5Cevil.example", "return_to_malformed", "backslash"),
        (
            "return_to=https%3Aevil.example",
            "return_to_off_site",
            "WHATWG slashless",
        ),
        (
            "next=%2F%09%2Fevil.example",
            "return_to_malformed",
            "tab between slashes",
        ),
        (
            "rd=%2F%252F%2Fevil.example",
            "return_to_malformed",
            "encoded slash",
        ),
        ("rd=%2Fa&rd=%2F%2Fevil", "return_to_repeated", "repeated"),
        (
            "next=http%3A%2F%2Fapp.example.com%2Fx",
            "return_to_off_site",
            "downgrade to http on the same host (RFC 6454 §4)",
        ),
        (
            "next=https%3A%2F%2Fapp.example.com%3A8443%2Fx",
            "return_to_off_site",
            "another port on the same host",
        ),
        (
            "x=1;rd=%2F%2Fevil.example",
            "return_to_semicolon",
            "hidden behind a ; (CVE-2021-23336)",
        ),
        (
            "rd=%2Faccount;rd=%2F%2Fevil",
            "return_to_semicolon",
            "; repeat",
        ),
    ];
    for (bad, code, why) in rows {
        let resp = send(bad);
        assert_eq!(resp.status, 400, "{why}: {bad}");
        assert_eq!(
            resp.header("x-oidc-edge-reason"),
            Some(code),
            "{why}: {bad}"
        );
        assert!(resp.text().contains(code), "{why}: {}", resp.text());
    }
    assert_eq!(
        via_lb(&envoy, "/other?rd=%2F%2Fevil.example").status,
        200,
        "only configured paths"
    );
    assert_eq!(
        envoy.counter("oidc_edge.redirects.return_to_rejected"),
        rows.len() as u64
    );
}

/// The guarded paths in spellings an app's router may still map to the
/// same handler (Express ignores a trailing slash, ASP.NET case, Tomcat
/// `;jsessionid`): the guard applies to every one. Envoy passes each of
/// these paths to the filter unchanged (no `normalize_path` in edge.yaml).
#[test]
fn return_to_paths_cannot_be_respelled_around_the_guard() {
    let (envoy, _up) = edge(r#", "return_to": {"paths": ["/login", "/logout"]}"#);
    let rows = [
        ("/Logout", "letter case"),
        ("/LOGOUT", "upper case"),
        ("/logout/", "trailing slash"),
        ("//logout", "doubled slash"),
        ("/x/../logout", "dot segment"),
        ("/logout;jsessionid=1", "path parameter"),
        ("/%6Cogout", "percent-encoded letter"),
    ];
    for (path, why) in rows {
        let resp = via_lb(&envoy, &format!("{path}?rd=%2F%2Fevil.example"));
        assert_eq!(resp.status, 400, "{why}: {path}");
        assert_eq!(
            resp.header("x-oidc-edge-reason"),
            Some("return_to_off_site"),
            "{why}"
        );
        assert_eq!(
            via_lb(&envoy, &format!("{path}?rd=%2Faccount")).status,
            200,
            "{why}: a safe target still passes"
        );
    }
    assert_eq!(
        envoy.counter("oidc_edge.redirects.return_to_rejected"),
        rows.len() as u64
    );
}

/// Envoy in front of an IdP (an echo upstream), oidc-edge in IdP mode.
fn idp_edge(mode: &str) -> (Envoy, Upstream) {
    let up = Upstream::start("idp");
    let plugin = format!(
        r#"{{"idp": {{"authorization_paths": ["/oauth2/authorize"], "mode": "{mode}",
                     "clients": {{"app": ["https://app.example.com/callback"]}}}}}}"#
    );
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config(&plugin)
            .upstreams(&[up.addr]),
    );
    (envoy, up)
}

#[test]
fn idp_mode_refuses_unregistered_redirect_uris_without_redirecting() {
    let (envoy, _up) = idp_edge("enforce");
    let send = |q: &str| {
        Request::get("idp.example.com", &format!("/oauth2/authorize?{q}")).send(envoy.port)
    };
    let ok = send("response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=x");
    assert_eq!(ok.status, 200, "registered: the IdP gets the request");
    for (q, why) in [
        ("client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcallback", "not registered"),
        ("client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&redirect_uri=https%3A%2F%2Fevil.example%2F", "appears more than once"),
        ("client_id=other&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback", "not known"),
    ] {
        let resp = send(q);
        assert_eq!(resp.status, 400, "{q}");
        assert!(resp.header("location").is_none(), "never redirect on an invalid redirect_uri");
        assert!(resp.text().starts_with("invalid_request: "), "{}", resp.text());
        assert!(resp.text().contains(why), "{why}: {}", resp.text());
    }
    assert_eq!(envoy.counter("oidc_edge.idp.accepted"), 1);
    assert_eq!(envoy.counter("oidc_edge.idp.rejected"), 3);
}

/// OpenID Connect IdPs must accept authorization requests as POST forms
/// too; a check on GET alone could be walked around with an auto-submitting
/// form. The body is read (buffered) and checked with the query.
#[test]
fn idp_mode_checks_post_authorization_requests() {
    let (envoy, _up) = idp_edge("enforce");
    let form = "application/x-www-form-urlencoded";
    let good =
        "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
    let post = |path: &str, ct: &str, body: &str| {
        Request::post("idp.example.com", path, ct, body).send(envoy.port)
    };
    let ok = post("/oauth2/authorize", form, good);
    assert_eq!(ok.status, 200, "registered: the IdP gets the request");
    let echo: serde_json::Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(echo["method"], "POST");
    let big = format!("{good}&pad={}", "a".repeat(70_000));
    for (path, ct, body, why) in [
        (
            "/oauth2/authorize",
            form,
            "client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcallback",
            "not registered",
        ),
        (
            "/oauth2/authorize?redirect_uri=https%3A%2F%2Fevil.example%2F",
            form,
            good,
            "more than once",
        ),
        (
            "/oauth2/authorize",
            "application/json",
            r#"{"client_id":"app"}"#,
            "must be a form",
        ),
        ("/oauth2/authorize", form, big.as_str(), "64 KiB"),
    ] {
        let resp = post(path, ct, body);
        assert_eq!(resp.status, 400, "{why}");
        assert!(resp.header("location").is_none(), "never redirect");
        assert!(
            resp.text().starts_with("invalid_request: "),
            "{}",
            resp.text()
        );
        assert!(resp.text().contains(why), "{why}: {}", resp.text());
    }
    // Other paths' POSTs are not authorization requests.
    assert_eq!(post("/oauth2/token", form, "grant_type=x").status, 200);
    assert_eq!(envoy.counter("oidc_edge.idp.accepted"), 1);
    assert_eq!(envoy.counter("oidc_edge.idp.rejected"), 4);
}

/// Spellings of the authorization path an IdP's router may still serve:
/// none of them skips the check, GET or POST.
#[test]
fn idp_mode_checks_every_spelling_of_the_authorization_path() {
    let (envoy, _up) = idp_edge("enforce");
    let evil = "client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcallback";
    let good = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
    let rows = [
        ("/oauth2/authorize/", "trailing slash"),
        ("/OAuth2/Authorize", "letter case"),
        ("/oauth2/%61uthorize", "percent-encoded letter"),
        (
            "/%6Fauth2/authorize",
            "percent-encoded letter, first segment",
        ),
        ("//oauth2//authorize", "doubled slashes"),
        ("/oauth2/authorize;x=1", "path parameter"),
        ("/oauth2/x/../authorize", "dot segment"),
    ];
    for (path, why) in rows {
        let resp = Request::get("idp.example.com", &format!("{path}?{evil}")).send(envoy.port);
        assert_eq!(resp.status, 400, "{why}: {path}");
        assert!(resp.header("location").is_none(), "{why}");
        assert!(
            resp.text().starts_with("invalid_request: ") && resp.text().contains("not registered"),
            "{why}: {}",
            resp.text()
        );
        let post = Request::post(
            "idp.example.com",
            path,
            "application/x-www-form-urlencoded",
            evil,
        )
        .send(envoy.port);
        assert_eq!(post.status, 400, "POST {why}: {path}");
        let ok = Request::get("idp.example.com", &format!("{path}?{good}")).send(envoy.port);
        assert_eq!(ok.status, 200, "{why}: a registered redirect_uri passes");
    }
    assert_eq!(
        envoy.counter("oidc_edge.idp.rejected"),
        2 * rows.len() as u64
    );
    assert_eq!(envoy.counter("oidc_edge.idp.accepted"), rows.len() as u64);
}

/// Request objects (JAR, RFC 9101) and pushed requests (PAR, RFC 9126)
/// carry a redirect_uri the filter cannot see: refused, with the reason.
#[test]
fn idp_mode_refuses_request_objects() {
    let (envoy, _up) = idp_edge("enforce");
    for q in [
        "client_id=app&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Abwc4JK",
        "client_id=app&request_uri=https%3A%2F%2Fevil.example%2Freq.jwt",
        "client_id=app&request=eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJodHRwczovL2V2aWwuZXhhbXBsZS8ifQ.",
    ] {
        let resp =
            Request::get("idp.example.com", &format!("/oauth2/authorize?{q}")).send(envoy.port);
        assert_eq!(resp.status, 400, "{q}");
        assert_eq!(resp.header("x-oidc-edge-reason"), Some("invalid_request"));
        assert!(
            resp.text().contains("RFC 9101") && resp.text().contains("cannot be checked"),
            "{}",
            resp.text()
        );
    }
    assert_eq!(envoy.counter("oidc_edge.idp.rejected"), 3);
}

/// The denial of service: a 64 KiB form of short distinct names made the
/// repeat check quadratic (about 0.7 s native per request, more in V8).
/// Now more than 256 parameters are refused, after reading 257 of them.
#[test]
fn idp_mode_refuses_a_flood_of_parameters_quickly() {
    let (envoy, _up) = idp_edge("enforce");
    let good = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
    let at_cap: String = (0..254).map(|i| format!("&p{i}=")).collect();
    let post = |body: &str| {
        Request::post(
            "idp.example.com",
            "/oauth2/authorize",
            "application/x-www-form-urlencoded",
            body,
        )
        .send(envoy.port)
    };
    assert_eq!(
        post(&format!("{good}{at_cap}")).status,
        200,
        "256 parameters pass"
    );
    let over = post(&format!("{good}{at_cap}&one_more="));
    assert_eq!(over.status, 400);
    assert!(
        over.text().contains("more than 256 parameters"),
        "{}",
        over.text()
    );
    // About 57 KB of short distinct names (12,000 of them).
    let flood: String = (0..12_000).map(|i| format!("{i:x}&")).collect();
    let flood = flood.as_str();
    let resp = post(flood);
    assert_eq!(resp.status, 400);
    assert!(
        resp.text().contains("more than 256 parameters"),
        "{}",
        resp.text()
    );
    // The same flood in the query of a GET.
    let resp = Request::get(
        "idp.example.com",
        &format!("/oauth2/authorize?{}", &flood[..flood.len().min(30_000)]),
    )
    .send(envoy.port);
    assert_eq!(resp.status, 400);
    assert!(
        resp.text().contains("more than 256 parameters"),
        "{}",
        resp.text()
    );
    assert_eq!(envoy.counter("oidc_edge.idp.rejected"), 3);
}

#[test]
fn report_mode_for_return_to_and_idp_counts_and_forwards() {
    let (envoy, _up) = edge(r#", "return_to": {"paths": ["/logout"], "mode": "report"}"#);
    let resp = via_lb(&envoy, "/logout?rd=%2F%2Fevil.example");
    assert_eq!(resp.status, 200, "report mode forwards");
    assert_eq!(envoy.counter("oidc_edge.redirects.return_to_rejected"), 1);
    assert_eq!(envoy.counter("oidc_edge.redirects.report_only"), 1);

    let (idp, _up) = idp_edge("report");
    let resp = Request::get(
        "idp.example.com",
        "/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2F",
    )
    .send(idp.port);
    assert_eq!(resp.status, 200);
    assert_eq!(idp.counter("oidc_edge.idp.rejected"), 1);
}
