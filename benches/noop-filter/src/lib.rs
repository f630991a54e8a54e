//! The cheapest Rust proxy-wasm HTTP filter there is: a root context that
//! creates an HTTP context per request, and callbacks that all continue.
//! `./build.sh bench` loads it in place of oidc-edge to measure what the
//! wasm ABI alone costs (the "floor"), built with the same profile and
//! `wasm-opt` flags as the module.
#![cfg(target_arch = "wasm32")]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request;

impl Context for Request {}

impl HttpContext for Request {}
