//! The host calls IdP discovery needs, status-checked: the SDK's
//! `hostcalls` versions panic on any status they do not expect, and a panic
//! in Envoy's V8 fails the worker's filter (see `lib.rs`).
//!
//! `dispatch_http_call` itself goes through the SDK: its dispatcher must
//! register the call's token to route the answer to the root context, and
//! it panics only on statuses Envoy's `proxy_http_call` does not return
//! for valid memory (Envoy answers `BadArgument` for an unknown cluster or
//! missing pseudo-headers, `InternalFailure` when the call cannot start).

use proxy_wasm::types::{BufferType, MapType, MetricType};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
}

/// Takes ownership of a buffer the host allocated through the SDK's
/// `proxy_on_memory_allocate` (a `Box<[u8]>` of exactly `size` bytes).
///
/// # Safety
/// `data` must be null or such a buffer of `size` bytes.
unsafe fn owned(data: *mut u8, size: usize) -> Box<[u8]> {
    if data.is_null() {
        return Box::default();
    }
    // SAFETY: as the caller promised.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(data, size)) }
}

/// Sets this root context's tick period (0 stops the timer); `false` if
/// Envoy refused.
pub fn set_tick_period_ms(ms: u64) -> bool {
    let ms = u32::try_from(ms).unwrap_or(u32::MAX);
    // SAFETY: no pointers.
    unsafe { proxy_set_tick_period_milliseconds(ms) == 0 }
}

/// The `:status` of the HTTP call being answered, if any.
pub fn call_response_status() -> Option<Box<[u8]>> {
    let key = ":status";
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: `key` is valid for its length; on status 0 the host wrote a
    // buffer it allocated (see `owned`).
    unsafe {
        if proxy_get_header_map_value(
            MapType::HttpCallResponseHeaders as u32,
            key.as_ptr(),
            key.len(),
            &mut data,
            &mut size,
        ) != 0
        {
            return None;
        }
        Some(owned(data, size))
    }
}

/// Up to `max` bytes of the HTTP call's response body (empty if none or
/// unreadable).
pub fn call_response_body(max: usize) -> Box<[u8]> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: on status 0 the host wrote a buffer it allocated (see `owned`).
    unsafe {
        if proxy_get_buffer_bytes(
            BufferType::HttpCallResponseBody as u32,
            0,
            max,
            &mut data,
            &mut size,
        ) != 0
        {
            return Box::default();
        }
        owned(data, size)
    }
}

/// Defines a gauge; `None` if Envoy refused.
pub fn define_gauge(name: &str) -> Option<u32> {
    let mut id = 0u32;
    // SAFETY: `name` is valid for its length; the host writes one u32.
    let status = unsafe {
        proxy_define_metric(MetricType::Gauge as u32, name.as_ptr(), name.len(), &mut id)
    };
    (status == 0).then_some(id)
}

/// Sets a gauge (a refusal costs the figure, nothing else).
pub fn record(id: u32, value: u64) {
    // SAFETY: no pointers.
    let _ = unsafe { proxy_record_metric(id, value) };
}

/// Nanoseconds since the epoch (0 if Envoy refused): the jitter's seed.
pub fn now_ns() -> u64 {
    let mut t = 0u64;
    // SAFETY: the host writes one u64.
    let _ = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    t
}
