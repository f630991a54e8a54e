//! TLS for tests: a self-signed certificate for `app.example.com`, made with
//! openssl at test time, and the Envoy transport socket that serves it.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A key and certificate for `app.example.com` in `dir`: `(key, cert)`.
pub fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=app.example.com",
            "-addext",
            "subjectAltName=DNS:app.example.com",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (./build.sh test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, cert)
}

/// An Envoy `transport_socket` terminating TLS with this key and certificate.
pub fn downstream_transport_socket(key: &Path, cert: &Path) -> Value {
    json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "common_tls_context": {"tls_certificates": [{
                "certificate_chain": {"filename": cert.display().to_string()},
                "private_key": {"filename": key.display().to_string()}
            }]}
        }
    })
}
