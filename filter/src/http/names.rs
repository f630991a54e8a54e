//! Every header name oidc-edge owns, as Envoy presents them (lower case):
//! the forwarding family it reads and rewrites, and the client-address
//! headers it keeps in step. The one list the decision, the stripping and
//! the configuration checks use (a peer or session header may not be one of
//! them). A header an app may read its client, scheme or host from, and
//! that is not on these lists, reaches the app unchanged.

/// RFC 7239.
pub const FORWARDED: &str = "forwarded";
/// De-facto client chain.
pub const XFF: &str = "x-forwarded-for";
/// De-facto scheme.
pub const XFP: &str = "x-forwarded-proto";
/// De-facto host.
pub const XFH: &str = "x-forwarded-host";
/// De-facto port.
pub const XF_PORT: &str = "x-forwarded-port";
/// De-facto path prefix stripped by a proxy.
pub const XF_PREFIX: &str = "x-forwarded-prefix";
/// HTTP/2-style host, as Envoy names `Host` for every protocol.
pub const AUTHORITY: &str = ":authority";
/// nginx's `real_ip` convention: the client's address. Always written
/// with the decided client, like `X-Forwarded-For`.
pub const X_REAL_IP: &str = "x-real-ip";

/// The `X-Forwarded-*` family: read from a trusted peer only with
/// `family: "x-forwarded"`, always rewritten or removed.
pub const X_FORWARDED_FAMILY: [&str; 5] = [XFF, XFP, XFH, XF_PORT, XF_PREFIX];

/// Single-address client headers that CDNs, load balancers and
/// frameworks use (Akamai and Cloudflare `True-Client-IP`, Cloudflare
/// `CF-Connecting-IP`, Fastly `Fastly-Client-IP`, Rackspace/Riverbed
/// `X-Cluster-Client-IP`, App Engine `X-AppEngine-User-IP`, the generic
/// `X-Client-IP`; the list the `request-ip` library reads) and nginx's
/// `X-Real-IP`. Never read: each one that arrives is replaced with the
/// decided client (removed when the client is hidden), so an app that
/// reads one gets the same answer as `X-Forwarded-For`'s.
pub const CLIENT_ADDRESS: [&str; 7] = [
    X_REAL_IP,
    "true-client-ip",
    "x-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "x-cluster-client-ip",
    "x-appengine-user-ip",
];

/// Other spellings of the client chain, scheme and host that frameworks
/// read (`X-Forwarded-Ssl`: Spring, Rack; `X-Forwarded-Scheme`: Rack,
/// ingress-nginx; `Front-End-Https`: IIS; `X-Url-Scheme`;
/// `X-Forwarded-Server`, `X-Original-Host`, `X-Host`; the legacy
/// `X-Forwarded` and `Forwarded-For` lists, `X-Original-Forwarded-For`
/// from ingress-nginx; Cloudflare's `CF-Connecting-IPv6` and
/// `CF-Pseudo-IPv4`). Never read, always removed: the app gets one
/// consistent set, the headers above.
pub const REMOVED: [&str; 13] = [
    "x-forwarded-ssl",
    "x-forwarded-scheme",
    "x-url-scheme",
    "front-end-https",
    "x-forwarded-server",
    "x-original-host",
    "x-host",
    "x-forwarded",
    "forwarded-for",
    "x-original-forwarded-for",
    "cf-connecting-ipv6",
    "cf-pseudo-ipv4",
    "x-proxyuser-ip",
];

/// Whether `name` is one of [`REMOVED`], or a [`CLIENT_ADDRESS`] header
/// other than `X-Real-IP`: the owned headers a request rarely carries.
/// Asked of every request header, so spelled as one `match` (the compiler
/// dispatches on length and bytes instead of comparing with each entry);
/// a test keeps it equal to the two lists.
pub fn is_rarely_sent(name: &str) -> bool {
    matches!(
        name,
        "x-forwarded-ssl"
            | "x-forwarded-scheme"
            | "x-url-scheme"
            | "front-end-https"
            | "x-forwarded-server"
            | "x-original-host"
            | "x-host"
            | "x-forwarded"
            | "forwarded-for"
            | "x-original-forwarded-for"
            | "cf-connecting-ipv6"
            | "cf-pseudo-ipv4"
            | "x-proxyuser-ip"
            | "true-client-ip"
            | "x-client-ip"
            | "cf-connecting-ip"
            | "fastly-client-ip"
            | "x-cluster-client-ip"
            | "x-appengine-user-ip"
    )
}

/// Whether the filter owns this request header: it rewrites or removes
/// it on every request (so it cannot double as the peer or session
/// header). `host` is Envoy's `:authority` in HTTP/1 spelling.
pub fn is_owned(name: &str) -> bool {
    name == FORWARDED
        || name == AUTHORITY
        || name == "host"
        || X_FORWARDED_FAMILY.contains(&name)
        || CLIENT_ADDRESS.contains(&name)
        || REMOVED.contains(&name)
}

#[cfg(test)]
mod rarely_sent_tests {
    use super::*;

    #[test]
    fn the_match_holds_every_rarely_sent_name_and_nothing_else() {
        // The match spells 19 names: a name added to either list must be
        // added there too (this count and the loop below say so).
        assert_eq!(REMOVED.len() + CLIENT_ADDRESS.len() - 1, 19);
        for n in REMOVED.iter().chain(CLIENT_ADDRESS.iter().skip(1)) {
            assert!(is_rarely_sent(n), "{n}");
        }
        for n in [
            X_REAL_IP,
            XFF,
            XFP,
            XFH,
            XF_PORT,
            XF_PREFIX,
            FORWARDED,
            AUTHORITY,
            "cookie",
            "x-host2",
            "",
            "x-forwarded-sslx",
        ] {
            assert!(!is_rarely_sent(n), "{n}");
        }
        assert!(!is_rarely_sent(&"x".repeat(200)));
    }
}
