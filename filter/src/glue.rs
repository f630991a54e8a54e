//! The proxy-wasm glue: gathers inputs from Envoy, hands them to the logic
//! modules, applies their decisions. Nothing here decides anything.
//!
//! Host calls are made through `proxy_wasm::hostcalls` with every error
//! handled: the SDK's `HttpContext` helpers `unwrap()` internally (for
//! example on a header value that is not UTF-8, which any client can send),
//! and a panic in Envoy's V8 turns this worker's filter into permanent 503s.

use crate::authority::Origin;
use crate::config::Config;
use crate::config::{Affinity, LoginFlowConfig, Mode};
use crate::cookie;
use crate::decision::{HeaderOp, Reason, Verdict};
use crate::forwarded::{self, Connection};
use crate::header_map;
use crate::login_flow::{self, CallbackVerdict, Recovery, RequestKind};
use crate::metrics::{Counter, CounterSet, Metrics};
use crate::node::parse_ip_with_port;
use crate::redirects::{self, RedirectUriMode, RedirectUriVerdict};
use crate::state_cookie::FlowClaims;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
use std::net::IpAddr;
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { shared: None }) });
}}

fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

/// Configuration and metric ids, shared by every request of this plugin.
struct Shared {
    config: Config,
    metric_ids: [Option<u32>; Counter::ALL.len()],
}

impl Metrics for Shared {
    fn increment(&self, c: Counter) {
        if let Some(Some(id)) = self.metric_ids.get(c as usize) {
            let _ = hostcalls::increment_metric(*id, 1);
        }
    }
}

struct Root {
    shared: Option<Rc<Shared>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(b) => b.unwrap_or_default(),
            Err(status) => {
                log(
                    LogLevel::Critical,
                    &format!("cannot read the plugin configuration: {status:?}"),
                );
                return false;
            }
        };
        let config = match Config::parse_with_env(&bytes, &|k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(e) => {
                log(LogLevel::Critical, &e.to_string());
                return false;
            }
        };
        for w in config.warnings() {
            log(LogLevel::Warn, &w);
        }
        let mut metric_ids = [None; Counter::ALL.len()];
        for (slot, c) in metric_ids.iter_mut().zip(Counter::ALL) {
            *slot = hostcalls::define_metric(MetricType::Counter, c.name()).ok();
        }
        self.shared = Some(Rc::new(Shared { config, metric_ids }));
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.clone()?;
        Some(Box::new(Request {
            shared,
            clear_cookies: Vec::new(),
            memo: None,
            pinned_flow: None,
            session_pinned: false,
            form_post: None,
            idp_post: None,
            external: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    shared: Rc<Shared>,
    /// Cookies to clear on the response (a used flow cookie, a bad session cookie).
    clear_cookies: Vec<String>,
    /// What the response phase needs to start a login flow.
    memo: Option<login_flow::RequestMemo>,
    /// The flow a callback was pinned by: for failover recovery and the
    /// session cookie.
    pinned_flow: Option<FlowClaims>,
    /// The request was pinned by its session cookie.
    session_pinned: bool,
    /// A form-post callback waits for its body: the `Cookie` lines, and the
    /// node the request was routed to before the body arrived.
    form_post: Option<FormPost>,
    /// A POST authorization request (IdP mode) waits for its body: its
    /// `:path` and `content-type`.
    idp_post: Option<(String, String)>,
    /// The external origin the browser addressed (from the forwarded decision).
    external: Option<Origin>,
}

/// What a form-post callback carries from its headers to its body.
struct FormPost {
    cookies: Vec<Vec<u8>>,
    routed_to: Option<String>,
}

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request headers in the ABI's serialized form, in one host call. The
/// SDK's `get_map_bytes` would decode them into a `String` and a `Vec` per
/// header; [`header_map::decode`] reads the buffer in place instead.
fn request_header_map() -> Option<Box<[u8]>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to `size` bytes it allocated through
    // the SDK's `proxy_on_memory_allocate` (a `Box<[u8]>` of exactly `size`
    // bytes), ownership of which passes to us; status 0 is Ok.
    unsafe {
        if proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size) != 0
        {
            return None;
        }
        if data.is_null() {
            return Some(Box::default());
        }
        Some(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            data, size,
        )))
    }
}

impl Context for Request {}

/// Connection facts read from Envoy properties, only when asked.
struct HostConnection;

impl Connection for HostConnection {
    fn source_address(&mut self) -> Option<IpAddr> {
        let bytes = hostcalls::get_property(vec!["source", "address"]).ok()??;
        parse_ip_with_port(std::str::from_utf8(&bytes).ok()?)
    }

    fn is_tls(&mut self) -> bool {
        matches!(hostcalls::get_property(vec!["connection", "tls_version"]), Ok(Some(v)) if !v.is_empty())
    }

    fn alert(&mut self, message: &str) {
        log(LogLevel::Error, message);
    }
}

impl Request {
    fn count(&self, counters: CounterSet) {
        for c in counters.iter() {
            self.shared.increment(c);
        }
    }

    fn reject(&self, reason: Reason) -> Action {
        self.reject_clearing(reason, None)
    }

    /// Counts an IdP-mode verdict; in enforce mode a refusal is the answer.
    fn idp_verdict(
        &self,
        idp: &crate::idp::IdpConfig,
        verdict: Option<Result<(), &'static str>>,
    ) -> Option<Action> {
        match verdict {
            Some(Ok(())) => self.shared.increment(Counter::IdpAccepted),
            Some(Err(why)) => {
                self.shared.increment(Counter::IdpRejected);
                if idp.mode == Mode::Enforce {
                    return Some(self.reject(Reason::IdpInvalidRequest(why)));
                }
                log(
                    LogLevel::Info,
                    &format!("report mode: would refuse an authorization request: {why}"),
                );
            }
            None => {}
        }
        None
    }

    /// The body of a POST authorization request: buffered (the IdP gets
    /// nothing of it before the check), then checked with the query.
    fn idp_post_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let shared = self.shared.clone();
        let Some(idp) = &shared.config.idp else {
            return Action::Continue;
        };
        let too_big = body_size > crate::idp::MAX_POST_BODY;
        if !end_of_stream && !too_big {
            return Action::Pause; // Envoy buffers until the whole body is here
        }
        let Some((path, content_type)) = self.idp_post.take() else {
            return Action::Continue;
        };
        let verdict = if too_big {
            Some(Err(crate::idp::TOO_LARGE))
        } else {
            let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default();
            crate::idp::check_authorization_post(idp, &path, &content_type, &body)
        };
        self.idp_verdict(idp, verdict).unwrap_or(Action::Continue)
    }

    fn reject_clearing(&self, reason: Reason, clear: Option<String>) -> Action {
        log(
            LogLevel::Debug,
            &format!("answered {}: {}", reason.status(), reason.code()),
        );
        let body = reason.body();
        let clear = match (clear, &self.shared.config.login_flow) {
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
        if hostcalls::send_http_response(reason.status(), headers, Some(body.as_bytes())).is_err() {
            log(LogLevel::Error, "could not send a local response");
        }
        Action::Pause
    }

    fn apply(&self, ops: &[HeaderOp]) -> bool {
        let map = MapType::HttpRequestHeaders;
        ops.iter().all(|op| {
            let r = match op {
                HeaderOp::Set(name, value) => hostcalls::set_map_value(map, name, Some(value)),
                HeaderOp::Remove(name) => hostcalls::set_map_value(map, name, None),
                HeaderOp::RemoveNamed(name) => hostcalls::set_map_value(map, name, None),
                HeaderOp::SetNamed(name, value) => hostcalls::set_map_value(map, name, Some(value)),
            };
            r.is_ok()
        })
    }
}

/// Milliseconds since the Unix epoch, from the host's clock.
fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64)
}

fn response_header(name: &str) -> Option<String> {
    let v = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name).ok()??;
    String::from_utf8(v).ok()
}

fn request_value<'h>(headers: &'h [(&'h str, &'h [u8])], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .unwrap_or("")
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

impl Request {
    /// Acts on a callback verdict: pin (a header op), or refuse. `Err` is the
    /// action to return at once.
    fn on_callback(
        &mut self,
        lf: &LoginFlowConfig,
        verdict: CallbackVerdict,
        ops: &mut Vec<HeaderOp>,
    ) -> Result<(), Action> {
        match verdict {
            CallbackVerdict::Pin { claims, clear } => {
                ops.extend(pin_ops(lf, &claims.node));
                self.clear_cookies.push(clear);
                self.pinned_flow = Some(claims);
            }
            CallbackVerdict::Refuse { problem, clear } => {
                if lf.mode == Mode::Enforce {
                    return Err(self.reject_clearing(Reason::LoginFlow(problem), clear));
                }
                log(
                    LogLevel::Info,
                    &format!("report mode: would refuse a callback: {}", problem.code()),
                );
                self.clear_cookies.extend(clear);
            }
            CallbackVerdict::NotCallback => {}
        }
        Ok(())
    }

    fn apply_or_fail(&self, ops: &[HeaderOp]) -> Action {
        if self.apply(ops) {
            Action::Continue
        } else {
            self.shared.increment(Counter::InternalError);
            self.reject(Reason::Internal)
        }
    }

    /// The pinned node could not answer: a 503 that Envoy made itself
    /// (`response.code_details` is not `via_upstream`): no such healthy host
    /// (stateful_session, strict) or the connection to it failed.
    fn pinned_node_gone() -> bool {
        if response_header(":status").as_deref() != Some("503") {
            return false;
        }
        let details = hostcalls::get_property(vec!["response", "code_details"])
            .ok()
            .flatten();
        log(
            LogLevel::Debug,
            &format!(
                "pinned request got 503: {:?}",
                details.as_deref().map(String::from_utf8_lossy)
            ),
        );
        details.is_some_and(|d| d != b"via_upstream")
    }

    /// The login-flow part of the response phase: strip the node address
    /// Envoy echoes, clear used cookies, recover a pinned request whose node
    /// is gone, set the session cookie. `Some` ends the response phase.
    fn login_flow_response(&mut self, lf: &LoginFlowConfig) -> Option<Action> {
        let map = MapType::HttpResponseHeaders;
        // Envoy's stateful_session echoes the chosen node's address here.
        let _ = hostcalls::set_map_value(map, &lf.session_header, None);
        for name in self.clear_cookies.drain(..) {
            let _ = hostcalls::add_map_value(
                map,
                "set-cookie",
                &cookie::clear_cookie(&name, lf.secure),
            );
        }
        if let Some(claims) = self.pinned_flow.take() {
            if Self::pinned_node_gone() {
                match login_flow::on_node_gone(lf, &claims) {
                    Recovery::Restart {
                        location,
                        set_cookie,
                    } => {
                        Self::redirect_response(&location);
                        let _ = hostcalls::add_map_value(map, "set-cookie", &set_cookie);
                        self.shared.increment(Counter::FlowRecovered);
                    }
                    Recovery::GiveUp => {
                        self.shared.increment(Counter::FlowNodeGone);
                        let _ = hostcalls::set_map_value(
                            map,
                            "x-oidc-edge-reason",
                            Some("flow_node_gone"),
                        );
                    }
                }
            } else if lf.affinity == Affinity::Session {
                let cookie = login_flow::session_cookie(lf, &claims.node, now_ms());
                let _ = hostcalls::add_map_value(map, "set-cookie", &cookie);
                self.shared.increment(Counter::SessionIssued);
            }
            return Some(Action::Continue);
        }
        if self.session_pinned && Self::pinned_node_gone() {
            // The session's node is gone, and its in-memory session with it:
            // forget the affinity and let the browser try again anywhere.
            let name = login_flow::session_cookie_name(lf);
            let _ = hostcalls::add_map_value(
                map,
                "set-cookie",
                &cookie::clear_cookie(&name, lf.secure),
            );
            self.shared.increment(Counter::SessionNodeGone);
            if let Some(memo) = &self.memo {
                Self::redirect_response(&memo.path_and_query);
            }
            return Some(Action::Continue);
        }
        None
    }

    /// Turns the response into a redirect (the body, Envoy's short 503 text, stays).
    fn redirect_response(location: &str) {
        let map = MapType::HttpResponseHeaders;
        let _ = hostcalls::set_map_value(map, ":status", Some("302"));
        let _ = hostcalls::set_map_value(map, "location", Some(location));
        let _ = hostcalls::set_map_value(map, "cache-control", Some("no-store"));
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let shared = self.shared.clone();
        let config = &shared.config;
        if config.forwarded.is_none() && config.login_flow.is_none() && config.idp.is_none() {
            return Action::Continue;
        }
        let Some(buf) = request_header_map() else {
            self.shared.increment(Counter::InternalError);
            return self.reject(Reason::Internal);
        };
        let Some(headers) = header_map::decode(&buf) else {
            self.shared.increment(Counter::InternalError);
            return self.reject(Reason::Internal);
        };
        let mut ops = Vec::new();
        if let Some(cfg) = &config.forwarded {
            let decision = forwarded::decide(cfg, &headers, &mut HostConnection);
            self.count(decision.counters);
            match decision.verdict {
                Verdict::Forward(o) => ops = o,
                Verdict::Reject(reason) => return self.reject(reason),
            }
            self.external = decision.external;
        }
        if let Some(idp) = &config.idp {
            let path = request_value(&headers, ":path");
            let content_type = request_value(&headers, "content-type");
            let verdict = if request_value(&headers, ":method") != "POST" {
                crate::idp::check_authorization_request(idp, path)
            } else if end_of_stream {
                crate::idp::check_authorization_post(idp, path, content_type, b"")
            } else {
                if crate::idp::is_authorization_path(idp, path) {
                    // Checked once the form body is here.
                    self.idp_post = Some((path.to_string(), content_type.to_string()));
                }
                None
            };
            if let Some(action) = self.idp_verdict(idp, verdict) {
                return action;
            }
        }
        if let (Some(rt), Some(ext)) = (
            config.redirects.as_ref().and_then(|r| r.return_to.as_ref()),
            &self.external,
        ) {
            let path = request_value(&headers, ":path");
            if redirects::check_return_to(rt, path, &ext.authority.host).is_err() {
                self.shared.increment(Counter::ReturnToRejected);
                if rt.mode == Mode::Enforce {
                    return self.reject(Reason::ReturnToOffSite);
                }
                self.shared.increment(Counter::RedirectsReportOnly);
                log(
                    LogLevel::Info,
                    &format!("report mode: would refuse return-to target in {path}"),
                );
            }
        }
        let Some(lf) = &config.login_flow else {
            return self.apply_or_fail(&ops);
        };
        // Only oidc-edge may choose the node: drop any client-sent value first.
        if headers.iter().any(|(n, _)| *n == lf.session_header) {
            ops.push(HeaderOp::RemoveNamed(lf.session_header.clone()));
            self.shared.increment(Counter::FlowSessionHeaderStripped);
        }
        let path = request_value(&headers, ":path");
        let now = now_ms();
        match login_flow::classify(lf, request_value(&headers, ":method"), path) {
            RequestKind::Callback { state } => {
                let (verdict, counters) =
                    login_flow::check_callback(lf, state.as_deref(), &headers, now);
                self.count(counters);
                if let Err(action) = self.on_callback(lf, verdict, &mut ops) {
                    return action;
                }
            }
            RequestKind::FormPostCallback if !end_of_stream => {
                // Route now (Envoy routes on headers), check once the body is here.
                let (node, counters) = login_flow::form_post_node(lf, &headers, now);
                self.count(counters);
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
                let (verdict, counters) = login_flow::check_callback(lf, None, &headers, now);
                self.count(counters);
                if let Err(action) = self.on_callback(lf, verdict, &mut ops) {
                    return action;
                }
            }
            RequestKind::Other => {
                match login_flow::session_node(lf, &headers, now) {
                    Some(Ok(node)) => {
                        ops.extend(pin_ops(lf, &node));
                        self.session_pinned = true;
                        self.shared.increment(Counter::SessionPinned);
                    }
                    Some(Err(name)) => {
                        self.clear_cookies.push(name);
                        self.shared.increment(Counter::SessionInvalid);
                    }
                    None => {}
                }
                self.memo = Some(login_flow::memo(lf, path, &headers));
            }
        }
        self.apply_or_fail(&ops)
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.idp_post.is_some() {
            return self.idp_post_body(body_size, end_of_stream);
        }
        if self.form_post.is_none() {
            return Action::Continue;
        }
        let shared = self.shared.clone();
        let Some(lf) = &shared.config.login_flow else {
            return Action::Continue;
        };
        if body_size > lf.max_callback_body {
            self.form_post = None;
            self.shared.increment(Counter::FlowBodyTooLarge);
            return self.reject(Reason::CallbackBodyTooLarge);
        }
        if !end_of_stream {
            return Action::Pause; // Envoy buffers until the whole body is here
        }
        let Some(fp) = self.form_post.take() else {
            return Action::Continue;
        };
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let headers: Vec<(&str, &[u8])> = fp
            .cookies
            .iter()
            .map(|c| ("cookie", c.as_slice()))
            .collect();
        let (verdict, counters) =
            login_flow::check_form_post(lf, &body, fp.routed_to.as_deref(), &headers, now_ms());
        self.count(counters);
        // The request was routed with its headers; of the verdict only the
        // refusal and the bookkeeping matter now, not its header changes.
        let mut routed_already = Vec::new();
        match self.on_callback(lf, verdict, &mut routed_already) {
            Ok(()) => Action::Continue,
            Err(action) => action,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let shared = self.shared.clone();
        let config = &shared.config;
        if config.login_flow.is_none() && config.redirects.is_none() {
            return Action::Continue;
        }
        let map = MapType::HttpResponseHeaders;
        if let Some(lf) = &config.login_flow {
            if let Some(action) = self.login_flow_response(lf) {
                return action;
            }
        }
        if !response_header(":status").is_some_and(|s| s.starts_with('3')) {
            return Action::Continue;
        }
        let Some(mut location) = response_header("location") else {
            return Action::Continue;
        };
        let node = hostcalls::get_property(vec!["upstream", "address"])
            .ok()
            .flatten()
            .and_then(|b| String::from_utf8(b).ok());
        if let Some(rc) = &config.redirects {
            let (verdict, counters) = redirects::check_authorization_redirect(rc, &location);
            self.count(counters);
            match verdict {
                RedirectUriVerdict::Fixed(fixed) => {
                    let _ = hostcalls::set_map_value(map, "location", Some(&fixed));
                    location = fixed;
                }
                RedirectUriVerdict::Mismatch { sent, why } => {
                    log(
                        LogLevel::Warn,
                        &format!(
                            "the app redirected to the IdP with redirect_uri={sent:?}: {why}; registered: {:?}",
                            rc.redirect_uris
                        ),
                    );
                    if rc.redirect_uri_mode == RedirectUriMode::Report {
                        self.shared.increment(Counter::RedirectsReportOnly);
                    } else {
                        return self.reject(Reason::RedirectUriMismatch);
                    }
                }
                RedirectUriVerdict::Registered | RedirectUriVerdict::NotAuthorization => {}
            }
            if let Some(ext) = &self.external {
                if let Some(moved) =
                    redirects::rewrite_location(rc, &location, node.as_deref(), ext)
                {
                    let _ = hostcalls::set_map_value(map, "location", Some(&moved));
                    self.shared.increment(Counter::LocationRewritten);
                    location = moved;
                }
            }
        }
        if let (Some(lf), Some(memo)) = (&config.login_flow, self.memo.take()) {
            let (cookies, counters) =
                login_flow::on_response(lf, &location, node.as_deref(), &memo, now_ms());
            self.count(counters);
            for c in cookies {
                if hostcalls::add_map_value(map, "set-cookie", &c).is_err() {
                    self.shared.increment(Counter::InternalError);
                }
            }
        }
        Action::Continue
    }
}
