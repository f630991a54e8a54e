//! The configuration in force: the operator's, plus what IdP discovery
//! learned, and the discovery state machine that keeps it current.
//!
//! The module's root context owns one [`LiveConfig`] per worker. It asks
//! [`LiveConfig::on_tick`] whether to fetch, hands every answer to
//! [`LiveConfig::on_response`], and gives each new request
//! [`LiveConfig::config`]: a request keeps the configuration it started
//! with, so a refresh never changes a request halfway.
//!
//! Static and discovered endpoints: the learned authorization endpoint is
//! recognised *besides* `login_flow.authorization_endpoints` and
//! `redirects.authorization_endpoints`, never instead of them. While the
//! IdP cannot be reached the static endpoints keep working; when the
//! IdP's metadata names an endpoint the static list lacks, both are
//! recognised (recognising one more endpoint means checking more
//! redirects, never fewer) and a warning says so once. A later document
//! replaces the learned endpoint; a failed fetch or a refused document
//! keeps the last good one, since an IdP's endpoint outlives its outages.

use crate::config::Config;
use crate::discovery::schedule::Schedule;
use crate::discovery::{parse_metadata, tls_disagreements, Metadata, MAX_DOCUMENT_BYTES};
use crate::http::authority::Origin;
use crate::http::uri::OwnedUri;
use crate::login_flow::config::AuthorizationEndpoint;
use crate::metrics::{Counter, CounterSet};
use std::rc::Rc;

/// Discovery's state, exported as the gauge
/// [`crate::metrics::DISCOVERY_STATE_GAUGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum DiscoveryState {
    /// No answer yet since the start.
    Starting = 0,
    /// The last fetch brought a good document.
    Healthy = 1,
    /// The last fetch got no answer, or not a 200.
    Unreachable = 2,
    /// The last document was refused (malformed, another issuer, http).
    Refused = 3,
}

/// How loud a log line is (the glue maps it to Envoy's levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Normal operation worth a line: learned, recovered.
    Info,
    /// Something an operator should fix or watch.
    Warn,
}

/// The request to send: `dispatch_http_call(cluster, headers, timeout)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetch {
    /// The Envoy cluster.
    pub cluster: String,
    /// Request headers, pseudo-headers first.
    pub headers: Vec<(&'static str, String)>,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
}

/// What the glue does after an event: log, count, set the gauge, wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Log lines, in order.
    pub logs: Vec<(Severity, String)>,
    /// Counters to bump once each.
    pub counters: CounterSet,
    /// The gauge's new value.
    pub state: DiscoveryState,
    /// Milliseconds until the next tick should fetch.
    pub next_ms: u64,
    /// The configuration changed: new requests should get [`LiveConfig::config`].
    pub config_changed: bool,
}

/// The configuration of one worker, kept current by discovery.
pub struct LiveConfig {
    base: Config,
    current: Rc<Config>,
    schedule: Option<Schedule>,
    state: DiscoveryState,
    learned: Option<Metadata>,
    /// The last refusal or failure logged, so a repeat is not logged again.
    last_problem: Option<String>,
    /// The disagreements last logged (logged again only when they change).
    last_disagreements: Vec<String>,
    in_flight: bool,
    /// Ticks seen while a fetch was in flight (the glue's watchdog).
    ticks_in_flight: u32,
}

impl LiveConfig {
    /// The operator's configuration, nothing learned yet; `seed` feeds the
    /// retry jitter.
    pub fn new(config: Config, seed: u64) -> LiveConfig {
        let schedule = config
            .discovery
            .as_ref()
            .map(|d| Schedule::new(d.retry_initial_ms, d.retry_max_ms, d.refresh_ms, seed));
        LiveConfig {
            current: Rc::new(config.clone()),
            base: config,
            schedule,
            state: DiscoveryState::Starting,
            learned: None,
            last_problem: None,
            last_disagreements: Vec::new(),
            in_flight: false,
            ticks_in_flight: 0,
        }
    }

    /// The configuration new requests get.
    pub fn config(&self) -> &Rc<Config> {
        &self.current
    }

    /// Whether discovery is configured (else the glue sets no timer).
    pub fn discovers(&self) -> bool {
        self.schedule.is_some()
    }

    /// Discovery's state.
    pub fn state(&self) -> DiscoveryState {
        self.state
    }

    /// The first tick's delay: at once, after Envoy finished starting (the
    /// glue never fetches from the configuration callback itself, when
    /// clusters may not be initialised yet).
    pub const FIRST_TICK_MS: u64 = 1;

    /// The largest body the glue needs to read: one byte over the limit
    /// tells "too large" apart.
    pub const BODY_READ_LIMIT: usize = MAX_DOCUMENT_BYTES + 1;

    /// A tick: the fetch to send now, or `None` (no discovery, or one is
    /// already in flight: the timer never stacks fetches). While a fetch is
    /// in flight the glue ticks every [`Self::watchdog_ms`]: Envoy always
    /// answers a call within its timeout, so a second tick without an
    /// answer means it was lost, and the fetch is sent again rather than
    /// waited for forever.
    pub fn on_tick(&mut self) -> Option<Fetch> {
        let d = self.base.discovery.as_ref()?;
        if self.in_flight {
            self.ticks_in_flight += 1;
            if self.ticks_in_flight < 2 {
                return None;
            }
        }
        self.in_flight = true;
        self.ticks_in_flight = 0;
        Some(Fetch {
            cluster: d.cluster.clone(),
            headers: vec![
                (":method", "GET".into()),
                (":path", d.path.clone()),
                (":authority", d.authority.clone()),
                (":scheme", scheme(&d.issuer).into()),
                ("accept", "application/json".into()),
            ],
            timeout_ms: d.timeout_ms,
        })
    }

    /// The tick period while a fetch is in flight: twice its timeout.
    pub fn watchdog_ms(&self) -> u64 {
        self.base
            .discovery
            .as_ref()
            .map_or(0, |d| d.timeout_ms.saturating_mul(2))
    }

    /// Envoy refused to send the fetch (`dispatch_http_call` failed: most
    /// often `discovery.cluster` names no cluster of this Envoy).
    pub fn on_dispatch_failed(&mut self, status: &str) -> Step {
        let cluster = self
            .base
            .discovery
            .as_ref()
            .map_or("", |d| d.cluster.as_str());
        self.failed(format!(
            "Envoy refused to send the request ({status}): is there a cluster named {} \
             (discovery.cluster)?",
            crate::text::quoted(cluster)
        ))
    }

    /// The fetch's answer: `status` is the `:status` header (`None`: no
    /// answer at all: connection refused, reset or timed out), `body` up to
    /// [`Self::BODY_READ_LIMIT`] bytes of the body.
    pub fn on_response(&mut self, status: Option<&[u8]>, body: &[u8]) -> Step {
        self.in_flight = false;
        let Some(d) = self.base.discovery.clone() else {
            return self.idle();
        };
        let status = match status {
            None => {
                return self.failed("no answer (connection refused, reset or timed out)".into())
            }
            Some(s) => String::from_utf8_lossy(s).into_owned(),
        };
        if status != "200" {
            // Envoy answers 503 itself when it cannot connect to the cluster.
            let hint = if status == "503" {
                " (Envoy's own answer when no host of the cluster accepts a connection)"
            } else {
                ""
            };
            return self.failed(format!("HTTP status {status}{hint}"));
        }
        match parse_metadata(&d.issuer, body, d.allow_http) {
            Err(refusal) => {
                let mut step = self.refused(refusal.reason);
                if refusal.plain_http {
                    step.counters.add(Counter::DiscoveryTlsMismatch);
                }
                step
            }
            Ok(m) => self.accepted(m),
        }
    }

    fn idle(&mut self) -> Step {
        Step {
            logs: Vec::new(),
            counters: CounterSet::default(),
            state: self.state,
            next_ms: 0,
            config_changed: false,
        }
    }

    fn where_from(&self) -> String {
        let d = self.base.discovery.as_ref();
        format!(
            "{}{} (cluster {})",
            d.map_or("", |d| d.issuer.trim_end_matches('/')),
            crate::discovery::config::WELL_KNOWN,
            crate::text::quoted(d.map_or("", |d| d.cluster.as_str()))
        )
    }

    fn keeping(&self) -> String {
        match &self.learned {
            Some(m) => format!(
                "keeping the authorization endpoint learned before ({})",
                m.authorization_endpoint
            ),
            None if self.has_static_endpoints() => {
                "the configured authorization endpoints stay in use".into()
            }
            None => "no authorization endpoint is known yet, so logins are not recognised \
                     (configure login_flow.authorization_endpoints to keep them working while the IdP is unreachable)"
                .into(),
        }
    }

    fn has_static_endpoints(&self) -> bool {
        self.base
            .login_flow
            .as_ref()
            .is_some_and(|l| !l.authorization_endpoints.is_empty())
            || self
                .base
                .redirects
                .as_ref()
                .is_some_and(|r| !r.authorization_endpoints.is_empty())
    }

    /// A fetch that got no usable answer.
    fn failed(&mut self, why: String) -> Step {
        self.setback(
            DiscoveryState::Unreachable,
            Counter::DiscoveryUnreachable,
            "cannot fetch",
            why,
        )
    }

    /// A document that was refused.
    fn refused(&mut self, why: String) -> Step {
        self.setback(
            DiscoveryState::Refused,
            Counter::DiscoveryRefused,
            "refused the document from",
            why,
        )
    }

    /// No new document: count it, retry with backoff, and log one line when
    /// the trouble starts or changes, not one per retry.
    fn setback(
        &mut self,
        state: DiscoveryState,
        counter: Counter,
        what: &str,
        why: String,
    ) -> Step {
        self.in_flight = false;
        let mut step = self.idle();
        step.counters.add(counter);
        let delay = self.schedule.as_mut().map_or(0, Schedule::after_failure);
        if self.state != state || self.last_problem.as_deref() != Some(&why) {
            step.logs.push((
                Severity::Warn,
                format!(
                    "discovery: {what} {}: {why}; {}; retrying with backoff (next in {} ms)",
                    self.where_from(),
                    self.keeping(),
                    delay
                ),
            ));
            self.last_problem = Some(why);
        }
        self.state = state;
        step.state = self.state;
        step.next_ms = delay;
        step
    }

    /// A good document: learn it, check TLS agreement.
    fn accepted(&mut self, m: Metadata) -> Step {
        let mut step = self.idle();
        step.counters.add(Counter::DiscoveryFetched);
        let failures = self.schedule.as_ref().map_or(0, Schedule::failures);
        step.next_ms = self.schedule.as_mut().map_or(0, Schedule::after_success);
        let was = self.state;
        let changed = self.learned.as_ref() != Some(&m);
        if changed {
            let (config, differs) = merged(&self.base, &m);
            self.current = Rc::new(config);
            step.config_changed = true;
            let recovered = match was {
                DiscoveryState::Starting => String::new(),
                _ => format!(" (after {failures} failed attempts)"),
            };
            step.logs.push((
                Severity::Info,
                format!(
                    "discovery: learned authorization_endpoint {} from {}{recovered}",
                    m.authorization_endpoint,
                    self.where_from()
                ),
            ));
            if let Some(d) = differs {
                step.logs.push((Severity::Warn, d));
            }
        } else if was != DiscoveryState::Healthy {
            step.logs.push((
                Severity::Info,
                format!(
                    "discovery: {} answers again after {failures} failed attempts; authorization_endpoint {} unchanged",
                    self.where_from(),
                    m.authorization_endpoint
                ),
            ));
        }
        let disagreements: Vec<String> = self.disagreements(&m);
        if !disagreements.is_empty() {
            step.counters.add(Counter::DiscoveryTlsMismatch);
            if disagreements != self.last_disagreements {
                step.logs.push((
                    Severity::Warn,
                    format!(
                        "discovery: the IdP's metadata and the external origin disagree on TLS: {}",
                        disagreements.join("; ")
                    ),
                ));
            }
        }
        self.last_disagreements = disagreements;
        self.learned = Some(m);
        self.last_problem = None;
        self.state = DiscoveryState::Healthy;
        step.state = self.state;
        step
    }

    fn disagreements(&self, m: &Metadata) -> Vec<String> {
        let redirect_uris: &[OwnedUri] = self
            .base
            .redirects
            .as_ref()
            .map_or(&[], |r| r.redirect_uris.as_slice());
        let forwarded = self.base.forwarded.as_ref();
        let origins: Vec<&Origin> = forwarded.map_or(Vec::new(), |f| {
            f.external_origin
                .iter()
                .chain(f.external_origins.iter())
                .collect()
        });
        let external_for = |u: &OwnedUri| {
            forwarded
                .and_then(|f| f.origin_for(u.authority()))
                .map(|o| o.proto)
        };
        tls_disagreements(m, redirect_uris, &origins, &external_for)
            .into_iter()
            .map(|d| d.0)
            .collect()
    }
}

fn scheme(issuer: &str) -> &'static str {
    match crate::http::uri::AbsoluteUri::parse(issuer).map(|u| u.proto) {
        Some(crate::http::authority::Proto::Http) => "http",
        _ => "https",
    }
}

/// `base` with the learned endpoint added to `login_flow` and `redirects`
/// (where present and not already listed), and the warning when a static
/// list did not name it.
fn merged(base: &Config, m: &Metadata) -> (Config, Option<String>) {
    let mut c = base.clone();
    let mut differs = Vec::new();
    if let (Some(lf), Ok(e)) = (
        c.login_flow.as_mut(),
        AuthorizationEndpoint::parse(&m.authorization_endpoint),
    ) {
        let same = |s: &AuthorizationEndpoint| {
            crate::http::uri::AbsoluteUri::parse(s.as_str()).is_some_and(|u| e.matches(&u))
        };
        if !lf.authorization_endpoints.iter().any(same) {
            if !lf.authorization_endpoints.is_empty() {
                differs.push("login_flow.authorization_endpoints");
            }
            lf.authorization_endpoints.push(e);
        }
    }
    if let (Some(r), Some(u)) = (
        c.redirects.as_mut(),
        OwnedUri::parse(&m.authorization_endpoint),
    ) {
        let same = |s: &OwnedUri| {
            crate::http::uri::AbsoluteUri::parse(s.as_str()).is_some_and(|x| u.same_endpoint(&x))
        };
        if !r.authorization_endpoints.iter().any(same) {
            if !r.authorization_endpoints.is_empty() && differs.is_empty() {
                differs.push("redirects.authorization_endpoints");
            }
            r.authorization_endpoints.push(u);
        }
    }
    let warning = (!differs.is_empty()).then(|| {
        format!(
            "discovery: the IdP's metadata names authorization_endpoint {}, which {} does not list; \
             both are recognised (add it to the list, or remove the old one if the IdP moved)",
            m.authorization_endpoint,
            differs.join(" and ")
        )
    });
    (c, warning)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const ISSUER: &str = "https://idp.example.com";

    fn config(static_endpoints: &str, extra: &str) -> Config {
        let json = format!(
            r#"{{"discovery": {{"issuer": "{ISSUER}", "cluster": "idp", "retry_initial_ms": 100,
                    "retry_max_seconds": 1, "refresh_interval_seconds": 60}},
                "login_flow": {{"authorization_endpoints": [{static_endpoints}], "callback_paths": ["/callback"],
                    "keys": [{{"id": "k1", "secret": "{SECRET}"}}]}},
                "redirects": {{"redirect_uris": ["https://app.example.com/callback"]}}{extra}}}"#
        );
        Config::parse(json.as_bytes()).unwrap()
    }

    fn doc(endpoint: &str) -> String {
        format!(r#"{{"issuer": "{ISSUER}", "authorization_endpoint": "{endpoint}"}}"#)
    }

    fn endpoints(c: &Config) -> (Vec<String>, Vec<String>) {
        (
            c.login_flow
                .as_ref()
                .unwrap()
                .authorization_endpoints
                .iter()
                .map(|e| e.as_str().to_string())
                .collect(),
            c.redirects
                .as_ref()
                .unwrap()
                .authorization_endpoints
                .iter()
                .map(|e| e.as_str().to_string())
                .collect(),
        )
    }

    #[test]
    fn the_fetch_asks_the_issuer_through_its_cluster_one_at_a_time() {
        let mut live = LiveConfig::new(config("", ""), 1);
        assert!(live.discovers());
        let f = live.on_tick().unwrap();
        assert_eq!(f.cluster, "idp");
        assert_eq!(
            f.headers,
            vec![
                (":method", "GET".to_string()),
                (":path", "/.well-known/openid-configuration".into()),
                (":authority", "idp.example.com".into()),
                (":scheme", "https".into()),
                ("accept", "application/json".into()),
            ]
        );
        assert_eq!(live.on_tick(), None, "one fetch in flight at a time");
        assert_eq!(live.watchdog_ms(), 10_000);
        assert!(live.on_tick().is_some(), "a lost answer is fetched again");
        live.on_response(None, b"");
        assert!(live.on_tick().is_some());
        // Without discovery: no fetch, ever.
        let plain = Config::parse(br#"{"forwarded": {}}"#).unwrap();
        let mut live = LiveConfig::new(plain, 1);
        assert!(!live.discovers() && live.on_tick().is_none());
    }

    #[test]
    fn discovery_alone_learns_the_endpoint_for_login_flow_and_redirects() {
        let mut live = LiveConfig::new(config("", ""), 1);
        assert_eq!(endpoints(live.config()), (vec![], vec![]));
        live.on_tick();
        let step = live.on_response(Some(b"200"), doc("https://idp.example.com/auth").as_bytes());
        assert!(step.config_changed);
        assert_eq!(step.state, DiscoveryState::Healthy);
        assert!(step.counters.contains(Counter::DiscoveryFetched));
        assert!(
            (54_000..=60_000).contains(&step.next_ms),
            "{}",
            step.next_ms
        );
        let e = vec!["https://idp.example.com/auth".to_string()];
        assert_eq!(endpoints(live.config()), (e.clone(), e));
        assert_eq!(step.logs.len(), 1, "{:?}", step.logs);
        assert!(step.logs[0]
            .1
            .contains("learned authorization_endpoint https://idp.example.com/auth"));
        // The same document again: nothing new, nothing logged.
        live.on_tick();
        let step = live.on_response(Some(b"200"), doc("https://idp.example.com/auth").as_bytes());
        assert!(!step.config_changed && step.logs.is_empty(), "{step:?}");
    }

    #[test]
    fn an_unreachable_idp_keeps_static_endpoints_and_logs_once_then_recovery() {
        let stat = r#""https://idp.example.com/auth""#;
        let mut live = LiveConfig::new(config(stat, ""), 3);
        let before = endpoints(live.config());
        let mut lines = Vec::new();
        let mut delays = Vec::new();
        for _ in 0..5 {
            live.on_tick();
            let step = live.on_response(None, b"");
            assert_eq!(step.state, DiscoveryState::Unreachable);
            assert!(step.counters.contains(Counter::DiscoveryUnreachable));
            assert!(!step.config_changed);
            lines.extend(step.logs);
            delays.push(step.next_ms);
        }
        assert_eq!(endpoints(live.config()), before, "static endpoints stay");
        assert_eq!(lines.len(), 1, "one line, not one per retry: {lines:?}");
        assert!(
            lines[0].1.contains("no answer")
                && lines[0]
                    .1
                    .contains("configured authorization endpoints stay in use"),
            "{lines:?}"
        );
        assert!(
            delays[4] <= 1000 && delays[4] >= 500,
            "capped at retry_max: {delays:?}"
        );
        // Another failure kind is logged once more.
        live.on_tick();
        let step = live.on_response(Some(b"503"), b"");
        assert!(
            step.logs[0].1.contains("HTTP status 503"),
            "{:?}",
            step.logs
        );
        // Recovery: one line saying so; the learned endpoint equals the static one.
        live.on_tick();
        let step = live.on_response(Some(b"200"), doc("https://idp.example.com/auth").as_bytes());
        assert_eq!(step.state, DiscoveryState::Healthy);
        assert!(
            step.logs[0].1.contains("after 6 failed attempts"),
            "{:?}",
            step.logs
        );
        assert_eq!(endpoints(live.config()), before, "not listed twice");
    }

    #[test]
    fn a_refused_document_keeps_the_last_good_endpoint() {
        let mut live = LiveConfig::new(config("", ""), 5);
        live.on_tick();
        live.on_response(Some(b"200"), doc("https://idp.example.com/auth").as_bytes());
        let good = endpoints(live.config());
        for body in [
            "not json".to_string(),
            r#"{"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/auth"}"#.into(),
        ] {
            live.on_tick();
            let step = live.on_response(Some(b"200"), body.as_bytes());
            assert_eq!(step.state, DiscoveryState::Refused);
            assert!(step.counters.contains(Counter::DiscoveryRefused));
            assert!(step.next_ms <= 1000);
            assert!(
                step.logs[0].1.contains("refused the document from https://idp.example.com/.well-known/openid-configuration")
                    && step.logs[0].1.contains("keeping the authorization endpoint learned before"),
                "{:?}",
                step.logs
            );
            assert_eq!(endpoints(live.config()), good);
        }
        // The same refusal again is not logged again.
        live.on_tick();
        let step = live.on_response(Some(b"200"), br#"{"issuer": "https://evil.example", "authorization_endpoint": "https://evil.example/auth"}"#);
        assert!(step.logs.is_empty(), "{:?}", step.logs);
    }

    #[test]
    fn a_moved_endpoint_is_recognised_besides_the_static_one_with_a_warning() {
        let mut live = LiveConfig::new(config(r#""https://idp.example.com/old""#, ""), 1);
        live.on_tick();
        let step = live.on_response(Some(b"200"), doc("https://idp.example.com/new").as_bytes());
        let both = vec![
            "https://idp.example.com/old".to_string(),
            "https://idp.example.com/new".to_string(),
        ];
        assert_eq!(endpoints(live.config()), (both.clone(), both));
        assert!(
            step.logs.iter().any(|(s, l)| *s == Severity::Warn
                && l.contains("login_flow.authorization_endpoints does not list")
                && l.contains("both are recognised")),
            "{:?}",
            step.logs
        );
        // The IdP moves again: the learned one is replaced, the static one stays.
        live.on_tick();
        live.on_response(
            Some(b"200"),
            doc("https://idp.example.com/newer").as_bytes(),
        );
        let now = vec![
            "https://idp.example.com/old".to_string(),
            "https://idp.example.com/newer".to_string(),
        ];
        assert_eq!(endpoints(live.config()), (now.clone(), now));
    }

    #[test]
    fn tls_disagreement_is_counted_and_logged_once() {
        // An https IdP, but the app's registered redirect URI is http.
        let json = format!(
            r#"{{"discovery": {{"issuer": "{ISSUER}", "cluster": "idp"}},
                "redirects": {{"redirect_uris": ["http://app.example.com/callback"]}}}}"#
        );
        let mut live = LiveConfig::new(Config::parse(json.as_bytes()).unwrap(), 1);
        for round in 0..2 {
            live.on_tick();
            let step =
                live.on_response(Some(b"200"), doc("https://idp.example.com/auth").as_bytes());
            assert!(step.counters.contains(Counter::DiscoveryTlsMismatch));
            let warned = step.logs.iter().any(|(_, l)| {
                l.contains("disagree on TLS")
                    && l.contains("\"http://app.example.com/callback\" is http")
            });
            assert_eq!(warned, round == 0, "{:?}", step.logs);
        }
        // A plain-http endpoint without allow_http: refused and counted as both.
        live.on_tick();
        let step = live.on_response(Some(b"200"), doc("http://idp.example.com/auth").as_bytes());
        assert!(step.counters.contains(Counter::DiscoveryRefused));
        assert!(step.counters.contains(Counter::DiscoveryTlsMismatch));
    }

    #[test]
    fn a_missing_cluster_is_named() {
        let mut live = LiveConfig::new(config("", ""), 1);
        live.on_tick();
        let step = live.on_dispatch_failed("BadArgument");
        assert!(
            step.logs[0]
                .1
                .contains("cluster named \"idp\" (discovery.cluster)"),
            "{:?}",
            step.logs
        );
        assert!(live.on_tick().is_some(), "it retries");
    }

    proptest! {
        /// Whatever the IdP answers, nothing panics, the state is the one
        /// the answer deserves, the endpoint lists grow by one at most,
        /// and retries never come faster than retry_initial_ms / 2.
        #[test]
        fn hostile_answers_are_survived(
            answers in proptest::collection::vec(
                (proptest::option::of(prop_oneof![Just(b"200".to_vec()), any::<Vec<u8>>()]),
                 prop_oneof![
                     any::<Vec<u8>>(),
                     Just(doc("https://idp.example.com/auth").into_bytes()),
                     "[a-z:/.]{0,40}".prop_map(|e| doc(&e).into_bytes()),
                 ]),
                1..30)
        ) {
            let mut live = LiveConfig::new(config(r#""https://idp.example.com/static""#, ""), 9);
            for (status, body) in answers {
                prop_assert!(live.on_tick().is_some());
                let step = live.on_response(status.as_deref(), &body);
                let (lf, r) = endpoints(live.config());
                prop_assert!(lf.len() <= 2 && r.len() <= 2);
                prop_assert_eq!(&lf[0], "https://idp.example.com/static");
                match step.state {
                    DiscoveryState::Healthy => prop_assert!(step.next_ms >= 54_000),
                    _ => prop_assert!(step.next_ms >= 50 && step.next_ms <= 1000),
                }
                if status.as_deref() != Some(b"200") {
                    prop_assert_eq!(step.state, DiscoveryState::Unreachable);
                }
            }
        }
    }
}
