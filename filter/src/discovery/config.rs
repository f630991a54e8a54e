//! `discovery` settings: the issuer, the Envoy cluster that reaches it and
//! the fetch schedule, validated once at load.

use crate::config::field::{err, ConfigError};
use crate::config::read::Value;
use crate::http::authority::Proto;
use crate::http::uri::AbsoluteUri;

/// Where the IdP's metadata is fetched from, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The issuer, exactly as written: the document's `issuer` must equal
    /// it byte for byte (OpenID Connect Discovery 1.0 §4.3).
    pub issuer: String,
    /// The Envoy cluster `dispatch_http_call` sends the fetch to.
    pub cluster: String,
    /// `:authority` of the fetch: the issuer's host and port as written.
    pub authority: String,
    /// `:path` of the fetch: the issuer's path + `/.well-known/openid-configuration`.
    pub path: String,
    /// Time between fetches while the IdP answers well, in milliseconds.
    pub refresh_ms: u64,
    /// First retry delay after a failure, in milliseconds (doubles per failure).
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds.
    pub retry_max_ms: u64,
    /// How long one fetch may take, in milliseconds.
    pub timeout_ms: u64,
    /// Accept an `http` issuer and `http` endpoints (test beds only): they
    /// are still counted and logged as TLS disagreements.
    pub allow_http: bool,
}

/// The suffix OpenID Connect Discovery 1.0 §4 appends to the issuer.
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

pub(crate) struct RawDiscovery {
    issuer: String,
    cluster: String,
    refresh_interval_seconds: u64,
    retry_initial_ms: u64,
    retry_max_seconds: u64,
    timeout_ms: u64,
    allow_http: bool,
}

impl RawDiscovery {
    pub(crate) fn read(v: &Value<'_>) -> Result<RawDiscovery, ConfigError> {
        let f = v.object(&[
            "issuer",
            "cluster",
            "refresh_interval_seconds",
            "retry_initial_ms",
            "retry_max_seconds",
            "timeout_ms",
            "allow_http",
        ])?;
        Ok(RawDiscovery {
            issuer: f.req("issuer", Value::string)?,
            cluster: f.req("cluster", Value::string)?,
            refresh_interval_seconds: f
                .opt("refresh_interval_seconds", Value::u64)?
                .unwrap_or(3600),
            retry_initial_ms: f.opt("retry_initial_ms", Value::u64)?.unwrap_or(1000),
            retry_max_seconds: f.opt("retry_max_seconds", Value::u64)?.unwrap_or(300),
            timeout_ms: f.opt("timeout_ms", Value::u64)?.unwrap_or(5000),
            allow_http: f.opt("allow_http", Value::bool)?.unwrap_or(false),
        })
    }
}

pub(crate) fn validate_discovery(
    raw: RawDiscovery,
    notes: &mut Vec<String>,
) -> Result<DiscoveryConfig, ConfigError> {
    let example = "e.g. \"https://idp.example.com\" or \"https://idp.example.com/realms/main\"";
    let Some(u) = AbsoluteUri::parse(&raw.issuer) else {
        return Err(err(
            "discovery.issuer",
            format!(
                "{} is not an absolute https URL; {example}",
                crate::text::quoted(&raw.issuer)
            ),
        ));
    };
    if u.query.is_some() || u.fragment.is_some() {
        return Err(err(
            "discovery.issuer",
            format!(
                "{}: an issuer has no query or fragment (OpenID Connect Discovery 1.0 §2); {example}",
                crate::text::quoted(&raw.issuer)
            ),
        ));
    }
    if u.proto == Proto::Http && !raw.allow_http {
        return Err(err(
            "discovery.issuer",
            format!(
                "{} is plain http: the IdP's metadata and logins would travel unprotected; use the \
                 issuer's https URL, or for a test bed only set discovery.allow_http: true",
                crate::text::quoted(&raw.issuer)
            ),
        ));
    }
    // The authority as written (the issuer is compared as written too).
    let rest = raw.issuer.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("").to_string();
    let path = format!("{}{WELL_KNOWN}", u.path.trim_end_matches('/'));
    if raw.cluster.is_empty() || raw.cluster.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(err(
            "discovery.cluster",
            format!(
                "{} must be the name of the Envoy cluster that reaches the IdP (static_resources.clusters[].name), \
                 e.g. \"idp\"",
                crate::text::quoted(&raw.cluster)
            ),
        ));
    }
    if !(1..=86400).contains(&raw.refresh_interval_seconds) {
        return Err(err(
            "discovery.refresh_interval_seconds",
            format!(
                "{} is out of range; expected 1 to 86400 (a day); the default is 3600",
                raw.refresh_interval_seconds
            ),
        ));
    }
    if !(100..=60_000).contains(&raw.retry_initial_ms) {
        return Err(err(
            "discovery.retry_initial_ms",
            format!(
                "{} is out of range; expected 100 to 60000; the default is 1000",
                raw.retry_initial_ms
            ),
        ));
    }
    if !(1..=3600).contains(&raw.retry_max_seconds)
        || raw.retry_max_seconds.saturating_mul(1000) < raw.retry_initial_ms
    {
        return Err(err(
            "discovery.retry_max_seconds",
            format!(
                "{} is out of range; expected 1 to 3600 and at least retry_initial_ms; the default is 300",
                raw.retry_max_seconds
            ),
        ));
    }
    if !(100..=60_000).contains(&raw.timeout_ms) {
        return Err(err(
            "discovery.timeout_ms",
            format!(
                "{} is out of range; expected 100 to 60000; the default is 5000",
                raw.timeout_ms
            ),
        ));
    }
    if raw.allow_http {
        notes.push(
            "discovery.allow_http is true: an http issuer or endpoints are accepted (and counted as \
             discovery.tls_mismatch); for test beds only"
                .into(),
        );
    }
    Ok(DiscoveryConfig {
        issuer: raw.issuer,
        cluster: raw.cluster,
        authority,
        path,
        refresh_ms: raw.refresh_interval_seconds * 1000,
        retry_initial_ms: raw.retry_initial_ms,
        retry_max_ms: raw.retry_max_seconds * 1000,
        timeout_ms: raw.timeout_ms,
        allow_http: raw.allow_http,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn parse(discovery: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(format!(r#"{{"discovery": {discovery}}}"#).as_bytes())
    }

    #[test]
    fn the_fetch_is_derived_from_the_issuer() {
        let rows = [
            (
                "https://idp.example.com",
                "idp.example.com",
                "/.well-known/openid-configuration",
            ),
            (
                "https://idp.example.com/",
                "idp.example.com",
                "/.well-known/openid-configuration",
            ),
            (
                "https://IdP.example.com:8443/realms/main",
                "IdP.example.com:8443",
                "/realms/main/.well-known/openid-configuration",
            ),
        ];
        for (issuer, authority, path) in rows {
            let c = parse(&format!(r#"{{"issuer": "{issuer}", "cluster": "idp"}}"#)).unwrap();
            let d = c.discovery.unwrap();
            assert_eq!(d.issuer, issuer);
            assert_eq!(d.authority, authority);
            assert_eq!(d.path, path);
            assert_eq!(d.refresh_ms, 3_600_000);
            assert_eq!((d.retry_initial_ms, d.retry_max_ms), (1000, 300_000));
            assert!(!d.allow_http);
        }
    }

    #[test]
    fn refused_settings_name_the_field_and_the_fix() {
        let rows: &[(&str, &str, &[&str])] = &[
            (
                r#"{"issuer": "http://idp.example.com", "cluster": "idp"}"#,
                "discovery.issuer",
                &["plain http", "allow_http"],
            ),
            (
                r#"{"issuer": "idp.example.com", "cluster": "idp"}"#,
                "discovery.issuer",
                &["not an absolute https URL", "https://idp.example.com"],
            ),
            (
                r#"{"issuer": "https://idp.example.com?x=1", "cluster": "idp"}"#,
                "discovery.issuer",
                &["no query or fragment"],
            ),
            (
                r#"{"issuer": "https://idp.example.com", "cluster": ""}"#,
                "discovery.cluster",
                &["Envoy cluster"],
            ),
            (
                r#"{"issuer": "https://idp.example.com"}"#,
                "discovery",
                &["missing field `cluster`"],
            ),
            (
                r#"{"issuer": "https://idp.example.com", "cluster": "idp", "refresh_interval_seconds": 0}"#,
                "discovery.refresh_interval_seconds",
                &["1 to 86400"],
            ),
            (
                r#"{"issuer": "https://idp.example.com", "cluster": "idp", "retry_initial_ms": 5}"#,
                "discovery.retry_initial_ms",
                &["100 to 60000"],
            ),
            (
                r#"{"issuer": "https://idp.example.com", "cluster": "idp", "retry_initial_ms": 5000, "retry_max_seconds": 2}"#,
                "discovery.retry_max_seconds",
                &["at least retry_initial_ms"],
            ),
            (
                r#"{"issuer": "https://idp.example.com", "cluster": "idp", "timeout_ms": 0}"#,
                "discovery.timeout_ms",
                &["100 to 60000"],
            ),
            (
                r#"{"issuer": "https://idp.example.com", "cluster": "idp", "refresh": 5}"#,
                "discovery.refresh",
                &["unknown field `refresh`", "refresh_interval_seconds"],
            ),
        ];
        for (json, field, words) in rows {
            let e = parse(json)
                .err()
                .unwrap_or_else(|| panic!("{json}: loaded"));
            assert_eq!(e.field, *field, "{json}: {e}");
            for w in *words {
                assert!(e.message.contains(w), "{json}: {:?} lacks {w:?}", e.message);
            }
        }
    }

    #[test]
    fn an_http_test_bed_loads_with_a_warning() {
        let c =
            parse(r#"{"issuer": "http://127.0.0.1:9000", "cluster": "idp", "allow_http": true}"#)
                .unwrap();
        assert!(c.discovery.as_ref().unwrap().allow_http);
        assert!(c.warnings().iter().any(|w| w.contains("allow_http")));
        assert!(c.warnings().iter().any(|w| w.contains("used by neither")));
        // Discovery stands in for the endpoint lists, which may then be left out.
        let c = Config::parse(
            br#"{"discovery": {"issuer": "https://idp.example.com", "cluster": "idp"},
                "login_flow": {"callback_paths": ["/callback"],
                    "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]},
                "redirects": {"redirect_uris": ["https://app.example.com/callback"]}}"#,
        )
        .unwrap();
        assert!(c
            .login_flow
            .as_ref()
            .unwrap()
            .authorization_endpoints
            .is_empty());
        assert!(c.warnings().iter().all(|w| !w.contains("used by neither")));
        // Without discovery they are still required, and the error says discovery would do.
        let e = Config::parse(
            br#"{"login_flow": {"callback_paths": ["/callback"],
                    "keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "login_flow.authorization_endpoints");
        assert!(e.message.contains("discovery"), "{e}");
        let e = Config::parse(
            br#"{"redirects": {"redirect_uris": ["https://app.example.com/callback"]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "redirects.authorization_endpoints");
        assert!(e.message.contains("discovery"), "{e}");
    }
}
