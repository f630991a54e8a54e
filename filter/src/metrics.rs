//! The counters oidc-edge exports, and a per-request set of them.
//!
//! Each counter has one stable name, exported by Envoy as
//! `wasmcustom.<name>` in `/stats` and `<name>` with `.` → `_` in
//! `/stats/prometheus`. The decision logic returns a [`CounterSet`]; the glue
//! bumps each member once, so a request costs one host call per counter it
//! touched and none otherwise.

/// Every counter the filter exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Counter {
    /// The direct peer was trusted, so its forwarding headers were read.
    ForwardedTrustedPeer,
    /// The direct peer was not trusted; values came from the connection.
    ForwardedUntrustedPeer,
    /// An untrusted peer sent forwarding headers; they were removed.
    ForwardedUntrustedStripped,
    /// A forwarding header from a trusted peer was malformed and ignored whole.
    ForwardedMalformed,
    /// The direct peer's address was missing or unparseable (peer header not
    /// set by Envoy?); the request was treated as untrusted.
    ForwardedPeerUnknown,
    /// The scheme, host, port, prefix or `Forwarded` the upstream received
    /// differ from what arrived (X-Forwarded-For, which always gains the
    /// peer, does not count).
    ForwardedRewritten,
    /// The external host is not in `allowed_hosts`: answered 400.
    ForwardedHostRejected,
    /// No valid external host could be determined: answered 400.
    ForwardedHostMalformed,
    /// A host call failed and the request was refused rather than forwarded
    /// unchecked.
    InternalError,
    /// A login flow started: its cookie was set.
    FlowIssued,
    /// A redirect to the IdP had no single `state`: no cookie set.
    FlowNoState,
    /// A redirect to the IdP, but the upstream node was unknown: no cookie set.
    FlowNoNode,
    /// Stale or surplus flow cookies cleared.
    FlowEvicted,
    /// A callback's flow cookie checked out.
    FlowValid,
    /// A callback was pinned to the node that started its flow.
    FlowPinned,
    /// Callback refused: no flow cookie.
    FlowMissing,
    /// Callback refused: the flow cookie arrived twice.
    FlowDuplicate,
    /// Callback refused: flow cookie not decodable.
    FlowMalformed,
    /// Callback refused: flow cookie over the size limit.
    FlowTooLarge,
    /// Callback refused: flow cookie signed by a key not in the ring.
    FlowUnknownKey,
    /// Callback refused: flow cookie MAC mismatch.
    FlowBadSignature,
    /// Callback refused: flow cookie expired.
    FlowExpired,
    /// In report mode, a callback that enforce mode would have refused.
    FlowReportOnly,
    /// A client-sent session header was removed (it cannot pick a node).
    FlowSessionHeaderStripped,
    /// A pinned callback's node was gone: the browser was sent to restart.
    FlowRecovered,
    /// A pinned callback's node was gone after a restart already: refused.
    FlowNodeGone,
    /// Session affinity cookie set after a login.
    SessionIssued,
    /// A request was pinned by its session affinity cookie.
    SessionPinned,
    /// A session affinity cookie was invalid and cleared.
    SessionInvalid,
    /// A session's node was gone: the cookie was cleared.
    SessionNodeGone,
    /// A form-post callback body was over `max_callback_body_bytes`: 413.
    FlowBodyTooLarge,
    /// Callback refused: an authentic flow cookie of another login.
    FlowWrongState,
    /// A form-post callback whose flow cookies name different nodes: pinned
    /// to the newest flow's node before the body (with the state) arrived.
    FlowFormPostAmbiguous,
    /// Callback refused: a form-post callback routed to another node than its login's.
    FlowOtherNode,
    /// A redirect to the IdP carried a registered redirect_uri.
    RedirectUriRegistered,
    /// A redirect to the IdP carried an unregistered redirect_uri.
    RedirectUriMismatch,
    /// `fix` mode rewrote a redirect_uri to the registered one.
    RedirectUriFixed,
    /// A `Location` on an internal origin was moved to the external origin.
    LocationRewritten,
    /// A return-to parameter pointed off-site, appeared twice, or sat in a
    /// query with a `;` that a framework may read as a separator.
    ReturnToRejected,
    /// In report mode, a redirect check that enforce mode would have acted on.
    RedirectsReportOnly,
    /// IdP mode: an authorization request passed its checks.
    IdpAccepted,
    /// IdP mode: an authorization request was refused (`invalid_request`).
    IdpRejected,
    /// Callback refused: flow cookie issued further in the future than the clock skew allows.
    FlowNotYetValid,
    /// Callback refused: flow cookie valid for longer than `max_age_seconds`.
    FlowLifetimeTooLong,
    /// IdP mode in report mode: an authorization request enforce mode would refuse.
    IdpReportOnly,
    /// A trusted peer's request carried the header family its LB does not
    /// emit (`forwarded.family`): the client's, passed through; removed
    /// unread.
    ForwardedOtherFamilyRemoved,
    /// The peer header lacked the peer token (`forwarded.peer_token_env`):
    /// not written by Envoy's `header_mutation`, so a client's; the request
    /// was treated as untrusted (and `peer_unknown` counted too).
    ForwardedPeerUnverified,
}

impl Counter {
    /// Every counter, in definition order (the glue defines them all at load).
    pub const ALL: [Counter; 47] = [
        Counter::ForwardedTrustedPeer,
        Counter::ForwardedUntrustedPeer,
        Counter::ForwardedUntrustedStripped,
        Counter::ForwardedMalformed,
        Counter::ForwardedPeerUnknown,
        Counter::ForwardedRewritten,
        Counter::ForwardedHostRejected,
        Counter::ForwardedHostMalformed,
        Counter::InternalError,
        Counter::FlowIssued,
        Counter::FlowNoState,
        Counter::FlowNoNode,
        Counter::FlowEvicted,
        Counter::FlowValid,
        Counter::FlowPinned,
        Counter::FlowMissing,
        Counter::FlowDuplicate,
        Counter::FlowMalformed,
        Counter::FlowTooLarge,
        Counter::FlowUnknownKey,
        Counter::FlowBadSignature,
        Counter::FlowExpired,
        Counter::FlowReportOnly,
        Counter::FlowSessionHeaderStripped,
        Counter::FlowRecovered,
        Counter::FlowNodeGone,
        Counter::SessionIssued,
        Counter::SessionPinned,
        Counter::SessionInvalid,
        Counter::SessionNodeGone,
        Counter::FlowBodyTooLarge,
        Counter::FlowWrongState,
        Counter::FlowFormPostAmbiguous,
        Counter::FlowOtherNode,
        Counter::RedirectUriRegistered,
        Counter::RedirectUriMismatch,
        Counter::RedirectUriFixed,
        Counter::LocationRewritten,
        Counter::ReturnToRejected,
        Counter::RedirectsReportOnly,
        Counter::IdpAccepted,
        Counter::IdpRejected,
        Counter::FlowNotYetValid,
        Counter::FlowLifetimeTooLong,
        Counter::IdpReportOnly,
        Counter::ForwardedOtherFamilyRemoved,
        Counter::ForwardedPeerUnverified,
    ];

    /// The metric name as defined in Envoy.
    pub fn name(self) -> &'static str {
        match self {
            Counter::ForwardedTrustedPeer => "oidc_edge.forwarded.trusted_peer",
            Counter::ForwardedUntrustedPeer => "oidc_edge.forwarded.untrusted_peer",
            Counter::ForwardedUntrustedStripped => "oidc_edge.forwarded.untrusted_stripped",
            Counter::ForwardedMalformed => "oidc_edge.forwarded.malformed",
            Counter::ForwardedPeerUnknown => "oidc_edge.forwarded.peer_unknown",
            Counter::ForwardedRewritten => "oidc_edge.forwarded.rewritten",
            Counter::ForwardedHostRejected => "oidc_edge.forwarded.host_rejected",
            Counter::ForwardedHostMalformed => "oidc_edge.forwarded.host_malformed",
            Counter::InternalError => "oidc_edge.internal_error",
            Counter::FlowIssued => "oidc_edge.login_flow.issued",
            Counter::FlowNoState => "oidc_edge.login_flow.no_state",
            Counter::FlowNoNode => "oidc_edge.login_flow.no_node",
            Counter::FlowEvicted => "oidc_edge.login_flow.evicted",
            Counter::FlowValid => "oidc_edge.login_flow.valid",
            Counter::FlowPinned => "oidc_edge.login_flow.pinned",
            Counter::FlowMissing => "oidc_edge.login_flow.rejected.missing",
            Counter::FlowDuplicate => "oidc_edge.login_flow.rejected.duplicate",
            Counter::FlowMalformed => "oidc_edge.login_flow.rejected.malformed",
            Counter::FlowTooLarge => "oidc_edge.login_flow.rejected.too_large",
            Counter::FlowUnknownKey => "oidc_edge.login_flow.rejected.unknown_key",
            Counter::FlowBadSignature => "oidc_edge.login_flow.rejected.bad_signature",
            Counter::FlowExpired => "oidc_edge.login_flow.rejected.expired",
            Counter::FlowReportOnly => "oidc_edge.login_flow.report_only",
            Counter::FlowSessionHeaderStripped => "oidc_edge.login_flow.session_header_stripped",
            Counter::FlowRecovered => "oidc_edge.login_flow.recovered",
            Counter::FlowNodeGone => "oidc_edge.login_flow.rejected.node_gone",
            Counter::SessionIssued => "oidc_edge.session.issued",
            Counter::SessionPinned => "oidc_edge.session.pinned",
            Counter::SessionInvalid => "oidc_edge.session.invalid",
            Counter::SessionNodeGone => "oidc_edge.session.node_gone",
            Counter::FlowBodyTooLarge => "oidc_edge.login_flow.rejected.body_too_large",
            Counter::FlowWrongState => "oidc_edge.login_flow.rejected.wrong_state",
            Counter::FlowFormPostAmbiguous => "oidc_edge.login_flow.form_post_ambiguous",
            Counter::FlowOtherNode => "oidc_edge.login_flow.rejected.other_node",
            Counter::RedirectUriRegistered => "oidc_edge.redirects.redirect_uri_registered",
            Counter::RedirectUriMismatch => "oidc_edge.redirects.redirect_uri_mismatch",
            Counter::RedirectUriFixed => "oidc_edge.redirects.redirect_uri_fixed",
            Counter::LocationRewritten => "oidc_edge.redirects.location_rewritten",
            Counter::ReturnToRejected => "oidc_edge.redirects.return_to_rejected",
            Counter::RedirectsReportOnly => "oidc_edge.redirects.report_only",
            Counter::IdpAccepted => "oidc_edge.idp.accepted",
            Counter::IdpRejected => "oidc_edge.idp.rejected",
            Counter::FlowNotYetValid => "oidc_edge.login_flow.rejected.not_yet_valid",
            Counter::FlowLifetimeTooLong => "oidc_edge.login_flow.rejected.lifetime_too_long",
            Counter::IdpReportOnly => "oidc_edge.idp.report_only",
            Counter::ForwardedOtherFamilyRemoved => "oidc_edge.forwarded.other_family_removed",
            Counter::ForwardedPeerUnverified => "oidc_edge.forwarded.peer_unverified",
        }
    }
}

/// A small set of counters touched by one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSet(u64);

// One bit per counter.
const _: () = assert!(Counter::ALL.len() <= 64);

impl CounterSet {
    /// Adds a counter.
    pub fn add(&mut self, c: Counter) {
        self.0 |= 1 << (c as u8);
    }

    /// Whether the set holds `c`.
    pub fn contains(self, c: Counter) -> bool {
        self.0 & (1 << (c as u8)) != 0
    }

    /// The members, in definition order.
    pub fn iter(self) -> impl Iterator<Item = Counter> {
        Counter::ALL.into_iter().filter(move |c| self.contains(*c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prometheus_safe() {
        let mut names: Vec<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Counter::ALL.len());
        for n in names {
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'),
                "{n}"
            );
        }
    }

    #[test]
    fn set_round_trip() {
        let mut s = CounterSet::default();
        s.add(Counter::InternalError);
        s.add(Counter::ForwardedMalformed);
        s.add(Counter::ForwardedMalformed);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            vec![Counter::ForwardedMalformed, Counter::InternalError]
        );
    }
}
