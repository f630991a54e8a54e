//! The proxy-wasm glue: gathers inputs from Envoy, hands them to the logic
//! modules, applies their decisions. Nothing here decides anything.
//!
//! Host calls are made through `proxy_wasm::hostcalls` with every error
//! handled: the SDK's `HttpContext` helpers `unwrap()` internally (for
//! example on a header value that is not UTF-8, which any client can send),
//! and a panic in Envoy's V8 turns this worker's filter into permanent 503s.

use crate::config::Config;
use crate::decision::{HeaderOp, Reason, Verdict};
use crate::forwarded::{self, Connection};
use crate::header_map;
use crate::metrics::{Counter, CounterSet, Metrics};
use crate::node::parse_ip_with_port;
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
        let config = match Config::parse(&bytes) {
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
        Some(Box::new(Request { shared }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    shared: Rc<Shared>,
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
}

impl Request {
    fn count(&self, counters: CounterSet) {
        for c in counters.iter() {
            self.shared.increment(c);
        }
    }

    fn reject(&self, reason: Reason) -> Action {
        log(
            LogLevel::Debug,
            &format!("answered {}: {}", reason.status(), reason.code()),
        );
        let body = reason.body();
        let headers = vec![
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-store"),
            ("x-oidc-edge-reason", reason.code()),
        ];
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
            };
            r.is_ok()
        })
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(cfg) = &self.shared.config.forwarded else {
            return Action::Continue;
        };
        let Some(buf) = request_header_map() else {
            self.shared.increment(Counter::InternalError);
            return self.reject(Reason::Internal);
        };
        let Some(headers) = header_map::decode(&buf) else {
            self.shared.increment(Counter::InternalError);
            return self.reject(Reason::Internal);
        };
        let decision = forwarded::decide(cfg, &headers, &mut HostConnection);
        self.count(decision.counters);
        match decision.verdict {
            Verdict::Forward(ops) => {
                if self.apply(&ops) {
                    Action::Continue
                } else {
                    self.shared.increment(Counter::InternalError);
                    self.reject(Reason::Internal)
                }
            }
            Verdict::Reject(reason) => self.reject(reason),
        }
    }
}
