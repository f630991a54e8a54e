//! Native micro benchmarks of the per-request decision, without Envoy.
//! In Envoy the module runs in V8, several times slower than native; these
//! numbers compare variants of our own logic, `./build.sh bench` measures
//! the filter inside Envoy.

use criterion::{criterion_group, criterion_main, Criterion};
use oidc_edge::config::Config;
use oidc_edge::forwarded::rfc7239;
use oidc_edge::forwarded::{decide, Connection};
use oidc_edge::idp;
use std::hint::black_box;
use std::net::IpAddr;

struct Conn;

impl Connection for Conn {
    fn source_address(&mut self) -> Option<IpAddr> {
        None
    }
    fn is_tls(&mut self) -> bool {
        false
    }
}

fn headers<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect()
}

/// A browser request as an HTTP load balancer forwards it: ~15 headers.
fn typical<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a [u8])> {
    let mut h = headers(&[
        (":authority", "app.example.com"),
        (":path", "/callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj"),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0 Safari/537.36"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
        ("cookie", "session=abc123; theme=dark"),
        ("x-request-id", "6f1c1e0c-3a53-4c4e-9d0a-8e1f0d6b1b5f"),
    ]);
    h.extend(headers(extra));
    h
}

fn bench(c: &mut Criterion) {
    let lb = Config::parse(br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_token_env": null, "accept_host": true, "allowed_hosts": ["app.example.com"]}}"#)
        .unwrap()
        .forwarded
        .unwrap();
    let trusted = typical(&[
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-oidc-edge-peer", "10.0.0.5"),
    ]);
    let spoof = typical(&[
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-for", "10.0.0.9"),
        ("x-oidc-edge-peer", "198.51.100.7"),
    ]);
    let fw_cfg = Config::parse(br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8"], "peer_token_env": null, "family": "forwarded", "accept_host": true, "emit_forwarded": true}}"#)
        .unwrap()
        .forwarded
        .unwrap();
    let fw = typical(&[
        (
            "forwarded",
            "for=\"[2001:db8:cafe::17]:4711\";proto=https;host=app.example.com, for=10.1.1.1",
        ),
        ("x-oidc-edge-peer", "10.0.0.5"),
    ]);
    let mut g = c.benchmark_group("forwarded::decide");
    g.bench_function("trusted LB, X-Forwarded-*", |b| {
        b.iter(|| decide(&lb, black_box(&trusted), &mut Conn))
    });
    g.bench_function("untrusted client spoofing", |b| {
        b.iter(|| decide(&lb, black_box(&spoof), &mut Conn))
    });
    g.bench_function("trusted LB, RFC 7239 two elements", |b| {
        b.iter(|| decide(&fw_cfg, black_box(&fw), &mut Conn))
    });
    g.finish();
    c.bench_function("rfc7239::parse 3 elements", |b| {
        b.iter(|| {
            rfc7239::parse([black_box(
                "for=192.0.2.43;proto=https, for=\"[2001:db8::1]:80\";host=a.example, for=unknown",
            )])
        })
    });
    c.bench_function("Config::parse (load time)", |b| {
        b.iter(|| Config::parse(black_box(br#"{"forwarded": {"trusted_cidrs": ["10.0.0.0/8", "fd00::/8"], "peer_token_env": null, "allowed_hosts": ["app.example.com", "*.example.org"], "external_origin": "https://app.example.com"}}"#)))
    });
}

/// The worst authorization request body an attacker can send IdP mode: as
/// many short, distinct parameter names as fit in the 64 KiB the filter
/// reads (`a&b&…&aa&ab&…`), so a repeat check has the most names to compare.
fn many_distinct_params(limit: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut body = String::with_capacity(limit);
    let mut key = vec![0usize];
    loop {
        let name: String = key.iter().map(|&d| char::from(ALPHABET[d])).collect();
        if body.len() + name.len() + 1 > limit {
            return body;
        }
        body.push_str(&name);
        body.push('&');
        // Next name: count in base 62, growing a digit when all wrap.
        let mut i = key.len();
        loop {
            if i == 0 {
                key.insert(0, 0);
                break;
            }
            i -= 1;
            key[i] += 1;
            if key[i] < ALPHABET.len() {
                break;
            }
            key[i] = 0;
        }
    }
}

fn bench_idp(c: &mut Criterion) {
    let cfg = Config::parse(
        br#"{"idp": {"authorization_paths": ["/authorize"], "clients": {"app": ["https://app.example.com/callback"]}}}"#,
    )
    .unwrap()
    .idp
    .unwrap();
    let worst = many_distinct_params(idp::MAX_POST_BODY);
    let typical =
        "response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback\
        &scope=openid%20email&state=af0ifjsldkj&nonce=n-0S6_WzA2Mj\
        &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256";
    let form = "application/x-www-form-urlencoded";
    let mut g = c.benchmark_group("idp::check_authorization_post");
    g.sample_size(10);
    g.bench_function("typical request (8 parameters)", |b| {
        b.iter(|| {
            idp::check_authorization_post(&cfg, "/authorize", form, black_box(typical.as_bytes()))
        })
    });
    g.bench_function("64 KiB of short distinct names (worst case)", |b| {
        b.iter(|| {
            idp::check_authorization_post(&cfg, "/authorize", form, black_box(worst.as_bytes()))
        })
    });
    // The most work a request that is read whole can cause: the cap's worth
    // of names, values filling the rest of the 64 KiB.
    let value = "x".repeat(idp::MAX_POST_BODY / idp::MAX_PARAMS - 8);
    let at_cap: String = (0..idp::MAX_PARAMS)
        .map(|i| format!("p{i}={value}&"))
        .collect();
    g.bench_function("64 KiB, 256 parameters (the cap)", |b| {
        b.iter(|| {
            idp::check_authorization_post(&cfg, "/authorize", form, black_box(at_cap.as_bytes()))
        })
    });
    g.finish();
}

/// One sealed flow cookie: what issuing a login and checking its callback
/// cost (AES-SIV, AES-256, software AES).
fn bench_seal(c: &mut Criterion) {
    use oidc_edge::seal::keyring::{Key, KeyRing};
    use oidc_edge::seal::sealed_cookie::{
        cookie_name, open_flow, seal, state_hash, Binding, FlowClaims, Purpose, Validity,
    };
    let Ok(key) = Key::new("k1", &[7; 32]) else {
        return;
    };
    let Ok(ring) = KeyRing::new(vec![key]) else {
        return;
    };
    let state = "af0ifjsldkj-Qw3rTy";
    let name = cookie_name("__Host-oidc-edge-", state);
    let binding = Binding {
        purpose: Purpose::Flow,
        name: &name,
        origin: "https://app.example.com",
    };
    let claims = FlowClaims {
        node: "10.1.2.3:8080".into(),
        issued_at: 1_800_000_000_000,
        expires_at: 1_800_000_600,
        seq: 1,
        restarts: 0,
        return_to: "/account?tab=profile".into(),
    };
    let value = seal(ring.signing(), &binding, &state_hash(state), &claims);
    let at = Validity {
        now_ms: 1_800_000_100_000,
        max_lifetime_s: 600,
    };
    let mut g = c.benchmark_group("sealed flow cookie");
    g.bench_function("seal", |b| {
        b.iter(|| {
            seal(
                ring.signing(),
                black_box(&binding),
                &state_hash(state),
                &claims,
            )
        })
    });
    g.bench_function("open and check", |b| {
        b.iter(|| open_flow(&ring, black_box(&binding), state, black_box(&value), &at))
    });
    g.finish();
}

criterion_group!(benches, bench, bench_idp, bench_seal);
criterion_main!(benches);
