//! The exchange: what happens to one request, from its headers through its
//! body to its response headers. It owns the order of the features
//! (forwarded → IdP mode → return-to → login flow on the request; login
//! flow → redirect checks → new flows on the response), enforce versus
//! report, when a request is pinned and its retries switched off, when a
//! pinned node counts as gone, and what a callback's response is still
//! checked for. It reaches Envoy only through [`Host`].
//!
//! The features decide; the exchange sequences them and applies what they
//! decided. A refusal in enforce mode is a local answer and ends the
//! exchange; in report mode it is counted once (the feature's
//! `report_only` counter) and logged, and the request goes on.

use crate::config::Config;
use crate::diagnostics::{self, RequestId, Routed};
use crate::forwarded::{self, Connection, Headers};
use crate::host::{Action, Host, LogLevel, Property};
use crate::http::authority::Origin;
use crate::http::cookie;
use crate::http::header_map;
use crate::http::node::parse_ip_with_port;
use crate::idp;
use crate::login_flow::config::{Affinity, LoginFlowConfig};
use crate::login_flow::{self, CallbackVerdict, Recovery, RequestKind, RequestMemo};
use crate::metrics::{Counter, CounterSet};
use crate::outcome::Mode;
use crate::outcome::{HeaderOp, Reason, Verdict};
use crate::redirects::{self, RedirectUriMode, RedirectUriVerdict};
use crate::seal::sealed_cookie::FlowClaims;
use std::net::IpAddr;
use std::rc::Rc;

/// Which feature a refusal belongs to: it names the report-mode counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feature {
    LoginFlow,
    Redirects,
    Idp,
}

impl Feature {
    fn report_counter(self) -> Counter {
        match self {
            Feature::LoginFlow => Counter::FlowReportOnly,
            Feature::Redirects => Counter::RedirectsReportOnly,
            Feature::Idp => Counter::IdpReportOnly,
        }
    }
}

/// One request's state between its phases.
pub struct Exchange {
    config: Rc<Config>,
    /// Cookies to clear on the response (a used flow cookie, a bad session cookie).
    clear_cookies: Vec<String>,
    /// What the response phase needs to start a login flow.
    memo: Option<RequestMemo>,
    /// The flow a callback was pinned by: for failover recovery and the
    /// session cookie.
    pinned_flow: Option<FlowClaims>,
    /// The request was pinned by its session cookie.
    session_pinned: bool,
    /// A form-post callback waits for its body.
    form_post: Option<FormPost>,
    /// A POST authorization request (IdP mode) waits for its body: its
    /// `:path` and `content-type`.
    idp_post: Option<(String, String)>,
    /// The external origin the browser addressed (from the forwarded decision).
    external: Option<Origin>,
    /// What sealed cookies are bound to: the external origin, or the
    /// request's `:authority` when `forwarded` is off.
    origin: String,
    /// The request's time (milliseconds since the Unix epoch).
    now: u64,
    /// A local answer was sent: nothing more to do.
    answered: bool,
    /// The node the session cookie pinned the request to.
    session_node: Option<String>,
    /// The request id as log lines name the request.
    request_id: Option<RequestId>,
    /// Why the forwarding headers were not believed, when Envoy's wiring
    /// is the cause ([`diagnostics::peer_problem`]).
    peer_problem: Option<&'static str>,
    /// The reason code of a refusal (enforce) or would-be refusal (report).
    reason: Option<&'static str>,
    /// `upstream.address`, once the response phase has read it (`Some(None)`:
    /// read, and there was none).
    upstream: Option<Option<Vec<u8>>>,
    /// The notable counters and the reason the access-log decisions were
    /// last stored for ([`Exchange::store_decisions`]).
    stored: (CounterSet, Option<&'static str>),
}

/// What a form-post callback carries from its headers to its body.
struct FormPost {
    cookies: Vec<Vec<u8>>,
    routed_to: Option<String>,
}

/// Connection facts read from host properties, only when asked.
struct HostConnection<'h, H: Host>(&'h mut H);

impl<H: Host> Connection for HostConnection<'_, H> {
    fn source_address(&mut self) -> Option<IpAddr> {
        let bytes = self.0.property(Property::SourceAddress)?;
        parse_ip_with_port(std::str::from_utf8(&bytes).ok()?)
    }

    fn is_tls(&mut self) -> bool {
        self.0
            .property(Property::TlsVersion)
            .is_some_and(|v| !v.is_empty())
    }

    fn alert(&mut self, message: &str) {
        self.0.log(LogLevel::Error, message);
    }
}

fn request_value<'h>(headers: &'h Headers<'h>, name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
}

fn response_header<H: Host>(host: &mut H, name: &str) -> Option<String> {
    String::from_utf8(host.response_header(name)?).ok()
}

/// Header changes that send a request to `node` and nowhere else: the
/// session header for stateful_session, and no retries (a retry would go to
/// another node, which cannot complete this login; oidc-edge recovers instead).
fn pin_ops(lf: &LoginFlowConfig, node: &str) -> [HeaderOp; 2] {
    [
        HeaderOp::SetNamed(
            lf.session_header.clone(),
            login_flow::session_header_value(node),
        ),
        HeaderOp::Set("x-envoy-max-retries", "0".to_string()),
    ]
}

/// Whether Envoy's own answer says the pinned node cannot be reached: no
/// such healthy host (stateful_session, strict) or the connection to it
/// failed. Other answers Envoy makes itself, such as a circuit breaker's
/// overflow or a timeout, say nothing about the node: treating them as
/// "gone" would clear the affinity of everyone pinned to a busy node.
///
/// Nor does `connection_termination` (an established connection closed
/// before the response began): a live node's keep-alive timer closing a
/// pooled connection as Envoy sends on it looks the same as a node dying
/// under the request. A dead node is known on the next request, which
/// cannot connect (`connection_failure`) or finds it ejected
/// (`no_healthy_upstream`); a live one keeps its users logged in.
pub fn node_unreachable(status: Option<&str>, details: Option<&[u8]>) -> bool {
    if status != Some("503") {
        return false;
    }
    let Some(d) = details.and_then(|d| std::str::from_utf8(d).ok()) else {
        return false;
    };
    d == "no_healthy_upstream"
        || matches!(
            reset_reason(d),
            Some("connection_failure" | "local_connection_failure" | "remote_connection_failure")
        )
}

/// Whether a pinned login callback is lost and worth restarting: its node
/// is unreachable ([`node_unreachable`]), or the connection closed under
/// it (`connection_termination`, node alive or not). A restart costs
/// nothing either way (a new login on a live node, which the IdP's session
/// completes), while Envoy's 503 would leave the user on an error page
/// with the login's flow cookie used up.
pub fn callback_lost(status: Option<&str>, details: Option<&[u8]>) -> bool {
    node_unreachable(status, details)
        || (status == Some("503")
            && details
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(reset_reason)
                == Some("connection_termination"))
}

/// The reason in `upstream_reset_before_response_started{reason|more}`.
fn reset_reason(details: &str) -> Option<&str> {
    let rest = details.strip_prefix("upstream_reset_before_response_started{")?;
    rest.split([',', '|', '}']).next()
}

impl Exchange {
    /// A new exchange for one request under `config`.
    pub fn new(config: Rc<Config>) -> Exchange {
        Exchange {
            config,
            clear_cookies: Vec::new(),
            memo: None,
            pinned_flow: None,
            session_pinned: false,
            form_post: None,
            idp_post: None,
            external: None,
            origin: String::new(),
            now: 0,
            answered: false,
            session_node: None,
            request_id: None,
            peer_problem: None,
            reason: None,
            upstream: None,
            stored: (CounterSet::default(), None),
        }
    }

    fn count<H: Host>(host: &mut H, counters: CounterSet) {
        for c in counters.iter() {
            host.increment(c);
        }
    }

    /// Sends the local answer for `reason`, clearing `clear` if given.
    fn answer<H: Host>(&mut self, host: &mut H, reason: Reason, clear: Option<String>) -> Action {
        self.reason = Some(reason.code());
        host.log(
            LogLevel::Debug,
            &format!(
                "answered {}: {} (request {})",
                reason.status(),
                reason.code(),
                self.request_id()
            ),
        );
        let clear = match (clear, &self.config.login_flow) {
            (Some(name), Some(lf)) => Some(cookie::clear_cookie(&name, lf.secure)),
            _ => None,
        };
        let mut headers = vec![
            ("content-type", reason.content_type()),
            ("cache-control", "no-store"),
            ("x-oidc-edge-reason", reason.code()),
        ];
        if let Some(c) = &clear {
            headers.push(("set-cookie", c.as_str()));
        }
        if !host.send_response(reason.status(), &headers, reason.body().as_bytes()) {
            host.log(LogLevel::Error, "could not send a local response");
        }
        self.answered = true;
        Action::Pause
    }

    /// The one place enforce and report part: enforce answers (`Some`),
    /// report counts the feature's `report_only`, logs, and lets the
    /// request go on (`None`). The reason's own counter is the feature's
    /// to count, in both modes.
    fn refuse<H: Host>(
        &mut self,
        host: &mut H,
        feature: Feature,
        mode: Mode,
        reason: Reason,
        clear: Option<String>,
    ) -> Option<Action> {
        if mode == Mode::Enforce {
            return Some(self.answer(host, reason, clear));
        }
        host.increment(feature.report_counter());
        self.reason = Some(reason.code());
        host.log(
            LogLevel::Info,
            &format!(
                "report mode: would answer {} {} (request {})",
                reason.status(),
                reason.code(),
                self.request_id()
            ),
        );
        if let Some(name) = clear {
            self.clear_cookies.push(name);
        }
        None
    }

    fn internal_error<H: Host>(&mut self, host: &mut H) -> Action {
        host.increment(Counter::InternalError);
        self.answer(host, Reason::Internal, None)
    }

    fn apply<H: Host>(&mut self, host: &mut H, ops: &[HeaderOp]) -> Action {
        let ok = ops.iter().all(|op| match op {
            HeaderOp::Set(name, value) => host.set_request_header(name, Some(value)),
            HeaderOp::Remove(name) => host.set_request_header(name, None),
            HeaderOp::RemoveNamed(name) => host.set_request_header(name, None),
            HeaderOp::SetNamed(name, value) => host.set_request_header(name, Some(value)),
        });
        if ok {
            Action::Continue
        } else {
            self.internal_error(host)
        }
    }

    /// Counts an IdP-mode verdict; a refusal goes through [`Self::refuse`].
    fn idp_verdict<H: Host>(
        &mut self,
        host: &mut H,
        mode: Mode,
        verdict: Option<Result<(), &'static str>>,
    ) -> Option<Action> {
        match verdict {
            Some(Ok(())) => {
                host.increment(Counter::IdpAccepted);
                None
            }
            Some(Err(why)) => {
                host.increment(Counter::IdpRejected);
                self.refuse(
                    host,
                    Feature::Idp,
                    mode,
                    Reason::IdpInvalidRequest(why),
                    None,
                )
            }
            None => None,
        }
    }

    /// Acts on a callback verdict: pin (header ops), or refuse. `Some` is
    /// the answer to return at once.
    fn on_callback<H: Host>(
        &mut self,
        host: &mut H,
        lf: &LoginFlowConfig,
        verdict: CallbackVerdict,
        ops: &mut Vec<HeaderOp>,
    ) -> Option<Action> {
        match verdict {
            CallbackVerdict::Pin { claims, clear } => {
                ops.extend(pin_ops(lf, &claims.node));
                self.clear_cookies.push(clear);
                self.pinned_flow = Some(claims);
                None
            }
            CallbackVerdict::Refuse { problem, clear } => self.refuse(
                host,
                Feature::LoginFlow,
                lf.mode,
                Reason::LoginFlow(problem),
                clear,
            ),
            CallbackVerdict::NotCallback => None,
        }
    }

    /// Request headers: forwarded, IdP mode, return-to, login flow.
    pub fn on_request_headers<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Action {
        let action = self.request_headers(host, end_of_stream);
        self.store_decisions(host);
        action
    }

    fn request_headers<H: Host>(&mut self, host: &mut H, end_of_stream: bool) -> Action {
        let config = self.config.clone();
        if config.forwarded.is_none() && config.login_flow.is_none() && config.idp.is_none() {
            return Action::Continue;
        }
        let Some(buf) = host.request_header_map() else {
            return self.internal_error(host);
        };
        let Some(headers) = header_map::decode(&buf) else {
            return self.internal_error(host);
        };
        self.request_id = Some(RequestId::new(request_value(&headers, "x-request-id")));
        let mut ops = Vec::new();
        if let Some(cfg) = &config.forwarded {
            let decision = forwarded::decide(cfg, &headers, &mut HostConnection(host));
            Self::count(host, decision.counters);
            self.peer_problem = diagnostics::peer_problem(decision.counters);
            match decision.verdict {
                Verdict::Forward(o) => ops = o,
                Verdict::Reject(reason) => return self.answer(host, reason, None),
            }
            self.external = decision.external;
        }
        if let Some(idp_cfg) = &config.idp {
            let path = request_value(&headers, ":path");
            let content_type = request_value(&headers, "content-type");
            let verdict = if request_value(&headers, ":method") != "POST" {
                idp::check_authorization_request(idp_cfg, path)
            } else if end_of_stream {
                idp::check_authorization_post(idp_cfg, path, content_type, b"")
            } else {
                if idp::is_authorization_path(idp_cfg, path) {
                    // Checked once the form body is here.
                    self.idp_post = Some((path.to_string(), content_type.to_string()));
                }
                None
            };
            if let Some(action) = self.idp_verdict(host, idp_cfg.mode, verdict) {
                return action;
            }
        }
        if let (Some(rt), Some(ext)) = (
            config.redirects.as_ref().and_then(|r| r.return_to.as_ref()),
            &self.external,
        ) {
            let path = request_value(&headers, ":path");
            if let Err(problem) = redirects::check_return_to(rt, path, ext) {
                let reason = Reason::ReturnTo(problem);
                host.increment(reason.counter());
                if let Some(action) = self.refuse(host, Feature::Redirects, rt.mode, reason, None) {
                    return action;
                }
            }
        }
        let Some(lf) = &config.login_flow else {
            return self.apply(host, &ops);
        };
        // Only oidc-edge may choose the node: drop any client-sent value first.
        if headers.iter().any(|(n, _)| *n == lf.session_header) {
            ops.push(HeaderOp::RemoveNamed(lf.session_header.clone()));
            host.increment(Counter::FlowSessionHeaderStripped);
        }
        let Some(now) = host.now_ms().filter(|t| *t > 0) else {
            // No clock, no expiry: nothing may be issued or believed.
            return self.internal_error(host);
        };
        self.now = now;
        self.origin = match &self.external {
            Some(ext) => ext.serialize(),
            None => format!(
                "//{}",
                request_value(&headers, ":authority").to_ascii_lowercase()
            ),
        };
        let origin = self.origin.clone();
        let path = request_value(&headers, ":path");
        match login_flow::classify(lf, request_value(&headers, ":method"), path) {
            RequestKind::Callback { state } => {
                let (verdict, counters) =
                    login_flow::check_callback(lf, state.as_deref(), &headers, now, &origin);
                Self::count(host, counters);
                if let Some(action) = self.on_callback(host, lf, verdict, &mut ops) {
                    return action;
                }
            }
            RequestKind::FormPostCallback if !end_of_stream => {
                // Route now (Envoy routes on headers), check once the body is here.
                let (node, counters) = login_flow::form_post_node(lf, &headers, now, &origin);
                Self::count(host, counters);
                if let Some(node) = &node {
                    ops.extend(pin_ops(lf, node));
                }
                let cookies = headers
                    .iter()
                    .filter(|(n, _)| *n == "cookie")
                    .map(|(_, v)| v.to_vec())
                    .collect();
                self.form_post = Some(FormPost {
                    cookies,
                    routed_to: node,
                });
            }
            RequestKind::FormPostCallback => {
                let (verdict, counters) =
                    login_flow::check_callback(lf, None, &headers, now, &origin);
                Self::count(host, counters);
                if let Some(action) = self.on_callback(host, lf, verdict, &mut ops) {
                    return action;
                }
            }
            RequestKind::Other => match login_flow::session_node(lf, &headers, now, &origin) {
                Some(Ok(node)) => {
                    ops.extend(pin_ops(lf, &node));
                    self.session_pinned = true;
                    // Counted as pinned once the response shows where it went.
                    self.session_node = Some(node);
                }
                Some(Err(name)) => {
                    self.clear_cookies.push(name);
                    host.increment(Counter::SessionInvalid);
                }
                None => {}
            },
        }
        // Any response may send the browser to the IdP (a callback's too:
        // the app may start a new login, e.g. with prompt=none).
        self.memo = Some(login_flow::memo(lf, path, &headers, self.external.as_ref()));
        self.apply(host, &ops)
    }

    /// Request body: the form of a POST authorization request (IdP mode)
    /// or of a form-post callback, buffered until complete, then checked.
    pub fn on_request_body<H: Host>(
        &mut self,
        host: &mut H,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        let action = self.request_body(host, body_size, end_of_stream);
        self.store_decisions(host);
        action
    }

    fn request_body<H: Host>(
        &mut self,
        host: &mut H,
        body_size: usize,
        end_of_stream: bool,
    ) -> Action {
        if self.answered {
            return Action::Pause;
        }
        if self.idp_post.is_some() {
            return self.idp_post_body(host, body_size, end_of_stream);
        }
        if self.form_post.is_none() {
            return Action::Continue;
        }
        let config = self.config.clone();
        let Some(lf) = &config.login_flow else {
            return Action::Continue;
        };
        if body_size > lf.max_callback_body {
            self.form_post = None;
            host.increment(Counter::FlowBodyTooLarge);
            return self.answer(host, Reason::CallbackBodyTooLarge, None);
        }
        if !end_of_stream {
            return Action::Pause; // Envoy buffers until the whole body is here
        }
        let Some(fp) = self.form_post.take() else {
            return Action::Continue;
        };
        let Some(body) = host.request_body(body_size) else {
            return self.internal_error(host);
        };
        let headers: Vec<(&str, &[u8])> = fp
            .cookies
            .iter()
            .map(|c| ("cookie", c.as_slice()))
            .collect();
        let (verdict, counters) = login_flow::check_form_post(
            lf,
            &body,
            fp.routed_to.as_deref(),
            &headers,
            self.now,
            &self.origin,
        );
        Self::count(host, counters);
        // The request was routed with its headers; of the verdict only the
        // refusal and the bookkeeping matter now, not its header changes.
        let mut routed_already = Vec::new();
        match self.on_callback(host, lf, verdict, &mut routed_already) {
            Some(action) => action,
            None => Action::Continue,
        }
    }

    fn idp_post_body<H: Host>(&mut self, host: &mut H, body_size: usize, end: bool) -> Action {
        let config = self.config.clone();
        let Some(idp_cfg) = &config.idp else {
            return Action::Continue;
        };
        let too_big = body_size > idp::MAX_POST_BODY;
        if !end && !too_big {
            return Action::Pause; // Envoy buffers until the whole body is here
        }
        let Some((path, content_type)) = self.idp_post.take() else {
            return Action::Continue;
        };
        let verdict = if too_big {
            Some(Err(idp::TOO_LARGE))
        } else {
            let Some(body) = host.request_body(body_size) else {
                return self.internal_error(host);
            };
            idp::check_authorization_post(idp_cfg, &path, &content_type, &body)
        };
        self.idp_verdict(host, idp_cfg.mode, verdict)
            .unwrap_or(Action::Continue)
    }

    /// Turns the response into a redirect to a local path (the body,
    /// Envoy's short 503 text, stays).
    fn redirect_response<H: Host>(host: &mut H, location: &str) {
        let location = login_flow::safe_local_path(location);
        host.set_response_header(":status", Some("302"));
        host.set_response_header("location", Some(location));
        host.set_response_header("cache-control", Some("no-store"));
    }

    /// Whether Envoy could not get a pinned request to its node: `lost`
    /// decides from the status and the response code details.
    fn pinned_node_unreachable<H: Host>(
        host: &mut H,
        status: Option<&str>,
        lost: fn(Option<&str>, Option<&[u8]>) -> bool,
    ) -> bool {
        if status != Some("503") {
            return false;
        }
        let details = host.property(Property::ResponseCodeDetails);
        host.log(
            LogLevel::Debug,
            &format!(
                "pinned request got 503: {}",
                details.as_deref().map_or_else(
                    || "(none)".to_string(),
                    |d| crate::text::quoted(&String::from_utf8_lossy(d))
                ),
            ),
        );
        lost(status, details.as_deref())
    }

    /// The login-flow part of the response phase: strip the node address
    /// Envoy echoes, clear used cookies, recover a pinned request whose node
    /// is gone, set the session cookie. `true` ends the response phase (the
    /// response is Envoy's own: there is nothing of the app's to check).
    fn login_flow_response<H: Host>(
        &mut self,
        host: &mut H,
        lf: &LoginFlowConfig,
        status: Option<&str>,
    ) -> bool {
        // Envoy's stateful_session echoes the chosen node's address here
        // when it chose another node than the request named; an app that
        // reflects request headers would echo it too. Removed always: the
        // node address never reaches the browser.
        host.set_response_header(&lf.session_header, None);
        let pinned_to = match (&self.pinned_flow, &self.session_node) {
            (Some(claims), _) => Some(claims.node.as_str()),
            (None, Some(node)) => Some(node.as_str()),
            (None, None) => None,
        };
        let upstream = pinned_to.and_then(|_| host.property(Property::UpstreamAddress));
        // Kept for the redirect checks below: read once per response.
        if pinned_to.is_some() {
            self.upstream = Some(upstream.clone());
        }
        let routed = pinned_to.map(|node| diagnostics::routed(node, upstream.as_deref()));
        for name in std::mem::take(&mut self.clear_cookies) {
            host.add_response_header("set-cookie", &cookie::clear_cookie(&name, lf.secure));
        }
        if let Some(claims) = self.pinned_flow.take() {
            if Self::pinned_node_unreachable(host, status, callback_lost) {
                match login_flow::on_node_gone(lf, &claims) {
                    Recovery::Restart {
                        location,
                        set_cookie,
                    } => {
                        Self::redirect_response(host, &location);
                        host.add_response_header("set-cookie", &set_cookie);
                        host.increment(Counter::FlowRecovered);
                    }
                    Recovery::GiveUp => {
                        host.increment(Counter::FlowNodeGone);
                        host.set_response_header("x-oidc-edge-reason", Some("flow_node_gone"));
                    }
                }
                return true;
            }
            self.check_routed(
                host,
                lf,
                "a login callback",
                &claims.node,
                true,
                routed,
                upstream.as_deref(),
            );
            let accepted = status.is_some_and(|s| s.starts_with('2') || s.starts_with('3'));
            if lf.affinity == Affinity::Session && accepted {
                let cookie = login_flow::session_cookie(lf, &claims.node, self.now, &self.origin);
                host.add_response_header("set-cookie", &cookie);
                host.increment(Counter::SessionIssued);
            }
            return false;
        }
        if self.session_pinned && Self::pinned_node_unreachable(host, status, node_unreachable) {
            // The session's node is gone, and its in-memory session with it:
            // forget the affinity and let the browser try again anywhere.
            let name = login_flow::session_cookie_name(lf);
            host.add_response_header("set-cookie", &cookie::clear_cookie(&name, lf.secure));
            host.increment(Counter::SessionNodeGone);
            if let Some(memo) = self.memo.take() {
                Self::redirect_response(host, &memo.path_and_query);
            }
            return true;
        }
        if let Some(node) = self.session_node.take() {
            self.check_routed(
                host,
                lf,
                "a request with a session cookie",
                &node,
                false,
                routed,
                upstream.as_deref(),
            );
        }
        false
    }

    /// The request id for log lines.
    fn request_id(&self) -> &str {
        self.request_id.as_ref().map_or("none", RequestId::as_str)
    }

    /// Counts a pinned request as pinned only if its node answered (`routed`:
    /// from `upstream.address`, read only on pinned requests); another node
    /// answering means Envoy ignored the session header: counted, and
    /// warned of once per worker. `flow`: a login callback (else a session).
    #[allow(clippy::too_many_arguments)]
    fn check_routed<H: Host>(
        &mut self,
        host: &mut H,
        lf: &LoginFlowConfig,
        what: &str,
        node: &str,
        flow: bool,
        routed: Option<Routed>,
        upstream: Option<&[u8]>,
    ) {
        match routed.unwrap_or(Routed::Nowhere) {
            Routed::ToPinnedNode => host.increment(if flow {
                Counter::FlowPinned
            } else {
                Counter::SessionPinned
            }),
            Routed::Elsewhere => {
                host.increment(if flow {
                    Counter::FlowPinIgnored
                } else {
                    Counter::SessionPinIgnored
                });
                if diagnostics::first_pin_ignored_on_this_worker() {
                    let answered_by = String::from_utf8_lossy(upstream.unwrap_or(b""));
                    host.log(
                        LogLevel::Warn,
                        &diagnostics::pin_ignored_message(
                            what,
                            &lf.session_header,
                            node,
                            &answered_by,
                            self.request_id(),
                        ),
                    );
                }
            }
            Routed::Nowhere => {}
        }
    }

    /// Stores the request's notable decisions where Envoy's access log
    /// prints them, at the end of each phase and only when they changed:
    /// the access log runs after the last phase, and a request with nothing
    /// to tell (the usual case) costs no host call. Written as the phases
    /// end rather than once at the end of the stream so that Envoy does not
    /// enter the VM again for every request (`proxy_on_log` is not exported;
    /// see `MODULE_EXPORTS` in build.sh), and so that a stream reset before
    /// its response still logs what its request phase decided.
    fn store_decisions<H: Host>(&mut self, host: &mut H) {
        let notable = diagnostics::notable(host.touched());
        if (notable, self.reason) == self.stored {
            return;
        }
        self.stored = (notable, self.reason);
        if let Some(value) = diagnostics::access_log_value(notable, self.reason) {
            if !host.set_decisions(&value) {
                host.log(LogLevel::Debug, "could not store the access-log decisions");
            }
        }
    }

    /// Response headers: login flow, then the redirect checks, then a new
    /// flow if the app sends the browser to the IdP.
    pub fn on_response_headers<H: Host>(&mut self, host: &mut H) -> Action {
        let action = self.response_headers(host);
        self.store_decisions(host);
        action
    }

    fn response_headers<H: Host>(&mut self, host: &mut H) -> Action {
        if self.answered {
            return Action::Continue;
        }
        let config = self.config.clone();
        if config.login_flow.is_none() && config.redirects.is_none() {
            return Action::Continue;
        }
        // Read once: every decision below is about the app's status.
        let status = response_header(host, ":status");
        if let Some(lf) = &config.login_flow {
            if self.login_flow_response(host, lf, status.as_deref()) {
                return Action::Continue;
            }
        }
        if !status.is_some_and(|s| s.starts_with('3')) {
            return Action::Continue;
        }
        let Some(mut location) = host
            .response_header("location")
            .map(crate::http::uri::location_from_bytes)
        else {
            return Action::Continue;
        };
        let node = match self.upstream.take() {
            Some(read) => read,
            None => host.property(Property::UpstreamAddress),
        }
        .and_then(|b| String::from_utf8(b).ok());
        if let Some(rc) = &config.redirects {
            let (verdict, counters) =
                redirects::check_authorization_redirect(rc, &location, self.external.as_ref());
            Self::count(host, counters);
            match verdict {
                RedirectUriVerdict::Fixed {
                    location: fixed,
                    sent,
                    registered,
                } => {
                    host.log(
                        LogLevel::Warn,
                        &format!(
                            "redirect_uri_mode fix: the app redirected to the IdP with redirect_uri={sent_q}; \
                             sent the registered {registered_q} instead. {} (request {}){}",
                            redirects::FIX_CAVEAT,
                            self.request_id(),
                            self.peer_problem.map(|p| format!(" Cause: {p}.")).unwrap_or_default(),
                            sent_q = crate::text::quoted(&sent),
                            registered_q = crate::text::quoted(&registered),
                        ),
                    );
                    host.set_response_header("location", Some(&fixed));
                    location = fixed;
                }
                RedirectUriVerdict::Mismatch { sent, why } => {
                    let line = match self.peer_problem {
                        Some(cause) => format!(
                            "the app redirected to the IdP with redirect_uri={sent_q}: {why}; \
                             registered: {} (request {}). Cause: {cause}",
                            crate::text::quoted_list(&rc.registered()),
                            self.request_id(),
                            sent_q = crate::text::quoted(&sent),
                        ),
                        None => format!(
                            "the app redirected to the IdP with redirect_uri={sent_q}: {why}; \
                             registered: {} (request {})",
                            crate::text::quoted_list(&rc.registered()),
                            self.request_id(),
                            sent_q = crate::text::quoted(&sent),
                        ),
                    };
                    host.log(LogLevel::Warn, &line);
                    let mode = match rc.redirect_uri_mode {
                        RedirectUriMode::Report => Mode::Report,
                        RedirectUriMode::Enforce | RedirectUriMode::Fix => Mode::Enforce,
                    };
                    if let Some(action) = self.refuse(
                        host,
                        Feature::Redirects,
                        mode,
                        Reason::RedirectUriMismatch,
                        None,
                    ) {
                        return action;
                    }
                }
                RedirectUriVerdict::Registered | RedirectUriVerdict::NotAuthorization => {}
            }
            if let Some(ext) = &self.external {
                if let Some(moved) =
                    redirects::rewrite_location(rc, &location, node.as_deref(), ext)
                {
                    host.set_response_header("location", Some(&moved));
                    host.increment(Counter::LocationRewritten);
                    location = moved;
                }
            }
        }
        if let (Some(lf), Some(memo)) = (&config.login_flow, self.memo.take()) {
            let (cookies, counters) = login_flow::on_response(
                lf,
                &location,
                node.as_deref(),
                &memo,
                self.now,
                &self.origin,
            );
            Self::count(host, counters);
            match cookies {
                Ok(cookies) => {
                    for c in cookies {
                        if !host.add_response_header("set-cookie", &c) {
                            host.increment(Counter::InternalError);
                        }
                    }
                }
                Err(problem) => {
                    if let Some(action) = self.refuse(
                        host,
                        Feature::LoginFlow,
                        lf.mode,
                        Reason::LoginFlow(problem),
                        None,
                    ) {
                        return action;
                    }
                }
            }
        }
        Action::Continue
    }
}
