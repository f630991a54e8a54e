//! The one `unsafe` call of the module: reading the request headers in
//! their serialized ABI form in one host call.
//!
//! Why it exists: the SDK's `hostcalls::get_map_bytes` decodes the map into
//! a `String` and a `Vec` per header; measured inside Envoy 1.40 that cost
//! more than all of the forwarded-header logic, so the module takes the raw
//! buffer and [`oidc_edge::http::header_map::decode`] reads it in place.

use proxy_wasm::types::MapType;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
}

/// The request headers in the ABI's serialized form; `None` if the call failed.
pub fn request_header_map() -> Option<Box<[u8]>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer to `size` bytes it allocated through
    // the SDK's `proxy_on_memory_allocate` (a `Box<[u8]>` of exactly `size`
    // bytes), ownership of which passes to us; status 0 is Ok.
    unsafe {
        if proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size) != 0
        {
            return None;
        }
        if data.is_null() {
            return Some(Box::default());
        }
        Some(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            data, size,
        )))
    }
}
