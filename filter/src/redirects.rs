//! Redirect checks: where the app sends browsers.
//!
//! - [`check_authorization_redirect`]: when the app redirects to the IdP, its
//!   `redirect_uri` must exactly match a registered one (RFC 9700 §4.1.3),
//!   with only the normalizations RFC 3986 §6.2.2 calls safe (scheme and host
//!   case, default port). `fix` mode repairs the one mistake a load balancer
//!   causes (an internal scheme, host or port) by sending the registered
//!   URI's exact bytes, leaving every other parameter byte for byte.
//! - [`rewrite_location`]: a `Location` on an internal origin (exactly, not
//!   as a prefix) is moved to the external origin; path, query and fragment
//!   stay byte for byte; relative `Location`s are left alone.
//! - [`check_return_to`]: `rd`/`return_to`/`next`-style parameters accept
//!   only same-origin paths or URLs on allowed hosts, refusing every form
//!   browsers read as another site (`//evil`, `/\evil`, `https:evil`,
//!   whitespace or encoded slashes between slashes, dot segments).

use crate::authority::{HostPattern, Origin};
use crate::config::Mode;
use crate::metrics::{Counter, CounterSet};
use crate::uri::AbsoluteUri;

/// What the redirect_uri check does with a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
pub enum RedirectUriMode {
    /// Replace the redirect with a 502 that says what the app sent.
    #[default]
    #[serde(rename = "enforce")]
    Enforce,
    /// Rewrite a redirect_uri whose path and query are registered but whose
    /// scheme, host or port are not; refuse anything else like `enforce`.
    #[serde(rename = "fix")]
    Fix,
    /// Count and log only.
    #[serde(rename = "report")]
    Report,
}

/// Validated `redirects` settings.
#[derive(Debug, Clone)]
pub struct RedirectsConfig {
    /// IdP authorization endpoints whose redirects are checked.
    pub authorization_endpoints: Vec<String>,
    /// Registered redirect URIs (each a valid [`AbsoluteUri`] without fragment).
    pub redirect_uris: Vec<String>,
    /// What a mismatch does.
    pub redirect_uri_mode: RedirectUriMode,
    /// Origins whose `Location`s are moved to the external origin.
    pub internal_origins: Vec<Origin>,
    /// Also move `Location`s on the answering node's own `ip:port`.
    pub rewrite_upstream_origin: bool,
    /// Return-to parameter guard, if configured.
    pub return_to: Option<ReturnToConfig>,
}

/// Validated `redirects.return_to` settings.
#[derive(Debug, Clone)]
pub struct ReturnToConfig {
    /// Parameter names checked.
    pub params: Vec<String>,
    /// Paths (exact) on which they are checked; empty means every path.
    pub paths: Vec<String>,
    /// Hosts besides the external one that absolute targets may name.
    pub allowed_hosts: Vec<HostPattern>,
    /// Enforce (400) or report.
    pub mode: Mode,
}

/// The verdict on a redirect to the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectUriVerdict {
    /// Not a redirect to a configured authorization endpoint.
    NotAuthorization,
    /// The redirect_uri is registered.
    Registered,
    /// `fix` mode: send this `Location` instead.
    Fixed(String),
    /// Not registered: what was sent and why it fails.
    Mismatch {
        /// The redirect_uri as the app sent it (decoded), or a description.
        sent: String,
        /// Why it does not match.
        why: &'static str,
    },
}

/// Checks an upstream redirect's `Location` against the registered redirect URIs.
pub fn check_authorization_redirect(
    cfg: &RedirectsConfig,
    location: &str,
) -> (RedirectUriVerdict, CounterSet) {
    let mut counters = CounterSet::default();
    let Some(loc) = AbsoluteUri::parse(location) else {
        return (RedirectUriVerdict::NotAuthorization, counters);
    };
    let is_authorize = cfg
        .authorization_endpoints
        .iter()
        .filter_map(|e| AbsoluteUri::parse(e))
        .any(|e| e.same_endpoint(&loc));
    if !is_authorize {
        return (RedirectUriVerdict::NotAuthorization, counters);
    }
    let query = loc.query.unwrap_or("");
    let values: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .collect();
    let mismatch = |sent: String, why: &'static str, mut counters: CounterSet| {
        counters.add(Counter::RedirectUriMismatch);
        (RedirectUriVerdict::Mismatch { sent, why }, counters)
    };
    let sent = match values.as_slice() {
        [one] => one.clone(),
        [] => {
            return mismatch(
                String::new(),
                "the authorization request has no redirect_uri",
                counters,
            )
        }
        _ => {
            return mismatch(
                values.join(" | "),
                "redirect_uri appears more than once",
                counters,
            )
        }
    };
    let Some(uri) = AbsoluteUri::parse(&sent) else {
        return mismatch(
            sent,
            "redirect_uri is not a plain absolute http(s) URI (userinfo, backslash, whitespace or control characters)",
            counters,
        );
    };
    if uri.fragment.is_some() {
        return mismatch(
            sent,
            "redirect_uri has a fragment (RFC 6749 §3.1.2)",
            counters,
        );
    }
    let registered: Vec<AbsoluteUri> = cfg
        .redirect_uris
        .iter()
        .filter_map(|r| AbsoluteUri::parse(r))
        .collect();
    if registered.iter().any(|r| r.equivalent(&uri)) {
        counters.add(Counter::RedirectUriRegistered);
        return (RedirectUriVerdict::Registered, counters);
    }
    if cfg.redirect_uri_mode == RedirectUriMode::Fix {
        let candidate = cfg
            .redirect_uris
            .iter()
            .zip(&registered)
            .find(|(_, r)| r.path == uri.path && r.query == uri.query);
        if let Some((fixed, _)) = candidate {
            counters.add(Counter::RedirectUriFixed);
            return (
                RedirectUriVerdict::Fixed(replace_param(location, "redirect_uri", fixed)),
                counters,
            );
        }
    }
    mismatch(sent, "redirect_uri is not registered", counters)
}

/// `location` with the value of `name` in its query replaced by `value`
/// (form-urlencoded); every other byte unchanged.
fn replace_param(location: &str, name: &str, value: &str) -> String {
    let (before_fragment, fragment) = match location.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (location, None),
    };
    let Some((base, query)) = before_fragment.split_once('?') else {
        return location.to_string();
    };
    let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let parts: Vec<String> = query
        .split('&')
        .map(|p| {
            let key = p.split_once('=').map_or(p, |(k, _)| k);
            let decoded_key: String = form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .collect();
            if decoded_key == name {
                format!("{key}={encoded}")
            } else {
                p.to_string()
            }
        })
        .collect();
    let mut out = format!("{base}?{}", parts.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A `Location` on an internal origin, moved to `external`; `None` if it is
/// relative, external already, or not exactly an internal origin.
/// `upstream` is the answering node's `ip:port` (for `rewrite_upstream_origin`).
pub fn rewrite_location(
    cfg: &RedirectsConfig,
    location: &str,
    upstream: Option<&str>,
    external: &Origin,
) -> Option<String> {
    let loc = AbsoluteUri::parse(location)?;
    let port = loc.port();
    let internal = cfg.internal_origins.iter().any(|o| {
        o.proto == loc.proto && o.authority.host == loc.authority.host && o.port() == port
    }) || (cfg.rewrite_upstream_origin
        && upstream.is_some_and(|u| format!("{}:{}", loc.authority.host, port) == u));
    if !internal {
        return None;
    }
    // Everything after the authority, byte for byte.
    let after_scheme = location.split_once("://").map_or("", |(_, r)| r);
    let tail = after_scheme
        .find(['/', '?', '#'])
        .and_then(|i| after_scheme.get(i..))
        .unwrap_or("");
    let host = external
        .authority
        .display_for(external.proto, external.port());
    Some(format!("{}://{host}{tail}", external.proto.as_str()))
}

/// Why a return-to value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnToProblem {
    /// The parameter appears more than once.
    Duplicate,
    /// Not a same-site target.
    OffSite,
}

/// Checks the return-to parameters of a request. `external_host` is the
/// host the browser addressed (lower case).
pub fn check_return_to(
    cfg: &ReturnToConfig,
    path_and_query: &str,
    external_host: &str,
) -> Result<(), ReturnToProblem> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if !cfg.paths.is_empty() && !cfg.paths.iter().any(|p| p == path) {
        return Ok(());
    }
    for name in &cfg.params {
        let mut values = form_urlencoded::parse(query.as_bytes())
            .filter(|(k, _)| k == name.as_str())
            .map(|(_, v)| v);
        let Some(v) = values.next() else { continue };
        if values.next().is_some() {
            return Err(ReturnToProblem::Duplicate);
        }
        if !is_safe_target(&v, external_host, &cfg.allowed_hosts) {
            return Err(ReturnToProblem::OffSite);
        }
    }
    Ok(())
}

/// A same-origin path, or an absolute http(s) URL on the external host or an
/// allowed host. Everything a browser could resolve to another site is
/// refused, including forms some browsers "fix up".
pub fn is_safe_target(v: &str, external_host: &str, allowed: &[HostPattern]) -> bool {
    // Whitespace and control characters: browsers strip tabs and newlines
    // inside URLs ("/\t/evil" becomes "//evil"); backslashes read as slashes.
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') || !v.is_ascii() {
        return false;
    }
    // Encoded slashes, backslashes and dots: apps and proxies that decode
    // once more turn "/%2F/evil" into "//evil".
    let lower = v.to_ascii_lowercase();
    if ["%2f", "%5c", "%2e", "%09", "%0a", "%0d", "%00"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return false;
    }
    if let Some(rest) = v.strip_prefix('/') {
        if rest.starts_with('/') {
            return false; // scheme-relative: another host
        }
        let path = v.split(['?', '#']).next().unwrap_or(v);
        return !path.split('/').any(|seg| seg == "." || seg == "..");
    }
    // Absolute: only a plain http(s) URL on an allowed host.
    match AbsoluteUri::parse(v) {
        Some(u) => {
            let h = u.authority.host.as_str();
            (h == external_host || allowed.iter().any(|p| p.matches(h)))
                && !u.path.split('/').any(|seg| seg == "." || seg == "..")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: RedirectUriMode) -> RedirectsConfig {
        RedirectsConfig {
            authorization_endpoints: vec!["https://idp.example.com/authorize".into()],
            redirect_uris: vec![
                "https://app.example.com/callback".into(),
                "https://app.example.com/cb?tenant=a".into(),
            ],
            redirect_uri_mode: mode,
            internal_origins: vec![Origin::parse("http://app.internal:8080").unwrap()],
            rewrite_upstream_origin: true,
            return_to: None,
        }
    }

    fn check(mode: RedirectUriMode, redirect_uri_param: &str) -> RedirectUriVerdict {
        let loc = format!(
            "https://idp.example.com/authorize?client_id=app&{redirect_uri_param}&state=s%2F1"
        );
        check_authorization_redirect(&cfg(mode), &loc).0
    }

    fn enc(s: &str) -> String {
        format!(
            "redirect_uri={}",
            form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
        )
    }

    /// (redirect_uri as the app sent it, registered?, source)
    #[test]
    fn exact_matching_corpus() {
        let rows: &[(&str, bool, &str)] = &[
            ("https://app.example.com/callback", true, "exact"),
            (
                "HTTPS://APP.EXAMPLE.COM/callback",
                true,
                "RFC 3986 §6.2.2.1: scheme and host are case-insensitive",
            ),
            (
                "https://app.example.com:443/callback",
                true,
                "RFC 3986 §6.2.3: default port",
            ),
            (
                "https://app.example.com/cb?tenant=a",
                true,
                "registered query",
            ),
            (
                "http://app.example.com/callback",
                false,
                "RFC 9700 §2.1: scheme downgrade",
            ),
            ("https://app.example.com:8443/callback", false, "other port"),
            (
                "https://app.example.com/Callback",
                false,
                "path case (RFC 3986 §6.2.2.1: paths are case-sensitive)",
            ),
            ("https://app.example.com/callback/", false, "trailing slash"),
            (
                "https://app.example.com/callback/../callback",
                false,
                "RFC 9700 §4.1.3: no dot-segment removal",
            ),
            (
                "https://app.example.com/%63allback",
                false,
                "RFC 9700 §4.1.3: no percent-decoding",
            ),
            (
                "https://app.example.com/callback?",
                false,
                "empty query is a different string",
            ),
            (
                "https://app.example.com/callback?x=1",
                false,
                "extra query (OAuth 2.1 §2.3.1: exact match)",
            ),
            (
                "https://app.example.com/cb?tenant=b",
                false,
                "other registered-query value",
            ),
            (
                "https://app.example.com/callback#f",
                false,
                "RFC 6749 §3.1.2: no fragment",
            ),
            ("https://evil.example/callback", false, "other host"),
            (
                "https://app.example.com.evil.example/callback",
                false,
                "host suffix",
            ),
            (
                "https://app.example.com@evil.example/callback",
                false,
                "userinfo: WHATWG reads evil.example as host",
            ),
            (
                "https://app.example.com\\@evil.example/callback",
                false,
                "backslash: WHATWG treats \\ as / in http(s)",
            ),
            ("https://app.example.com/call back", false, "space"),
            (
                "https://app.example.com/callback\t",
                false,
                "tab (WHATWG strips it)",
            ),
            (
                " https://app.example.com/callback",
                false,
                "leading space (WHATWG trims it)",
            ),
            ("//app.example.com/callback", false, "scheme-relative"),
            ("/callback", false, "relative"),
        ];
        for (uri, ok, why) in rows {
            let v = check(RedirectUriMode::Enforce, &enc(uri));
            assert_eq!(
                v == RedirectUriVerdict::Registered,
                *ok,
                "{why}: {uri} -> {v:?}"
            );
        }
    }

    #[test]
    fn parameter_level_rules() {
        let dup = check(RedirectUriMode::Enforce, "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&redirect_uri=https%3A%2F%2Fevil.example%2F");
        assert!(
            matches!(dup, RedirectUriVerdict::Mismatch { why, .. } if why.contains("more than once")),
            "RFC 6749 §3.1: no repeated parameters"
        );
        let none = check_authorization_redirect(
            &cfg(RedirectUriMode::Enforce),
            "https://idp.example.com/authorize?client_id=app",
        )
        .0;
        assert!(matches!(none, RedirectUriVerdict::Mismatch { .. }));
        let other = check_authorization_redirect(
            &cfg(RedirectUriMode::Enforce),
            "https://other.example/authorize?redirect_uri=x",
        )
        .0;
        assert_eq!(other, RedirectUriVerdict::NotAuthorization);
    }

    #[test]
    fn fix_mode_sends_the_registered_bytes_and_leaves_the_rest() {
        let loc = "https://idp.example.com/authorize?client_id=app&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback&state=a%2Fb&scope=openid%20email#frag";
        let (v, counters) = check_authorization_redirect(&cfg(RedirectUriMode::Fix), loc);
        assert_eq!(
            v,
            RedirectUriVerdict::Fixed(
                "https://idp.example.com/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=a%2Fb&scope=openid%20email#frag".into()
            )
        );
        assert!(counters.contains(Counter::RedirectUriFixed));
        // Only scheme/host/port may differ: another path is not "fixed".
        let v = check(RedirectUriMode::Fix, &enc("http://app.internal:8080/other"));
        assert!(matches!(v, RedirectUriVerdict::Mismatch { .. }));
    }

    #[test]
    fn location_rewriting() {
        let ext = Origin::parse("https://app.example.com").unwrap();
        let c = cfg(RedirectUriMode::Enforce);
        let rows: &[(&str, Option<&str>, &str)] = &[
            (
                "http://app.internal:8080/a/b?x=%2F&y#f",
                Some("https://app.example.com/a/b?x=%2F&y#f"),
                "internal origin; rest byte for byte",
            ),
            (
                "http://APP.internal:8080",
                Some("https://app.example.com"),
                "no path",
            ),
            (
                "http://app.internal:8080?q",
                Some("https://app.example.com?q"),
                "query without path",
            ),
            (
                "http://app.internal:8080.evil.example/",
                None,
                "prefix is not a match",
            ),
            ("http://app.internal:8081/", None, "other port"),
            ("https://app.internal:8080/", None, "other scheme"),
            ("http://app.internal:8080@evil.example/", None, "userinfo"),
            ("/relative?x", None, "relative left alone"),
            (
                "http://127.0.0.1:18101/x",
                Some("https://app.example.com/x"),
                "the answering node's own address",
            ),
            ("http://127.0.0.1:18102/x", None, "another node's address"),
            ("https://app.example.com/x", None, "already external"),
        ];
        for (loc, want, why) in rows {
            assert_eq!(
                rewrite_location(&c, loc, Some("127.0.0.1:18101"), &ext).as_deref(),
                *want,
                "{why}"
            );
        }
    }

    /// Payload classes from RFC 9700 §4.11, the WHATWG URL parser, and the
    /// oauth2-proxy open-redirect advisories (GHSA-qqxw-m5fj-f7gv,
    /// GHSA-j7px-6hwj-hpjg, GHSA-5m6c-jp6f-2vcv, GHSA-4mf2-f3wh-gvf2):
    /// backslashes, whitespace between slashes, redirect-regex evasions and
    /// allowed-domain suffix checks.
    #[test]
    fn return_to_corpus() {
        let allowed = vec![HostPattern::parse("*.example.org").unwrap()];
        let rows: &[(&str, bool, &str)] = &[
            ("/account", true, "same-origin path"),
            ("/account?tab=1#top", true, "with query and fragment"),
            (
                "https://app.example.com/x",
                true,
                "absolute on the external host",
            ),
            ("https://docs.example.org/x", true, "allowed host"),
            ("//evil.example", false, "scheme-relative (RFC 3986 §4.2)"),
            ("///evil.example", false, "triple slash"),
            (
                "/\\evil.example",
                false,
                "WHATWG: backslash read as slash (oauth2-proxy advisories)",
            ),
            ("\\\\evil.example", false, "double backslash"),
            (
                "/\t/evil.example",
                false,
                "GHSA-j7px-6hwj-hpjg: whitespace between slashes (WHATWG strips tabs)",
            ),
            ("/ /evil.example", false, "space between slashes"),
            ("/\n/evil.example", false, "newline between slashes"),
            (
                "/%2F/evil.example",
                false,
                "encoded slash: one more decoding makes //evil",
            ),
            ("/%2f%2fevil.example", false, "lower-case encoded slashes"),
            ("/%5Cevil.example", false, "encoded backslash"),
            ("/%09/evil.example", false, "encoded tab"),
            (
                "https:evil.example",
                false,
                "WHATWG: special scheme without slashes is absolute",
            ),
            ("https:/evil.example", false, "one slash"),
            ("javascript:alert(1)", false, "script scheme"),
            ("data:text/html,x", false, "data scheme"),
            ("https://evil.example/", false, "absolute on another host"),
            (
                "https://app.example.com.evil.example/",
                false,
                "host suffix",
            ),
            ("https://app.example.com@evil.example/", false, "userinfo"),
            (
                "https://evil.example/.app.example.com",
                false,
                "allowed name in the path",
            ),
            (
                "https://example.org/",
                false,
                "wildcard does not cover the bare domain",
            ),
            ("/../evil", false, "dot segment"),
            ("/a/./b", false, "dot segment"),
            ("/%2e%2e/evil", false, "encoded dot segment"),
            ("evil.example", false, "bare host"),
            ("", false, "empty"),
            ("/caf\u{e9}", false, "non-ASCII"),
        ];
        for (v, ok, why) in rows {
            assert_eq!(
                is_safe_target(v, "app.example.com", &allowed),
                *ok,
                "{why}: {v:?}"
            );
        }
    }

    #[test]
    fn return_to_params_and_paths() {
        let c = ReturnToConfig {
            params: vec!["rd".into(), "next".into()],
            paths: vec!["/login".into()],
            allowed_hosts: vec![],
            mode: Mode::Enforce,
        };
        assert_eq!(
            check_return_to(&c, "/login?rd=%2Faccount", "app.example.com"),
            Ok(())
        );
        assert_eq!(
            check_return_to(&c, "/login?rd=%2F%2Fevil.example", "app.example.com"),
            Err(ReturnToProblem::OffSite)
        );
        assert_eq!(
            check_return_to(&c, "/login?next=https%3Aevil.example", "app.example.com"),
            Err(ReturnToProblem::OffSite)
        );
        assert_eq!(
            check_return_to(&c, "/login?rd=%2Fa&rd=%2F%2Fevil", "app.example.com"),
            Err(ReturnToProblem::Duplicate)
        );
        assert_eq!(
            check_return_to(&c, "/other?rd=%2F%2Fevil.example", "app.example.com"),
            Ok(()),
            "only configured paths"
        );
    }
}
