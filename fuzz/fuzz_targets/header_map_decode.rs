//! Any bytes as a serialized header map: decoded or refused, never a panic,
//! and whatever decodes re-encodes to a buffer that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oidc_edge::http::header_map::{decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Some(headers) = decode(data) {
        assert_eq!(decode(&encode(&headers)), Some(headers));
    }
});
