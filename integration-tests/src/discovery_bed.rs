//! What the IdP discovery tests need besides the OIDC bed: the Envoy
//! cluster that reaches the IdP, a TCP forwarder that plays the network
//! path to it (down, then up), and a metadata server whose answers a test
//! scripts (malformed JSON, another issuer, plain http).

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A STATIC Envoy cluster named `name` to `127.0.0.1:port`, over TLS
/// verified against `ca` when given (an https IdP), plain otherwise.
pub fn idp_cluster(name: &str, port: u16, ca: Option<&Path>) -> Value {
    let mut c = json!({"name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{"endpoint": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}});
    if let Some(ca) = ca {
        c["transport_socket"] = json!({"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "common_tls_context": {"validation_context": {"trusted_ca": {"filename": ca.display().to_string()}}}}});
    }
    c
}

/// Adds `cluster` to an Envoy document's static clusters.
pub fn add_cluster(doc: &mut Value, cluster: Value) {
    doc["static_resources"]["clusters"]
        .as_array_mut()
        .expect("clusters")
        .push(cluster);
}

pub use crate::wait_until;

/// A TCP forwarder from a loopback port to `127.0.0.1:target`, accepting
/// only once [`Forwarder::open`] is called: the network path from Envoy to
/// the IdP, down until then. Stops accepting when dropped.
pub struct Forwarder {
    /// The port Envoy connects to.
    pub port: u16,
    target: u16,
    stop: Arc<AtomicBool>,
}

impl Forwarder {
    /// A closed path: nothing listens on `port` yet (connections are refused).
    pub fn closed(target: u16) -> Forwarder {
        Forwarder {
            port: crate::free_port(),
            target,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts listening and forwarding.
    pub fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind forwarder");
        listener.set_nonblocking(true).expect("nonblocking");
        let (stop, target) = (self.stop.clone(), self.target);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", target)) {
                            pipe(client, server);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn pipe(a: TcpStream, b: TcpStream) {
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                if n == 0 || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    };
    if let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) {
        copy(a, b2);
        copy(b, a2);
    }
}

/// An HTTP/1.1 server answering every request with the next of `bodies`
/// (the last one forever after), status 200, JSON, `Connection: close`.
pub struct MetadataServer {
    /// Its port.
    pub port: u16,
    /// Requests answered so far.
    pub served: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl MetadataServer {
    /// Starts serving; `bodies(port)` gives the answers (they may name the port).
    pub fn start(bodies: impl FnOnce(u16) -> Vec<String>) -> MetadataServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind metadata server");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let bodies = bodies(port);
        let served = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (served2, stop2) = (served.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let i = served2.fetch_add(1, Ordering::SeqCst);
                let body = &bodies[i.min(bodies.len() - 1)];
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(resp.as_bytes());
            }
        });
        MetadataServer { port, served, stop }
    }
}

impl Drop for MetadataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
