//! Every host call the module makes, straight to the proxy-wasm ABI (all
//! but `dispatch_http_call`, see `lib.rs`): the module's only `unsafe` code.
//!
//! Why not the SDK's `hostcalls`: they `panic!` on any status they did
//! not expect, and a panic in Envoy's V8 fails the worker's filter (see
//! `../shared/notes/envoy-1.40-facts.md`, "Panics"); here every status
//! but Ok is an answer (`None`/`false`) the exchange acts on. And they
//! cost more than the call: `get_map_bytes` decodes the header map into a
//! `String` and a `Vec` per header (measured in Envoy 1.40, more than all
//! of the forwarded logic), `get_property` builds its path in a new `Vec`.
//! Here the header map is taken as the host wrote it and
//! [`oidc_edge::http::header_map::decode`] reads it in place; property
//! paths are static bytes.
//!
//! Ownership of returned bytes: the host allocates them through the SDK's
//! `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes) and
//! hands them over; [`take`] turns them back into that box.

use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *mut *mut u8,
        value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_current_time_nanoseconds(time: *mut u64) -> u32;
}

const OK: u32 = 0;
const NOT_FOUND: u32 = 1;

/// Bytes the host handed over (see the module doc); empty for a null pointer.
///
/// # Safety
/// `data` is null or was returned by the host with `size`, allocated by
/// `proxy_on_memory_allocate(size)`, and not taken before.
unsafe fn take(data: *mut u8, size: usize) -> Box<[u8]> {
    if data.is_null() {
        return Box::default();
    }
    // SAFETY: per the contract above, a boxed slice of exactly `size` bytes.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, size)) }
}

/// The request headers in the ABI's serialized form; `None` if the call failed.
pub fn request_header_map() -> Option<Box<[u8]>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the out-pointers are valid; on Ok the host wrote a buffer it
    // allocated through proxy_on_memory_allocate.
    unsafe {
        if proxy_get_header_map_pairs(MapType::HttpRequestHeaders as u32, &mut data, &mut size)
            != OK
        {
            return None;
        }
        Some(take(data, size))
    }
}

/// One header's value: `Ok(None)` when absent, `Err` when the call failed.
pub fn header(map: MapType, name: &str) -> Result<Option<Box<[u8]>>, ()> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: `name` is valid for its length during the call; the
    // out-pointers are valid; on Ok the host handed over a buffer.
    unsafe {
        match proxy_get_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            &mut data,
            &mut size,
        ) {
            OK => Ok(Some(take(data, size))),
            NOT_FOUND => Ok(None),
            _ => Err(()),
        }
    }
}

/// Sets (`Some`, replacing every value) or removes (`None`) a header;
/// `false` if Envoy refused.
pub fn set_header(map: MapType, name: &str, value: Option<&str>) -> bool {
    // SAFETY: the pointers are valid for their lengths during the call; the
    // host copies the bytes and keeps no reference.
    let status = unsafe {
        match value {
            Some(v) => proxy_replace_header_map_value(
                map as u32,
                name.as_ptr(),
                name.len(),
                v.as_ptr(),
                v.len(),
            ),
            None => proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()),
        }
    };
    status == OK
}

/// Adds a header line; `false` if Envoy refused.
pub fn add_header(map: MapType, name: &str, value: &str) -> bool {
    // SAFETY: as in `set_header`.
    unsafe {
        proxy_add_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        ) == OK
    }
}

/// A property by its serialized path (segments joined by NUL); `None`
/// when absent or the call failed.
pub fn property(path: &[u8]) -> Option<Box<[u8]>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: `path` is valid for its length during the call; the
    // out-pointers are valid; on Ok the host handed over a buffer.
    unsafe {
        if proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) != OK
            || data.is_null()
        {
            return None;
        }
        Some(take(data, size))
    }
}

/// Sets the one-segment property `name` to `value`; `false` if Envoy
/// refused (it answers `BadArgument` for, e.g., a read-only filter state
/// another filter set: that must cost an access-log field, never the request).
pub fn set_property(name: &str, value: &[u8]) -> bool {
    // SAFETY: both pointers are valid for their lengths during the call;
    // the host copies the bytes and keeps no reference. A one-segment path
    // is the segment's bytes.
    unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) == OK }
}

/// Adds one to a counter; a failure is not the request's problem.
pub fn increment(metric_id: u32) {
    // SAFETY: no pointers.
    let _ = unsafe { proxy_increment_metric(metric_id, 1) };
}

/// Nanoseconds since the Unix epoch; `None` if the clock cannot be read.
pub fn now_ns() -> Option<u64> {
    let mut t: u64 = 0;
    // SAFETY: `t` is a valid out-pointer.
    (unsafe { proxy_get_current_time_nanoseconds(&mut t) } == OK).then_some(t)
}

/// The first `size` bytes of a buffer; `None` if the call failed (an
/// absent buffer is empty).
fn buffer(kind: BufferType, size: usize) -> Option<Box<[u8]>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut len: usize = 0;
    // SAFETY: the out-pointers are valid; on Ok the host handed over a buffer.
    unsafe {
        match proxy_get_buffer_bytes(kind as u32, 0, size, &mut data, &mut len) {
            OK => Some(take(data, len)),
            NOT_FOUND => Some(Box::default()),
            _ => None,
        }
    }
}

/// The first `size` bytes of the buffered request body; `None` if the call
/// failed (an absent body is empty).
pub fn request_body(size: usize) -> Option<Box<[u8]>> {
    buffer(BufferType::HttpRequestBody, size)
}

/// The `:status` of the HTTP call (IdP discovery) being answered, if any.
pub fn call_response_status() -> Option<Box<[u8]>> {
    header(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
}

/// Up to `max` bytes of the HTTP call's response body (empty if none or
/// unreadable).
pub fn call_response_body(max: usize) -> Box<[u8]> {
    buffer(BufferType::HttpCallResponseBody, max).unwrap_or_default()
}

/// Defines a counter or gauge; `None` if Envoy refused.
pub fn define_metric(kind: MetricType, name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: `name` is valid for its length; the host writes one u32.
    let status = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    (status == OK).then_some(id)
}

/// The plugin configuration's bytes; `None` if the call failed.
pub fn plugin_configuration() -> Option<Box<[u8]>> {
    buffer(BufferType::PluginConfiguration, usize::MAX)
}

/// Sets a gauge (a refusal costs the figure, nothing else).
pub fn record(id: u32, value: u64) {
    // SAFETY: no pointers.
    let _ = unsafe { proxy_record_metric(id, value) };
}

/// Sets this root context's tick period (0 stops the timer); `false` if
/// Envoy refused.
pub fn set_tick_period_ms(ms: u64) -> bool {
    let ms = u32::try_from(ms).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    unsafe { proxy_set_tick_period_milliseconds(ms) == OK }
}

/// Answers the request locally; `false` if Envoy refused.
pub fn send_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> bool {
    let pairs: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    let map = oidc_edge::http::header_map::encode(&pairs);
    // SAFETY: every pointer is valid for its length during the call (a null
    // details pointer with length 0 is "none"); the host copies the bytes.
    unsafe {
        proxy_send_local_response(
            status,
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        ) == OK
    }
}

/// Writes a log line; a failure to log is not the request's problem.
pub fn log(level: LogLevel, message: &str) {
    // SAFETY: `message` is valid for its length during the call.
    let _ = unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) };
}
