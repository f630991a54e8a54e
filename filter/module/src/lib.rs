//! The proxy-wasm module Envoy loads: a thin adapter from Envoy's callbacks
//! to [`oidc_edge::exchange::Exchange`]. It decides nothing. It parses the
//! configuration once (a refusal makes Envoy refuse the plugin), defines
//! the counters, and hands each request an exchange and a [`WasmHost`].
//!
//! Host calls are made through `proxy_wasm::hostcalls` with every error
//! handled: the SDK's `HttpContext` helpers `unwrap()` internally (for
//! example on a header value that is not UTF-8, which any client can send),
//! and a panic in Envoy's V8 turns this worker's filter into permanent 503s.
#![cfg(target_arch = "wasm32")]

mod abi;
mod wasm_host;

use oidc_edge::config::Config;
use oidc_edge::exchange::Exchange;
use oidc_edge::host::{Action, Host, LogLevel};
use oidc_edge::live::{LiveConfig, Severity, Step};
use oidc_edge::metrics::Counter;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, MetricType};
use std::rc::Rc;
use wasm_host::WasmHost;

/// The entry point the host calls once per VM (exported by name).
mod entry {
    use super::Root;
    use proxy_wasm::traits::RootContext;

    proxy_wasm::main! {{
        proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { shared: None, discovery: None }) });
    }}
}

/// What every request of this plugin shares.
struct Shared {
    config: Rc<Config>,
    metric_ids: Rc<[Option<u32>; Counter::ALL.len()]>,
    memory: MemoryGauge,
}

struct Root {
    shared: Option<Shared>,
    /// IdP discovery, when configured: this worker's live configuration
    /// (each worker's root context fetches on its own; see `on_tick`).
    discovery: Option<Discovery>,
}

/// The root context's part of IdP discovery: the logic's state machine and
/// what its steps are reported through.
struct Discovery {
    live: LiveConfig,
    host: WasmHost,
    gauge: Option<u32>,
}

/// The VM's linear memory size, as the gauge `oidc_edge.vm.memory_bytes`:
/// the one figure that shows a leak in the module (wasm memory only grows,
/// and Envoy reports no such stat; V8 maps it outside Envoy's allocator, so
/// `/memory` does not see it either). Recorded at load and whenever it
/// changed when a request starts: a compare per request, a host call only
/// on growth. With several workers each has its own VM and the gauge shows
/// the last one that grew.
struct MemoryGauge {
    id: Option<u32>,
    last: std::cell::Cell<usize>,
}

impl MemoryGauge {
    const NAME: &'static str = oidc_edge::metrics::VM_MEMORY_GAUGE;

    fn define() -> MemoryGauge {
        let gauge = MemoryGauge {
            id: abi::define_metric(MetricType::Gauge, Self::NAME),
            last: std::cell::Cell::new(0),
        };
        gauge.update();
        gauge
    }

    fn update(&self) {
        let bytes = core::arch::wasm32::memory_size(0).saturating_mul(65536);
        if bytes != self.last.get() {
            self.last.set(bytes);
            if let Some(id) = self.id {
                abi::record(id, bytes as u64);
            }
        }
    }
}

impl Context for Root {
    /// The discovery fetch's answer (no headers: Envoy got none, e.g. the
    /// connection was refused or the call timed out).
    fn on_http_call_response(
        &mut self,
        _token_id: u32,
        num_headers: usize,
        _body_size: usize,
        _num_trailers: usize,
    ) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        let status = (num_headers > 0).then(abi::call_response_status).flatten();
        let body = match status {
            Some(_) => abi::call_response_body(LiveConfig::BODY_READ_LIMIT),
            None => Box::default(),
        };
        let step = d.live.on_response(status.as_deref(), &body);
        self.apply(step);
    }
}

impl Root {
    /// Carries out a discovery step: its log lines, counters, gauge and next
    /// tick, and the new configuration for new requests.
    fn apply(&mut self, step: Step) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        for (severity, line) in &step.logs {
            let level = match severity {
                Severity::Info => LogLevel::Info,
                Severity::Warn => LogLevel::Warn,
            };
            d.host.log(level, line);
        }
        for c in step.counters.iter() {
            d.host.increment(c);
        }
        if let Some(id) = d.gauge {
            abi::record(id, step.state as u64);
        }
        if !abi::set_tick_period_ms(step.next_ms.max(1)) {
            d.host.log(
                LogLevel::Error,
                "discovery: Envoy refused the timer; the IdP's metadata is not fetched again",
            );
        }
        if step.config_changed {
            if let Some(shared) = self.shared.as_mut() {
                shared.config = d.live.config().clone();
            }
        }
    }
}

/// The release this module is: the crate's version.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit it was built from: `./build.sh build` passes
/// `OIDC_EDGE_COMMIT`; a plain `cargo build` has none.
const COMMIT: Option<&str> = option_env!("OIDC_EDGE_COMMIT");

impl RootContext for Root {
    /// Once per VM (one per worker thread): which build is running, so an
    /// operator can tell from the log what a rollout actually loaded.
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        let commit = COMMIT.unwrap_or("unknown");
        WasmHost::unmetered().log(
            LogLevel::Info,
            &format!("oidc-edge {VERSION} (commit {commit}) starting"),
        );
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let mut host = WasmHost::unmetered();
        let Some(bytes) = abi::plugin_configuration() else {
            host.log(LogLevel::Critical, "cannot read the plugin configuration");
            return false;
        };
        let config = match Config::parse_with_env(&bytes, &|k| std::env::var(k).ok()) {
            Ok(c) => c,
            Err(e) => {
                host.log(LogLevel::Critical, &e.to_string());
                return false;
            }
        };
        for w in config.warnings() {
            host.log(LogLevel::Warn, &w);
        }
        host.log(LogLevel::Info, &loaded_line(&config));
        let mut metric_ids = [None; Counter::ALL.len()];
        for (slot, c) in metric_ids.iter_mut().zip(Counter::ALL) {
            *slot = abi::define_metric(MetricType::Counter, c.name());
        }
        let metric_ids = Rc::new(metric_ids);
        // Workers start within nanoseconds of each other, not in the same one.
        let live = LiveConfig::new(config, abi::now_ns().unwrap_or(0));
        self.shared = Some(Shared {
            config: live.config().clone(),
            metric_ids: metric_ids.clone(),
            memory: MemoryGauge::define(),
        });
        // A new configuration replaces the old one's discovery: its timer
        // stops unless the new one discovers too.
        if self.discovery.take().is_some() && !live.discovers() {
            let _ = abi::set_tick_period_ms(0);
        }
        if live.discovers() {
            // The first fetch waits for the first tick: Envoy may not have
            // initialised its clusters while it configures the plugin.
            if !abi::set_tick_period_ms(LiveConfig::FIRST_TICK_MS) {
                host.log(
                    LogLevel::Critical,
                    "discovery: Envoy refused the timer the IdP's metadata is fetched on",
                );
                return false;
            }
            let gauge =
                abi::define_metric(MetricType::Gauge, oidc_edge::metrics::DISCOVERY_STATE_GAUGE);
            if let Some(id) = gauge {
                abi::record(id, live.state() as u64);
            }
            self.discovery = Some(Discovery {
                host: WasmHost::new(metric_ids),
                gauge,
                live,
            });
        }
        true
    }

    /// A fetch when discovery's schedule says so; while it is in flight the
    /// timer is the watchdog (twice the call's timeout).
    fn on_tick(&mut self) {
        let Some(d) = self.discovery.as_mut() else {
            return;
        };
        let Some(fetch) = d.live.on_tick() else {
            return;
        };
        let headers: Vec<(&str, &str)> = fetch
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        // The one SDK host call left: its dispatcher must register the
        // call's token to route the answer to this root context. It panics
        // only on statuses Envoy's proxy_http_call does not return for valid
        // memory (Envoy answers BadArgument for an unknown cluster or
        // missing pseudo-headers, InternalFailure when the call cannot start).
        let sent = hostcalls::dispatch_http_call(
            &fetch.cluster,
            headers,
            None,
            Vec::new(),
            std::time::Duration::from_millis(fetch.timeout_ms),
        );
        match sent {
            Ok(_) => {
                let _ = abi::set_tick_period_ms(d.live.watchdog_ms());
            }
            Err(status) => {
                let step = d.live.on_dispatch_failed(&format!("{status:?}"));
                self.apply(step);
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        let shared = self.shared.as_ref()?;
        shared.memory.update();
        Some(Box::new(Request {
            exchange: Exchange::new(shared.config.clone()),
            host: WasmHost::new(shared.metric_ids.clone()),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The one line logged when a configuration loads: a good load is not
/// silent, and says which sections are on.
fn loaded_line(config: &Config) -> String {
    format!(
        "oidc-edge: configuration loaded; sections on: {}",
        config.sections_on()
    )
}

/// One request: its exchange and the host it talks through.
struct Request {
    exchange: Exchange,
    host: WasmHost,
}

impl Context for Request {}

fn action(a: Action) -> proxy_wasm::types::Action {
    match a {
        Action::Continue => proxy_wasm::types::Action::Continue,
        Action::Pause => proxy_wasm::types::Action::Pause,
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(
        &mut self,
        _num_headers: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        #[cfg(feature = "fault-injection")]
        fault_injection::trap_if_asked();
        action(
            self.exchange
                .on_request_headers(&mut self.host, end_of_stream),
        )
    }

    fn on_http_request_body(
        &mut self,
        body_size: usize,
        end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        action(
            self.exchange
                .on_request_body(&mut self.host, body_size, end_of_stream),
        )
    }

    fn on_http_response_headers(
        &mut self,
        _num_headers: usize,
        _end_of_stream: bool,
    ) -> proxy_wasm::types::Action {
        action(self.exchange.on_response_headers(&mut self.host))
    }
}

/// Test builds only (feature `fault-injection`): trap on demand, so a test
/// can show what Envoy does when the module faults.
#[cfg(feature = "fault-injection")]
mod fault_injection {
    use proxy_wasm::hostcalls;
    use proxy_wasm::types::MapType;

    /// The header that makes a test build trap.
    const HEADER: &str = "x-oidc-edge-test-fault";

    #[allow(clippy::panic)]
    pub fn trap_if_asked() {
        if let Ok(Some(_)) = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, HEADER) {
            panic!("{HEADER}: a fault on demand (test build)");
        }
    }
}
