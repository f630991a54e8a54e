//! Forwarded-header normalization: decides the external view of a request
//! (scheme, host, port, client address, path prefix) under the configured
//! trust model, and the header changes that give the upstream exactly that
//! view.
//!
//! Trust is decided on the direct TCP peer, never on a header value:
//!
//! 1. The peer is trusted when it is in `trusted_cidrs` (or, with no CIDRs
//!    configured, when `trusted_hops > 0`: every peer is then trusted).
//! 2. From a trusted peer, the client address is found by walking the
//!    forwarded-for chain right to left, skipping hops that are trusted
//!    proxies: those within the first `trusted_hops` positions (the peer is
//!    position 1) or inside `trusted_cidrs`. The first hop that is not a
//!    trusted proxy is the client. A chain shorter than the hops yields its
//!    leftmost entry. Entries left of the client are the client's own claims:
//!    they are dropped, not judged.
//! 3. Scheme, host, port and prefix are taken from the same depth as the
//!    client: with `k` trusted proxies, the `k`-th value from the right, which
//!    is what the outermost trusted proxy appended (clamped to the leftmost).
//!    A proxy that overwrites instead of appending leaves one value, which is
//!    then used.
//! 4. An untrusted peer's forwarding headers are all removed; the values come
//!    from the connection: the peer address, `https` when the downstream
//!    connection is TLS, and `Host`.
//! 5. A peer in `tcp_load_balancers` forwards bytes, not HTTP: its
//!    forwarding headers are the client's and are removed unread; the
//!    scheme is the entry's, host and port come from `Host`, and the client
//!    is the PROXY header's (Envoy's `source.address`) or hidden.
//! 6. `external_origin`, or the `external_origins` entry of the request's
//!    host, overrides scheme and port (and, for `external_origin`, host).
//!
//! A header value the filter would use is validated; an invalid one is
//! ignored whole (and counted), never half-used, and never reaches the
//! upstream.

pub mod config;
pub mod rfc7239;

use crate::forwarded::config::{Family, ForwardedConfig, PeerSource, XffForm};
use crate::http::authority::{Authority, Origin, Proto};
use crate::http::node::{parse_ip_with_port, push_decimal, push_ip, Node};
use crate::metrics::{Counter, CounterSet};
use crate::outcome::{Decision, HeaderOp, Reason, Verdict};
use std::net::IpAddr;

/// Longest `X-Forwarded-Prefix` accepted.
const MAX_PREFIX_LEN: usize = 512;

use crate::http::names::{self, *};

/// What the glue can tell about the downstream connection, asked lazily:
/// each answer costs a host call, and most requests need none of them.
pub trait Connection {
    /// Envoy's `source.address` property (used only with
    /// `peer_address_from: "source_address"`, and for the client behind a
    /// PROXY-protocol load balancer).
    fn source_address(&mut self) -> Option<IpAddr>;
    /// Whether the downstream connection is TLS.
    fn is_tls(&mut self) -> bool;
    /// Reports a problem the operator must fix (a missing or forged peer
    /// header): the glue logs it at error level. Called rarely: see
    /// `alert_now`. The default drops it (tests, fuzzing).
    fn alert(&mut self, _message: &str) {}
}

/// Why the direct peer is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PeerProblem {
    /// No peer header (or no `source.address`): is Envoy's `header_mutation`
    /// filter in place, writing the configured header?
    Missing,
    /// Present but not one address (two values, not UTF-8, not an IP).
    Malformed,
    /// Present without the configured token: written by someone who does not
    /// know it, which means a client (the filter is missing or writes
    /// another header) or a `header_mutation` that does not add the token.
    Unverified,
    /// From a PROXY-protocol load balancer, but `source.address` is not a
    /// connection's address: missing, or with port 0, which is how Envoy
    /// writes an address it took from `X-Forwarded-For` (the listener has
    /// `use_remote_address: false`, so the client could name itself).
    ProxyClientUnusable,
}

impl PeerProblem {
    fn index(self) -> usize {
        match self {
            PeerProblem::Missing => 0,
            PeerProblem::Malformed => 1,
            PeerProblem::Unverified => 2,
            PeerProblem::ProxyClientUnusable => 3,
        }
    }
}

std::thread_local! {
    /// Problems seen on this worker, per kind, for [`alert_now`].
    static SEEN: [std::cell::Cell<u64>; 4] = const {
        [
            std::cell::Cell::new(0),
            std::cell::Cell::new(0),
            std::cell::Cell::new(0),
            std::cell::Cell::new(0),
        ]
    };
}

/// Counts a peer problem and says whether to log it now: the 1st, 2nd, 4th,
/// 8th... time on this worker. Loud at once, yet a client flooding forged
/// headers costs a logarithmic number of log lines, not one per request.
/// Returns the count when it is time.
fn alert_now(p: PeerProblem) -> Option<u64> {
    SEEN.try_with(|seen| {
        let c = seen.get(p.index())?;
        let n = c.get().saturating_add(1);
        c.set(n);
        n.is_power_of_two().then_some(n)
    })
    .ok()
    .flatten()
}

fn peer_alert(cfg: &ForwardedConfig, p: PeerProblem, n: u64) -> String {
    let what = match &cfg.peer {
        PeerSource::Header(h) => format!("the {h} header"),
        PeerSource::SourceAddress => "Envoy's source.address".to_string(),
    };
    let (problem, fix) = match p {
        PeerProblem::Missing => (
            format!("a request without {what}"),
            "is Envoy's header_mutation filter before oidc-edge, writing that header (see envoy/edge.yaml)?",
        ),
        PeerProblem::Malformed => (
            format!("{what} is not one IP address"),
            "header_mutation must write %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% with OVERWRITE_IF_EXISTS_OR_ADD",
        ),
        PeerProblem::Unverified => (
            format!("{what} does not carry the peer token (forwarded.peer_token_env)"),
            "a client sent it, so header_mutation is missing or writes another header; or header_mutation does \
             not append ;%ENVIRONMENT(<peer_token_env>)% (see envoy/edge.yaml)",
        ),
        PeerProblem::ProxyClientUnusable => {
            return format!(
                "oidc-edge: a request from a PROXY-protocol load balancer (forwarded.tcp_load_balancers) whose \
                 source.address is missing or has port 0, the mark of an address Envoy took from \
                 X-Forwarded-For, which the client wrote: the client is treated as hidden (seen {n} times on \
                 this worker). Fix: on the listener that load balancer connects to, set use_remote_address: \
                 true and the proxy_protocol listener filter (see envoy/proxy-protocol.yaml)"
            )
        }
    };
    format!(
        "oidc-edge: {problem}: its forwarding headers are not trusted and the values come from the connection \
         (seen {n} times on this worker). Fix: {fix}"
    )
}

pub use crate::http::Headers;

/// The external view of a request, as the upstream will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalView {
    /// External scheme.
    pub proto: Proto,
    /// External host (lower case) as the browser addressed it.
    pub authority: Authority,
    /// External port.
    pub port: u16,
    /// Client (when known), trusted proxies, peer: left to right, addresses
    /// only. A hidden client has no entry: none is invented for it.
    pub chain: Vec<IpAddr>,
    /// The client's address. `None` when the trusted chain says the client
    /// is hidden (RFC 7239 §6.2 `unknown`, §6.3 obfuscated `_name`) or no
    /// peer is known: the app is then told the client is unknown, never
    /// that the nearest trusted proxy is the client.
    pub client: Option<IpAddr>,
    /// Path prefix a trusted proxy stripped, without trailing `/`.
    pub prefix: Option<String>,
}

fn values<'h: 'n, 'n>(
    headers: &'h Headers<'h>,
    name: &'n str,
) -> impl Iterator<Item = &'h [u8]> + 'n {
    headers
        .iter()
        .filter(move |(n, _)| *n == name)
        .map(|(_, v)| *v)
}

fn present(headers: &Headers, name: &str) -> bool {
    headers.iter().any(|(n, _)| *n == name)
}

/// The comma-separated members of a header, right to left across all its
/// lines, trimmed, empty members skipped (RFC 9110 §5.6.1). Yields `None` for
/// a line that is not UTF-8. Reads the values in place: the request path
/// allocates nothing for list headers.
struct MembersRev<'h> {
    lines: std::iter::Rev<std::slice::Iter<'h, (&'h str, &'h [u8])>>,
    name: &'h str,
    current: Option<std::str::RSplit<'h, char>>,
}

impl<'h> MembersRev<'h> {
    fn new(headers: &'h Headers<'h>, name: &'h str) -> MembersRev<'h> {
        MembersRev {
            lines: headers.iter().rev(),
            name,
            current: None,
        }
    }
}

impl<'h> Iterator for MembersRev<'h> {
    type Item = Option<&'h str>;

    fn next(&mut self) -> Option<Option<&'h str>> {
        loop {
            if let Some(members) = &mut self.current {
                for m in members.by_ref() {
                    let m = crate::http::trim_ows(m);
                    if !m.is_empty() {
                        return Some(Some(m));
                    }
                }
                self.current = None;
            }
            let name = self.name;
            let (_, v) = self.lines.by_ref().find(|(n, _)| *n == name)?;
            match std::str::from_utf8(v) {
                Ok(s) => self.current = Some(s.rsplit(',')),
                Err(_) => return Some(None),
            }
        }
    }
}

/// The member `depth` places from the right (1 = rightmost), clamped to the
/// leftmost when the list is shorter. `Err` if a line it had to read is not
/// UTF-8; members beyond `depth` are not read at all.
fn member_at_depth<'h>(
    headers: &'h Headers<'h>,
    name: &'h str,
    depth: usize,
) -> Result<Option<&'h str>, ()> {
    let mut last = None;
    for m in MembersRev::new(headers, name).take(depth) {
        last = Some(m.ok_or(())?);
    }
    Ok(last)
}

/// Result of walking a forwarded-for chain from the right.
struct Walk {
    /// The first hop that is not a trusted proxy (None: chain empty).
    client: Option<Node>,
    /// Trusted proxies' addresses between the client and the peer, right to left.
    proxies: Vec<IpAddr>,
    /// Number of trusted proxies including the peer: the depth at which the
    /// outermost trusted proxy's values sit.
    depth: usize,
}

/// Walks hops given right to left; `None` if a hop it reaches is malformed.
fn walk<T>(
    cfg: &ForwardedConfig,
    hops_rev: impl Iterator<Item = T>,
    parse: impl Fn(T) -> Option<Node>,
) -> Option<Walk> {
    let mut w = Walk {
        client: None,
        proxies: Vec::new(),
        depth: 1,
    };
    let mut hops = hops_rev.peekable();
    while let Some(hop) = hops.next() {
        let node = parse(hop)?;
        let trusted_proxy =
            w.depth < cfg.trusted_hops || node.ip().is_some_and(|ip| cfg.in_trusted_cidrs(ip));
        if trusted_proxy && hops.peek().is_some() {
            w.depth += 1;
            if let Some(ip) = node.ip() {
                w.proxies.push(ip);
            }
        } else {
            w.client = Some(node);
            return Some(w);
        }
    }
    Some(w)
}

/// Values a trusted peer asserted, each already validated.
#[derive(Default)]
struct Claimed {
    walk: Option<Walk>,
    proto: Option<Proto>,
    authority: Option<Authority>,
    port: Option<u16>,
    prefix: Option<String>,
}

fn claims_from_x_forwarded(
    cfg: &ForwardedConfig,
    headers: &Headers,
    counters: &mut CounterSet,
) -> Claimed {
    let mut malformed = false;
    let mut c = Claimed {
        walk: walk(cfg, MembersRev::new(headers, XFF), |m| {
            m.and_then(parse_ip_with_port).map(Node::Ip)
        }),
        ..Claimed::default()
    };
    if c.walk.is_none() {
        malformed = true;
    }
    let depth = c.walk.as_ref().map_or(1, |w| w.depth);
    let mut pick = |name| match member_at_depth(headers, name, depth) {
        Ok(m) => m,
        Err(()) => {
            malformed = true;
            None
        }
    };
    let proto = pick(XFP);
    // Most LBs pass a client's X-Forwarded-Host through untouched: at any
    // depth it may be the client's, so it is read only when the operator
    // says their LB sets it.
    let host = if cfg.accept_host { pick(XFH) } else { None };
    let port = pick(XF_PORT);
    let prefix = if cfg.accept_prefix {
        pick(XF_PREFIX)
    } else {
        None
    };
    c.proto = validate(proto, Proto::parse, &mut malformed);
    c.authority = validate(host, Authority::parse, &mut malformed);
    c.port = validate(port, crate::http::node::parse_port, &mut malformed);
    c.prefix = validate(prefix, parse_prefix, &mut malformed).flatten();
    if malformed {
        counters.add(Counter::ForwardedMalformed);
    }
    c
}

fn validate<'a, T>(
    v: Option<&'a str>,
    parse: impl Fn(&'a str) -> Option<T>,
    malformed: &mut bool,
) -> Option<T> {
    let v = v?;
    let parsed = parse(v);
    if parsed.is_none() {
        *malformed = true;
    }
    parsed
}

/// A trusted peer's RFC 7239 claims (`family: "forwarded"`). A malformed
/// header is ignored whole and counted: the values then come from the
/// connection, never from `X-Forwarded-*`, which the client may have sent.
fn claims_from_forwarded(
    cfg: &ForwardedConfig,
    headers: &Headers,
    counters: &mut CounterSet,
) -> Claimed {
    if !present(headers, FORWARDED) {
        return Claimed::default();
    }
    let parsed = parse_forwarded(cfg, headers);
    if parsed.is_none() {
        counters.add(Counter::ForwardedMalformed);
    }
    parsed.unwrap_or_default()
}

/// `None` if the Forwarded header is malformed.
fn parse_forwarded(cfg: &ForwardedConfig, headers: &Headers) -> Option<Claimed> {
    let mut lines = Vec::new();
    for v in values(headers, FORWARDED) {
        lines.push(std::str::from_utf8(v).ok()?);
    }
    let elements = rfc7239::parse(lines)?;
    let w = walk(cfg, elements.iter().rev(), |e| {
        Some(e.for_node.unwrap_or(Node::Hidden))
    })?;
    // The element `depth` from the right, clamped to the leftmost.
    let e = elements.get(elements.len().saturating_sub(w.depth))?;
    // `host=` (with its port) only when the operator trusts the LB's host.
    let authority = if cfg.accept_host {
        e.host.clone()
    } else {
        None
    };
    let port = authority.as_ref().and_then(|a| a.port);
    Some(Claimed {
        proto: e.proto,
        authority,
        port,
        prefix: None,
        walk: Some(w),
    })
}

/// A path prefix: starts with `/`, path characters only, no empty or dot
/// segments, no backslash. Returns `Some(None)` for `/` (no prefix).
fn parse_prefix(s: &str) -> Option<Option<String>> {
    if !s.starts_with('/') || s.len() > MAX_PREFIX_LEN {
        return None;
    }
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    if trimmed.is_empty() {
        return Some(None);
    }
    for seg in trimmed.split('/').skip(1) {
        if seg.is_empty() || seg == "." || seg == ".." {
            return None;
        }
        let ok = seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%".contains(&b));
        if !ok {
            return None;
        }
    }
    Some(Some(trimmed.to_string()))
}

/// The peer's address, from the configured source. With a peer token, the
/// header is `<address>;<token>` and only a matching token counts; without
/// one, anything after a `;` is ignored (a reference `header_mutation`
/// talking to a filter that has no token configured).
fn peer_address(
    cfg: &ForwardedConfig,
    headers: &Headers,
    conn: &mut dyn Connection,
) -> Result<IpAddr, PeerProblem> {
    match &cfg.peer {
        PeerSource::SourceAddress => conn.source_address().ok_or(PeerProblem::Missing),
        PeerSource::Header(name) => {
            let mut vals = values(headers, name);
            let only = vals.next().ok_or(PeerProblem::Missing)?;
            if vals.next().is_some() {
                // Two values: not what Envoy's OVERWRITE writes.
                return Err(PeerProblem::Malformed);
            }
            let v = std::str::from_utf8(only).map_err(|_| PeerProblem::Malformed)?;
            let (addr, token) = match v.split_once(';') {
                Some((a, t)) => (a, Some(t)),
                None => (v, None),
            };
            if let Some(want) = &cfg.peer_token {
                if !token.is_some_and(|t| want.matches(t)) {
                    return Err(PeerProblem::Unverified);
                }
            }
            parse_ip_with_port(addr).ok_or(PeerProblem::Malformed)
        }
    }
}

/// The downstream connection's scheme, memoized in `tls`.
fn connection_proto(conn: &mut dyn Connection, tls: &mut Option<bool>) -> Proto {
    let is_tls = *tls.get_or_insert_with(|| conn.is_tls());
    if is_tls {
        Proto::Https
    } else {
        Proto::Http
    }
}

/// Whether an untrusted peer sent forwarding headers we remove or replace.
/// Envoy adds `X-Forwarded-Proto` with the connection's own scheme when none
/// arrives, so that value alone is not the client's doing.
fn stripped_anything(headers: &Headers, proto: Proto) -> bool {
    headers
        .iter()
        .any(|(n, _)| *n != XFP && *n != AUTHORITY && *n != "host" && names::is_owned(n))
        || values(headers, XFP).any(|v| v != proto.as_str().as_bytes())
}

/// Whether a trusted peer's request carries the family its LB does not
/// emit: the client's, passed through; it is removed, never read.
fn other_family_present(cfg: &ForwardedConfig, headers: &Headers) -> bool {
    match cfg.family {
        Family::XForwarded => present(headers, FORWARDED),
        Family::Forwarded => X_FORWARDED_FAMILY
            .iter()
            // Envoy adds X-Forwarded-Proto itself when none arrives.
            .any(|n| *n != XFP && present(headers, n)),
    }
}

/// Decides the external view of a request and the header changes that give
/// the upstream that view, or rejects it.
pub fn decide(cfg: &ForwardedConfig, headers: &Headers, conn: &mut dyn Connection) -> Decision {
    let mut counters = CounterSet::default();
    let peer = match peer_address(cfg, headers, conn) {
        Ok(ip) => Some(ip),
        Err(problem) => {
            counters.add(Counter::ForwardedPeerUnknown);
            if problem == PeerProblem::Unverified {
                counters.add(Counter::ForwardedPeerUnverified);
            }
            if problem == PeerProblem::Missing {
                counters.add(Counter::ForwardedPeerMissing);
            }
            if let Some(n) = alert_now(problem) {
                conn.alert(&peer_alert(cfg, problem, n));
            }
            None
        }
    };
    // A TCP load balancer forwards the client's bytes: its forwarding
    // headers are the client's, never read.
    let tcp_lb = match peer {
        Some(p) if !cfg.tcp_load_balancers.is_empty() => cfg.tcp_load_balancer(p),
        _ => None,
    };
    let trusted = tcp_lb.is_none() && peer.is_some_and(|p| cfg.trusts_peer(p));

    let claimed = if trusted {
        counters.add(Counter::ForwardedTrustedPeer);
        if other_family_present(cfg, headers) {
            counters.add(Counter::ForwardedOtherFamilyRemoved);
        }
        // Only the family the LB emits is read; no fallback to the other.
        match cfg.family {
            Family::XForwarded => claims_from_x_forwarded(cfg, headers, &mut counters),
            Family::Forwarded => claims_from_forwarded(cfg, headers, &mut counters),
        }
    } else {
        counters.add(if tcp_lb.is_some() {
            Counter::ForwardedTcpPeer
        } else {
            Counter::ForwardedUntrustedPeer
        });
        Claimed::default()
    };

    // The connection's own scheme, asked of the host at most once.
    let mut tls = None;
    // The external origin: configured (for every request, or for this
    // host), claimed by a trusted peer, the TCP load balancer's scheme, or
    // the connection's own.
    let (proto, authority, port) = match &cfg.external_origin {
        Some(o) => (o.proto, o.authority.clone(), o.port()),
        None => {
            let authority = match claimed.authority {
                Some(a) => a,
                None => {
                    let host = values(headers, AUTHORITY)
                        .next()
                        .and_then(|v| std::str::from_utf8(v).ok());
                    match host.and_then(Authority::parse) {
                        Some(a) => a,
                        None => return reject(Reason::HostMalformed, counters),
                    }
                }
            };
            match cfg.origin_for(&authority) {
                // The host's declared origin; the request's host is its host.
                Some(o) => (o.proto, authority, o.port()),
                None => {
                    let proto = match (claimed.proto, tcp_lb) {
                        (Some(p), _) => p,
                        (None, Some(lb)) => lb.proto,
                        (None, None) => connection_proto(conn, &mut tls),
                    };
                    let port = claimed
                        .port
                        .or(authority.port)
                        .unwrap_or(proto.default_port());
                    (proto, authority, port)
                }
            }
        }
    };
    if !trusted && tcp_lb.is_none() && stripped_anything(headers, connection_proto(conn, &mut tls))
    {
        counters.add(Counter::ForwardedUntrustedStripped);
    }
    if !cfg.allowed_hosts.is_empty()
        && !cfg.allowed_hosts.iter().any(|p| p.matches(&authority.host))
    {
        return reject(Reason::HostNotAllowed, counters);
    }

    let mut chain = Vec::new();
    let mut client = None;
    if let Some(peer) = peer {
        let mut hidden = false;
        if let Some(w) = &claimed.walk {
            match w.client {
                Some(Node::Ip(ip)) => chain.push(ip),
                // A client the trusted chain hides (`for=unknown`, `_name`)
                // gets no entry; the proxies next to it are not the client.
                Some(Node::Hidden) => hidden = true,
                None => {}
            }
            chain.extend(w.proxies.iter().rev());
        }
        if let Some(lb) = tcp_lb {
            // Behind the PROXY protocol, Envoy's source.address is the
            // client the PROXY header named; otherwise the load balancer
            // hides the client, and the app is not told it is the LB.
            if lb.proxy_protocol {
                match conn.source_address() {
                    Some(ip) => chain.push(ip),
                    None => {
                        hidden = true;
                        counters.add(Counter::ForwardedProxyClientUnusable);
                        if let Some(n) = alert_now(PeerProblem::ProxyClientUnusable) {
                            conn.alert(&peer_alert(cfg, PeerProblem::ProxyClientUnusable, n));
                        }
                    }
                }
            } else {
                hidden = true;
            }
        }
        chain.push(peer);
        if !hidden {
            client = chain.first().copied();
        }
    }
    let view = ExternalView {
        proto,
        authority,
        port,
        chain,
        client,
        prefix: claimed.prefix,
    };
    let ops = plan(cfg, headers, &view);
    // X-Forwarded-For gains the peer and X-Real-IP is added on every
    // request; count only corrections: what the app builds URLs from
    // (scheme, host, port, prefix, Forwarded) and client headers that
    // arrived with another value.
    let corrected = ops.iter().any(|op| match op {
        HeaderOp::Set(XFF, _) => false,
        HeaderOp::Set(X_REAL_IP, _) => present(headers, X_REAL_IP),
        HeaderOp::Set(name, _) | HeaderOp::Remove(name) => *name != XFF,
        _ => false,
    });
    if corrected {
        counters.add(Counter::ForwardedRewritten);
    }
    let external = Origin {
        proto: view.proto,
        authority: Authority {
            host: view.authority.host.clone(),
            port: Some(view.port),
        },
    };
    Decision {
        verdict: Verdict::Forward(ops),
        counters,
        external: Some(external),
    }
}

fn reject(reason: Reason, mut counters: CounterSet) -> Decision {
    counters.add(reason.counter());
    Decision {
        verdict: Verdict::Reject(reason),
        counters,
        external: None,
    }
}

/// The header changes that turn the request's headers into `view`, skipping
/// any header that already holds exactly the wanted value.
pub fn plan(cfg: &ForwardedConfig, headers: &Headers, view: &ExternalView) -> Vec<HeaderOp> {
    let host = view.authority.display_for(view.proto, view.port);
    // The client's address, written once: X-Real-IP, the one-hop
    // X-Forwarded-For and the other client headers all carry it.
    let client = view.client.map(|ip| {
        let mut s = String::with_capacity(15);
        push_ip(&mut s, ip);
        s
    });
    let seen = Seen::of(headers);
    let mut ops = Vec::new();
    // Values are built into one scratch buffer and copied only into the
    // changes actually made: on a request whose headers are already right
    // (a trusted LB's), this allocates nothing per header.
    let mut scratch = String::with_capacity(64);
    want(&mut ops, &seen, XFP, Some(view.proto.as_str()));
    want(&mut ops, &seen, XFH, Some(&host));
    push_decimal(&mut scratch, u32::from(view.port));
    want(&mut ops, &seen, XF_PORT, Some(&scratch));
    scratch.clear();
    let xff = match cfg.x_forwarded_for {
        XffForm::Chain => {
            for (i, ip) in view.chain.iter().enumerate() {
                if i > 0 {
                    scratch.push_str(", ");
                }
                push_ip(&mut scratch, *ip);
            }
            (!scratch.is_empty()).then_some(scratch.as_str())
        }
        XffForm::Client => client.as_deref(),
    };
    want(&mut ops, &seen, XFF, xff);
    want(&mut ops, &seen, XF_PREFIX, view.prefix.as_deref());
    let forwarded = cfg.emit_forwarded.then(|| canonical_forwarded(view, &host));
    want(&mut ops, &seen, FORWARDED, forwarded.as_deref());
    want(&mut ops, &seen, X_REAL_IP, client.as_deref());
    if seen.rare {
        // The owned headers a request rarely carries.
        let rare: Vec<&str> = headers
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| names::is_rarely_sent(n))
            .collect();
        // The other client-address headers: rewritten when they arrive (an
        // app built for a CDN keeps working, with the decided client), never
        // added. (X_REAL_IP, the first, is always written above.)
        for name in CLIENT_ADDRESS.iter().skip(1) {
            if rare.contains(name) {
                let mut have = values(headers, name);
                let first = have.next();
                let single = have.next().is_none();
                want_one(&mut ops, name, first, single, client.as_deref());
            }
        }
        for name in REMOVED {
            if rare.contains(&name) {
                ops.push(HeaderOp::Remove(name));
            }
        }
    }
    if cfg.rewrite_host && seen.authority != Some(host.as_bytes()) {
        ops.push(HeaderOp::Set(AUTHORITY, host));
    }
    if let PeerSource::Header(name) = &cfg.peer {
        if present(headers, name) {
            ops.push(HeaderOp::RemoveNamed(name.clone()));
        }
    }
    ops
}

/// The headers [`plan`] writes, as the request carries them, found in one
/// pass over the request instead of one per header.
struct Seen<'h> {
    /// First value and whether it is the only one, in [`Seen::SLOTS`] order.
    slots: [(Option<&'h [u8]>, bool); 7],
    /// The first `:authority`.
    authority: Option<&'h [u8]>,
    /// Whether any header [`names::is_rarely_sent`] arrived.
    rare: bool,
}

impl<'h> Seen<'h> {
    const SLOTS: [&'static str; 7] = [XFP, XFH, XF_PORT, XFF, XF_PREFIX, FORWARDED, X_REAL_IP];

    fn of(headers: &'h Headers<'h>) -> Seen<'h> {
        let mut seen = Seen {
            slots: [(None, true); 7],
            authority: None,
            rare: false,
        };
        for (n, v) in headers {
            let slot = match *n {
                XFP => 0,
                XFH => 1,
                XF_PORT => 2,
                XFF => 3,
                XF_PREFIX => 4,
                FORWARDED => 5,
                X_REAL_IP => 6,
                AUTHORITY => {
                    seen.authority = seen.authority.or(Some(*v));
                    continue;
                }
                other => {
                    seen.rare |= names::is_rarely_sent(other);
                    continue;
                }
            };
            if let Some((first, single)) = seen.slots.get_mut(slot) {
                if first.is_some() {
                    *single = false;
                } else {
                    *first = Some(*v);
                }
            }
        }
        seen
    }

    fn get(&self, name: &str) -> (Option<&'h [u8]>, bool) {
        Self::SLOTS
            .iter()
            .position(|s| *s == name)
            .and_then(|i| self.slots.get(i).copied())
            .unwrap_or((None, true))
    }
}

/// The change, if any, that leaves exactly one `name` header holding
/// `value` (`None`: no such header).
fn want(ops: &mut Vec<HeaderOp>, seen: &Seen, name: &'static str, value: Option<&str>) {
    let (first, single) = seen.get(name);
    want_one(ops, name, first, single, value);
}

fn want_one(
    ops: &mut Vec<HeaderOp>,
    name: &'static str,
    first: Option<&[u8]>,
    single: bool,
    value: Option<&str>,
) {
    match (value, first) {
        (Some(w), Some(v)) if single && v == w.as_bytes() => {}
        (Some(w), _) => ops.push(HeaderOp::Set(name, w.to_string())),
        (None, Some(_)) => ops.push(HeaderOp::Remove(name)),
        (None, None) => {}
    }
}

/// One RFC 7239 element describing the external request as a whole;
/// `for=unknown` (§6.2) when the client is hidden or not known.
fn canonical_forwarded(view: &ExternalView, host: &str) -> String {
    let client = match view.client {
        Some(IpAddr::V6(ip)) => format!("\"[{ip}]\""),
        Some(IpAddr::V4(ip)) => ip.to_string(),
        None => "unknown".to_string(),
    };
    let host = if host.contains([':', '[']) {
        format!("\"{host}\"")
    } else {
        host.to_string()
    };
    format!("for={client};host={host};proto={}", view.proto.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    struct Conn {
        tls: bool,
        source: Option<IpAddr>,
        asked_tls: bool,
        alerts: Vec<String>,
    }

    impl Connection for Conn {
        fn source_address(&mut self) -> Option<IpAddr> {
            self.source
        }
        fn is_tls(&mut self) -> bool {
            self.asked_tls = true;
            self.tls
        }
        fn alert(&mut self, message: &str) {
            self.alerts.push(message.to_string());
        }
    }

    /// The peer token the tests' Envoy writes after the peer address.
    const TOKEN: &str = "test-peer-token-0123456789abcdefghijklmnop";

    fn parse_cfg(cfg: &str) -> ForwardedConfig {
        Config::parse_with_env(cfg.as_bytes(), &|k| {
            (k == config::DEFAULT_PEER_TOKEN_ENV).then(|| TOKEN.to_string())
        })
        .unwrap()
        .forwarded
        .unwrap()
    }

    /// The peer header as the reference header_mutation writes it; a
    /// `raw:` prefix sends the rest as is (a client's forgery).
    fn peer_header(peer: &str) -> String {
        match peer.strip_prefix("raw:") {
            Some(raw) => raw.to_string(),
            None => format!("{peer};{TOKEN}"),
        }
    }

    /// What the upstream receives: the request headers after the ops.
    struct Outcome {
        headers: Vec<(String, Vec<u8>)>,
        /// The decided external origin, serialized.
        external: Option<String>,
        counters: CounterSet,
        rejected: Option<Reason>,
        asked_tls: bool,
        alerts: Vec<String>,
    }

    impl Outcome {
        fn get(&self, name: &str) -> Option<String> {
            let v: Vec<_> = self
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                .collect();
            assert!(v.len() <= 1, "{name} has {} values: {v:?}", v.len());
            v.into_iter().next()
        }
        fn xf(&self) -> (String, String, String, String) {
            (
                self.get(XFP).unwrap_or_default(),
                self.get(XFH).unwrap_or_default(),
                self.get(XF_PORT).unwrap_or_default(),
                self.get(XFF).unwrap_or_default(),
            )
        }
    }

    fn run_with(cfg: &str, peer: &str, tls: bool, req: &[(&str, &[u8])]) -> Outcome {
        run_from(cfg, peer, tls, None, req)
    }

    /// `source`: Envoy's `source.address` (the PROXY header's client).
    fn run_from(
        cfg: &str,
        peer: &str,
        tls: bool,
        source: Option<&str>,
        req: &[(&str, &[u8])],
    ) -> Outcome {
        let cfg = parse_cfg(cfg);
        let mut headers: Vec<(String, Vec<u8>)> = vec![(":authority".into(), b"internal".to_vec())];
        if !peer.is_empty() {
            headers.push(("x-oidc-edge-peer".into(), peer_header(peer).into_bytes()));
        }
        for (n, v) in req {
            if *n == ":authority" {
                headers.retain(|(h, _)| h != ":authority");
            }
            headers.push((n.to_string(), v.to_vec()));
        }
        let mut conn = Conn {
            tls,
            source: source.map(|a| a.parse().expect("source address")),
            asked_tls: false,
            alerts: Vec::new(),
        };
        let borrowed: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let d = decide(&cfg, &borrowed, &mut conn);
        let external = d.external.as_ref().map(Origin::serialize);
        let rejected = match &d.verdict {
            Verdict::Reject(r) => Some(*r),
            Verdict::Forward(ops) => {
                for op in ops {
                    match op {
                        HeaderOp::Set(n, v) => {
                            headers.retain(|(h, _)| h != n);
                            headers.push((n.to_string(), v.clone().into_bytes()));
                        }
                        HeaderOp::Remove(n) => headers.retain(|(h, _)| h != n),
                        HeaderOp::RemoveNamed(n) => headers.retain(|(h, _)| h != n),
                        HeaderOp::SetNamed(..) => panic!("forwarded sets only fixed names"),
                    }
                }
                None
            }
        };
        Outcome {
            headers,
            external,
            counters: d.counters,
            rejected,
            asked_tls: conn.asked_tls,
            alerts: conn.alerts,
        }
    }

    fn run(cfg: &str, peer: &str, req: &[(&str, &str)]) -> Outcome {
        let req: Vec<(&str, &[u8])> = req.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        run_with(cfg, peer, false, &req)
    }

    /// An LB that sets every X-Forwarded header itself (host and prefix too).
    const LB: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8", "fd00::/8"], "accept_host": true, "accept_prefix": true}}"#;
    /// The defaults: the LB sets X-Forwarded-For/-Proto/-Port only.
    const LB_DEFAULTS: &str = r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "fd00::/8"]}}"#;
    const HOPS2: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_hops": 2}}"#;
    const LB_HOPS2: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "trusted_hops": 2}}"#;
    const LB_FW: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "family": "forwarded", "accept_host": true}}"#;

    fn s(v: (&str, &str, &str, &str)) -> (String, String, String, String) {
        (v.0.into(), v.1.into(), v.2.into(), v.3.into())
    }

    /// The trust table: (case and source, config, peer, request headers,
    /// expected (XFP, XFH, X-Forwarded-Port, XFF) at the upstream).
    #[test]
    fn trust_table() {
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            (&'a str, &'a str, &'a str, &'a str),
        );
        let rows: &[Row] = &[
            (
                "trusted LB, one hop: values taken, XFF chain kept",
                LB, "10.0.0.5",
                &[(XFP, "https"), (XFH, "app.example.com"), (XF_PORT, "443"), (XFF, "203.0.113.9")],
                ("https", "app.example.com", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "untrusted client spoofing everything: all replaced from the connection",
                LB, "198.51.100.7",
                &[(XFP, "https"), (XFH, "evil.example"), (XF_PORT, "443"), (XFF, "10.0.0.5"), (FORWARDED, "for=10.0.0.5;proto=https")],
                ("http", "internal", "80", "198.51.100.7"),
            ),
            (
                "client claiming an address inside trusted_cidrs via XFF stays untrusted (trust is on the peer)",
                LB, "198.51.100.7",
                &[(XFF, "10.0.0.9"), (XFP, "https")],
                ("http", "internal", "80", "198.51.100.7"),
            ),
            (
                "LB appends to a client-sent XFF: the client's own claims left of it are dropped",
                LB, "10.0.0.5",
                &[(XFF, "1.1.1.1, 2.2.2.2, 203.0.113.9"), (XFP, "https")],
                ("https", "internal", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "LB appends XFP to a client-sent one: the rightmost (the LB's) wins",
                LB, "10.0.0.5",
                &[(XFF, "203.0.113.9"), (XFP, "http, https"), (XFH, "evil.example, app.example.com")],
                ("https", "app.example.com", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "internal proxies in trusted_cidrs are skipped recursively (nginx real_ip_recursive)",
                LB, "10.0.0.5",
                &[(XFF, "6.6.6.6, 203.0.113.9, 10.1.1.1, 10.2.2.2"), (XFP, "https")],
                ("https", "internal", "443", "203.0.113.9, 10.1.1.1, 10.2.2.2, 10.0.0.5"),
            ),
            (
                "trusted_hops 2 without CIDRs: CDN + LB, second from the right is the client",
                HOPS2, "192.0.2.10",
                &[(XFF, "6.6.6.6, 203.0.113.9, 198.51.100.1"), (XFP, "http, https, https")],
                ("https", "internal", "443", "203.0.113.9, 198.51.100.1, 192.0.2.10"),
            ),
            (
                "trusted_hops 2, client spoofs XFP: the CDN's value (2nd from right) wins",
                HOPS2, "192.0.2.10",
                &[(XFF, "203.0.113.9, 198.51.100.1"), (XFP, "http, https, http")],
                ("https", "internal", "443", "203.0.113.9, 198.51.100.1, 192.0.2.10"),
            ),
            (
                "hop count larger than the list: the leftmost entry is the client",
                LB_HOPS2, "10.0.0.5",
                &[(XFF, "203.0.113.9"), (XFP, "https")],
                ("https", "internal", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "trusted_hops with CIDRs: the peer must still be in the CIDRs",
                LB_HOPS2, "192.0.2.10",
                &[(XFF, "203.0.113.9, 198.51.100.1"), (XFP, "https")],
                ("http", "internal", "80", "192.0.2.10"),
            ),
            (
                "LB sends no port and keeps an internal Host with a port: that port stays (as Werkzeug's ProxyFix)",
                LB, "10.0.0.5",
                &[(":authority", "internal:10000"), (XFP, "https")],
                ("https", "internal:10000", "10000", "10.0.0.5"),
            ),
            (
                "trusted peer without XFF: the peer is the client",
                LB, "10.0.0.5",
                &[(XFP, "https")],
                ("https", "internal", "443", "10.0.0.5"),
            ),
            (
                "IPv6 peer and chain, ports in XFF entries dropped",
                LB, "[fd00::5]:43210",
                &[(XFF, "[2001:db8::9]:5555"), (XFP, "https"), (XFH, "[2001:db8::1]:8443")],
                ("https", "[2001:db8::1]:8443", "8443", "2001:db8::9, fd00::5"),
            ),
            (
                "IPv4-mapped peer matches an IPv4 CIDR",
                LB, "::ffff:10.0.0.5",
                &[(XFP, "https"), (XFF, "203.0.113.9")],
                ("https", "internal", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "X-Forwarded-Port beats the port in X-Forwarded-Host",
                LB, "10.0.0.5",
                &[(XFP, "https"), (XFH, "app.example.com:8443"), (XF_PORT, "9443")],
                ("https", "app.example.com:9443", "9443", "10.0.0.5"),
            ),
            (
                "default port is not written into the host",
                LB, "10.0.0.5",
                &[(XFP, "http"), (XFH, "App.Example.com:80")],
                ("http", "app.example.com", "80", "10.0.0.5"),
            ),
            (
                "malformed XFP is ignored whole: the connection's scheme is used",
                LB, "10.0.0.5",
                &[(XFP, "javascript"), (XFH, "app.example.com")],
                ("http", "app.example.com", "80", "10.0.0.5"),
            ),
            (
                "malformed XFH is ignored: Host is used",
                LB, "10.0.0.5",
                &[(XFP, "https"), (XFH, "app.example.com/evil")],
                ("https", "internal", "443", "10.0.0.5"),
            ),
            (
                "malformed trusted XFF entry: chain ignored, the peer is the client",
                LB, "10.0.0.5",
                &[(XFF, "203.0.113.9, not-an-ip"), (XFP, "https")],
                ("https", "internal", "443", "10.0.0.5"),
            ),
            (
                "garbage beyond the trusted hops is the client's own: not judged, dropped",
                LB, "10.0.0.5",
                &[(XFF, "<script>, 203.0.113.9"), (XFP, "https")],
                ("https", "internal", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "family forwarded (RFC 7239 §7.4 example)",
                LB_FW, "10.0.0.5",
                &[(FORWARDED, "for=\"[2001:db8:cafe::17]:4711\";proto=https;host=app.example.com")],
                ("https", "app.example.com", "443", "2001:db8:cafe::17, 10.0.0.5"),
            ),
            (
                "family x-forwarded: a Forwarded header is the client's (the LB passes it through), never read",
                LB, "10.0.0.5",
                &[(FORWARDED, "for=\"[2001:db8:cafe::17]:4711\";proto=https;host=app.example.com")],
                ("http", "internal", "80", "10.0.0.5"),
            ),
            (
                "family forwarded: X-Forwarded-* is the client's, never read",
                LB_FW, "10.0.0.5",
                &[(XFP, "https"), (XFH, "app.example.com"), (XF_PORT, "8443"), (XFF, "203.0.113.9")],
                ("http", "internal", "80", "10.0.0.5"),
            ),
            (
                "Forwarded with several elements and lines: depth follows the trust walk",
                LB_FW, "10.0.0.5",
                &[(FORWARDED, "for=6.6.6.6;proto=http;host=evil.example"), (FORWARDED, "for=203.0.113.9;proto=https;host=app.example.com, for=10.9.9.9;proto=http;host=internal")],
                ("https", "app.example.com", "443", "203.0.113.9, 10.9.9.9, 10.0.0.5"),
            ),
            (
                "both families, family x-forwarded (default): only X-Forwarded-* is read",
                LB, "10.0.0.5",
                &[(XFP, "https"), (XFH, "xf.example.com"), (FORWARDED, "for=203.0.113.9;proto=http;host=fw.example.com")],
                ("https", "xf.example.com", "443", "10.0.0.5"),
            ),
            (
                "both families, family forwarded: only Forwarded is read",
                LB_FW, "10.0.0.5",
                &[(XFP, "https"), (XFH, "xf.example.com"), (FORWARDED, "for=203.0.113.9;proto=http;host=fw.example.com")],
                ("http", "fw.example.com", "80", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "family forwarded, Forwarded malformed: connection values, never the client's X-Forwarded-* (issue: no fallback)",
                LB_FW, "10.0.0.5",
                &[(XFP, "https"), (XFH, "xf.example.com"), (FORWARDED, "for=203.0.113.9;proto=https;host=\"fw.example.com")],
                ("http", "internal", "80", "10.0.0.5"),
            ),
            (
                "family x-forwarded, X-Forwarded-Proto malformed: the connection's scheme, never Forwarded's",
                LB, "10.0.0.5",
                &[(XFP, "gopher"), (FORWARDED, "for=203.0.113.9;proto=https;host=fw.example.com")],
                ("http", "internal", "80", "10.0.0.5"),
            ),
            (
                "defaults: a trusted LB's X-Forwarded-Host is ignored (ALB, GCLB, nginx pass the client's through); \
                 Host is used; X-Forwarded-For is the decided client alone",
                LB_DEFAULTS, "10.0.0.5",
                &[(XFP, "https"), (XFH, "evil.example"), (XF_PORT, "443"), (XFF, "203.0.113.9")],
                ("https", "internal", "443", "203.0.113.9"),
            ),
            (
                "defaults: X-Forwarded-Port is still trusted (LBs set it), and beats Host's port",
                LB_DEFAULTS, "10.0.0.5",
                &[(":authority", "app.example.com:8080"), (XFP, "https"), (XF_PORT, "8443"), (XFH, "evil.example:1")],
                ("https", "app.example.com:8443", "8443", "10.0.0.5"),
            ),
            (
                "family forwarded without accept_host: host= is ignored, Host is used",
                r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "family": "forwarded"}}"#, "10.0.0.5",
                &[(FORWARDED, "for=203.0.113.9;proto=https;host=\"evil.example:8443\"")],
                ("https", "internal", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "family x-forwarded, only a malformed Forwarded: connection values",
                LB, "10.0.0.5",
                &[(FORWARDED, "for=[2001:db8::1];proto=https")],
                ("http", "internal", "80", "10.0.0.5"),
            ),
            (
                "missing peer header: untrusted",
                LB, "",
                &[(XFP, "https"), (XFF, "203.0.113.9")],
                ("http", "internal", "80", ""),
            ),
            (
                "garbage peer header: untrusted",
                LB, "raw:10.0.0.5, 10.0.0.6",
                &[(XFP, "https")],
                ("http", "internal", "80", ""),
            ),
            (
                "external_origin overrides claimed and connection values; client still from the chain",
                r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "external_origin": "https://app.example.com"}}"#, "10.0.0.5",
                &[(XFP, "http"), (XFH, "internal"), (XFF, "203.0.113.9")],
                ("https", "app.example.com", "443", "203.0.113.9, 10.0.0.5"),
            ),
            (
                "no trust configured: everything from the connection",
                r#"{"forwarded": {}}"#, "10.0.0.5",
                &[(XFP, "https"), (XFF, "203.0.113.9")],
                ("http", "internal", "80", "10.0.0.5"),
            ),
        ];
        for (why, cfg, peer, req, want) in rows {
            let out = run(cfg, peer, req);
            assert_eq!(out.rejected, None, "{why}");
            assert_eq!(out.xf(), s(*want), "{why}");
            assert_eq!(
                out.get("x-oidc-edge-peer"),
                None,
                "{why}: the peer header must not reach the upstream"
            );
            if !cfg.contains("emit_forwarded") {
                assert_eq!(
                    out.get(FORWARDED),
                    None,
                    "{why}: a stale Forwarded must not reach the upstream"
                );
            }
        }
    }

    #[test]
    fn counters() {
        let c = |cfg, peer, req: &[(&str, &str)]| run(cfg, peer, req).counters;
        let trusted = c(LB, "10.0.0.5", &[(XFP, "https")]);
        assert!(trusted.contains(Counter::ForwardedTrustedPeer));
        assert!(
            trusted.contains(Counter::ForwardedRewritten),
            "XFH and the port were added"
        );
        let already_right = c(
            LB,
            "10.0.0.5",
            &[
                (XFP, "https"),
                (XFH, "internal"),
                (XF_PORT, "443"),
                (XFF, "203.0.113.9"),
            ],
        );
        assert!(
            !already_right.contains(Counter::ForwardedRewritten),
            "only XFF changed (the peer appended): nothing the app builds URLs from"
        );
        assert!(!trusted.contains(Counter::ForwardedMalformed));

        let spoof = c(LB, "198.51.100.7", &[(XFF, "10.0.0.5")]);
        assert!(spoof.contains(Counter::ForwardedUntrustedPeer));
        assert!(spoof.contains(Counter::ForwardedUntrustedStripped));
        let plain = c(LB, "198.51.100.7", &[]);
        assert!(!plain.contains(Counter::ForwardedUntrustedStripped));
        let envoy_added = c(LB, "198.51.100.7", &[(XFP, "http")]);
        assert!(
            !envoy_added.contains(Counter::ForwardedUntrustedStripped),
            "Envoy adds XFP with the connection's scheme itself"
        );
        let spoofed_proto = c(LB, "198.51.100.7", &[(XFP, "https")]);
        assert!(spoofed_proto.contains(Counter::ForwardedUntrustedStripped));

        assert!(c(LB, "10.0.0.5", &[(XFP, "gopher")]).contains(Counter::ForwardedMalformed));
        assert!(
            c(LB_FW, "10.0.0.5", &[(FORWARDED, "for=\"x")]).contains(Counter::ForwardedMalformed)
        );
        let other = c(LB, "10.0.0.5", &[(FORWARDED, "for=\"x")]);
        assert!(
            !other.contains(Counter::ForwardedMalformed),
            "the other family is not read, so not judged"
        );
        assert!(other.contains(Counter::ForwardedOtherFamilyRemoved));
        assert!(c(LB_FW, "10.0.0.5", &[(XFH, "a.example")])
            .contains(Counter::ForwardedOtherFamilyRemoved));
        assert!(
            !c(LB_FW, "10.0.0.5", &[(XFP, "http")]).contains(Counter::ForwardedOtherFamilyRemoved),
            "Envoy adds X-Forwarded-Proto itself"
        );
        assert!(!c(LB, "10.0.0.5", &[(XFH, "a.example")])
            .contains(Counter::ForwardedOtherFamilyRemoved));
        assert!(c(LB, "", &[]).contains(Counter::ForwardedPeerUnknown));
        assert!(c(LB, "", &[]).contains(Counter::ForwardedPeerMissing));
        assert!(
            !c(LB, "not-an-ip", &[]).contains(Counter::ForwardedPeerMissing),
            "present but malformed is not missing"
        );
    }

    #[test]
    fn headers_already_right_are_not_rewritten() {
        let cfg = parse_cfg(LB);
        let peer = peer_header("10.0.0.5");
        let headers: Vec<(&str, &[u8])> = [
            (":authority", "internal"),
            (XFP, "https"),
            (XFH, "internal"),
            (XF_PORT, "443"),
            (XFF, "203.0.113.9"),
            (X_REAL_IP, "203.0.113.9"),
            ("x-oidc-edge-peer", peer.as_str()),
        ]
        .iter()
        .map(|(n, v)| (*n, v.as_bytes()))
        .collect();
        let d = decide(
            &cfg,
            &headers,
            &mut Conn {
                tls: false,
                source: None,
                asked_tls: false,
                alerts: Vec::new(),
            },
        );
        assert_eq!(
            d.verdict,
            Verdict::Forward(vec![
                HeaderOp::Set(XFF, "203.0.113.9, 10.0.0.5".into()),
                HeaderOp::RemoveNamed("x-oidc-edge-peer".into()),
            ])
        );
    }

    /// Issue point 3: every client-address header an app may read tells the
    /// decided client, whoever sent it; scheme and host variants are removed.
    #[test]
    fn client_address_headers_follow_the_decided_client() {
        // (case, config, peer, request, X-Real-IP, True-Client-IP, CF-Connecting-IP at the app)
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: &[Row] = &[
            (
                "untrusted client spoofing X-Real-IP and CDN headers: all say the peer",
                LB, "198.51.100.7",
                &[(X_REAL_IP, "10.0.0.9"), ("true-client-ip", "1.1.1.1"), ("cf-connecting-ip", "2.2.2.2")],
                Some("198.51.100.7"), Some("198.51.100.7"), Some("198.51.100.7"),
            ),
            (
                "trusted LB: X-Real-IP is the chain's client, not what arrived (nginx real_ip semantics)",
                LB, "10.0.0.5",
                &[(XFF, "203.0.113.9"), (X_REAL_IP, "6.6.6.6")],
                Some("203.0.113.9"), None, None,
            ),
            (
                "X-Real-IP is added when absent, like X-Forwarded-For; CDN headers are never added",
                LB, "10.0.0.5",
                &[(XFF, "2001:db8::9")],
                Some("2001:db8::9"), None, None,
            ),
            (
                "no peer known: no client to tell; client headers removed",
                LB, "",
                &[(X_REAL_IP, "10.0.0.9"), ("true-client-ip", "1.1.1.1")],
                None, None, None,
            ),
            (
                "hidden client (RFC 7239 §6.2 for=unknown): client headers removed, none invented",
                LB_FW, "10.0.0.5",
                &[(FORWARDED, "for=unknown;proto=https"), (X_REAL_IP, "10.0.0.5"), ("cf-connecting-ip", "1.1.1.1")],
                None, None, None,
            ),
        ];
        for (why, cfg, peer, req, real_ip, true_client, cf) in rows {
            let out = run(cfg, peer, req);
            assert_eq!(out.get(X_REAL_IP).as_deref(), *real_ip, "{why}");
            assert_eq!(out.get("true-client-ip").as_deref(), *true_client, "{why}");
            assert_eq!(out.get("cf-connecting-ip").as_deref(), *cf, "{why}");
        }
        // Every other spelling is removed, from trusted and untrusted peers.
        for peer in ["10.0.0.5", "198.51.100.7"] {
            let req: Vec<(&str, &str)> = REMOVED.iter().map(|n| (*n, "on")).collect();
            let out = run(LB, peer, &req);
            for n in REMOVED {
                assert_eq!(out.get(n), None, "{n} from {peer}");
            }
        }
        let spoof = run(LB, "198.51.100.7", &[("x-forwarded-ssl", "on")]);
        assert!(spoof.counters.contains(Counter::ForwardedUntrustedStripped));
        let spoof = run(LB, "198.51.100.7", &[(X_REAL_IP, "10.0.0.1")]);
        assert!(spoof.counters.contains(Counter::ForwardedUntrustedStripped));
        let corrected = run(
            LB,
            "10.0.0.5",
            &[
                (XFP, "http"),
                (XFH, "internal"),
                (XF_PORT, "80"),
                (X_REAL_IP, "6.6.6.6"),
            ],
        );
        assert!(
            corrected.counters.contains(Counter::ForwardedRewritten),
            "a wrong X-Real-IP is a correction"
        );
    }

    /// Issue point 6: when the trusted chain hides the client, the app is
    /// not told that the nearest trusted proxy is the client.
    #[test]
    fn a_hidden_client_stays_hidden() {
        const EMIT: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "family": "forwarded", "emit_forwarded": true}}"#;
        const EMIT_HOPS: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "trusted_hops": 2, "family": "forwarded", "emit_forwarded": true}}"#;
        // (case and source, config, peer, Forwarded lines, XFF and Forwarded at the app)
        let rows: &[(&str, &str, &str, &[&str], &str, &str)] = &[
            (
                "RFC 7239 §6.2: for=unknown from the peer; XFF has only the peer",
                EMIT,
                "10.0.0.5",
                &["for=unknown;proto=https"],
                "10.0.0.5",
                "for=unknown;host=internal;proto=https",
            ),
            (
                "RFC 7239 §6.3: obfuscated client behind a trusted internal proxy",
                EMIT,
                "10.0.0.5",
                &["for=_hidden;proto=https, for=10.9.9.9;proto=http"],
                "10.9.9.9, 10.0.0.5",
                "for=unknown;host=internal;proto=https",
            ),
            (
                "obfuscated identifier with an obfuscated port (§6.3 example)",
                EMIT,
                "10.0.0.5",
                &["for=\"_SEVKISEK:_1234\";proto=https"],
                "10.0.0.5",
                "for=unknown;host=internal;proto=https",
            ),
            (
                "a hidden proxy trusted by position is skipped, the client beyond it is known",
                EMIT_HOPS,
                "10.0.0.5",
                &["for=203.0.113.9, for=_lb2;proto=https"],
                "203.0.113.9, 10.0.0.5",
                "for=203.0.113.9;host=internal;proto=http",
            ),
            (
                "control: a known client is named",
                EMIT,
                "10.0.0.5",
                &["for=203.0.113.9;proto=https"],
                "203.0.113.9, 10.0.0.5",
                "for=203.0.113.9;host=internal;proto=https",
            ),
        ];
        for (why, cfg, peer, lines, xff, fw) in rows {
            let req: Vec<(&str, &str)> = lines.iter().map(|l| (FORWARDED, *l)).collect();
            let out = run(cfg, peer, &req);
            assert_eq!(out.get(XFF).as_deref(), Some(*xff), "{why}");
            assert_eq!(out.get(FORWARDED).as_deref(), Some(*fw), "{why}");
            assert_eq!(
                out.get(X_REAL_IP).is_some(),
                !fw.starts_with("for=unknown"),
                "{why}"
            );
            // What we emit reads back as the same view: a hidden client stays hidden.
            let back = run(EMIT, peer, &[(FORWARDED, fw)]);
            assert_eq!(back.get(FORWARDED).as_deref(), Some(*fw), "{why}");
        }
    }

    /// Issue point 4: a peer header Envoy did not write (header_mutation
    /// missing, or writing another name) is never trusted: counted, logged.
    #[test]
    fn a_peer_header_without_the_token_is_not_trusted() {
        let spoof = [(XFP, "https"), (XFH, "evil.example"), (XFF, "203.0.113.9")];
        // (case, peer header as it arrives, counted as unverified)
        let rows: &[(&str, &str, bool)] = &[
            (
                "client-sent, no token (header_mutation missing)",
                "raw:10.0.0.5",
                true,
            ),
            ("client-sent, guessed token", "raw:10.0.0.5;guess", true),
            (
                "token one character off",
                "raw:10.0.0.5;test-peer-token-0123456789abcdefghijklmnoq",
                true,
            ),
            (
                "token with trailing junk",
                &*format!("raw:10.0.0.5;{TOKEN}x"),
                true,
            ),
            ("token without an address", &*format!("raw:;{TOKEN}"), false),
            (
                "the token before the address",
                &*format!("raw:{TOKEN};10.0.0.5"),
                true,
            ),
            (
                "no peer header at all (header_mutation missing, client sent none)",
                "",
                false,
            ),
        ];
        for (why, peer, unverified) in rows {
            let out = run(LB, peer, &spoof);
            assert_eq!(out.xf(), s(("http", "internal", "80", "")), "{why}");
            assert!(
                out.counters.contains(Counter::ForwardedPeerUnknown),
                "{why}"
            );
            assert!(
                !out.counters.contains(Counter::ForwardedTrustedPeer),
                "{why}"
            );
            assert_eq!(
                out.counters.contains(Counter::ForwardedPeerUnverified),
                *unverified,
                "{why}"
            );
            assert_eq!(out.get("x-oidc-edge-peer"), None, "{why}");
        }
        let ok = run(LB, "10.0.0.5", &spoof);
        assert!(ok.counters.contains(Counter::ForwardedTrustedPeer));
        assert!(ok.alerts.is_empty());
        // Without a token configured (explicitly off), the address alone is
        // believed and anything after ';' ignored.
        let off = r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_token_env": null}}"#;
        assert!(run(off, "raw:10.0.0.5", &spoof)
            .counters
            .contains(Counter::ForwardedTrustedPeer));
        assert!(run(off, "raw:10.0.0.5;x", &spoof)
            .counters
            .contains(Counter::ForwardedTrustedPeer));
    }

    #[test]
    fn peer_problems_are_logged_loudly_but_not_once_per_request() {
        let mut alerts = Vec::new();
        for _ in 0..100 {
            alerts.extend(run(LB, "raw:10.0.0.5", &[]).alerts);
        }
        assert!(
            (1..=8).contains(&alerts.len()),
            "the 1st, 2nd, 4th... on this thread: {}",
            alerts.len()
        );
        let first = &alerts[0];
        for w in [
            "x-oidc-edge-peer",
            "peer token",
            "header_mutation",
            "envoy/edge.yaml",
        ] {
            assert!(first.contains(w), "{first} lacks {w}");
        }
        let missing: Vec<String> = (0..50).flat_map(|_| run(LB, "", &[]).alerts).collect();
        assert!(!missing.is_empty());
        assert!(
            missing[0].contains("without the x-oidc-edge-peer header"),
            "{}",
            missing[0]
        );
    }

    #[test]
    fn untrusted_https_comes_from_the_connection() {
        let out = run_with(
            LB,
            "198.51.100.7",
            true,
            &[(":authority", b"app.example.com")],
        );
        assert_eq!(
            out.xf(),
            s(("https", "app.example.com", "443", "198.51.100.7"))
        );
        assert!(out.asked_tls);
        let out = run(LB, "10.0.0.5", &[(XFP, "https")]);
        assert!(
            !out.asked_tls,
            "a trusted XFP makes the TLS property read unnecessary"
        );
    }

    #[test]
    fn non_utf8_values_are_malformed_not_fatal() {
        let out = run_with(
            LB,
            "10.0.0.5",
            false,
            &[(XFH, b"app.example.com\xff"), (XFP, b"https")],
        );
        assert_eq!(out.xf(), s(("https", "internal", "443", "10.0.0.5")));
        assert!(out.counters.contains(Counter::ForwardedMalformed));
        let out = run_with(LB, "10.0.0.5", false, &[(":authority", b"\xff")]);
        assert_eq!(out.rejected, Some(Reason::HostMalformed));
    }

    #[test]
    fn allowed_hosts() {
        let cfg = r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "accept_host": true, "allowed_hosts": ["app.example.com", "*.example.org"]}}"#;
        let rows: &[(&str, &[(&str, &str)], Option<Reason>, &str)] = &[
            ("10.0.0.5", &[(XFH, "app.example.com")], None, "listed"),
            (
                "10.0.0.5",
                &[(XFH, "APP.example.com:8443")],
                None,
                "case and port do not matter",
            ),
            ("10.0.0.5", &[(XFH, "x.example.org")], None, "wildcard"),
            (
                "10.0.0.5",
                &[(XFH, "evil.example")],
                Some(Reason::HostNotAllowed),
                "trusted peer forwarding an unlisted host",
            ),
            (
                "198.51.100.7",
                &[(":authority", "evil.example")],
                Some(Reason::HostNotAllowed),
                "direct client with an unlisted Host",
            ),
            (
                "198.51.100.7",
                &[(":authority", "app.example.com"), (XFH, "evil.example")],
                None,
                "untrusted XFH is ignored, not judged",
            ),
            (
                "198.51.100.7",
                &[(":authority", "app example")],
                Some(Reason::HostMalformed),
                "malformed Host",
            ),
        ];
        for (peer, req, want, why) in rows {
            let out = run(cfg, peer, req);
            assert_eq!(out.rejected, *want, "{why}");
            if let Some(r) = want {
                assert!(out.counters.contains(r.counter()), "{why}");
            }
        }
    }

    #[test]
    fn prefix() {
        let rows: &[(&str, Option<&str>, &str)] = &[
            ("/app", Some("/app"), "plain"),
            ("/app/", Some("/app"), "trailing slash trimmed"),
            ("/", None, "root means no prefix"),
            (
                "/a/b%20c",
                Some("/a/b%20c"),
                "percent-encoded kept byte for byte",
            ),
            ("app", None, "relative"),
            ("//evil.example", None, "scheme-relative"),
            ("/a/../b", None, "dot segment"),
            ("/a\\b", None, "backslash"),
            ("/a b", None, "space"),
            ("/a?x=1", None, "query"),
        ];
        for (input, want, why) in rows {
            let out = run(LB, "10.0.0.5", &[(XFP, "https"), (XF_PREFIX, input)]);
            assert_eq!(out.get(XF_PREFIX).as_deref(), *want, "{why}");
        }
        let untrusted = run(LB, "198.51.100.7", &[(XF_PREFIX, "/app")]);
        assert_eq!(untrusted.get(XF_PREFIX), None, "untrusted prefix removed");
        let off = run(
            r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "accept_prefix": false}}"#,
            "10.0.0.5",
            &[(XF_PREFIX, "/app")],
        );
        assert_eq!(off.get(XF_PREFIX), None, "accept_prefix false removes it");
        let default = run(LB_DEFAULTS, "10.0.0.5", &[(XF_PREFIX, "/app")]);
        assert_eq!(
            default.get(XF_PREFIX),
            None,
            "off by default: LBs pass a client's X-Forwarded-Prefix through"
        );
    }

    #[test]
    fn emit_forwarded_and_rewrite_host() {
        let cfg = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.0.0/8"], "accept_host": true, "emit_forwarded": true, "rewrite_host": true}}"#;
        let out = run(
            cfg,
            "10.0.0.5",
            &[
                (XFP, "https"),
                (XFH, "app.example.com"),
                (XFF, "2001:db8::9"),
                (FORWARDED, "for=1.2.3.4"),
            ],
        );
        assert_eq!(
            out.get(FORWARDED).as_deref(),
            Some("for=\"[2001:db8::9]\";host=app.example.com;proto=https")
        );
        assert_eq!(out.get(AUTHORITY).as_deref(), Some("app.example.com"));
        // What we emit, we can read back.
        let back = run(
            LB_FW,
            "10.0.0.5",
            &[(FORWARDED, &out.get(FORWARDED).unwrap())],
        );
        assert_eq!(
            back.xf(),
            s(("https", "app.example.com", "443", "2001:db8::9, 10.0.0.5"))
        );
        let out = run(
            cfg,
            "10.0.0.5",
            &[(XFP, "http"), (XFH, "app.example.com:8080")],
        );
        assert_eq!(
            out.get(FORWARDED).as_deref(),
            Some("for=10.0.0.5;host=\"app.example.com:8080\";proto=http")
        );
        assert_eq!(out.get(AUTHORITY).as_deref(), Some("app.example.com:8080"));
    }

    #[test]
    fn source_address_peer() {
        let cfg = Config::parse(br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_address_from": "source_address"}}"#)
            .unwrap()
            .forwarded
            .unwrap();
        let headers = [
            (":authority".to_string(), b"a.example".to_vec()),
            (XFP.to_string(), b"https".to_vec()),
        ];
        let mut conn = Conn {
            tls: false,
            source: Some("10.0.0.5".parse().unwrap()),
            asked_tls: false,
            alerts: Vec::new(),
        };
        let borrowed: Vec<(&str, &[u8])> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect();
        let d = decide(&cfg, &borrowed, &mut conn);
        assert!(d.counters.contains(Counter::ForwardedTrustedPeer));
    }

    /// Issue 11 §1: one Envoy behind an HTTP LB and a TCP LB at once, each
    /// with two host names. The TCP LB's hosts declare their origin; the
    /// HTTP LB's come from its headers.
    const MULTI: &str = r#"{"forwarded": {"trusted_cidrs": ["10.0.1.0/24"],
        "tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"]}],
        "external_origins": ["https://shop.example.com", "https://api.example.com:8443",
                             "https://dual.example.com", "http://dual.example.com:8080"],
        "allowed_hosts": ["www.example.com", "blog.example.com", "*.example.com"]}}"#;

    #[test]
    fn external_origins_are_chosen_by_the_requests_host() {
        // (case, peer, request headers, external origin, XFP, XFH, X-Forwarded-Port)
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a str,
            (&'a str, &'a str, &'a str),
        );
        let rows: &[Row] = &[
            (
                "HTTP LB host 1: scheme from its X-Forwarded-Proto",
                "10.0.1.5",
                &[
                    (":authority", "www.example.com"),
                    (XFP, "https"),
                    (XFF, "203.0.113.9"),
                ],
                "https://www.example.com",
                ("https", "www.example.com", "443"),
            ),
            (
                "HTTP LB host 2, plain http as the LB says",
                "10.0.1.5",
                &[(":authority", "blog.example.com"), (XFP, "http")],
                "http://blog.example.com",
                ("http", "blog.example.com", "80"),
            ),
            (
                "TCP LB host 1: Envoy's own X-Forwarded-Proto: http does not count",
                "10.0.2.7",
                &[(":authority", "shop.example.com"), (XFP, "http")],
                "https://shop.example.com",
                ("https", "shop.example.com", "443"),
            ),
            (
                "TCP LB host 2 on its port",
                "10.0.2.7",
                &[(":authority", "api.example.com:8443"), (XFP, "http")],
                "https://api.example.com:8443",
                ("https", "api.example.com:8443", "8443"),
            ),
            (
                "the only origin on a host wins even when an LB drops the port from Host",
                "10.0.2.7",
                &[(":authority", "api.example.com")],
                "https://api.example.com:8443",
                ("https", "api.example.com:8443", "8443"),
            ),
            (
                "two origins on one host: the port chooses (default port of the https entry)",
                "10.0.2.7",
                &[(":authority", "dual.example.com")],
                "https://dual.example.com",
                ("https", "dual.example.com", "443"),
            ),
            (
                "two origins on one host: the port chooses (explicit 8080)",
                "10.0.2.7",
                &[(":authority", "DUAL.example.com:8080")],
                "http://dual.example.com:8080",
                ("http", "dual.example.com:8080", "8080"),
            ),
            (
                "a declared origin wins over a trusted HTTP LB's claim for that host",
                "10.0.1.5",
                &[(":authority", "shop.example.com"), (XFP, "http")],
                "https://shop.example.com",
                ("https", "shop.example.com", "443"),
            ),
            (
                "an undeclared host behind the TCP LB: the LB's scheme, the Host's port",
                "10.0.2.7",
                &[
                    (":authority", "other.example.com:4443"),
                    (XFP, "https"),
                    (XF_PORT, "1"),
                ],
                "https://other.example.com:4443",
                ("https", "other.example.com:4443", "4443"),
            ),
            (
                "a direct client naming a declared host gets that host's origin, nothing more",
                "198.51.100.7",
                &[
                    (":authority", "shop.example.com"),
                    (XFP, "http"),
                    (XFF, "1.2.3.4"),
                ],
                "https://shop.example.com",
                ("https", "shop.example.com", "443"),
            ),
        ];
        for (why, peer, req, origin, (xfp, xfh, port)) in rows {
            let out = run(MULTI, peer, req);
            assert_eq!(out.rejected, None, "{why}");
            assert_eq!(out.external.as_deref(), Some(*origin), "{why}");
            assert_eq!(out.get(XFP).as_deref(), Some(*xfp), "{why}");
            assert_eq!(out.get(XFH).as_deref(), Some(*xfh), "{why}");
            assert_eq!(out.get(XF_PORT).as_deref(), Some(*port), "{why}");
        }
        // Two origins on one host and a port that is neither: no declared
        // origin; derived as for any host (the TCP LB's https).
        let out = run(MULTI, "10.0.2.7", &[(":authority", "dual.example.com:9")]);
        assert_eq!(out.external.as_deref(), Some("https://dual.example.com:9"));
        // allowed_hosts still judges every host.
        let out = run(
            MULTI,
            "10.0.1.5",
            &[(":authority", "evil.test"), (XFP, "https")],
        );
        assert_eq!(out.rejected, Some(Reason::HostNotAllowed));
    }

    #[test]
    fn a_tcp_load_balancer_forwards_the_clients_headers_which_are_never_read() {
        let spoof: &[(&str, &str)] = &[
            (":authority", "shop.example.com"),
            (XFP, "http"),
            (XFF, "6.6.6.6"),
            (XFH, "evil.example"),
            (X_REAL_IP, "6.6.6.6"),
            (FORWARDED, "for=6.6.6.6"),
        ];
        let out = run(MULTI, "10.0.2.7", spoof);
        assert!(out.counters.contains(Counter::ForwardedTcpPeer));
        assert!(!out.counters.contains(Counter::ForwardedTrustedPeer));
        assert!(!out.counters.contains(Counter::ForwardedUntrustedPeer));
        // Without the PROXY protocol the client is hidden behind the LB:
        // the app is told nothing rather than that the LB is the client.
        assert_eq!(out.get(XFF), None);
        assert_eq!(out.get(X_REAL_IP), None);
        assert_eq!(out.get(FORWARDED), None);
        assert_eq!(out.get(XFH).as_deref(), Some("shop.example.com"));
        // The same spoof from a trusted HTTP LB is believed where it should be.
        let http = run(MULTI, "10.0.1.5", spoof);
        assert_eq!(http.get(XFF).as_deref(), Some("6.6.6.6"));
    }

    #[test]
    fn behind_the_proxy_protocol_the_client_is_the_proxy_headers_source() {
        const PP: &str = r#"{"forwarded": {"trusted_cidrs": ["10.0.1.0/24"],
            "tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"], "proxy_protocol": true, "scheme": "https"}]}}"#;
        const PP_CHAIN: &str = r#"{"forwarded": {"x_forwarded_for": "chain", "trusted_cidrs": ["10.0.1.0/24"],
            "tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"], "proxy_protocol": true}]}}"#;
        // (case, config, direct peer, source.address, XFF and X-Real-IP at the app)
        type Row<'a> = (
            &'a str,
            &'a str,
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: &[Row] = &[
            (
                "PROXY LB: the PROXY header's client",
                PP,
                "10.0.2.7",
                Some("203.0.113.9"),
                Some("203.0.113.9"),
                Some("203.0.113.9"),
            ),
            (
                "PROXY LB, chain form",
                PP_CHAIN,
                "10.0.2.7",
                Some("203.0.113.9"),
                Some("203.0.113.9, 10.0.2.7"),
                Some("203.0.113.9"),
            ),
            (
                "PROXY LB, IPv6 client",
                PP,
                "10.0.2.7",
                Some("2001:db8::9"),
                Some("2001:db8::9"),
                Some("2001:db8::9"),
            ),
            (
                "PROXY LB without a source address: hidden, not the LB",
                PP,
                "10.0.2.7",
                None,
                None,
                None,
            ),
            (
                "a direct client (its own PROXY header names anyone): the direct peer",
                PP,
                "198.51.100.7",
                Some("10.0.1.5"),
                Some("198.51.100.7"),
                Some("198.51.100.7"),
            ),
        ];
        for (why, cfg, peer, source, xff, real) in rows {
            let req: &[(&str, &[u8])] = &[
                (":authority", b"app.example.com"),
                (XFF, b"6.6.6.6"),
                (XFP, b"http"),
            ];
            let out = run_from(cfg, peer, false, *source, req);
            assert_eq!(out.get(XFF).as_deref(), *xff, "{why}");
            assert_eq!(out.get(X_REAL_IP).as_deref(), *real, "{why}");
            let from_lb = peer.starts_with("10.0.2.");
            let scheme = if from_lb { "https" } else { "http" };
            assert_eq!(out.get(XFP).as_deref(), Some(scheme), "{why}");
            assert_eq!(
                out.counters.contains(Counter::ForwardedProxyClientUnusable),
                from_lb && source.is_none(),
                "{why}"
            );
            if from_lb && source.is_none() {
                assert!(
                    out.alerts
                        .iter()
                        .any(|a| a.contains("use_remote_address: true")
                            && a.contains("envoy/proxy-protocol.yaml")),
                    "{why}: {:?}",
                    out.alerts
                );
            }
        }
    }

    /// Issue 11 §1b: a one-hop app (Express `trust proxy` 1, werkzeug
    /// `ProxyFix(x_for=1)`) reads the rightmost X-Forwarded-For entry: by
    /// default that entry is the client oidc-edge decided, whatever the
    /// chain in front.
    #[test]
    fn by_default_x_forwarded_for_is_the_decided_client_alone() {
        let rows: &[(&str, &str, &[(&str, &str)], Option<&str>)] = &[
            (
                "behind one LB",
                LB_DEFAULTS,
                &[(XFF, "6.6.6.6, 203.0.113.9")],
                Some("203.0.113.9"),
            ),
            (
                "direct client spoofing",
                LB_DEFAULTS,
                &[(XFF, "10.0.0.9")],
                None,
            ),
            (
                "a CDN and the LB trusted by position",
                r#"{"forwarded": {"trusted_hops": 2}}"#,
                &[(XFF, "6.6.6.6, 203.0.113.9, 198.51.100.1")],
                Some("203.0.113.9"),
            ),
            (
                "hidden client: no X-Forwarded-For at all, never the LB",
                r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "family": "forwarded"}}"#,
                &[(FORWARDED, "for=unknown;proto=https")],
                Some(""),
            ),
        ];
        for (why, cfg, req, want) in rows {
            let out = run(cfg, "10.0.0.5", req);
            let got = out.get(XFF);
            match want {
                Some("") => assert_eq!(got, None, "{why}"),
                Some(w) => assert_eq!(got.as_deref(), Some(*w), "{why}"),
                None => {}
            }
            let rightmost = got
                .as_deref()
                .map(|v| v.rsplit(", ").next().unwrap().to_string());
            assert_eq!(
                rightmost,
                out.get(X_REAL_IP),
                "{why}: rightmost entry is the client"
            );
        }
        let direct = run(LB_DEFAULTS, "198.51.100.7", &[(XFF, "10.0.0.9")]);
        assert_eq!(direct.get(XFF).as_deref(), Some("198.51.100.7"));
    }
}
