//! [`Host`] over proxy-wasm host calls, every error turned into `None` or
//! `false` for the exchange to act on.

use crate::abi;
use oidc_edge::diagnostics::DECISIONS_PROPERTY;
use oidc_edge::host::{Host, LogLevel, Property};
use oidc_edge::metrics::{Counter, CounterSet};
use proxy_wasm::types::MapType;
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
}

impl Host for WasmHost {
    fn request_header_map(&mut self) -> Option<Box<[u8]>> {
        abi::request_header_map()
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> bool {
        abi::set_header(MapType::HttpRequestHeaders, name, value)
    }

    fn request_body(&mut self, size: usize) -> Option<Vec<u8>> {
        abi::request_body(size).map(Vec::from)
    }

    fn response_header(&mut self, name: &str) -> Option<Vec<u8>> {
        abi::header(MapType::HttpResponseHeaders, name)
            .ok()?
            .map(Vec::from)
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> bool {
        abi::set_header(MapType::HttpResponseHeaders, name, value)
    }

    fn add_response_header(&mut self, name: &str, value: &str) -> bool {
        abi::add_header(MapType::HttpResponseHeaders, name, value)
    }

    fn property(&mut self, p: Property) -> Option<Vec<u8>> {
        abi::property(p.abi_path()).map(Vec::from)
    }

    fn now_ms(&mut self) -> Option<u64> {
        abi::now_ns().map(|ns| ns / 1_000_000)
    }

    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
        abi::send_response(status, headers, body)
    }

    fn increment(&mut self, c: Counter) {
        self.touched.add(c);
        let id = self
            .metric_ids
            .as_ref()
            .and_then(|ids| ids.get(c as usize).copied().flatten());
        if let Some(id) = id {
            abi::increment(id);
        }
    }

    fn touched(&self) -> CounterSet {
        self.touched
    }

    fn log(&mut self, level: LogLevel, msg: &str) {
        let level = match level {
            LogLevel::Debug => proxy_wasm::types::LogLevel::Debug,
            LogLevel::Info => proxy_wasm::types::LogLevel::Info,
            LogLevel::Warn => proxy_wasm::types::LogLevel::Warn,
            LogLevel::Error => proxy_wasm::types::LogLevel::Error,
            LogLevel::Critical => proxy_wasm::types::LogLevel::Critical,
        };
        abi::log(level, msg);
    }

    fn set_decisions(&mut self, value: &str) -> bool {
        abi::set_property(DECISIONS_PROPERTY, value.as_bytes())
    }
}
