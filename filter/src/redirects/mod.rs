//! Redirect checks: where the app sends browsers.
//!
//! - [`check_authorization_redirect`]: when the app redirects to the IdP, its
//!   `redirect_uri` must be a registered one byte for byte (RFC 9700
//!   §4.1.3, OAuth 2.1 §2.3.1: IdPs compare strings). `fix` mode repairs
//!   the spelling (scheme and host case, default port, RFC 3986 §6.2.2) and
//!   the one mistake a load balancer causes (an internal scheme, host or
//!   port) by sending the registered URI's exact bytes, the one on the
//!   request's external origin, leaving every other parameter byte for
//!   byte; it cannot repair the app's token request ([`FIX_CAVEAT`]).
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
use crate::http::uri::{route_matches_patterns, AbsoluteUri, OwnedUri, RoutePattern};
use crate::metrics::{Counter, CounterSet};
use crate::outcome::Mode;
pub use crate::outcome::ReturnToProblem;

/// What the redirect_uri check does with a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedirectUriMode {
    /// Replace the redirect with a 502 that says what the app sent.
    #[default]
    Enforce,
    /// Send the registered URI's bytes instead of a redirect_uri that
    /// differs from it only in spelling (case, default port) or only in its
    /// origin (the load-balancer mistake), choosing the registered URI on
    /// the request's external origin; refuse anything else like `enforce`.
    /// It repairs the authorization request only: the app's token request
    /// (RFC 6749 §4.1.3) still carries what the app built (see
    /// [`FIX_CAVEAT`]).
    Fix,
    /// Count and log only.
    Report,
}

impl RedirectUriMode {
    /// The names a configuration gives the modes (`"redirect_uri_mode": "fix"`).
    pub(crate) const NAMES: &'static [(&'static str, RedirectUriMode)] = &[
        ("enforce", RedirectUriMode::Enforce),
        ("fix", RedirectUriMode::Fix),
        ("report", RedirectUriMode::Report),
    ];
}

/// What `fix` cannot repair, said in the load-time warning and in every log
/// line of a rewrite, so an operator reads it where the symptom appears.
pub const FIX_CAVEAT: &str = "fix rewrites the authorization request only: the app's token request \
     (RFC 6749 §4.1.3) goes to the IdP directly and must carry the same redirect_uri, so an app that \
     remembers the one it built (Python Authlib, Spring Security) fails the code exchange with \
     invalid_grant; only apps that rebuild it from the callback's URL (openid-client's default) complete \
     the login. The cure is the forwarded view: trust your load balancer in forwarded.trusted_cidrs (or set \
     forwarded.external_origin) so the app builds the registered redirect_uri itself, then use \
     redirect_uri_mode \"enforce\"";

/// Validated `redirects` settings.
#[derive(Debug, Clone)]
pub struct RedirectsConfig {
    /// IdP authorization endpoints whose redirects are checked, parsed once
    /// at load (no query or fragment).
    pub authorization_endpoints: Vec<OwnedUri>,
    /// Registered redirect URIs, parsed once at load (no fragment), each
    /// keeping the exact bytes registered at the IdP: what `fix` sends.
    pub redirect_uris: Vec<OwnedUri>,
    /// What a mismatch does.
    pub redirect_uri_mode: RedirectUriMode,
    /// Origins whose `Location`s are moved to the external origin.
    pub internal_origins: Vec<Origin>,
    /// Also move `Location`s on the answering node's own `ip:port`.
    pub rewrite_upstream_origin: bool,
    /// Return-to parameter guard, if configured.
    pub return_to: Option<ReturnToConfig>,
}

impl RedirectsConfig {
    /// The registered redirect URIs as configured, for log lines.
    pub fn registered(&self) -> Vec<&str> {
        self.redirect_uris.iter().map(OwnedUri::as_str).collect()
    }
}

/// Validated `redirects.return_to` settings.
#[derive(Debug, Clone)]
pub struct ReturnToConfig {
    /// Parameter names checked.
    pub params: Vec<String>,
    /// Paths on which they are checked, in any spelling that
    /// [`crate::http::uri::route_matches`] relates; empty means every path.
    pub paths: Vec<RoutePattern>,
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
    /// The redirect_uri is registered, byte for byte.
    Registered,
    /// `fix` mode: send `location` instead, whose redirect_uri is the
    /// registered URI `registered` where the app sent `sent`.
    Fixed {
        /// The `Location` to send.
        location: String,
        /// The redirect_uri the app sent (decoded).
        sent: String,
        /// The registered URI sent instead, exactly as configured.
        registered: String,
    },
    /// Not registered: what was sent and why it fails.
    Mismatch {
        /// The redirect_uri as the app sent it (decoded), or a description.
        sent: String,
        /// Why it does not match, for the operator's log.
        why: String,
    },
}

/// Checks an upstream redirect's `Location` against the registered redirect
/// URIs. `external` is the origin the browser addressed (the forwarded
/// decision's; `None` without the `forwarded` section): `fix` substitutes
/// the registered URI on it.
///
/// Registered means byte for byte (after the parameter's form-decoding, as
/// the IdP decodes it): RFC 9700 §4.1.3 and OAuth 2.1 §2.3.1 require exact
/// string matching, so an IdP refuses `HTTPS://App.example.com:443/cb`
/// when `https://app.example.com/cb` is registered. Such a spelling is a
/// mismatch (enforce names the registered spelling in the log); `fix`
/// sends the registered bytes.
pub fn check_authorization_redirect(
    cfg: &RedirectsConfig,
    location: &str,
    external: Option<&Origin>,
) -> (RedirectUriVerdict, CounterSet) {
    let mut counters = CounterSet::default();
    let Some(loc) = AbsoluteUri::parse(location) else {
        return (RedirectUriVerdict::NotAuthorization, counters);
    };
    if !cfg
        .authorization_endpoints
        .iter()
        .any(|e| e.same_endpoint(&loc))
    {
        return (RedirectUriVerdict::NotAuthorization, counters);
    }
    let query = loc.query.unwrap_or("");
    // Two values are enough to know it repeats (and to log the first two).
    let values: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .take(2)
        .collect();
    let mismatch = |sent: String, why: String, mut counters: CounterSet| {
        counters.add(Counter::RedirectUriMismatch);
        (RedirectUriVerdict::Mismatch { sent, why }, counters)
    };
    let sent = match values.as_slice() {
        [one] => one.clone(),
        [] => {
            return mismatch(
                String::new(),
                "the authorization request has no redirect_uri".into(),
                counters,
            )
        }
        _ => {
            return mismatch(
                values.join(" | "),
                "redirect_uri appears more than once".into(),
                counters,
            )
        }
    };
    if cfg.redirect_uris.iter().any(|r| r.as_str() == sent) {
        counters.add(Counter::RedirectUriRegistered);
        return (RedirectUriVerdict::Registered, counters);
    }
    let Some(uri) = AbsoluteUri::parse(&sent) else {
        return mismatch(
            sent,
            "redirect_uri is not a plain absolute http(s) URI (userinfo, backslash, whitespace or control characters)".into(),
            counters,
        );
    };
    if uri.fragment.is_some() {
        return mismatch(
            sent,
            "redirect_uri has a fragment (RFC 6749 §3.1.2)".into(),
            counters,
        );
    }
    let respelled = cfg.redirect_uris.iter().find(|r| r.equivalent(&uri));
    let chosen = match (cfg.redirect_uri_mode, respelled) {
        (RedirectUriMode::Fix, Some(r)) => Ok(r),
        (RedirectUriMode::Fix, None) => fix_candidate(cfg, &uri, external),
        (_, Some(r)) => Err(format!(
            "redirect_uri equals the registered {} only after case-folding or dropping a default port; \
             the IdP compares bytes (RFC 9700 §4.1.3, OAuth 2.1 §2.3.1) and would refuse it: make the app \
             send the registered spelling",
            crate::text::quoted(r.as_str()),
        )),
        (_, None) => Err("redirect_uri is not registered".into()),
    };
    match chosen {
        Ok(r) => {
            counters.add(Counter::RedirectUriFixed);
            let location = replace_param(location, "redirect_uri", r.as_str());
            (
                RedirectUriVerdict::Fixed {
                    location,
                    sent,
                    registered: r.as_str().to_string(),
                },
                counters,
            )
        }
        Err(why) => mismatch(sent, why, counters),
    }
}

/// `fix`: the registered URI to send instead of `uri`, which no registered
/// URI equals. Only one with the same path and query qualifies (only the
/// origin may be the load balancer's mistake), and of those the one on the
/// external origin: sending the browser back to another public host than
/// the one it is on would lose its cookies there, and on a deployment with
/// several hosts the first match is a guess. Without a known external
/// origin, only an unambiguous candidate (one origin) is used.
fn fix_candidate<'c>(
    cfg: &'c RedirectsConfig,
    uri: &AbsoluteUri<'_>,
    external: Option<&Origin>,
) -> Result<&'c OwnedUri, String> {
    let mut candidates = cfg
        .redirect_uris
        .iter()
        .filter(|r| r.path() == uri.path && r.query() == uri.query)
        .peekable();
    let Some(first) = candidates.peek().copied() else {
        return Err(
            "redirect_uri is not registered, and fix only repairs the scheme, host or port: \
                    no registered redirect_uri has this path and query"
                .into(),
        );
    };
    match external {
        Some(ext) => candidates.find(|r| r.on_origin(ext)).ok_or_else(|| {
            format!(
                "redirect_uri is not registered, and fix found no registered redirect_uri with this path \
                 and query on the request's external origin {}: it does not send the browser to another host",
                ext.serialize()
            )
        }),
        None => {
            let all: Vec<String> = candidates.map(OwnedUri::origin).collect();
            // Sorted as `&str`, the one element type the module sorts
            // elsewhere too (idp's repeat check): one sort in the module.
            let mut origins: Vec<&str> = all.iter().map(String::as_str).collect();
            origins.sort_unstable();
            origins.dedup();
            if origins.len() == 1 {
                Ok(first)
            } else {
                Err(format!(
                    "redirect_uri is not registered, and fix cannot choose: registered redirect_uris on \
                     {} have this path and query, and the request's external origin is unknown \
                     (configure the forwarded section)",
                    origins.join(", ")
                ))
            }
        }
    }
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
    if !cfg.paths.is_empty() && !route_matches_patterns(path, &cfg.paths) {
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
        check_target(&v, external, &cfg.allowed_hosts)?;
    }
    Ok(())
}

/// A same-origin path, or an absolute http(s) URL on the external origin
/// (same scheme, host and port: no downgrade to `http`, no other port on
/// the same host) or on an allowed host (same scheme as the external
/// origin, on that scheme's default port or the external port). Everything
/// a browser could resolve to another site is refused, including forms
/// some browsers "fix up". See [`check_target`] for why.
pub fn is_safe_target(v: &str, external: &Origin, allowed: &[HostPattern]) -> bool {
    check_target(v, external, allowed).is_ok()
}

/// [`is_safe_target`], saying why a target is refused: `Malformed` for a
/// spelling parsers disagree on, `OffSite` for a clear target elsewhere.
pub fn check_target(
    v: &str,
    external: &Origin,
    allowed: &[HostPattern],
) -> Result<(), ReturnToProblem> {
    use ReturnToProblem::{Malformed, OffSite};
    // Whitespace and control characters: browsers strip tabs and newlines
    // inside URLs ("/\t/evil" becomes "//evil"); backslashes read as slashes.
    if v.is_empty() || v.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') || !v.is_ascii() {
        return Err(Malformed);
    }
    // Encoded slashes, backslashes and dots: apps and proxies that decode
    // once more turn "/%2F/evil" into "//evil".
    let lower = v.to_ascii_lowercase();
    if ["%2f", "%5c", "%2e", "%09", "%0a", "%0d", "%00"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return Err(Malformed);
    }
    let dot_segment = |path: &str| path.split('/').any(|seg| seg == "." || seg == "..");
    if let Some(rest) = v.strip_prefix('/') {
        if rest.starts_with('/') {
            return Err(OffSite); // scheme-relative: another host
        }
        let path = v.split(['?', '#']).next().unwrap_or(v);
        return if dot_segment(path) {
            Err(Malformed)
        } else {
            Ok(())
        };
    }
    // Absolute: only a plain http(s) URL on the external origin or an
    // allowed host, never a downgrade. Anything else that is not a path
    // (`https:evil`, `javascript:`, a bare host) leads elsewhere.
    let u = AbsoluteUri::parse(v).ok_or(OffSite)?;
    let h = u.authority.host.as_str();
    let port = u.port();
    let same_origin = h == external.authority.host && port == external.port();
    let allowed_host = allowed.iter().any(|p| p.matches(h))
        && (port == external.port() || port == u.proto.default_port());
    if u.proto != external.proto || !(same_origin || allowed_host) {
        return Err(OffSite);
    }
    if dot_segment(u.path) {
        return Err(Malformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(mode: RedirectUriMode) -> RedirectsConfig {
        RedirectsConfig {
            authorization_endpoints: vec![uri("https://idp.example.com/authorize")],
            redirect_uris: vec![
                uri("https://app.example.com/callback"),
                uri("https://app.example.com/cb?tenant=a"),
            ],
            redirect_uri_mode: mode,
            internal_origins: vec![Origin::parse("http://app.internal:8080").unwrap()],
            rewrite_upstream_origin: true,
            return_to: None,
        }
    }

    fn uri(s: &str) -> OwnedUri {
        OwnedUri::parse(s).unwrap()
    }

    fn check(mode: RedirectUriMode, redirect_uri_param: &str) -> RedirectUriVerdict {
        let loc = format!(
            "https://idp.example.com/authorize?client_id=app&{redirect_uri_param}&state=s%2F1"
        );
        check_authorization_redirect(&cfg(mode), &loc, None).0
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
                false,
                "RFC 9700 §4.1.3, OAuth 2.1 §2.3.1: the IdP compares bytes, not RFC 3986 §6.2.2.1 case",
            ),
            (
                "https://app.example.com:443/callback",
                false,
                "RFC 9700 §4.1.3: bytes, not RFC 3986 §6.2.3's default port",
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
            None,
        )
        .0;
        assert!(matches!(none, RedirectUriVerdict::Mismatch { .. }));
        let other = check_authorization_redirect(
            &cfg(RedirectUriMode::Enforce),
            "https://other.example/authorize?redirect_uri=x",
            None,
        )
        .0;
        assert_eq!(other, RedirectUriVerdict::NotAuthorization);
    }

    #[test]
    fn fix_mode_sends_the_registered_bytes_and_leaves_the_rest() {
        let loc = "https://idp.example.com/authorize?client_id=app&redirect_uri=http%3A%2F%2Fapp.internal%3A8080%2Fcallback&state=a%2Fb&scope=openid%20email#frag";
        let (v, counters) = check_authorization_redirect(&cfg(RedirectUriMode::Fix), loc, None);
        assert_eq!(
            v,
            RedirectUriVerdict::Fixed {
                location: "https://idp.example.com/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&state=a%2Fb&scope=openid%20email#frag".into(),
                sent: "http://app.internal:8080/callback".into(),
                registered: "https://app.example.com/callback".into(),
            }
        );
        assert!(counters.contains(Counter::RedirectUriFixed));
        // Only scheme/host/port may differ: another path is not "fixed".
        let v = check(RedirectUriMode::Fix, &enc("http://app.internal:8080/other"));
        assert!(matches!(v, RedirectUriVerdict::Mismatch { .. }));
    }

    /// Issue point 1: a redirect_uri equal to a registered one only after
    /// RFC 3986 §6.2.2 normalization is refused by an IdP comparing bytes
    /// (RFC 9700 §4.1.3, OAuth 2.1 §2.3.1). enforce and report call it a
    /// mismatch naming the registered spelling; fix sends the registered
    /// bytes. (sent, mode, expected: Some(registered bytes sent) for a fix,
    /// None for a mismatch, case)
    #[test]
    fn a_respelled_redirect_uri_is_not_registered() {
        use RedirectUriMode::*;
        let mut c = cfg(Enforce);
        c.redirect_uris
            .push(uri("https://Other.Example.com:8443/cb?x=%2f"));
        let rows: &[(&str, RedirectUriMode, Option<&str>, &str)] = &[
            (
                "HTTPS://APP.EXAMPLE.COM/callback",
                Enforce,
                None,
                "scheme and host case",
            ),
            (
                "https://app.example.com:443/callback",
                Enforce,
                None,
                "explicit default port",
            ),
            (
                "https://APP.example.com:443/callback",
                Report,
                None,
                "report: a mismatch too",
            ),
            (
                "HTTPS://app.example.com/callback",
                Fix,
                Some("https://app.example.com/callback"),
                "fix: registered bytes",
            ),
            (
                "https://app.example.com:443/callback",
                Fix,
                Some("https://app.example.com/callback"),
                "fix: default port dropped",
            ),
            (
                "https://other.example.com:8443/cb?x=%2f",
                Enforce,
                None,
                "the registered spelling has capitals",
            ),
            (
                "https://other.example.com:8443/cb?x=%2f",
                Fix,
                Some("https://Other.Example.com:8443/cb?x=%2f"),
                "fix sends the registered capitals",
            ),
            (
                "https://Other.Example.com:8443/cb?x=%2F",
                Fix,
                None,
                "query bytes differ: not a respelling",
            ),
        ];
        for (sent, mode, want, why) in rows {
            c.redirect_uri_mode = *mode;
            let loc = format!(
                "https://idp.example.com/authorize?client_id=app&{}&state=s",
                enc(sent)
            );
            let (v, counters) = check_authorization_redirect(&c, &loc, None);
            match (want, &v) {
                (
                    Some(reg),
                    RedirectUriVerdict::Fixed {
                        location,
                        registered,
                        ..
                    },
                ) => {
                    assert_eq!(registered, reg, "{why}");
                    assert!(location.contains(&enc(reg)), "{why}: {location}");
                    assert!(counters.contains(Counter::RedirectUriFixed), "{why}");
                }
                (None, RedirectUriVerdict::Mismatch { why: w, .. }) => {
                    assert!(counters.contains(Counter::RedirectUriMismatch), "{why}");
                    if !why.contains("not a respelling") {
                        assert!(w.contains("compares bytes"), "{why}: {w}");
                    }
                }
                _ => panic!("{why}: {sent} in {mode:?} -> {v:?}"),
            }
        }
    }

    /// Issue point 3: with several public hosts, fix sends the registered
    /// URI on the request's external origin, and refuses when it cannot
    /// tell. (external origin, sent, expected registered bytes or None for
    /// a mismatch whose reason contains the last column, case)
    #[test]
    fn fix_prefers_the_external_origin_and_refuses_to_guess() {
        let mut c = cfg(RedirectUriMode::Fix);
        c.redirect_uris = vec![
            uri("https://a.example.com/callback"),
            uri("https://b.example.com/callback"),
            uri("https://b.example.com:8443/callback"),
            uri("https://solo.example.com/only"),
        ];
        let internal = "http://app.internal:8080/callback";
        let rows: &[(Option<&str>, &str, Option<&str>, &str, &str)] = &[
            (
                Some("https://b.example.com"),
                internal,
                Some("https://b.example.com/callback"),
                "",
                "the second host: not the first match",
            ),
            (
                Some("https://a.example.com"),
                internal,
                Some("https://a.example.com/callback"),
                "",
                "the first host",
            ),
            (
                Some("https://b.example.com:8443"),
                internal,
                Some("https://b.example.com:8443/callback"),
                "",
                "the external port counts",
            ),
            (
                Some("https://B.example.com:443"),
                internal,
                Some("https://b.example.com/callback"),
                "",
                "origin compared normalized",
            ),
            (
                Some("https://c.example.com"),
                internal,
                None,
                "external origin https://c.example.com",
                "no candidate on this host: never another host",
            ),
            (
                Some("http://b.example.com"),
                internal,
                None,
                "external origin http://b.example.com",
                "no candidate on the external scheme",
            ),
            (
                None,
                internal,
                None,
                "cannot choose",
                "external origin unknown, several origins",
            ),
            (
                None,
                "http://app.internal:8080/only",
                Some("https://solo.example.com/only"),
                "",
                "external origin unknown, one candidate",
            ),
            (
                Some("https://a.example.com"),
                "http://app.internal:8080/only",
                None,
                "external origin https://a.example.com",
                "the only candidate is on another host",
            ),
            (
                Some("https://a.example.com"),
                "http://app.internal:8080/other",
                None,
                "no registered redirect_uri has this path",
                "no candidate at all",
            ),
        ];
        for (ext, sent, want, reason, why) in rows {
            let ext = ext.map(|e| Origin::parse(e).unwrap());
            let loc = format!("https://idp.example.com/authorize?{}", enc(sent));
            let (v, _) = check_authorization_redirect(&c, &loc, ext.as_ref());
            match (want, &v) {
                (Some(reg), RedirectUriVerdict::Fixed { registered, .. }) => {
                    assert_eq!(registered, reg, "{why}")
                }
                (None, RedirectUriVerdict::Mismatch { why: w, .. }) => {
                    assert!(w.contains(reason), "{why}: {w}")
                }
                _ => panic!("{why}: {v:?}"),
            }
        }
    }

    /// Issue point 4: the configuration is parsed once; the check uses the
    /// parsed parts and sends the configured bytes of the very entry that
    /// matched (the old per-request `filter_map` + `zip` could pair a
    /// parsed URI with another entry's bytes).
    #[test]
    fn registered_uris_are_parsed_once_and_keep_their_bytes() {
        let json = br#"{"redirects": {"authorization_endpoints": ["HTTPS://IdP.example.com:443/authorize"],
            "redirect_uris": ["https://App.example.com/a", "https://app.example.com/b%2f"], "redirect_uri_mode": "fix"}}"#;
        let c = crate::config::Config::parse(json)
            .unwrap()
            .redirects
            .unwrap();
        assert_eq!(
            c.registered(),
            ["https://App.example.com/a", "https://app.example.com/b%2f"]
        );
        assert_eq!(c.redirect_uris[1].path(), "/b%2f");
        assert_eq!(
            c.authorization_endpoints[0].authority().host,
            "idp.example.com"
        );
        let loc = format!(
            "https://idp.example.com/authorize?{}",
            enc("http://x.internal/b%2f")
        );
        let (v, _) = check_authorization_redirect(&c, &loc, None);
        assert!(
            matches!(&v, RedirectUriVerdict::Fixed { registered, .. } if registered == "https://app.example.com/b%2f"),
            "{v:?}"
        );
    }

    /// Issue point 2: a fix configuration loads with a warning that says
    /// what fix cannot repair and what cures it.
    #[test]
    fn fix_mode_warns_at_load() {
        let base = r#""redirects": {"authorization_endpoints": ["https://idp.example.com/authorize"],
            "redirect_uris": ["https://app.example.com/cb"], "redirect_uri_mode": "#;
        let c = crate::config::Config::parse(format!(r#"{{{base}"fix"}}}}"#).as_bytes()).unwrap();
        let w = c.warnings().join("\n");
        for needle in [
            "invalid_grant",
            "RFC 6749 §4.1.3",
            "forwarded.trusted_cidrs",
            "external_origin",
            "rebuild",
            "without the forwarded section",
        ] {
            assert!(w.contains(needle), "{needle}: {w}");
        }
        let c =
            crate::config::Config::parse(format!(r#"{{{base}"enforce"}}}}"#).as_bytes()).unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
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

    /// Issue point 5: a refusal says which way the target is wrong, so the
    /// answer is not "another site" for a repeat or a spelling.
    /// (value, problem, case and source)
    #[test]
    fn return_to_refusals_say_why() {
        use ReturnToProblem::*;
        let ext = Origin::parse("https://app.example.com").unwrap();
        let rows: &[(&str, ReturnToProblem, &str)] = &[
            ("//evil.example", OffSite, "scheme-relative (RFC 3986 §4.2)"),
            ("https://evil.example/", OffSite, "another host"),
            (
                "http://app.example.com/x",
                OffSite,
                "downgrade (RFC 6454 §4)",
            ),
            (
                "https://app.example.com:8443/x",
                OffSite,
                "another port (RFC 6454 §4)",
            ),
            (
                "https:evil.example",
                OffSite,
                "WHATWG: slashless special scheme",
            ),
            ("javascript:alert(1)", OffSite, "script scheme"),
            ("evil.example", OffSite, "bare host"),
            ("https://app.example.com@evil.example/", OffSite, "userinfo"),
            (
                "/\\evil.example",
                Malformed,
                "backslash (WHATWG reads it as /)",
            ),
            (
                "/\t/evil.example",
                Malformed,
                "GHSA-j7px-6hwj-hpjg: tab between slashes",
            ),
            ("/%2F/evil.example", Malformed, "encoded slash"),
            ("/a/../b", Malformed, "dot segment"),
            (
                "https://app.example.com/a/../b",
                Malformed,
                "dot segment, absolute",
            ),
            ("/caf\u{e9}", Malformed, "non-ASCII"),
            ("", Malformed, "empty"),
        ];
        for (v, want, why) in rows {
            assert_eq!(check_target(v, &ext, &[]), Err(*want), "{why}: {v:?}");
        }
        // Each problem its own code and message; one counter and status.
        let codes: std::collections::BTreeSet<_> =
            ReturnToProblem::ALL.iter().map(|p| p.code()).collect();
        assert_eq!(codes.len(), ReturnToProblem::ALL.len());
        for p in ReturnToProblem::ALL {
            let r = crate::outcome::Reason::ReturnTo(p);
            assert_eq!(
                r.counter(),
                Counter::ReturnToRejected,
                "dashboards keep counting"
            );
            assert_eq!(r.status(), 400);
            assert!(r.code().starts_with("return_to_") && r.body().contains(p.code()));
            let another_site = r.message().contains("another site");
            assert_eq!(another_site, p == OffSite, "{p:?}: {}", r.message());
        }
    }

    /// (path and query, verdict, case and source)
    #[test]
    fn return_to_params_and_paths() {
        use ReturnToProblem::*;
        let c = ReturnToConfig {
            params: vec!["rd".into(), "next".into()],
            paths: vec![RoutePattern::new("/login")],
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
                "/login?rd=%2F%5Cevil.example",
                Err(Malformed),
                "backslash: a spelling, not a clear other site",
            ),
            ("/login?next=%2Fa%2F..%2Fb", Err(Malformed), "dot segment"),
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
