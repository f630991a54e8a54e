//! Sealed cookies: a value the fuzzer made never opens (it would need the
//! key); a cookie oidc-edge sealed opens to exactly its claims, and only
//! with its own binding (purpose, name, origin); and any change to its
//! characters makes it refused.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use oidc_edge::seal::keyring::{Key, KeyRing};
use oidc_edge::seal::sealed_cookie::{
    open, seal, state_hash, Binding, FlowClaims, Purpose, Validity, MAX_RETURN_LEN,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// A value as a browser could send it.
    value: &'a str,
    name: &'a str,
    origin: &'a str,
    session: bool,
    state: &'a str,
    node: &'a str,
    return_to: &'a str,
    issued_at_s: u32,
    lifetime_s: u16,
    seq: u32,
    restarts: u8,
    /// Where to change the sealed value, and to what.
    at: u16,
    to: u8,
}

fuzz_target!(|input: Input| {
    let (Ok(k1), Ok(k2)) = (Key::new("k1", &[7u8; 32]), Key::new("k2", &[9u8; 32])) else {
        return;
    };
    let Ok(ring) = KeyRing::new(vec![k1.clone(), k2]) else {
        return;
    };
    let purpose = if input.session { Purpose::Session } else { Purpose::Flow };
    let binding = Binding {
        purpose,
        name: input.name,
        origin: input.origin,
    };
    let any_time = Validity {
        now_ms: u64::from(input.issued_at_s) * 1000,
        max_lifetime_s: u64::MAX,
    };
    // 1. Made without the key: never authentic.
    assert!(
        open(&ring, &binding, input.value, &any_time).is_err(),
        "a value the fuzzer made opened: {:?}",
        input.value
    );

    // 2. Sealed by us: opens to exactly its claims.
    if input.node.len() > 255 || input.return_to.len() > MAX_RETURN_LEN {
        return;
    }
    let issued_at = u64::from(input.issued_at_s) * 1000;
    let claims = FlowClaims {
        node: input.node.to_string(),
        issued_at,
        expires_at: u64::from(input.issued_at_s) + u64::from(input.lifetime_s) + 1,
        seq: input.seq,
        restarts: input.restarts,
        return_to: input.return_to.to_string(),
    };
    let hash = state_hash(input.state);
    let sealed = seal(&k1, &binding, &hash, &claims);
    let now = Validity {
        now_ms: issued_at,
        max_lifetime_s: u64::from(input.lifetime_s) + 1,
    };
    match open(&ring, &binding, &sealed, &now) {
        Ok((got, got_hash)) => {
            assert_eq!(got, claims);
            assert_eq!(got_hash, hash);
        }
        Err(e) => {
            // Only a cookie too large for a browser is refused.
            assert!(
                binding.name.len() + sealed.len() + 1 > oidc_edge::seal::sealed_cookie::MAX_COOKIE_BYTES,
                "our own cookie was refused: {e:?}"
            );
            return;
        }
    }

    // 3. Its binding is part of it: another purpose, name or origin fails.
    let other_purpose = if input.session { Purpose::Flow } else { Purpose::Session };
    for other in [
        Binding { purpose: other_purpose, ..binding },
        Binding { name: "__Host-oidc-edge-other", ..binding },
        Binding { origin: "https://evil.example", ..binding },
    ] {
        if other.name != binding.name || other.origin != binding.origin || other.purpose != binding.purpose {
            assert!(open(&ring, &other, &sealed, &now).is_err(), "opened under {other:?}");
        }
    }

    // 4. One character changed (to another base64url character): refused.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = sealed.clone().into_bytes();
    let at = usize::from(input.at) % bytes.len();
    let to = ALPHABET[usize::from(input.to) % ALPHABET.len()];
    if bytes[at] != to {
        bytes[at] = to;
        let changed = String::from_utf8(bytes).expect("ascii");
        assert!(
            open(&ring, &binding, &changed, &now).is_err(),
            "a changed cookie opened: {changed}"
        );
    }
});
