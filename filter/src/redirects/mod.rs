//! Redirect checks: where the app sends browsers.
//!
//! - [`check_authorization_redirect`]: when the app redirects to the IdP, its
//!   `redirect_uri` must exactly match a registered one (RFC 9700 §4.1.3),
//!   with only the normalizations RFC 3986 §6.2.2 calls safe (scheme and host
//!   case, default port). `fix` mode repairs the one mistake a load balancer
//!   causes (an internal scheme, host or port) by sending the registered
//!   URI's exact bytes, leaving every other parameter byte for byte.
//! - [`rewrite_location`]: a `Location` on an internal origin (exactly, not
//!   as a prefix), absolute or network-path (`//host:port/x`), is moved to
//!   the external origin; path, query and fragment stay byte for byte;
//!   relative `Location`s are left alone.
//! - [`check_return_to`]: `rd`/`return_to`/`next`-style parameters accept
//!   only same-origin paths or URLs on the external origin (scheme, host
//!   and port) or allowed hosts, refusing every form browsers read as
//!   another site (`//evil`, `/\evil`, `https:evil`, whitespace or encoded
//!   slashes between slashes, dot segments). The guarded paths match in any
//!   spelling an app's router may map to them, and a query that a
//!   `;`-splitting framework would read differently is refused.
//!
//! All work is linear in the size of the request or response.

pub mod config;

use crate::http::authority::{HostPattern, Origin, Proto};
use crate::http::uri::{route_matches_any, AbsoluteUri};
use crate::metrics::{Counter, CounterSet};
use crate::outcome::Mode;

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
    /// Paths on which they are checked, in any spelling that
    /// [`crate::http::uri::route_matches`] relates; empty means every path.
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
    // Two values are enough to know it repeats (and to log the first two).
    let values: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .take(2)
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
///
/// A network-path reference (`//app.internal:8080/x`, RFC 3986 §4.2) is
/// rewritten too: the browser resolves it against the page's scheme, so it
/// leads to the internal host as surely as an absolute one does. It counts
/// as internal when it names an internal origin's host and port under that
/// origin's scheme (no port: the scheme's default).
pub fn rewrite_location(
    cfg: &RedirectsConfig,
    location: &str,
    upstream: Option<&str>,
    external: &Origin,
) -> Option<String> {
    let network_path = location.starts_with("//");
    let internal = if network_path {
        [Proto::Http, Proto::Https].iter().any(|p| {
            AbsoluteUri::parse(&format!("{}:{location}", p.as_str()))
                .is_some_and(|loc| is_internal(cfg, &loc, upstream))
        })
    } else {
        AbsoluteUri::parse(location).is_some_and(|loc| is_internal(cfg, &loc, upstream))
    };
    if !internal {
        return None;
    }
    // Everything after the authority, byte for byte.
    let after_scheme = if network_path {
        location.get(2..).unwrap_or("")
    } else {
        location.split_once("://").map_or("", |(_, r)| r)
    };
    let tail = after_scheme
        .find(['/', '?', '#'])
        .and_then(|i| after_scheme.get(i..))
        .unwrap_or("");
    let host = external
        .authority
        .display_for(external.proto, external.port());
    Some(format!("{}://{host}{tail}", external.proto.as_str()))
}

/// Whether `loc` is on an internal origin (scheme, host and port exactly),
/// or on the answering node's own `ip:port` when that is configured.
fn is_internal(cfg: &RedirectsConfig, loc: &AbsoluteUri<'_>, upstream: Option<&str>) -> bool {
    let port = loc.port();
    cfg.internal_origins
        .iter()
        .any(|o| o.proto == loc.proto && o.authority.host == loc.authority.host && o.port() == port)
        || (cfg.rewrite_upstream_origin
            && upstream.is_some_and(|u| format!("{}:{}", loc.authority.host, port) == u))
}

/// Why a return-to value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnToProblem {
    /// The parameter appears more than once.
    Duplicate,
    /// Not a same-origin target.
    OffSite,
    /// The query holds a `;` and, read with `;` as a separator too, names a
    /// return-to parameter: frameworks that split on `;` as well as `&`
    /// (Python's `cgi`/`urlparse` before 3.9.2, Tornado, Tomcat's
    /// `org.apache.tomcat.util.http.Parameters` in some modes, many Perl
    /// and Ruby parsers) would read a value the guard never saw
    /// (`x=1;rd=//evil`, CVE-2021-23336 for Python).
    Semicolon,
}

/// Checks the return-to parameters of a request. `external` is the origin
/// the browser addressed (the forwarded decision's): absolute targets must
/// be on it exactly, scheme, host and port.
///
/// One pass over the query (and one more when it holds a `;`); each
/// parameter name is compared with the configured ones.
pub fn check_return_to(
    cfg: &ReturnToConfig,
    path_and_query: &str,
    external: &Origin,
) -> Result<(), ReturnToProblem> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if !cfg.paths.is_empty() && !route_matches_any(path, cfg.paths.iter().map(String::as_str)) {
        return Ok(());
    }
    let guarded = |name: &str| cfg.params.iter().position(|p| p == name);
    if query.contains(';') {
        let names_one = query.split(['&', ';']).any(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            form_urlencoded::parse(key.as_bytes()).any(|(k, _)| guarded(&k).is_some())
        });
        if names_one {
            return Err(ReturnToProblem::Semicolon);
        }
    }
    let mut seen = vec![false; cfg.params.len()];
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let Some(seen) = guarded(&k).and_then(|i| seen.get_mut(i)) else {
            continue;
        };
        if *seen {
            return Err(ReturnToProblem::Duplicate);
        }
        *seen = true;
        if !is_safe_target(&v, external, &cfg.allowed_hosts) {
            return Err(ReturnToProblem::OffSite);
        }
    }
    Ok(())
}

/// A same-origin path, or an absolute http(s) URL on the external origin
/// (same scheme, host and port: no downgrade to `http`, no other port on
/// the same host) or on an allowed host (same scheme as the external
/// origin, on that scheme's default port or the external port). Everything
/// a browser could resolve to another site is refused, including forms
/// some browsers "fix up".
pub fn is_safe_target(v: &str, external: &Origin, allowed: &[HostPattern]) -> bool {
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
    // Absolute: only a plain http(s) URL on the external origin or an
    // allowed host, never a downgrade.
    match AbsoluteUri::parse(v) {
        Some(u) => {
            let h = u.authority.host.as_str();
            let port = u.port();
            let same_origin = h == external.authority.host && port == external.port();
            let allowed_host = allowed.iter().any(|p| p.matches(h))
                && (port == external.port() || port == u.proto.default_port());
            u.proto == external.proto
                && (same_origin || allowed_host)
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
            (
                "//app.internal:8080/a?x=%2F#f",
                Some("https://app.example.com/a?x=%2F#f"),
                "network-path reference (RFC 3986 §4.2) to the internal origin",
            ),
            (
                "//APP.internal:8080",
                Some("https://app.example.com"),
                "network-path, no path",
            ),
            (
                "//127.0.0.1:18101/x",
                Some("https://app.example.com/x"),
                "network-path to the answering node",
            ),
            (
                "//app.internal/x",
                None,
                "network-path, default port is not 8080",
            ),
            ("//app.internal:8081/x", None, "network-path, other port"),
            (
                "//app.internal:8080.evil.example/",
                None,
                "network-path, prefix",
            ),
            (
                "//app.internal:8080@evil.example/",
                None,
                "network-path, userinfo",
            ),
            ("///app.internal:8080/x", None, "three slashes: a path"),
            ("//evil.example/x", None, "network-path elsewhere"),
        ];
        for (loc, want, why) in rows {
            assert_eq!(
                rewrite_location(&c, loc, Some("127.0.0.1:18101"), &ext).as_deref(),
                *want,
                "{why}"
            );
        }
        // An internal origin on the default port: a network-path without a
        // port names it (under its scheme), one with another port does not.
        let mut c80 = c.clone();
        c80.internal_origins = vec![Origin::parse("http://app.internal").unwrap()];
        for (loc, want) in [
            ("//app.internal/x", Some("https://app.example.com/x")),
            ("//app.internal:80/x", Some("https://app.example.com/x")),
            ("//app.internal:443/x", None),
        ] {
            assert_eq!(
                rewrite_location(&c80, loc, None, &ext).as_deref(),
                want,
                "{loc}"
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
        let ext = Origin::parse("https://app.example.com").unwrap();
        let rows: &[(&str, bool, &str)] = &[
            ("/account", true, "same-origin path"),
            ("/account?tab=1#top", true, "with query and fragment"),
            (
                "https://app.example.com/x",
                true,
                "absolute on the external host",
            ),
            ("https://docs.example.org/x", true, "allowed host"),
            (
                "https://app.example.com:443/x",
                true,
                "explicit default port (RFC 3986 §6.2.3)",
            ),
            (
                "HTTPS://APP.example.com/x",
                true,
                "scheme and host case (RFC 3986 §6.2.2.1)",
            ),
            (
                "http://app.example.com/x",
                false,
                "downgrade to http: same host, other origin (RFC 6454 §4)",
            ),
            (
                "https://app.example.com:8443/x",
                false,
                "other port on the same host: another origin (RFC 6454 §4)",
            ),
            (
                "http://app.example.com:443/x",
                false,
                "http on the https port",
            ),
            (
                "http://docs.example.org/x",
                false,
                "allowed host, downgraded",
            ),
            (
                "https://docs.example.org:8443/x",
                false,
                "allowed host, other port",
            ),
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
            assert_eq!(is_safe_target(v, &ext, &allowed), *ok, "{why}: {v:?}");
        }
        // Behind an external origin on a non-default port, that port is the
        // origin's: absolute targets must name it.
        let ext8443 = Origin::parse("https://app.example.com:8443").unwrap();
        for (v, ok) in [
            ("https://app.example.com:8443/x", true),
            ("https://app.example.com/x", false),
            ("https://docs.example.org/x", true),
            ("https://docs.example.org:8443/x", true),
            ("https://docs.example.org:9443/x", false),
            ("/x", true),
        ] {
            assert_eq!(is_safe_target(v, &ext8443, &allowed), ok, "{v}");
        }
    }

    /// (path and query, verdict, case and source)
    #[test]
    fn return_to_params_and_paths() {
        use ReturnToProblem::*;
        let c = ReturnToConfig {
            params: vec!["rd".into(), "next".into()],
            paths: vec!["/login".into()],
            allowed_hosts: vec![],
            mode: Mode::Enforce,
        };
        let ext = Origin::parse("https://app.example.com").unwrap();
        let rows: &[(&str, Result<(), ReturnToProblem>, &str)] = &[
            ("/login?rd=%2Faccount", Ok(()), "same-origin path"),
            (
                "/login?rd=%2F%2Fevil.example",
                Err(OffSite),
                "scheme-relative",
            ),
            (
                "/login?next=https%3Aevil.example",
                Err(OffSite),
                "WHATWG slashless",
            ),
            (
                "/login?next=http%3A%2F%2Fapp.example.com%2F",
                Err(OffSite),
                "downgrade to http",
            ),
            (
                "/login?next=https%3A%2F%2Fapp.example.com%3A8443%2F",
                Err(OffSite),
                "other port",
            ),
            (
                "/login?rd=%2Fa&rd=%2F%2Fevil",
                Err(Duplicate),
                "RFC 6749 §3.1 style repeat",
            ),
            (
                "/login?r%64=%2Fa&rd=%2Fb",
                Err(Duplicate),
                "repeat with an encoded name",
            ),
            (
                "/other?rd=%2F%2Fevil.example",
                Ok(()),
                "only configured paths",
            ),
            ("/loginx?rd=%2F%2Fevil", Ok(()), "a longer path is another"),
            // Spellings an app's router may map to /login (see uri::route_matches).
            (
                "/Login?rd=%2F%2Fevil",
                Err(OffSite),
                "letter case (ASP.NET, IIS)",
            ),
            (
                "/login/?rd=%2F%2Fevil",
                Err(OffSite),
                "trailing slash (Express)",
            ),
            ("//login?rd=%2F%2Fevil", Err(OffSite), "doubled slash"),
            ("/app/..//login?rd=%2F%2Fevil", Err(OffSite), "dot segment"),
            (
                "/login;jsessionid=x?rd=%2F%2Fevil",
                Err(OffSite),
                "path parameter (Tomcat)",
            ),
            (
                "/%6Cogin?rd=%2F%2Fevil",
                Err(OffSite),
                "percent-encoded letter",
            ),
            // A `;` that a framework may read as a separator.
            (
                "/login?x=1;rd=%2F%2Fevil",
                Err(Semicolon),
                "CVE-2021-23336: hidden behind ;",
            ),
            ("/login?rd=%2Fa;rd=%2F%2Fevil", Err(Semicolon), "; repeat"),
            (
                "/login?rd=%2Fa;b",
                Err(Semicolon),
                "; inside a guarded value",
            ),
            (
                "/login?x=1;r%64=%2F%2Fevil",
                Err(Semicolon),
                "; with an encoded name",
            ),
            (
                "/login?q=a;b",
                Ok(()),
                "; without a guarded parameter in any reading",
            ),
            ("/login?rd=%2Fa%3Bb", Ok(()), "an encoded ; is data"),
            ("/other?x=1;rd=%2F%2Fevil", Ok(()), "; on an unguarded path"),
        ];
        for (pq, want, why) in rows {
            assert_eq!(check_return_to(&c, pq, &ext), *want, "{why}: {pq}");
        }
        let every = ReturnToConfig {
            paths: vec![],
            ..c.clone()
        };
        assert_eq!(
            check_return_to(&every, "/anything?x=1;next=%2F%2Fevil", &ext),
            Err(Semicolon),
            "no paths: every path is guarded"
        );
    }
}
