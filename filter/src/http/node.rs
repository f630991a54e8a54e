//! Node identifiers: the addresses that `X-Forwarded-For` entries and RFC 7239
//! `for=`/`by=` parameters carry.
//!
//! The trust walk in `forwarded` reads these right to left, so every
//! entry it consumes must parse exactly: an IPv4 address, a bracketed or bare
//! IPv6 address, either optionally followed by a port, or one of RFC 7239's
//! non-address nodes (`unknown`, obfuscated `_name`).

use std::net::{IpAddr, Ipv6Addr};

/// One hop as named by a forwarding header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A concrete address (any port that came with it is dropped: the trust
    /// model and the upstream only need the address). IPv4-mapped IPv6
    /// addresses are canonicalised to IPv4 so `::ffff:10.0.0.1` matches
    /// `10.0.0.0/8`.
    Ip(IpAddr),
    /// RFC 7239 §6.2 `unknown` or §6.3 obfuscated identifier: a hop that
    /// chose not to reveal its address. It can only be trusted by position.
    Hidden,
}

impl Node {
    /// The address, when the hop revealed one.
    pub fn ip(self) -> Option<IpAddr> {
        match self {
            Node::Ip(ip) => Some(ip),
            Node::Hidden => None,
        }
    }
}

/// Parses an IP address as it appears in `X-Forwarded-For` or in our peer
/// header: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`,
/// `[2001:db8::1]:443`. Zone identifiers (`fe80::1%eth0`) and anything else
/// are rejected.
pub fn parse_ip_with_port(s: &str) -> Option<IpAddr> {
    let s = super::trim_ows(s);
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !after.is_empty() && !is_port(after.strip_prefix(':')?) {
            return None;
        }
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|a| canonical(IpAddr::V6(a)));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    // IPv4 with a port: exactly one colon.
    let (addr, port) = s.split_once(':')?;
    if !is_port(port) {
        return None;
    }
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Parses an RFC 7239 §6 `node` (already unquoted):
/// `nodename [ ":" node-port ]` where nodename is IPv4, `[IPv6]`, `unknown`
/// or an obfuscated `_identifier`. Bare IPv6 without brackets is invalid here.
pub fn parse_rfc7239_node(s: &str) -> Option<Node> {
    let (node, port) = if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip = inside.parse::<Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (Node::Ip(canonical(IpAddr::V6(ip))), port)
    } else {
        let (name, port) = match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        };
        let node = if name.eq_ignore_ascii_case("unknown") || is_obfuscated(name) {
            Node::Hidden
        } else {
            Node::Ip(IpAddr::V4(name.parse().ok()?))
        };
        (node, port)
    };
    match port {
        None => Some(node),
        Some(p) => (is_port(p) || is_obfuscated(p)).then_some(node),
    }
}

/// `obfnode`/`obfport` of RFC 7239 §6.3: `_` followed by ALPHA / DIGIT / "." / "_" / "-".
fn is_obfuscated(s: &str) -> bool {
    match s.strip_prefix('_') {
        Some(rest) => rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
        None => false,
    }
}

/// Whether `s` is a port in canonical form: see [`parse_port`].
pub fn is_port(s: &str) -> bool {
    parse_port(s).is_some()
}

/// Parses a port in canonical decimal form only: `1`–`65535`, digits only,
/// no sign, no leading zero, not empty. Every place oidc-edge reads a port
/// (`X-Forwarded-Port`, hosts, `Forwarded` nodes, redirect URIs, origins)
/// goes through here, because a lenient parser is a disagreement waiting to
/// happen: `0443` is 443 to Rust's `u16::from_str` but octal or an error to
/// other parsers, and `+443` or `443 ` are accepted by some and not others.
/// A value two components read differently can pass a check in one and mean
/// something else in the other, so anything but the one canonical spelling
/// is malformed.
pub fn parse_port(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 5 || b.first() == Some(&b'0') || !b.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    // At most 5 digits: fits in u32 without overflow.
    let n = b.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).ok()
}

/// Appends `n` in decimal: what `{}` prints, without the formatting
/// machinery (the request path writes a port and addresses per request).
pub fn push_decimal(out: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        // `n % 10` is below 10: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let d = (n % 10) as u8;
        if let Some(slot) = digits.get_mut(i) {
            *slot = b'0' + d;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or(&[]) {
        out.push(char::from(d));
    }
}

/// Appends `ip` as `Display` writes it (IPv4 dotted decimal written
/// directly; IPv6, rare behind load balancers, through `Display`).
pub fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(out, u32::from(octet));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// IPv4-mapped IPv6 becomes IPv4, so one CIDR list covers dual-stack sockets.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_numbers_are_written_as_display_writes_them() {
        for n in [0u32, 7, 10, 99, 443, 8080, 65535, u32::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        for ip in [
            "0.0.0.0",
            "203.0.113.7",
            "255.255.255.255",
            "10.0.10.100",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut s = String::from("x");
            push_ip(&mut s, ip);
            assert_eq!(s, format!("x{ip}"));
        }
    }

    #[test]
    fn xff_entries() {
        // (input, expected, why)
        let rows: &[(&str, Option<&str>, &str)] = &[
            ("192.0.2.1", Some("192.0.2.1"), "plain IPv4"),
            (
                " 192.0.2.1 ",
                Some("192.0.2.1"),
                "OWS around list items (RFC 9110 §5.6.1)",
            ),
            (
                "192.0.2.1:8080",
                Some("192.0.2.1"),
                "IPv4 with port (Azure App Gateway style)",
            ),
            ("2001:db8::1", Some("2001:db8::1"), "bare IPv6"),
            ("[2001:db8::1]", Some("2001:db8::1"), "bracketed IPv6"),
            (
                "[2001:db8::1]:443",
                Some("2001:db8::1"),
                "bracketed IPv6 with port",
            ),
            (
                "::ffff:10.0.0.1",
                Some("10.0.0.1"),
                "IPv4-mapped IPv6 canonicalised",
            ),
            ("fe80::1%eth0", None, "zone id"),
            ("192.0.2.1:0", None, "port 0"),
            ("192.0.2.1:65536", None, "port out of range"),
            ("192.0.2.1:", None, "empty port"),
            ("192.0.2.1:080", None, "leading zero in the port"),
            ("[2001:db8::1]:+443", None, "signed port"),
            ("[2001:db8::1]x", None, "junk after bracket"),
            ("unknown", None, "not an address in XFF"),
            ("example.com", None, "host name"),
            ("192.0.2", None, "short IPv4"),
            ("01.2.3.4", None, "leading zero octet (ambiguous octal)"),
            ("", None, "empty"),
        ];
        for (input, want, why) in rows {
            let got = parse_ip_with_port(input);
            assert_eq!(got, want.map(|w| w.parse().unwrap()), "{why}: {input:?}");
        }
    }

    /// Every place a port is read uses this parser; the rows are the
    /// spellings parsers disagree on.
    #[test]
    fn ports_are_canonical_decimal_only() {
        let rows: &[(&str, Option<u16>, &str)] = &[
            ("1", Some(1), "lowest port (RFC 6335 §6: 0 is reserved)"),
            ("443", Some(443), "plain"),
            ("65535", Some(65535), "highest port"),
            ("0", None, "port 0 is not a destination"),
            ("65536", None, "out of range"),
            ("99999", None, "out of range, five digits"),
            ("100000", None, "six digits"),
            ("0443", None, "leading zero: octal to some parsers"),
            ("00080", None, "leading zeros"),
            ("+443", None, "sign (Rust's u16::from_str accepts it)"),
            ("-1", None, "negative"),
            ("", None, "empty (RFC 3986 allows it; we never need it)"),
            (" 443", None, "whitespace"),
            ("443 ", None, "trailing whitespace"),
            ("44_3", None, "separator"),
            ("0x1bb", None, "hexadecimal"),
            ("\u{665}", None, "non-ASCII digit"),
        ];
        for (input, want, why) in rows {
            assert_eq!(parse_port(input), *want, "{why}: {input:?}");
        }
    }

    #[test]
    fn rfc7239_nodes() {
        let v4: IpAddr = "192.0.2.43".parse().unwrap();
        let v6: IpAddr = "2001:db8:cafe::17".parse().unwrap();
        let rows: &[(&str, Option<Node>, &str)] = &[
            ("192.0.2.43", Some(Node::Ip(v4)), "§7.4 example"),
            ("192.0.2.43:47011", Some(Node::Ip(v4)), "§6 node-port"),
            ("[2001:db8:cafe::17]", Some(Node::Ip(v6)), "§7.4 example"),
            (
                "[2001:db8:cafe::17]:4711",
                Some(Node::Ip(v6)),
                "§7.4 example with port",
            ),
            ("unknown", Some(Node::Hidden), "§6.2"),
            ("UNKNOWN", Some(Node::Hidden), "case-insensitive"),
            ("_hidden", Some(Node::Hidden), "§6.3 obfnode"),
            ("_SEVKISEK", Some(Node::Hidden), "§6.3 example"),
            ("192.0.2.43:_port", Some(Node::Ip(v4)), "§6.3 obfport"),
            ("2001:db8:cafe::17", None, "§6: IPv6 must be bracketed"),
            ("[2001:db8:cafe::17", None, "unclosed bracket"),
            ("192.0.2.43:", None, "empty port"),
            (
                "192.0.2.43:0080",
                None,
                "§6 node-port is 1*5DIGIT, but only canonical spellings are read",
            ),
            ("_bad/char", None, "obfnode charset"),
            ("host.example", None, "host names are not nodes"),
        ];
        for (input, want, why) in rows {
            assert_eq!(parse_rfc7239_node(input), *want, "{why}: {input:?}");
        }
    }
}
