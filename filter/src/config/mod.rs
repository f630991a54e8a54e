//! Plugin configuration: the JSON an operator writes in Envoy's
//! `configuration` (or Istio's `pluginConfig`), checked once at load.
//!
//! Parsing rejects unknown fields, and every error names the field path, the
//! bad value and what is expected, so a typo fails the config load instead of
//! silently turning a feature off. The result is a [`Config`] whose values are
//! already parsed (CIDRs, origins, host patterns), so the request path does no
//! parsing of configuration.

//!
//! Each feature's settings and their validation live beside the feature
//! (`forwarded::config`, `login_flow::config`, `redirects::config`,
//! `idp::config`); this module assembles them and keeps what they share
//! ([`field`]).

pub mod field;
pub(crate) mod json;
pub(crate) mod read;

pub use field::ConfigError;

use crate::discovery::config::{validate_discovery, DiscoveryConfig, RawDiscovery};
use crate::forwarded::config::{validate_forwarded, ForwardedConfig, PeerSource, RawForwarded};
use crate::idp::config::{validate_idp, RawIdp};
use crate::login_flow::config::{validate_login_flow, LoginFlowConfig, RawLoginFlow};
use crate::redirects::config::{validate_redirects, RawRedirects};
use crate::redirects::RedirectsConfig;
use field::err;
use read::Value;

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
    /// IdP discovery: the issuer whose metadata teaches the authorization
    /// endpoint (see [`crate::live`]); `None`: endpoints are static.
    pub discovery: Option<DiscoveryConfig>,
    /// Things an operator should look at, logged once at load.
    notes: Vec<String>,
}

#[derive(Default)]
pub(crate) struct RawConfig {
    forwarded: Option<RawForwarded>,
    login_flow: Option<RawLoginFlow>,
    redirects: Option<RawRedirects>,
    idp: Option<RawIdp>,
    discovery: Option<RawDiscovery>,
}

impl RawConfig {
    /// The top-level object; a section given as `null` is off.
    fn read(v: &Value<'_>) -> Result<RawConfig, ConfigError> {
        let f = v.object(&["forwarded", "login_flow", "redirects", "idp", "discovery"])?;
        Ok(RawConfig {
            forwarded: f.opt_or_null("forwarded", RawForwarded::read)?,
            login_flow: f.opt_or_null("login_flow", RawLoginFlow::read)?,
            redirects: f.opt_or_null("redirects", RawRedirects::read)?,
            idp: f.opt_or_null("idp", RawIdp::read)?,
            discovery: f.opt_or_null("discovery", RawDiscovery::read)?,
        })
    }
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
        let tree = json::parse(json)?;
        let raw = RawConfig::read(&Value::top(&tree))?;
        let mut notes = Vec::new();
        let discovery = raw
            .discovery
            .map(|r| validate_discovery(r, &mut notes))
            .transpose()?;
        let discovers = discovery.is_some();
        let forwarded = raw
            .forwarded
            .map(|r| validate_forwarded(r, env, &mut notes))
            .transpose()?;
        let login_flow = raw
            .login_flow
            .map(|r| validate_login_flow(r, env, discovers, &mut notes))
            .transpose()?;
        let redirects = raw
            .redirects
            .map(|r| {
                let endpoints: Option<Vec<String>> = login_flow.as_ref().map(|lf| {
                    lf.authorization_endpoints
                        .iter()
                        .map(|e| e.as_str().to_string())
                        .collect()
                });
                validate_redirects(
                    r,
                    forwarded.is_some(),
                    endpoints.as_deref(),
                    discovers,
                    &mut notes,
                )
            })
            .transpose()?;
        let idp = raw.idp.map(validate_idp).transpose()?;
        if discovers && login_flow.is_none() && redirects.is_none() {
            notes.push(
                "discovery is configured without login_flow or redirects: the learned authorization \
                 endpoint is used by neither (only the TLS agreement check runs)"
                    .into(),
            );
        }
        refuse_contradictions(forwarded.as_ref(), login_flow.as_ref(), redirects.as_ref())?;
        Ok(Config {
            forwarded,
            login_flow,
            redirects,
            idp,
            discovery,
            notes,
        })
    }

    /// The sections that are on, with their modes, for the line the module
    /// logs when the configuration loads (`forwarded, login_flow (enforce,
    /// affinity flow), redirects (redirect_uri enforce)`, or `none`).
    pub fn sections_on(&self) -> String {
        let mut on = Vec::new();
        if self.forwarded.is_some() {
            on.push("forwarded".to_string());
        }
        if let Some(lf) = &self.login_flow {
            on.push(format!(
                "login_flow ({}, affinity {})",
                mode_name(lf.mode),
                match lf.affinity {
                    crate::login_flow::config::Affinity::Session => "session",
                    crate::login_flow::config::Affinity::Flow => "flow",
                }
            ));
        }
        if let Some(r) = &self.redirects {
            let uri = match r.redirect_uri_mode {
                crate::redirects::RedirectUriMode::Enforce => "enforce",
                crate::redirects::RedirectUriMode::Report => "report",
                crate::redirects::RedirectUriMode::Fix => "fix",
            };
            let mut s = format!("redirects (redirect_uri {uri}");
            if let Some(rt) = &r.return_to {
                s.push_str(&format!(", return_to {}", mode_name(rt.mode)));
            }
            s.push(')');
            on.push(s);
        }
        if let Some(idp) = &self.idp {
            on.push(format!("idp ({})", mode_name(idp.mode)));
        }
        if let Some(d) = &self.discovery {
            on.push(format!("discovery ({})", d.issuer));
        }
        if on.is_empty() {
            "none".to_string()
        } else {
            on.join(", ")
        }
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
            if f.trusted_cidrs.is_empty()
                && f.trusted_hops == 0
                && f.external_origin.is_none()
                && f.external_origins.is_empty()
                && f.tcp_load_balancers.is_empty()
            {
                w.push(
                    "forwarded: no trusted_cidrs, trusted_hops, tcp_load_balancers or external_origin(s): every \
                     forwarding header is stripped and the upstream sees the connection's own scheme and Host"
                        .to_string(),
                );
            }
            if let Some(lf) = &self.login_flow {
                if let Some(o) = &f.external_origin {
                    w.extend(lf.external_origin_warning("forwarded.external_origin", o));
                }
                for (i, o) in f.external_origins.iter().enumerate() {
                    w.extend(
                        lf.external_origin_warning(&format!("forwarded.external_origins[{i}]"), o),
                    );
                }
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

fn mode_name(m: crate::outcome::Mode) -> &'static str {
    match m {
        crate::outcome::Mode::Enforce => "enforce",
        crate::outcome::Mode::Report => "report",
    }
}

/// Settings of different sections that cannot all be meant: each would make
/// every login fail in a way no request-time check explains, so the load
/// fails, naming the field and the fix.
fn refuse_contradictions(
    forwarded: Option<&ForwardedConfig>,
    login_flow: Option<&LoginFlowConfig>,
    redirects: Option<&RedirectsConfig>,
) -> Result<(), ConfigError> {
    let Some(r) = redirects.filter(|r| !r.redirect_uris.is_empty()) else {
        return Ok(());
    };
    let registered = r.registered().join(", ");
    if let Some(lf) = login_flow {
        for (i, cb) in lf.callback_paths.iter().enumerate() {
            if !r
                .redirect_uris
                .iter()
                .any(|u| u.path().ends_with(cb.as_str()))
            {
                return Err(err(
                    format!("login_flow.callback_paths[{i}]"),
                    format!(
                        "{} is the end of no registered redirect_uri (redirects.redirect_uris: {registered}): \
                         the IdP sends browsers back to registered URIs only, so the callbacks of these logins \
                         would not be recognised and not pinned to their node. Fix: make each callback path the \
                         path of a registered redirect_uri (or its end, behind a path prefix), or register the URI",
                        crate::text::quoted(cb.as_str()),
                    ),
                ));
            }
        }
    }
    let Some(f) = forwarded else {
        return Ok(());
    };
    if !f.allowed_hosts.is_empty() {
        for (i, u) in r.redirect_uris.iter().enumerate() {
            if !f
                .allowed_hosts
                .iter()
                .any(|p| p.matches(&u.authority().host))
            {
                return Err(err(
                    format!("redirects.redirect_uris[{i}]"),
                    format!(
                        "{} is on host {}, which forwarded.allowed_hosts does not allow: Envoy would answer \
                         the IdP's callback there 400 host_not_allowed. Fix: add {} to forwarded.allowed_hosts, \
                         or remove the URI",
                        crate::text::quoted(u.as_str()),
                        crate::text::quoted(&u.authority().host),
                        crate::text::quoted(&u.authority().host),
                    ),
                ));
            }
        }
    }
    if let Some(o) = &f.external_origin {
        if !r.redirect_uris.iter().any(|u| u.proto() == o.proto) {
            return Err(err(
                "forwarded.external_origin",
                format!(
                    "{} is {}, but no registered redirect_uri is ({registered}): the app builds its \
                     redirect_uri from the external origin, so every login would be refused \
                     (redirect_uri_mismatch). Fix: make external_origin the scheme your users' browsers use, \
                     and register redirect URIs on it",
                    crate::text::quoted(&o.serialize()),
                    o.proto.as_str(),
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forwarded::config::*;

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
            // A field given twice, or text after the object: a typo or a
            // bad merge, never silently half-read.
            (
                r#"{"forwarded": {"trusted_hops": 1, "trusted_hops": 2}}"#,
                "forwarded",
                &["duplicate field `trusted_hops`"],
            ),
            (
                r#"{"forwarded": {}} }"#,
                "(top level)",
                &["trailing characters"],
            ),
            (
                r#"{"forwarded": [[], 0]}"#,
                "forwarded",
                &["expected a JSON object"],
            ),
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

    /// Issue (cookies and affinity, point 3): a configuration that makes
    /// every login fail says so at load.
    #[test]
    fn an_http_external_origin_with_secure_cookies_is_flagged_at_load() {
        const LF: &str = r#""login_flow": {"authorization_endpoints": ["https://idp.example.com/a"],
            "callback_paths": ["/cb"], "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]"#;
        let rows: &[(&str, &str, bool, &str)] = &[
            (
                "http://app.example.com",
                "",
                true,
                "Secure cookies on an http origin: every login fails",
            ),
            ("https://app.example.com", "", false, "https: fine"),
            (
                "http://app.example.com",
                r#", "cookie_prefix": "t-", "insecure_cookies": true"#,
                false,
                "plain-HTTP testing",
            ),
        ];
        for (origin, extra, warned, why) in rows {
            let json =
                format!(r#"{{"forwarded": {{"external_origin": "{origin}"}}, {LF}{extra}}}}}"#);
            let c = Config::parse(json.as_bytes()).unwrap();
            let hit = c
                .warnings()
                .into_iter()
                .find(|w| w.contains("flow_insecure_origin"));
            assert_eq!(hit.is_some(), *warned, "{why}: {:?}", c.warnings());
            if let Some(w) = hit {
                assert!(
                    w.contains("make forwarded.external_origin https")
                        && w.contains("insecure_cookies"),
                    "{w}"
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

    /// Sections that contradict each other fail at load, naming the field
    /// and the fix (issue: wiring mistakes caught at load).
    #[test]
    fn contradictions_between_sections_fail_at_load() {
        let cfg = |forwarded: &str, callback: &str, uris: &str| {
            format!(
                r#"{{"forwarded": {{"trusted_cidrs": ["10.0.1.0/24"]{forwarded}}},
                    "login_flow": {{"authorization_endpoints": ["https://idp.example.com/authorize"],
                        "callback_paths": [{callback}], "keys": [{{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}}]}},
                    "redirects": {{"redirect_uris": [{uris}]}}}}"#
            )
        };
        let good = cfg(
            r#", "allowed_hosts": ["app.example.com", "*.example.org"]"#,
            r#""/callback", "/oidc/cb""#,
            r#""https://app.example.com/callback", "https://a.example.org/prefix/oidc/cb""#,
        );
        Config::parse_with_env(good.as_bytes(), &with_token).unwrap();

        let e = parse_err(&cfg(
            "",
            r#""/callback", "/callbak""#,
            r#""https://app.example.com/callback""#,
        ));
        assert_eq!(e.field, "login_flow.callback_paths[1]");
        assert!(
            e.message.contains("\"/callbak\"") && e.message.contains("Fix:"),
            "{e}"
        );

        let e = parse_err(&cfg(
            r#", "allowed_hosts": ["app.example.com"]"#,
            r#""/callback""#,
            r#""https://app.example.com/callback", "https://other.example/callback""#,
        ));
        assert_eq!(e.field, "redirects.redirect_uris[1]");
        assert!(
            e.message.contains("\"other.example\"") && e.message.contains("allowed_hosts"),
            "{e}"
        );

        let e = parse_err(&cfg(
            r#", "external_origin": "https://app.example.com""#,
            r#""/callback""#,
            r#""http://app.example.com/callback""#,
        ));
        assert_eq!(e.field, "forwarded.external_origin");
        assert!(
            e.message.contains("redirect_uri_mismatch") && e.message.contains("Fix:"),
            "{e}"
        );
        // The same scheme loads.
        Config::parse_with_env(
            cfg(
                r#", "external_origin": "https://app.example.com""#,
                r#""/callback""#,
                r#""http://app.example.com/callback", "https://app.example.com/callback""#,
            )
            .as_bytes(),
            &with_token,
        )
        .unwrap();
    }

    #[test]
    fn sections_on_names_each_section_and_its_mode() {
        assert_eq!(Config::parse(b"{}").unwrap().sections_on(), "none");
        let c = Config::parse_with_env(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.1.0/24"]},
                 "login_flow": {"authorization_endpoints": ["https://idp.example.com/authorize"],
                    "callback_paths": ["/callback"], "mode": "report", "affinity": "session",
                    "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]},
                 "redirects": {"redirect_uris": ["https://app.example.com/callback"], "redirect_uri_mode": "fix",
                    "return_to": {"paths": ["/login"]}}}"#,
            &with_token,
        )
        .unwrap();
        assert_eq!(
            c.sections_on(),
            "forwarded, login_flow (report, affinity session), redirects (redirect_uri fix, return_to enforce)"
        );
    }

    /// Issue 11 §1: per-host origins and TCP load balancers fail at load
    /// naming the field and the fix; the single external_origin still loads.
    #[test]
    fn external_origins_and_tcp_load_balancers_are_checked_at_load() {
        let rows: &[(&str, &str, &[&str])] = &[
            (
                r#"{"forwarded": {"external_origin": "https://a.example", "external_origins": ["https://b.example"]}}"#,
                "forwarded.external_origins",
                &["give one", "move external_origin into the list"],
            ),
            (
                r#"{"forwarded": {"external_origins": ["https://a.example", "a.example"]}}"#,
                "forwarded.external_origins[1]",
                &["\"a.example\" is not valid", "https://app.example.com"],
            ),
            (
                r#"{"forwarded": {"external_origins": ["https://a.example", "http://A.example:443"]}}"#,
                "forwarded.external_origins[1]",
                &["same host and port as external_origins[0]", "keep one"],
            ),
            (
                r#"{"forwarded": {"external_origins": ["https://a.example", "https://b.example"], "allowed_hosts": ["a.example"]}}"#,
                "forwarded.allowed_hosts",
                &["external_origins[1]'s host \"b.example\"", "add it"],
            ),
            (
                r#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"]}]}}"#,
                "forwarded.tcp_load_balancers[0].cidrs[0]",
                &[
                    "overlaps trusted_cidrs[0] (10.0.0.0/8)",
                    "list it in one of them",
                ],
            ),
            (
                r#"{"forwarded": {"tcp_load_balancers": [{"cidrs": []}]}}"#,
                "forwarded.tcp_load_balancers[0].cidrs",
                &["is empty"],
            ),
            (
                r#"{"forwarded": {"tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"]}, {"cidrs": ["10.0.2.9"]}]}}"#,
                "forwarded.tcp_load_balancers[1].cidrs[0]",
                &["overlaps tcp_load_balancers[0]"],
            ),
            (
                r#"{"forwarded": {"tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"], "scheme": "tls"}]}}"#,
                "forwarded.tcp_load_balancers[0].scheme",
                &["\"tls\" is not a scheme", "\"https\""],
            ),
            (
                r#"{"forwarded": {"tcp_load_balancers": [{"cidrs": ["10.0.2.0/33"]}]}}"#,
                "forwarded.tcp_load_balancers[0].cidrs[0]",
                &["not a valid CIDR"],
            ),
            (
                r#"{"forwarded": {"peer_address_from": "source_address", "tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"], "proxy_protocol": true}]}}"#,
                "forwarded.tcp_load_balancers[0].proxy_protocol",
                &["peer_address_from \"header\"", "envoy/proxy-protocol.yaml"],
            ),
            (
                r#"{"forwarded": {"tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"], "proxy": true}]}}"#,
                "forwarded.tcp_load_balancers[0].proxy",
                &["unknown field `proxy`", "proxy_protocol"],
            ),
            (
                r#"{"forwarded": {"x_forwarded_for": "last"}}"#,
                "forwarded.x_forwarded_for",
                &["unknown variant `last`", "client", "chain"],
            ),
        ];
        for (json, field, words) in rows {
            let e = parse_err(json);
            assert_eq!(e.field, *field, "{json}: {e}");
            for w in *words {
                assert!(e.message.contains(w), "{json}: {} lacks {w}", e.message);
            }
        }
        let ok = Config::parse_with_env(
            br#"{"forwarded": {"trusted_cidrs": ["10.0.1.0/24"], "tcp_load_balancers": [{"cidrs": ["10.0.2.0/24"], "proxy_protocol": true}],
                "external_origins": ["https://a.example", "https://a.example:8443", "https://b.example"], "allowed_hosts": ["*.example", "a.example", "b.example"]}}"#,
            &with_token,
        )
        .unwrap()
        .forwarded
        .unwrap();
        assert_eq!(ok.external_origins.len(), 3);
        assert_eq!(
            ok.tcp_load_balancers[0].proto,
            crate::http::authority::Proto::Https
        );
        assert!(ok.tcp_load_balancers[0].proxy_protocol);
        assert_eq!(ok.x_forwarded_for, XffForm::Client);
        // The single origin keeps its meaning: every request, whatever its Host.
        let single =
            Config::parse(br#"{"forwarded": {"external_origin": "https://a.example:8443"}}"#)
                .unwrap()
                .forwarded
                .unwrap();
        let other = crate::http::authority::Authority::parse("internal:10000").unwrap();
        assert_eq!(
            single.origin_for(&other).map(|o| o.serialize()).as_deref(),
            Some("https://a.example:8443")
        );
    }

    #[test]
    fn every_http_external_origin_with_secure_cookies_is_flagged() {
        let json = r#"{"forwarded": {"external_origins": ["https://a.example", "http://b.example"]},
            "login_flow": {"authorization_endpoints": ["https://idp.example.com/a"], "callback_paths": ["/cb"],
            "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}}"#;
        let w = Config::parse(json.as_bytes()).unwrap().warnings();
        let hits: Vec<_> = w
            .iter()
            .filter(|w| w.contains("flow_insecure_origin"))
            .collect();
        assert_eq!(hits.len(), 1, "{w:?}");
        assert!(
            hits[0].contains("forwarded.external_origins[1] is \"http://b.example\""),
            "{}",
            hits[0]
        );
    }
}
