//! HTTP primitives every feature reads with: the ABI header buffer
//! ([`header_map`]), cookies ([`cookie`]), URIs ([`uri`]), hosts, origins
//! and ports ([`authority`]), addresses ([`node`]), and the names of the
//! headers oidc-edge owns ([`names`]). Nothing here decides anything about a
//! request.

pub mod authority;
pub mod cookie;
pub mod header_map;
pub mod names;
pub mod node;
pub mod uri;

/// The request headers, as read in one bulk call: lower-case names, raw
/// values (non-UTF-8 values are possible and are treated as malformed).
pub type Headers<'a> = [(&'a str, &'a [u8])];

/// `s` without the optional white space (spaces and tabs, RFC 9110 §5.6.3)
/// around it: what `trim_matches([' ', '\t'])` gives, found byte by byte
/// (both are ASCII, so every cut is on a character boundary) instead of
/// decoding characters, which costs several times more on the hot path.
pub fn trim_ows(s: &str) -> &str {
    let b = s.as_bytes();
    let ows = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !ows(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ows(c)).map_or(start, |i| i + 1);
    s.get(start..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::trim_ows;

    #[test]
    fn trim_ows_is_trim_matches_of_space_and_tab() {
        for s in [
            "",
            " ",
            "\t",
            "a",
            " a ",
            "\t a=b \t",
            "  é ",
            " \u{a0}x\u{a0} ",
            "a b",
            "\r a \n",
        ] {
            assert_eq!(trim_ows(s), s.trim_matches([' ', '\t']), "{s:?}");
        }
    }
}
