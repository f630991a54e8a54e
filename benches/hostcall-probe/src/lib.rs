//! The no-op filter (`benches/noop-filter`) plus [`CALLS`] host calls of
//! one kind in each request's header phase, the kind chosen when it is
//! built (`PROBE=<kind>`, see [`call`]). Measured against the no-op filter
//! in the same run, the difference divided by [`CALLS`] is what one such
//! call costs inside Envoy: the number that says how much of oidc-edge's
//! cost is its host calls and how much its own work (benches/README.md,
//! "What one host call costs"). `./build.sh hostcall-costs` builds one
//! module per kind and runs them.
//!
//! The `replay` kinds make, once per request, the host calls oidc-edge
//! makes on a logged-in browser's request (request (a) of the bench), with
//! the same names and values, and nothing else: measured in the same run
//! as (a), they split (a)'s cost into what Envoy spends answering those
//! calls and what the module's own work adds. `replay_reads` leaves out
//! the four request-header writes, `replay_request` the response phase,
//! `replay_response` the request phase; `replay_writes` is the four writes
//! alone.
#![cfg(target_arch = "wasm32")]

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};
use std::rc::Rc;

/// Host calls per request: enough that their cost stands well above the
/// run-to-run noise of a shared machine.
const CALLS: u32 = 20;

/// The kind of call, fixed at build time.
const KIND: &str = match option_env!("PROBE") {
    Some(k) => k,
    None => "none",
};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            metric: None,
            node: Rc::from(&b"MTAuMC4wLjI6ODA4MA=="[..]),
        })
    });
}}

struct Root {
    metric: Option<u32>,
    /// The session header value the `replay` kinds set: the plugin
    /// configuration's `node=<value>` (loadbench passes the bench upstream's),
    /// else a node that is not there.
    node: Rc<[u8]>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        self.metric = hostcalls::define_metric(MetricType::Counter, "hostcall_probe").ok();
        if let Ok(Some(config)) =
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        {
            if let Some(node) = config.strip_prefix(b"node=") {
                self.node = Rc::from(node);
            }
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            metric: self.metric,
            node: self.node.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    metric: Option<u32>,
    node: Rc<[u8]>,
}

impl Context for Request {}

/// One call of [`KIND`]; its result is thrown away.
fn call(metric: Option<u32>) {
    let _ = match KIND {
        // A counter increment: the cheapest call with an effect.
        "increment" => metric.map_or(Ok(()), |id| hostcalls::increment_metric(id, 1)),
        // A request header that is there (the host copies it into the VM).
        "read" => hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "host").map(drop),
        // One that is not (nothing to copy).
        "read_absent" => {
            hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, "x-absent").map(drop)
        }
        // A request header written.
        "set" => hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, "x-probe", Some(b"1")),
        // A request header removed (gone after the first: Envoy still looks).
        "remove" => hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, "x-probe", None),
        // A response header written (in the response phase, see below).
        "set_response" => {
            hostcalls::set_map_value_bytes(MapType::HttpResponseHeaders, "x-probe", Some(b"1"))
        }
        // A property that is there.
        "property" => hostcalls::get_property(vec!["source", "address"]).map(drop),
        // The clock.
        "clock" => hostcalls::get_current_time().map(drop),
        // Every request header in one call.
        "header_map" => hostcalls::get_map_bytes(MapType::HttpRequestHeaders).map(drop),
        _ => Ok(()),
    };
}

/// The request phase of request (a), as oidc-edge makes its calls
/// (`exchange_loop a 1 trace` lists them): the header map, a counter, the
/// clock, then the header changes (unless `writes` is false).
fn replay_request(metric: Option<u32>, node: &[u8], reads: bool, writes: bool) {
    if reads {
        let _ = hostcalls::get_map_bytes(MapType::HttpRequestHeaders);
        let _ = metric.map_or(Ok(()), |id| hostcalls::increment_metric(id, 1));
        let _ = hostcalls::get_current_time();
    }
    if writes {
        let req = MapType::HttpRequestHeaders;
        let _ = hostcalls::set_map_value_bytes(req, "x-real-ip", Some(b"203.0.113.7"));
        let _ = hostcalls::set_map_value_bytes(req, "x-oidc-edge-peer", None);
        let _ = hostcalls::set_map_value_bytes(req, "x-oidc-edge-node", Some(node));
        let _ = hostcalls::set_map_value_bytes(req, "x-envoy-max-retries", Some(b"0"));
    }
}

/// The response phase of request (a): the status, the node address
/// removed, the upstream's address, a counter.
fn replay_response(metric: Option<u32>) {
    let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
    let _ = hostcalls::set_map_value_bytes(MapType::HttpResponseHeaders, "x-oidc-edge-node", None);
    let _ = hostcalls::get_property(vec!["upstream", "address"]);
    let _ = metric.map_or(Ok(()), |id| hostcalls::increment_metric(id, 1));
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        match KIND {
            "replay" | "replay_request" => replay_request(self.metric, &self.node, true, true),
            "replay_reads" => replay_request(self.metric, &self.node, true, false),
            "replay_writes" => replay_request(self.metric, &self.node, false, true),
            "replay_response" => {}
            "set_response" => {}
            // The whole request header map written back in one call.
            "set_map" => {
                if let Ok(map) = hostcalls::get_map(MapType::HttpRequestHeaders) {
                    for _ in 0..CALLS {
                        let pairs = map.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                        let _ = hostcalls::set_map(MapType::HttpRequestHeaders, pairs);
                    }
                }
            }
            _ => {
                for _ in 0..CALLS {
                    call(self.metric);
                }
            }
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if matches!(KIND, "replay" | "replay_reads" | "replay_response") {
            replay_response(self.metric);
        }
        if KIND == "set_response" {
            for _ in 0..CALLS {
                call(self.metric);
            }
        }
        Action::Continue
    }
}
