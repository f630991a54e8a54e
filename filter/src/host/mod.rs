//! The host seam: every interaction with Envoy the exchange needs, as one
//! small trait. The wasm module implements it with proxy-wasm host calls;
//! tests and fuzzers implement it in memory ([`fake`]). Nothing
//! in this crate can name a proxy-wasm type, so the logic is host-free by
//! construction.

pub mod fake;

use crate::metrics::{Counter, CounterSet};

/// A connection or stream fact Envoy exposes as a property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Property {
    /// `source.address`: the downstream peer as Envoy sees it (`ip:port`).
    SourceAddress,
    /// `connection.tls_version`: non-empty on a TLS downstream connection.
    TlsVersion,
    /// `upstream.address` (response phase): the node that answered.
    UpstreamAddress,
    /// `response.code_details` (response phase): why Envoy produced the
    /// status, e.g. `via_upstream` or `no_healthy_upstream`.
    ResponseCodeDetails,
}

impl Property {
    /// The property path as Envoy names it.
    pub fn path(self) -> [&'static str; 2] {
        match self {
            Property::SourceAddress => ["source", "address"],
            Property::TlsVersion => ["connection", "tls_version"],
            Property::UpstreamAddress => ["upstream", "address"],
            Property::ResponseCodeDetails => ["response", "code_details"],
        }
    }

    /// [`Self::path`] as the proxy-wasm ABI takes it: the segments joined
    /// by NUL, ready to pass without building it per call.
    pub fn abi_path(self) -> &'static [u8] {
        match self {
            Property::SourceAddress => b"source\0address",
            Property::TlsVersion => b"connection\0tls_version",
            Property::UpstreamAddress => b"upstream\0address",
            Property::ResponseCodeDetails => b"response\0code_details",
        }
    }
}

/// Log severity, as Envoy's log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Per-request detail.
    Debug,
    /// Report-mode findings.
    Info,
    /// Something an operator should fix.
    Warn,
    /// The filter could not do its work.
    Error,
    /// The filter cannot run at all (bad configuration).
    Critical,
}

/// What the stream does after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Go on to the next filter.
    Continue,
    /// Stop here: a local answer was sent, or the body is still arriving
    /// and Envoy keeps buffering it.
    Pause,
}

/// Everything the exchange asks of Envoy. Every method reports failure
/// instead of panicking; the exchange refuses a request whose checks a
/// failed call would skip.
pub trait Host {
    /// The request headers in the proxy-wasm ABI's serialized layout
    /// ([`crate::http::header_map`]), in one call.
    fn request_header_map(&mut self) -> Option<Box<[u8]>>;
    /// Sets (`Some`) or removes (`None`) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> bool;
    /// The first `size` bytes of the buffered request body.
    fn request_body(&mut self, size: usize) -> Option<Vec<u8>>;
    /// A response header's value (`:status` included).
    fn response_header(&mut self, name: &str) -> Option<Vec<u8>>;
    /// Sets (`Some`) or removes (`None`) a response header.
    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> bool;
    /// Adds a response header line (for `set-cookie`).
    fn add_response_header(&mut self, name: &str, value: &str) -> bool;
    /// A property's raw bytes.
    fn property(&mut self, p: Property) -> Option<Vec<u8>>;
    /// Milliseconds since the Unix epoch; `None` if the clock cannot be read.
    fn now_ms(&mut self) -> Option<u64>;
    /// Answers the request locally instead of forwarding it.
    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool;
    /// Adds one to a counter.
    fn increment(&mut self, c: Counter);
    /// The counters this request has bumped so far (its access-log
    /// decisions are made of them).
    fn touched(&self) -> CounterSet;
    /// Writes a log line.
    fn log(&mut self, level: LogLevel, msg: &str);
    /// Stores this request's decisions where Envoy's access log can print
    /// them (filter state `wasm.` + [`crate::diagnostics::DECISIONS_PROPERTY`]).
    fn set_decisions(&mut self, value: &str) -> bool;
}

#[cfg(test)]
mod tests {
    use super::Property;

    #[test]
    fn abi_paths_are_the_segments_joined_by_nul() {
        for p in [
            Property::SourceAddress,
            Property::TlsVersion,
            Property::UpstreamAddress,
            Property::ResponseCodeDetails,
        ] {
            assert_eq!(p.abi_path(), p.path().join("\0").as_bytes(), "{p:?}");
        }
    }
}
