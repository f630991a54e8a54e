//! `idp` settings: authorization paths and registered redirect URIs per
//! client, validated once at load.

use crate::config::field::{err, ConfigError};
use crate::config::read::Value;
use crate::outcome::Mode;

pub(crate) struct RawIdp {
    authorization_paths: Vec<String>,
    clients: std::collections::BTreeMap<String, Vec<String>>,
    mode: Mode,
}

impl RawIdp {
    pub(crate) fn read(v: &Value<'_>) -> Result<RawIdp, ConfigError> {
        let f = v.object(&["authorization_paths", "clients", "mode"])?;
        let authorization_paths = f.req("authorization_paths", Value::strings)?;
        let clients = f.req("clients", |c| {
            // Inserted one by one: collecting into a BTreeMap sorts, which
            // brings a stable sort into the module for one load-time map.
            let mut clients = std::collections::BTreeMap::new();
            for (name, uris) in c.entries()? {
                clients.insert(name.to_string(), uris.strings()?);
            }
            Ok(clients)
        })?;
        Ok(RawIdp {
            authorization_paths,
            clients,
            mode: f
                .opt("mode", |m| m.variant(Mode::NAMES))?
                .unwrap_or_default(),
        })
    }
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
                format!(
                    "{p_q} must be a path starting with '/'",
                    p_q = crate::text::quoted(p)
                ),
            ));
        }
    }
    if raw.clients.is_empty() {
        return Err(err(
            "idp.clients",
            "is empty; map each client_id to its registered redirect URIs",
        ));
    }
    let mut clients = std::collections::BTreeMap::new();
    for (client, uris) in raw.clients {
        let mut parsed = Vec::with_capacity(uris.len());
        for (i, u) in uris.iter().enumerate() {
            match crate::http::uri::OwnedUri::parse(u) {
                Some(p) if p.fragment().is_none() => parsed.push(p),
                _ => {
                    return Err(err(
                        format!("idp.clients.{client}[{i}]"),
                        format!(
                            "{u_q} must be an absolute http(s) URI without fragment",
                            u_q = crate::text::quoted(u)
                        ),
                    ))
                }
            }
        }
        clients.insert(client, parsed);
    }
    Ok(crate::idp::IdpConfig {
        authorization_paths: raw
            .authorization_paths
            .iter()
            .map(|p| crate::http::uri::RoutePattern::new(p))
            .collect(),
        clients,
        mode: raw.mode,
    })
}
