//! Plugin configuration: the JSON an operator writes in Envoy's
//! `configuration` (or Istio's `pluginConfig`), checked once at load.
//!
//! Parsing rejects unknown fields, and every error names the field path, the
//! bad value and what is expected, so a typo fails the config load instead of
//! silently turning a feature off. The result is a [`Config`] whose values are
//! already parsed (CIDRs, origins, host patterns), so the request path does no
//! parsing of configuration.

use crate::authority::{HostPattern, Origin};
use crate::keyring::{decode_secret, Key, KeyRing};
use crate::redirects::{RedirectUriMode, RedirectsConfig, ReturnToConfig};
use ipnet::IpNet;
use serde::Deserialize;
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

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the field, e.g. `forwarded.trusted_cidrs[1]`.
    pub field: String,
    /// What was wrong and what is expected instead.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// The validated configuration. Features whose section is absent are off and
/// cost nothing per request.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Forwarded-header normalization; `None` leaves requests untouched.
    pub forwarded: Option<ForwardedConfig>,
    /// Login-flow affinity; `None` turns it off.
    pub login_flow: Option<LoginFlowConfig>,
    /// Redirect checks; `None` turns them off.
    pub redirects: Option<RedirectsConfig>,
    /// IdP-mode checks; `None` turns them off.
    pub idp: Option<crate::idp::IdpConfig>,
    /// Things an operator should look at, logged once at load.
    notes: Vec<String>,
}

/// Whether checks block or only count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Mode {
    /// Refuse what fails a check (the default).
    #[default]
    #[serde(rename = "enforce")]
    Enforce,
    /// Count and log what would be refused, forward everything: for rollout.
    #[serde(rename = "report")]
    Report,
}

/// Default flow cookie name prefix. `__Host-` makes browsers refuse the
/// cookie unless it is `Secure`, has `Path=/` and no `Domain`, so a sibling
/// subdomain cannot plant or overwrite it.
pub const DEFAULT_COOKIE_PREFIX: &str = "__Host-oidc-edge-";

/// Default request header that carries the pinned node to Envoy's
/// `stateful_session` filter (`HeaderBasedSessionState.name`).
pub const DEFAULT_SESSION_HEADER: &str = "x-oidc-edge-node";

/// How long requests stay pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Affinity {
    /// Only the login callback returns to the node that started the login.
    #[default]
    #[serde(rename = "flow")]
    Flow,
    /// After login, every request of the browser keeps going to that node
    /// (apps that keep sessions in memory).
    #[serde(rename = "session")]
    Session,
}

/// Login-flow affinity settings (the `login_flow` section).
#[derive(Debug, Clone)]
pub struct LoginFlowConfig {
    /// The IdP's authorization endpoint(s) the app redirects browsers to,
    /// as written (each parses as an [`crate::uri::AbsoluteUri`]).
    pub authorization_endpoints: Vec<String>,
    /// Paths (without query) where the IdP sends the browser back.
    pub callback_paths: Vec<String>,
    /// Keys: the first signs, all verify.
    pub keys: KeyRing,
    /// Enforce or only report.
    pub mode: Mode,
    /// Flow cookie lifetime in seconds.
    pub max_age: u64,
    /// Flow cookie name prefix.
    pub cookie_prefix: String,
    /// Mark cookies `Secure` (required by the `__Host-` prefix).
    pub secure: bool,
    /// Header Envoy's `stateful_session` reads the pinned node from.
    pub session_header: String,
    /// Most flow cookies a browser keeps at once (parallel logins).
    pub max_flows: usize,
    /// Flow only, or the whole session.
    pub affinity: Affinity,
    /// Session-affinity cookie lifetime in seconds.
    pub session_max_age: u64,
    /// Largest form-post callback body read, in bytes.
    pub max_callback_body: usize,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum Family {
    /// `X-Forwarded-For/-Proto/-Host/-Port/-Prefix` (what most LBs send).
    #[default]
    #[serde(rename = "x-forwarded")]
    XForwarded,
    /// RFC 7239 `Forwarded`.
    #[serde(rename = "forwarded")]
    Forwarded,
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
    /// Fixed external origin for load balancers that forward nothing.
    pub external_origin: Option<Origin>,
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

    /// Whether `ip` falls in one of `trusted_cidrs`.
    pub fn in_trusted_cidrs(&self, ip: IpAddr) -> bool {
        self.trusted_cidrs.iter().any(|n| n.contains(&ip))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    forwarded: Option<RawForwarded>,
    #[serde(default)]
    login_flow: Option<RawLoginFlow>,
    #[serde(default)]
    redirects: Option<RawRedirects>,
    #[serde(default)]
    idp: Option<RawIdp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdp {
    authorization_paths: Vec<String>,
    clients: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    mode: Mode,
}

fn validate_idp(raw: RawIdp) -> Result<crate::idp::IdpConfig, ConfigError> {
    if raw.authorization_paths.is_empty() {
        return Err(err(
            "idp.authorization_paths",
            "is empty; list the IdP's authorization path, e.g. \"/oauth2/authorize\"",
        ));
    }
    for (i, p) in raw.authorization_paths.iter().enumerate() {
        if !p.starts_with('/') || p.contains(['?', '#']) {
            return Err(err(
                format!("idp.authorization_paths[{i}]"),
                format!("{p:?} must be a path starting with '/'"),
            ));
        }
    }
    if raw.clients.is_empty() {
        return Err(err(
            "idp.clients",
            "is empty; map each client_id to its registered redirect URIs",
        ));
    }
    for (client, uris) in &raw.clients {
        for (i, u) in uris.iter().enumerate() {
            if crate::uri::AbsoluteUri::parse(u).is_none_or(|p| p.fragment.is_some()) {
                return Err(err(
                    format!("idp.clients.{client}[{i}]"),
                    format!("{u:?} must be an absolute http(s) URI without fragment"),
                ));
            }
        }
    }
    Ok(crate::idp::IdpConfig {
        authorization_paths: raw.authorization_paths,
        clients: raw.clients,
        mode: raw.mode,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirects {
    #[serde(default)]
    authorization_endpoints: Option<Vec<String>>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    redirect_uri_mode: RedirectUriMode,
    #[serde(default)]
    internal_origins: Vec<String>,
    #[serde(default)]
    rewrite_upstream_origin: bool,
    #[serde(default)]
    return_to: Option<RawReturnTo>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReturnTo {
    #[serde(default = "default_return_params")]
    params: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    mode: Mode,
}

fn default_return_params() -> Vec<String> {
    [
        "rd",
        "return_to",
        "returnTo",
        "next",
        "redirect",
        "redirect_to",
    ]
    .map(String::from)
    .to_vec()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    #[serde(default)]
    secret_env: Option<String>,
    #[serde(default)]
    secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoginFlow {
    authorization_endpoints: Vec<String>,
    callback_paths: Vec<String>,
    keys: Vec<RawKey>,
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_max_age")]
    max_age_seconds: u64,
    #[serde(default = "default_cookie_prefix")]
    cookie_prefix: String,
    #[serde(default)]
    insecure_cookies: bool,
    #[serde(default = "default_session_header")]
    session_header: String,
    #[serde(default = "default_max_flows")]
    max_flows: usize,
    #[serde(default)]
    affinity: Affinity,
    #[serde(default = "default_session_max_age")]
    session_max_age_seconds: u64,
    #[serde(default = "default_max_callback_body")]
    max_callback_body_bytes: usize,
}

fn default_session_max_age() -> u64 {
    8 * 3600
}

fn default_max_callback_body() -> usize {
    16 * 1024
}

fn default_max_age() -> u64 {
    600
}

fn default_cookie_prefix() -> String {
    DEFAULT_COOKIE_PREFIX.to_string()
}

fn default_session_header() -> String {
    DEFAULT_SESSION_HEADER.to_string()
}

fn default_max_flows() -> usize {
    4
}

#[derive(Deserialize, Clone, Copy, Default)]
enum RawPeerFrom {
    #[default]
    #[serde(rename = "header")]
    Header,
    #[serde(rename = "source_address")]
    SourceAddress,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawForwarded {
    #[serde(default)]
    trusted_cidrs: Vec<String>,
    #[serde(default)]
    trusted_hops: usize,
    #[serde(default)]
    peer_address_from: RawPeerFrom,
    #[serde(default = "default_peer_header")]
    peer_address_header: String,
    /// `null` turns peer-header verification off.
    #[serde(default = "default_peer_token_env")]
    peer_token_env: Option<String>,
    #[serde(default)]
    family: Option<Family>,
    /// Deprecated name of `family` (it used to mean "preferred, with a
    /// fallback to the other family").
    #[serde(default)]
    prefer: Option<Family>,
    #[serde(default)]
    external_origin: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    emit_forwarded: bool,
    #[serde(default)]
    rewrite_host: bool,
    #[serde(default)]
    accept_host: bool,
    #[serde(default)]
    accept_prefix: bool,
}

fn default_peer_header() -> String {
    DEFAULT_PEER_HEADER.to_string()
}

fn default_peer_token_env() -> Option<String> {
    Some(DEFAULT_PEER_TOKEN_ENV.to_string())
}

/// Whether the filter owns (rewrites or removes) this request header: the
/// peer and session headers may not be one of them. The list is
/// [`crate::forwarded::names`], the one source of truth.
fn is_forwarding_header(h: &str) -> bool {
    crate::forwarded::names::is_owned(h)
}

impl Config {
    /// Parses and validates the plugin configuration, with no environment
    /// (a `secret_env` key then fails). See [`Config::parse_with_env`].
    pub fn parse(json: &[u8]) -> Result<Config, ConfigError> {
        Config::parse_with_env(json, &|_| None)
    }

    /// Parses and validates the plugin configuration, reading `secret_env`
    /// variables through `env`. Empty input (no `configuration` at all) is
    /// the empty config: every feature off.
    pub fn parse_with_env(
        json: &[u8],
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        if json.iter().all(u8::is_ascii_whitespace) {
            return Ok(Config::default());
        }
        if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(err(
                "(top level)",
                "expected a JSON object such as {\"forwarded\": {\"trusted_cidrs\": [\"10.0.0.0/8\"]}}",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(json);
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "(top level)".to_string()
            } else {
                path
            };
            err(field, format!("{}", e.inner()))
        })?;
        let mut notes = Vec::new();
        let forwarded = raw
            .forwarded
            .map(|r| validate_forwarded(r, env, &mut notes))
            .transpose()?;
        let login_flow = raw
            .login_flow
            .map(|r| validate_login_flow(r, env, &mut notes))
            .transpose()?;
        let redirects = raw
            .redirects
            .map(|r| validate_redirects(r, forwarded.is_some(), login_flow.as_ref()))
            .transpose()?;
        let idp = raw.idp.map(validate_idp).transpose()?;
        Ok(Config {
            forwarded,
            login_flow,
            redirects,
            idp,
            notes,
        })
    }

    /// Settings that are valid but deserve an operator's second look; the glue
    /// logs each once at load.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.notes.clone();
        if let Some(f) = &self.forwarded {
            if f.trusted_cidrs.is_empty() && f.trusted_hops > 0 {
                w.push(format!(
                    "forwarded.trusted_hops is {} with no trusted_cidrs: every peer is trusted to set \
                     forwarding headers; this is safe only if nothing but your load balancer can reach Envoy",
                    f.trusted_hops
                ));
            }
            if f.trusted_cidrs.is_empty() && f.trusted_hops == 0 && f.external_origin.is_none() {
                w.push(
                    "forwarded: no trusted_cidrs, trusted_hops or external_origin: every forwarding header is \
                     stripped and the upstream sees the connection's own scheme and Host"
                        .to_string(),
                );
            }
            if f.peer == PeerSource::SourceAddress {
                w.push(
                    "forwarded.peer_address_from is \"source_address\": this is the true peer only with \
                     use_remote_address: true and xff_num_trusted_hops: 0 in the HTTP connection manager"
                        .to_string(),
                );
            }
        }
        w
    }
}

fn validate_forwarded(
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
                    format!("{h:?} is not a lower-case header name; expected e.g. \"{DEFAULT_PEER_HEADER}\""),
                ));
            }
            if is_forwarding_header(&h) {
                return Err(err(
                    "forwarded.peer_address_header",
                    format!("{h:?} is a header the filter rewrites; use a dedicated one such as \"{DEFAULT_PEER_HEADER}\""),
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
                        "environment variable {var:?} is not set in the Wasm VM. The {h} header must carry it, so \
                         that a client cannot forge the peer if the header_mutation filter is missing or misnamed. \
                         Set {var}=$(openssl rand -base64 32) in Envoy's environment, list it in \
                         vm_config.environment_variables.host_env_keys, and have header_mutation write \
                         \"%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT%;%ENVIRONMENT({var})%\" into {h} \
                         (see envoy/edge.yaml); or, if you accept that risk, set \"peer_token_env\": null"
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
                format!("{s:?} is not valid; expected {m}"),
            )
        })?),
    };
    let mut allowed_hosts = Vec::with_capacity(raw.allowed_hosts.len());
    for (i, s) in raw.allowed_hosts.iter().enumerate() {
        allowed_hosts.push(HostPattern::parse(s).map_err(|m| {
            err(
                format!("forwarded.allowed_hosts[{i}]"),
                format!("{s:?} is not valid; expected {m}"),
            )
        })?);
    }
    if let (Some(o), false) = (&external_origin, allowed_hosts.is_empty()) {
        if !allowed_hosts.iter().any(|p| p.matches(&o.authority.host)) {
            return Err(err(
                "forwarded.allowed_hosts",
                format!(
                    "does not include external_origin's host {:?}, so every request would be rejected; add it",
                    o.authority.host
                ),
            ));
        }
    }
    Ok(ForwardedConfig {
        trusted_cidrs,
        trusted_hops: raw.trusted_hops,
        peer,
        peer_token,
        family,
        external_origin,
        allowed_hosts,
        emit_forwarded: raw.emit_forwarded,
        rewrite_host: raw.rewrite_host,
        accept_host: raw.accept_host,
        accept_prefix: raw.accept_prefix,
    })
}

fn validate_login_flow(
    raw: RawLoginFlow,
    env: &dyn Fn(&str) -> Option<String>,
    notes: &mut Vec<String>,
) -> Result<LoginFlowConfig, ConfigError> {
    if raw.authorization_endpoints.is_empty() {
        return Err(err(
            "login_flow.authorization_endpoints",
            "is empty; list your IdP's authorization endpoint, e.g. \"https://idp.example.com/oauth2/authorize\"",
        ));
    }
    let mut authorization_endpoints = Vec::new();
    for (i, s) in raw.authorization_endpoints.iter().enumerate() {
        let field = format!("login_flow.authorization_endpoints[{i}]");
        let Some(u) = crate::uri::AbsoluteUri::parse(s) else {
            return Err(err(
                &field,
                format!("{s:?} is not an absolute http(s) URL; expected e.g. \"https://idp.example.com/oauth2/authorize\""),
            ));
        };
        if u.query.is_some() || u.fragment.is_some() {
            return Err(err(&field, format!("{s:?}: give the endpoint without query or fragment; they are ignored when matching")));
        }
        authorization_endpoints.push(s.clone());
    }
    if raw.callback_paths.is_empty() {
        return Err(err(
            "login_flow.callback_paths",
            "is empty; list the path(s) of your redirect_uri, e.g. \"/callback\"",
        ));
    }
    for (i, p) in raw.callback_paths.iter().enumerate() {
        if !p.starts_with('/') || p.contains(['?', '#']) {
            return Err(err(
                format!("login_flow.callback_paths[{i}]"),
                format!("{p:?} must be a path starting with '/', without query or fragment"),
            ));
        }
    }
    let mut keys = Vec::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let field = format!("login_flow.keys[{i}]");
        let (encoded, source) = match (&k.secret_env, &k.secret) {
            (Some(var), None) => match env(var) {
                Some(v) => (v, format!("environment variable {var}")),
                None => {
                    return Err(err(
                        &field,
                        format!(
                        "environment variable {var:?} is not set in the Wasm VM; expose it with \
                             vm_config.environment_variables.host_env_keys (or key_values)"
                    ),
                    ))
                }
            },
            (None, Some(v)) => {
                notes.push(format!(
                    "{field}.secret is inline in the configuration; prefer secret_env so the secret stays out of YAML"
                ));
                (v.clone(), format!("{field}.secret"))
            }
            _ => {
                return Err(err(
                    &field,
                    "give exactly one of secret_env (preferred) or secret",
                ))
            }
        };
        let secret = decode_secret(&encoded)
            .ok_or_else(|| err(&field, format!("the secret from {source} is not base64 (generate one with: openssl rand -base64 32)")))?;
        keys.push(Key::new(&k.id, &secret).map_err(|m| err(&field, m))?);
    }
    let keys = KeyRing::new(keys).map_err(|m| err("login_flow.keys", m))?;
    if !(60..=3600).contains(&raw.max_age_seconds) {
        return Err(err(
            "login_flow.max_age_seconds",
            format!(
                "{} is out of range; expected 60 to 3600 (a login's time at the IdP)",
                raw.max_age_seconds
            ),
        ));
    }
    let p = &raw.cookie_prefix;
    if p.is_empty()
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(err(
            "login_flow.cookie_prefix",
            format!("{p:?} must be letters, digits, '-' and '_'"),
        ));
    }
    if raw.insecure_cookies && (p.starts_with("__Host-") || p.starts_with("__Secure-")) {
        return Err(err(
            "login_flow.insecure_cookies",
            format!("browsers drop {p:?} cookies without Secure; use another cookie_prefix for plain-HTTP testing"),
        ));
    }
    if raw.insecure_cookies {
        notes.push("login_flow.insecure_cookies is true: cookies are sent over plain HTTP; for testing only".into());
    }
    if !is_header_name(&raw.session_header) || is_forwarding_header(&raw.session_header) {
        return Err(err(
            "login_flow.session_header",
            format!("{:?} must be a dedicated lower-case header name such as \"{DEFAULT_SESSION_HEADER}\"", raw.session_header),
        ));
    }
    if !(1..=16).contains(&raw.max_flows) {
        return Err(err(
            "login_flow.max_flows",
            format!("{} is out of range; expected 1 to 16", raw.max_flows),
        ));
    }
    if !(60..=30 * 86400).contains(&raw.session_max_age_seconds) {
        return Err(err(
            "login_flow.session_max_age_seconds",
            format!(
                "{} is out of range; expected 60 to 2592000 (30 days)",
                raw.session_max_age_seconds
            ),
        ));
    }
    if !(1024..=1024 * 1024).contains(&raw.max_callback_body_bytes) {
        return Err(err(
            "login_flow.max_callback_body_bytes",
            format!(
                "{} is out of range; expected 1024 to 1048576",
                raw.max_callback_body_bytes
            ),
        ));
    }
    Ok(LoginFlowConfig {
        affinity: raw.affinity,
        session_max_age: raw.session_max_age_seconds,
        max_callback_body: raw.max_callback_body_bytes,
        authorization_endpoints,
        callback_paths: raw.callback_paths,
        keys,
        mode: raw.mode,
        max_age: raw.max_age_seconds,
        cookie_prefix: raw.cookie_prefix,
        secure: !raw.insecure_cookies,
        session_header: raw.session_header,
        max_flows: raw.max_flows,
    })
}

fn validate_redirects(
    raw: RawRedirects,
    have_forwarded: bool,
    login_flow: Option<&LoginFlowConfig>,
) -> Result<RedirectsConfig, ConfigError> {
    let authorization_endpoints = match (raw.authorization_endpoints, login_flow) {
        (Some(list), _) => list,
        (None, Some(lf)) => lf.authorization_endpoints.clone(),
        (None, None) => Vec::new(),
    };
    for (i, e) in authorization_endpoints.iter().enumerate() {
        match crate::uri::AbsoluteUri::parse(e) {
            Some(u) if u.query.is_none() && u.fragment.is_none() => {}
            _ => {
                return Err(err(
                    format!("redirects.authorization_endpoints[{i}]"),
                    format!("{e:?} must be an absolute http(s) URL without query or fragment"),
                ))
            }
        }
    }
    if !raw.redirect_uris.is_empty() && authorization_endpoints.is_empty() {
        return Err(err(
            "redirects.authorization_endpoints",
            "is needed to check redirect_uris (or configure login_flow.authorization_endpoints)",
        ));
    }
    for (i, r) in raw.redirect_uris.iter().enumerate() {
        match crate::uri::AbsoluteUri::parse(r) {
            Some(u) if u.fragment.is_none() => {}
            _ => {
                return Err(err(
                    format!("redirects.redirect_uris[{i}]"),
                    format!("{r:?} must be an absolute http(s) URI without fragment, exactly as registered at the IdP"),
                ))
            }
        }
    }
    let mut internal_origins = Vec::new();
    for (i, o) in raw.internal_origins.iter().enumerate() {
        internal_origins.push(Origin::parse(o).map_err(|m| {
            err(
                format!("redirects.internal_origins[{i}]"),
                format!("{o:?} is not valid; expected {m}"),
            )
        })?);
    }
    if (!internal_origins.is_empty() || raw.rewrite_upstream_origin || raw.return_to.is_some())
        && !have_forwarded
    {
        return Err(err(
            "redirects",
            "Location rewriting and return_to need the external origin: configure the forwarded section too",
        ));
    }
    let return_to = match raw.return_to {
        None => None,
        Some(rt) => {
            let mut allowed_hosts = Vec::new();
            for (i, h) in rt.allowed_hosts.iter().enumerate() {
                allowed_hosts.push(HostPattern::parse(h).map_err(|m| {
                    err(
                        format!("redirects.return_to.allowed_hosts[{i}]"),
                        format!("{h:?} is not valid; expected {m}"),
                    )
                })?);
            }
            if rt.params.is_empty() {
                return Err(err(
                    "redirects.return_to.params",
                    "is empty; list parameter names such as \"rd\"",
                ));
            }
            for (i, p) in rt.paths.iter().enumerate() {
                if !p.starts_with('/') || p.contains(['?', '#']) {
                    return Err(err(
                        format!("redirects.return_to.paths[{i}]"),
                        format!("{p:?} must be a path starting with '/'"),
                    ));
                }
            }
            Some(ReturnToConfig {
                params: rt.params,
                paths: rt.paths,
                allowed_hosts,
                mode: rt.mode,
            })
        }
    };
    Ok(RedirectsConfig {
        authorization_endpoints,
        redirect_uris: raw.redirect_uris,
        redirect_uri_mode: raw.redirect_uri_mode,
        internal_origins,
        rewrite_upstream_origin: raw.rewrite_upstream_origin,
        return_to,
    })
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
            Err(_) => return Err(format!("{s:?} is not a valid CIDR; {expected}")),
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{s:?} has bits set after the prefix length; did you mean \"{}\"?",
            net.trunc()
        ));
    }
    if net.prefix_len() == 0 {
        return Err(format!(
            "{s:?} trusts every address, so any client could spoof forwarding headers; list your load \
             balancers' addresses, or use trusted_hops if only they can reach Envoy"
        ));
    }
    Ok(net)
}

/// A lower-case HTTP field name (RFC 9110 tchars, no upper case, no pseudo-headers).
fn is_header_name(h: &str) -> bool {
    !h.is_empty()
        && h.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCD";

    fn with_token(k: &str) -> Option<String> {
        (k == DEFAULT_PEER_TOKEN_ENV).then(|| TOKEN.to_string())
    }

    fn parse_err(json: &str) -> ConfigError {
        Config::parse_with_env(json.as_bytes(), &with_token).unwrap_err()
    }

    /// Issue point 4: trusting a peer named in a header needs the token.
    #[test]
    fn a_trusted_peer_header_needs_its_token() {
        let lb = br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"]}}"#;
        let e = Config::parse(lb).unwrap_err();
        assert_eq!(e.field, "forwarded.peer_token_env");
        for w in [
            "\"OIDC_EDGE_PEER_TOKEN\" is not set",
            "host_env_keys",
            "%ENVIRONMENT(OIDC_EDGE_PEER_TOKEN)%",
            "envoy/edge.yaml",
        ] {
            assert!(e.message.contains(w), "{} lacks {w}", e.message);
        }
        let c = Config::parse_with_env(lb, &with_token).unwrap();
        assert!(c.warnings().is_empty(), "{:?}", c.warnings());
        let f = c.forwarded.unwrap();
        assert!(f.peer_token.as_ref().is_some_and(|t| t.matches(TOKEN)));
        assert!(!f
            .peer_token
            .as_ref()
            .unwrap()
            .matches("0123456789abcdefghijklmnopqrstuvwxyzABCE"));
        assert!(!f.peer_token.as_ref().unwrap().matches(""));
        assert!(
            !format!("{f:?}").contains(TOKEN),
            "the token never reaches a log"
        );
        // Another variable name.
        let c = Config::parse_with_env(
            br#"{"forwarded": {"trusted_hops": 1, "peer_token_env": "MY_TOKEN"}}"#,
            &|k| (k == "MY_TOKEN").then(|| TOKEN.to_string()),
        );
        assert!(c.unwrap().forwarded.unwrap().peer_token.is_some());
        // A short or odd token.
        let e = Config::parse_with_env(lb, &|_| Some("short".into())).unwrap_err();
        assert!(e.message.contains("openssl rand -base64 32"), "{e}");
        let e = Config::parse_with_env(lb, &|_| Some(format!("{TOKEN};x"))).unwrap_err();
        assert_eq!(e.field, "forwarded.peer_token_env");
        // Nobody trusted, or the peer from source.address: no token needed.
        assert!(
            Config::parse(br#"{"forwarded": {"external_origin": "https://a.example"}}"#).is_ok()
        );
        assert!(Config::parse(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_address_from": "source_address"}}"#
        )
        .is_ok());
        // Explicitly off: loads, with a warning naming the risk.
        let c = Config::parse(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_token_env": null}}"#,
        )
        .unwrap();
        assert!(c.forwarded.as_ref().unwrap().peer_token.is_none());
        assert!(c
            .warnings()
            .iter()
            .any(|w| w.contains("any client can name a trusted peer")));
    }

    #[test]
    fn empty_config_turns_everything_off() {
        assert!(Config::parse(b"").unwrap().forwarded.is_none());
        assert!(Config::parse(b"  \n").unwrap().forwarded.is_none());
        assert!(Config::parse(b"{}").unwrap().forwarded.is_none());
    }

    #[test]
    fn defaults() {
        let c = Config::parse(br#"{"forwarded": {}}"#)
            .unwrap()
            .forwarded
            .unwrap();
        assert!(c.trusted_cidrs.is_empty());
        assert_eq!(c.trusted_hops, 0);
        assert_eq!(c.peer, PeerSource::Header(DEFAULT_PEER_HEADER.into()));
        assert_eq!(c.family, Family::XForwarded);
        assert!(
            !c.accept_host && !c.accept_prefix,
            "X-Forwarded-Host and -Prefix are trusted only when the operator says the LB sets them"
        );
        assert!(!c.emit_forwarded && !c.rewrite_host);
    }

    #[test]
    fn full_config() {
        let c = Config::parse_with_env(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "192.0.2.7", "fd00::/8"], "trusted_hops": 2,
                 "peer_address_from": "source_address", "family": "forwarded", "accept_host": true,
                 "external_origin": "https://App.example.com", "allowed_hosts": ["app.example.com", "*.example.org"],
                 "emit_forwarded": true, "rewrite_host": true}}"#,
            &with_token,
        )
        .unwrap()
        .forwarded
        .unwrap();
        assert_eq!(c.trusted_cidrs.len(), 3);
        assert!(c.in_trusted_cidrs("192.0.2.7".parse().unwrap()));
        assert!(!c.in_trusted_cidrs("192.0.2.8".parse().unwrap()));
        assert_eq!(c.peer, PeerSource::SourceAddress);
        assert_eq!(c.family, Family::Forwarded);
        assert!(c.accept_host);
        assert_eq!(c.external_origin.unwrap().authority.host, "app.example.com");
    }

    #[test]
    fn errors_name_the_field_and_the_fix() {
        // (config, field, words the message must contain)
        let rows: &[(&str, &str, &[&str])] = &[
            (
                r#"{"forwarded": {"trusted_cidr": []}}"#,
                "forwarded.trusted_cidr",
                &["unknown field `trusted_cidr`", "trusted_cidrs"],
            ),
            (
                r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "10.0.0.0/33"]}}"#,
                "forwarded.trusted_cidrs[1]",
                &["\"10.0.0.0/33\"", "10.0.0.0/8"],
            ),
            (
                r#"{"forwarded": {"trusted_cidrs": ["10.1.2.3/8"]}}"#,
                "forwarded.trusted_cidrs[0]",
                &["did you mean \"10.0.0.0/8\""],
            ),
            (
                r#"{"forwarded": {"trusted_cidrs": ["0.0.0.0/0"]}}"#,
                "forwarded.trusted_cidrs[0]",
                &["trusts every address"],
            ),
            (
                r#"{"forwarded": {"trusted_hops": 50}}"#,
                "forwarded.trusted_hops",
                &["50 is too many", "0 to 10"],
            ),
            (
                r#"{"forwarded": {"trusted_hops": "1"}}"#,
                "forwarded.trusted_hops",
                &["invalid type: string"],
            ),
            (
                r#"{"forwarded": {"family": "xforwarded"}}"#,
                "forwarded.family",
                &["unknown variant `xforwarded`", "`x-forwarded`"],
            ),
            (
                r#"{"forwarded": {"family": "forwarded", "prefer": "forwarded"}}"#,
                "forwarded.prefer",
                &["old name of forwarded.family", "give only family"],
            ),
            (
                r#"{"forwarded": {"family": "forwarded", "accept_prefix": true}}"#,
                "forwarded.accept_prefix",
                &["X-Forwarded-Prefix", "remove accept_prefix"],
            ),
            (
                r#"{"forwarded": {"accept_host": "yes"}}"#,
                "forwarded.accept_host",
                &["invalid type: string"],
            ),
            (
                r#"{"forwarded": {"peer_address_header": "X-Peer"}}"#,
                "forwarded.peer_address_header",
                &["lower-case"],
            ),
            (
                r#"{"forwarded": {"peer_address_header": "x-forwarded-for"}}"#,
                "forwarded.peer_address_header",
                &["rewrites"],
            ),
            (
                r#"{"forwarded": {"external_origin": "app.example.com"}}"#,
                "forwarded.external_origin",
                &["\"app.example.com\"", "https://app.example.com"],
            ),
            (
                r#"{"forwarded": {"external_origin": "https://a.example/login"}}"#,
                "forwarded.external_origin",
                &["without path"],
            ),
            (
                r#"{"forwarded": {"allowed_hosts": ["a.example:443"]}}"#,
                "forwarded.allowed_hosts[0]",
                &["without a port"],
            ),
            (
                r#"{"forwarded": {"external_origin": "https://a.example", "allowed_hosts": ["b.example"]}}"#,
                "forwarded.allowed_hosts",
                &["\"a.example\""],
            ),
            (
                r#"{"forwarde": {}}"#,
                "forwarde",
                &["unknown field `forwarde`"],
            ),
            (r#"{"forwarded": "#, "forwarded", &["EOF"]),
            (r#"[1]"#, "(top level)", &["expected a JSON object"]),
        ];
        for (json, field, words) in rows {
            let e = parse_err(json);
            assert_eq!(e.field, *field, "{json}: {e}");
            for w in *words {
                assert!(
                    e.message.contains(w),
                    "{json}: message {:?} lacks {w:?}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn warnings_flag_risky_but_valid_settings() {
        let c =
            Config::parse_with_env(br#"{"forwarded": {"trusted_hops": 1}}"#, &with_token).unwrap();
        assert!(c
            .warnings()
            .iter()
            .any(|w| w.contains("every peer is trusted")));
        let c = Config::parse_with_env(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"]}}"#,
            &with_token,
        )
        .unwrap();
        assert!(c.warnings().is_empty());
        let c = Config::parse_with_env(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "prefer": "forwarded"}}"#,
            &with_token,
        )
        .unwrap();
        assert_eq!(c.forwarded.as_ref().unwrap().family, Family::Forwarded);
        assert!(
            c.warnings()
                .iter()
                .any(|w| w.contains("rename it to forwarded.family")
                    && w.contains("X-Forwarded-* headers are removed")),
            "{:?}",
            c.warnings()
        );
    }
}
