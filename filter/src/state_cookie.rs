//! The signed login-flow cookie: which upstream node started a login, sealed
//! so any node's Envoy can check it and no client can read or change it.
//!
//! One cookie per flow, named after a hash of the flow's `state`, so parallel
//! logins (two tabs) never overwrite each other and the callback finds its
//! cookie without scanning.
//!
//! Value: base64url (no padding) of
//!
//! ```text
//! version(1)=1 | kid_len(1) | kid | issued_at(8) | expires_at(8) | restarts(1)
//!   | state_hash(16) | ct_len(2) | ct | tag(32)
//! state_hash = first 16 bytes of SHA-256(state)
//! ct  = plaintext XOR keystream(enc key, nonce = cookie name ‖ issued_at)
//! pt  = node_len(1) | node "ip:port" | return_len(2) | return path
//! tag = HMAC-SHA256(mac key, len-prefixed["oidc-edge flow v1", cookie name,
//!                                          everything before tag])
//! ```
//!
//! The state is checked after the MAC, against `state_hash`: so a cookie can
//! be verified before the state is known (a form-post callback carries the
//! state in a body that arrives after routing is decided), and a valid
//! cookie of another flow is told apart from a forged one.
//!
//! Why encrypt the node rather than name nodes by opaque ids: Envoy's
//! endpoints are dynamic (EDS, autoscaling), so a stable id table would need
//! configuration kept in sync with the cluster; encrypt-then-MAC keeps the
//! cookie self-contained and hides internal addresses, with the nonce unique
//! per flow because the name derives from the flow's unique `state`.
//! Every field is length-prefixed or fixed-size, so the MAC input is
//! unambiguous (the flaw behind CVE-2023-35941 in Envoy's oauth2 filter).

use crate::keyring::{Key, KeyRing};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Browsers cap a cookie (name, value and attributes) at 4096 bytes.
pub const MAX_COOKIE_BYTES: usize = 4096;

/// Longest return path stored (longer ones are not stored: restart goes to `/`).
pub const MAX_RETURN_LEN: usize = 1024;

const VERSION: u8 = 1;
const LABEL: &[u8] = b"oidc-edge flow v1";
const TAG_LEN: usize = 32;
const STATE_HASH_LEN: usize = 16;

fn state_hash(state: &str) -> [u8; STATE_HASH_LEN] {
    let d = Sha256::digest(state.as_bytes());
    let mut h = [0u8; STATE_HASH_LEN];
    for (o, i) in h.iter_mut().zip(d) {
        *o = i;
    }
    h
}

/// What a flow cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowClaims {
    /// The upstream node (`ip:port`) that started the login.
    pub node: String,
    /// Milliseconds since the Unix epoch when the flow started (fine
    /// enough to order two logins started in the same second).
    pub issued_at: u64,
    /// Seconds since the Unix epoch after which the cookie is refused.
    pub expires_at: u64,
    /// How many times this login was restarted after its node vanished.
    pub restarts: u8,
    /// Path and query of the request that started the login, to restart it.
    pub return_to: String,
}

/// Why a flow cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieError {
    /// Not base64url, truncated, or an unknown version.
    Malformed,
    /// Over the browser limit: not something we issued.
    TooLarge,
    /// Signed by a key that is no longer (or never was) in the ring.
    UnknownKey,
    /// The MAC does not match: changed, forged, or moved to another name.
    BadSignature,
    /// Past its expiry.
    Expired,
    /// Authentic, but issued for another login (another `state`).
    WrongState,
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

fn nonce(name: &str, issued_at: u64) -> Vec<u8> {
    let mut n = Vec::with_capacity(name.len() + 8);
    n.extend_from_slice(name.as_bytes());
    n.extend_from_slice(&issued_at.to_be_bytes());
    n
}

/// Seals `claims` for the cookie `name` of the flow with `state`.
pub fn seal(key: &Key, name: &str, state: &str, claims: &FlowClaims) -> String {
    let node = claims.node.as_bytes();
    let node = node.get(..node.len().min(255)).unwrap_or_default();
    let ret = claims.return_to.as_bytes();
    let ret = if ret.len() > MAX_RETURN_LEN {
        &b"/"[..]
    } else {
        ret
    };
    let mut pt = Vec::with_capacity(3 + node.len() + ret.len());
    pt.push(node.len() as u8);
    pt.extend_from_slice(node);
    pt.extend_from_slice(&(ret.len() as u16).to_be_bytes());
    pt.extend_from_slice(ret);
    key.xor_keystream(&nonce(name, claims.issued_at), &mut pt);

    let kid = key.id.as_bytes();
    let mut body = Vec::with_capacity(21 + kid.len() + pt.len() + TAG_LEN);
    body.push(VERSION);
    body.push(kid.len() as u8);
    body.extend_from_slice(kid);
    body.extend_from_slice(&claims.issued_at.to_be_bytes());
    body.extend_from_slice(&claims.expires_at.to_be_bytes());
    body.push(claims.restarts);
    body.extend_from_slice(&state_hash(state));
    body.extend_from_slice(&(pt.len() as u16).to_be_bytes());
    body.extend_from_slice(&pt);
    let tag = key.sign(&[LABEL, name.as_bytes(), &body]);
    body.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(body)
}

/// A cursor over the decoded cookie.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CookieError> {
        let (head, tail) = self.b.split_at_checked(n).ok_or(CookieError::Malformed)?;
        self.b = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, CookieError> {
        self.take(1)?.first().copied().ok_or(CookieError::Malformed)
    }
    fn u16(&mut self) -> Result<usize, CookieError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes(b.try_into().map_err(|_| CookieError::Malformed)?) as usize)
    }
    fn u64(&mut self) -> Result<u64, CookieError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(
            b.try_into().map_err(|_| CookieError::Malformed)?,
        ))
    }
}

/// Reads the issue time without verifying anything: only for choosing which
/// stale cookies to clear, never for a decision about a request.
pub fn peek_issued_at(value: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(value).ok()?;
    let mut r = Reader { b: &raw };
    r.u8().ok()?;
    let kid_len = r.u8().ok()? as usize;
    r.take(kid_len).ok()?;
    r.u64().ok()
}

/// Opens and checks a flow cookie for the flow with `state`. Order: size,
/// encoding, key, MAC (constant time), expiry, state; nothing from the
/// cookie is trusted before the MAC passed.
pub fn open(
    ring: &KeyRing,
    name: &str,
    state: &str,
    value: &str,
    now: u64,
) -> Result<FlowClaims, CookieError> {
    let (claims, hash) = open_any(ring, name, value, now)?;
    if hash != state_hash(state) {
        return Err(CookieError::WrongState);
    }
    Ok(claims)
}

/// Opens and checks a flow cookie whose flow's `state` is not known yet;
/// returns the claims and the state hash to compare once it is.
pub fn open_any(
    ring: &KeyRing,
    name: &str,
    value: &str,
    now: u64,
) -> Result<(FlowClaims, [u8; STATE_HASH_LEN]), CookieError> {
    if name.len() + value.len() + 1 > MAX_COOKIE_BYTES {
        return Err(CookieError::TooLarge);
    }
    let raw = URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| CookieError::Malformed)?;
    let signed_len = raw
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(CookieError::Malformed)?;
    let (body, tag) = raw
        .split_at_checked(signed_len)
        .ok_or(CookieError::Malformed)?;
    let mut r = Reader { b: body };
    if r.u8()? != VERSION {
        return Err(CookieError::Malformed);
    }
    let kid_len = r.u8()? as usize;
    let kid = r.take(kid_len)?;
    let issued_at = r.u64()?;
    let expires_at = r.u64()?;
    let restarts = r.u8()?;
    let hash: [u8; STATE_HASH_LEN] = r
        .take(STATE_HASH_LEN)?
        .try_into()
        .map_err(|_| CookieError::Malformed)?;
    let ct_len = r.u16()?;
    let ct = r.take(ct_len)?;
    if !r.b.is_empty() {
        return Err(CookieError::Malformed);
    }
    let key = ring.get(kid).ok_or(CookieError::UnknownKey)?;
    if !key.verify(&[LABEL, name.as_bytes(), body], tag) {
        return Err(CookieError::BadSignature);
    }
    if now >= expires_at {
        return Err(CookieError::Expired);
    }
    let mut pt = ct.to_vec();
    key.xor_keystream(&nonce(name, issued_at), &mut pt);
    let mut p = Reader { b: &pt };
    let node_len = p.u8()? as usize;
    let node = p.take(node_len)?;
    let ret_len = p.u16()?;
    let ret = p.take(ret_len)?;
    let claims = FlowClaims {
        node: String::from_utf8(node.to_vec()).map_err(|_| CookieError::Malformed)?,
        issued_at,
        expires_at,
        restarts,
        return_to: String::from_utf8(ret.to_vec()).map_err(|_| CookieError::Malformed)?,
    };
    Ok((claims, hash))
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
            issued_at: 1_000,
            expires_at: 1_600,
            restarts: 0,
            return_to: "/account?tab=1".into(),
        }
    }

    const STATE: &str = "af0ifjsldkj";

    fn sealed() -> (KeyRing, String, String) {
        let r = ring(&[("k1", 1)]);
        let name = cookie_name("__Host-oidc-edge-", STATE);
        let v = seal(r.signing(), &name, STATE, &claims());
        (r, name, v)
    }

    #[test]
    fn round_trip_and_the_node_is_not_readable() {
        let (r, name, v) = sealed();
        assert_eq!(open(&r, &name, STATE, &v, 1_100), Ok(claims()));
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
        let other_state_value = seal(
            r.signing(),
            &cookie_name("__Host-oidc-edge-", "other"),
            "other",
            &claims(),
        );
        let rows: Vec<(&str, String, &str, String, u64, Result<(), CookieError>)> = vec![
            ("valid", name.clone(), STATE, v.clone(), 1_100, Ok(())),
            (
                "flipped MAC byte",
                name.clone(),
                STATE,
                flip(last),
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "payload edit: expiry",
                name.clone(),
                STATE,
                flip(19),
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "payload edit: restarts",
                name.clone(),
                STATE,
                flip(20),
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "payload edit: ciphertext length",
                name.clone(),
                STATE,
                flip(38),
                1_100,
                Err(CookieError::Malformed),
            ),
            (
                "payload edit: state hash",
                name.clone(),
                STATE,
                flip(25),
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "another flow's cookie under its own name, this flow's state",
                cookie_name("__Host-oidc-edge-", "other"),
                STATE,
                seal(
                    r.signing(),
                    &cookie_name("__Host-oidc-edge-", "other"),
                    "other",
                    &claims(),
                ),
                1_100,
                Err(CookieError::WrongState),
            ),
            (
                "payload edit: ciphertext",
                name.clone(),
                STATE,
                flip(last - 33),
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "cookie of another flow under this name",
                name.clone(),
                STATE,
                other_state_value,
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "this cookie under another name",
                "__Host-oidc-edge-x".into(),
                STATE,
                v.clone(),
                1_100,
                Err(CookieError::BadSignature),
            ),
            (
                "same cookie, another state",
                name.clone(),
                "other",
                v.clone(),
                1_100,
                Err(CookieError::WrongState),
            ),
            (
                "expired",
                name.clone(),
                STATE,
                v.clone(),
                1_600,
                Err(CookieError::Expired),
            ),
            (
                "unknown key",
                name.clone(),
                STATE,
                seal(&Key::new("k9", &[9; 32]).unwrap(), &name, STATE, &claims()),
                1_100,
                Err(CookieError::UnknownKey),
            ),
            (
                "truncated MAC",
                name.clone(),
                STATE,
                URL_SAFE_NO_PAD.encode(&raw[..raw.len() - 1]),
                1_100,
                Err(CookieError::Malformed),
            ),
            (
                "truncated to nothing",
                name.clone(),
                STATE,
                String::new(),
                1_100,
                Err(CookieError::Malformed),
            ),
            (
                "standard base64 with padding",
                name.clone(),
                STATE,
                STANDARD.encode(&raw),
                1_100,
                Err(CookieError::Malformed),
            ),
            (
                "another version",
                name.clone(),
                STATE,
                flip(0),
                1_100,
                Err(CookieError::Malformed),
            ),
            (
                "10 KB",
                name.clone(),
                STATE,
                "A".repeat(10_000),
                1_100,
                Err(CookieError::TooLarge),
            ),
        ];
        for (why, n, state, value, now, want) in rows {
            assert_eq!(open(&r, &n, state, &value, now).map(|_| ()), want, "{why}");
        }
    }

    #[test]
    fn any_key_in_the_ring_verifies() {
        let old = ring(&[("k1", 1)]);
        let name = cookie_name("p-", STATE);
        let v = seal(old.signing(), &name, STATE, &claims());
        let rotated = ring(&[("k2", 2), ("k1", 1)]);
        assert!(open(&rotated, &name, STATE, &v, 1_100).is_ok());
        let dropped = ring(&[("k2", 2)]);
        assert_eq!(
            open(&dropped, &name, STATE, &v, 1_100),
            Err(CookieError::UnknownKey)
        );
    }

    #[test]
    fn peek_reads_issue_time_only() {
        let (_, _, v) = sealed();
        assert_eq!(peek_issued_at(&v), Some(1_000));
        assert_eq!(peek_issued_at("!!"), None);
    }
}
