//! The keys that sign and encrypt oidc-edge's cookies.
//!
//! A ring is an ordered list: the first key signs, every key verifies, so a
//! rotation never fails a login in flight: add the new key second
//! (verify-only), promote it to first, and drop the old one once the longest
//! cookie lifetime has passed. Each secret is at least 32 random bytes, given
//! base64-encoded, preferably through an environment variable that Envoy
//! exposes to the VM (`vm_config.environment_variables`), so secrets stay
//! out of the YAML.
//!
//! Two sub-keys are derived from each secret with HMAC-SHA256 and fixed
//! labels, so the MAC key and the encryption key are never the same bytes.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Fewest secret bytes accepted (HMAC-SHA256's block of security).
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest key id: it travels in every cookie.
pub const MAX_KEY_ID_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// One key of the ring.
#[derive(Clone)]
pub struct Key {
    /// Short public identifier, written into each cookie so the verifier
    /// picks the right key without trying them all.
    pub id: String,
    mac: [u8; 32],
    enc: [u8; 32],
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?}, <secret>)", self.id)
    }
}

impl Key {
    /// Derives a key from its id and secret bytes; `Err` names the problem.
    pub fn new(id: &str, secret: &[u8]) -> Result<Key, String> {
        if id.is_empty()
            || id.len() > MAX_KEY_ID_LEN
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "key id {id:?} must be 1 to {MAX_KEY_ID_LEN} letters, digits, '-' or '_'"
            ));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the secret of key {id:?} has {} bytes; at least {MIN_SECRET_BYTES} random bytes are needed \
                 (generate one with: openssl rand -base64 32)",
                secret.len()
            ));
        }
        Ok(Key {
            id: id.to_string(),
            mac: derive(secret, b"oidc-edge v1 mac"),
            enc: derive(secret, b"oidc-edge v1 enc"),
        })
    }

    /// HMAC-SHA256 over `parts`, each prefixed with its length, so no two
    /// different part lists can produce the same input.
    pub fn sign(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut m = new_mac(&self.mac);
        feed(&mut m, parts);
        m.finalize().into_bytes().into()
    }

    /// Constant-time check of `tag` against the MAC of `parts`.
    pub fn verify(&self, parts: &[&[u8]], tag: &[u8]) -> bool {
        let mut m = new_mac(&self.mac);
        feed(&mut m, parts);
        m.verify_slice(tag).is_ok()
    }

    /// XORs `data` with a keystream of HMAC-SHA256(enc key, nonce ‖ counter)
    /// blocks. Encrypting and decrypting are the same operation; callers MAC
    /// the ciphertext (encrypt-then-MAC) and never reuse a nonce.
    pub fn xor_keystream(&self, nonce: &[u8], data: &mut [u8]) {
        for (counter, chunk) in data.chunks_mut(32).enumerate() {
            let mut m = new_mac(&self.enc);
            m.update(nonce);
            m.update(&(counter as u32).to_be_bytes());
            let block: [u8; 32] = m.finalize().into_bytes().into();
            for (d, k) in chunk.iter_mut().zip(block) {
                *d ^= k;
            }
        }
    }
}

fn new_mac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC accepts keys of any length; this cannot fail.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => HmacSha256::new(&[0u8; 64].into()),
    }
}

fn feed(m: &mut HmacSha256, parts: &[&[u8]]) {
    for p in parts {
        m.update(&(p.len() as u32).to_be_bytes());
        m.update(p);
    }
}

fn derive(secret: &[u8], label: &[u8]) -> [u8; 32] {
    let mut m = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => HmacSha256::new(&[0u8; 64].into()),
    };
    m.update(label);
    m.finalize().into_bytes().into()
}

/// Decodes a base64 secret in any of the common alphabets and paddings.
pub fn decode_secret(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The ordered key ring: first signs, all verify.
#[derive(Debug, Clone)]
pub struct KeyRing {
    first: Key,
    rest: Vec<Key>,
}

impl KeyRing {
    /// A ring from keys in order; `Err` if empty or an id repeats.
    pub fn new(keys: Vec<Key>) -> Result<KeyRing, String> {
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|o| o.id == k.id) {
                return Err(format!("key id {:?} appears twice", k.id));
            }
        }
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or("at least one key is needed")?;
        Ok(KeyRing {
            first,
            rest: keys.collect(),
        })
    }

    /// The key that signs new cookies.
    pub fn signing(&self) -> &Key {
        &self.first
    }

    /// The key with this id, if it is in the ring.
    pub fn get(&self, id: &[u8]) -> Option<&Key> {
        std::iter::once(&self.first)
            .chain(&self.rest)
            .find(|k| k.id.as_bytes() == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> Key {
        Key::new(id, &[byte; 32]).unwrap()
    }

    #[test]
    fn length_prefixing_makes_part_boundaries_unambiguous() {
        let k = key("k1", 7);
        assert_ne!(k.sign(&[b"ab", b"c"]), k.sign(&[b"a", b"bc"]));
        assert_ne!(k.sign(&[b"abc"]), k.sign(&[b"abc", b""]));
    }

    #[test]
    fn verify_accepts_only_the_exact_tag() {
        let k = key("k1", 7);
        let tag = k.sign(&[b"payload"]);
        assert!(k.verify(&[b"payload"], &tag));
        let mut bad = tag;
        bad[31] ^= 1;
        assert!(!k.verify(&[b"payload"], &bad));
        assert!(
            !k.verify(&[b"payload"], &tag[..31]),
            "truncated tags are refused"
        );
        assert!(!key("k1", 8).verify(&[b"payload"], &tag), "another secret");
    }

    #[test]
    fn keystream_round_trips_and_depends_on_nonce() {
        let k = key("k1", 7);
        let mut a = b"127.0.0.1:8081 and a longer tail past one block".to_vec();
        k.xor_keystream(b"n1", &mut a);
        let mut b = b"127.0.0.1:8081 and a longer tail past one block".to_vec();
        k.xor_keystream(b"n2", &mut b);
        assert_ne!(a, b);
        k.xor_keystream(b"n1", &mut a);
        assert_eq!(a, b"127.0.0.1:8081 and a longer tail past one block");
    }

    #[test]
    fn bad_keys_are_explained() {
        assert!(Key::new("k1", &[0; 31])
            .unwrap_err()
            .contains("at least 32"));
        assert!(Key::new("", &[0; 32]).is_err());
        assert!(Key::new("a/b", &[0; 32]).is_err());
        assert!(KeyRing::new(vec![]).is_err());
        assert!(KeyRing::new(vec![key("a", 1), key("a", 2)])
            .unwrap_err()
            .contains("twice"));
    }

    #[test]
    fn ring_signs_with_the_first_and_finds_any() {
        let ring = KeyRing::new(vec![key("new", 1), key("old", 2)]).unwrap();
        assert_eq!(ring.signing().id, "new");
        assert_eq!(ring.get(b"old").map(|k| k.id.as_str()), Some("old"));
        assert!(ring.get(b"gone").is_none());
    }

    #[test]
    fn secrets_in_any_base64_alphabet() {
        let raw = [0xfbu8; 33];
        for s in [
            STANDARD.encode(raw),
            STANDARD_NO_PAD.encode(raw),
            URL_SAFE.encode(raw),
            URL_SAFE_NO_PAD.encode(raw),
        ] {
            assert_eq!(decode_secret(&s).as_deref(), Some(&raw[..]), "{s}");
        }
        assert_eq!(decode_secret("not base64!"), None);
    }
}
