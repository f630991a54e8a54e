//! The shipped module exports exactly the proxy-wasm callbacks it needs.
//!
//! `./build.sh build` keeps only the exports listed in `MODULE_EXPORTS`
//! (build.sh): Envoy skips a callback that is not exported, so a callback
//! implemented in `filter/module/src/lib.rs` but missing from that list would
//! silently never run. This test reads the built module's export section
//! and checks every implemented callback against it; and it keeps the
//! module under a size ceiling well above today's (about 328 KB), to catch
//! a regression such as a dependency that brings back derived
//! (de)serialisation code, not to measure (the size per change is recorded
//! in benches/README.md).

use integration_tests::envoy::wasm_path;
use integration_tests::repo_root;
use std::collections::BTreeSet;

/// Far above the module's size today (327,940 bytes): only a regression of
/// tens of kilobytes trips it.
const SIZE_CEILING: usize = 380_000;

/// The proxy-wasm SDK's trait methods and the export Envoy calls for each.
const CALLBACKS: &[(&str, &str)] = &[
    ("on_vm_start", "proxy_on_vm_start"),
    ("on_configure", "proxy_on_configure"),
    ("on_tick", "proxy_on_tick"),
    ("on_queue_ready", "proxy_on_queue_ready"),
    ("on_http_call_response", "proxy_on_http_call_response"),
    ("on_grpc_call_response", "proxy_on_grpc_receive"),
    ("on_grpc_stream_message", "proxy_on_grpc_receive"),
    (
        "on_grpc_stream_initial_metadata",
        "proxy_on_grpc_receive_initial_metadata",
    ),
    (
        "on_grpc_stream_trailing_metadata",
        "proxy_on_grpc_receive_trailing_metadata",
    ),
    ("on_grpc_stream_close", "proxy_on_grpc_close"),
    ("on_foreign_function", "proxy_on_foreign_function"),
    ("on_done", "proxy_on_done"),
    ("on_log", "proxy_on_log"),
    ("on_http_request_headers", "proxy_on_request_headers"),
    ("on_http_request_body", "proxy_on_request_body"),
    ("on_http_request_trailers", "proxy_on_request_trailers"),
    ("on_http_response_headers", "proxy_on_response_headers"),
    ("on_http_response_body", "proxy_on_response_body"),
    ("on_http_response_trailers", "proxy_on_response_trailers"),
    ("on_new_connection", "proxy_on_new_connection"),
    ("on_downstream_data", "proxy_on_downstream_data"),
    (
        "on_downstream_close",
        "proxy_on_downstream_connection_close",
    ),
    ("on_upstream_data", "proxy_on_upstream_data"),
    ("on_upstream_close", "proxy_on_upstream_connection_close"),
];

/// Reads an unsigned LEB128 number at `*at`.
fn leb(bytes: &[u8], at: &mut usize) -> usize {
    let (mut n, mut shift) = (0usize, 0);
    loop {
        let b = bytes[*at];
        *at += 1;
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

/// The names in the module's export section.
fn exports(wasm: &[u8]) -> BTreeSet<String> {
    assert_eq!(&wasm[..4], b"\0asm", "not a wasm module");
    let mut at = 8;
    let mut names = BTreeSet::new();
    while at < wasm.len() {
        let id = wasm[at];
        at += 1;
        let len = leb(wasm, &mut at);
        let end = at + len;
        if id == 7 {
            let mut p = at;
            for _ in 0..leb(wasm, &mut p) {
                let n = leb(wasm, &mut p);
                names.insert(String::from_utf8(wasm[p..p + n].to_vec()).unwrap());
                p += n;
                p += 1; // kind
                leb(wasm, &mut p); // index
            }
        }
        at = end;
    }
    names
}

#[test]
fn every_implemented_callback_is_exported_and_nothing_else_of_the_sdk() {
    let wasm = std::fs::read(wasm_path()).expect("build the module first: ./build.sh build");
    let exported = exports(&wasm);
    let glue = std::fs::read_to_string(repo_root().join("filter/module/src/lib.rs")).unwrap();
    let implemented: BTreeSet<&str> = CALLBACKS
        .iter()
        .filter(|(method, _)| glue.contains(&format!("fn {method}(")))
        .map(|(_, export)| *export)
        .collect();
    assert!(
        implemented.contains("proxy_on_request_headers"),
        "the glue's callbacks were not found in filter/module/src/lib.rs"
    );
    for export in &implemented {
        assert!(
            exported.contains(*export),
            "{export} is implemented in filter/module/src/lib.rs but not exported: add it to \
             MODULE_EXPORTS in build.sh (exported: {exported:?})"
        );
    }
    // What Envoy needs whatever the callbacks: the ABI version, memory,
    // allocation and context life cycle.
    for export in [
        "proxy_abi_version_0_2_1",
        "memory",
        "proxy_on_memory_allocate",
        "proxy_on_context_create",
        "proxy_on_delete",
    ] {
        assert!(exported.contains(export), "{export} is not exported");
    }
    // The SDK's callbacks this module never uses are gone (Envoy then does
    // not call into the VM for them): among them the two a request would
    // otherwise enter the VM for, `proxy_on_done` (Envoy takes a missing
    // one as "done", the SDK's default) and `proxy_on_log`.
    for gone in [
        "proxy_on_done",
        "proxy_on_log",
        "proxy_on_new_connection",
        "proxy_on_response_body",
    ] {
        assert!(
            implemented.contains(gone) || !exported.contains(gone),
            "{gone} is exported but nothing implements it"
        );
    }
}

#[test]
fn the_module_stays_under_its_size_ceiling() {
    let size = std::fs::metadata(wasm_path())
        .expect("build the module first: ./build.sh build")
        .len();
    assert!(
        size <= SIZE_CEILING as u64,
        "the module is {size} bytes, over the {SIZE_CEILING}-byte ceiling: see benches/README.md \
         (\"Where the bytes go\") for what costs bytes, and twiggy for what grew"
    );
}
