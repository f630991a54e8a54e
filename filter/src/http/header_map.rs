//! Decoding the header map as the proxy-wasm ABI hands it over, without
//! copying: one bulk host call returns a buffer, and the logic reads names
//! and values as slices of it.
//!
//! The SDK's own decoder allocates a `String` and a `Vec` per header and
//! panics on a value that is not UTF-8; measured in Envoy 1.40, that decoding
//! cost more than the rest of the forwarded-header logic together.
//!
//! Layout (proxy-wasm ABI 0.2): `u32 count`, then `count` pairs of
//! `u32 name_len, u32 value_len`, then for each header the name bytes, a NUL,
//! the value bytes and a NUL. All integers little-endian.

/// Decodes a serialized header map into `(name, value)` slices. A buffer
/// that does not follow the layout yields `None`; a header whose name is not
/// UTF-8 (Envoy never produces one) is skipped.
pub fn decode(buf: &[u8]) -> Option<Vec<(&str, &[u8])>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let count = read_u32(buf, 0)? as usize;
    let sizes_end = count.checked_mul(8)?.checked_add(4)?;
    let sizes = buf.get(4..sizes_end)?;
    let mut out = Vec::with_capacity(count);
    let mut p = sizes_end;
    // Names and values checked as UTF-8 in one pass when they all are (the
    // usual case): a name is then valid exactly when both its ends are
    // character boundaries, which `str::get` checks in constant time.
    // Otherwise each name is checked on its own.
    let text = std::str::from_utf8(buf.get(sizes_end..)?).ok();
    for pair in sizes.chunks_exact(8) {
        let name_len = read_u32(pair, 0)? as usize;
        let value_len = read_u32(pair, 4)? as usize;
        let name_at = p..p.checked_add(name_len)?;
        let name = buf.get(name_at.clone())?;
        p = p.checked_add(name_len)?.checked_add(1)?;
        let value = buf.get(p..p.checked_add(value_len)?)?;
        p = p.checked_add(value_len)?.checked_add(1)?;
        let name = match text {
            Some(t) => t.get(name_at.start - sizes_end..name_at.end - sizes_end),
            None => std::str::from_utf8(name).ok(),
        };
        if let Some(name) = name {
            out.push((name, value));
        }
    }
    Some(out)
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let b = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([
        *b.first()?,
        *b.get(1)?,
        *b.get(2)?,
        *b.get(3)?,
    ]))
}

/// Encodes headers in the ABI layout (the inverse of [`decode`]: a local
/// answer's headers, tests and benchmarks).
pub fn encode(headers: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (n, v) in headers {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (n, v) in headers {
        out.extend_from_slice(n.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h: Vec<(&str, &[u8])> = vec![
            (":authority", b"a.example"),
            ("x-v", b"caf\xe9"),
            ("empty", b""),
        ];
        assert_eq!(decode(&encode(&h)), Some(h));
        assert_eq!(decode(&[]), Some(vec![]));
    }

    /// The decoding as it was before names were checked in one pass: each
    /// name on its own.
    fn decode_name_by_name(buf: &[u8]) -> Option<Vec<(&str, &[u8])>> {
        if buf.is_empty() {
            return Some(Vec::new());
        }
        let count = read_u32(buf, 0)? as usize;
        let sizes_end = count.checked_mul(8)?.checked_add(4)?;
        let sizes = buf.get(4..sizes_end)?;
        let mut out = Vec::new();
        let mut p = sizes_end;
        for pair in sizes.chunks_exact(8) {
            let name_len = read_u32(pair, 0)? as usize;
            let value_len = read_u32(pair, 4)? as usize;
            let name = buf.get(p..p.checked_add(name_len)?)?;
            p = p.checked_add(name_len)?.checked_add(1)?;
            let value = buf.get(p..p.checked_add(value_len)?)?;
            p = p.checked_add(value_len)?.checked_add(1)?;
            if let Ok(name) = std::str::from_utf8(name) {
                out.push((name, value));
            }
        }
        Some(out)
    }

    #[test]
    fn names_that_are_not_utf8_are_skipped_whichever_way_they_are_checked() {
        // Valid text overall but a length that cuts "é" in two; a value
        // that is not UTF-8 (names then checked one by one); a name that
        // is not.
        let mut cut = encode(&[("a\u{e9}", b"v"), ("b", b"w")]);
        cut[4..8].copy_from_slice(&2u32.to_le_bytes());
        cut[8..12].copy_from_slice(&3u32.to_le_bytes());
        let bufs = [
            cut,
            encode(&[("ok", b"caf\xe9"), ("x", b"y")]),
            encode(&[("ok", b"v")]),
        ];
        for buf in &bufs {
            assert_eq!(decode(buf), decode_name_by_name(buf), "{buf:?}");
        }
        let mut bad_name = encode(&[("n\u{e9}", b"v"), ("x", b"y")]);
        let at = bad_name.len() - 8;
        bad_name[at] = 0xff;
        assert_eq!(decode(&bad_name), decode_name_by_name(&bad_name));
    }

    proptest::proptest! {
        #[test]
        fn one_pass_name_checks_decode_as_name_by_name(buf in proptest::collection::vec(
            proptest::prop_oneof![proptest::num::u8::ANY, proptest::sample::select(vec![0u8, 1, 2, b'a', 0xc3, 0xa9])],
            0..64,
        )) {
            proptest::prop_assert_eq!(decode(&buf), decode_name_by_name(&buf));
        }

        #[test]
        fn one_pass_name_checks_decode_encoded_maps_as_name_by_name(
            pairs in proptest::collection::vec(("[a-z\u{e9}:-]{0,6}", proptest::collection::vec(proptest::num::u8::ANY, 0..6)), 0..6),
            lie in proptest::option::of((0usize..6, 0u32..8)),
        ) {
            let h: Vec<(&str, &[u8])> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
            let mut buf = encode(&h);
            if let Some((i, len)) = lie {
                let at = 4 + 8 * i;
                if at + 4 <= buf.len().min(4 + 8 * h.len()) {
                    buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
                }
            }
            proptest::prop_assert_eq!(decode(&buf), decode_name_by_name(&buf));
        }
    }

    #[test]
    fn malformed_buffers_are_refused_not_panicked_on() {
        let good = encode(&[("a", b"b")]);
        for cut in 0..good.len() - 1 {
            if cut > 0 {
                assert_eq!(decode(&good[..cut]), None, "truncated at {cut}");
            }
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
        let mut long_name = good.clone();
        long_name[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&long_name), None);
    }
}
