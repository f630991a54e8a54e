//! IdP mode: when Envoy fronts the identity provider itself, authorization
//! requests are checked before the IdP sees them: `redirect_uri` must
//! exactly match the allowlist for the request's `client_id`, and no
//! parameter may repeat. A failure is answered `400 invalid_request` without
//! redirecting anywhere (RFC 6749 §4.1.2.1: an invalid redirect URI must not
//! be redirected to).

use crate::uri::AbsoluteUri;
use std::collections::BTreeMap;

/// Validated `idp` settings.
#[derive(Debug, Clone)]
pub struct IdpConfig {
    /// Paths of the IdP's authorization endpoint (exact).
    pub authorization_paths: Vec<String>,
    /// Registered redirect URIs per client id.
    pub clients: BTreeMap<String, Vec<String>>,
    /// Enforce (400) or report.
    pub mode: crate::config::Mode,
}

/// Checks an authorization request (`path?query`). `Err` says why, in words
/// fit for the `error_description` of an `invalid_request`.
pub fn check_authorization_request(
    cfg: &IdpConfig,
    path_and_query: &str,
) -> Option<Result<(), &'static str>> {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if !cfg.authorization_paths.iter().any(|p| p == path) {
        return None;
    }
    let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (i, (k, _)) in params.iter().enumerate() {
        if params.iter().skip(i + 1).any(|(o, _)| o == k) {
            return Some(Err(
                "a parameter appears more than once (RFC 6749 section 3.1)",
            ));
        }
    }
    let get = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(client) = get("client_id") else {
        return Some(Err("client_id is missing"));
    };
    let Some(registered) = cfg.clients.get(client) else {
        return Some(Err("client_id is not known here"));
    };
    let Some(sent) = get("redirect_uri") else {
        return Some(Ok(())); // the IdP falls back to the client's registered URI
    };
    let Some(sent) = AbsoluteUri::parse(sent).filter(|u| u.fragment.is_none()) else {
        return Some(Err("redirect_uri is not a plain absolute URI"));
    };
    let ok = registered
        .iter()
        .filter_map(|r| AbsoluteUri::parse(r))
        .any(|r| r.equivalent(&sent));
    Some(if ok {
        Ok(())
    } else {
        Err("redirect_uri is not registered for this client")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> IdpConfig {
        let mut clients = BTreeMap::new();
        clients.insert(
            "app".to_string(),
            vec!["https://app.example.com/callback".to_string()],
        );
        IdpConfig {
            authorization_paths: vec!["/authorize".into()],
            clients,
            mode: crate::config::Mode::Enforce,
        }
    }

    #[test]
    fn authorization_requests() {
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let rows: Vec<(String, Option<bool>, &str)> = vec![
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback")
                ),
                Some(true),
                "registered",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://APP.example.com:443/callback")
                ),
                Some(true),
                "safe normalization",
            ),
            (
                "/authorize?client_id=app&response_type=code".into(),
                Some(true),
                "no redirect_uri: the IdP uses the registered one",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://evil.example/callback")
                ),
                Some(false),
                "other host",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback/../x")
                ),
                Some(false),
                "dot segments are not removed",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback#x")
                ),
                Some(false),
                "fragment",
            ),
            (
                format!(
                    "/authorize?client_id=app&client_id=app&redirect_uri={}",
                    enc("https://app.example.com/callback")
                ),
                Some(false),
                "duplicate client_id",
            ),
            (
                format!(
                    "/authorize?client_id=app&redirect_uri={0}&redirect_uri={0}",
                    enc("https://app.example.com/callback")
                ),
                Some(false),
                "duplicate redirect_uri",
            ),
            (
                "/authorize?client_id=other&redirect_uri=x".into(),
                Some(false),
                "unknown client",
            ),
            (
                "/authorize?redirect_uri=x".into(),
                Some(false),
                "no client_id",
            ),
            (
                "/token?client_id=app".into(),
                None,
                "not the authorization path",
            ),
        ];
        for (pq, want, why) in rows {
            assert_eq!(
                check_authorization_request(&cfg(), &pq).map(|r| r.is_ok()),
                want,
                "{why}: {pq}"
            );
        }
    }
}
