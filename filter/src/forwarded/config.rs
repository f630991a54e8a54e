//! `forwarded` settings: the trust model, validated once at load into
//! owned types (CIDRs, origins, host patterns, the peer token).

use crate::config::field::{err, is_forwarding_header, is_header_name, ConfigError};
use crate::config::read::Value;
use crate::http::authority::{Authority, HostPattern, Origin, Proto};
use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;

/// The most proxies that may be trusted by position. Real deployments have one
/// or two (CDN, load balancer); a large number is almost always a mistake.
pub const MAX_TRUSTED_HOPS: usize = 10;

/// Header our reference Envoy config fills with the direct TCP peer address.
pub const DEFAULT_PEER_HEADER: &str = "x-oidc-edge-peer";

/// Environment variable holding the peer token (see [`PeerToken`]), exposed
/// to Envoy's `header_mutation` formatter (`%ENVIRONMENT(...)%`) and to the
/// Wasm VM (`host_env_keys`).
pub const DEFAULT_PEER_TOKEN_ENV: &str = "OIDC_EDGE_PEER_TOKEN";

/// Shortest peer token accepted: 32 characters of base64 is 192 bits.
pub const MIN_PEER_TOKEN_LEN: usize = 32;

/// A secret that Envoy's `header_mutation` filter writes into the peer
/// header after the address (`<address>;<token>`), from Envoy's own
/// environment. It is what a client cannot forge: without it, a missing
/// `header_mutation` filter (or one writing another header name) turns a
/// client-sent peer header into trust, and the client chooses every
/// forwarding header the app sees. With it, a peer header without the token
/// is refused trust, counted and logged.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerToken(String);

impl fmt::Debug for PeerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerToken(<redacted>)")
    }
}

impl PeerToken {
    /// Checks a token, in time independent of where it differs (a client
    /// may try many).
    pub fn matches(&self, got: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), got.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }
}

/// Where the filter learns the address of the direct TCP peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSource {
    /// A request header written by an Envoy filter that runs before ours
    /// (`header_mutation` with `%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%`
    /// and `OVERWRITE_IF_EXISTS_OR_ADD`), so a client cannot set it. This works
    /// with `use_remote_address: false`, which keeps the load balancer's
    /// `X-Forwarded-Proto` intact.
    Header(String),
    /// Envoy's `source.address` property. It is the true peer only when the
    /// HTTP connection manager has `use_remote_address: true` and
    /// `xff_num_trusted_hops: 0`; otherwise Envoy derives it from
    /// `X-Forwarded-For`, which a client controls.
    SourceAddress,
}

/// The forwarding-header family the operator's load balancer emits: the
/// only one oidc-edge reads. There is no fallback to the other family: a
/// load balancer that emits one family passes the other through from the
/// client unchanged, so falling back would believe whatever the client
/// wrote whenever the real header is missing or malformed. The other family
/// is always removed before the app sees the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// `X-Forwarded-For/-Proto/-Host/-Port/-Prefix` (what most LBs send).
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

/// The `X-Forwarded-For` the app receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XffForm {
    /// Only the client oidc-edge decided (no header when the client is
    /// hidden). Every common reading finds the client in it: the rightmost
    /// entry (Express `trust proxy` 1, werkzeug `ProxyFix(x_for=1)`), the
    /// leftmost (Express `trust proxy` true, most Django setups) and Rails'
    /// `remote_ip`. The default.
    #[default]
    Client,
    /// Client, trusted proxies, peer, left to right: for apps that walk the
    /// chain themselves with their own list of trusted proxies.
    Chain,
}

impl Family {
    const NAMES: &'static [(&'static str, Family)] = &[
        ("x-forwarded", Family::XForwarded),
        ("forwarded", Family::Forwarded),
    ];
}

impl XffForm {
    const NAMES: &'static [(&'static str, XffForm)] =
        &[("client", XffForm::Client), ("chain", XffForm::Chain)];
}

/// A load balancer that forwards bytes, not HTTP (a TCP or TLS-passthrough
/// listener: AWS NLB, HAProxy `mode tcp`): it sends no forwarding headers,
/// so whatever arrives in them is the client's and is never read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpLoadBalancer {
    /// Its addresses, as the direct peer.
    pub cidrs: Vec<IpNet>,
    /// The scheme its listener speaks to browsers (`https` when it
    /// terminates TLS).
    pub proto: Proto,
    /// It sends the PROXY protocol to an Envoy listener with the
    /// `proxy_protocol` listener filter and `use_remote_address: true`:
    /// the client is Envoy's `source.address`. Without it the client is
    /// hidden behind the load balancer.
    pub proxy_protocol: bool,
}

/// Forwarded-header normalization settings (the `forwarded` section).
#[derive(Debug, Clone)]
pub struct ForwardedConfig {
    /// Peers (and hops) whose forwarding headers are believed.
    pub trusted_cidrs: Vec<IpNet>,
    /// Proxies trusted by position, counting the direct peer as the first.
    pub trusted_hops: usize,
    /// Where the direct peer's address comes from.
    pub peer: PeerSource,
    /// With `PeerSource::Header`: the token the header must carry after the
    /// address; `None` only when the operator turned verification off (or
    /// no peer is trusted and no token is set).
    pub peer_token: Option<PeerToken>,
    /// The header family the load balancer emits; the other is removed.
    pub family: Family,
    /// Fixed external origin for every request (load balancers that
    /// forward nothing, one public host).
    pub external_origin: Option<Origin>,
    /// External origins per host, chosen by the request's host (and port
    /// when several share a host); see [`ForwardedConfig::origin_for`].
    pub external_origins: Vec<Origin>,
    /// Load balancers that forward bytes, not HTTP.
    pub tcp_load_balancers: Vec<TcpLoadBalancer>,
    /// The `X-Forwarded-For` form the app receives.
    pub x_forwarded_for: XffForm,
    /// External hosts served here; empty allows any valid host.
    pub allowed_hosts: Vec<HostPattern>,
    /// Send a canonical RFC 7239 `Forwarded` header upstream.
    pub emit_forwarded: bool,
    /// Set `Host`/`:authority` to the external host for the upstream.
    pub rewrite_host: bool,
    /// Take the external host from a trusted peer's `X-Forwarded-Host` (or
    /// `Forwarded` `host=`). Off by default: most L7 load balancers set
    /// `X-Forwarded-For/-Proto/-Port` but pass a client's `X-Forwarded-Host`
    /// through unchanged, so a trusted peer's value is the client's unless
    /// the operator knows their LB sets it.
    pub accept_host: bool,
    /// Pass a trusted peer's `X-Forwarded-Prefix` (off by default, for the
    /// same reason as `accept_host`).
    pub accept_prefix: bool,
}

impl ForwardedConfig {
    /// Whether the direct peer is trusted to describe the request.
    pub fn trusts_peer(&self, peer: IpAddr) -> bool {
        if self.trusted_cidrs.is_empty() {
            self.trusted_hops > 0
        } else {
            self.in_trusted_cidrs(peer)
        }
    }

    /// The TCP load balancer `peer` is, if any.
    pub fn tcp_load_balancer(&self, peer: IpAddr) -> Option<&TcpLoadBalancer> {
        self.tcp_load_balancers
            .iter()
            .find(|lb| lb.cidrs.iter().any(|n| n.contains(&peer)))
    }

    /// The configured external origin for a request to `authority`:
    /// `external_origin` for every request; otherwise the `external_origins`
    /// entry on its host, and when several share the host, the one on the
    /// request's port (its explicit port, or the entry's scheme default).
    /// Borrowed from the configuration: nothing is built per request.
    pub fn origin_for(&self, authority: &Authority) -> Option<&Origin> {
        if let Some(o) = &self.external_origin {
            return Some(o);
        }
        let mut on_host = self
            .external_origins
            .iter()
            .filter(|o| o.authority.host == authority.host);
        let first = on_host.next()?;
        let port_matches =
            |o: &Origin| authority.port.unwrap_or(o.proto.default_port()) == o.port();
        if port_matches(first) {
            return Some(first);
        }
        let mut others = on_host.peekable();
        if others.peek().is_none() {
            // The only origin on this host: the host alone decides (an LB
            // may drop the port from Host, as nginx's `$host` does).
            return Some(first);
        }
        others.find(|o| port_matches(o))
    }

    /// Whether `ip` falls in one of `trusted_cidrs`.
    pub fn in_trusted_cidrs(&self, ip: IpAddr) -> bool {
        self.trusted_cidrs.iter().any(|n| n.contains(&ip))
    }
}

#[derive(Clone, Copy, Default)]
pub(crate) enum RawPeerFrom {
    #[default]
    Header,
    SourceAddress,
}

pub(crate) struct RawForwarded {
    trusted_cidrs: Vec<String>,
    trusted_hops: usize,
    peer_address_from: RawPeerFrom,
    peer_address_header: String,
    /// `null` turns peer-header verification off.
    peer_token_env: Option<String>,
    family: Option<Family>,
    /// Deprecated name of `family` (it used to mean "preferred, with a
    /// fallback to the other family").
    prefer: Option<Family>,
    external_origin: Option<String>,
    external_origins: Vec<String>,
    tcp_load_balancers: Vec<RawTcpLoadBalancer>,
    x_forwarded_for: XffForm,
    allowed_hosts: Vec<String>,
    emit_forwarded: bool,
    rewrite_host: bool,
    accept_host: bool,
    accept_prefix: bool,
}

impl RawForwarded {
    pub(crate) fn read(v: &Value<'_>) -> Result<RawForwarded, ConfigError> {
        let f = v.object(&[
            "trusted_cidrs",
            "trusted_hops",
            "peer_address_from",
            "peer_address_header",
            "peer_token_env",
            "family",
            "prefer",
            "external_origin",
            "external_origins",
            "tcp_load_balancers",
            "x_forwarded_for",
            "allowed_hosts",
            "emit_forwarded",
            "rewrite_host",
            "accept_host",
            "accept_prefix",
        ])?;
        let flag = |name| f.opt(name, Value::bool).map(Option::unwrap_or_default);
        let family = |v: &Value<'_>| v.variant(Family::NAMES);
        Ok(RawForwarded {
            trusted_cidrs: f.opt("trusted_cidrs", Value::strings)?.unwrap_or_default(),
            trusted_hops: f.opt("trusted_hops", Value::usize)?.unwrap_or(0),
            peer_address_from: f
                .opt("peer_address_from", |p| {
                    p.variant(&[
                        ("header", RawPeerFrom::Header),
                        ("source_address", RawPeerFrom::SourceAddress),
                    ])
                })?
                .unwrap_or_default(),
            peer_address_header: f
                .opt("peer_address_header", Value::string)?
                .unwrap_or_else(|| DEFAULT_PEER_HEADER.to_string()),
            // Absent: the default variable; null: no token.
            peer_token_env: match f.get("peer_token_env") {
                None => Some(DEFAULT_PEER_TOKEN_ENV.to_string()),
                Some(v) if v.is_null() => None,
                Some(v) => Some(v.string()?),
            },
            family: f.opt_or_null("family", family)?,
            prefer: f.opt_or_null("prefer", family)?,
            external_origin: f.opt_or_null("external_origin", Value::string)?,
            external_origins: f
                .opt("external_origins", Value::strings)?
                .unwrap_or_default(),
            tcp_load_balancers: f
                .opt("tcp_load_balancers", |l| {
                    l.list()?.iter().map(RawTcpLoadBalancer::read).collect()
                })?
                .unwrap_or_default(),
            x_forwarded_for: f
                .opt("x_forwarded_for", |x| x.variant(XffForm::NAMES))?
                .unwrap_or_default(),
            allowed_hosts: f.opt("allowed_hosts", Value::strings)?.unwrap_or_default(),
            emit_forwarded: flag("emit_forwarded")?,
            rewrite_host: flag("rewrite_host")?,
            accept_host: flag("accept_host")?,
            accept_prefix: flag("accept_prefix")?,
        })
    }
}

pub(crate) struct RawTcpLoadBalancer {
    cidrs: Vec<String>,
    scheme: String,
    proxy_protocol: bool,
}

impl RawTcpLoadBalancer {
    fn read(v: &Value<'_>) -> Result<RawTcpLoadBalancer, ConfigError> {
        let f = v.object(&["cidrs", "scheme", "proxy_protocol"])?;
        Ok(RawTcpLoadBalancer {
            cidrs: f.req("cidrs", Value::strings)?,
            scheme: f
                .opt("scheme", Value::string)?
                .unwrap_or_else(|| "https".to_string()),
            proxy_protocol: f.opt("proxy_protocol", Value::bool)?.unwrap_or(false),
        })
    }
}

pub(crate) fn validate_forwarded(
    raw: RawForwarded,
    env: &dyn Fn(&str) -> Option<String>,
    notes: &mut Vec<String>,
) -> Result<ForwardedConfig, ConfigError> {
    let family = match (raw.family, raw.prefer) {
        (Some(_), Some(_)) => {
            return Err(err(
                "forwarded.prefer",
                "is the old name of forwarded.family; give only family (the header family your load balancer emits)",
            ))
        }
        (Some(f), None) => f,
        (None, Some(f)) => {
            notes.push(format!(
                "forwarded.prefer is deprecated; rename it to forwarded.family. It now means the only family read:                  {} headers are removed, never used as a fallback (a client can send them through your load balancer)",
                match f {
                    Family::XForwarded => "RFC 7239 Forwarded",
                    Family::Forwarded => "X-Forwarded-*",
                }
            ));
            f
        }
        (None, None) => Family::XForwarded,
    };
    if family == Family::Forwarded && raw.accept_prefix {
        return Err(err(
            "forwarded.accept_prefix",
            "reads X-Forwarded-Prefix, but family \"forwarded\" reads only RFC 7239 Forwarded (which has no prefix) \
             and removes every X-Forwarded-* header; remove accept_prefix or use family \"x-forwarded\"",
        ));
    }
    let mut trusted_cidrs = Vec::with_capacity(raw.trusted_cidrs.len());
    for (i, s) in raw.trusted_cidrs.iter().enumerate() {
        trusted_cidrs
            .push(parse_cidr(s).map_err(|m| err(format!("forwarded.trusted_cidrs[{i}]"), m))?);
    }
    if raw.trusted_hops > MAX_TRUSTED_HOPS {
        return Err(err(
            "forwarded.trusted_hops",
            format!(
                "{} is too many; expected 0 to {MAX_TRUSTED_HOPS}, the number of proxies in front of Envoy \
                 (usually 1: the load balancer)",
                raw.trusted_hops
            ),
        ));
    }
    let peer = match raw.peer_address_from {
        RawPeerFrom::SourceAddress => PeerSource::SourceAddress,
        RawPeerFrom::Header => {
            let h = raw.peer_address_header;
            if !is_header_name(&h) {
                return Err(err(
                    "forwarded.peer_address_header",
                    format!(
                        "{h_q} is not a lower-case header name; expected e.g. \"{DEFAULT_PEER_HEADER}\"",
                        h_q = crate::text::quoted(&h),
                    ),
                ));
            }
            if is_forwarding_header(&h) {
                return Err(err(
                    "forwarded.peer_address_header",
                    format!(
                        "{h_q} is a header the filter rewrites; use a dedicated one such as \"{DEFAULT_PEER_HEADER}\"",
                        h_q = crate::text::quoted(&h),
                    ),
                ));
            }
            PeerSource::Header(h)
        }
    };
    let trusts_anyone = !trusted_cidrs.is_empty() || raw.trusted_hops > 0;
    let peer_token = match (&peer, raw.peer_token_env) {
        (PeerSource::SourceAddress, _) => None,
        (PeerSource::Header(h), None) => {
            if trusts_anyone {
                notes.push(format!(
                    "forwarded.peer_token_env is null: {h} is believed without a token; if Envoy's header_mutation \
                     filter is ever missing or writes another header, any client can name a trusted peer and \
                     choose every forwarding header the app sees. Set it (default \"{DEFAULT_PEER_TOKEN_ENV}\")"
                ));
            }
            None
        }
        (PeerSource::Header(h), Some(var)) => match env(&var) {
            Some(t) => Some(parse_peer_token(&t).map_err(|m| {
                err(
                    "forwarded.peer_token_env",
                    format!("the value of environment variable {var} {m}"),
                )
            })?),
            None if trusts_anyone => {
                return Err(err(
                    "forwarded.peer_token_env",
                    format!(
                        "environment variable {var_q} is not set in the Wasm VM. The {h} header must carry it, so \
                         that a client cannot forge the peer if the header_mutation filter is missing or misnamed. \
                         Set {var}=$(openssl rand -base64 32) in Envoy's environment, list it in \
                         vm_config.environment_variables.host_env_keys, and have header_mutation write \
                         \"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%;%ENVIRONMENT({var})%\" into {h} \
                         (see envoy/edge.yaml); or, if you accept that risk, set \"peer_token_env\": null",
                        var_q = crate::text::quoted(&var),
                    ),
                ))
            }
            // Nobody is trusted: the token would only guard the peer's own
            // entry in X-Forwarded-For; verified when it is there.
            None => None,
        },
    };
    let external_origin = match raw.external_origin {
        None => None,
        Some(s) => Some(Origin::parse(&s).map_err(|m| {
            err(
                "forwarded.external_origin",
                format!(
                    "{s_q} is not valid; expected {m}",
                    s_q = crate::text::quoted(&s)
                ),
            )
        })?),
    };
    let mut allowed_hosts = Vec::with_capacity(raw.allowed_hosts.len());
    for (i, s) in raw.allowed_hosts.iter().enumerate() {
        allowed_hosts.push(HostPattern::parse(s).map_err(|m| {
            err(
                format!("forwarded.allowed_hosts[{i}]"),
                format!(
                    "{s_q} is not valid; expected {m}",
                    s_q = crate::text::quoted(s)
                ),
            )
        })?);
    }
    if let (Some(o), false) = (&external_origin, allowed_hosts.is_empty()) {
        if !allowed_hosts.iter().any(|p| p.matches(&o.authority.host)) {
            return Err(err(
                "forwarded.allowed_hosts",
                format!(
                    "does not include external_origin's host {}, so every request would be rejected; add it",
                    crate::text::quoted(&o.authority.host),
                ),
            ));
        }
    }
    let external_origins = validate_external_origins(
        &raw.external_origins,
        external_origin.is_some(),
        &allowed_hosts,
    )?;
    let tcp_load_balancers =
        validate_tcp_load_balancers(raw.tcp_load_balancers, &trusted_cidrs, &peer)?;
    Ok(ForwardedConfig {
        trusted_cidrs,
        trusted_hops: raw.trusted_hops,
        peer,
        peer_token,
        family,
        external_origin,
        external_origins,
        tcp_load_balancers,
        x_forwarded_for: raw.x_forwarded_for,
        allowed_hosts,
        emit_forwarded: raw.emit_forwarded,
        rewrite_host: raw.rewrite_host,
        accept_host: raw.accept_host,
        accept_prefix: raw.accept_prefix,
    })
}

/// `external_origins`: each a valid origin, on an allowed host, no two on
/// the same host and port (the request could not choose between them).
fn validate_external_origins(
    raw: &[String],
    have_single: bool,
    allowed_hosts: &[HostPattern],
) -> Result<Vec<Origin>, ConfigError> {
    if have_single && !raw.is_empty() {
        return Err(err(
            "forwarded.external_origins",
            "is set together with external_origin; give one: external_origin is one origin for every \
             request, external_origins one per host (move external_origin into the list)",
        ));
    }
    let mut origins: Vec<Origin> = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let field = format!("forwarded.external_origins[{i}]");
        let o = Origin::parse(s).map_err(|m| {
            err(
                &field,
                format!(
                    "{s_q} is not valid; expected {m}",
                    s_q = crate::text::quoted(s)
                ),
            )
        })?;
        if let Some((j, prev)) = origins
            .iter()
            .position(|p| p.authority.host == o.authority.host && p.port() == o.port())
            .and_then(|j| raw.get(j).map(|r| (j, r)))
        {
            return Err(err(
                field,
                format!(
                    "{s_q} is on the same host and port as external_origins[{j}] ({}): a request cannot \
                     choose between them; keep one",
                    crate::text::quoted(prev),
                    s_q = crate::text::quoted(s),
                ),
            ));
        }
        if !allowed_hosts.is_empty() && !allowed_hosts.iter().any(|p| p.matches(&o.authority.host))
        {
            return Err(err(
                "forwarded.allowed_hosts",
                format!(
                    "does not include external_origins[{i}]'s host {}, so its requests would be rejected; add it",
                    crate::text::quoted(&o.authority.host),
                ),
            ));
        }
        origins.push(o);
    }
    Ok(origins)
}

/// `tcp_load_balancers`: CIDRs that do not overlap `trusted_cidrs` (a peer
/// either sets forwarding headers or does not), a scheme, and PROXY only
/// with the peer from the header (`source.address` is then the client).
fn validate_tcp_load_balancers(
    raw: Vec<RawTcpLoadBalancer>,
    trusted_cidrs: &[IpNet],
    peer: &PeerSource,
) -> Result<Vec<TcpLoadBalancer>, ConfigError> {
    let overlap = |a: &IpNet, b: &IpNet| a.contains(&b.network()) || b.contains(&a.network());
    let mut out: Vec<TcpLoadBalancer> = Vec::with_capacity(raw.len());
    for (i, lb) in raw.into_iter().enumerate() {
        let at = format!("forwarded.tcp_load_balancers[{i}]");
        if lb.cidrs.is_empty() {
            return Err(err(
                format!("{at}.cidrs"),
                "is empty; list the load balancer's addresses as Envoy sees them (e.g. [\"10.0.2.0/24\"])",
            ));
        }
        let mut cidrs = Vec::with_capacity(lb.cidrs.len());
        for (j, s) in lb.cidrs.iter().enumerate() {
            let net = parse_cidr(s).map_err(|m| err(format!("{at}.cidrs[{j}]"), m))?;
            if let Some((k, t)) = trusted_cidrs
                .iter()
                .enumerate()
                .find(|(_, t)| overlap(t, &net))
            {
                return Err(err(
                    format!("{at}.cidrs[{j}]"),
                    format!(
                        "{s_q} overlaps trusted_cidrs[{k}] ({}): a peer is either an HTTP load balancer whose \
                         forwarding headers are believed (trusted_cidrs) or a TCP load balancer whose are not; \
                         list it in one of them",
                        t,
                        s_q = crate::text::quoted(s),
                    ),
                ));
            }
            if let Some((e, _)) = out
                .iter()
                .enumerate()
                .find(|(_, o)| o.cidrs.iter().any(|c| overlap(c, &net)))
            {
                return Err(err(
                    format!("{at}.cidrs[{j}]"),
                    format!(
                        "{s_q} overlaps tcp_load_balancers[{e}]; a peer must name one load balancer",
                        s_q = crate::text::quoted(s),
                    ),
                ));
            }
            cidrs.push(net);
        }
        let proto = Proto::parse(&lb.scheme).ok_or_else(|| {
            err(
                format!("{at}.scheme"),
                format!(
                    "{} is not a scheme; expected \"https\" (the load balancer terminates TLS) or \"http\"",
                    crate::text::quoted(&lb.scheme),
                ),
            )
        })?;
        if lb.proxy_protocol && *peer == PeerSource::SourceAddress {
            return Err(err(
                format!("{at}.proxy_protocol"),
                "needs peer_address_from \"header\": behind the PROXY protocol Envoy's source.address is the \
                 client, and the load balancer is known only from %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% \
                 (see envoy/proxy-protocol.yaml)",
            ));
        }
        out.push(TcpLoadBalancer {
            cidrs,
            proto,
            proxy_protocol: lb.proxy_protocol,
        });
    }
    Ok(out)
}

/// A peer token: long enough to be unguessable, and only characters that
/// survive a header value and the `;` separator unchanged.
fn parse_peer_token(t: &str) -> Result<PeerToken, String> {
    let ok = t
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+/=_-.".contains(&b));
    if t.len() < MIN_PEER_TOKEN_LEN || t.len() > 256 || !ok {
        return Err(format!(
            "must be {MIN_PEER_TOKEN_LEN} to 256 characters of base64 or hex \
             (generate one with: openssl rand -base64 32)"
        ));
    }
    Ok(PeerToken(t.to_string()))
}

/// Parses `10.0.0.0/8`, `fd00::/8`, or a bare address (a single host).
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let expected =
        "expected an address or CIDR such as \"10.0.0.0/8\", \"192.0.2.7\" or \"fd00::/8\"";
    let net = match s.parse::<IpNet>() {
        Ok(n) => n,
        Err(_) => match s.parse::<IpAddr>() {
            Ok(ip) => IpNet::from(ip),
            Err(_) => {
                return Err(format!(
                    "{s_q} is not a valid CIDR; {expected}",
                    s_q = crate::text::quoted(s)
                ))
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{s_q} has bits set after the prefix length; did you mean \"{}\"?",
            net.trunc(),
            s_q = crate::text::quoted(s),
        ));
    }
    if net.prefix_len() == 0 {
        return Err(format!(
            "{s_q} trusts every address, so any client could spoof forwarding headers; list your load \
             balancers' addresses, or use trusted_hops if only they can reach Envoy",
            s_q = crate::text::quoted(s),
        ));
    }
    Ok(net)
}
