//! An in-memory [`Host`] for native lifecycle tests, the exchange fuzzer and
//! benchmarks: it plays the part of one Envoy stream. Requests and responses
//! are plain header lists; whatever the exchange does to them (header
//! changes, local answers, counters, logs) is recorded for the test to read.
//!
//! It models what the exchange relies on and Envoy was observed to do
//! (`../shared/notes/envoy-1.40-facts.md`): header names are lower case,
//! setting a header replaces every value, `upstream.address` and
//! `response.code_details` exist only in the response phase. Routing itself
//! (stateful_session, load balancing) is the test's to play: [`FakeHost::
//! pinned_node`] reads what stateful_session would read.

use crate::host::{Host, LogLevel, Property};
use crate::http::header_map;
use crate::metrics::{Counter, CounterSet};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use std::collections::BTreeMap;

/// A local answer the exchange sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub status: u32,
    /// Its headers, in order.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

impl LocalReply {
    /// The first value of `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One stream's worth of host state.
#[derive(Debug, Clone, Default)]
pub struct FakeHost {
    /// Request headers (lower-case names), as the exchange leaves them.
    pub request: Vec<(String, Vec<u8>)>,
    /// The buffered request body.
    pub body: Vec<u8>,
    /// Response headers (`:status` included), as the exchange leaves them.
    pub response: Vec<(String, Vec<u8>)>,
    /// `source.address`.
    pub source_address: Option<String>,
    /// Whether the downstream connection is TLS.
    pub tls: bool,
    /// `upstream.address` in the response phase.
    pub upstream_address: Option<String>,
    /// `response.code_details` in the response phase.
    pub code_details: Option<String>,
    /// The clock; `None` plays a failed clock read.
    pub now_ms: Option<u64>,
    /// Local answers sent.
    pub replies: Vec<LocalReply>,
    /// Counters bumped, by name.
    pub counters: BTreeMap<&'static str, u64>,
    /// Log lines.
    pub logs: Vec<(LogLevel, String)>,
    /// Make the next request-header write fail (a host call error).
    pub fail_header_writes: bool,
    /// The counters this stream touched.
    pub touched: CounterSet,
    /// What the exchange stored for the access log (the last write).
    pub decisions: Option<String>,
    /// How many times the exchange wrote its decisions (each is a host call).
    pub decision_writes: usize,
    in_response: bool,
}

impl FakeHost {
    /// A stream carrying these request headers at time `now_ms`.
    pub fn request(headers: &[(&str, &str)], now_ms: u64) -> FakeHost {
        FakeHost {
            request: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
                .collect(),
            now_ms: Some(now_ms),
            ..FakeHost::default()
        }
    }

    /// Moves the stream to its response phase: `headers` arrive from the
    /// node at `upstream` (`None`: Envoy answered itself, with `details`).
    pub fn respond(&mut self, headers: &[(&str, &str)], upstream: Option<&str>, details: &str) {
        self.response = headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        self.upstream_address = upstream.map(str::to_string);
        self.code_details = Some(details.to_string());
        self.in_response = true;
    }

    fn values<'a>(
        list: &'a [(String, Vec<u8>)],
        name: &str,
    ) -> impl Iterator<Item = &'a str> + use<'a> {
        let name = name.to_string();
        list.iter()
            .filter(move |(n, _)| *n == name)
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The first value of a request header, as the upstream would get it.
    pub fn request_value(&self, name: &str) -> Option<&str> {
        Self::values(&self.request, name).next()
    }

    /// Every value of a response header.
    pub fn response_values(&self, name: &str) -> Vec<&str> {
        Self::values(&self.response, name).collect()
    }

    /// The first value of a response header.
    pub fn response_value(&self, name: &str) -> Option<&str> {
        Self::values(&self.response, name).next()
    }

    /// The node stateful_session would route to, from the session header
    /// `name` (standard base64 of `ip:port`), if it is well formed.
    pub fn pinned_node(&self, name: &str) -> Option<String> {
        let v = self.request_value(name)?;
        String::from_utf8(STANDARD.decode(v).ok()?).ok()
    }

    /// A counter's value.
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// The `name=value` pairs of the response's `set-cookie` lines, cleared
    /// ones (`Max-Age=0`) marked by an empty value.
    pub fn set_cookies(&self) -> Vec<(String, String)> {
        self.response_values("set-cookie")
            .into_iter()
            .filter_map(|line| {
                let pair = line.split(';').next()?;
                let (n, v) = pair.split_once('=')?;
                let cleared = line.contains("Max-Age=0");
                Some((
                    n.to_string(),
                    if cleared {
                        String::new()
                    } else {
                        v.to_string()
                    },
                ))
            })
            .collect()
    }
}

fn set(list: &mut Vec<(String, Vec<u8>)>, name: &str, value: Option<&str>) {
    list.retain(|(n, _)| n != name);
    if let Some(v) = value {
        list.push((name.to_string(), v.as_bytes().to_vec()));
    }
}

impl Host for FakeHost {
    fn request_header_map(&mut self) -> Option<Box<[u8]>> {
        let pairs: Vec<(&str, &[u8])> = self
            .request
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        Some(header_map::encode(&pairs).into_boxed_slice())
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) -> bool {
        if self.fail_header_writes {
            return false;
        }
        set(&mut self.request, name, value);
        true
    }

    fn request_body(&mut self, size: usize) -> Option<Vec<u8>> {
        Some(self.body.iter().take(size).copied().collect())
    }

    fn response_header(&mut self, name: &str) -> Option<Vec<u8>> {
        self.response
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn set_response_header(&mut self, name: &str, value: Option<&str>) -> bool {
        set(&mut self.response, name, value);
        true
    }

    fn add_response_header(&mut self, name: &str, value: &str) -> bool {
        self.response
            .push((name.to_string(), value.as_bytes().to_vec()));
        true
    }

    fn property(&mut self, p: Property) -> Option<Vec<u8>> {
        let v = match p {
            Property::SourceAddress => self.source_address.clone(),
            Property::TlsVersion => self.tls.then(|| "TLSv1.3".to_string()),
            Property::UpstreamAddress if self.in_response => self.upstream_address.clone(),
            Property::ResponseCodeDetails if self.in_response => self.code_details.clone(),
            Property::UpstreamAddress | Property::ResponseCodeDetails => None,
        };
        v.map(String::into_bytes)
    }

    fn now_ms(&mut self) -> Option<u64> {
        self.now_ms
    }

    fn send_response(&mut self, status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
        self.replies.push(LocalReply {
            status,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        });
        true
    }

    fn increment(&mut self, c: Counter) {
        *self.counters.entry(c.name()).or_default() += 1;
        self.touched.add(c);
    }

    fn touched(&self) -> CounterSet {
        self.touched
    }

    fn log(&mut self, level: LogLevel, msg: &str) {
        self.logs.push((level, msg.to_string()));
    }

    fn set_decisions(&mut self, value: &str) -> bool {
        self.decisions = Some(value.to_string());
        self.decision_writes += 1;
        true
    }
}
