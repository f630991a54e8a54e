//! Parser for the RFC 7239 `Forwarded` header.
//!
//! ```text
//! Forwarded         = 1#forwarded-element
//! forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//! forwarded-pair    = token "=" value
//! value             = token / quoted-string
//! ```
//!
//! A header is used whole or not at all: one syntax error anywhere (an
//! unterminated quote can swallow the elements after it, so no part of a
//! broken header can be located reliably), a repeated parameter within an
//! element (§4), or a `for`/`by`/`proto`/`host` value that is not what §5
//! allows, makes the whole header malformed.

use crate::http::authority::{Authority, Proto};
use crate::http::node::{parse_rfc7239_node, Node};

/// One forwarded-element: what one proxy said about the request it received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// `for=`: the node that sent the request to this proxy.
    pub for_node: Option<Node>,
    /// `proto=`: the scheme the request arrived on at this proxy.
    pub proto: Option<Proto>,
    /// `host=`: the `Host` the request carried at this proxy.
    pub host: Option<Authority>,
}

/// Parses one or more `Forwarded` header lines (in the order received) into
/// elements, left to right. `None` means malformed.
pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Vec<Element>> {
    let mut out = Vec::new();
    for line in lines {
        let mut p = Parser {
            s: line.as_bytes(),
            i: 0,
        };
        p.list(&mut out)?;
    }
    Some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// `1#element`, tolerating empty list members as RFC 9110 §5.6.1 asks.
    fn list(&mut self, out: &mut Vec<Element>) -> Option<()> {
        loop {
            self.skip_ows();
            match self.peek() {
                None => return Some(()),
                Some(b',') => {
                    self.i += 1;
                    continue;
                }
                Some(_) => {}
            }
            out.push(self.element()?);
            self.skip_ows();
            match self.peek() {
                None => return Some(()),
                Some(b',') => self.i += 1,
                Some(_) => return None,
            }
        }
    }

    fn element(&mut self) -> Option<Element> {
        let mut e = Element::default();
        let mut seen: u8 = 0; // bit per known parameter, for the "at most once" rule
        loop {
            self.skip_ows();
            if matches!(self.peek(), Some(b';')) {
                // empty pair
                self.i += 1;
                continue;
            }
            if matches!(self.peek(), None | Some(b',')) {
                return Some(e);
            }
            let name = self.token()?;
            self.skip_ows();
            if self.peek() != Some(b'=') {
                return None;
            }
            self.i += 1;
            self.skip_ows();
            let value = self.value()?;
            let bit = match name.to_ascii_lowercase().as_str() {
                "for" => {
                    e.for_node = Some(parse_rfc7239_node(&value)?);
                    1
                }
                "by" => {
                    parse_rfc7239_node(&value)?;
                    2
                }
                "proto" => {
                    e.proto = Some(Proto::parse(&value)?);
                    4
                }
                "host" => {
                    e.host = Some(Authority::parse(&value)?);
                    8
                }
                _ => 0, // extensions (§5.5) are allowed and ignored
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.skip_ows();
            match self.peek() {
                Some(b';') => self.i += 1,
                None | Some(b',') => return Some(e),
                Some(_) => return None,
            }
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        let t = self.s.get(start..self.i)?;
        if t.is_empty() {
            return None;
        }
        String::from_utf8(t.to_vec()).ok()
    }

    fn value(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return self.token();
        }
        self.i += 1;
        let mut v = Vec::new();
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let q = self.peek()?;
                    if !(q == b'\t' || (0x20..=0x7e).contains(&q)) {
                        return None;
                    }
                    v.push(q);
                    self.i += 1;
                }
                b'\t' | 0x20..=0x7e => v.push(c),
                // obs-text is legal in quoted-strings, but no value we read
                // (addresses, schemes, hosts) can contain it.
                _ => return None,
            }
        }
        String::from_utf8(v).ok()
    }
}

/// RFC 9110 §5.6.2 tchar.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn ip(s: &str) -> Option<Node> {
        Some(Node::Ip(s.parse::<IpAddr>().unwrap()))
    }

    #[test]
    fn valid_headers() {
        let rows: &[(&[&str], Vec<Element>, &str)] = &[
            (
                &["for=\"_gazonk\""],
                vec![Element {
                    for_node: Some(Node::Hidden),
                    ..Default::default()
                }],
                "§4 example 1",
            ),
            (
                &["For=\"[2001:db8:cafe::17]:4711\""],
                vec![Element {
                    for_node: ip("2001:db8:cafe::17"),
                    ..Default::default()
                }],
                "§4 example 2: case-insensitive name, quoted IPv6 with port",
            ),
            (
                &["for=192.0.2.60;proto=http;by=203.0.113.43"],
                vec![Element {
                    for_node: ip("192.0.2.60"),
                    proto: Some(Proto::Http),
                    host: None,
                }],
                "§4 example 3",
            ),
            (
                &["for=192.0.2.43, for=198.51.100.17"],
                vec![
                    Element {
                        for_node: ip("192.0.2.43"),
                        ..Default::default()
                    },
                    Element {
                        for_node: ip("198.51.100.17"),
                        ..Default::default()
                    },
                ],
                "§4 example 4: two elements",
            ),
            (
                &[
                    "for=192.0.2.43",
                    "for=198.51.100.17;proto=HTTPS;host=App.Example.com",
                ],
                vec![
                    Element {
                        for_node: ip("192.0.2.43"),
                        ..Default::default()
                    },
                    Element {
                        for_node: ip("198.51.100.17"),
                        proto: Some(Proto::Https),
                        host: Authority::parse("app.example.com"),
                    },
                ],
                "two header lines concatenate in order",
            ),
            (
                &[" , for=192.0.2.1 ;; secret=\"x;y,z\" ,"],
                vec![Element {
                    for_node: ip("192.0.2.1"),
                    ..Default::default()
                }],
                "empty list members and pairs, extension with separators inside quotes",
            ),
            (
                &["host=\"app.example.com:8443\""],
                vec![Element {
                    host: Authority::parse("app.example.com:8443"),
                    ..Default::default()
                }],
                "quoted host with port",
            ),
            (
                &["for=\"192.0.2.1\\:80\""],
                vec![Element {
                    for_node: ip("192.0.2.1"),
                    ..Default::default()
                }],
                "quoted-pair escapes a character",
            ),
        ];
        for (lines, want, why) in rows {
            assert_eq!(
                parse(lines.iter().copied()).as_ref(),
                Some(want),
                "{why}: {lines:?}"
            );
        }
    }

    #[test]
    fn malformed_headers() {
        let rows: &[(&str, &str)] = &[
            (
                "for=[2001:db8::1]",
                "§6: brackets are not tchars, IPv6 must be quoted",
            ),
            (
                "for=192.0.2.1:80",
                "':' is not a tchar, ports must be quoted",
            ),
            ("for=\"unterminated", "unterminated quoted-string"),
            (
                "for=192.0.2.1;for=192.0.2.2",
                "§4: a parameter at most once per element",
            ),
            ("proto=ftp", "proto must be http or https"),
            ("host=\"a b\"", "host syntax"),
            ("for=\"2001:db8::1\"", "§6: unbracketed IPv6"),
            ("for", "pair without value"),
            ("=x", "pair without name"),
            ("for=1.2.3.4 for=5.6.7.8", "junk between pairs"),
            ("for=\"\u{7f}\"", "control character in quoted-string"),
            ("for=host.example", "host names are not nodes"),
        ];
        for (line, why) in rows {
            assert_eq!(parse([*line]), None, "{why}: {line:?}");
        }
    }
}
