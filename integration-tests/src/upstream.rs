//! Echo upstreams: HTTP/1.1 servers that answer every request with JSON
//! describing what they received (their name, method, path, headers), so a
//! test sees exactly what the app behind oidc-edge would see.
//!
//! They also play a relying party's login start: `GET /login` answers 302 to
//! the IdP's authorization endpoint (`IDP_AUTHORIZE`) with a fresh `state`
//! that only this node knows, as an app with in-memory login state does.
//! `/login?form_post` asks for `response_mode=form_post`.
//! `/redirect?to=URL` answers 302 with `Location: URL`.
//! Long-lived answers: a WebSocket upgrade echoes bytes back,
//! `/events?count=N&every_ms=M` streams server-sent events, and
//! `/poll?ms=N` answers after N ms.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// The authorization endpoint the echo app redirects `/login` to.
pub const IDP_AUTHORIZE: &str = "https://idp.example.com/oauth2/authorize";

static STATES: AtomicU64 = AtomicU64::new(1);

/// A running echo server; stops when dropped.
pub struct Upstream {
    /// The node's name, echoed in every answer.
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Upstream {
    /// Starts an echo server on an ephemeral loopback port.
    pub fn start(name: &str) -> Upstream {
        Upstream::start_with_keep_alive(name, None)
    }

    /// An echo server with an HTTP keep-alive timeout, as app servers have
    /// (Node 5 s, gunicorn 2 s): a request that arrives on a connection
    /// idle for `keep_alive` or longer is not answered, the server closes
    /// the connection instead. That is what a client sees when it sends on
    /// a pooled connection at the moment the server's keep-alive timer
    /// closes it (the request and the close cross on the wire): by timing
    /// in production, every time here. `None`: keeps connections open.
    pub fn start_with_keep_alive(name: &str, keep_alive: Option<Duration>) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind echo upstream");
        let addr = listener.local_addr().expect("local addr");
        let stop = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(Vec::new()));
        let (n, s, c) = (name.to_string(), stop.clone(), conns.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    if let (Ok(copy), Ok(mut list)) = (conn.try_clone(), c.lock()) {
                        list.push(copy);
                    }
                    let n = n.clone();
                    thread::spawn(move || serve(conn, &n, keep_alive));
                }
            }
        });
        Upstream {
            name: name.to_string(),
            addr,
            stop,
            conns,
        }
    }
}

impl Drop for Upstream {
    /// Stops like a killed node: the port closes and every open connection
    /// (Envoy keeps some alive) is cut.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Ok(list) = self.conns.lock() {
            for c in list.iter() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

fn serve(conn: TcpStream, name: &str, keep_alive: Option<Duration>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut out = conn;
    let mut answered: Option<std::time::Instant> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let (Some(idle), Some(at)) = (keep_alive, answered) {
            if at.elapsed() >= idle {
                // The keep-alive timer closed the connection: no answer.
                let _ = out.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        loop {
            let mut h = Vec::new();
            if reader.read_until(b'\n', &mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = String::from_utf8_lossy(&h).trim_end().to_string();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut answer = json!({
            "node": name,
            "method": method,
            "path": path,
            "headers": headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "body": String::from_utf8_lossy(&body),
        });
        let mut status = "200 OK";
        let mut extra = String::new();
        if let Some(q) = path.strip_prefix("/redirect?") {
            // Answers 302 to the `to` parameter: a test chooses the app's Location.
            let to: String = form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "to")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            status = "302 Found";
            extra = format!("location: {to}\r\n");
        } else if path == "/login"
            || path.starts_with("/login?")
            || (path.starts_with("/callback?") && path.contains("then=relogin"))
        {
            // /login starts a login; a callback with `then=relogin` answers
            // with a new one, as an app does after a failed silent login.
            let state = format!("{name}.{}", STATES.fetch_add(1, Ordering::SeqCst));
            let mode = if path.contains("form_post") {
                "&response_mode=form_post"
            } else {
                ""
            };
            let location = format!(
                "{IDP_AUTHORIZE}?response_type=code&client_id=app&state={state}\
                 &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback{mode}"
            );
            status = "302 Found";
            extra = format!("location: {location}\r\n");
            answer["state"] = json!(state);
        }
        // Long-lived responses: WebSocket, server-sent events, long poll.
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        if header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
            let key = header("sec-websocket-key").unwrap_or_default();
            let accept = websocket_accept(key);
            let resp = format!(
                "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                 sec-websocket-accept: {accept}\r\nx-node: {name}\r\n\r\n"
            );
            if out.write_all(resp.as_bytes()).is_err() {
                return;
            }
            // Echo every byte back: frames included, which is all a test needs.
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if out.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if let Some(q) = path.strip_prefix("/events?") {
            // Server-sent events: `count` events, `every_ms` apart.
            let param = |k: &str| {
                form_urlencoded::parse(q.as_bytes())
                    .find(|(n, _)| n == k)
                    .and_then(|(_, v)| v.parse::<u64>().ok())
            };
            let (count, every) = (
                param("count").unwrap_or(3),
                param("every_ms").unwrap_or(100),
            );
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
            if out.write_all(head.as_bytes()).is_err() {
                return;
            }
            for i in 0..count {
                std::thread::sleep(Duration::from_millis(every));
                let event = format!("data: event {i} from {name}\n\n");
                if out
                    .write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
                    .is_err()
                {
                    return;
                }
            }
            let _ = out.write_all(b"0\r\n\r\n");
            continue;
        }
        if let Some(q) = path.strip_prefix("/poll?") {
            // Long poll: answer after `ms` of silence.
            let ms = form_urlencoded::parse(q.as_bytes())
                .find(|(n, _)| n == "ms")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(ms));
        }
        let answer = answer.to_string();
        let resp = format!(
            "HTTP/1.1 {status}\r\n{extra}content-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            answer.len(),
            answer
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
        answered = Some(std::time::Instant::now());
    }
}

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
fn websocket_accept(key: &str) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h.finalize())
}

/// What an echo upstream received, parsed from its answer.
#[derive(Debug, Clone)]
pub struct Echo {
    /// Which upstream answered.
    pub node: String,
    /// Request path as received.
    pub path: String,
    /// Headers as received, in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The `state` this node issued, for `/login`.
    pub state: Option<String>,
    /// The request body as received.
    pub body: String,
}

impl Echo {
    /// Parses an echo answer body.
    pub fn parse(body: &[u8]) -> Echo {
        let v: Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "not an echo answer ({e}): {}",
                String::from_utf8_lossy(body)
            )
        });
        Echo {
            node: v["node"].as_str().unwrap_or_default().to_string(),
            path: v["path"].as_str().unwrap_or_default().to_string(),
            headers: v["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            (
                                p[0].as_str().unwrap_or_default().into(),
                                p[1].as_str().unwrap_or_default().into(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            state: v["state"].as_str().map(str::to_string),
            body: v["body"].as_str().unwrap_or_default().to_string(),
        }
    }

    /// Every value the upstream received for `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// The single value of `name` (panics if it arrived more than once:
    /// a doubled forwarding header is itself a bug).
    pub fn header(&self, name: &str) -> Option<String> {
        let all = self.all(name);
        assert!(
            all.len() <= 1,
            "upstream received {name} {} times: {all:?}",
            all.len()
        );
        all.into_iter().next()
    }
}
