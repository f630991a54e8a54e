//! The counters oidc-edge exports, and a per-request set of them.
//!
//! Each counter has one stable name, exported by Envoy as
//! `wasmcustom.<name>` in `/stats` and `<name>` with `.` → `_` in
//! `/stats/prometheus`. The decision logic returns a [`CounterSet`]; the glue
//! bumps each member once, so a request costs one host call per counter it
//! touched and none otherwise.

/// Declares the counters once: each row's doc, variant and exported name
/// yield the enum, [`Counter::ALL`] and [`Counter::name`], so the three can
/// never disagree.
macro_rules! counters {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Every counter the filter exports.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub enum Counter {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Counter {
            /// Every counter, in definition order (the module defines them all at load).
            pub const ALL: [Counter; [$(Counter::$variant),*].len()] = [$(Counter::$variant),*];

            /// The metric name as defined in Envoy.
            pub fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                }
            }
        }
    };
}

counters! {
    /// The direct peer was trusted, so its forwarding headers were read.
    ForwardedTrustedPeer => "oidc_edge.forwarded.trusted_peer",
    /// The direct peer was not trusted; values came from the connection.
    ForwardedUntrustedPeer => "oidc_edge.forwarded.untrusted_peer",
    /// An untrusted peer sent forwarding headers; they were removed.
    ForwardedUntrustedStripped => "oidc_edge.forwarded.untrusted_stripped",
    /// A forwarding header from a trusted peer was malformed and ignored whole.
    ForwardedMalformed => "oidc_edge.forwarded.malformed",
    /// The direct peer's address was missing or unparseable (peer header not
    /// set by Envoy?); the request was treated as untrusted.
    ForwardedPeerUnknown => "oidc_edge.forwarded.peer_unknown",
    /// The scheme, host, port, prefix or `Forwarded` the upstream received
    /// differ from what arrived (X-Forwarded-For, which always gains the
    /// peer, does not count).
    ForwardedRewritten => "oidc_edge.forwarded.rewritten",
    /// The external host is not in `allowed_hosts`: answered 400.
    ForwardedHostRejected => "oidc_edge.forwarded.host_rejected",
    /// No valid external host could be determined: answered 400.
    ForwardedHostMalformed => "oidc_edge.forwarded.host_malformed",
    /// A host call failed and the request was refused rather than forwarded
    /// unchecked.
    InternalError => "oidc_edge.internal_error",
    /// A login flow started: its cookie was set.
    FlowIssued => "oidc_edge.login_flow.issued",
    /// A redirect to the IdP had no single `state`: no cookie set.
    FlowNoState => "oidc_edge.login_flow.no_state",
    /// A redirect to the IdP, but the upstream node was unknown: no cookie set.
    FlowNoNode => "oidc_edge.login_flow.no_node",
    /// Stale or surplus flow cookies cleared.
    FlowEvicted => "oidc_edge.login_flow.evicted",
    /// A callback's flow cookie checked out.
    FlowValid => "oidc_edge.login_flow.valid",
    /// A callback was pinned to the node that started its flow, and that
    /// node answered it (checked on the response: `upstream.address`).
    FlowPinned => "oidc_edge.login_flow.pinned",
    /// Callback refused: no flow cookie.
    FlowMissing => "oidc_edge.login_flow.rejected.missing",
    /// Callback refused: the flow cookie arrived twice.
    FlowDuplicate => "oidc_edge.login_flow.rejected.duplicate",
    /// Callback refused: flow cookie not decodable.
    FlowMalformed => "oidc_edge.login_flow.rejected.malformed",
    /// Callback refused: flow cookie over the size limit.
    FlowTooLarge => "oidc_edge.login_flow.rejected.too_large",
    /// Callback refused: flow cookie signed by a key not in the ring.
    FlowUnknownKey => "oidc_edge.login_flow.rejected.unknown_key",
    /// Callback refused: flow cookie MAC mismatch.
    FlowBadSignature => "oidc_edge.login_flow.rejected.bad_signature",
    /// Callback refused: flow cookie expired.
    FlowExpired => "oidc_edge.login_flow.rejected.expired",
    /// In report mode, a callback that enforce mode would have refused.
    FlowReportOnly => "oidc_edge.login_flow.report_only",
    /// A client-sent session header was removed (it cannot pick a node).
    FlowSessionHeaderStripped => "oidc_edge.login_flow.session_header_stripped",
    /// A pinned callback's node was gone: the browser was sent to restart.
    FlowRecovered => "oidc_edge.login_flow.recovered",
    /// A pinned callback's node was gone after a restart already: refused.
    FlowNodeGone => "oidc_edge.login_flow.rejected.node_gone",
    /// Session affinity cookie set after a login.
    SessionIssued => "oidc_edge.session.issued",
    /// A request was pinned by its session affinity cookie, and the
    /// cookie's node answered it.
    SessionPinned => "oidc_edge.session.pinned",
    /// A session affinity cookie was invalid and cleared.
    SessionInvalid => "oidc_edge.session.invalid",
    /// A session's node was gone: the cookie was cleared.
    SessionNodeGone => "oidc_edge.session.node_gone",
    /// A form-post callback body was over `max_callback_body_bytes`: 413.
    FlowBodyTooLarge => "oidc_edge.login_flow.rejected.body_too_large",
    /// Callback refused: an authentic flow cookie of another login.
    FlowWrongState => "oidc_edge.login_flow.rejected.wrong_state",
    /// A form-post callback whose flow cookies name different nodes: pinned
    /// to the newest flow's node before the body (with the state) arrived.
    FlowFormPostAmbiguous => "oidc_edge.login_flow.form_post_ambiguous",
    /// Callback refused: a form-post callback routed to another node than its login's.
    FlowOtherNode => "oidc_edge.login_flow.rejected.other_node",
    /// Login start refused: the app redirected to the IdP on a plain-http
    /// external origin, where the browser drops the Secure flow cookie.
    FlowInsecureOrigin => "oidc_edge.login_flow.rejected.insecure_origin",
    /// A redirect to the IdP answered a request the browser said was not a
    /// navigation (fetch, XHR, image, a frame another site embedded): no
    /// flow cookie set, the response passed.
    FlowNotNavigation => "oidc_edge.login_flow.not_navigation",
    /// A redirect to the IdP carried a registered redirect_uri.
    RedirectUriRegistered => "oidc_edge.redirects.redirect_uri_registered",
    /// A redirect to the IdP carried an unregistered redirect_uri.
    RedirectUriMismatch => "oidc_edge.redirects.redirect_uri_mismatch",
    /// `fix` mode rewrote a redirect_uri to the registered one.
    RedirectUriFixed => "oidc_edge.redirects.redirect_uri_fixed",
    /// A `Location` on an internal origin was moved to the external origin.
    LocationRewritten => "oidc_edge.redirects.location_rewritten",
    /// A return-to parameter was refused, whatever the reason (off-site,
    /// malformed, repeated, `;`-hidden): one counter, so dashboards keep
    /// working; the reason code tells the refusals apart.
    ReturnToRejected => "oidc_edge.redirects.return_to_rejected",
    /// In report mode, a redirect check that enforce mode would have acted on.
    RedirectsReportOnly => "oidc_edge.redirects.report_only",
    /// IdP mode: an authorization request passed its checks.
    IdpAccepted => "oidc_edge.idp.accepted",
    /// IdP mode: an authorization request was refused (`invalid_request`).
    IdpRejected => "oidc_edge.idp.rejected",
    /// Callback refused: flow cookie issued further in the future than the clock skew allows.
    FlowNotYetValid => "oidc_edge.login_flow.rejected.not_yet_valid",
    /// Callback refused: flow cookie valid for longer than `max_age_seconds`.
    FlowLifetimeTooLong => "oidc_edge.login_flow.rejected.lifetime_too_long",
    /// IdP mode in report mode: an authorization request enforce mode would refuse.
    IdpReportOnly => "oidc_edge.idp.report_only",
    /// A trusted peer's request carried the header family its LB does not
    /// emit (`forwarded.family`): the client's, passed through; removed
    /// unread.
    ForwardedOtherFamilyRemoved => "oidc_edge.forwarded.other_family_removed",
    /// The peer header lacked the peer token (`forwarded.peer_token_env`):
    /// not written by Envoy's `header_mutation`, so a client's; the request
    /// was treated as untrusted (and `peer_unknown` counted too).
    ForwardedPeerUnverified => "oidc_edge.forwarded.peer_unverified",
    /// A request arrived without the peer header (`forwarded.
    /// peer_address_header`): Envoy's `header_mutation` filter is missing,
    /// placed after oidc-edge, or writes another header name. The request
    /// was treated as untrusted (`peer_unknown` counted too).
    ForwardedPeerMissing => "oidc_edge.forwarded.peer_missing",
    /// A callback oidc-edge pinned was answered by another node than the
    /// one it named: Envoy did not route on the session header
    /// (`stateful_session` missing, after the router, or reading another
    /// header name). `pinned` counts only callbacks that reached their node.
    FlowPinIgnored => "oidc_edge.login_flow.pin_ignored",
    /// A request pinned by its session cookie was answered by another node
    /// than the cookie named (the same wiring mistake as `pin_ignored`).
    SessionPinIgnored => "oidc_edge.session.pin_ignored",
    /// The peer is one of `forwarded.tcp_load_balancers`: its forwarding
    /// headers (the client's) were removed unread; the scheme came from
    /// its configuration and, with the PROXY protocol, the client from the
    /// PROXY header.
    ForwardedTcpPeer => "oidc_edge.forwarded.tcp_peer",
    /// From a PROXY-protocol load balancer, but Envoy's `source.address`
    /// was missing or had port 0 (taken from X-Forwarded-For: the listener
    /// lacks `use_remote_address: true`): the client was treated as hidden;
    /// logged.
    ForwardedProxyClientUnusable => "oidc_edge.forwarded.proxy_client_unusable",
    /// Discovery fetched the IdP's metadata and accepted it.
    DiscoveryFetched => "oidc_edge.discovery.fetched",
    /// Discovery could not fetch the IdP's metadata (no answer, not a 200,
    /// or Envoy refused to send it); it retries with backoff.
    DiscoveryUnreachable => "oidc_edge.discovery.unreachable",
    /// The IdP's metadata document was refused (malformed, too large,
    /// another issuer, no authorization endpoint, plain http); logged.
    DiscoveryRefused => "oidc_edge.discovery.refused",
    /// The IdP's metadata and the external origin disagree on TLS (an http
    /// issuer or endpoint, a registered redirect URI off the external
    /// scheme); logged.
    DiscoveryTlsMismatch => "oidc_edge.discovery.tls_mismatch",
}

/// A small set of counters touched by one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSet(u64);

// One bit per counter.
const _: () = assert!(Counter::ALL.len() <= 64);

impl CounterSet {
    /// The set of `counters`, built at compile time where they are known.
    pub const fn of(counters: &[Counter]) -> CounterSet {
        let mut bits = 0u64;
        let mut rest = counters;
        while let [c, tail @ ..] = rest {
            bits |= 1 << (*c as u8);
            rest = tail;
        }
        CounterSet(bits)
    }

    /// Adds a counter.
    pub fn add(&mut self, c: Counter) {
        self.0 |= 1 << (c as u8);
    }

    /// Whether the set holds `c`.
    pub fn contains(self, c: Counter) -> bool {
        self.0 & (1 << (c as u8)) != 0
    }

    /// The members of `self` that are not in `other`.
    pub fn without(self, other: CounterSet) -> CounterSet {
        CounterSet(self.0 & !other.0)
    }

    /// The members, in definition order: one step per member (the set
    /// bits, lowest first), not one per counter defined.
    pub fn iter(self) -> impl Iterator<Item = Counter> {
        let mut bits = self.0;
        std::iter::from_fn(move || {
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if let Some(c) = Counter::ALL.get(i) {
                    return Some(*c);
                }
            }
            None
        })
    }
}

/// The one gauge: the wasm VM's linear memory in bytes (set by the module,
/// which alone can read it).
pub const VM_MEMORY_GAUGE: &str = "oidc_edge.vm.memory_bytes";

/// The discovery state gauge (set by the module from
/// [`crate::live::DiscoveryState`]): 0 starting, 1 healthy, 2 unreachable,
/// 3 document refused. Defined only when discovery is configured.
pub const DISCOVERY_STATE_GAUGE: &str = "oidc_edge.discovery.state";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_set_lists_its_members_in_definition_order() {
        for (i, c) in Counter::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "ALL is in discriminant order");
        }
        let mut s = CounterSet::default();
        assert_eq!(s.iter().count(), 0);
        let picked = [0, 3, 17, Counter::ALL.len() - 1];
        for i in picked.iter().rev() {
            s.add(Counter::ALL[*i]);
        }
        let want: Vec<Counter> = picked.iter().map(|i| Counter::ALL[*i]).collect();
        assert_eq!(s.iter().collect::<Vec<_>>(), want);
        assert_eq!(CounterSet::of(&want), s, "of() is the same set as add()");
        assert_eq!(CounterSet::of(&[]), CounterSet::default());
        let all = Counter::ALL.iter().fold(CounterSet::default(), |mut s, c| {
            s.add(*c);
            s
        });
        assert_eq!(all.iter().collect::<Vec<_>>(), Counter::ALL.to_vec());
        assert_eq!(
            all.without(s).iter().count(),
            Counter::ALL.len() - picked.len()
        );
    }

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
