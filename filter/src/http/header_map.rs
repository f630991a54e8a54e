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
