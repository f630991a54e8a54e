//! `idp` settings: authorization paths and registered redirect URIs per
//! client, validated once at load.

use crate::config::field::{err, ConfigError};
use crate::outcome::Mode;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdp {
    authorization_paths: Vec<String>,
    clients: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    mode: Mode,
}

pub(crate) fn validate_idp(raw: RawIdp) -> Result<crate::idp::IdpConfig, ConfigError> {
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
            if crate::http::uri::AbsoluteUri::parse(u).is_none_or(|p| p.fragment.is_some()) {
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
