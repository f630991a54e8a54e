//! Sealed cookies: which upstream node started a login (or owns a session),
//! sealed so any node's Envoy can check it and no client can read or change
//! it.
//!
//! One flow cookie per login, named after a hash of the login's `state`, so
//! parallel logins (two tabs) never overwrite each other and the callback
//! finds its cookie without scanning. One session cookie per browser.
//!
//! Value: base64url (no padding) of
//!
//! ```text
//! version(1)=2 | kid_len(1) | kid | siv(16) | ciphertext
//! plaintext = issued_at_ms(8) | expires_at_s(8) | seq(4) | restarts(1)
//!           | state_hash(16) | node_len(1) | node "ip:port"
//!           | return_len(2) | return path          (nothing after it)
//! siv, ciphertext = AES-SIV (RFC 5297, AES-256) under the key's seal key,
//!   associated data, one S2V component each:
//!   ["oidc-edge seal v2", purpose ("flow" | "session"), cookie name,
//!    external origin, version | kid_len | kid]
//! ```
//!
//! Why AES-SIV: it is deterministic authenticated encryption, so it stays
//! safe without unique inputs. Two cookies sealed from the same plaintext
//! and associated data are equal (which reveals only that they are equal);
//! any other pair shares nothing. The previous construction derived its
//! keystream nonce from the cookie name and the issue time in milliseconds,
//! and two session cookies issued in the same millisecond shared a
//! keystream. Nothing here depends on the clock, a counter or randomness
//! being unique.
//!
//! The associated data is a vector: S2V MACs each component separately, so
//! the boundaries are unambiguous (the flaw behind CVE-2023-35941 in Envoy's
//! oauth2 filter). The purpose keeps a flow cookie from passing as a session
//! cookie; the name keeps a cookie from moving to another flow; the origin
//! keeps a cookie minted for one external origin from being used at
//! another.
//!
//! The state is checked against `state_hash` after decryption, so a cookie
//! can be verified before the state is known (a form-post callback carries
//! the state in a body that arrives after routing is decided), and a valid
//! cookie of another login is told apart from a forged one.
//!
//! Why encrypt the node rather than name nodes by opaque ids: Envoy's
//! endpoints are dynamic (EDS, autoscaling), so a stable id table would need
//! configuration kept in sync with the cluster; the sealed cookie is
//! self-contained and hides internal addresses.

use crate::seal::keyring::{Key, KeyRing};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Browsers cap a cookie (name, value and attributes) at 4096 bytes.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// Longest return path stored. Longer ones are not stored (a restart goes
/// to `/`): each login's cookie stays small, so a page that starts many
/// logins cannot fill a browser's cookie jar past Envoy's header limit.
pub const MAX_RETURN_LEN: usize = 256;

/// How far in the future an issue time may lie: the Envoys of a fleet share
/// keys but not clocks.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;

const VERSION: u8 = 2;
const LABEL: &[u8] = b"oidc-edge seal v2";
const SIV_LEN: usize = 16;
/// Length of the state hash a flow cookie carries.
pub const STATE_HASH_LEN: usize = 16;

/// The first bytes of SHA-256(`state`): what a flow cookie binds.
pub fn state_hash(state: &str) -> [u8; STATE_HASH_LEN] {
    let d = Sha256::digest(state.as_bytes());
    let mut h = [0u8; STATE_HASH_LEN];
    for (o, i) in h.iter_mut().zip(d) {
        *o = i;
    }
    h
}

/// What a sealed cookie is for: part of the associated data, so one kind
/// never passes for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A login in progress (pins its callback).
    Flow,
    /// A logged-in browser (pins its requests, `affinity: "session"`).
    Session,
}

impl Purpose {
    /// The label this purpose contributes to the associated data.
    pub fn label(self) -> &'static [u8] {
        match self {
            Purpose::Flow => b"flow",
            Purpose::Session => b"session",
        }
    }
}

/// Everything a cookie is bound to besides its own content.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Flow or session.
    pub purpose: Purpose,
    /// The cookie's name.
    pub name: &'a str,
    /// The external origin the browser addressed (`https://host[:port]`).
    pub origin: &'a str,
}

/// What a sealed cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowClaims {
    /// The upstream node (`ip:port`) that started the login.
    pub node: String,
    /// Milliseconds since the Unix epoch when the cookie was issued.
    pub issued_at: u64,
    /// Seconds since the Unix epoch after which the cookie is refused.
    pub expires_at: u64,
    /// Order of this login among the logins in progress in one browser:
    /// one more than the highest `seq` of the flow cookies the browser sent
    /// when it started. Unlike the clock, two logins started one after the
    /// other can never tie.
    pub seq: u32,
    /// How many times this login was restarted after its node vanished.
    pub restarts: u8,
    /// Path and query of the request that started the login, to restart it.
    pub return_to: String,
}

/// Why a sealed cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not base64url, truncated, an unknown version, or bytes after the record.
    Malformed,
    /// Over the browser limit: not something we issued.
    TooLarge,
    /// Sealed by a key that is no longer (or never was) in the ring.
    UnknownKey,
    /// Not authentic: changed, forged, moved to another name, origin or purpose.
    BadSignature,
    /// Past its expiry.
    Expired,
    /// Issued further in the future than the clock skew allows.
    NotYetValid,
    /// Valid for longer than the configured lifetime.
    LifetimeTooLong,
    /// Authentic, but issued for another login (another `state`).
    WrongState,
}

/// The time a cookie is checked against, and the longest lifetime allowed.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// The configured lifetime, in seconds: a cookie valid for longer was
    /// not issued under this configuration.
    pub max_lifetime_s: u64,
}

/// The cookie name for a flow: `prefix` and 16 base64url characters (96 bits)
/// of SHA-256(state).
pub fn cookie_name(prefix: &str, state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    let mut name = String::with_capacity(prefix.len() + 16);
    name.push_str(prefix);
    name.push_str(&URL_SAFE_NO_PAD.encode(digest.get(..12).unwrap_or_default()));
    name
}

fn header(kid: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(2 + kid.len());
    h.push(VERSION);
    h.push(kid.len() as u8);
    h.extend_from_slice(kid);
    h
}

fn associated_data<'a>(b: &Binding<'a>, header: &'a [u8]) -> [&'a [u8]; 5] {
    [
        LABEL,
        b.purpose.label(),
        b.name.as_bytes(),
        b.origin.as_bytes(),
        header,
    ]
}

/// Seals `claims` for the cookie described by `binding`; `state_hash` is
/// the login's [`state_hash`] (zeros for a session cookie).
pub fn seal(
    key: &Key,
    binding: &Binding,
    state_hash: &[u8; STATE_HASH_LEN],
    claims: &FlowClaims,
) -> String {
    let node = claims.node.as_bytes();
    let node = node.get(..node.len().min(255)).unwrap_or_default();
    let ret = claims.return_to.as_bytes();
    let ret = if ret.len() > MAX_RETURN_LEN {
        &b"/"[..]
    } else {
        ret
    };
    let mut pt = Vec::with_capacity(41 + node.len() + ret.len());
    pt.extend_from_slice(&claims.issued_at.to_be_bytes());
    pt.extend_from_slice(&claims.expires_at.to_be_bytes());
    pt.extend_from_slice(&claims.seq.to_be_bytes());
    pt.push(claims.restarts);
    pt.extend_from_slice(state_hash);
    pt.push(node.len() as u8);
    pt.extend_from_slice(node);
    pt.extend_from_slice(&(ret.len() as u16).to_be_bytes());
    pt.extend_from_slice(ret);
    let head = header(key.id.as_bytes());
    let sealed = key.seal(&associated_data(binding, &head), &pt);
    let mut out = head;
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// A cursor over decoded bytes.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CookieError> {
        let (head, tail) = self.b.split_at_checked(n).ok_or(CookieError::Malformed)?;
        self.b = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CookieError> {
        self.take(N)?.try_into().map_err(|_| CookieError::Malformed)
    }

    fn u8(&mut self) -> Result<u8, CookieError> {
        Ok(u8::from_be_bytes(self.array()?))
    }
}

/// Opens and checks a sealed cookie. Order: size, encoding, version, key,
/// authenticity (AES-SIV, constant-time tag check), record layout, then
/// times; nothing from the cookie is trusted before it proved authentic.
/// Returns the claims and the state hash to compare with the login's
/// state once it is known ([`open_flow`] does both).
///
/// A session cookie's opening that passed everything but the times is
/// remembered by the ring ([`crate::seal::opened`]): the same value under
/// the same binding is not decrypted again, and its times are checked on
/// every use.
pub fn open(
    ring: &KeyRing,
    binding: &Binding,
    value: &str,
    validity: &Validity,
) -> Result<(FlowClaims, [u8; STATE_HASH_LEN]), CookieError> {
    if binding.name.len() + value.len() + 1 > MAX_COOKIE_BYTES {
        return Err(CookieError::TooLarge);
    }
    // Only session cookies are remembered: a browser sends the same one on
    // every request, while a flow cookie is used once, at its callback.
    let remember = binding.purpose == Purpose::Session;
    let purpose = binding.purpose.label();
    let known = if remember {
        ring.opened().get(purpose, binding, value)
    } else {
        None
    };
    let (claims, hash) = match known {
        Some(known) => known,
        None => {
            let (claims, hash) = open_authentic(ring, binding, value)?;
            if remember {
                ring.opened().put(purpose, binding, value, &claims, hash);
            }
            (claims, hash)
        }
    };
    if claims.issued_at > validity.now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return Err(CookieError::NotYetValid);
    }
    if validity.now_ms / 1000 >= claims.expires_at {
        return Err(CookieError::Expired);
    }
    if claims.expires_at.saturating_sub(claims.issued_at / 1000) > validity.max_lifetime_s {
        return Err(CookieError::LifetimeTooLong);
    }
    Ok((claims, hash))
}

/// Everything [`open`] checks except the times.
fn open_authentic(
    ring: &KeyRing,
    binding: &Binding,
    value: &str,
) -> Result<(FlowClaims, [u8; STATE_HASH_LEN]), CookieError> {
    let raw = URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| CookieError::Malformed)?;
    let mut r = Reader { b: &raw };
    if r.u8()? != VERSION {
        return Err(CookieError::Malformed);
    }
    let kid_len = usize::from(r.u8()?);
    let kid = r.take(kid_len)?;
    if r.b.len() < SIV_LEN {
        return Err(CookieError::Malformed);
    }
    let head = header(kid);
    let key = ring.get(kid).ok_or(CookieError::UnknownKey)?;
    let pt = key
        .open(&associated_data(binding, &head), r.b)
        .ok_or(CookieError::BadSignature)?;
    let mut p = Reader { b: &pt };
    let issued_at = u64::from_be_bytes(p.array()?);
    let expires_at = u64::from_be_bytes(p.array()?);
    let seq = u32::from_be_bytes(p.array()?);
    let restarts = p.u8()?;
    let hash: [u8; STATE_HASH_LEN] = p.array()?;
    let node_len = usize::from(p.u8()?);
    let node = p.take(node_len)?;
    let ret_len = usize::from(u16::from_be_bytes(p.array()?));
    let ret = p.take(ret_len)?;
    if !p.b.is_empty() {
        return Err(CookieError::Malformed);
    }
    let claims = FlowClaims {
        node: String::from_utf8(node.to_vec()).map_err(|_| CookieError::Malformed)?,
        issued_at,
        expires_at,
        seq,
        restarts,
        return_to: String::from_utf8(ret.to_vec()).map_err(|_| CookieError::Malformed)?,
    };
    Ok((claims, hash))
}

/// Opens a flow cookie of the login with `state`: [`open`], then the state.
pub fn open_flow(
    ring: &KeyRing,
    binding: &Binding,
    state: &str,
    value: &str,
    validity: &Validity,
) -> Result<FlowClaims, CookieError> {
    let (claims, hash) = open(ring, binding, value, validity)?;
    if hash != state_hash(state) {
        return Err(CookieError::WrongState);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn ring(ids: &[(&str, u8)]) -> KeyRing {
        KeyRing::new(
            ids.iter()
                .map(|(id, b)| Key::new(id, &[*b; 32]).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn claims() -> FlowClaims {
        FlowClaims {
            node: "10.1.2.3:8080".into(),
            issued_at: 1_000_000,
            expires_at: 1_600,
            seq: 3,
            restarts: 0,
            return_to: "/account?tab=1".into(),
        }
    }

    const STATE: &str = "af0ifjsldkj";
    const ORIGIN: &str = "https://app.example.com";

    fn at(now_ms: u64) -> Validity {
        Validity {
            now_ms,
            max_lifetime_s: 600,
        }
    }

    fn flow(name: &str) -> Binding<'_> {
        Binding {
            purpose: Purpose::Flow,
            name,
            origin: ORIGIN,
        }
    }

    fn sealed() -> (KeyRing, String, String) {
        let r = ring(&[("k1", 1)]);
        let name = cookie_name("__Host-oidc-edge-", STATE);
        let v = seal(r.signing(), &flow(&name), &state_hash(STATE), &claims());
        (r, name, v)
    }

    #[test]
    fn round_trip_and_the_node_is_not_readable() {
        let (r, name, v) = sealed();
        assert_eq!(
            open_flow(&r, &flow(&name), STATE, &v, &at(1_100_000)),
            Ok(claims())
        );
        let raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        assert!(
            !raw.windows(8).any(|w| w == b"10.1.2.3"),
            "node address visible in the cookie"
        );
        assert!(
            v.len() + name.len() < 200,
            "cookie stays small: {}",
            v.len()
        );
    }

    #[test]
    fn a_remembered_cookie_still_expires_and_forgeries_are_not_remembered() {
        let r = ring(&[("k1", 1)]);
        let session = Binding {
            purpose: Purpose::Session,
            name: "__Host-oidc-edge-session",
            origin: ORIGIN,
        };
        let v = seal(r.signing(), &session, &[0; STATE_HASH_LEN], &claims());
        let mut forged = v.clone().into_bytes();
        forged[10] = if forged[10] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(open(&r, &session, &forged, &at(1_100_000)).is_err());
        assert!(r.opened().is_empty(), "a refused cookie was remembered");
        assert_eq!(
            open(&r, &session, &v, &at(1_100_000)).map(|(c, _)| c),
            Ok(claims())
        );
        assert_eq!(r.opened().len(), 1);
        // Remembered, and still checked against the clock on every use.
        let when = |now_ms| open(&r, &session, &v, &at(now_ms)).map(|_| ());
        assert_eq!(when(1_000_000 + 700_000), Err(CookieError::Expired));
        assert_eq!(when(1_000_000 - 120_000), Err(CookieError::NotYetValid));
        assert_eq!(when(1_100_000), Ok(()));
        let short = Validity {
            now_ms: 1_100_000,
            max_lifetime_s: 60,
        };
        assert_eq!(
            open(&r, &session, &v, &short).map(|_| ()),
            Err(CookieError::LifetimeTooLong)
        );
        // Remembered for this binding only.
        let as_flow = Binding {
            purpose: Purpose::Flow,
            ..session
        };
        let elsewhere = Binding {
            origin: "https://evil.example.com",
            ..session
        };
        let renamed = Binding {
            name: "__Host-oidc-edge-sessioN",
            ..session
        };
        for b in [as_flow, elsewhere, renamed] {
            assert_eq!(
                open(&r, &b, &v, &at(1_100_000)).map(|_| ()),
                Err(CookieError::BadSignature)
            );
        }
        // Flow cookies are used once: never remembered.
        let (fr, name, fv) = sealed();
        assert_eq!(
            open_flow(&fr, &flow(&name), STATE, &fv, &at(1_100_000)),
            Ok(claims())
        );
        assert!(fr.opened().is_empty());
    }

    #[test]
    fn equal_inputs_share_nothing_but_equality() {
        // Two session cookies for different nodes, sealed in the same
        // millisecond under one key with the one fixed session name: the
        // previous construction gave them the same keystream, so the XOR of
        // the ciphertexts was the XOR of the node addresses.
        let r = ring(&[("k1", 1)]);
        let b = Binding {
            purpose: Purpose::Session,
            name: "__Host-oidc-edge-session",
            origin: ORIGIN,
        };
        let a = FlowClaims {
            node: "10.0.0.1:8080".into(),
            ..claims()
        };
        let c = FlowClaims {
            node: "10.0.0.2:8080".into(),
            ..claims()
        };
        let va = URL_SAFE_NO_PAD
            .decode(seal(r.signing(), &b, &[0; 16], &a))
            .unwrap();
        let vc = URL_SAFE_NO_PAD
            .decode(seal(r.signing(), &b, &[0; 16], &c))
            .unwrap();
        let xor: Vec<u8> = va.iter().zip(&vc).map(|(x, y)| x ^ y).collect();
        let nodes: Vec<u8> = a
            .node
            .bytes()
            .zip(c.node.bytes())
            .map(|(x, y)| x ^ y)
            .collect();
        assert!(
            !xor.windows(nodes.len()).any(|w| w == nodes.as_slice()),
            "ciphertexts leak the XOR of the nodes"
        );
        let differing = xor.iter().skip(4).filter(|b| **b != 0).count();
        assert!(
            differing > xor.len() / 2,
            "one plaintext byte changed, most ciphertext bytes must: {differing}/{}",
            xor.len()
        );
        assert_eq!(
            seal(r.signing(), &b, &[0; 16], &a),
            seal(r.signing(), &b, &[0; 16], &a),
            "deterministic: no nonce to get wrong"
        );
    }

    #[test]
    fn names_differ_per_state_and_fit_the_host_prefix() {
        let a = cookie_name("__Host-oidc-edge-", "s1");
        assert_ne!(a, cookie_name("__Host-oidc-edge-", "s2"));
        assert!(a.starts_with("__Host-oidc-edge-") && a.len() == 17 + 16);
    }

    #[test]
    fn tampering_table() {
        let (r, name, v) = sealed();
        let raw = URL_SAFE_NO_PAD.decode(&v).unwrap();
        let flip = |i: usize| {
            let mut b = raw.clone();
            b[i] ^= 0x01;
            URL_SAFE_NO_PAD.encode(b)
        };
        let last = raw.len() - 1;
        let other = cookie_name("__Host-oidc-edge-", "other");
        let other_value = seal(r.signing(), &flow(&other), &state_hash("other"), &claims());
        let reseal = |c: FlowClaims| seal(r.signing(), &flow(&name), &state_hash(STATE), &c);
        let with_trailing = {
            // An authentic record with a byte after it: sealed by hand.
            let mut pt = URL_SAFE_NO_PAD.decode(&v).unwrap();
            let head = header(b"k1");
            let inner = r
                .signing()
                .open(&associated_data(&flow(&name), &head), &pt[head.len()..])
                .unwrap();
            let mut longer = inner.clone();
            longer.push(0);
            pt.truncate(head.len());
            pt.extend(
                r.signing()
                    .seal(&associated_data(&flow(&name), &head), &longer),
            );
            URL_SAFE_NO_PAD.encode(pt)
        };
        type Row<'a> = (
            &'a str,
            Binding<'a>,
            &'a str,
            String,
            u64,
            Result<(), CookieError>,
        );
        let rows: Vec<Row> = vec![
            ("valid", flow(&name), STATE, v.clone(), 1_100_000, Ok(())),
            (
                "flipped tag byte",
                flow(&name),
                STATE,
                flip(5),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "flipped ciphertext byte",
                flow(&name),
                STATE,
                flip(last),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "another key id",
                flow(&name),
                STATE,
                flip(3),
                1_100_000,
                Err(CookieError::UnknownKey),
            ),
            (
                "another flow's cookie under its own name, this flow's state",
                flow(&other),
                STATE,
                other_value.clone(),
                1_100_000,
                Err(CookieError::WrongState),
            ),
            (
                "cookie of another flow under this name",
                flow(&name),
                STATE,
                other_value,
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "this cookie under another name",
                flow("__Host-oidc-edge-x"),
                STATE,
                v.clone(),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "minted for another external origin",
                Binding {
                    origin: "https://other.example.com",
                    ..flow(&name)
                },
                STATE,
                v.clone(),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "same origin over http",
                Binding {
                    origin: "http://app.example.com",
                    ..flow(&name)
                },
                STATE,
                v.clone(),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "a flow cookie presented as a session cookie",
                Binding {
                    purpose: Purpose::Session,
                    ..flow(&name)
                },
                STATE,
                v.clone(),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "same cookie, another state",
                flow(&name),
                "other",
                v.clone(),
                1_100_000,
                Err(CookieError::WrongState),
            ),
            (
                "expired",
                flow(&name),
                STATE,
                v.clone(),
                1_600_000,
                Err(CookieError::Expired),
            ),
            (
                "issued beyond the clock skew in the future",
                flow(&name),
                STATE,
                v.clone(),
                1_000_000 - MAX_CLOCK_SKEW_MS - 1,
                Err(CookieError::NotYetValid),
            ),
            (
                "issued within the clock skew in the future",
                flow(&name),
                STATE,
                v.clone(),
                1_000_000 - MAX_CLOCK_SKEW_MS,
                Ok(()),
            ),
            (
                "valid for longer than the configured lifetime",
                flow(&name),
                STATE,
                reseal(FlowClaims {
                    expires_at: 1_000 + 601,
                    ..claims()
                }),
                1_100_000,
                Err(CookieError::LifetimeTooLong),
            ),
            (
                "an authentic record with bytes after it",
                flow(&name),
                STATE,
                with_trailing,
                1_100_000,
                Err(CookieError::Malformed),
            ),
            (
                "unknown key",
                flow(&name),
                STATE,
                seal(
                    &Key::new("k9", &[9; 32]).unwrap(),
                    &flow(&name),
                    &state_hash(STATE),
                    &claims(),
                ),
                1_100_000,
                Err(CookieError::UnknownKey),
            ),
            (
                "truncated tag",
                flow(&name),
                STATE,
                URL_SAFE_NO_PAD.encode(&raw[..4 + 15]),
                1_100_000,
                Err(CookieError::Malformed),
            ),
            (
                "truncated by one byte",
                flow(&name),
                STATE,
                URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]),
                1_100_000,
                Err(CookieError::BadSignature),
            ),
            (
                "truncated to nothing",
                flow(&name),
                STATE,
                String::new(),
                1_100_000,
                Err(CookieError::Malformed),
            ),
            (
                "standard base64 with padding",
                flow(&name),
                STATE,
                STANDARD.encode(&raw),
                1_100_000,
                Err(CookieError::Malformed),
            ),
            (
                "another version",
                flow(&name),
                STATE,
                flip(0),
                1_100_000,
                Err(CookieError::Malformed),
            ),
            (
                "10 KB",
                flow(&name),
                STATE,
                "A".repeat(10_000),
                1_100_000,
                Err(CookieError::TooLarge),
            ),
        ];
        for (why, b, state, value, now, want) in rows {
            assert_eq!(
                open_flow(&r, &b, state, &value, &at(now)).map(|_| ()),
                want,
                "{why}"
            );
        }
    }

    #[test]
    fn any_key_in_the_ring_verifies() {
        let old = ring(&[("k1", 1)]);
        let name = cookie_name("p-", STATE);
        let v = seal(old.signing(), &flow(&name), &state_hash(STATE), &claims());
        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        assert!(open_flow(&rotated, &flow(&name), STATE, &v, &at(1_100_000)).is_ok());
        let dropped = ring(&[("k2", 2)]);
        assert_eq!(
            open_flow(&dropped, &flow(&name), STATE, &v, &at(1_100_000)),
            Err(CookieError::UnknownKey)
        );
    }

    #[test]
    fn long_return_paths_are_not_stored() {
        let (r, name, _) = sealed();
        let long = FlowClaims {
            return_to: format!("/{}", "a".repeat(MAX_RETURN_LEN)),
            ..claims()
        };
        let v = seal(r.signing(), &flow(&name), &state_hash(STATE), &long);
        let opened = open_flow(&r, &flow(&name), STATE, &v, &at(1_100_000)).unwrap();
        assert_eq!(opened.return_to, "/");
        assert!(v.len() < 200, "{}", v.len());
    }
}
