//! Strict parsing of absolute `http(s)` URIs such as a `Location` header or
//! a configured IdP endpoint (RFC 3986 §3), for exact comparison.
//!
//! Deliberately not a WHATWG URL parser: nothing is normalized beyond what
//! RFC 3986 §6.2.2 calls safe for these schemes (scheme and host case,
//! default port), so what we compare is what an IdP compares. Userinfo,
//! backslashes, whitespace and control characters make a URI invalid here,
//! since browsers and servers disagree about them.
//!
//! The opposite need, deciding whether a *request path* falls under a check
//! configured for a path, is [`route_matches`]: there every spelling a
//! lenient router may map to the same handler must count, so it normalizes
//! as loosely as any router does. Exact where a value is compared, loose
//! where a check is scoped.

use crate::http::authority::{Authority, Origin, Proto};
use std::fmt::Write as _;

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

/// An absolute `http(s)` URI from the configuration (a registered
/// redirect URI, an IdP endpoint), parsed once at load and kept with the
/// exact bytes it was written in.
///
/// Why both: the request path compares against the parts (no parsing of
/// configuration per request), while `fix` must send the registered bytes
/// themselves, since an IdP compares redirect URIs as strings (RFC 9700
/// §4.1.3). The fields are private so the parts always describe the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedUri {
    text: String,
    proto: Proto,
    authority: Authority,
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

impl OwnedUri {
    /// Parses like [`AbsoluteUri::parse`] and keeps `s` as written.
    pub fn parse(s: &str) -> Option<OwnedUri> {
        let u = AbsoluteUri::parse(s)?;
        Some(OwnedUri {
            text: s.to_string(),
            proto: u.proto,
            authority: u.authority,
            path: u.path.to_string(),
            query: u.query.map(str::to_string),
            fragment: u.fragment.map(str::to_string),
        })
    }

    /// The URI exactly as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Scheme.
    pub fn proto(&self) -> Proto {
        self.proto
    }

    /// Host (lower case) and explicit port.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// Path, byte for byte.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Query without `?`, byte for byte.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// Fragment without `#`.
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// The effective port: explicit, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.authority.port.unwrap_or(self.proto.default_port())
    }

    /// Same scheme, host, effective port and path as `other` (query and
    /// fragment ignored): a `Location` aimed at this endpoint.
    pub fn same_endpoint(&self, other: &AbsoluteUri<'_>) -> bool {
        self.proto == other.proto
            && self.authority.host == other.authority.host
            && self.port() == other.port()
            && self.path == other.path
    }

    /// The same URI as `other` under RFC 3986 §6.2.2 case and default-port
    /// normalization only (see [`AbsoluteUri::equivalent`]).
    pub fn equivalent(&self, other: &AbsoluteUri<'_>) -> bool {
        self.same_endpoint(other)
            && self.query.as_deref() == other.query
            && self.fragment.as_deref() == other.fragment
    }

    /// Whether this URI is on `origin` (scheme, host and effective port).
    pub fn on_origin(&self, origin: &Origin) -> bool {
        self.proto == origin.proto
            && self.authority.host == origin.authority.host
            && self.port() == origin.port()
    }

    /// The origin part, serialized as browsers compare origins
    /// (`https://host[:port]`, the default port left out).
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            self.proto.as_str(),
            self.authority.display_for(self.proto, self.port())
        )
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

/// A `Location` header's bytes as the URL a browser follows: every byte
/// above 0x7f percent-encoded (WHATWG URL parsing encodes non-ASCII in the
/// path, query and fragment as UTF-8 bytes), the rest untouched. Without
/// this, a `Location` on an internal origin with one non-ASCII byte in its
/// path (`/caf\xc3\xa9`, or bytes that are not UTF-8 at all) escaped every
/// check that parses it, and reached the browser unrewritten.
pub fn location_from_bytes(bytes: Vec<u8>) -> String {
    if bytes.is_ascii() {
        // ASCII is UTF-8: no copy.
        return String::from_utf8(bytes).unwrap_or_default();
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 2);
    for b in bytes {
        if b.is_ascii() {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Rounds of percent-decoding [`loose_route`] applies: a server that decodes
/// once more than its router (`%2561` → `%61` → `a`) is caught; more rounds
/// than this no server we know of does, and each round is a linear pass.
const DECODE_ROUNDS: usize = 3;

/// Whether a request's path may reach the handler of `configured` on a
/// lenient router, so that a check keyed on `configured` must apply to it.
///
/// Routers disagree on path spelling: some match case-insensitively (IIS,
/// ASP.NET, Spring with `setCaseSensitive(false)`), ignore a trailing slash
/// (Spring MVC before 6, Express by default, Django's `APPEND_SLASH`
/// redirect), merge doubled slashes (Envoy's `merge_slashes`, nginx
/// `merge_slashes on`, Go's `ServeMux` redirect), drop `;params` from a
/// segment (Tomcat, Jetty, JAX-RS matrix parameters), decode
/// percent-encoded letters or slashes (RFC 3986 §2.3, Envoy's
/// `normalize_path`), remove dot segments (RFC 3986 §5.2.4), read `\` as
/// `/` (IIS, WHATWG) or stop at a NUL. A check that matched the exact bytes
/// only could be walked around with any of these spellings. This matches
/// loosely instead: matching too much only subjects another endpoint to the
/// check, matching too little lets a request past it.
///
/// Work is linear in the path's length (a few passes, no backtracking).
pub fn route_matches(request_path: &str, configured: &str) -> bool {
    route_matches_any(request_path, std::iter::once(configured))
}

/// [`route_matches`] against several configured paths, normalizing the
/// request's path once.
pub fn route_matches_any<'a>(
    request_path: &str,
    configured: impl IntoIterator<Item = &'a str>,
) -> bool {
    let patterns: Vec<RoutePattern> = configured.into_iter().map(RoutePattern::new).collect();
    route_matches_patterns(request_path, &patterns)
}

/// Routers disagree on the order of some steps; a request matches if any
/// of the orders maps it onto the configured path.
const ORDERS: [(bool, bool); 4] = [(false, false), (true, false), (false, true), (true, true)];

/// A configured path with its loose forms ([`loose_route_in`], one per step
/// order) computed once at load, so matching a request normalizes only the
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    path: String,
    forms: [Vec<u8>; 4],
    /// The distinct ones among `forms` (usually one: a configured path
    /// rarely reads differently in another step order), for plain request
    /// paths, whose one form is compared with each.
    distinct: Vec<Vec<u8>>,
}

impl RoutePattern {
    /// The pattern for a configured path.
    pub fn new(path: &str) -> RoutePattern {
        let forms = ORDERS.map(|(p, d)| loose_route_in(path.as_bytes(), p, d));
        let mut distinct: Vec<Vec<u8>> = Vec::new();
        for f in &forms {
            if !distinct.contains(f) {
                distinct.push(f.clone());
            }
        }
        RoutePattern {
            path: path.to_string(),
            forms,
            distinct,
        }
    }

    /// The path as configured.
    pub fn as_str(&self) -> &str {
        &self.path
    }
}

/// [`route_matches`] against patterns made at load: linear in the request
/// path, times the (configured, small) number of patterns.
pub fn route_matches_patterns(request_path: &str, patterns: &[RoutePattern]) -> bool {
    if patterns.is_empty() {
        return false;
    }
    let path = request_path.as_bytes();
    let plain = path
        .iter()
        .take_while(|b| !matches!(b, b'?' | b'#'))
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'~'));
    // Without `%`, `;`, `.` or `\` every step order gives the same form
    // (empty segments dropped, letters in lower case): the common case is
    // compared in place, with no normalized copy at all.
    if plain {
        let end = path
            .iter()
            .position(|b| matches!(b, b'?' | b'#'))
            .unwrap_or(path.len());
        let plain_path = path.get(..end).unwrap_or(path);
        // The plain form's length, found without building it: a slash and
        // the bytes of each non-empty segment (`/` alone when none).
        let form_len = plain_path
            .split(|&b| b == b'/')
            .filter(|seg| !seg.is_empty())
            .map(|seg| seg.len() + 1)
            .sum::<usize>()
            .max(1);
        return patterns.iter().any(|pat| {
            pat.distinct
                .iter()
                .any(|f| f.len() == form_len && plain_form_is(plain_path, f))
        });
    }
    let req = ORDERS.map(|(p, d)| loose_route_in(path, p, d));
    patterns
        .iter()
        .any(|pat| pat.forms.iter().zip(&req).any(|(f, r)| f == r))
}

/// Whether a plain path (letters, digits, `/-_~`) normalizes to `form`:
/// what [`loose_route_in`] makes of it (`/` + each non-empty segment in
/// lower case; `/` when there is none), compared without building it.
fn plain_form_is(path: &[u8], form: &[u8]) -> bool {
    let mut normalized = path
        .split(|&b| b == b'/')
        .filter(|seg| !seg.is_empty())
        .flat_map(|seg| std::iter::once(b'/').chain(seg.iter().map(u8::to_ascii_lowercase)))
        .peekable();
    if normalized.peek().is_none() {
        return form == b"/";
    }
    normalized.eq(form.iter().copied())
}

/// The loosest spelling of a path (see [`route_matches`]): query and
/// fragment cut off, percent-decoded up to three times, cut at a
/// NUL, `\` read as `/`, `;params` dropped from every segment, empty and
/// `.` segments dropped, `..` applied, ASCII letters in lower case; `/` for
/// an empty result. `params_first` also drops `;params` before decoding
/// (Tomcat's order, where `;x%2Fy` is one parameter), not only after
/// (where a decoded `%3B` starts one).
pub fn loose_route(path: &[u8], params_first: bool) -> Vec<u8> {
    loose_route_in(path, params_first, false)
}

/// [`loose_route`], with `dots_see_empty` choosing when empty segments go:
/// `false` drops them before `..` applies (routers that merge slashes
/// first: `/a//../b` is `/b`), `true` lets `..` remove an empty segment as
/// the WHATWG URL parser does (`/a//../b` is `/a/b`).
pub fn loose_route_in(path: &[u8], params_first: bool, dots_see_empty: bool) -> Vec<u8> {
    let path = path
        .split(|&b| b == b'?' || b == b'#')
        .next()
        .unwrap_or(path);
    let mut buf = if params_first {
        strip_segment_params(path)
    } else {
        path.to_vec()
    };
    for _ in 0..DECODE_ROUNDS {
        match percent_decode_once(&buf) {
            Some(decoded) => buf = decoded,
            None => break,
        }
    }
    if let Some(nul) = buf.iter().position(|&b| b == 0) {
        buf.truncate(nul);
    }
    let mut segments: Vec<&[u8]> = Vec::new();
    for (i, seg) in buf.split(|&b| b == b'/' || b == b'\\').enumerate() {
        match seg.split(|&b| b == b';').next().unwrap_or(seg) {
            b"" if dots_see_empty && i > 1 => segments.push(b""),
            b"" | b"." => {}
            b".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(buf.len().saturating_add(1));
    for s in segments.into_iter().filter(|s| !s.is_empty()) {
        out.push(b'/');
        out.extend(s.iter().map(u8::to_ascii_lowercase));
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

/// `path` with everything from a `;` to the end of its segment removed.
fn strip_segment_params(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for (i, seg) in path.split(|&b| b == b'/' || b == b'\\').enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(seg.split(|&b| b == b';').next().unwrap_or(seg));
    }
    out
}

/// One round of `%XX` decoding; `None` when there is nothing to decode.
fn percent_decode_once(s: &[u8]) -> Option<Vec<u8>> {
    if !s.contains(&b'%') {
        return None;
    }
    let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
    let mut out = Vec::with_capacity(s.len());
    let mut changed = false;
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            if let (Some(h), Some(l)) = (hex(s.get(i + 1)), hex(s.get(i + 2))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                changed = true;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_compare_in_place_as_their_normalized_form() {
        let paths = [
            "",
            "/",
            "//",
            "/callback",
            "/CallBack/",
            "//a//b/",
            "/a/b",
            "a/b",
            "/~x-_y/Z9",
            "/a/b/c/",
        ];
        let forms: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| loose_route_in(p.as_bytes(), false, false))
            .collect();
        for p in paths {
            for f in &forms {
                assert_eq!(
                    plain_form_is(p.as_bytes(), f),
                    loose_route_in(p.as_bytes(), false, false) == *f,
                    "{p:?} vs {:?}",
                    String::from_utf8_lossy(f)
                );
            }
        }
    }

    proptest::proptest! {
        /// The plain-path shortcut (one form, its length first, the
        /// pattern's distinct forms) answers as comparing every step
        /// order's form of the request with the pattern's does.
        #[test]
        fn plain_paths_match_as_every_step_order_would(
            path in "[a-zA-Z0-9/_~-]{0,12}([?#][a-z=&]{0,4})?",
            configured in proptest::collection::vec("[a-zA-Z/;.%2_-]{0,10}", 1..4),
        ) {
            let patterns: Vec<RoutePattern> = configured.iter().map(|c| RoutePattern::new(c)).collect();
            let req = ORDERS.map(|(p, d)| loose_route_in(path.as_bytes(), p, d));
            let want = patterns
                .iter()
                .any(|pat| pat.forms.iter().zip(&req).any(|(f, r)| f == r));
            proptest::prop_assert_eq!(route_matches_patterns(&path, &patterns), want);
        }
    }

    #[test]
    fn locations_are_read_as_a_browser_follows_them() {
        for (bytes, want) in [
            (
                b"https://app.example.com/a?b#c".to_vec(),
                "https://app.example.com/a?b#c",
            ),
            (
                b"http://app.internal:8080/caf\xc3\xa9".to_vec(),
                "http://app.internal:8080/caf%C3%A9",
            ),
            (b"/x?\xff\xfe".to_vec(), "/x?%FF%FE"),
            (b"".to_vec(), ""),
        ] {
            assert_eq!(location_from_bytes(bytes.clone()), want, "{bytes:?}");
            assert!(AbsoluteUri::parse(want).is_some() || !want.contains("://"));
        }
    }

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

    /// A configured URI keeps its bytes and compares by its parts.
    #[test]
    fn owned_uri_keeps_its_bytes_and_its_parts() {
        let u = OwnedUri::parse("HTTPS://App.Example.com:443/cb?x=%2f").unwrap();
        assert_eq!(u.as_str(), "HTTPS://App.Example.com:443/cb?x=%2f");
        assert_eq!(u.proto(), Proto::Https);
        assert_eq!(u.authority().host, "app.example.com");
        assert_eq!((u.port(), u.path(), u.query()), (443, "/cb", Some("x=%2f")));
        assert_eq!(u.origin(), "https://app.example.com");
        assert!(u.equivalent(&AbsoluteUri::parse("https://app.example.com/cb?x=%2f").unwrap()));
        assert!(!u.equivalent(&AbsoluteUri::parse("https://app.example.com/cb?x=%2F").unwrap()));
        assert!(u.on_origin(&Origin::parse("https://APP.example.com").unwrap()));
        assert!(!u.on_origin(&Origin::parse("https://app.example.com:8443").unwrap()));
        assert_eq!(OwnedUri::parse("https://user@app.example.com/"), None);
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

    /// (request path, configured path, matches?, source)
    #[test]
    fn loose_route_matching() {
        let rows: &[(&str, &str, bool, &str)] = &[
            ("/authorize", "/authorize", true, "exact"),
            ("/authorize?x=1", "/authorize", true, "query ignored"),
            (
                "/authorize/",
                "/authorize",
                true,
                "trailing slash (Express, Spring MVC < 6)",
            ),
            ("/Authorize", "/authorize", true, "case (IIS, ASP.NET)"),
            ("/AUTHORIZE", "/authorize", true, "upper case"),
            (
                "/%61uthorize",
                "/authorize",
                true,
                "encoded unreserved letter (RFC 3986 §2.3)",
            ),
            (
                "/%41uthorize",
                "/authorize",
                true,
                "encoded upper-case letter",
            ),
            ("/%2561uthorize", "/authorize", true, "double encoding"),
            (
                "//authorize",
                "/authorize",
                true,
                "doubled leading slash (merge_slashes)",
            ),
            (
                "/oauth2//authorize",
                "/oauth2/authorize",
                true,
                "doubled inner slash",
            ),
            (
                "/oauth2//..\\authorize",
                "/oauth2/authorize",
                true,
                "WHATWG order: `..` removes the empty segment (found by the property test)",
            ),
            (
                "/oauth2//../authorize",
                "/authorize",
                true,
                "merge-slashes-first order: the same path is /authorize to such a router",
            ),
            (
                "/authorize;jsessionid=1",
                "/authorize",
                true,
                "path parameter (Tomcat, Jetty)",
            ),
            (
                "/oauth2;x=1/authorize",
                "/oauth2/authorize",
                true,
                "parameter on an inner segment",
            ),
            (
                "/authorize;x%2Fy",
                "/authorize",
                true,
                "Tomcat drops ;params before decoding",
            ),
            (
                "/authorize%3Bx",
                "/authorize",
                true,
                "encoded semicolon, decoded first",
            ),
            (
                "/x/../authorize",
                "/authorize",
                true,
                "dot segments (RFC 3986 §5.2.4)",
            ),
            ("/./authorize", "/authorize", true, "single dot"),
            (
                "/x/%2e%2e/authorize",
                "/authorize",
                true,
                "encoded dot segment",
            ),
            (
                "/oauth2%2Fauthorize",
                "/oauth2/authorize",
                true,
                "encoded slash (decoding routers)",
            ),
            ("\\authorize", "/authorize", true, "backslash (IIS, WHATWG)"),
            (
                "/authorize%00.css",
                "/authorize",
                true,
                "NUL ends the path (C-based servers)",
            ),
            (
                "/authorize",
                "/Authorize/",
                true,
                "the configured path is normalized too",
            ),
            ("/authorize2", "/authorize", false, "another path"),
            ("/authoriz", "/authorize", false, "prefix"),
            ("/authorize/x", "/authorize", false, "below it"),
            ("/token", "/authorize", false, "another endpoint"),
            ("/%zzauthorize", "/authorize", false, "not an escape: kept"),
            ("/", "/authorize", false, "root"),
            ("", "/", true, "empty is the root"),
        ];
        for (req, cfg, want, why) in rows {
            assert_eq!(route_matches(req, cfg), *want, "{why}: {req:?} vs {cfg:?}");
        }
    }

    #[test]
    fn long_paths_normalize_whole() {
        // Tens of thousands of dot segments, slashes and escapes (a 240 KB
        // path): each is undone, in linear passes (see benches/).
        let long = format!("/{}authorize", "a/../%2F/;x/".repeat(20_000));
        assert!(route_matches(&long, "/authorize"));
        assert!(!route_matches(&long, "/a"));
    }
}
