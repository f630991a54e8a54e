//! What operators are told about a request, and where: which of its
//! decisions Envoy's access log shows, how a log line names the request,
//! and what a response reveals about the Envoy filters around oidc-edge
//! (a pinned request that another node answered means `stateful_session`
//! is missing or misnamed).
//!
//! Nothing here changes a request; the exchange calls it to describe one.

use crate::metrics::{Counter, CounterSet};
use std::cell::Cell;
use std::net::SocketAddr;

/// The filter-state key the decisions go under. Envoy stores a wasm
/// filter's `set_property([KEY], value)` as filter state `wasm.<KEY>`, which
/// the access log prints with `%FILTER_STATE(wasm.oidc_edge.decisions:PLAIN)%`.
pub const DECISIONS_PROPERTY: &str = "oidc_edge.decisions";

/// Counters every healthy request touches: their absence from the access
/// log is the normal case, and leaving them out keeps a normal request free
/// of the filter-state write. (`forwarded.rewritten` is the forwarded
/// section doing its everyday work: most load balancers send no
/// `X-Forwarded-Host`, which oidc-edge then adds; `session.pinned` is
/// every logged-in browser's request with `affinity: "session"`, whose
/// write would otherwise be one more host call on each of them.)
const ROUTINE: [Counter; 7] = [
    Counter::ForwardedTrustedPeer,
    Counter::ForwardedUntrustedPeer,
    Counter::ForwardedRewritten,
    Counter::FlowValid,
    Counter::SessionPinned,
    Counter::RedirectUriRegistered,
    Counter::IdpAccepted,
];

/// The counters of `touched` the access log shows (all but the routine
/// ones): a bit mask, so that the usual request, with nothing notable,
/// is known to have nothing to tell without building anything.
pub fn notable(touched: CounterSet) -> CounterSet {
    touched.without(ROUTINE_SET)
}

/// [`ROUTINE`] as a set, built at compile time.
const ROUTINE_SET: CounterSet = CounterSet::of(&ROUTINE);

/// What the access log shows for one request: the notable counters it
/// touched (their names without `oidc_edge.`), comma-separated in
/// definition order, then `reason=<code>` when it was refused (or would
/// have been, in report mode). `None` when there is nothing to tell.
pub fn access_log_value(touched: CounterSet, reason: Option<&str>) -> Option<String> {
    let mut out = String::new();
    for c in notable(touched).iter() {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(c.name().strip_prefix("oidc_edge.").unwrap_or(c.name()));
    }
    if let Some(r) = reason {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str("reason=");
        out.push_str(r);
    }
    (!out.is_empty()).then_some(out)
}

/// Longest request id a log line repeats: Envoy's UUIDs are 36 characters,
/// tracing systems' ids up to 64.
const MAX_REQUEST_ID: usize = 64;

/// The request id (`x-request-id`) as a log line may carry it, kept inline
/// (no allocation per request). Envoy keeps a client's `x-request-id`
/// whenever it treats the request as internal (as with
/// `use_remote_address: false`), so the value is a client's to choose: only
/// a short token of `[A-Za-z0-9._:-]` is repeated, anything else is logged
/// as `invalid`, so no one can write into the log through it.
#[derive(Debug, Clone, Copy)]
pub struct RequestId {
    bytes: [u8; MAX_REQUEST_ID],
    len: u8,
}

impl RequestId {
    /// The id from the header's raw value.
    pub fn new(raw: &str) -> RequestId {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_REQUEST_ID
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
        let shown = if ok {
            raw
        } else if raw.is_empty() {
            "none"
        } else {
            "invalid"
        };
        let mut bytes = [0; MAX_REQUEST_ID];
        let len = shown.len().min(MAX_REQUEST_ID);
        for (dst, src) in bytes.iter_mut().zip(shown.bytes()) {
            *dst = src;
        }
        RequestId {
            bytes,
            len: u8::try_from(len).unwrap_or(0),
        }
    }

    /// The id as logged.
    pub fn as_str(&self) -> &str {
        self.bytes
            .get(..usize::from(self.len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("invalid")
    }
}

/// Why a request's forwarding headers were not believed, when the cause is
/// the Envoy wiring rather than the client: for log lines (such as a
/// redirect_uri mismatch) whose real cause it is.
pub fn peer_problem(counters: CounterSet) -> Option<&'static str> {
    if counters.contains(Counter::ForwardedPeerMissing) {
        Some(
            "this request arrived without the peer header, so its forwarding headers were not trusted and the \
             app was told the connection's own scheme and host: Envoy's header_mutation filter is missing, \
             placed after oidc-edge, or writes another header than forwarded.peer_address_header \
             (see envoy/edge.yaml); fix that, not the app's redirect_uri",
        )
    } else if counters.contains(Counter::ForwardedPeerUnverified) {
        Some(
            "this request's peer header lacked the peer token, so its forwarding headers were not trusted and \
             the app was told the connection's own scheme and host: Envoy's header_mutation filter is missing \
             or does not append ;%ENVIRONMENT(<peer_token_env>)% (see envoy/edge.yaml); fix that, not the \
             app's redirect_uri",
        )
    } else if counters.contains(Counter::ForwardedPeerUnknown) {
        Some(
            "this request's peer address was unreadable, so its forwarding headers were not trusted: \
             header_mutation must write %DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% with \
             OVERWRITE_IF_EXISTS_OR_ADD (see envoy/edge.yaml)",
        )
    } else {
        None
    }
}

/// Where a pinned request went, as the response phase sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routed {
    /// The node the pin named answered.
    ToPinnedNode,
    /// Another node answered: Envoy ignored the session header.
    Elsewhere,
    /// No node answered (Envoy's own response): nothing to judge.
    Nowhere,
}

/// Compares the pinned node with `upstream.address`. Both come from Envoy's
/// formatting of the same endpoint; parsed as socket addresses where they
/// can be, so `[::1]:80` and an equivalent spelling agree.
pub fn routed(pinned: &str, upstream: Option<&[u8]>) -> Routed {
    let Some(up) = upstream
        .and_then(|u| std::str::from_utf8(u).ok())
        .filter(|u| !u.is_empty())
    else {
        return Routed::Nowhere;
    };
    // The same formatting of the same endpoint, almost always: no parsing.
    if up == pinned {
        return Routed::ToPinnedNode;
    }
    let same = match (pinned.parse::<SocketAddr>(), up.parse::<SocketAddr>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => pinned == up,
    };
    if same {
        Routed::ToPinnedNode
    } else {
        Routed::Elsewhere
    }
}

std::thread_local! {
    /// Whether this worker has already warned of an ignored pin.
    static PIN_IGNORED_WARNED: Cell<bool> = const { Cell::new(false) };
}

/// True the first time on this worker: the warning is logged once per
/// worker (the counter keeps counting), so a misconfigured Envoy says so at
/// once without a line per login.
pub fn first_pin_ignored_on_this_worker() -> bool {
    PIN_IGNORED_WARNED
        .try_with(|w| !w.replace(true))
        .unwrap_or(false)
}

/// The warning for a pinned request another node answered.
pub fn pin_ignored_message(
    what: &str,
    session_header: &str,
    pinned: &str,
    answered_by: &str,
    request_id: &str,
) -> String {
    format!(
        "oidc-edge: {what} was pinned to node {pinned} through the {session_header} header, but {answered_by} \
         answered it (request {request_id}): Envoy did not route on the session header, so logins are load \
         balanced as if oidc-edge were not there. Fix: put envoy.filters.http.stateful_session after oidc-edge \
         and before the router, with the header-based session state (envoy.http.stateful_session.header) named \
         {session_header_q} and strict: true (see envoy/edge.yaml). Counted as login_flow.pin_ignored / \
         session.pin_ignored; logged once per worker.",
        session_header_q = crate::text::quoted(session_header),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_log_value_lists_notable_counters_and_the_reason() {
        let mut s = CounterSet::default();
        assert_eq!(access_log_value(s, None), None);
        s.add(Counter::ForwardedTrustedPeer);
        s.add(Counter::FlowValid);
        s.add(Counter::SessionPinned);
        assert_eq!(access_log_value(s, None), None, "routine only");
        s.add(Counter::FlowPinned);
        s.add(Counter::ForwardedRewritten);
        s.add(Counter::LocationRewritten);
        assert_eq!(
            access_log_value(s, None).as_deref(),
            Some("login_flow.pinned,redirects.location_rewritten")
        );
        let mut r = CounterSet::default();
        r.add(Counter::FlowMissing);
        assert_eq!(
            access_log_value(r, Some("flow_cookie_missing")).as_deref(),
            Some("login_flow.rejected.missing,reason=flow_cookie_missing")
        );
        assert_eq!(
            access_log_value(CounterSet::default(), Some("internal_error")).as_deref(),
            Some("reason=internal_error")
        );
    }

    #[test]
    fn a_request_id_cannot_write_into_the_log() {
        let uuid = "4004b4d8-43d1-4c7f-af01-b5488dddc0f3";
        assert_eq!(RequestId::new(uuid).as_str(), uuid);
        assert_eq!(RequestId::new("").as_str(), "none");
        let longest = "a".repeat(64);
        assert_eq!(RequestId::new(&longest).as_str(), longest);
        for hostile in [
            "a\nfake log line",
            "x y",
            "\u{1b}[31mred",
            "id\"quote",
            &"a".repeat(65),
        ] {
            assert_eq!(RequestId::new(hostile).as_str(), "invalid", "{hostile:?}");
        }
    }

    #[test]
    fn routed_compares_addresses() {
        let a = "10.0.0.1:8080";
        assert_eq!(routed(a, Some(b"10.0.0.1:8080")), Routed::ToPinnedNode);
        assert_eq!(routed(a, Some(b"10.0.0.2:8080")), Routed::Elsewhere);
        assert_eq!(routed(a, Some(b"10.0.0.1:8081")), Routed::Elsewhere);
        assert_eq!(routed(a, None), Routed::Nowhere);
        assert_eq!(routed(a, Some(b"")), Routed::Nowhere);
        assert_eq!(
            routed("[::1]:80", Some(b"[0:0:0:0:0:0:0:1]:80")),
            Routed::ToPinnedNode
        );
        assert_eq!(routed("node", Some(b"node")), Routed::ToPinnedNode);
        assert_eq!(routed(a, Some(&[0xff, 0xfe])), Routed::Nowhere);
    }

    #[test]
    fn the_pin_warning_names_the_fix() {
        assert!(first_pin_ignored_on_this_worker());
        assert!(!first_pin_ignored_on_this_worker(), "once per worker");
        let m = pin_ignored_message(
            "a login callback",
            "x-oidc-edge-node",
            "10.0.0.1:8080",
            "10.0.0.2:8080",
            "rid-1",
        );
        for w in [
            "stateful_session",
            "\"x-oidc-edge-node\"",
            "strict",
            "request rid-1",
        ] {
            assert!(m.contains(w), "{m} lacks {w}");
        }
    }

    #[test]
    fn peer_problems_point_at_header_mutation() {
        let mut s = CounterSet::default();
        assert_eq!(peer_problem(s), None);
        s.add(Counter::ForwardedPeerUnknown);
        s.add(Counter::ForwardedPeerMissing);
        let m = peer_problem(s).unwrap_or_default();
        assert!(m.contains("without the peer header") && m.contains("header_mutation"));
        assert!(m.contains("not the app's redirect_uri"));
    }
}
