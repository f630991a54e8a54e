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
//! The AES-SIV key (a CMAC half and a CTR half) is derived from each secret
//! with HMAC-SHA256 under fixed labels, so the two halves are never the same
//! bytes and a secret is never used as a key directly.

use crate::seal::opened::Opened;
use aes_siv::siv::Aes256Siv;
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
pub struct Key {
    /// Short public identifier, written into each cookie so the verifier
    /// picks the right key without trying them all.
    pub id: String,
    /// AES-SIV key: CMAC key, then CTR key (RFC 5297 §2.2 order).
    siv: [u8; 64],
    /// The cipher built from `siv`, kept between uses: building it expands
    /// the CMAC key and derives its subkeys, which in software AES (what
    /// wasm gets) is about a sixth of a seal or open. aes-siv's `Siv` is
    /// meant to be reused (`&mut self`; its CMAC state is reset at the end
    /// of every S2V, error paths included).
    cipher: std::cell::RefCell<Option<Aes256Siv>>,
}

impl Clone for Key {
    fn clone(&self) -> Key {
        Key {
            id: self.id.clone(),
            siv: self.siv,
            cipher: std::cell::RefCell::new(None),
        }
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}, <secret>)", crate::text::quoted(&self.id),)
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
                "key id {id_q} must be 1 to {MAX_KEY_ID_LEN} letters, digits, '-' or '_'",
                id_q = crate::text::quoted(id),
            ));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the secret of key {id_q} has {} bytes; at least {MIN_SECRET_BYTES} random bytes are needed \
                 (generate one with: openssl rand -base64 32)",
                secret.len(),
                id_q = crate::text::quoted(id),
            ));
        }
        let mut siv = [0u8; 64];
        let (mac, ctr) = siv.split_at_mut(32);
        mac.copy_from_slice(&derive(secret, b"oidc-edge v2 siv cmac"));
        ctr.copy_from_slice(&derive(secret, b"oidc-edge v2 siv ctr"));
        Ok(Key {
            id: id.to_string(),
            siv,
            cipher: std::cell::RefCell::new(None),
        })
    }

    /// AES-SIV (RFC 5297) of `plaintext` under associated data `ad` (one
    /// S2V component each): the 16-byte synthetic IV, then the ciphertext.
    /// Deterministic: safe without a nonce.
    pub fn seal(&self, ad: &[&[u8]], plaintext: &[u8]) -> Vec<u8> {
        // Fails only for more than 126 associated-data components.
        self.with_cipher(|siv| siv.encrypt(ad, plaintext).unwrap_or_default())
    }

    /// Opens what [`Key::seal`] made: the plaintext, or `None` when the
    /// tag (checked in constant time) does not match.
    pub fn open(&self, ad: &[&[u8]], sealed: &[u8]) -> Option<Vec<u8>> {
        self.with_cipher(|siv| siv.decrypt(ad, sealed).ok())
    }

    /// Runs `f` with this key's cipher, built on first use. (A nested use,
    /// which nothing makes, would get a cipher of its own.)
    fn with_cipher<R>(&self, f: impl FnOnce(&mut Aes256Siv) -> R) -> R {
        let new = || <Aes256Siv as aes_siv::KeyInit>::new(&self.siv.into());
        match self.cipher.try_borrow_mut() {
            Ok(mut slot) => f(slot.get_or_insert_with(new)),
            Err(_) => f(&mut new()),
        }
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
    /// The cookies this ring already found authentic.
    opened: Opened,
}

impl KeyRing {
    /// A ring from keys in order; `Err` if empty or an id repeats.
    pub fn new(keys: Vec<Key>) -> Result<KeyRing, String> {
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|o| o.id == k.id) {
                return Err(format!(
                    "key id {} appears twice",
                    crate::text::quoted(&k.id)
                ));
            }
        }
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or("at least one key is needed")?;
        Ok(KeyRing {
            first,
            rest: keys.collect(),
            opened: Opened::new(),
        })
    }

    /// The key that signs new cookies.
    pub fn signing(&self) -> &Key {
        &self.first
    }

    /// What this ring already found authentic ([`crate::seal::opened`]).
    pub fn opened(&self) -> &Opened {
        &self.opened
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
    fn a_kept_cipher_answers_as_a_fresh_one_after_any_use() {
        let kept = key("k1", 7);
        let ad: &[&[u8]] = &[b"flow", b"__Host-oidc-edge-x", b"https://app.example.com"];
        let sealed = kept.seal(ad, b"claims");
        // A refused forgery, a refused AD, an empty message: none leaves
        // state behind for the next use.
        let mut forged = sealed.clone();
        forged[3] ^= 1;
        assert_eq!(kept.open(ad, &forged), None);
        assert_eq!(kept.open(&[b"session"], &sealed), None);
        assert_eq!(kept.open(ad, b""), None);
        let _ = kept.seal(&[], b"");
        let fresh = kept.clone();
        assert_eq!(
            kept.seal(ad, b"claims"),
            sealed,
            "deterministic, as a fresh cipher"
        );
        assert_eq!(fresh.seal(ad, b"claims"), sealed);
        assert_eq!(kept.open(ad, &sealed).as_deref(), Some(&b"claims"[..]));
    }

    #[test]
    fn seal_round_trips_and_binds_every_ad_component() {
        let k = key("k1", 7);
        let sealed = k.seal(&[b"ab", b"c"], b"127.0.0.1:8081");
        assert_eq!(sealed.len(), 16 + 14);
        assert_eq!(
            k.open(&[b"ab", b"c"], &sealed).as_deref(),
            Some(&b"127.0.0.1:8081"[..])
        );
        assert_eq!(k.open(&[b"a", b"bc"], &sealed), None, "boundaries count");
        assert_eq!(k.open(&[b"abc"], &sealed), None);
        assert_eq!(k.open(&[b"ab", b"c", b""], &sealed), None);
        assert_eq!(
            key("k1", 8).open(&[b"ab", b"c"], &sealed),
            None,
            "another secret"
        );
        let mut bad = sealed.clone();
        bad[0] ^= 1;
        assert_eq!(k.open(&[b"ab", b"c"], &bad), None);
        assert_eq!(k.open(&[b"ab", b"c"], &sealed[..15]), None, "truncated");
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
