//! Real OIDC end to end: oidc-provider as IdP, a relying party on three
//! nodes, a TLS-terminating LB in front and oidc-edge's Envoy in between
//! (see `integration_tests::oidc_bed`). A scripted browser logs in the way a
//! browser does. Each scenario runs against two relying parties from two
//! ecosystems (tests `express::*` and `authlib::*`): Express with
//! express-session (in-memory) and openid-client, and Flask with Authlib's
//! Flask client and server-side in-memory sessions. Each scenario also
//! runs without oidc-edge where that shows what the filter is for, and
//! asserts that it then fails:
//!
//! | scenario | without oidc-edge |
//! |---|---|
//! | sequential logins, HTTP LB | the callback reaches another node: 400 from the app |
//! | sequential logins, TCP LB | `redirect_uri=http://...`: the IdP refuses it |
//! | 50 concurrent logins | most fail as above |
//! | `response_mode=form_post` logins | the IdP's POST reaches any node |
//! | `prompt=none` | the silent callback reaches another node |
//! | spoofed `X-Forwarded-Host` | the app sends the attacker's host as redirect_uri |
//! | a redirect built from the node's socket | the node's internal address reaches the browser |
//! | two tabs of one browser log in at once | (oidc-edge's session pin from the start of a login) |
//! | node dies mid-login or after it, key rotation, tampered cookie | (oidc-edge's own mechanisms) |
//! | WebSocket, SSE, long poll (Express only) | (need a login first) |

use integration_tests::browser::Browser;
use integration_tests::oidc_bed::{Flavour, Login, OidcBed, Options, Rp};
use std::sync::{Arc, Barrier};

/// The flow cookie oidc-edge set for the login in progress.
fn flow_cookie(browser: &mut Browser) -> &mut integration_tests::browser::Cookie {
    browser
        .cookies_mut()
        .iter_mut()
        .find(|c| c.name.starts_with("__Host-oidc-edge-") && !c.name.contains("session"))
        .expect("a flow cookie in the jar")
}

fn is_callback(u: &url::Url) -> bool {
    u.path() == "/callback"
}

fn assert_logged_in(login: &Login, what: &str) {
    assert!(login.ok(), "{what}: not logged in:\n{}", login.describe());
    assert!(
        login.server_errors().is_empty(),
        "{what}: server errors on the way:\n{}",
        login.describe()
    );
}

fn sequential_logins(flavour: Flavour, rp: Rp) {
    let bed = OidcBed::start(Options::new(flavour).rp(rp));
    let mut nodes = std::collections::BTreeSet::new();
    for i in 0..6 {
        let mut browser = bed.browser();
        let login = bed.login(&mut browser, "");
        assert_logged_in(&login, &format!("{rp:?} {flavour:?} login {i}"));
        assert_eq!(
            login.redirect_uri().as_deref(),
            Some(format!("{}/callback", bed.origin()).as_str()),
            "the app built its redirect_uri from the external origin"
        );
        let node = login.login_node().expect("login node").to_string();
        assert_eq!(
            login.callback_node(),
            Some(node.as_str()),
            "{}",
            login.describe()
        );
        assert_eq!(login.me()["node"], node, "/me served by the session's node");
        nodes.insert(node);
    }
    assert!(nodes.len() >= 2, "logins spread over the nodes: {nodes:?}");
}

fn sequential_logins_through_an_http_load_balancer(rp: Rp) {
    sequential_logins(Flavour::Http, rp);
}

fn sequential_logins_through_a_tcp_load_balancer(rp: Rp) {
    sequential_logins(Flavour::Tcp, rp);
}

/// Without oidc-edge, behind the HTTP LB: the redirect_uri is right (the LB
/// sends X-Forwarded-Proto), but the callback lands on another node than
/// the one holding the login's session, and the app refuses it.
fn without_oidc_edge_logins_fail_behind_an_http_load_balancer(rp: Rp) {
    let bed = OidcBed::start(Options::new(Flavour::Http).rp(rp).without_filter());
    let mut failed = 0;
    for _ in 0..6 {
        let login = bed.login(&mut bed.browser(), "");
        if !login.ok() {
            failed += 1;
            let cb = login.hop("/callback").expect("reached the callback");
            assert_eq!(cb.status, 400, "{}", login.describe());
            assert!(cb.summary.contains(rp.lost_login()), "{}", login.describe());
            assert_ne!(
                login.callback_node(),
                login.login_node(),
                "{}",
                login.describe()
            );
        }
    }
    assert!(
        failed >= 4,
        "only {failed} of 6 logins failed without oidc-edge"
    );
}

/// Without oidc-edge, behind the TCP LB: nothing tells the app about TLS,
/// it sends redirect_uri=http://..., and the IdP refuses the login.
fn without_oidc_edge_logins_fail_behind_a_tcp_load_balancer(rp: Rp) {
    let bed = OidcBed::start(Options::new(Flavour::Tcp).rp(rp).without_filter());
    for _ in 0..3 {
        let login = bed.login(&mut bed.browser(), "");
        assert!(!login.ok(), "{}", login.describe());
        assert_eq!(
            login.redirect_uri(),
            Some(format!("http://app.test:{}/callback", bed.lb_port))
        );
        assert_eq!(login.page.status(), 400, "{}", login.describe());
        assert!(
            login.page.text().contains("invalid_redirect_uri"),
            "{}",
            login.describe()
        );
    }
}

/// 50 browsers log in at once, each as its own user.
fn fifty_concurrent(options: Options) -> (Arc<OidcBed>, Vec<Login>) {
    let bed = Arc::new(OidcBed::start(options));
    let barrier = Arc::new(Barrier::new(50));
    let logins = (0..50)
        .map(|i| {
            let (bed, barrier) = (bed.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut browser = bed.browser();
                barrier.wait();
                bed.login(&mut browser, &format!("?user=user{i}"))
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("login thread"))
        .collect();
    (bed, logins)
}

fn fifty_concurrent_logins(rp: Rp) {
    let (bed, logins) = fifty_concurrent(Options::new(Flavour::Http).rp(rp));
    for (i, login) in logins.iter().enumerate() {
        assert_logged_in(login, &format!("login {i}"));
        assert_eq!(
            login.me()["sub"],
            format!("user{i}"),
            "each browser got its own user"
        );
        assert_eq!(
            login.callback_node(),
            login.login_node(),
            "{}",
            login.describe()
        );
    }
    assert_eq!(bed.edge().counter("oidc_edge.login_flow.valid"), 50);
    assert_eq!(bed.edge().counter("oidc_edge.login_flow.issued"), 50);
}

fn fifty_concurrent_logins_without_oidc_edge_mostly_fail(rp: Rp) {
    let (_bed, logins) = fifty_concurrent(Options::new(Flavour::Http).rp(rp).without_filter());
    let failed = logins.iter().filter(|l| !l.ok()).count();
    // A login only works if its callback and /me both happen to reach the
    // node of its /login: about 1 in 9 under round robin.
    assert!(failed >= 25, "only {failed} of 50 failed without oidc-edge");
}

/// The node that started a login dies while the user is at the IdP. The
/// callback cannot reach it; oidc-edge sends the browser back to /login
/// once, a live node starts a new flow, and the IdP's session completes it
/// without asking the user again.
fn a_login_survives_its_node_dying_before_the_callback(rp: Rp) {
    let mut bed = OidcBed::start(Options::new(Flavour::Http).rp(rp));
    let mut browser = bed.browser();
    let paused = browser
        .navigate_until(&format!("{}/login", bed.origin()), is_callback)
        .expect_err("paused before the callback");
    let first = browser.trace[0].node.clone().expect("login node");
    bed.kill_node(&first);
    let from = browser.trace.len();
    let page = browser.resume(paused);
    let login = Login {
        page,
        hops: browser.trace.clone(),
    };
    assert_logged_in(&login, "after failover");
    let after = &browser.trace[from..];
    let described = login.describe();
    assert_eq!(after[0].status, 302, "{described}");
    assert!(
        after[0]
            .location
            .as_deref()
            .is_some_and(|l| l.ends_with("/login")),
        "{described}"
    );
    assert!(
        !after
            .iter()
            .any(|h| h.url.path().starts_with("/interaction/")),
        "the IdP asked the user again:\n{described}"
    );
    assert_ne!(login.me()["node"], first.as_str(), "{described}");
    assert_eq!(bed.edge().counter("oidc_edge.login_flow.recovered"), 1);
    // Other users meanwhile: requests that round robin sends to the dead node
    // are retried on a live one (route retry_policy), and the dead node is
    // taken out of rotation (outlier_detection).
    for _ in 0..6 {
        let page = bed.browser().get(&format!("{}/me", bed.origin()));
        assert_eq!(page.status(), 401, "{}", page.text());
        assert_ne!(page.node(), Some(first.as_str()));
    }
    let stats = bed.edge().admin("/stats");
    let ejected = stats
        .lines()
        .find_map(|l| l.strip_prefix("cluster.app.outlier_detection.ejections_enforced_total: "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(
        ejected.is_some_and(|n| n >= 1),
        "dead node not ejected: {ejected:?}"
    );
}

/// The node holding a logged-in user's in-memory session dies. oidc-edge
/// drops the affinity and sends the browser to retry on a live node (no
/// 5xx reaches the user); the session died with its node, so the app asks
/// for a login, and the IdP's SSO session completes it without a form.
fn a_session_whose_node_dies_ends_in_a_silent_new_login(rp: Rp) {
    let mut bed = OidcBed::start(Options::new(Flavour::Http).rp(rp));
    let mut browser = bed.browser();
    let first = bed.login(&mut browser, "");
    assert_logged_in(&first, "first login");
    let node = first.me()["node"].as_str().expect("node").to_string();
    bed.kill_node(&node);
    let from = browser.trace.len();
    let me = browser.navigate(&format!("{}/me", bed.origin()));
    let hops = &browser.trace[from..];
    let described: Vec<String> = hops
        .iter()
        .map(integration_tests::oidc_bed::describe_hop)
        .collect();
    assert_eq!(hops[0].status, 302, "{described:?}");
    assert_eq!(hops[0].location.as_deref(), Some("/me"), "{described:?}");
    assert!(hops.iter().all(|h| h.status < 500), "{described:?}");
    assert_eq!(me.status(), 401, "the session died with its node");
    assert_ne!(me.node(), Some(node.as_str()));
    let again = bed.login(&mut browser, "");
    assert_logged_in(&again, "login after the node died");
    assert!(
        !again
            .hops
            .iter()
            .any(|h| h.url.path().starts_with("/interaction/")),
        "the IdP asked the user again:\n{}",
        again.describe()
    );
    assert_ne!(again.me()["node"], node.as_str());
    assert_eq!(bed.edge().counter("oidc_edge.session.node_gone"), 1);
}

/// Keys rotate (rolled out by restarting oidc-edge's Envoy in place) while
/// logins are at the IdP: logins signed with the old key finish while it is
/// still in the ring, and get a clear refusal once it is dropped.
fn key_rotation_with_logins_in_flight(rp: Rp) {
    let mut bed = OidcBed::start(Options::new(Flavour::Http).rp(rp));
    let start = |bed: &OidcBed| {
        let mut b = bed.browser();
        let p = b
            .navigate_until(&format!("{}/login", bed.origin()), is_callback)
            .expect_err("paused before the callback");
        (b, p)
    };
    let (mut early, early_cb) = start(&bed);
    let (mut late, late_cb) = start(&bed);
    // Step 2 of the rotation: k2 signs, k1 still verifies.
    bed.restart_edge(&["k2", "k1"]);
    let page = early.resume(early_cb);
    assert_eq!(
        page.status(),
        200,
        "a k1 login finished under [k2, k1]: {}",
        page.text()
    );
    let (mut during, during_cb) = start(&bed);
    // Step 3: k1 dropped.
    bed.restart_edge(&["k2"]);
    let page = during.resume(during_cb);
    assert_eq!(
        page.status(),
        200,
        "a k2 login finished under [k2]: {}",
        page.text()
    );
    let page = late.resume(late_cb);
    assert_eq!(page.status(), 400, "{}", page.text());
    assert_eq!(
        page.response.header("x-oidc-edge-reason"),
        Some("flow_cookie_unknown_key")
    );
    assert!(
        page.node().is_none(),
        "the refused callback never reached the app"
    );
    assert_eq!(late.get(&format!("{}/me", bed.origin())).status(), 401);
    assert_eq!(
        bed.edge()
            .counter("oidc_edge.login_flow.rejected.unknown_key"),
        1
    );
}

fn a_tampered_or_missing_state_cookie_stops_the_login(rp: Rp) {
    let bed = OidcBed::start(Options::new(Flavour::Http).rp(rp));
    for (what, reason, counter) in [
        ("tampered", "flow_cookie_bad_signature", "bad_signature"),
        ("missing", "flow_cookie_missing", "missing"),
    ] {
        let mut browser = bed.browser();
        let paused = browser
            .navigate_until(&format!("{}/login", bed.origin()), is_callback)
            .expect_err("paused before the callback");
        if what == "tampered" {
            let c = flow_cookie(&mut browser);
            let mid = c.value.len() / 2;
            let flipped = if &c.value[mid..=mid] == "A" { "B" } else { "A" };
            c.value.replace_range(mid..=mid, flipped);
        } else {
            let name = flow_cookie(&mut browser).name.clone();
            browser.cookies_mut().retain(|c| c.name != name);
        }
        let page = browser.resume(paused);
        assert_eq!(page.status(), 400, "{what}: {}", page.text());
        assert_eq!(
            page.response.header("x-oidc-edge-reason"),
            Some(reason),
            "{what}"
        );
        assert!(
            page.node().is_none(),
            "{what}: the callback never reached the app"
        );
        assert!(
            !page.text().trim().is_empty(),
            "{what}: a reason for the user"
        );
        assert_eq!(
            browser.get(&format!("{}/me", bed.origin())).status(),
            401,
            "{what}"
        );
        assert_eq!(
            bed.edge()
                .counter(&format!("oidc_edge.login_flow.rejected.{counter}")),
            1,
            "{what}"
        );
    }
}

/// Silent re-authentication: with the IdP session alive, `prompt=none`
/// logs the user in again without any IdP page, through the filter. With
/// no IdP session, the IdP's `login_required` error reaches the node that
/// asked, and the app answers it.
fn silent_reauthentication_with_prompt_none(rp: Rp) {
    for filter in [true, false] {
        let options = Options::new(Flavour::Http).rp(rp);
        let bed = OidcBed::start(options.filter(filter));
        let mut browser = bed.browser();
        // The user signs in at the IdP (without oidc-edge the app then
        // refuses the callback, but the IdP session exists all the same).
        let first = bed.login(&mut browser, "");
        if filter {
            assert_logged_in(&first, "first login");
            browser.get(&format!("{}/logout", bed.origin()));
            assert_eq!(browser.get(&format!("{}/me", bed.origin())).status(), 401);
        }
        let silent = bed.login(&mut browser, "?prompt=none");
        assert!(
            !silent
                .hops
                .iter()
                .any(|h| h.url.path().starts_with("/interaction/")),
            "prompt=none showed an IdP page:\n{}",
            silent.describe()
        );
        if filter {
            assert_logged_in(&silent, "silent login");
        } else {
            assert!(
                !silent.ok(),
                "silent login without oidc-edge:\n{}",
                silent.describe()
            );
            continue;
        }
        // No IdP session: the error comes back to the node that asked.
        let mut fresh = bed.browser();
        let denied = bed.login(&mut fresh, "?prompt=none");
        assert_eq!(denied.page.status(), 401, "{}", denied.describe());
        assert!(
            denied.page.text().contains("login_required"),
            "{}",
            denied.describe()
        );
        assert_eq!(
            denied.callback_node(),
            denied.login_node(),
            "{}",
            denied.describe()
        );
        assert!(denied.server_errors().is_empty(), "{}", denied.describe());
    }
}

/// A WebSocket, a server-sent-events stream and a long poll, after login,
/// through each LB and the filter, with edge.yaml's settings and a 2 s
/// stream idle timeout (edge.yaml: 300 s) to keep the test quick.
#[test]
fn websocket_sse_and_long_poll_after_login() {
    for flavour in [Flavour::Http, Flavour::Tcp] {
        let mut options = Options::new(flavour);
        options.stream_idle_timeout = Some("2s");
        let bed = OidcBed::start(options);
        let mut browser = bed.browser();
        let login = bed.login(&mut browser, "");
        assert_logged_in(&login, "login");
        let node = login.me()["node"].as_str().expect("node").to_string();
        let wss = format!("wss://app.test:{}/ws", bed.lb_port);
        let mut ws = browser
            .websocket(&wss)
            .unwrap_or_else(|r| panic!("{flavour:?}: upgrade refused: {} {}", r.status, r.text()));
        assert_eq!(
            ws.response.header("x-app-node"),
            Some(node.as_str()),
            "the session's node"
        );
        ws.send("hello").expect("send");
        assert_eq!(
            ws.recv().expect("echo"),
            format!("{node} echoes to alice: hello")
        );
        // Quiet for a while (under the idle timeout), then used again.
        std::thread::sleep(std::time::Duration::from_millis(1000));
        ws.send("again").expect("send");
        assert_eq!(
            ws.recv().expect("echo"),
            format!("{node} echoes to alice: again")
        );
        // 8 events, one every 500 ms: 4 s in all, longer than the idle timeout.
        let sse = browser.get(&format!("{}/events?n=8&ms=500", bed.origin()));
        assert_eq!(sse.status(), 200, "{flavour:?}");
        let events: Vec<String> = sse
            .text()
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
            .collect();
        assert_eq!(events.len(), 8, "{flavour:?}: {events:?}");
        assert!(events.iter().all(|e| e.ends_with(&node)), "{events:?}");
        let poll = browser.get(&format!("{}/poll?ms=1000", bed.origin()));
        assert_eq!(poll.status(), 200, "{flavour:?}: {}", poll.text());
        // Silent longer than the idle timeout: Envoy ends it, as configured.
        let cut = browser.get(&format!("{}/poll?ms=4000", bed.origin()));
        assert_eq!(cut.status(), 504, "{flavour:?}: {}", cut.text());
    }
}

/// A client sends its own X-Forwarded-Host through the HTTP LB (which passes
/// it on, as many do). Without oidc-edge the app builds its redirect_uri
/// from it; with oidc-edge (`accept_host` off, the default) that header is
/// not believed: the app is told the host the browser addressed, and the
/// login completes.
fn a_spoofed_forwarded_host_cannot_steer_the_redirect_uri(rp: Rp) {
    for filter in [true, false] {
        let options = Options::new(Flavour::Http).rp(rp);
        let bed = OidcBed::start(options.filter(filter));
        let mut browser = bed.browser();
        browser
            .extra_headers
            .push(("X-Forwarded-Host".into(), "evil.example".into()));
        let login = bed.login(&mut browser, "");
        if filter {
            assert!(login.ok(), "{}", login.describe());
            assert_eq!(
                login.redirect_uri(),
                Some(format!("{}/callback", bed.origin())),
                "{}",
                login.describe()
            );
        } else {
            assert!(!login.ok(), "{}", login.describe());
            assert_eq!(
                login.redirect_uri().as_deref(),
                Some("https://evil.example/callback"),
                "{}",
                login.describe()
            );
        }
    }
}

/// `response_mode=form_post`: the IdP's page POSTs the code back, a
/// cross-site POST that carries only `SameSite=None` cookies. oidc-edge's
/// flow cookie is `SameSite=None` for such logins and routes the POST by it
/// (the app's own session cookie must be `SameSite=None` too, as in any
/// form_post app). Without oidc-edge the POST lands on any node.
fn form_post_logins(rp: Rp) {
    for filter in [true, false] {
        let mut options = Options::new(Flavour::Http).rp(rp);
        options.app_session_same_site = "none";
        let bed = OidcBed::start(options.filter(filter));
        let mut failed = 0;
        for i in 0..4 {
            let login = bed.login(&mut bed.browser(), "?response_mode=form_post");
            let cb = login.hop("/callback").expect("a callback");
            assert_eq!(cb.method, "POST", "{}", login.describe());
            if filter {
                assert_logged_in(&login, &format!("form_post login {i}"));
                assert_eq!(login.callback_node(), login.login_node());
            } else if !login.ok() {
                failed += 1;
                assert!(cb.summary.contains(rp.lost_login()), "{}", login.describe());
            }
        }
        if filter {
            assert_eq!(bed.edge().counter("oidc_edge.login_flow.valid"), 4);
        } else {
            assert!(
                failed >= 3,
                "only {failed} of 4 form_post logins failed without oidc-edge"
            );
        }
    }
}

/// The app builds a redirect from its own socket (`http://<node ip:port>/me?...`).
/// Through oidc-edge the browser gets the external origin with the path and
/// query byte for byte; without it, the node's internal address reaches the
/// browser.
fn redirects_to_a_nodes_own_address_move_to_the_external_origin(rp: Rp) {
    for filter in [true, false] {
        let options = Options::new(Flavour::Tcp).rp(rp);
        let bed = OidcBed::start(options.filter(filter));
        let mut browser = bed.browser();
        let page = browser.get(&format!("{}/internal-redirect", bed.origin()));
        assert_eq!(page.status(), 302);
        let location = page
            .response
            .header("location")
            .unwrap_or_default()
            .to_string();
        if filter {
            assert_eq!(
                location,
                format!("{}/me?from=internal&x=a%2Fb", bed.origin())
            );
            assert_eq!(
                bed.edge().counter("oidc_edge.redirects.location_rewritten"),
                1
            );
        } else {
            assert!(location.starts_with("http://127.0.0.1:"), "{location}");
            let port: u16 = location["http://127.0.0.1:".len()..]
                .split('/')
                .next()
                .and_then(|p| p.parse().ok())
                .expect("a port");
            assert!(
                bed.nodes.iter().any(|n| n.port == port),
                "a node's own address: {location}"
            );
        }
    }
}

/// Two tabs of one browser start logins at once (an expired session shown
/// in two tabs), then the user finishes both at the IdP. The app keeps the
/// logins' state in the browser's session, which lives on the node that
/// answered the first `/login`: oidc-edge keeps the browser there from that
/// answer on, so the second tab's `/login` and both callbacks reach it,
/// and the fleet behaves as one node would. Authlib keeps a state per login
/// and finishes both; app.js keeps one login per session, so the newer
/// login finishes and the older tab's callback is refused by the app, as
/// on a single node.
fn two_tabs_log_in_at_once(rp: Rp) {
    let bed = OidcBed::start(Options::new(Flavour::Http).rp(rp));
    let mut browser = bed.browser();
    let login = format!("{}/login", bed.origin());
    let first = browser
        .navigate_until(&login, is_callback)
        .expect_err("paused before the callback");
    let second = browser
        .navigate_until(&login, is_callback)
        .expect_err("paused before the callback");
    let newer = browser.resume(second);
    let older = browser.resume(first);
    let all = Login {
        page: browser.get(&format!("{}/me", bed.origin())),
        hops: browser.trace.clone(),
    };
    let described = all.describe();
    let node = all.login_node().expect("login node");
    let at_app = |path: &str| {
        all.hops
            .iter()
            .filter(|h| h.url.path() == path)
            .map(|h| h.node.as_deref())
            .collect::<Vec<_>>()
    };
    assert_eq!(at_app("/login"), [Some(node); 2], "{described}");
    assert_eq!(at_app("/callback"), [Some(node); 2], "{described}");
    assert!(
        all.hops
            .iter()
            .all(|h| h.node.is_none() || h.node.as_deref() == Some(node)),
        "{described}"
    );
    assert!(all.server_errors().is_empty(), "{described}");
    assert!(all.ok(), "the browser is logged in:\n{described}");
    assert_eq!(newer.status(), 200, "{described}");
    if rp.keeps_a_state_per_login() {
        assert_eq!(older.status(), 200, "{described}");
        assert_eq!(older.url.path(), "/me", "{described}");
    } else {
        assert_eq!(older.status(), 400, "{described}");
        assert!(older.text().contains(rp.lost_login()), "{described}");
    }
    assert_eq!(bed.edge().counter("oidc_edge.login_flow.pinned"), 2);
}

/// Each scenario above as one test per relying party (`express::NAME`,
/// `authlib::NAME`): the filter must not depend on one OIDC library's
/// habits. Scenarios that exercise only oidc-edge's own mechanisms (its
/// key ring, its cookie checks, its `Location` rewrite) and never reach
/// the OIDC library run against Express alone, and so does the 50-login
/// control without oidc-edge (the sequential control shows the same
/// failure of each app more cheaply).
macro_rules! against_each_rp {
    (both: [$($scenario:ident),* $(,)?], express_only: [$($own:ident),* $(,)?] $(,)?) => {
        mod express {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Rp::Express);
            })*
            $(#[test]
            fn $own() {
                super::$own(super::Rp::Express);
            })*
        }
        mod authlib {
            $(#[test]
            fn $scenario() {
                super::$scenario(super::Rp::Authlib);
            })*
        }
    };
}

against_each_rp!(
    both: [
        sequential_logins_through_an_http_load_balancer,
        sequential_logins_through_a_tcp_load_balancer,
        without_oidc_edge_logins_fail_behind_an_http_load_balancer,
        without_oidc_edge_logins_fail_behind_a_tcp_load_balancer,
        fifty_concurrent_logins,
        a_login_survives_its_node_dying_before_the_callback,
        a_session_whose_node_dies_ends_in_a_silent_new_login,
        silent_reauthentication_with_prompt_none,
        a_spoofed_forwarded_host_cannot_steer_the_redirect_uri,
        form_post_logins,
        two_tabs_log_in_at_once,
    ],
    express_only: [
        fifty_concurrent_logins_without_oidc_edge_mostly_fail,
        key_rotation_with_logins_in_flight,
        a_tampered_or_missing_state_cookie_stops_the_login,
        redirects_to_a_nodes_own_address_move_to_the_external_origin,
    ],
);
