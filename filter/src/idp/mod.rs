//! IdP mode: when Envoy fronts the identity provider itself, authorization
//! requests are checked before the IdP sees them: `redirect_uri` must
//! exactly match the allowlist for the request's `client_id`, and no
//! parameter may repeat. A failure is answered `400 invalid_request` without
//! redirecting anywhere (RFC 6749 §4.1.2.1: an invalid redirect URI must not
//! be redirected to).
//!
//! Both request forms OpenID Connect Core §3.1.2.1 requires IdPs to accept
//! are checked: GET with the parameters in the query, and POST with them in
//! a form body. A POST's query and body are checked as one parameter list,
//! so a parameter cannot hide in one while the IdP reads the other.
//!
//! The endpoint is recognised however its path is spelled
//! ([`crate::http::uri::route_matches`]: case, trailing or doubled slashes,
//! `;params`, percent-encoding, dot segments), since the IdP's router may
//! accept those spellings too. Request objects (`request`, `request_uri`)
//! are refused: the redirect_uri inside them cannot be checked here.
//!
//! The work is bounded and at most O(n log n) in the request's size: at
//! most [`MAX_PARAMS`] parameters are decoded, and repeats are found by
//! sorting their names.

pub mod config;

use crate::http::uri::{route_matches_patterns, AbsoluteUri, OwnedUri, RoutePattern};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// Validated `idp` settings.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// Paths of the IdP's authorization endpoint (exact).
    pub authorization_paths: Vec<RoutePattern>,
    /// Registered redirect URIs per client id, parsed once at load.
    pub clients: BTreeMap<String, Vec<OwnedUri>>,
    /// Enforce (400) or report.
    pub mode: crate::outcome::Mode,
}

/// The largest POST authorization request body read (bigger is refused).
pub const MAX_POST_BODY: usize = 65536;

/// Why a POST authorization request bigger than [`MAX_POST_BODY`] is refused.
pub const TOO_LARGE: &str = "the authorization request is larger than 64 KiB";

/// The most parameters an authorization request may carry (query and body
/// together); more is refused with [`TOO_MANY_PARAMS`].
///
/// OAuth 2.0, OpenID Connect and their extensions define about 40
/// authorization request parameters in all (IANA "OAuth Parameters"
/// registry), and a real request carries 5 to 20 of them (code flow with
/// PKCE, nonce, prompt, login_hint, acr_values, claims, ui_locales…). 256
/// leaves room for every registered parameter and vendor extensions several
/// times over, while a 64 KiB form of short distinct names (about 17,000 of
/// them) is refused after decoding 257 names instead of being checked whole.
pub const MAX_PARAMS: usize = 256;

/// Why a request with more than [`MAX_PARAMS`] parameters is refused.
pub const TOO_MANY_PARAMS: &str = "the authorization request has more than 256 parameters";

/// Why a request carrying a request object is refused.
pub const REQUEST_OBJECT: &str = "request and request_uri (request objects, RFC 9101; pushed authorization requests, RFC 9126) are not accepted here: the redirect_uri inside them cannot be checked";

/// Whether `path_and_query` addresses an authorization endpoint, in any
/// spelling a lenient router may map to it ([`crate::http::uri::route_matches`]):
/// `/authorize/`, `/Authorize`, `/%61uthorize`, `//authorize`,
/// `/authorize;x` all count, so none of them skips the check.
pub fn is_authorization_path(cfg: &IdpConfig, path_and_query: &str) -> bool {
    let path = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(p, _)| p);
    route_matches_patterns(path, &cfg.authorization_paths)
}

/// Checks a GET authorization request (`path?query`); `None` if the path is
/// not an authorization endpoint. `Err` says why, in words fit for the
/// `error_description` of an `invalid_request`.
pub fn check_authorization_request(
    cfg: &IdpConfig,
    path_and_query: &str,
) -> Option<Result<(), &'static str>> {
    if !is_authorization_path(cfg, path_and_query) {
        return None;
    }
    Some(params_of([query_of(path_and_query)]).and_then(|p| check_params(cfg, &p)))
}

/// Checks a POST authorization request: the query and the form body
/// together. `None` if the path is not an authorization endpoint.
pub fn check_authorization_post(
    cfg: &IdpConfig,
    path_and_query: &str,
    content_type: &str,
    body: &[u8],
) -> Option<Result<(), &'static str>> {
    if !is_authorization_path(cfg, path_and_query) {
        return None;
    }
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Some(Err(
            "a POST authorization request must be a form (application/x-www-form-urlencoded)",
        ));
    }
    if body.len() > MAX_POST_BODY {
        return Some(Err(TOO_LARGE));
    }
    Some(params_of([query_of(path_and_query), body]).and_then(|p| check_params(cfg, &p)))
}

fn query_of(path_and_query: &str) -> &[u8] {
    path_and_query
        .split_once('?')
        .map_or(&[][..], |(_, q)| q.as_bytes())
}

/// A decoded parameter (borrowed when nothing needed decoding).
type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// The parameters of several forms as one list, decoding no more than
/// [`MAX_PARAMS`] + 1 of them: a longer list is refused, not read.
fn params_of<'a, const N: usize>(forms: [&'a [u8]; N]) -> Result<Vec<Param<'a>>, &'static str> {
    let mut out = Vec::new();
    for form in forms {
        for p in form_urlencoded::parse(form) {
            if out.len() == MAX_PARAMS {
                return Err(TOO_MANY_PARAMS);
            }
            out.push(p);
        }
    }
    Ok(out)
}

/// Whether any name appears twice: sorted, then neighbours compared, so
/// O(n log n) where comparing every pair was O(n²) (hundreds of
/// milliseconds of an Envoy worker for one 64 KiB form).
fn has_repeat(params: &[Param<'_>]) -> bool {
    let mut names: Vec<&str> = params.iter().map(|(k, _)| k.as_ref()).collect();
    names.sort_unstable();
    names.windows(2).any(|w| matches!(w, [a, b] if a == b))
}

/// The checks on an authorization request's parameters.
fn check_params(cfg: &IdpConfig, params: &[Param<'_>]) -> Result<(), &'static str> {
    if has_repeat(params) {
        return Err("a parameter appears more than once (RFC 6749 section 3.1)");
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    };
    // A request object (by value or by reference, pushed or not) carries
    // its own redirect_uri, which the IdP may prefer to the query's
    // (RFC 9101 §6.3, RFC 9126 §4): unchecked here, so refused.
    if get("request").is_some() || get("request_uri").is_some() {
        return Err(REQUEST_OBJECT);
    }
    let Some(client) = get("client_id") else {
        return Err("client_id is missing");
    };
    let Some(registered) = cfg.clients.get(client) else {
        return Err("client_id is not known here");
    };
    let Some(sent) = get("redirect_uri") else {
        return Ok(()); // the IdP falls back to the client's registered URI
    };
    let Some(sent) = AbsoluteUri::parse(sent).filter(|u| u.fragment.is_none()) else {
        return Err("redirect_uri is not a plain absolute URI");
    };
    let ok = registered.iter().any(|r| r.equivalent(&sent));
    if ok {
        Ok(())
    } else {
        Err("redirect_uri is not registered for this client")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> IdpConfig {
        let mut clients = BTreeMap::new();
        clients.insert(
            "app".to_string(),
            vec![OwnedUri::parse("https://app.example.com/callback").unwrap()],
        );
        IdpConfig {
            authorization_paths: vec![RoutePattern::new("/authorize")],
            clients,
            mode: crate::outcome::Mode::Enforce,
        }
    }

    #[test]
    fn authorization_requests() {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let rows: Vec<(String, Option<bool>, &str)> = vec![
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback")
                ),
                Some(true),
                "registered",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://APP.example.com:443/callback")
                ),
                Some(true),
                "safe normalization",
            ),
            (
                "/authorize?client_id=app&response_type=code".into(),
                Some(true),
                "no redirect_uri: the IdP uses the registered one",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://evil.example/callback")
                ),
                Some(false),
                "other host",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback/../x")
                ),
                Some(false),
                "dot segments are not removed",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback#x")
                ),
                Some(false),
                "fragment",
            ),
            (
                format!(
                    "/authorize?client_id=app&client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback")
                ),
                Some(false),
                "duplicate client_id",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={0}&redirect_uri={0}",
                    enc("https://app.example.com/callback")
                ),
                Some(false),
                "duplicate redirect_uri",
            ),
            (
                "/authorize?client_id=other&redirect_uri=x".into(),
                Some(false),
                "unknown client",
            ),
            (
                "/authorize?redirect_uri=x".into(),
                Some(false),
                "no client_id",
            ),
            (
                "/token?client_id=app".into(),
                None,
                "not the authorization path",
            ),
            (
                "/authorize2?client_id=other".into(),
                None,
                "a longer path is another endpoint",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}&request=eyJhbGciOiJub25lIn0.e30.",
                    enc("https://app.example.com/callback")
                ),
                Some(false),
                "RFC 9101 §5: request object by value",
            ),
            (
                "/authorize?client_id=app&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax"
                    .into(),
                Some(false),
                "RFC 9126 §4: pushed request by reference",
            ),
            (
                "/authorize?client_id=app&request_uri=https%3A%2F%2Fevil.example%2Freq.jwt".into(),
                Some(false),
                "RFC 9101 §5.2: request object by reference",
            ),
            (
                "/authorize?client_id=app&request=".into(),
                Some(false),
                "an empty request object is still one",
            ),
        ];
        // Spellings of the endpoint a lenient IdP router may still serve:
        // each must be checked like the real one.
        let evil = format!(
            "client_id=app&redirect_uri={}",
            enc("https://evil.example/callback")
        );
        let mut rows = rows;
        for (path, why) in [
            ("/authorize/", "trailing slash"),
            ("/Authorize", "letter case"),
            ("/AUTHORIZE", "upper case"),
            ("/%61uthorize", "percent-encoded letter (RFC 3986 §2.3)"),
            ("/%2561uthorize", "double-encoded letter"),
            ("//authorize", "doubled slash"),
            ("/x/../authorize", "dot segment"),
            ("/authorize;jsessionid=1", "path parameter (Tomcat, Jetty)"),
            ("/authorize%3Bx", "encoded path parameter"),
            ("\\authorize", "backslash"),
        ] {
            rows.push((format!("{path}?{evil}"), Some(false), why));
        }
        for (pq, want, why) in rows.clone() {
            // The same parameters as a POST form: the same verdict.
            let (path, query) = pq.split_once('?').unwrap_or((&pq, ""));
            let form = "application/x-www-form-urlencoded; charset=UTF-8";
            assert_eq!(
                check_authorization_post(&cfg(), path, form, query.as_bytes()).map(|r| r.is_ok()),
                want,
                "POST {why}: {pq}"
            );
            assert_eq!(
                check_authorization_request(&cfg(), &pq).map(|r| r.is_ok()),
                want,
                "{why}: {pq}"
            );
        }
    }

    #[test]
    fn post_authorization_requests() {
        let form = "application/x-www-form-urlencoded";
        let good = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
        let check = |pq: &str, ct: &str, body: &str| {
            check_authorization_post(&cfg(), pq, ct, body.as_bytes())
                .map(|r| r.map_err(|e| e.to_string()))
        };
        assert_eq!(check("/authorize", form, good), Some(Ok(())));
        assert_eq!(check("/token", form, good), None);
        // A parameter in the query and again in the body is a repeat, so
        // the IdP cannot read an unchecked one.
        let evil = "/authorize?redirect_uri=https%3A%2F%2Fevil.example%2F";
        assert!(
            check(evil, form, good).is_some_and(|r| r.is_err_and(|e| e.contains("more than once")))
        );
        // Parameters split between query and body are checked together.
        assert_eq!(
            check(
                "/authorize?client_id=app",
                form,
                "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback"
            ),
            Some(Ok(()))
        );
        assert!(check(
            "/authorize?client_id=app",
            form,
            "redirect_uri=https%3A%2F%2Fevil.example%2F"
        )
        .is_some_and(|r| r.is_err()));
        // Not a form, or too big: refused.
        assert!(check("/authorize", "application/json", good)
            .is_some_and(|r| r.is_err_and(|e| e.contains("must be a form"))));
        assert!(check("/authorize", "", good).is_some_and(|r| r.is_err()));
        let big = format!("{good}&x={}", "a".repeat(MAX_POST_BODY));
        assert!(
            check("/authorize", form, &big).is_some_and(|r| r.is_err_and(|e| e.contains("64 KiB")))
        );
        assert!(
            check("/authorize", form, "client_id=app&request_uri=urn%3Ax")
                .is_some_and(|r| r.is_err_and(|e| e.contains("request_uri"))),
            "a request object in the body is refused too"
        );
    }

    /// (parameters besides the good ones, verdict, case)
    #[test]
    fn parameter_count_is_capped() {
        let good = "client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback";
        let pad = |n: usize| -> String { (0..n).map(|i| format!("&p{i}=")).collect() };
        let form = "application/x-www-form-urlencoded";
        let rows: Vec<(String, Result<(), &str>, &str)> = vec![
            (pad(MAX_PARAMS - 2), Ok(()), "exactly the cap"),
            (
                pad(MAX_PARAMS - 1),
                Err(TOO_MANY_PARAMS),
                "one over the cap",
            ),
            (
                pad(MAX_PARAMS - 3) + "&p0=x",
                Err("a parameter appears more than once (RFC 6749 section 3.1)"),
                "a repeat far apart is still found",
            ),
        ];
        for (extra, want, why) in rows {
            let body = format!("{good}{extra}");
            assert_eq!(
                check_authorization_post(&cfg(), "/authorize", form, body.as_bytes()),
                Some(want),
                "POST {why}"
            );
            assert_eq!(
                check_authorization_request(&cfg(), &format!("/authorize?{body}")),
                Some(want),
                "GET {why}"
            );
        }
        // Query and body count together: 2 + 128 + 128 names.
        let query: String = (0..128).map(|i| format!("&q{i}=")).collect();
        let body: String = (0..128).map(|i| format!("b{i}=&")).collect();
        assert_eq!(
            check_authorization_post(
                &cfg(),
                &format!("/authorize?{good}{query}"),
                form,
                body.as_bytes()
            ),
            Some(Err(TOO_MANY_PARAMS))
        );
        assert!(TOO_MANY_PARAMS.contains(&MAX_PARAMS.to_string()));
    }

    /// The denial of service this cap and the sort remove: a 64 KiB form of
    /// short distinct names cost ~0.7 s native (O(n²) repeat check, see
    /// benches/README.md); now it is refused after reading 257 names.
    #[test]
    fn a_form_full_of_distinct_names_is_refused_early() {
        let body: String = (0..20_000).map(|i| format!("{i:x}&")).collect();
        let body = &body[..MAX_POST_BODY];
        assert_eq!(
            check_authorization_post(
                &cfg(),
                "/authorize",
                "application/x-www-form-urlencoded",
                body.as_bytes()
            ),
            Some(Err(TOO_MANY_PARAMS))
        );
    }
}
