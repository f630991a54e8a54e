//! Login-flow affinity: issue a sealed cookie when the app redirects the
//! browser to the IdP, and on the callback check it and pin the request to
//! the node that started the login.
//!
//! Response phase ([`on_response`]): a 3xx whose `Location` is one of the
//! configured authorization endpoints (scheme, host, port and path compared
//! exactly; query order and encoding do not matter) with exactly one `state`
//! parameter starts a flow: a cookie named after the state, carrying the
//! node that answered (`upstream.address`), is set. Stale flow cookies are
//! cleared so the count stays bounded. Only a navigation starts one
//! ([`request_context`]: no page can fill a browser's jar with flows), and
//! never on a plain-`http` external origin, where the browser would drop
//! the `Secure` cookie ([`FlowProblem::InsecureOrigin`]).
//!
//! Request phase ([`on_request`]): on a configured callback path (in any
//! spelling a lenient router maps to it: `/Callback`, `/callback/`,
//! `/callback;x`, so none of them skips the check), `state` is
//! read from the query, the flow's cookie is opened (any key of the ring,
//! constant-time MAC, expiry), and the request is pinned to the node inside,
//! through the header Envoy's `stateful_session` filter reads. The cookie is
//! cleared on the response: one use only.

pub mod config;

use crate::http::authority::{Origin, Proto};
use crate::http::cookie::{self, SameSite};
use crate::http::uri::{route_matches_patterns, single_param, AbsoluteUri};
use crate::http::Headers;
use crate::metrics::{Counter, CounterSet};
use crate::seal::sealed_cookie::{self, Binding, FlowClaims, Purpose, Validity};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use config::{Affinity, LoginFlowConfig, ResponseMode};

pub use crate::outcome::FlowProblem;

/// The request-phase verdict for login-flow affinity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackVerdict {
    /// Not a callback: nothing to check.
    NotCallback,
    /// A valid callback: pin to `claims.node` (`ip:port`), clear cookie `clear`.
    Pin {
        /// What the flow cookie said (node, restarts, where the login began).
        claims: FlowClaims,
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

/// How a request relates to login flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestKind {
    /// A callback whose `state` is in the query (GET, `response_mode=query`).
    Callback {
        /// The `state` parameter, if it appears exactly once.
        state: Option<String>,
    },
    /// A callback POSTed by the IdP (`response_mode=form_post`): `state` is
    /// in the url-encoded body, which must be read first.
    FormPostCallback,
    /// Any other request.
    Other,
}

/// Classifies a request by method and path. The path matches a callback
/// path loosely ([`route_matches_patterns`]): an app's router may serve
/// `/Callback/` or `/callback;jsessionid=1` from the `/callback` handler,
/// and such a callback must not skip the flow check and its pinning.
pub fn classify(cfg: &LoginFlowConfig, method: &str, path_and_query: &str) -> RequestKind {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if !route_matches_patterns(path, &cfg.callback_paths) {
        return RequestKind::Other;
    }
    if method == "POST" {
        RequestKind::FormPostCallback
    } else {
        RequestKind::Callback {
            state: single_param(query, "state"),
        }
    }
}

/// Checks a callback's flow cookie against its `state`.
pub fn check_callback(
    cfg: &LoginFlowConfig,
    state: Option<&str>,
    headers: &Headers,
    now_ms: u64,
    origin: &str,
) -> (CallbackVerdict, CounterSet) {
    let counters = CounterSet::default();
    let refuse = |problem: FlowProblem, clear: Option<String>, mut counters: CounterSet| {
        counters.add(problem.counter());
        (CallbackVerdict::Refuse { problem, clear }, counters)
    };
    let Some(state) = state else {
        return refuse(FlowProblem::NoState, None, counters);
    };
    let name = sealed_cookie::cookie_name(&cfg.cookie_prefix, state);
    let mut values = cookie::pairs(headers)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v);
    let Some(value) = values.next() else {
        return refuse(FlowProblem::Missing, None, counters);
    };
    if values.next().is_some() {
        return refuse(FlowProblem::Duplicate, Some(name), counters);
    }
    match sealed_cookie::open_flow(
        &cfg.keys,
        &flow_binding(&name, origin),
        state,
        value,
        &flow_validity(cfg, now_ms),
    ) {
        Ok(claims) => {
            let mut counters = counters;
            // `pinned` is the exchange's to count, once the response shows
            // the node answered.
            counters.add(Counter::FlowValid);
            (
                CallbackVerdict::Pin {
                    claims,
                    clear: name,
                },
                counters,
            )
        }
        Err(e) => refuse(FlowProblem::Cookie(e), Some(name), counters),
    }
}

/// Request phase for query callbacks: classify, then check. (Form-post
/// callbacks are checked by [`check_callback`] once the body is read.)
pub fn on_request(
    cfg: &LoginFlowConfig,
    path_and_query: &str,
    headers: &Headers,
    now_ms: u64,
    origin: &str,
) -> (CallbackVerdict, CounterSet) {
    match classify(cfg, "GET", path_and_query) {
        RequestKind::Callback { state } => {
            check_callback(cfg, state.as_deref(), headers, now_ms, origin)
        }
        _ => (CallbackVerdict::NotCallback, CounterSet::default()),
    }
}

/// Whether `name` is one of our flow cookies (prefix + 16-character flow id).
fn is_flow_cookie(cfg: &LoginFlowConfig, name: &str) -> bool {
    name.len() == cfg.cookie_prefix.len() + 16 && name.starts_with(cfg.cookie_prefix.as_str())
}

/// Most flow cookies of one request that are opened (each costs a
/// decryption): twice the most a browser keeps, so a request stuffed with
/// flow-shaped cookies costs bounded work. The rest are cleared unread.
pub const MAX_FLOW_COOKIES_READ: usize = 32;

/// What a flow cookie named `name` is bound to at `origin`.
fn flow_binding<'a>(name: &'a str, origin: &'a str) -> Binding<'a> {
    Binding {
        purpose: Purpose::Flow,
        name,
        origin,
    }
}

fn flow_validity(cfg: &LoginFlowConfig, now_ms: u64) -> Validity {
    Validity {
        now_ms,
        max_lifetime_s: cfg.max_age,
    }
}

/// The order of two logins of one browser: `seq` first (it cannot tie for
/// logins started one after the other), then the issue time, then the
/// cookie name, so the choice is the same on every Envoy.
fn login_order(claims: &FlowClaims, name: &str) -> (u32, u64, String) {
    (claims.seq, claims.issued_at, name.to_string())
}

/// Routing for a form-post callback, decided before its body (and so its
/// `state`) has arrived: Envoy must route on the headers, and proxy-wasm
/// cannot hold them while reading the body. The browser's valid flow cookies
/// name the node; if they name several (parallel logins on different nodes),
/// the newest flow's node is chosen and counted. The state is checked
/// against the cookie when the body is read ([`check_form_post`]).
pub fn form_post_node(
    cfg: &LoginFlowConfig,
    headers: &Headers,
    now_ms: u64,
    origin: &str,
) -> (Option<String>, CounterSet) {
    let mut counters = CounterSet::default();
    let mut best: Option<((u32, u64, String), String)> = None;
    let mut nodes_differ = false;
    let validity = flow_validity(cfg, now_ms);
    for (name, value) in cookie::pairs(headers)
        .filter(|(n, _)| is_flow_cookie(cfg, n))
        .take(MAX_FLOW_COOKIES_READ)
    {
        let Ok((claims, _)) =
            sealed_cookie::open(&cfg.keys, &flow_binding(name, origin), value, &validity)
        else {
            continue;
        };
        let order = login_order(&claims, name);
        if let Some((best_order, best_node)) = &best {
            nodes_differ |= *best_node != claims.node;
            if *best_order >= order {
                continue;
            }
        }
        best = Some((order, claims.node));
    }
    if nodes_differ {
        counters.add(Counter::FlowFormPostAmbiguous);
    }
    (best.map(|(_, node)| node), counters)
}

/// Checks a form-post callback once its body is read: the usual callback
/// check, plus that the flow's node is the one the request was routed to.
pub fn check_form_post(
    cfg: &LoginFlowConfig,
    body: &[u8],
    routed_to: Option<&str>,
    headers: &Headers,
    now_ms: u64,
    origin: &str,
) -> (CallbackVerdict, CounterSet) {
    let state = std::str::from_utf8(body)
        .ok()
        .and_then(|b| single_param(b, "state"));
    let (verdict, mut counters) = check_callback(cfg, state.as_deref(), headers, now_ms, origin);
    match verdict {
        CallbackVerdict::Pin { claims, clear } if Some(claims.node.as_str()) != routed_to => {
            counters.add(FlowProblem::OtherNode.counter());
            (
                CallbackVerdict::Refuse {
                    problem: FlowProblem::OtherNode,
                    clear: Some(clear),
                },
                counters,
            )
        }
        v => (v, counters),
    }
}

/// Name of the session-affinity cookie (`affinity: "session"`).
pub fn session_cookie_name(cfg: &LoginFlowConfig) -> String {
    format!("{}session", cfg.cookie_prefix)
}

/// Name of the marker cookie that says the next login is a restart.
pub fn restart_cookie_name(cfg: &LoginFlowConfig) -> String {
    format!("{}restart", cfg.cookie_prefix)
}

fn session_binding<'a>(name: &'a str, origin: &'a str) -> Binding<'a> {
    Binding {
        purpose: Purpose::Session,
        name,
        origin,
    }
}

/// The `Set-Cookie` for session affinity to `node`, for the external `origin`.
pub fn session_cookie(cfg: &LoginFlowConfig, node: &str, now_ms: u64, origin: &str) -> String {
    let name = session_cookie_name(cfg);
    let claims = FlowClaims {
        node: node.to_string(),
        issued_at: now_ms,
        expires_at: (now_ms / 1000).saturating_add(cfg.session_max_age),
        seq: 0,
        restarts: 0,
        return_to: String::new(),
    };
    let value = sealed_cookie::seal(
        cfg.keys.signing(),
        &session_binding(&name, origin),
        &[0; sealed_cookie::STATE_HASH_LEN],
        &claims,
    );
    cookie::set_cookie(
        &name,
        &value,
        cfg.session_max_age,
        SameSite::Lax,
        cfg.secure,
    )
}

/// Session affinity on an ordinary request: the node to pin to, if the
/// request carries a valid session cookie. `Err` names a cookie that is
/// present but invalid (it is cleared on the response).
pub fn session_node(
    cfg: &LoginFlowConfig,
    headers: &Headers,
    now_ms: u64,
    origin: &str,
) -> Option<Result<String, String>> {
    if cfg.affinity != Affinity::Session {
        return None;
    }
    // Matched in place: the cookie's own name is the bound name.
    let mut values = cookie::pairs(headers).filter(|(n, _)| is_named(cfg, n, "session"));
    let (name, value) = values.next()?;
    if values.next().is_some() {
        return Some(Err(session_cookie_name(cfg)));
    }
    Some(
        sealed_cookie::open(
            &cfg.keys,
            &session_binding(name, origin),
            value,
            &Validity {
                now_ms,
                max_lifetime_s: cfg.session_max_age,
            },
        )
        .map(|(c, _)| c.node)
        .map_err(|_| name.to_string()),
    )
}

/// Whether cookie `name` is our cookie `suffix` (`session`, `restart`):
/// the prefix and the suffix compared in place, nothing allocated.
fn is_named(cfg: &LoginFlowConfig, name: &str, suffix: &str) -> bool {
    name.strip_prefix(cfg.cookie_prefix.as_str()) == Some(suffix)
}

/// What to do when the node a callback was pinned to is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// Send the browser back to where the login started, so the app (on a
    /// live node) starts a new flow and the IdP's SSO session completes it.
    Restart {
        /// Relative `Location`.
        location: String,
        /// Marker cookie so the new flow is known to be a restart.
        set_cookie: String,
    },
    /// The flow was already restarted once: stop, never loop.
    GiveUp,
}

/// Recovery for a pinned callback whose node is gone.
pub fn on_node_gone(cfg: &LoginFlowConfig, claims: &FlowClaims) -> Recovery {
    if claims.restarts > 0 {
        return Recovery::GiveUp;
    }
    // The value came from our own sealed cookie, but the redirect must
    // never leave the site whatever it holds.
    let location = safe_local_path(&claims.return_to).to_string();
    let set_cookie = cookie::set_cookie(
        &restart_cookie_name(cfg),
        "1",
        cfg.max_age,
        SameSite::Lax,
        cfg.secure,
    );
    Recovery::Restart {
        location,
        set_cookie,
    }
}

/// `path` if a browser resolves it as a path on this origin, else `/`.
///
/// Browsers remove tabs and newlines anywhere in a URL and read `\` as `/`,
/// so `/\evil.example`, `/<TAB>/evil.example` and `//evil.example` all
/// leave the site. A local path starts with one `/` and holds only
/// printable ASCII other than `\`. Every `Location` oidc-edge builds from
/// request data passes through here.
pub fn safe_local_path(path: &str) -> &str {
    let b = path.as_bytes();
    let local = b.first() == Some(&b'/')
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.iter().all(|c| (0x21..0x7f).contains(c) && *c != b'\\');
    if local {
        path
    } else {
        "/"
    }
}

/// What the browser says about a request in its Fetch Metadata headers
/// (W3C Fetch Metadata Request Headers), as far as starting a login flow
/// depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestContext {
    /// A top-level navigation (`Sec-Fetch-Dest: document`), a frame's
    /// navigation from this origin (`iframe`/`frame` with `Sec-Fetch-Site:
    /// same-origin`: an app's own hidden-iframe silent refresh), or a client
    /// that sends no Fetch Metadata (an old browser, curl, a test client).
    #[default]
    Navigation,
    /// The browser says the request is something else: `fetch()`, XHR, an
    /// image or script, or a frame another site embedded. Such a request
    /// may not start a flow (see [`request_context`]).
    NotNavigation,
}

/// Whether a response to a request with these headers may start a login
/// flow: only when the browser says the request is a navigation.
///
/// Each flow sets a cookie of a few hundred bytes. A page on any site can
/// make a victim's browser send hundreds of requests to `/login` at once
/// (images, `fetch` with `no-cors`, hidden frames); the requests all carry
/// the same flow cookies, so none of them sees the others' and eviction
/// (`max_flows`) cannot keep up. A cookie jar past Envoy's request header
/// limit locks the victim out of the site with 431s until the cookies
/// expire. A browser's navigations come one at a time per window and show.
/// Absent headers are allowed (every browser since 2023 sends them, so
/// absence means an old browser or a non-browser client, which fills only
/// its own jar). Frames are allowed only from this origin: the app's own
/// silent refresh (`prompt=none` in a hidden iframe: `Sec-Fetch-Dest:
/// iframe`, `Sec-Fetch-Mode: navigate`, `Sec-Fetch-Site: same-origin`, as
/// Chromium sends it) keeps working, while a frame another site embeds —
/// even a sibling subdomain, `same-site` — does not start flows.
/// Values are compared case-insensitively; any header line that fails
/// decides (a repeated header cannot hide a `no-cors`).
pub fn request_context(headers: &Headers) -> RequestContext {
    let values = |name: &'static str| {
        headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| std::str::from_utf8(v).unwrap_or("").trim())
    };
    let mut frame = false;
    for mode in values("sec-fetch-mode") {
        if !mode.eq_ignore_ascii_case("navigate") {
            return RequestContext::NotNavigation;
        }
    }
    for dest in values("sec-fetch-dest") {
        if dest.eq_ignore_ascii_case("iframe") || dest.eq_ignore_ascii_case("frame") {
            frame = true;
        } else if !dest.eq_ignore_ascii_case("document") {
            return RequestContext::NotNavigation;
        }
    }
    if frame {
        for site in values("sec-fetch-site") {
            if !site.eq_ignore_ascii_case("same-origin") {
                return RequestContext::NotNavigation;
            }
        }
    }
    RequestContext::Navigation
}

/// What the request phase remembers for the response phase of a
/// non-callback request: enough to start a flow and keep cookies bounded.
#[derive(Debug, Clone, Default)]
pub struct RequestMemo {
    /// Path and query of the request (where to restart a login).
    pub path_and_query: String,
    /// Our flow cookies the browser sent, name and value, unverified (the
    /// first [`MAX_FLOW_COOKIES_READ`]; further ones have an empty value and
    /// are cleared unread).
    pub flow_cookies: Vec<(String, String)>,
    /// The browser carries the restart marker: a new flow is a restart.
    pub restarting: bool,
    /// Whether the request may start a flow ([`request_context`]).
    pub context: RequestContext,
    /// The browser addressed a plain-`http` external origin, where it drops
    /// `Secure` cookies (`false` when the scheme is unknown: `forwarded` off).
    pub over_http: bool,
}

/// Collects the [`RequestMemo`] from the request headers. `external` is
/// the external origin the browser addressed, when `forwarded` decided it.
pub fn memo(
    cfg: &LoginFlowConfig,
    path_and_query: &str,
    headers: &Headers,
    external: Option<&Origin>,
) -> RequestMemo {
    // One pass over the cookies; nothing is allocated for a request that
    // carries no flow cookie (almost all of them).
    let mut flow_cookies = Vec::new();
    let mut restarting = false;
    for (n, v) in cookie::pairs(headers) {
        if is_flow_cookie(cfg, n) {
            let v = if flow_cookies.len() < MAX_FLOW_COOKIES_READ {
                v
            } else {
                ""
            };
            flow_cookies.push((n.to_string(), v.to_string()));
        } else if is_named(cfg, n, "restart") {
            restarting = true;
        }
    }
    RequestMemo {
        context: request_context(headers),
        over_http: external.is_some_and(|o| o.proto == Proto::Http),
        path_and_query: path_and_query.to_string(),
        flow_cookies,
        restarting,
    }
}

/// Response phase: the `Set-Cookie` values to add when this response starts
/// a login flow (`Ok`, empty when it starts none), or why the login may not
/// start here (`Err`: the exchange refuses the response, or in report mode
/// lets it pass). `location` is the response's `Location`; `node` the
/// `upstream.address` that answered.
///
/// A redirect to the IdP in answer to a request that is not a navigation
/// ([`request_context`]) passes unchanged, with no cookie and counted
/// (`not_navigation`): without a cookie it costs the browser nothing, and
/// an app's own `fetch` that meets an expired session still gets the
/// redirect it always got (which the browser's CORS rules then stop)
/// rather than an error page it never expected.
pub fn on_response(
    cfg: &LoginFlowConfig,
    location: &str,
    node: Option<&str>,
    memo: &RequestMemo,
    now_ms: u64,
    origin: &str,
) -> (Result<Vec<String>, FlowProblem>, CounterSet) {
    let mut counters = CounterSet::default();
    let mut out = Vec::new();
    let Some(url) = AbsoluteUri::parse(location) else {
        return (Ok(out), counters);
    };
    let is_authorize = cfg.authorization_endpoints.iter().any(|e| e.matches(&url));
    if !is_authorize {
        return (Ok(out), counters);
    }
    if memo.context == RequestContext::NotNavigation {
        counters.add(Counter::FlowNotNavigation);
        return (Ok(out), counters);
    }
    if memo.over_http && cfg.secure {
        // The browser would drop the Secure (__Host-) cookie, and the
        // callback would fail as flow_cookie_missing after the user's
        // time at the IdP: say the real cause now.
        counters.add(FlowProblem::InsecureOrigin.counter());
        return (Err(FlowProblem::InsecureOrigin), counters);
    }
    let Some(state) = url.single_param("state") else {
        counters.add(Counter::FlowNoState);
        return (Ok(out), counters);
    };
    let Some(node) = node else {
        counters.add(Counter::FlowNoNode);
        return (Ok(out), counters);
    };
    let form_post = cfg.response_mode == ResponseMode::FormPost
        || url.single_param("response_mode").as_deref() == Some("form_post");
    let same_site = if form_post {
        SameSite::None
    } else {
        SameSite::Lax
    };
    let name = sealed_cookie::cookie_name(&cfg.cookie_prefix, &state);
    // The browser's other logins in progress: the live ones, oldest first;
    // anything that does not open (expired, forged, another origin) is stale.
    let validity = flow_validity(cfg, now_ms);
    let mut live = Vec::new();
    for (n, v) in memo.flow_cookies.iter().filter(|(n, _)| *n != name) {
        match sealed_cookie::open(&cfg.keys, &flow_binding(n, origin), v, &validity) {
            Ok((claims, _)) => live.push((login_order(&claims, n), n)),
            Err(_) => {
                out.push(cookie::clear_cookie(n, cfg.secure));
                counters.add(Counter::FlowEvicted);
            }
        }
    }
    live.sort();
    let seq = live
        .last()
        .map_or(1, |((seq, _, _), _)| seq.saturating_add(1));
    // Keep at most `max_flows` flow cookies: the oldest live ones make room.
    let excess = live.len().saturating_sub(cfg.max_flows.saturating_sub(1));
    for (_, n) in live.iter().take(excess) {
        out.push(cookie::clear_cookie(n, cfg.secure));
        counters.add(Counter::FlowEvicted);
    }
    let claims = FlowClaims {
        node: node.to_string(),
        issued_at: now_ms,
        expires_at: (now_ms / 1000).saturating_add(cfg.max_age),
        seq,
        restarts: u8::from(memo.restarting),
        return_to: memo.path_and_query.clone(),
    };
    if memo.restarting {
        out.push(cookie::clear_cookie(&restart_cookie_name(cfg), cfg.secure));
    }
    let value = sealed_cookie::seal(
        cfg.keys.signing(),
        &flow_binding(&name, origin),
        &sealed_cookie::state_hash(&state),
        &claims,
    );
    out.push(cookie::set_cookie(
        &name,
        &value,
        cfg.max_age,
        same_site,
        cfg.secure,
    ));
    counters.add(Counter::FlowIssued);
    if cfg.affinity == Affinity::Session {
        // An app with in-memory sessions keeps the login's state in the
        // browser's session on this node, created by this very response.
        // Keep the browser there from now on (as a sticky LB does from its
        // first response), not only after the callback: else another tab's
        // login meanwhile lands on another node, which replaces the
        // session cookie, and this login's callback finds no state.
        out.push(session_cookie(cfg, node, now_ms, origin));
        counters.add(Counter::SessionIssued);
    }
    (Ok(out), counters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::seal::sealed_cookie::CookieError;

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn cfg(extra: &str) -> LoginFlowConfig {
        let json = format!(
            r#"{{"login_flow": {{"authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],
                 "callback_paths": ["/callback"], "keys": [{{"id": "k1", "secret": "{SECRET}"}}]{extra}}}}}"#
        );
        Config::parse(json.as_bytes()).unwrap().login_flow.unwrap()
    }

    const ORIGIN: &str = "https://app.example.com";

    fn start(c: &LoginFlowConfig, location: &str, memo: &RequestMemo) -> (Vec<String>, CounterSet) {
        start_at(c, location, memo, 1_000_000)
    }

    fn start_at(
        c: &LoginFlowConfig,
        location: &str,
        memo: &RequestMemo,
        now: u64,
    ) -> (Vec<String>, CounterSet) {
        let (cookies, counters) =
            on_response(c, location, Some("10.1.2.3:8080"), memo, now, ORIGIN);
        (cookies.unwrap(), counters)
    }

    fn memo(path: &str) -> RequestMemo {
        RequestMemo {
            path_and_query: path.into(),
            flow_cookies: vec![],
            restarting: false,
            ..RequestMemo::default()
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
            ORIGIN,
        );
        assert!(counters.contains(Counter::FlowNoNode));
    }

    #[test]
    fn with_session_affinity_a_login_start_also_pins_the_session() {
        let c = cfg(r#", "affinity": "session""#);
        let (cookies, counters) = start(
            &c,
            "https://idp.example.com/oauth2/authorize?state=s1",
            &memo("/login"),
        );
        assert_eq!(cookies.len(), 2, "{cookies:?}");
        assert!(counters.contains(Counter::FlowIssued));
        assert!(counters.contains(Counter::SessionIssued));
        let pair = cookies[1].split(';').next().unwrap();
        assert!(
            pair.starts_with(&format!("{}=", session_cookie_name(&c))),
            "{pair}"
        );
        let headers: Vec<(&str, &[u8])> = vec![("cookie", pair.as_bytes())];
        assert_eq!(
            session_node(&c, &headers, 1_000_001, ORIGIN),
            Some(Ok("10.1.2.3:8080".to_string())),
            "the node that started the login"
        );
        // No flow, no session cookie: only logins pin.
        let (cookies, counters) = start(&c, "/elsewhere", &memo("/"));
        assert!(cookies.is_empty());
        assert!(!counters.contains(Counter::SessionIssued));
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
        on_request(c, path, &headers, now, ORIGIN)
    }

    fn issued_pair(c: &LoginFlowConfig, state: &str) -> String {
        let (cookies, _) = start(
            c,
            &format!("https://idp.example.com/oauth2/authorize?state={state}"),
            &memo("/account"),
        );
        let session = format!("{}=", session_cookie_name(c));
        cookies
            .iter()
            .rfind(|c| !c.starts_with(&session))
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
            1_100_000,
        );
        let name = pair.split('=').next().unwrap().to_string();
        let CallbackVerdict::Pin { claims, clear } = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            (claims.node.as_str(), claims.return_to.as_str(), clear),
            ("10.1.2.3:8080", "/account", name)
        );
        assert!(counters.contains(Counter::FlowValid));
        assert!(
            !counters.contains(Counter::FlowPinned),
            "pinned is counted on the response, where the node is known"
        );
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
                1_100_000,
                FlowProblem::NoState,
            ),
            (
                "/callback?state=s1&state=s1",
                pair.clone(),
                1_100_000,
                FlowProblem::NoState,
            ),
            (
                "/callback?state=s1",
                String::new(),
                1_100_000,
                FlowProblem::Missing,
            ),
            (
                "/callback?state=s1",
                other.clone(),
                1_100_000,
                FlowProblem::Missing,
            ),
            (
                "/callback?state=s1",
                format!("{pair}; {pair}"),
                1_100_000,
                FlowProblem::Duplicate,
            ),
            (
                "/callback?state=s1",
                pair.clone(),
                1_600_000,
                FlowProblem::Cookie(CookieError::Expired),
            ),
            (
                "/callback?error=access_denied&state=s1",
                pair.clone(),
                1_600_000,
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
        let (v, _) = callback(
            &c,
            "/callback?error=access_denied&state=s1",
            &pair,
            1_100_000,
        );
        assert!(
            matches!(v, CallbackVerdict::Pin { .. }),
            "IdP error callbacks are validated and passed on like any other"
        );
        assert_eq!(
            callback(&c, "/callbackx?state=s1", &pair, 1_100_000).0,
            CallbackVerdict::NotCallback
        );
        let report = cfg(r#", "mode": "report""#);
        let (_, counters) = callback(&report, "/callback?state=s1", "", 1_100_000);
        assert!(
            counters.contains(Counter::FlowMissing) && !counters.contains(Counter::FlowReportOnly),
            "the reason is the feature's to count; report_only the exchange's"
        );
    }

    /// (request path, callback?, case and source): every spelling an app's
    /// router may serve from the `/callback` handler is a callback.
    #[test]
    fn callback_paths_match_in_every_spelling_a_router_accepts() {
        let c = cfg("");
        let rows: &[(&str, bool, &str)] = &[
            ("/callback?state=s1", true, "exact"),
            (
                "/Callback?state=s1",
                true,
                "letter case (IIS, ASP.NET, Spring case-insensitive)",
            ),
            (
                "/callback/?state=s1",
                true,
                "trailing slash (Express, Spring MVC < 6)",
            ),
            (
                "/callback;x?state=s1",
                true,
                "path parameter (Tomcat, Jetty)",
            ),
            (
                "/callback;jsessionid=1?state=s1",
                true,
                "session id in the path (Servlet)",
            ),
            ("//callback?state=s1", true, "doubled slash (merge_slashes)"),
            (
                "/%63allback?state=s1",
                true,
                "percent-encoded letter (RFC 3986 §2.3)",
            ),
            (
                "/x/../callback?state=s1",
                true,
                "dot segment (RFC 3986 §5.2.4)",
            ),
            ("/callbackx?state=s1", false, "another path"),
            ("/callback/x?state=s1", false, "a path below it"),
            ("/?state=s1", false, "the root"),
        ];
        for (path, is_callback, why) in rows {
            let kind = classify(&c, "GET", path);
            assert_eq!(
                matches!(kind, RequestKind::Callback { state: Some(ref s) } if s == "s1"),
                *is_callback,
                "{why}: {path} -> {kind:?}"
            );
            assert_eq!(
                classify(&c, "POST", path) == RequestKind::FormPostCallback,
                *is_callback,
                "{why} (form post): {path}"
            );
        }
    }

    #[test]
    fn authorization_endpoints_are_parsed_once_at_load() {
        let c = cfg("");
        let e = &c.authorization_endpoints[0];
        assert_eq!(e.as_str(), "https://idp.example.com/oauth2/authorize");
        for (location, same, why) in [
            (
                "https://IDP.example.com:443/oauth2/authorize?x=1",
                true,
                "case, default port, query",
            ),
            (
                "https://idp.example.com/oauth2/authorize/",
                false,
                "trailing slash: exact path",
            ),
            (
                "https://idp.example.com:8443/oauth2/authorize",
                false,
                "port",
            ),
            ("http://idp.example.com/oauth2/authorize", false, "scheme"),
        ] {
            let u = AbsoluteUri::parse(location).unwrap();
            assert_eq!(e.matches(&u), same, "{why}");
            let written = AbsoluteUri::parse(e.as_str()).unwrap();
            assert_eq!(
                written.same_endpoint(&u),
                same,
                "{why}: same as AbsoluteUri's own comparison"
            );
        }
    }

    /// (Fetch Metadata headers, may start a flow?, case and source).
    #[test]
    fn only_navigations_start_flows() {
        use RequestContext::{Navigation, NotNavigation};
        let rows: &[(&[(&str, &str)], RequestContext, &str)] = &[
            (
                &[],
                Navigation,
                "no Fetch Metadata: an old browser or a non-browser client",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "document"),
                    ("sec-fetch-site", "none"),
                ],
                Navigation,
                "typed in the address bar (Chromium)",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "document"),
                    ("sec-fetch-site", "cross-site"),
                ],
                Navigation,
                "a link from another site: top-level, visible, one at a time",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "iframe"),
                    ("sec-fetch-site", "same-origin"),
                ],
                Navigation,
                "the app's hidden-iframe silent refresh, prompt=none (what Chromium sends)",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "frame"),
                    ("sec-fetch-site", "same-origin"),
                ],
                Navigation,
                "a <frame> of this origin",
            ),
            (
                &[
                    ("Sec-Fetch-Mode", "NAVIGATE"),
                    ("sec-fetch-dest", "Document"),
                ],
                Navigation,
                "values in another case",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "iframe"),
                    ("sec-fetch-site", "cross-site"),
                ],
                NotNavigation,
                "a frame another site embeds (hidden iframes filling the jar)",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-dest", "iframe"),
                    ("sec-fetch-site", "same-site"),
                ],
                NotNavigation,
                "a frame a sibling subdomain embeds",
            ),
            (
                &[
                    ("sec-fetch-mode", "no-cors"),
                    ("sec-fetch-dest", "image"),
                    ("sec-fetch-site", "cross-site"),
                ],
                NotNavigation,
                "<img src=/login> on an attacker's page",
            ),
            (
                &[("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")],
                NotNavigation,
                "fetch() or XHR",
            ),
            (
                &[("sec-fetch-mode", "no-cors")],
                NotNavigation,
                "mode alone says no",
            ),
            (
                &[("sec-fetch-dest", "script")],
                NotNavigation,
                "destination alone says no",
            ),
            (
                &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "object")],
                NotNavigation,
                "<object>/<embed> navigations are not logins",
            ),
            (
                &[
                    ("sec-fetch-mode", "navigate"),
                    ("sec-fetch-mode", "no-cors"),
                    ("sec-fetch-dest", "document"),
                ],
                NotNavigation,
                "a repeated header cannot hide a no-cors",
            ),
        ];
        for (headers, want, why) in rows {
            let lower: Vec<(String, &[u8])> = headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes()))
                .collect();
            let h: Vec<(&str, &[u8])> = lower.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            assert_eq!(request_context(&h), *want, "{why}");
        }
    }

    #[test]
    fn a_redirect_to_the_idp_for_a_non_navigation_sets_no_cookie() {
        let c = cfg("");
        let location = "https://idp.example.com/oauth2/authorize?state=s1";
        let not_nav = RequestMemo {
            context: RequestContext::NotNavigation,
            ..memo("/login")
        };
        let (cookies, counters) = start(&c, location, &not_nav);
        assert!(cookies.is_empty(), "{cookies:?}");
        assert!(counters.contains(Counter::FlowNotNavigation));
        assert!(!counters.contains(Counter::FlowIssued));
        let (cookies, counters) = start(&c, location, &memo("/login"));
        assert_eq!(cookies.len(), 1);
        assert!(!counters.contains(Counter::FlowNotNavigation));
        let (cookies, counters) = start(&c, "https://elsewhere.example/", &not_nav);
        assert!(
            cookies.is_empty() && counters == CounterSet::default(),
            "only redirects to the IdP count"
        );
    }

    /// Issue (cookies and affinity, point 2): a login's cookie stays small
    /// whatever the path it started on, so the jar a browser can gather
    /// (max_flows of them, plus a session cookie) stays far below Envoy's
    /// 60 KiB request header limit.
    #[test]
    fn a_flow_cookie_stays_small_whatever_its_return_path() {
        let c = cfg(r#", "max_flows": 16"#);
        let len = |path: &str| {
            let (cookies, _) = on_response(
                &c,
                "https://idp.example.com/oauth2/authorize?state=s1",
                Some("[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
                &memo(path),
                1_000_000,
                ORIGIN,
            );
            cookies.unwrap()[0].len()
        };
        let at_cap = format!("/{}", "a".repeat(sealed_cookie::MAX_RETURN_LEN - 1));
        let longest = len(&at_cap);
        assert!(longest < 600, "{longest} bytes");
        assert!(
            longest * 16 < 60 * 1024 / 4,
            "16 flows use a quarter of Envoy's limit at most"
        );
        let over = format!("/{}", "a".repeat(10_000));
        assert!(len(&over) < longest, "a longer path is not stored at all");
        // ... and a restart after its node is gone goes to `/`.
        let (cookies, _) = start(
            &c,
            "https://idp.example.com/oauth2/authorize?state=s2",
            &memo(&over),
        );
        let pair = cookies[0].split(';').next().unwrap();
        let headers: Vec<(&str, &[u8])> = vec![("cookie", pair.as_bytes())];
        let (v, _) = on_request(&c, "/callback?state=s2", &headers, 1_100_000, ORIGIN);
        let CallbackVerdict::Pin { claims, .. } = v else {
            panic!("{v:?}")
        };
        let Recovery::Restart { location, .. } = on_node_gone(&c, &claims) else {
            panic!("restart")
        };
        assert_eq!(location, "/");
    }

    /// Issue (cookies and affinity, point 3): browsers drop `Secure`
    /// cookies set over plain http (RFC 6265bis §5.7 step 13), so a login
    /// there cannot complete; say so rather than fail at the callback.
    #[test]
    fn no_login_starts_over_plain_http_with_secure_cookies() {
        let location = "https://idp.example.com/oauth2/authorize?state=s1";
        let http = RequestMemo {
            over_http: true,
            ..memo("/login")
        };
        let (verdict, counters) = on_response(
            &cfg(""),
            location,
            Some("10.1.2.3:8080"),
            &http,
            1_000_000,
            ORIGIN,
        );
        assert_eq!(verdict, Err(FlowProblem::InsecureOrigin));
        assert!(counters.contains(Counter::FlowInsecureOrigin));
        assert!(!counters.contains(Counter::FlowIssued));
        let testing = cfg(r#", "cookie_prefix": "oidc-", "insecure_cookies": true"#);
        let (verdict, _) = on_response(
            &testing,
            location,
            Some("10.1.2.3:8080"),
            &http,
            1_000_000,
            ORIGIN,
        );
        assert_eq!(
            verdict.map(|c| c.len()),
            Ok(1),
            "insecure_cookies: plain-HTTP testing works"
        );
        let h: Vec<(&str, &[u8])> = vec![];
        let https = Origin::parse("https://app.example.com").unwrap();
        let plain = Origin::parse("http://app.example.com").unwrap();
        assert!(!super::memo(&testing, "/", &h, Some(&https)).over_http);
        assert!(super::memo(&testing, "/", &h, Some(&plain)).over_http);
        assert!(
            !super::memo(&testing, "/", &h, None).over_http,
            "unknown: forwarded off"
        );
    }

    /// Issue (cookies and affinity, point 4): an IdP whose client is
    /// registered for form_post does not say so in the authorization URL.
    #[test]
    fn response_mode_form_post_makes_every_flow_cookie_same_site_none() {
        let location = "https://idp.example.com/oauth2/authorize?state=s1";
        let rows: &[(&str, &str, &str, &str)] = &[
            (
                "",
                location,
                "SameSite=Lax",
                "auto, no response_mode: a top-level GET callback",
            ),
            (
                "",
                "https://idp.example.com/oauth2/authorize?state=s1&response_mode=form_post",
                "SameSite=None",
                "auto, the URL asks for form_post",
            ),
            (
                r#", "response_mode": "form_post""#,
                location,
                "SameSite=None",
                "form_post: the IdP posts whatever the URL says",
            ),
        ];
        for (extra, loc, attr, why) in rows {
            let (cookies, _) = start(&cfg(extra), loc, &memo("/"));
            assert!(cookies[0].ends_with(attr), "{why}: {}", cookies[0]);
            assert!(cookies[0].contains("; Secure"), "{why}");
        }
    }

    /// A flow cookie for `state` issued at `now` by a browser that already
    /// holds `held` (name, value) flow cookies.
    fn issue(
        c: &LoginFlowConfig,
        state: &str,
        now: u64,
        held: &[(String, String)],
    ) -> (String, String) {
        let m = RequestMemo {
            path_and_query: "/".into(),
            flow_cookies: held.to_vec(),
            restarting: false,
            ..RequestMemo::default()
        };
        let (cookies, _) = start_at(
            c,
            &format!("https://idp.example.com/oauth2/authorize?state={state}"),
            &m,
            now,
        );
        let pair = cookies.last().unwrap().split(';').next().unwrap();
        let (n, v) = pair.split_once('=').unwrap();
        (n.to_string(), v.to_string())
    }

    fn cleared(cookies: &[String]) -> Vec<&str> {
        cookies
            .iter()
            .filter(|c| c.contains("Max-Age=0"))
            .map(|c| c.split('=').next().unwrap())
            .collect()
    }

    #[test]
    fn flow_cookies_stay_bounded() {
        let c = cfg(r#", "max_flows": 3"#);
        let a = issue(&c, "a", 900_000, &[]);
        let b = issue(&c, "b", 300_000, &[]);
        let cc = issue(&c, "c", 950_000, std::slice::from_ref(&a));
        let forged = (
            "__Host-oidc-edge-dddddddddddddddd".to_string(),
            "AAAA".to_string(),
        );
        let m = RequestMemo {
            path_and_query: "/".into(),
            flow_cookies: vec![a.clone(), b.clone(), cc.clone(), forged.clone()],
            restarting: false,
            ..RequestMemo::default()
        };
        let (cookies, _) = start(&c, "https://idp.example.com/oauth2/authorize?state=new", &m);
        // b expired and the forged one does not open: clearing them leaves a,
        // c and the new one (3).
        assert_eq!(cleared(&cookies), vec![b.0.as_str(), forged.0.as_str()]);
        assert_eq!(cookies.len(), 3);
        let e = issue(&c, "e", 990_000, &[a.clone(), cc.clone()]);
        let full = RequestMemo {
            path_and_query: "/".into(),
            flow_cookies: vec![cc.clone(), e, a.clone()],
            restarting: false,
            ..RequestMemo::default()
        };
        let (cookies, _) = start(
            &c,
            "https://idp.example.com/oauth2/authorize?state=new",
            &full,
        );
        assert_eq!(
            cleared(&cookies),
            vec![a.0.as_str()],
            "the oldest live flow makes room"
        );
    }

    #[test]
    fn logins_started_in_the_same_millisecond_are_ordered() {
        // Two logins, one after the other, with the same issue time: the
        // form-post callback goes to the newer one's node, every time.
        let c = cfg("");
        let older = issue(&c, "older", 1_000_000, &[]);
        let m = RequestMemo {
            path_and_query: "/".into(),
            flow_cookies: vec![older.clone()],
            restarting: false,
            ..RequestMemo::default()
        };
        let (cookies, _) = on_response(
            &c,
            "https://idp.example.com/oauth2/authorize?state=newer",
            Some("10.9.9.9:8080"),
            &m,
            1_000_000,
            ORIGIN,
        );
        let newer = cookies
            .unwrap()
            .last()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        for cookie in [
            format!("{}={}; {newer}", older.0, older.1),
            format!("{newer}; {}={}", older.0, older.1),
        ] {
            let headers: Vec<(&str, &[u8])> = vec![("cookie", cookie.as_bytes())];
            let (node, counters) = form_post_node(&c, &headers, 1_000_001, ORIGIN);
            assert_eq!(node.as_deref(), Some("10.9.9.9:8080"), "{cookie}");
            assert!(counters.contains(Counter::FlowFormPostAmbiguous));
        }
    }

    #[test]
    fn cookies_are_bound_to_the_external_origin() {
        let c = cfg(r#", "affinity": "session""#);
        let pair = issued_pair(&c, "s1");
        let headers: Vec<(&str, &[u8])> = vec![("cookie", pair.as_bytes())];
        let (v, _) = on_request(
            &c,
            "/callback?state=s1",
            &headers,
            1_100_000,
            "https://other.example.com",
        );
        assert!(
            matches!(
                v,
                CallbackVerdict::Refuse {
                    problem: FlowProblem::Cookie(CookieError::BadSignature),
                    ..
                }
            ),
            "{v:?}"
        );
        let session = session_cookie(&c, "10.1.2.3:8080", 1_000_000, ORIGIN);
        let pair = session.split(';').next().unwrap();
        let headers: Vec<(&str, &[u8])> = vec![("cookie", pair.as_bytes())];
        assert_eq!(
            session_node(&c, &headers, 1_000_500, ORIGIN),
            Some(Ok("10.1.2.3:8080".to_string()))
        );
        assert!(matches!(
            session_node(&c, &headers, 1_000_500, "http://app.example.com"),
            Some(Err(_))
        ));
    }

    #[test]
    fn flow_shaped_cookies_cost_bounded_work() {
        let c = cfg("");
        let line: String = (0..1000)
            .map(|i| format!("__Host-oidc-edge-{i:016}=AAAA; "))
            .collect();
        let headers: Vec<(&str, &[u8])> = vec![("cookie", line.as_bytes())];
        let m = super::memo(&c, "/", &headers, None);
        assert_eq!(
            m.flow_cookies.len(),
            cookie::MAX_PIECES,
            "only the first pieces of the Cookie lines are read"
        );
        assert_eq!(
            m.flow_cookies.iter().filter(|(_, v)| !v.is_empty()).count(),
            MAX_FLOW_COOKIES_READ
        );
        let (cookies, _) = start(&c, "https://idp.example.com/oauth2/authorize?state=new", &m);
        assert_eq!(
            cleared(&cookies).len(),
            cookie::MAX_PIECES,
            "every unreadable flow cookie read is cleared"
        );
    }
}
