//! Login-flow affinity: issue a sealed cookie when the app redirects the
//! browser to the IdP, and on the callback check it and pin the request to
//! the node that started the login.
//!
//! Response phase ([`on_response`]): a 3xx whose `Location` is one of the
//! configured authorization endpoints (scheme, host, port and path compared
//! exactly; query order and encoding do not matter) with exactly one `state`
//! parameter starts a flow: a cookie named after the state, carrying the
//! node that answered (`upstream.address`), is set. Stale flow cookies are
//! cleared so the count stays bounded.
//!
//! Request phase ([`on_request`]): on a configured callback path, `state` is
//! read from the query, the flow's cookie is opened (any key of the ring,
//! constant-time MAC, expiry), and the request is pinned to the node inside,
//! through the header Envoy's `stateful_session` filter reads. The cookie is
//! cleared on the response: one use only.

use crate::config::{LoginFlowConfig, Mode};
use crate::cookie::{self, SameSite};
use crate::forwarded::Headers;
use crate::metrics::{Counter, CounterSet};
use crate::state_cookie::{self, CookieError, FlowClaims};
use crate::uri::{single_param, AbsoluteUri};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Why a callback was refused (or, in report mode, would have been).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowProblem {
    /// The callback carries no (or more than one) `state` parameter.
    NoState,
    /// No cookie for this flow.
    Missing,
    /// The flow's cookie arrived more than once.
    Duplicate,
    /// The cookie failed its checks.
    Cookie(CookieError),
}

impl FlowProblem {
    /// Stable code for the response header, the log and the counter.
    pub fn code(self) -> &'static str {
        match self {
            FlowProblem::NoState => "flow_no_state",
            FlowProblem::Missing => "flow_cookie_missing",
            FlowProblem::Duplicate => "flow_cookie_duplicate",
            FlowProblem::Cookie(CookieError::Malformed) => "flow_cookie_malformed",
            FlowProblem::Cookie(CookieError::TooLarge) => "flow_cookie_too_large",
            FlowProblem::Cookie(CookieError::UnknownKey) => "flow_cookie_unknown_key",
            FlowProblem::Cookie(CookieError::BadSignature) => "flow_cookie_bad_signature",
            FlowProblem::Cookie(CookieError::Expired) => "flow_cookie_expired",
        }
    }

    /// What went wrong and its likely cause, for the person at the browser.
    pub fn message(self) -> &'static str {
        match self {
            FlowProblem::NoState => "The login callback has no state parameter.",
            FlowProblem::Missing => {
                "This login was not started in this browser at this address: it may have been started on \
                 another host name, in another browser, or the browser did not send the login cookie back \
                 (SameSite or third-party cookie settings)."
            }
            FlowProblem::Duplicate => "The browser sent the login cookie twice.",
            FlowProblem::Cookie(CookieError::Malformed) | FlowProblem::Cookie(CookieError::TooLarge) => {
                "The login cookie is damaged."
            }
            FlowProblem::Cookie(CookieError::UnknownKey) => {
                "The login was started under a signing key that has since been retired."
            }
            FlowProblem::Cookie(CookieError::BadSignature) => {
                "The login cookie was altered or belongs to another login."
            }
            FlowProblem::Cookie(CookieError::Expired) => "The login took too long and expired.",
        }
    }

    /// The counter it bumps.
    pub fn counter(self) -> Counter {
        match self {
            FlowProblem::NoState => Counter::FlowNoState,
            FlowProblem::Missing => Counter::FlowMissing,
            FlowProblem::Duplicate => Counter::FlowDuplicate,
            FlowProblem::Cookie(CookieError::Malformed) => Counter::FlowMalformed,
            FlowProblem::Cookie(CookieError::TooLarge) => Counter::FlowTooLarge,
            FlowProblem::Cookie(CookieError::UnknownKey) => Counter::FlowUnknownKey,
            FlowProblem::Cookie(CookieError::BadSignature) => Counter::FlowBadSignature,
            FlowProblem::Cookie(CookieError::Expired) => Counter::FlowExpired,
        }
    }
}

/// The request-phase verdict for login-flow affinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackVerdict {
    /// Not a callback: nothing to check.
    NotCallback,
    /// A valid callback: pin to `node` (`ip:port`), clear cookie `clear`.
    Pin {
        /// Upstream node that started the login.
        node: String,
        /// Cookie to clear on the response.
        clear: String,
    },
    /// A callback that fails its checks. In report mode the glue forwards it.
    Refuse {
        /// What failed.
        problem: FlowProblem,
        /// A cookie to clear on the response, if one was present.
        clear: Option<String>,
    },
}

/// The standard base64 of `ip:port` that Envoy's header-based
/// `stateful_session` expects.
pub fn session_header_value(node: &str) -> String {
    STANDARD.encode(node)
}

/// Request phase: is this a callback, and does its cookie check out?
pub fn on_request(
    cfg: &LoginFlowConfig,
    path_and_query: &str,
    headers: &Headers,
    now: u64,
) -> (CallbackVerdict, CounterSet) {
    let mut counters = CounterSet::default();
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if !cfg.callback_paths.iter().any(|p| p == path) {
        return (CallbackVerdict::NotCallback, counters);
    }
    let refuse = |problem: FlowProblem, clear: Option<String>, mut counters: CounterSet| {
        counters.add(problem.counter());
        if cfg.mode == Mode::Report {
            counters.add(Counter::FlowReportOnly);
        }
        (CallbackVerdict::Refuse { problem, clear }, counters)
    };
    let Some(state) = single_param(query, "state") else {
        return refuse(FlowProblem::NoState, None, counters);
    };
    let name = state_cookie::cookie_name(&cfg.cookie_prefix, &state);
    let mut values = cookie::pairs(headers)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let Some(value) = values.next() else {
        return refuse(FlowProblem::Missing, None, counters);
    };
    if values.next().is_some() {
        return refuse(FlowProblem::Duplicate, Some(name), counters);
    }
    match state_cookie::open(&cfg.keys, &name, &state, value, now) {
        Ok(claims) => {
            counters.add(Counter::FlowValid);
            counters.add(Counter::FlowPinned);
            (
                CallbackVerdict::Pin {
                    node: claims.node,
                    clear: name,
                },
                counters,
            )
        }
        Err(e) => refuse(FlowProblem::Cookie(e), Some(name), counters),
    }
}

/// What the request phase remembers for the response phase of a
/// non-callback request: enough to start a flow and keep cookies bounded.
#[derive(Debug, Clone, Default)]
pub struct RequestMemo {
    /// Path and query of the request (where to restart a login).
    pub path_and_query: String,
    /// Our flow cookies the browser sent: name and (unverified) issue time.
    pub flow_cookies: Vec<(String, Option<u64>)>,
}

/// Collects the [`RequestMemo`] from the request headers.
pub fn memo(cfg: &LoginFlowConfig, path_and_query: &str, headers: &Headers) -> RequestMemo {
    RequestMemo {
        path_and_query: path_and_query.to_string(),
        flow_cookies: cookie::pairs(headers)
            .filter(|(n, _)| n.starts_with(cfg.cookie_prefix.as_str()))
            .map(|(n, v)| (n.to_string(), state_cookie::peek_issued_at(v)))
            .collect(),
    }
}

/// Response phase: the `Set-Cookie` values to add when this response starts
/// a login flow. `location` is the response's `Location`; `node` the
/// `upstream.address` that answered.
pub fn on_response(
    cfg: &LoginFlowConfig,
    location: &str,
    node: Option<&str>,
    memo: &RequestMemo,
    now: u64,
) -> (Vec<String>, CounterSet) {
    let mut counters = CounterSet::default();
    let mut out = Vec::new();
    let Some(url) = AbsoluteUri::parse(location) else {
        return (out, counters);
    };
    let is_authorize = cfg
        .authorization_endpoints
        .iter()
        .filter_map(|e| AbsoluteUri::parse(e))
        .any(|e| e.same_endpoint(&url));
    if !is_authorize {
        return (out, counters);
    }
    let Some(state) = url.single_param("state") else {
        counters.add(Counter::FlowNoState);
        return (out, counters);
    };
    let Some(node) = node else {
        counters.add(Counter::FlowNoNode);
        return (out, counters);
    };
    let form_post = url.single_param("response_mode").as_deref() == Some("form_post");
    let same_site = if form_post {
        SameSite::None
    } else {
        SameSite::Lax
    };
    let name = state_cookie::cookie_name(&cfg.cookie_prefix, &state);
    let claims = FlowClaims {
        node: node.to_string(),
        issued_at: now,
        expires_at: now.saturating_add(cfg.max_age),
        restarts: 0,
        return_to: memo.path_and_query.clone(),
    };
    let value = state_cookie::seal(cfg.keys.signing(), &name, &state, &claims);
    // Keep at most `max_flows` flow cookies: clear expired ones, then the oldest.
    let mut others: Vec<&(String, Option<u64>)> = memo
        .flow_cookies
        .iter()
        .filter(|(n, _)| *n != name)
        .collect();
    others.sort_by_key(|(_, iat)| iat.unwrap_or(0));
    let keep = cfg.max_flows.saturating_sub(1);
    let excess = others.len().saturating_sub(keep);
    for (i, (n, iat)) in others.iter().enumerate() {
        let stale = iat.is_none_or(|t| t.saturating_add(cfg.max_age) <= now);
        if stale || i < excess {
            out.push(cookie::clear_cookie(n, cfg.secure));
            counters.add(Counter::FlowEvicted);
        }
    }
    out.push(cookie::set_cookie(
        &name,
        &value,
        cfg.max_age,
        same_site,
        cfg.secure,
    ));
    counters.add(Counter::FlowIssued);
    (out, counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn cfg(extra: &str) -> LoginFlowConfig {
        let json = format!(
            r#"{{"login_flow": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                 "callback_paths": ["/callback"], "keys": [{{"id": "k1", "secret": "{SECRET}"}}]{extra}}}}}"#
        );
        Config::parse(json.as_bytes()).unwrap().login_flow.unwrap()
    }

    fn start(c: &LoginFlowConfig, location: &str, memo: &RequestMemo) -> (Vec<String>, CounterSet) {
        on_response(c, location, Some("10.1.2.3:8080"), memo, 1_000)
    }

    fn memo(path: &str) -> RequestMemo {
        RequestMemo {
            path_and_query: path.into(),
            flow_cookies: vec![],
        }
    }

    #[test]
    fn flow_starts_only_on_redirects_to_the_authorization_endpoint() {
        let c = cfg("");
        let rows: &[(&str, bool, &str)] = &[
            (
                "https://idp.example.com/oauth2/authorize?client_id=app&state=s1",
                true,
                "plain",
            ),
            (
                "https://IDP.example.com:443/oauth2/authorize?state=s%31&client_id=app",
                true,
                "host case, default port, encoded state, order",
            ),
            (
                "https://idp.example.com/oauth2/authorize?client_id=app&state=s1#frag",
                true,
                "fragment ignored",
            ),
            (
                "http://idp.example.com/oauth2/authorize?state=s1",
                false,
                "scheme differs",
            ),
            (
                "https://idp.example.com:8443/oauth2/authorize?state=s1",
                false,
                "port differs",
            ),
            (
                "https://idp.example.com/oauth2/authorize2?state=s1",
                false,
                "path prefix is not a match",
            ),
            (
                "https://idp.example.com.evil.example/oauth2/authorize?state=s1",
                false,
                "host suffix",
            ),
            ("/oauth2/authorize?state=s1", false, "relative Location"),
        ];
        for (loc, issued, why) in rows {
            let (cookies, counters) = start(&c, loc, &memo("/"));
            assert_eq!(counters.contains(Counter::FlowIssued), *issued, "{why}");
            assert_eq!(cookies.len(), usize::from(*issued), "{why}");
        }
        let (_, counters) = start(
            &c,
            "https://idp.example.com/oauth2/authorize?state=a&state=b",
            &memo("/"),
        );
        assert!(counters.contains(Counter::FlowNoState), "duplicate state");
        let (_, counters) = on_response(
            &c,
            "https://idp.example.com/oauth2/authorize?state=a",
            None,
            &memo("/"),
            1,
        );
        assert!(counters.contains(Counter::FlowNoNode));
    }

    #[test]
    fn cookie_attributes() {
        let (cookies, _) = start(
            &cfg(""),
            "https://idp.example.com/oauth2/authorize?state=s1",
            &memo("/"),
        );
        let c = &cookies[0];
        assert!(c.starts_with("__Host-oidc-edge-"), "{c}");
        assert!(
            c.ends_with("; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Lax"),
            "{c}"
        );
        assert!(c.len() < 4096);
        let (cookies, _) = start(
            &cfg(""),
            "https://idp.example.com/oauth2/authorize?state=s1&response_mode=form_post",
            &memo("/"),
        );
        assert!(
            cookies[0].ends_with("SameSite=None"),
            "form_post callbacks are cross-site POSTs: {}",
            cookies[0]
        );
    }

    fn callback(
        c: &LoginFlowConfig,
        path: &str,
        cookie: &str,
        now: u64,
    ) -> (CallbackVerdict, CounterSet) {
        let headers: Vec<(&str, &[u8])> = vec![("cookie", cookie.as_bytes())];
        on_request(c, path, &headers, now)
    }

    fn issued_pair(c: &LoginFlowConfig, state: &str) -> String {
        let (cookies, _) = start(
            c,
            &format!("https://idp.example.com/oauth2/authorize?state={state}"),
            &memo("/account"),
        );
        cookies
            .last()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    #[test]
    fn callback_pins_to_the_issuing_node() {
        let c = cfg("");
        let pair = issued_pair(&c, "s1");
        let (v, counters) = callback(
            &c,
            "/callback?code=x&state=s1",
            &format!("theme=dark; {pair}"),
            1_100,
        );
        let name = pair.split('=').next().unwrap().to_string();
        assert_eq!(
            v,
            CallbackVerdict::Pin {
                node: "10.1.2.3:8080".into(),
                clear: name
            }
        );
        assert!(counters.contains(Counter::FlowPinned));
        assert_eq!(
            session_header_value("127.0.0.1:18102"),
            "MTI3LjAuMC4xOjE4MTAy",
            "value verified on Envoy 1.40"
        );
    }

    #[test]
    fn callback_refusals() {
        let c = cfg("");
        let pair = issued_pair(&c, "s1");
        let other = issued_pair(&c, "s2");
        let rows: Vec<(&str, String, u64, FlowProblem)> = vec![
            (
                "/callback?code=x",
                pair.clone(),
                1_100,
                FlowProblem::NoState,
            ),
            (
                "/callback?state=s1&state=s1",
                pair.clone(),
                1_100,
                FlowProblem::NoState,
            ),
            (
                "/callback?state=s1",
                String::new(),
                1_100,
                FlowProblem::Missing,
            ),
            (
                "/callback?state=s1",
                other.clone(),
                1_100,
                FlowProblem::Missing,
            ),
            (
                "/callback?state=s1",
                format!("{pair}; {pair}"),
                1_100,
                FlowProblem::Duplicate,
            ),
            (
                "/callback?state=s1",
                pair.clone(),
                1_600,
                FlowProblem::Cookie(CookieError::Expired),
            ),
            (
                "/callback?error=access_denied&state=s1",
                pair.clone(),
                1_600,
                FlowProblem::Cookie(CookieError::Expired),
            ),
        ];
        for (path, cookie, now, want) in rows {
            let (v, counters) = callback(&c, path, &cookie, now);
            assert!(
                matches!(v, CallbackVerdict::Refuse { problem, .. } if problem == want),
                "{path} {cookie}: {v:?}"
            );
            assert!(counters.contains(want.counter()));
        }
        let (v, _) = callback(&c, "/callback?error=access_denied&state=s1", &pair, 1_100);
        assert!(
            matches!(v, CallbackVerdict::Pin { .. }),
            "IdP error callbacks are validated and passed on like any other"
        );
        assert_eq!(
            callback(&c, "/callbackx?state=s1", &pair, 1_100).0,
            CallbackVerdict::NotCallback
        );
        let report = cfg(r#", "mode": "report""#);
        let (_, counters) = callback(&report, "/callback?state=s1", "", 1_100);
        assert!(
            counters.contains(Counter::FlowReportOnly) && counters.contains(Counter::FlowMissing)
        );
    }

    #[test]
    fn flow_cookies_stay_bounded() {
        let c = cfg(r#", "max_flows": 3"#);
        let m = RequestMemo {
            path_and_query: "/".into(),
            flow_cookies: vec![
                ("__Host-oidc-edge-a".into(), Some(990)),
                ("__Host-oidc-edge-b".into(), Some(300)),
                ("__Host-oidc-edge-c".into(), Some(995)),
                ("__Host-oidc-edge-d".into(), None),
            ],
        };
        let (cookies, _) = start(&c, "https://idp.example.com/oauth2/authorize?state=new", &m);
        let cleared: Vec<&str> = cookies
            .iter()
            .filter(|c| c.contains("Max-Age=0"))
            .map(|c| c.split('=').next().unwrap())
            .collect();
        // d is unreadable and b expired: clearing them leaves a, c and the new one (3).
        assert_eq!(cleared, vec!["__Host-oidc-edge-d", "__Host-oidc-edge-b"]);
        assert_eq!(cookies.len(), 3);
        let full = RequestMemo {
            path_and_query: "/".into(),
            flow_cookies: vec![
                ("__Host-oidc-edge-a".into(), Some(990)),
                ("__Host-oidc-edge-c".into(), Some(980)),
                ("__Host-oidc-edge-e".into(), Some(999)),
            ],
        };
        let (cookies, _) = start(
            &c,
            "https://idp.example.com/oauth2/authorize?state=new",
            &full,
        );
        let cleared: Vec<&str> = cookies
            .iter()
            .filter(|c| c.contains("Max-Age=0"))
            .map(|c| c.split('=').next().unwrap())
            .collect();
        assert_eq!(
            cleared,
            vec!["__Host-oidc-edge-c"],
            "the oldest live flow makes room"
        );
    }
}
