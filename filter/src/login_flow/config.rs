//! `login_flow` settings: endpoints, callback paths, the key ring and the
//! cookie policy, validated once at load.

use crate::config::field::{err, is_forwarding_header, is_header_name, ConfigError};
use crate::config::read::Value;
use crate::http::authority::{Origin, Proto};
use crate::http::uri::AbsoluteUri;
use crate::outcome::Mode;
use crate::seal::keyring::{decode_secret, Key, KeyRing};

/// Default flow cookie name prefix. `__Host-` makes browsers refuse the
/// cookie unless it is `Secure`, has `Path=/` and no `Domain`, so a sibling
/// subdomain cannot plant or overwrite it.
pub const DEFAULT_COOKIE_PREFIX: &str = "__Host-oidc-edge-";

/// The cookie name prefix every `Secure` configuration must use (exactly
/// this spelling). A cookie without it can be set by any sibling subdomain
/// with `Domain=` (cookie tossing, RFC 6265bis §4.1.3.2): it would shadow
/// or add flow cookies, send logins in loops or lose their affinity.
/// `__Secure-` is not enough: it still allows `Domain`.
pub const HOST_PREFIX: &str = "__Host-";

/// Default request header that carries the pinned node to Envoy's
/// `stateful_session` filter (`HeaderBasedSessionState.name`).
pub const DEFAULT_SESSION_HEADER: &str = "x-oidc-edge-node";

/// An IdP authorization endpoint, parsed once at load: the request path
/// compares a `Location` with it and never parses configuration again.
///
/// [`AbsoluteUri`] borrows from the text it parsed, so it cannot live in the
/// configuration; this keeps the parts a comparison needs (scheme, host,
/// effective port, path), owned, and the text as written for the
/// `redirects` section, which defaults to the same endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationEndpoint {
    written: String,
    proto: Proto,
    host: String,
    port: u16,
    path: String,
}

impl AuthorizationEndpoint {
    /// Parses an absolute `http(s)` URL without query or fragment (both
    /// would be ignored when matching, so writing one is a mistake).
    pub fn parse(s: &str) -> Result<AuthorizationEndpoint, String> {
        let Some(u) = AbsoluteUri::parse(s) else {
            return Err(format!(
                "{s_q} is not an absolute http(s) URL; expected e.g. \"https://idp.example.com/oauth2/authorize\"",
                s_q = crate::text::quoted(s),
            ));
        };
        if u.query.is_some() || u.fragment.is_some() {
            return Err(format!(
                "{s_q}: give the endpoint without query or fragment; they are ignored when matching",
                s_q = crate::text::quoted(s),
            ));
        }
        Ok(AuthorizationEndpoint {
            written: s.to_string(),
            proto: u.proto,
            port: u.port(),
            host: u.authority.host,
            path: u.path.to_string(),
        })
    }

    /// The endpoint as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// Whether `uri` addresses this endpoint: the same scheme, host,
    /// effective port and path, byte for byte (query and fragment ignored),
    /// as [`AbsoluteUri::same_endpoint`] compares two parsed URIs.
    pub fn matches(&self, uri: &AbsoluteUri<'_>) -> bool {
        self.proto == uri.proto
            && self.host == uri.authority.host
            && self.port == uri.port()
            && self.path == uri.path
    }
}

/// How the IdP answers the callback, as far as the flow cookie's
/// `SameSite` depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMode {
    /// Read it from each authorization request: `response_mode=form_post`
    /// in the `Location` gets `SameSite=None`, anything else `Lax`.
    #[default]
    Auto,
    /// Every flow's callback is a cross-site POST (an IdP whose client is
    /// registered for `form_post` by default, so the authorization URL does
    /// not say so): every flow cookie is `SameSite=None`, or the browser
    /// would withhold it from the IdP's POST and every login would fail.
    FormPost,
}

/// How long requests stay pinned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Affinity {
    /// Only the login callback returns to the node that started the login.
    #[default]
    Flow,
    /// From the start of a login on, every request of the browser keeps
    /// going to the node that started it (apps that keep sessions, and the
    /// login in progress, in memory).
    Session,
}

impl ResponseMode {
    const NAMES: &'static [(&'static str, ResponseMode)] = &[
        ("auto", ResponseMode::Auto),
        ("form_post", ResponseMode::FormPost),
    ];
}

impl Affinity {
    const NAMES: &'static [(&'static str, Affinity)] =
        &[("flow", Affinity::Flow), ("session", Affinity::Session)];
}

/// Login-flow affinity settings (the `login_flow` section).
#[derive(Debug, Clone)]
pub struct LoginFlowConfig {
    /// The IdP's authorization endpoint(s) the app redirects browsers to,
    /// parsed once here.
    pub authorization_endpoints: Vec<AuthorizationEndpoint>,
    /// Paths (without query) where the IdP sends the browser back. A
    /// request path matches in any spelling a lenient router maps to the
    /// same handler ([`crate::http::uri::route_matches_any`]), so that
    /// `/Callback` or `/callback;x` cannot skip the flow check.
    pub callback_paths: Vec<crate::http::uri::RoutePattern>,
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
    /// Whether every callback is a form post (`SameSite=None`), or that is
    /// read from each authorization request.
    pub response_mode: ResponseMode,
}

impl LoginFlowConfig {
    /// A load warning when a configured external origin (`field`, e.g.
    /// `forwarded.external_origin`) makes every login on it fail: plain
    /// `http` with `Secure` cookies, which browsers drop there, so every
    /// login start is refused (`flow_insecure_origin`).
    pub fn external_origin_warning(&self, field: &str, external: &Origin) -> Option<String> {
        (self.secure && external.proto == Proto::Http).then(|| {
            format!(
                "{field} is {} but login_flow cookies are Secure: browsers drop them \
                 over plain http, so every login there is refused (flow_insecure_origin); make {field} \
                 https, or for plain-HTTP testing set login_flow.insecure_cookies with a cookie_prefix \
                 without __Host-",
                crate::text::quoted(&external.serialize()),
            )
        })
    }
}

pub(crate) struct RawKey {
    id: String,
    secret_env: Option<String>,
    secret: Option<String>,
}

impl RawKey {
    fn read(v: &Value<'_>) -> Result<RawKey, ConfigError> {
        let f = v.object(&["id", "secret_env", "secret"])?;
        Ok(RawKey {
            id: f.req("id", Value::string)?,
            secret_env: f.opt_or_null("secret_env", Value::string)?,
            secret: f.opt_or_null("secret", Value::string)?,
        })
    }
}

pub(crate) struct RawLoginFlow {
    authorization_endpoints: Vec<String>,
    callback_paths: Vec<String>,
    keys: Vec<RawKey>,
    mode: Mode,
    max_age_seconds: u64,
    cookie_prefix: String,
    insecure_cookies: bool,
    session_header: String,
    max_flows: usize,
    affinity: Affinity,
    session_max_age_seconds: u64,
    max_callback_body_bytes: usize,
    response_mode: ResponseMode,
}

impl RawLoginFlow {
    pub(crate) fn read(v: &Value<'_>) -> Result<RawLoginFlow, ConfigError> {
        let f = v.object(&[
            "authorization_endpoints",
            "callback_paths",
            "keys",
            "mode",
            "max_age_seconds",
            "cookie_prefix",
            "insecure_cookies",
            "session_header",
            "max_flows",
            "affinity",
            "session_max_age_seconds",
            "max_callback_body_bytes",
            "response_mode",
        ])?;
        Ok(RawLoginFlow {
            // Optional: discovery may teach it (checked in validate_login_flow).
            authorization_endpoints: f
                .opt("authorization_endpoints", Value::strings)?
                .unwrap_or_default(),
            callback_paths: f.req("callback_paths", Value::strings)?,
            keys: f.req("keys", |k| k.list()?.iter().map(RawKey::read).collect())?,
            mode: f
                .opt("mode", |m| m.variant(Mode::NAMES))?
                .unwrap_or_default(),
            max_age_seconds: f
                .opt("max_age_seconds", Value::u64)?
                .unwrap_or(DEFAULT_MAX_AGE),
            cookie_prefix: f
                .opt("cookie_prefix", Value::string)?
                .unwrap_or_else(|| DEFAULT_COOKIE_PREFIX.to_string()),
            insecure_cookies: f.opt("insecure_cookies", Value::bool)?.unwrap_or(false),
            session_header: f
                .opt("session_header", Value::string)?
                .unwrap_or_else(|| DEFAULT_SESSION_HEADER.to_string()),
            max_flows: f
                .opt("max_flows", Value::usize)?
                .unwrap_or(DEFAULT_MAX_FLOWS),
            affinity: f
                .opt("affinity", |a| a.variant(Affinity::NAMES))?
                .unwrap_or_default(),
            session_max_age_seconds: f
                .opt("session_max_age_seconds", Value::u64)?
                .unwrap_or(DEFAULT_SESSION_MAX_AGE),
            max_callback_body_bytes: f
                .opt("max_callback_body_bytes", Value::usize)?
                .unwrap_or(DEFAULT_MAX_CALLBACK_BODY),
            response_mode: f
                .opt("response_mode", |r| r.variant(ResponseMode::NAMES))?
                .unwrap_or_default(),
        })
    }
}

/// Session-affinity cookie lifetime unless configured: a working day.
const DEFAULT_SESSION_MAX_AGE: u64 = 8 * 3600;
/// Largest form-post callback body unless configured.
const DEFAULT_MAX_CALLBACK_BODY: usize = 16 * 1024;
/// Flow cookie lifetime unless configured: ten minutes at the IdP.
const DEFAULT_MAX_AGE: u64 = 600;
/// Parallel logins a browser may have unless configured.
const DEFAULT_MAX_FLOWS: usize = 4;

pub(crate) fn validate_login_flow(
    raw: RawLoginFlow,
    env: &dyn Fn(&str) -> Option<String>,
    discovers: bool,
    notes: &mut Vec<String>,
) -> Result<LoginFlowConfig, ConfigError> {
    // With discovery the endpoint may be learned instead (crate::live).
    if raw.authorization_endpoints.is_empty() && !discovers {
        return Err(err(
            "login_flow.authorization_endpoints",
            "is empty; list your IdP's authorization endpoint, e.g. \"https://idp.example.com/oauth2/authorize\", \
             or configure discovery with your issuer",
        ));
    }
    let mut authorization_endpoints = Vec::new();
    for (i, s) in raw.authorization_endpoints.iter().enumerate() {
        let endpoint = AuthorizationEndpoint::parse(s)
            .map_err(|m| err(format!("login_flow.authorization_endpoints[{i}]"), m))?;
        authorization_endpoints.push(endpoint);
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
                format!(
                    "{p_q} must be a path starting with '/', without query or fragment",
                    p_q = crate::text::quoted(p)
                ),
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
                        "environment variable {var_q} is not set in the Wasm VM; expose it with \
                             vm_config.environment_variables.host_env_keys (or key_values)",
                        var_q = crate::text::quoted(var),
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
            format!(
                "{p_q} must be letters, digits, '-' and '_'",
                p_q = crate::text::quoted(p)
            ),
        ));
    }
    if !raw.insecure_cookies && !p.starts_with(HOST_PREFIX) {
        return Err(err(
            "login_flow.cookie_prefix",
            format!(
                "{p_q} must start with \"{HOST_PREFIX}\" (e.g. \"{DEFAULT_COOKIE_PREFIX}\", the default): without it a \
                 sibling subdomain can plant cookies under these names (cookie tossing) and steer or break logins; \
                 for plain-HTTP testing only, set login_flow.insecure_cookies: true with a prefix without \"__Host-\"",
                p_q = crate::text::quoted(p),
            ),
        ));
    }
    if raw.insecure_cookies && (p.starts_with(HOST_PREFIX) || p.starts_with("__Secure-")) {
        return Err(err(
            "login_flow.insecure_cookies",
            format!(
                "browsers drop {p_q} cookies without Secure; use another cookie_prefix for plain-HTTP testing",
                p_q = crate::text::quoted(p),
            ),
        ));
    }
    if raw.insecure_cookies && raw.response_mode == ResponseMode::FormPost {
        return Err(err(
            "login_flow.response_mode",
            "\"form_post\" needs SameSite=None cookies, which browsers drop without Secure; \
             remove insecure_cookies (and serve the site over https), or test with response_mode \"auto\"",
        ));
    }
    if raw.insecure_cookies {
        notes.push("login_flow.insecure_cookies is true: cookies are sent over plain HTTP; for testing only".into());
    }
    if !is_header_name(&raw.session_header) || is_forwarding_header(&raw.session_header) {
        return Err(err(
            "login_flow.session_header",
            format!(
                "{} must be a dedicated lower-case header name such as \"{DEFAULT_SESSION_HEADER}\"",
                crate::text::quoted(&raw.session_header),
            ),
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
        callback_paths: raw
            .callback_paths
            .iter()
            .map(|p| crate::http::uri::RoutePattern::new(p))
            .collect(),
        keys,
        mode: raw.mode,
        max_age: raw.max_age_seconds,
        cookie_prefix: raw.cookie_prefix,
        secure: !raw.insecure_cookies,
        session_header: raw.session_header,
        max_flows: raw.max_flows,
        response_mode: raw.response_mode,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    /// `login_flow` with `extra` fields; `extra` may replace the endpoints.
    fn parse(extra: &str) -> Result<Config, crate::config::ConfigError> {
        let endpoints = if extra.contains("authorization_endpoints") {
            ""
        } else {
            r#""authorization_endpoints": ["https://idp.example.com/oauth2/authorize"],"#
        };
        let json = format!(
            r#"{{"login_flow": {{{endpoints}
                 "callback_paths": ["/callback"], "keys": [{{"id": "k1", "secret": "{SECRET}"}}]{extra}}}}}"#
        );
        Config::parse(json.as_bytes())
    }

    /// Settings refused at load: (case and source, `login_flow` extra,
    /// field, words the message must hold, so it names the fix).
    #[test]
    fn refused_settings_name_the_field_and_the_fix() {
        let rows: &[(&str, &str, &str, &[&str])] = &[
            (
                "cookie tossing: a prefix without __Host- (issue: cookies and affinity, point 1)",
                r#", "cookie_prefix": "oidc-""#,
                "login_flow.cookie_prefix",
                &[
                    "must start with \"__Host-\"",
                    "sibling subdomain",
                    "insecure_cookies",
                ],
            ),
            (
                "__Secure- still allows Domain= (RFC 6265bis §4.1.3.1)",
                r#", "cookie_prefix": "__Secure-oidc-""#,
                "login_flow.cookie_prefix",
                &["must start with \"__Host-\""],
            ),
            (
                "prefix spelled in another case: browsers may not treat it as the prefix",
                r#", "cookie_prefix": "__host-oidc-""#,
                "login_flow.cookie_prefix",
                &["must start with \"__Host-\""],
            ),
            (
                "__Host- without Secure is dropped by browsers (RFC 6265bis §4.1.3.2)",
                r#", "insecure_cookies": true"#,
                "login_flow.insecure_cookies",
                &["without Secure", "another cookie_prefix"],
            ),
            (
                "an endpoint with a query: ignored when matching, so a mistake",
                r#", "authorization_endpoints": ["https://idp.example.com/authorize?x=1"]"#,
                "login_flow.authorization_endpoints[0]",
                &["without query or fragment"],
            ),
            (
                "a relative endpoint",
                r#", "authorization_endpoints": ["/authorize"]"#,
                "login_flow.authorization_endpoints[0]",
                &[
                    "not an absolute http(s) URL",
                    "https://idp.example.com/oauth2/authorize",
                ],
            ),
            (
                "form_post needs SameSite=None, which needs Secure (RFC 6265bis §5.6.7)",
                r#", "response_mode": "form_post", "cookie_prefix": "oidc-", "insecure_cookies": true"#,
                "login_flow.response_mode",
                &["SameSite=None", "without Secure", "remove insecure_cookies"],
            ),
            (
                "an unknown response mode",
                r#", "response_mode": "fragment""#,
                "login_flow.response_mode",
                &["unknown variant `fragment`", "`auto`", "`form_post`"],
            ),
            (
                "not a cookie-name token",
                r#", "cookie_prefix": "__Host-a b""#,
                "login_flow.cookie_prefix",
                &["letters, digits"],
            ),
        ];
        for (why, extra, field, words) in rows {
            let e = parse(extra)
                .err()
                .unwrap_or_else(|| panic!("{why}: loaded"));
            assert_eq!(e.field, *field, "{why}: {e}");
            for w in *words {
                assert!(e.message.contains(w), "{why}: {:?} lacks {w:?}", e.message);
            }
        }
    }

    /// Settings that load: (case, `login_flow` extra).
    #[test]
    fn accepted_cookie_settings() {
        let rows: &[(&str, &str)] = &[
            ("the default prefix", ""),
            (
                "another __Host- prefix",
                r#", "cookie_prefix": "__Host-app-""#,
            ),
            (
                "plain-HTTP testing without a prefix",
                r#", "cookie_prefix": "oidc-", "insecure_cookies": true"#,
            ),
            (
                "every callback a form post",
                r#", "response_mode": "form_post""#,
            ),
        ];
        for (why, extra) in rows {
            assert!(parse(extra).is_ok(), "{why}: {:?}", parse(extra).err());
        }
    }
}
