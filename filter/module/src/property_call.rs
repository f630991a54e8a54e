//! Setting a property without the SDK's panic: `hostcalls::set_property`
//! panics on any status but Ok, and a panic in Envoy's V8 fails the worker's
//! filter (see `lib.rs`). Envoy answers `BadArgument` when a property cannot
//! be written (for instance a read-only filter state another filter set),
//! which must cost an access-log field, never the request.

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// Sets the one-segment property `name` to `value`; `false` if Envoy refused.
pub fn set_property(name: &str, value: &[u8]) -> bool {
    // SAFETY: both pointers are valid for their lengths for the duration of
    // the call; the host copies the bytes and keeps no reference. A
    // one-segment path is the segment's bytes (segments are NUL-separated).
    unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) == 0 }
}
