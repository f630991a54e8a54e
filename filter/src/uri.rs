//! Strict parsing of absolute `http(s)` URIs such as a `Location` header or
//! a configured IdP endpoint (RFC 3986 §3), for exact comparison.
//!
//! Deliberately not a WHATWG URL parser: nothing is normalized beyond what
//! RFC 3986 §6.2.2 calls safe for these schemes (scheme and host case,
//! default port), so what we compare is what an IdP compares. Userinfo,
//! backslashes, whitespace and control characters make a URI invalid here,
//! since browsers and servers disagree about them.

use crate::authority::{Authority, Proto};

/// An absolute `http`/`https` URI split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUri<'a> {
    /// Scheme.
    pub proto: Proto,
    /// Host (lower case) and explicit port.
    pub authority: Authority,
    /// Path, byte for byte (may be empty).
    pub path: &'a str,
    /// Query without `?`, byte for byte.
    pub query: Option<&'a str>,
    /// Fragment without `#`.
    pub fragment: Option<&'a str>,
}

impl<'a> AbsoluteUri<'a> {
    /// Parses `scheme://host[:port][/path][?query][#fragment]`.
    pub fn parse(s: &'a str) -> Option<AbsoluteUri<'a>> {
        if s.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') || !s.is_ascii() {
            return None;
        }
        let (scheme, rest) = s.split_once("://")?;
        let proto = Proto::parse(scheme)?;
        let (before_fragment, fragment) = match rest.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (rest, None),
        };
        let (before_query, query) = match before_fragment.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (before_fragment, None),
        };
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at_checked(i)?,
            None => (before_query, ""),
        };
        if authority.contains('@') {
            return None;
        }
        let authority = Authority::parse(authority)?;
        Some(AbsoluteUri {
            proto,
            authority,
            path,
            query,
            fragment,
        })
    }

    /// The effective port: explicit, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.authority.port.unwrap_or(self.proto.default_port())
    }

    /// Same scheme, host, effective port and path (query and fragment ignored).
    pub fn same_endpoint(&self, other: &AbsoluteUri<'_>) -> bool {
        self.proto == other.proto
            && self.authority.host == other.authority.host
            && self.port() == other.port()
            && self.path == other.path
    }

    /// The same URI under RFC 3986 §6.2.2 case and default-port
    /// normalization only: what "exact match" of a redirect URI means here.
    pub fn equivalent(&self, other: &AbsoluteUri<'_>) -> bool {
        self.same_endpoint(other) && self.query == other.query && self.fragment == other.fragment
    }

    /// The value of a query parameter that appears exactly once and is not
    /// empty (form-urlencoded decoding). Repeated parameters are refused:
    /// RFC 6749 §3.1 forbids them, and servers disagree on which one wins.
    pub fn single_param(&self, name: &str) -> Option<String> {
        single_param(self.query.unwrap_or(""), name)
    }
}

/// See [`AbsoluteUri::single_param`]; for a bare query string.
pub fn single_param(query: &str, name: &str) -> Option<String> {
    let mut found = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        if k == name {
            if found.is_some() {
                return None;
            }
            found = Some(v.into_owned());
        }
    }
    found.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts() {
        let u =
            AbsoluteUri::parse("HTTPS://IdP.Example.com:443/oauth2/authorize?state=a%20b&x=1#f")
                .unwrap();
        assert_eq!(u.proto, Proto::Https);
        assert_eq!(u.authority.host, "idp.example.com");
        assert_eq!(u.port(), 443);
        assert_eq!(u.path, "/oauth2/authorize");
        assert_eq!(u.query, Some("state=a%20b&x=1"));
        assert_eq!(u.fragment, Some("f"));
        assert_eq!(u.single_param("state").as_deref(), Some("a b"));
        assert!(u.same_endpoint(
            &AbsoluteUri::parse("https://idp.example.com/oauth2/authorize").unwrap()
        ));
    }

    #[test]
    fn refused() {
        for (s, why) in [
            ("/relative", "relative"),
            ("//idp.example.com/x", "scheme-relative"),
            ("javascript://idp.example.com/x", "scheme"),
            ("https://user@idp.example.com/x", "userinfo"),
            ("https://idp.example.com\\@evil.example/x", "backslash"),
            ("https://idp.example.com/a b", "space"),
            ("https://idp.example.com/\t", "tab"),
            ("https://idp.éxample.com/", "non-ASCII"),
            ("https://idp.example.com:99999/", "port"),
            ("https:/idp.example.com/", "one slash"),
        ] {
            assert_eq!(AbsoluteUri::parse(s), None, "{why}: {s}");
        }
    }

    #[test]
    fn endpoint_comparison_is_exact_on_path() {
        let e = AbsoluteUri::parse("https://idp.example.com/authorize").unwrap();
        for (s, same) in [
            ("https://idp.example.com/authorize?x", true),
            ("https://idp.example.com:443/authorize", true),
            ("https://idp.example.com/authorize/", false),
            ("https://idp.example.com/Authorize", false),
            ("https://idp.example.com/authorize2", false),
            ("https://idp.example.com/%61uthorize", false),
            ("http://idp.example.com/authorize", false),
        ] {
            assert_eq!(
                e.same_endpoint(&AbsoluteUri::parse(s).unwrap()),
                same,
                "{s}"
            );
        }
    }

    #[test]
    fn params() {
        assert_eq!(single_param("state=a&state=b", "state"), None);
        assert_eq!(single_param("state=", "state"), None);
        assert_eq!(
            single_param("a=1&state=x%2By+z", "state").as_deref(),
            Some("x+y z")
        );
    }
}
