//! Reading `Cookie` request headers and writing `Set-Cookie` response
//! headers (RFC 6265), as far as oidc-edge needs them.

use crate::http::Headers;

/// The most `;`-separated pieces of `Cookie` lines [`pairs`] reads.
///
/// Browsers keep at most 180 cookies per site (Chromium's per-domain
/// limit, `kDomainMaxCookies`; Firefox's `network.cookie.maxPerHost`), and
/// RFC 6265 §6.1 asks for at least 50; a request with more was not sent by
/// a browser. Every reader of cookies (flow cookies are opened with an HMAC
/// each) then does bounded work whatever header size Envoy is configured to
/// accept. A cookie beyond the cap is not seen: a flow cookie there is
/// answered as missing, never half-checked.
pub const MAX_PIECES: usize = 256;

/// Every `name=value` pair of every `Cookie` line, in order, from the first
/// [`MAX_PIECES`] pieces. Lines that are not UTF-8 and pairs without `=`
/// are skipped (and count towards the cap).
pub fn pairs<'h>(headers: &'h Headers<'h>) -> impl Iterator<Item = (&'h str, &'h str)> + 'h {
    headers
        .iter()
        .filter(|(n, _)| *n == "cookie")
        .filter_map(|(_, v)| std::str::from_utf8(v).ok())
        .flat_map(|line| line.split(';'))
        .take(MAX_PIECES)
        .filter_map(|pair| {
            let (n, v) = pair.split_once('=')?;
            Some((super::trim_ows(n), super::trim_ows(v)))
        })
}

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// Sent on top-level cross-site GET navigations (the IdP's redirect back).
    Lax,
    /// Sent on every cross-site request; needed when the IdP POSTs the
    /// callback (`response_mode=form_post`). Requires `Secure`.
    None,
}

/// A `Set-Cookie` value with oidc-edge's fixed attributes: `Path=/`,
/// `HttpOnly`, and `Secure` (required by the `__Host-` prefix and by
/// `SameSite=None`).
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age: u64,
    same_site: SameSite,
    secure: bool,
) -> String {
    let same_site = match same_site {
        SameSite::Lax => "Lax",
        SameSite::None => "None",
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age}; Path=/{secure}; HttpOnly; SameSite={same_site}")
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}=; Max-Age=0; Path=/{secure}; HttpOnly; SameSite=Lax")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_across_lines() {
        let h: Vec<(&str, &[u8])> = vec![
            ("cookie", b"a=1; b=2;c=3"),
            ("x-other", b"d=4"),
            ("cookie", b" e = 5 ; noequals"),
            ("cookie", b"f=\xff; skipped=line"),
            ("cookie", b"g=x=y"),
        ];
        let got: Vec<_> = pairs(&h).collect();
        assert_eq!(
            got,
            vec![("a", "1"), ("b", "2"), ("c", "3"), ("e", "5"), ("g", "x=y")]
        );
    }

    #[test]
    fn at_most_max_pieces_are_read() {
        // 10,000 cookies in one line, as no browser sends (Chromium keeps
        // 180 per site): only the first MAX_PIECES pieces are looked at.
        let many: String = (0..10_000).map(|i| format!("c{i}=v; ")).collect();
        let lines: Vec<(&str, &[u8])> = vec![("cookie", many.as_bytes()), ("cookie", b"late=1")];
        assert_eq!(pairs(&lines).count(), MAX_PIECES);
        assert!(!pairs(&lines).any(|(n, _)| n == "late"));
        // Across lines the cap is shared.
        let half: String = (0..MAX_PIECES - 1).map(|i| format!("c{i}=v;")).collect();
        let lines: Vec<(&str, &[u8])> = vec![
            ("cookie", half.trim_end_matches(';').as_bytes()),
            ("cookie", b"last=1; beyond=2"),
        ];
        let got: Vec<_> = pairs(&lines).collect();
        assert_eq!(got.len(), MAX_PIECES);
        assert_eq!(got.last(), Some(&("last", "1")));
    }

    #[test]
    fn set_cookie_attributes() {
        assert_eq!(
            set_cookie("__Host-x", "v", 600, SameSite::Lax, true),
            "__Host-x=v; Max-Age=600; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert_eq!(
            clear_cookie("__Host-x", true),
            "__Host-x=; Max-Age=0; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
    }
}
