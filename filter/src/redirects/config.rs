//! `redirects` settings: registered redirect URIs, internal origins and the
//! return-to guard, validated once at load into parsed, owned types (the
//! request path never parses configuration).

use crate::config::field::{err, ConfigError};
use crate::config::read::Value;
use crate::http::authority::{HostPattern, Origin};
use crate::http::uri::OwnedUri;
use crate::outcome::Mode;
use crate::redirects::{RedirectUriMode, RedirectsConfig, ReturnToConfig, FIX_CAVEAT};

pub(crate) struct RawRedirects {
    authorization_endpoints: Option<Vec<String>>,
    redirect_uris: Vec<String>,
    redirect_uri_mode: RedirectUriMode,
    internal_origins: Vec<String>,
    rewrite_upstream_origin: bool,
    return_to: Option<RawReturnTo>,
}

impl RawRedirects {
    pub(crate) fn read(v: &Value<'_>) -> Result<RawRedirects, ConfigError> {
        let f = v.object(&[
            "authorization_endpoints",
            "redirect_uris",
            "redirect_uri_mode",
            "internal_origins",
            "rewrite_upstream_origin",
            "return_to",
        ])?;
        Ok(RawRedirects {
            authorization_endpoints: f.opt_or_null("authorization_endpoints", Value::strings)?,
            redirect_uris: f.opt("redirect_uris", Value::strings)?.unwrap_or_default(),
            redirect_uri_mode: f
                .opt("redirect_uri_mode", |m| m.variant(RedirectUriMode::NAMES))?
                .unwrap_or_default(),
            internal_origins: f
                .opt("internal_origins", Value::strings)?
                .unwrap_or_default(),
            rewrite_upstream_origin: f
                .opt("rewrite_upstream_origin", Value::bool)?
                .unwrap_or(false),
            return_to: f.opt_or_null("return_to", RawReturnTo::read)?,
        })
    }
}

pub(crate) struct RawReturnTo {
    params: Vec<String>,
    paths: Vec<String>,
    allowed_hosts: Vec<String>,
    mode: Mode,
}

impl RawReturnTo {
    fn read(v: &Value<'_>) -> Result<RawReturnTo, ConfigError> {
        let f = v.object(&["params", "paths", "allowed_hosts", "mode"])?;
        Ok(RawReturnTo {
            params: f
                .opt("params", Value::strings)?
                .unwrap_or_else(default_return_params),
            paths: f.opt("paths", Value::strings)?.unwrap_or_default(),
            allowed_hosts: f.opt("allowed_hosts", Value::strings)?.unwrap_or_default(),
            mode: f
                .opt("mode", |m| m.variant(Mode::NAMES))?
                .unwrap_or_default(),
        })
    }
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

pub(crate) fn validate_redirects(
    raw: RawRedirects,
    have_forwarded: bool,
    login_flow_endpoints: Option<&[String]>,
    discovers: bool,
    notes: &mut Vec<String>,
) -> Result<RedirectsConfig, ConfigError> {
    let endpoint_strings = match (raw.authorization_endpoints, login_flow_endpoints) {
        (Some(list), _) => list,
        (None, Some(endpoints)) => endpoints.to_vec(),
        (None, None) => Vec::new(),
    };
    let mut authorization_endpoints = Vec::new();
    for (i, e) in endpoint_strings.iter().enumerate() {
        match OwnedUri::parse(e) {
            Some(u) if u.query().is_none() && u.fragment().is_none() => {
                authorization_endpoints.push(u)
            }
            _ => {
                return Err(err(
                    format!("redirects.authorization_endpoints[{i}]"),
                    format!(
                        "{e_q} must be an absolute http(s) URL without query or fragment",
                        e_q = crate::text::quoted(e)
                    ),
                ))
            }
        }
    }
    // With discovery the endpoint may be learned instead (crate::live).
    if !raw.redirect_uris.is_empty() && authorization_endpoints.is_empty() && !discovers {
        return Err(err(
            "redirects.authorization_endpoints",
            "is needed to check redirect_uris (or configure login_flow.authorization_endpoints, or discovery)",
        ));
    }
    let mut redirect_uris = Vec::new();
    for (i, r) in raw.redirect_uris.iter().enumerate() {
        match OwnedUri::parse(r) {
            Some(u) if u.fragment().is_none() => redirect_uris.push(u),
            _ => {
                return Err(err(
                    format!("redirects.redirect_uris[{i}]"),
                    format!("{r_q} must be an absolute http(s) URI without fragment, exactly as registered at the IdP",
                    r_q = crate::text::quoted(r),
                ),
                ))
            }
        }
    }
    if raw.redirect_uri_mode == RedirectUriMode::Fix {
        notes.push(format!(
            "redirects.redirect_uri_mode is \"fix\": {FIX_CAVEAT}"
        ));
        if !have_forwarded {
            notes.push(
                "redirects.redirect_uri_mode is \"fix\" without the forwarded section: the request's external \
                 origin is unknown, so fix refuses (as a mismatch) whenever registered redirect_uris on several \
                 origins share a path; configure forwarded"
                    .to_string(),
            );
        }
    }
    let mut internal_origins = Vec::new();
    for (i, o) in raw.internal_origins.iter().enumerate() {
        internal_origins.push(Origin::parse(o).map_err(|m| {
            err(
                format!("redirects.internal_origins[{i}]"),
                format!(
                    "{o_q} is not valid; expected {m}",
                    o_q = crate::text::quoted(o)
                ),
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
                        format!(
                            "{h_q} is not valid; expected {m}",
                            h_q = crate::text::quoted(h)
                        ),
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
                        format!(
                            "{p_q} must be a path starting with '/'",
                            p_q = crate::text::quoted(p)
                        ),
                    ));
                }
            }
            Some(ReturnToConfig {
                params: rt.params,
                paths: rt
                    .paths
                    .iter()
                    .map(|p| crate::http::uri::RoutePattern::new(p))
                    .collect(),
                allowed_hosts,
                mode: rt.mode,
            })
        }
    };
    Ok(RedirectsConfig {
        authorization_endpoints,
        redirect_uris,
        redirect_uri_mode: raw.redirect_uri_mode,
        internal_origins,
        rewrite_upstream_origin: raw.rewrite_upstream_origin,
        return_to,
    })
}
