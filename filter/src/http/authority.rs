//! Host names, authorities and origins: what may appear as the external host
//! the upstream app builds its `redirect_uri` and links from.
//!
//! The rules are deliberately narrow. A host is a DNS-style name, an IPv4
//! address or a bracketed IPv6 address, compared in lower case; anything a
//! browser or an IdP might read differently (userinfo, percent-encoding,
//! whitespace, trailing garbage) is malformed and never reaches the upstream.

use crate::http::node::parse_port;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest host name we accept (RFC 1035's limit on a full name).
const MAX_HOST_LEN: usize = 253;

/// `http` or `https`: the only schemes an OIDC redirect URI on the web uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Proto {
    /// Parses `http`/`https` in any case (schemes are case-insensitive,
    /// RFC 3986 §3.1); every other value is malformed.
    pub fn parse(s: &str) -> Option<Proto> {
        if s.eq_ignore_ascii_case("https") {
            Some(Proto::Https)
        } else if s.eq_ignore_ascii_case("http") {
            Some(Proto::Http)
        } else {
            None
        }
    }

    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Http => "http",
            Proto::Https => "https",
        }
    }

    /// The port a URL of this scheme uses when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            Proto::Http => 80,
            Proto::Https => 443,
        }
    }
}

/// A validated `host [":" port]`, host in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    /// Lower-case host: a DNS name, IPv4, or `[IPv6]` with its brackets.
    pub host: String,
    /// The explicit port, when one was given.
    pub port: Option<u16>,
}

impl Authority {
    /// Parses a `Host`/`:authority`/`X-Forwarded-Host` value.
    pub fn parse(s: &str) -> Option<Authority> {
        let (host, port) = if s.starts_with('[') {
            let end = s.find(']')?;
            let (host, rest) = s.split_at_checked(end + 1)?;
            let port = match rest {
                "" => None,
                _ => Some(parse_port(rest.strip_prefix(':')?)?),
            };
            (host, port)
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(parse_port(p)?)),
                None => (s, None),
            }
        };
        is_host(host).then(|| Authority {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// `host[:port]` with the port left out when it is the scheme's default,
    /// as browsers write the `Host` header.
    pub fn display_for(&self, proto: Proto, port: u16) -> String {
        let mut out = String::with_capacity(self.host.len() + 6);
        self.push_for(&mut out, proto, port);
        out
    }

    /// [`Self::display_for`], appended to `out` (no formatting machinery:
    /// the request path writes it on every request).
    pub fn push_for(&self, out: &mut String, proto: Proto, port: u16) {
        out.push_str(&self.host);
        if port != proto.default_port() {
            out.push(':');
            crate::http::node::push_decimal(out, u32::from(port));
        }
    }
}

/// True for a DNS-style name, dotted-quad IPv4 or bracketed IPv6.
pub fn is_host(h: &str) -> bool {
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().is_ok();
    }
    if h.is_empty() || h.len() > MAX_HOST_LEN {
        return false;
    }
    if h.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        // All-numeric names must be a real IPv4 address: `1.2.3` or
        // `010.0.0.1` are read differently by different parsers.
        return h.parse::<Ipv4Addr>().is_ok();
    }
    h.split('.').all(is_label)
}

/// One DNS label: 1–63 of letters, digits, `-` and `_`, not starting or
/// ending with `-`. (`_` is not valid in host names but is common in
/// internal service names, and no parser reads it two ways.)
fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && !l.starts_with('-')
        && !l.ends_with('-')
        && l.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `scheme://host[:port]` with nothing after it: the origin the outside world
/// uses, for deployments whose load balancer forwards nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The external scheme.
    pub proto: Proto,
    /// The external host (lower case) and explicit port, if any.
    pub authority: Authority,
}

impl Origin {
    /// Parses `https://app.example.com` or `https://app.example.com:8443`
    /// (a single trailing `/` is allowed). Paths, queries, fragments and
    /// userinfo are refused.
    pub fn parse(s: &str) -> Result<Origin, &'static str> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or("an origin such as \"https://app.example.com\"")?;
        let proto = Proto::parse(scheme).ok_or("scheme http or https")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err("only scheme://host[:port], without path, query, fragment or userinfo");
        }
        let authority = Authority::parse(rest).ok_or("a valid host name and optional port")?;
        Ok(Origin { proto, authority })
    }

    /// The effective port: explicit, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.authority.port.unwrap_or(self.proto.default_port())
    }

    /// The ASCII serialization (`https://host[:port]`, the default port left
    /// out), as browsers compare origins.
    pub fn serialize(&self) -> String {
        let scheme = self.proto.as_str();
        let mut out = String::with_capacity(scheme.len() + 3 + self.authority.host.len() + 6);
        out.push_str(scheme);
        out.push_str("://");
        self.authority.push_for(&mut out, self.proto, self.port());
        out
    }
}

/// One `allowed_hosts` entry: an exact host, or `*.suffix` for any name
/// below the suffix (as Envoy's virtual host `domains` match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Matches this host only.
    Exact(String),
    /// Matches any host ending in this suffix (which starts with `.`), with
    /// at least one character before it.
    Suffix(String),
}

impl HostPattern {
    /// Parses `app.example.com` or `*.example.com` (no ports).
    pub fn parse(s: &str) -> Result<HostPattern, &'static str> {
        if s.contains(':') && !s.starts_with('[') {
            return Err("a host name without a port, such as \"app.example.com\"");
        }
        if let Some(suffix) = s.strip_prefix("*.") {
            if !is_host(suffix) || suffix.starts_with('[') {
                return Err("a wildcard of the form \"*.example.com\"");
            }
            return Ok(HostPattern::Suffix(format!(
                ".{}",
                suffix.to_ascii_lowercase()
            )));
        }
        if !is_host(s) {
            return Err("a host name such as \"app.example.com\" or \"*.example.com\"");
        }
        Ok(HostPattern::Exact(s.to_ascii_lowercase()))
    }

    /// Whether `host` (already lower case) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Suffix(s) => host.len() > s.len() && host.ends_with(s.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_serialize_as_browsers_write_them() {
        let rows = [
            (
                "https://app.example.com",
                "https://app.example.com",
                "app.example.com",
            ),
            (
                "https://app.example.com:443",
                "https://app.example.com",
                "app.example.com",
            ),
            (
                "https://app.example.com:8443",
                "https://app.example.com:8443",
                "app.example.com:8443",
            ),
            (
                "http://app.example.com:80",
                "http://app.example.com",
                "app.example.com",
            ),
            (
                "http://[2001:db8::1]:8080",
                "http://[2001:db8::1]:8080",
                "[2001:db8::1]:8080",
            ),
            ("http://10.0.0.1:1", "http://10.0.0.1:1", "10.0.0.1:1"),
        ];
        for (input, origin, host) in rows {
            let o = Origin::parse(input).unwrap();
            assert_eq!(o.serialize(), origin, "{input}");
            assert_eq!(o.authority.display_for(o.proto, o.port()), host, "{input}");
        }
    }

    #[test]
    fn authorities() {
        let rows: &[(&str, Option<(&str, Option<u16>)>, &str)] = &[
            ("app.example.com", Some(("app.example.com", None)), "plain"),
            (
                "App.Example.COM",
                Some(("app.example.com", None)),
                "case folded (RFC 3986 §3.2.2)",
            ),
            (
                "app.example.com:8443",
                Some(("app.example.com", Some(8443))),
                "port",
            ),
            (
                "[2001:db8::1]:443",
                Some(("[2001:db8::1]", Some(443))),
                "IPv6 with port",
            ),
            ("[2001:db8::1]", Some(("[2001:db8::1]", None)), "IPv6"),
            ("192.0.2.1", Some(("192.0.2.1", None)), "IPv4"),
            (
                "svc_internal.local",
                Some(("svc_internal.local", None)),
                "underscore",
            ),
            ("app.example.com:", None, "empty port"),
            ("app.example.com:0", None, "port 0"),
            ("app.example.com:99999", None, "port range"),
            (
                "app.example.com:0443",
                None,
                "leading zero (node::parse_port: canonical decimal only)",
            ),
            ("app.example.com:+443", None, "signed port"),
            ("[2001:db8::1]:", None, "IPv6 with an empty port"),
            ("[2001:db8::1]:00443", None, "IPv6 with a zero-padded port"),
            ("user@app.example.com", None, "userinfo"),
            ("app.example.com/path", None, "path"),
            ("app example.com", None, "space"),
            ("app.example.com\t", None, "tab"),
            ("-app.example.com", None, "leading hyphen"),
            ("app..example.com", None, "empty label"),
            ("1.2.3", None, "partial IPv4"),
            ("2001:db8::1", None, "IPv6 without brackets"),
            ("[2001:db8::1", None, "unclosed bracket"),
            ("a%2eexample.com", None, "percent-encoding"),
            ("", None, "empty"),
            ("évil.example", None, "non-ASCII (IDNA is not ours to map)"),
        ];
        for (input, want, why) in rows {
            let got = Authority::parse(input).map(|a| (a.host, a.port));
            let want = want.map(|(h, p)| (h.to_string(), p));
            assert_eq!(got, want, "{why}: {input:?}");
        }
    }

    #[test]
    fn origins() {
        let o = Origin::parse("https://App.Example.com").unwrap();
        assert_eq!(
            (o.proto, o.authority.host.as_str(), o.port()),
            (Proto::Https, "app.example.com", 443)
        );
        assert_eq!(
            Origin::parse("http://a.example:8080/").unwrap().port(),
            8080
        );
        for bad in [
            "app.example.com",
            "ftp://a.example",
            "https://a.example/x",
            "https://u@a.example",
            "https://a.example?x",
            "https://",
            "https://a.example:0443",
            "https://a.example:+443",
            "https://a.example:",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_patterns() {
        let exact = HostPattern::parse("App.example.com").unwrap();
        assert!(exact.matches("app.example.com"));
        assert!(!exact.matches("xapp.example.com"));
        let wild = HostPattern::parse("*.example.com").unwrap();
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(
            !wild.matches("example.com"),
            "the suffix alone is not below itself"
        );
        assert!(!wild.matches(".example.com"));
        assert!(!wild.matches("evilexample.com"));
        for bad in ["app.example.com:443", "*.", "*", "a.*.com", "exa mple.com"] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
