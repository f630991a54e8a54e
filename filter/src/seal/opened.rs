//! A bounded memory of session cookies this key ring has already found
//! authentic, so a logged-in browser's session cookie, sent on every
//! request, is decrypted once per worker rather than once per request.
//!
//! Why: AES-SIV in software (wasm has no AES instructions) costs about as
//! much as everything else oidc-edge does on a request put together. A
//! browser sends the same cookie value until it is reissued, so the
//! answer to "is this value authentic under this ring, for this purpose,
//! name and origin, and what does it say" never changes for the life of
//! the ring. Only that time-independent answer is remembered: the caller
//! checks the times again on every use, so expiry works exactly as before.
//!
//! Why it is safe:
//! - An entry is made only after the full check (AES-SIV tag, record
//!   layout) passed, and it is found only for the identical value under
//!   the identical binding: the same inputs the check would see again.
//!   Nothing is remembered of a refused cookie, so a forgery always pays
//!   the full check and can never be answered from memory.
//! - The ring is immutable; a new configuration (new keys, a rotation)
//!   makes a new ring with an empty memory.
//! - The slot is chosen by a fast non-secret hash; the stored value is then
//!   compared in constant time, so probing a slot with forged values tells
//!   nothing about the valid cookie stored there (only whether a slot is
//!   occupied, which says that some browser was seen).
//! - Bounded: a fixed number of slots, newest wins. Filling it with one's
//!   own valid cookies only makes other browsers pay the full check again.

use crate::seal::sealed_cookie::{Binding, FlowClaims, STATE_HASH_LEN};
use std::cell::RefCell;
use subtle::ConstantTimeEq;

/// Slots per ring (per worker): a session cookie and its claims take about
/// 250 bytes, so a full memory is about 1 MiB.
pub const SLOTS: usize = 4096;

/// What an authentic cookie says, remembered with what it was checked for.
struct Entry {
    purpose: &'static [u8],
    name: Box<str>,
    origin: Box<str>,
    value: Box<[u8]>,
    claims: FlowClaims,
    state_hash: [u8; STATE_HASH_LEN],
}

/// Whether two equally long byte strings are equal, in time that depends
/// on their length only: the differences of eight bytes at a time are
/// OR-ed together with no early exit, and the one final test is `subtle`'s.
/// (`subtle`'s slice comparison takes a byte at a time behind an
/// optimisation barrier: ten times the instructions on a session cookie,
/// on every request of a logged-in browser.)
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut diff = 0u64;
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        let mut wx = [0u8; 8];
        let mut wy = [0u8; 8];
        wx.copy_from_slice(x);
        wy.copy_from_slice(y);
        diff |= u64::from_le_bytes(wx) ^ u64::from_le_bytes(wy);
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        diff |= u64::from(x ^ y);
    }
    a.len() == b.len() && bool::from(diff.ct_eq(&0))
}

/// The memory itself (see the module documentation).
pub struct Opened {
    slots: RefCell<Vec<Option<Box<Entry>>>>,
}

impl Opened {
    /// An empty memory; slots are allocated on first use.
    pub fn new() -> Opened {
        Opened {
            slots: RefCell::new(Vec::new()),
        }
    }

    fn slot(value: &str) -> usize {
        // A fast multiplicative hash of the value, eight bytes at a time
        // (the binding is compared in full on a hit). Not secret: see above.
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ value.len() as u64;
        let mut chunks = value.as_bytes().chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            h = (h ^ u64::from_le_bytes(w))
                .wrapping_mul(0x0000_0100_0000_01b3)
                .rotate_left(29);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        ((h ^ (h >> 32)) % SLOTS as u64) as usize
    }

    /// The remembered opening of `value` under `binding`, if this exact
    /// value was found authentic for this exact binding.
    pub fn get(
        &self,
        purpose: &'static [u8],
        binding: &Binding,
        value: &str,
    ) -> Option<(FlowClaims, [u8; STATE_HASH_LEN])> {
        let i = Self::slot(value);
        let slots = self.slots.try_borrow().ok()?;
        let e = slots.get(i)?.as_ref()?;
        let same_value = e.value.len() == value.len() && same_bytes(&e.value, value.as_bytes());
        if same_value
            && e.purpose == purpose
            && *e.name == *binding.name
            && *e.origin == *binding.origin
        {
            Some((e.claims.clone(), e.state_hash))
        } else {
            None
        }
    }

    /// Remembers an authentic opening (only ever called after the full check passed).
    pub fn put(
        &self,
        purpose: &'static [u8],
        binding: &Binding,
        value: &str,
        claims: &FlowClaims,
        state_hash: [u8; STATE_HASH_LEN],
    ) {
        let i = Self::slot(value);
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return;
        };
        if slots.is_empty() {
            slots.resize_with(SLOTS, || None);
        }
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(Box::new(Entry {
                purpose,
                name: binding.name.into(),
                origin: binding.origin.into(),
                value: value.as_bytes().into(),
                claims: claims.clone(),
                state_hash,
            }));
        }
    }

    /// How many openings are remembered (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.slots
            .try_borrow()
            .map_or(0, |s| s.iter().filter(|e| e.is_some()).count())
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Opened {
    fn default() -> Opened {
        Opened::new()
    }
}

/// A copy of a ring starts with an empty memory: correct, since the memory
/// only ever saves work.
impl Clone for Opened {
    fn clone(&self) -> Opened {
        Opened::new()
    }
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opened({} remembered)", self.len())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod same_bytes_tests {
    use super::same_bytes;

    #[test]
    fn equal_only_when_every_byte_is() {
        let base: Vec<u8> = (0u8..=200).collect();
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 200] {
            let a = &base[..len];
            assert!(same_bytes(a, a), "{len}");
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x01;
                assert!(!same_bytes(a, &b), "{len} {i}");
                b[i] ^= 0x81;
                assert!(!same_bytes(a, &b), "{len} {i}");
            }
        }
        assert!(!same_bytes(b"abc", b"abcd"));
    }
}
