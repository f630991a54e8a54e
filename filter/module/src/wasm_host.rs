//! [`Host`] over proxy-wasm host calls, every error turned into `None` or
//! `false` for the exchange to act on.

use crate::header_map_call;
use crate::property_call;
use oidc_edge::diagnostics::DECISIONS_PROPERTY;
use oidc_edge::host::{Host, LogLevel, Property};
use oidc_edge::metrics::{Counter, CounterSet};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};
use std::rc::Rc;

/// The host of one request (or of the root context, without counters).
pub struct WasmHost {
    metric_ids: Option<Rc<[Option<u32>; Counter::ALL.len()]>>,
    /// The counters this request touched, for its access-log decisions.
    touched: CounterSet,
}

impl WasmHost {
    /// A request's host, bumping the counters defined at load.
    pub fn new(metric_ids: Rc<[Option<u32>; Counter::ALL.len()]>) -> WasmHost {
        WasmHost {
            metric_ids: Some(metric_ids),
            touched: CounterSet::default(),
        }
    }

    /// The root context's host, before counters exist.
    pub fn unmetered() -> WasmHost {
        WasmHost {
            metric_ids: None,
            touched: CounterSet::default(),
        }
    }

    /// The counters this request touched so far.
    pub fn touched(&self) -> CounterSet {
        self.touched
    }
}

impl Host for WasmHost {
    fn request_header_map(&mut self) -> Option<Box<[u8]>> {
        header_map_call::request_header_map()
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> bool {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value).is_ok()
    }

    fn request_body(&mut self, size: usize) -> Option<Vec<u8>> {
        match hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size) {
            Ok(b) => Some(b.unwrap_or_default()),
            Err(_) => None,
        }
    }

    fn response_header(&mut self, name: &str) -> Option<Vec<u8>> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name).ok()?
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> bool {
        hostcalls::set_map_value(MapType::HttpResponseHeaders, name, value).is_ok()
    }

    fn add_response_header(&mut self, name: &str, value: &str) -> bool {
        hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value).is_ok()
    }

    fn property(&mut self, p: Property) -> Option<Vec<u8>> {
        hostcalls::get_property(p.path().to_vec()).ok()?
    }

    fn now_ms(&mut self) -> Option<u64> {
        let t = hostcalls::get_current_time().ok()?;
        let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
        u64::try_from(d.as_millis()).ok()
    }

    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
        hostcalls::send_http_response(status, headers.to_vec(), Some(body)).is_ok()
    }

    fn increment(&mut self, c: Counter) {
        self.touched.add(c);
        let id = self
            .metric_ids
            .as_ref()
            .and_then(|ids| ids.get(c as usize).copied().flatten());
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn log(&mut self, level: LogLevel, msg: &str) {
        let level = match level {
            LogLevel::Debug => proxy_wasm::types::LogLevel::Debug,
            LogLevel::Info => proxy_wasm::types::LogLevel::Info,
            LogLevel::Warn => proxy_wasm::types::LogLevel::Warn,
            LogLevel::Error => proxy_wasm::types::LogLevel::Error,
            LogLevel::Critical => proxy_wasm::types::LogLevel::Critical,
        };
        let _ = hostcalls::log(level, msg);
    }

    fn set_decisions(&mut self, value: &str) -> bool {
        property_call::set_property(DECISIONS_PROPERTY, value.as_bytes())
    }
}
