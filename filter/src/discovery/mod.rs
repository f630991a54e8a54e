//! IdP discovery: what the IdP's `/.well-known/openid-configuration`
//! (OpenID Connect Discovery 1.0, RFC 8414) may teach the filter, and
//! when a document is refused.
//!
//! The operator names the issuer; the filter learns its authorization
//! endpoint, which `login_flow` and `redirects` then recognise besides the
//! endpoints written in their sections. A document is refused whole (the
//! last good one stays in use) when it is larger than
//! [`MAX_DOCUMENT_BYTES`], not a JSON object, names another issuer than
//! the configured one byte for byte (Discovery §4.3: otherwise an IdP, or
//! anyone who can answer for it, could pose as another issuer), lacks an
//! `authorization_endpoint` an authorization request can be matched
//! against, or, unless `discovery.allow_http`, names an `http` issuer or
//! endpoint.
//!
//! [`tls_disagreements`] is the article's metadata check: the IdP's issuer
//! and endpoints on `https`, and the registered redirect URIs on the
//! scheme the browsers use (the external origin's).

pub mod config;
pub mod schedule;

use crate::config::json::{self, Json};
use crate::http::authority::{Origin, Proto};
use crate::http::uri::{AbsoluteUri, OwnedUri};

/// The largest metadata document read, in bytes. Real documents are 1 to
/// 10 KiB (Keycloak's, with every algorithm listed, about 6 KiB); a larger
/// answer is refused unparsed, so a broken or hostile IdP cannot make each
/// worker parse megabytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// The metadata fields that name endpoints a browser or the app talks to;
/// each must be `https` (RFC 8414 §2 requires TLS for them).
const ENDPOINT_FIELDS: [&str; 9] = [
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
    "revocation_endpoint",
    "introspection_endpoint",
    "pushed_authorization_request_endpoint",
    "registration_endpoint",
];

/// What the filter learned from an accepted document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// The issuer (equal to the configured one).
    pub issuer: String,
    /// The authorization endpoint: an absolute http(s) URL without query
    /// or fragment (checked), as the document wrote it.
    pub authorization_endpoint: String,
    /// Every endpoint the document names, `(field, URL)`, for the TLS check.
    pub endpoints: Vec<(&'static str, String)>,
}

/// Why a document was refused: a short reason for the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, for the log line.
    pub reason: String,
    /// Refused for naming a plain-`http` issuer or endpoint: a TLS
    /// disagreement too (counted as one).
    pub plain_http: bool,
}

fn refusal(reason: String) -> Refusal {
    Refusal {
        plain_http: false,
        reason,
    }
}

/// Parses and checks a metadata document fetched for `issuer`.
pub fn parse_metadata(issuer: &str, body: &[u8], allow_http: bool) -> Result<Metadata, Refusal> {
    let refuse = |m: String| Err(refusal(m));
    if body.len() > MAX_DOCUMENT_BYTES {
        return refuse(format!(
            "the document is {} bytes or more, over the {MAX_DOCUMENT_BYTES}-byte limit",
            body.len()
        ));
    }
    // The configuration's JSON reader: one parser in the module, and
    // members kept in order with duplicates, so a field given twice (which
    // would be read differently by different parsers) is refused.
    let doc = match json::parse(body) {
        Ok(v) => v,
        Err(e) => return refuse(format!("the document is not JSON ({})", e.message)),
    };
    let Json::Obj(members) = &doc else {
        return refuse("the document is not a JSON object".into());
    };
    let text = |field: &str| -> Result<Option<&str>, Refusal> {
        let mut found = members.iter().filter(|(k, _)| k == field).map(|(_, v)| v);
        let first = found.next();
        if found.next().is_some() {
            return Err(refusal(format!("{field} is given twice")));
        }
        match first {
            None | Some(Json::Null) => Ok(None),
            Some(Json::Str(s)) => Ok(Some(s)),
            Some(_) => Err(refusal(format!("{field} is not a string"))),
        }
    };
    let Some(got) = text("issuer")? else {
        return refuse("the document has no issuer".into());
    };
    if got != issuer {
        return refuse(format!(
            "its issuer {} is not the configured discovery.issuer {} (they must be equal \
             byte for byte, OpenID Connect Discovery 1.0 §4.3)",
            crate::text::quoted(got),
            crate::text::quoted(issuer)
        ));
    }
    let Some(auth) = text("authorization_endpoint")? else {
        return refuse("the document has no authorization_endpoint".into());
    };
    let mut endpoints = Vec::new();
    for field in ENDPOINT_FIELDS {
        let Some(url) = text(field)? else { continue };
        match AbsoluteUri::parse(url) {
            Some(u) if u.fragment.is_none() => {
                if u.proto == Proto::Http && !allow_http {
                    return Err(Refusal {
                        reason: format!(
                            "{field} {} is plain http (set discovery.allow_http only in a test bed)",
                            crate::text::quoted(url)
                        ),
                        plain_http: true,
                    });
                }
            }
            _ => {
                return refuse(format!(
                    "{field} {} is not an absolute http(s) URL without fragment",
                    crate::text::quoted(url)
                ))
            }
        }
        endpoints.push((field, url.to_string()));
    }
    if AbsoluteUri::parse(auth).is_some_and(|u| u.query.is_some()) {
        return refuse(format!(
            "authorization_endpoint {} has a query; oidc-edge matches endpoints without query or fragment",
            crate::text::quoted(auth)
        ));
    }
    if AbsoluteUri::parse(issuer).is_some_and(|u| u.proto == Proto::Http) && !allow_http {
        return Err(Refusal {
            reason: format!("the issuer {} is plain http", crate::text::quoted(issuer)),
            plain_http: true,
        });
    }
    Ok(Metadata {
        issuer: got.to_string(),
        authorization_endpoint: auth.to_string(),
        endpoints,
    })
}

/// One way the IdP's metadata and the external origin disagree on TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement(pub String);

/// The article's TLS agreement check: the issuer and every endpoint on
/// `https`; every registered redirect URI on the scheme of the external
/// origin for its host (`external_for` answers the configured one, if
/// any; with none, `https`); and, behind an `https` issuer, no external
/// origin on plain `http` (the IdP would send the authorization code back
/// over it). Empty when they agree.
pub fn tls_disagreements(
    metadata: &Metadata,
    redirect_uris: &[OwnedUri],
    external_origins: &[&Origin],
    external_for: &dyn Fn(&OwnedUri) -> Option<Proto>,
) -> Vec<Disagreement> {
    let mut out = Vec::new();
    if AbsoluteUri::parse(&metadata.issuer).is_none_or(|u| u.proto != Proto::Https) {
        out.push(Disagreement(format!(
            "the issuer {} is not https",
            crate::text::quoted(&metadata.issuer)
        )));
    }
    for (field, url) in &metadata.endpoints {
        if AbsoluteUri::parse(url).is_some_and(|u| u.proto == Proto::Http) {
            out.push(Disagreement(format!(
                "the IdP's {field} {} is not https",
                crate::text::quoted(url)
            )));
        }
    }
    for u in redirect_uris {
        let expected = external_for(u).unwrap_or(Proto::Https);
        if u.proto() != expected {
            out.push(Disagreement(format!(
                "the registered redirect_uri {} is {}, but browsers reach {} over {}",
                crate::text::quoted(u.as_str()),
                u.proto().as_str(),
                u.authority().host,
                expected.as_str()
            )));
        }
    }
    for o in external_origins {
        if o.proto == Proto::Http {
            out.push(Disagreement(format!(
                "the external origin {} is plain http behind an https IdP",
                crate::text::quoted(&o.serialize())
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://idp.example.com";

    fn doc(extra: &str) -> String {
        format!(
            r#"{{"issuer": "{ISSUER}", "authorization_endpoint": "https://idp.example.com/auth",
                "token_endpoint": "https://idp.example.com/token", "jwks_uri": "https://idp.example.com/jwks",
                "response_types_supported": ["code"]{extra}}}"#
        )
    }

    #[test]
    fn a_good_document_teaches_the_authorization_endpoint() {
        let m = parse_metadata(ISSUER, doc("").as_bytes(), false).unwrap();
        assert_eq!(m.authorization_endpoint, "https://idp.example.com/auth");
        assert_eq!(m.endpoints.len(), 3);
        assert!(tls_disagreements(&m, &[], &[], &|_| None).is_empty());
    }

    #[test]
    fn malformed_documents_are_refused_with_a_reason() {
        let big = format!(
            r#"{{"issuer": "{ISSUER}", "x": "{}"}}"#,
            "a".repeat(MAX_DOCUMENT_BYTES)
        );
        let rows: Vec<(String, &str)> = vec![
            ("{\"issuer\": ".into(), "not JSON"),
            ("[1, 2]".into(), "not a JSON object"),
            ("<html>Service Unavailable</html>".into(), "not JSON"),
            (big, "over the 65536-byte limit"),
            (r#"{"authorization_endpoint": "https://idp.example.com/auth"}"#.into(), "no issuer"),
            (
                r#"{"issuer": "https://evil.example", "authorization_endpoint": "https://idp.example.com/auth"}"#.into(),
                "is not the configured discovery.issuer",
            ),
            (
                r#"{"issuer": "https://idp.example.com/", "authorization_endpoint": "https://idp.example.com/auth"}"#.into(),
                "byte for byte",
            ),
            (r#"{"issuer": "https://idp.example.com"}"#.into(), "no authorization_endpoint"),
            (
                r#"{"issuer": "https://idp.example.com", "authorization_endpoint": 7}"#.into(),
                "authorization_endpoint is not a string",
            ),
            (
                r#"{"issuer": "https://idp.example.com", "authorization_endpoint": "/auth"}"#.into(),
                "not an absolute http(s) URL",
            ),
            (
                r#"{"issuer": "https://idp.example.com", "authorization_endpoint": "http://idp.example.com/auth"}"#.into(),
                "is plain http",
            ),
            (
                r#"{"issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/auth?x=1"}"#.into(),
                "has a query",
            ),
            (
                r#"{"issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/auth", "token_endpoint": "http://idp.example.com/token"}"#.into(),
                "token_endpoint",
            ),
            // A member given twice is read differently by different parsers.
            (doc(r#", "token_endpoint": "https://idp.example.com/other""#), "token_endpoint is given twice"),
            (doc(r#", "issuer": "https://evil.example""#), "issuer is given twice"),
            (
                r#"{"issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/auth", "jwks_uri": ["https://a"]}"#.into(),
                "jwks_uri is not a string",
            ),
        ];
        for (body, why) in rows {
            let e = parse_metadata(ISSUER, body.as_bytes(), false).unwrap_err();
            assert!(
                e.reason.contains(why),
                "{body:.80}: {:?} lacks {why:?}",
                e.reason
            );
            assert_eq!(
                e.plain_http,
                why == "is plain http" || why == "token_endpoint",
                "{why}"
            );
        }
    }

    #[test]
    fn allow_http_accepts_an_http_bed_and_the_check_still_flags_it() {
        let body = r#"{"issuer": "http://127.0.0.1:9000", "authorization_endpoint": "http://127.0.0.1:9000/auth"}"#;
        assert!(parse_metadata("http://127.0.0.1:9000", body.as_bytes(), false).is_err());
        let m = parse_metadata("http://127.0.0.1:9000", body.as_bytes(), true).unwrap();
        let d = tls_disagreements(&m, &[], &[], &|_| None);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].0.contains("issuer") && d[1].0.contains("authorization_endpoint"));
    }

    #[test]
    fn redirect_uris_must_be_on_the_external_scheme() {
        let m = parse_metadata(ISSUER, doc("").as_bytes(), false).unwrap();
        let uris = [
            OwnedUri::parse("https://app.example.com/callback").unwrap(),
            OwnedUri::parse("http://app.example.com/callback").unwrap(),
            OwnedUri::parse("http://lab.example.com/callback").unwrap(),
        ];
        let lab = Origin::parse("http://lab.example.com").unwrap();
        let external =
            |u: &OwnedUri| (u.authority().host == "lab.example.com").then_some(Proto::Http);
        let d = tls_disagreements(&m, &uris, &[&lab], &external);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].0
                .contains("\"http://app.example.com/callback\" is http"),
            "{d:?}"
        );
        assert!(
            d[1].0.contains("\"http://lab.example.com\" is plain http"),
            "{d:?}"
        );
    }
}
