//! TLS for tests, made with openssl at test time: a small CA with one server
//! certificate (curl, Node and the scripted browser verify the chain as
//! browsers do), and the Envoy transport socket that serves it.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

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

/// A test CA and a server certificate it issued.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate clients trust (PEM).
    pub ca: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The server certificate (PEM), valid for the names given.
    pub cert: PathBuf,
}

/// Makes a CA in `dir` and a server certificate for `names` (DNS names or
/// IP addresses), as a public CA would issue: not a CA itself, for server
/// authentication only.
pub fn pki(dir: &Path, names: &[&str]) -> Pki {
    let p = |f: &str| dir.join(f);
    let sans: Vec<String> = names
        .iter()
        .map(|n| {
            if n.parse::<std::net::IpAddr>().is_ok() {
                format!("IP:{n}")
            } else {
                format!("DNS:{n}")
            }
        })
        .collect();
    std::fs::write(
        p("leaf.ext"),
        format!(
            "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
            sans.join(",")
        ),
    )
    .expect("write leaf.ext");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "1", "-subj", "/CN=oidc-edge test CA"],
        ]
        .concat(),
        &[("-keyout", p("ca.key")), ("-out", p("ca.pem"))],
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                &format!("/CN={}", names.first().copied().unwrap_or("localhost")),
            ],
        ]
        .concat(),
        &[("-keyout", p("key.pem")), ("-out", p("leaf.csr"))],
    );
    openssl(
        &["x509", "-req", "-days", "1", "-set_serial", "2"],
        &[
            ("-in", p("leaf.csr")),
            ("-CA", p("ca.pem")),
            ("-CAkey", p("ca.key")),
            ("-extfile", p("leaf.ext")),
            ("-out", p("cert.pem")),
        ],
    );
    Pki {
        ca: p("ca.pem"),
        key: p("key.pem"),
        cert: p("cert.pem"),
    }
}

fn openssl(args: &[&str], paths: &[(&str, PathBuf)]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    for (flag, path) in paths {
        cmd.arg(flag).arg(path);
    }
    let out = cmd.output().expect("openssl (./build.sh test installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
