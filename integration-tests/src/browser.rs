//! A scripted browser for end-to-end logins: HTTP/1.1 over TCP or TLS
//! (verifying certificates against a test CA, as a browser verifies against
//! its roots), redirects followed by hand, and a cookie jar with the rules
//! that decide whether a login survives:
//!
//! - `Secure` cookies are only set from and sent to https URLs;
//! - `__Host-` cookies need `Secure`, `Path=/` and no `Domain`;
//!   `__Secure-` cookies need `Secure`;
//! - `SameSite` (missing means `Lax`, as in current browsers): on a
//!   cross-site request `Strict` cookies are withheld and `Lax` ones are sent
//!   only on top-level `GET` navigations; `None` needs `Secure`. A
//!   navigation is cross-site when any URL on its redirect chain is on
//!   another site (so an IdP's redirect back to a callback is cross-site);
//!   the site is the scheme and the last two labels of the host (or the IP);
//! - a cookie whose name and value exceed 4096 bytes is ignored;
//! - `Path`, `Max-Age` and `Expires` as RFC 6265 says; host-only cookies
//!   unless `Domain` is given; ports do not separate cookies.
//!
//! Every request is recorded as a [`Hop`], so tests and the demo can say
//! which node served what.

use crate::client::{parse_response, Response};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use url::Url;

/// One request the browser made and what came back.
#[derive(Debug, Clone)]
pub struct Hop {
    /// `GET` or `POST`.
    pub method: String,
    /// The URL requested.
    pub url: Url,
    /// The status (0 if the connection failed).
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// The app node that answered (`x-app-node`).
    pub node: Option<String>,
    /// The edge Envoy that answered (`x-edge-envoy`, which the fleet bed's
    /// Envoys add to their responses).
    pub edge: Option<String>,
    /// oidc-edge's reason for refusing (`x-oidc-edge-reason`).
    pub reason: Option<String>,
    /// The first line of the body.
    pub summary: String,
}

/// A response, with the URL it came from.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL that answered.
    pub url: Url,
    /// The response.
    pub response: Response,
}

impl Page {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.response.status
    }

    /// The body as text.
    pub fn text(&self) -> String {
        self.response.text()
    }

    /// The app node that answered.
    pub fn node(&self) -> Option<&str> {
        self.response.header("x-app-node")
    }
}

/// A navigation stopped before its next request (see [`Browser::navigate_until`]).
#[derive(Debug, Clone)]
pub struct Paused {
    /// The URL the browser would request next.
    pub next: Url,
    chain: Vec<Url>,
    /// A form to POST there (url-encoded), instead of a GET.
    form: Option<String>,
}

/// A cookie in the jar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// The host that set it (host-only) or the `Domain` it covers.
    pub host: String,
    /// Set with `Domain`: also sent to subdomains.
    pub domain: bool,
    /// `Path`.
    pub path: String,
    /// `Secure`.
    pub secure: bool,
    /// `SameSite`, lower case: `strict`, `lax` or `none`.
    pub same_site: String,
    /// When it expires (`None`: end of the browser session).
    pub expires: Option<SystemTime>,
}

/// The scripted browser. Each instance is one user with its own cookie jar.
pub struct Browser {
    jar: Vec<Cookie>,
    resolve: HashMap<String, SocketAddr>,
    tls: Arc<rustls::ClientConfig>,
    /// Every request made, in order.
    pub trace: Vec<Hop>,
    /// Cookies refused, with the rule that refused them.
    pub refused: Vec<String>,
    /// Headers added to every request (a client trying to spoof, say).
    pub extra_headers: Vec<(String, String)>,
}

impl Browser {
    /// A browser that trusts the CA certificate in `ca` (PEM).
    pub fn new(ca: &Path) -> Browser {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("read CA certificate") {
            roots
                .add(cert.expect("CA certificate PEM"))
                .expect("CA certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Browser {
            jar: Vec::new(),
            resolve: HashMap::new(),
            tls: Arc::new(tls),
            trace: Vec::new(),
            refused: Vec::new(),
            extra_headers: Vec::new(),
        }
    }

    /// Connects to `addr` for `host` (like an /etc/hosts entry, port included).
    pub fn resolve(mut self, host_port: &str, addr: SocketAddr) -> Browser {
        self.resolve.insert(host_port.to_string(), addr);
        self
    }

    /// The user types `url`: a top-level GET navigation, redirects followed.
    pub fn navigate(&mut self, url: &str) -> Page {
        match self.navigate_until(url, |_| false) {
            Ok(page) => page,
            Err(p) => unreachable_paused(&p),
        }
    }

    /// Like [`Browser::navigate`], but stops before requesting a URL for
    /// which `stop` is true (say, the callback), so a test can act first.
    pub fn navigate_until(
        &mut self,
        url: &str,
        stop: impl Fn(&Url) -> bool,
    ) -> Result<Page, Box<Paused>> {
        let next = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        self.follow(
            Box::new(Paused {
                next,
                chain: Vec::new(),
                form: None,
            }),
            stop,
        )
    }

    /// Continues a paused navigation.
    pub fn resume(&mut self, paused: Box<Paused>) -> Page {
        match self.follow(paused, |_| false) {
            Ok(page) => page,
            Err(p) => unreachable_paused(&p),
        }
    }

    fn follow(
        &mut self,
        mut nav: Box<Paused>,
        stop: impl Fn(&Url) -> bool,
    ) -> Result<Page, Box<Paused>> {
        for _ in 0..20 {
            if stop(&nav.next) {
                return Err(nav);
            }
            let url = nav.next.clone();
            let cross_site = nav.chain.iter().any(|u| site(u) != site(&url));
            let method = if nav.form.is_some() { "POST" } else { "GET" };
            let response = self.send(method, &url, cross_site, true, nav.form.as_deref());
            let location = response.header("location").map(str::to_string);
            nav.form = None;
            match (response.status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => {
                    let next = url
                        .join(&loc)
                        .unwrap_or_else(|e| panic!("bad Location {loc}: {e}"));
                    nav.chain.push(url);
                    nav.next = next;
                }
                _ => match auto_submitted_form(&response.text()) {
                    // A page whose script submits its form (an IdP's
                    // response_mode=form_post page): POST it, as a browser with
                    // JavaScript does, from this page's site.
                    Some((action, body)) => {
                        let next = url
                            .join(&action)
                            .unwrap_or_else(|e| panic!("bad form action {action}: {e}"));
                        nav.chain.push(url);
                        nav.next = next;
                        nav.form = Some(body);
                    }
                    None => return Ok(Page { url, response }),
                },
            }
        }
        panic!("more than 20 redirects, last to {}", nav.next);
    }

    /// One same-site GET (a page's own request, say `fetch("/me")`), not followed.
    pub fn get(&mut self, url: &str) -> Page {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        let response = self.send("GET", &url, false, false, None);
        Page { url, response }
    }

    /// Sends one request with the jar's cookies, stores the answer's cookies,
    /// and records the hop.
    fn send(
        &mut self,
        method: &str,
        url: &Url,
        cross_site: bool,
        top_level: bool,
        form: Option<&str>,
    ) -> Response {
        let mut head = format!("{method} {} HTTP/1.1\r\n", target(url));
        head.push_str(&format!("Host: {}\r\n", host_port(url)));
        head.push_str("User-Agent: oidc-edge-e2e-browser\r\nAccept: */*\r\n");
        if let Some(c) = self.cookie_header(url, cross_site, top_level, method) {
            head.push_str(&format!("Cookie: {c}\r\n"));
        }
        for (k, v) in &self.extra_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = form {
            head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("Connection: close\r\n\r\n");
        if let Some(body) = form {
            head.push_str(body);
        }
        let result = self.connect(url).and_then(|mut conn| {
            conn.write_all(head.as_bytes())?;
            conn.flush()?;
            let mut buf = Vec::new();
            match conn.read_to_end(&mut buf) {
                Ok(_) => Ok(buf),
                // A peer closing without TLS close_notify after a complete answer.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => {
                    Ok(buf)
                }
                Err(e) => Err(e),
            }
        });
        let response = match result {
            Ok(buf) if buf.windows(4).any(|w| w == b"\r\n\r\n") => parse_response(&buf),
            Ok(_) => Response {
                status: 0,
                headers: Vec::new(),
                body: b"connection closed without an answer".to_vec(),
            },
            Err(e) => Response {
                status: 0,
                headers: Vec::new(),
                body: format!("connection failed: {e}").into_bytes(),
            },
        };
        for set in response.all("set-cookie") {
            self.set_cookie(url, set);
        }
        self.trace.push(Hop {
            method: method.to_string(),
            url: url.clone(),
            status: response.status,
            location: response.header("location").map(str::to_string),
            node: response.header("x-app-node").map(str::to_string),
            edge: response.header("x-edge-envoy").map(str::to_string),
            reason: response.header("x-oidc-edge-reason").map(str::to_string),
            summary: response
                .text()
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(160)
                .collect(),
        });
        response
    }

    fn connect(&self, url: &Url) -> std::io::Result<Conn> {
        let hp = host_port(url);
        let addr = match self.resolve.get(&hp) {
            Some(a) => *a,
            None => hp.to_socket_addrs()?.next().ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("cannot resolve {hp}"))
            })?,
        };
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
        if url.scheme() != "https" {
            return Ok(Conn::Plain(tcp));
        }
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_string();
        let name = ServerName::try_from(host)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let conn =
            rustls::ClientConnection::new(self.tls.clone(), name).map_err(std::io::Error::other)?;
        Ok(Conn::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))))
    }

    /// The `Cookie` header for a request, by the rules in the module docs.
    fn cookie_header(
        &mut self,
        url: &Url,
        cross_site: bool,
        top_level: bool,
        method: &str,
    ) -> Option<String> {
        let now = SystemTime::now();
        self.jar.retain(|c| c.expires.is_none_or(|e| e > now));
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let path = url.path();
        let mut send: Vec<&Cookie> = self
            .jar
            .iter()
            .filter(|c| {
                let host_ok = if c.domain {
                    host == c.host || host.ends_with(&format!(".{}", c.host))
                } else {
                    host == c.host
                };
                let same_site_ok = !cross_site
                    || match c.same_site.as_str() {
                        "strict" => false,
                        "lax" => top_level && method == "GET",
                        _ => true,
                    };
                host_ok
                    && path_matches(path, &c.path)
                    && (!c.secure || url.scheme() == "https")
                    && same_site_ok
            })
            .collect();
        send.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        if send.is_empty() {
            return None;
        }
        Some(
            send.iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// Stores one `Set-Cookie`, or records why it was refused.
    fn set_cookie(&mut self, url: &Url, header: &str) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            self.refused.push(format!("{header}: no name=value"));
            return;
        };
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let mut c = Cookie {
            name,
            value,
            host: host.clone(),
            domain: false,
            path: default_path(url.path()),
            secure: false,
            same_site: "lax".into(),
            expires: None,
        };
        let mut path_attr = None;
        let mut delete = false;
        let mut max_age_seen = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "secure" => c.secure = true,
                "path" if v.starts_with('/') => path_attr = Some(v.to_string()),
                "domain" if !v.is_empty() => {
                    let d = v.trim_start_matches('.').to_ascii_lowercase();
                    if host != d && !host.ends_with(&format!(".{d}")) {
                        self.refused
                            .push(format!("{header}: Domain {d} does not cover {host}"));
                        return;
                    }
                    c.host = d;
                    c.domain = true;
                }
                "samesite" => c.same_site = v.to_ascii_lowercase(),
                "max-age" => {
                    max_age_seen = true;
                    match v.parse::<i64>() {
                        Ok(n) if n <= 0 => delete = true,
                        Ok(n) => {
                            c.expires = Some(SystemTime::now() + Duration::from_secs(n as u64))
                        }
                        Err(_) => {}
                    }
                }
                "expires" if !max_age_seen => {
                    if let Ok(t) = httpdate::parse_http_date(v) {
                        if t <= SystemTime::now() {
                            delete = true;
                        } else {
                            c.expires = Some(t);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Some(p) = path_attr {
            c.path = p;
        }
        let https = url.scheme() == "https";
        let refuse = if c.name.len() + c.value.len() > 4096 {
            Some("name and value exceed 4096 bytes")
        } else if c.secure && !https {
            Some("Secure cookie from an http URL")
        } else if c.same_site == "none" && !c.secure {
            Some("SameSite=None without Secure")
        } else if c.name.starts_with("__Host-") && (!c.secure || c.domain || c.path != "/") {
            Some("__Host- cookie without Secure, Path=/ or with Domain")
        } else if c.name.starts_with("__Secure-") && !c.secure {
            Some("__Secure- cookie without Secure")
        } else {
            None
        };
        if let Some(why) = refuse {
            self.refused.push(format!("{}: {why}", c.name));
            return;
        }
        self.jar
            .retain(|o| !(o.name == c.name && o.host == c.host && o.path == c.path));
        if !delete {
            self.jar.push(c);
        }
    }

    /// The cookies in the jar.
    pub fn cookies(&self) -> &[Cookie] {
        &self.jar
    }

    /// Changes the jar (a test tampering with or deleting a cookie).
    pub fn cookies_mut(&mut self) -> &mut Vec<Cookie> {
        &mut self.jar
    }

    /// Opens a WebSocket (the page's own, same-site) and returns it once the
    /// server answered 101; otherwise the answer.
    pub fn websocket(&mut self, url: &str) -> Result<WebSocket, Response> {
        let url = Url::parse(url).unwrap_or_else(|e| panic!("bad URL {url}: {e}"));
        let http_url = {
            let mut u = url.clone();
            let scheme = if url.scheme() == "wss" {
                "https"
            } else {
                "http"
            };
            let _ = u.set_scheme(scheme);
            u
        };
        let mut head = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\n",
            target(&url),
            host_port(&http_url)
        );
        head.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n");
        head.push_str("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
        if let Some(c) = self.cookie_header(&http_url, false, false, "GET") {
            head.push_str(&format!("Cookie: {c}\r\n"));
        }
        head.push_str("\r\n");
        let mut conn = self.connect(&http_url).map_err(|e| Response {
            status: 0,
            headers: Vec::new(),
            body: format!("connection failed: {e}").into_bytes(),
        })?;
        let io = |e: std::io::Error| Response {
            status: 0,
            headers: Vec::new(),
            body: format!("{e}").into_bytes(),
        };
        conn.write_all(head.as_bytes()).map_err(io)?;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match conn.read(&mut byte) {
                Ok(1) => buf.push(byte[0]),
                _ => break,
            }
        }
        if !buf.ends_with(b"\r\n\r\n") {
            return Err(io(std::io::Error::other("closed before the answer")));
        }
        let response = parse_response(&buf);
        self.trace.push(Hop {
            method: "GET (websocket)".into(),
            url: url.clone(),
            status: response.status,
            location: None,
            node: response.header("x-app-node").map(str::to_string),
            edge: response.header("x-edge-envoy").map(str::to_string),
            reason: response.header("x-oidc-edge-reason").map(str::to_string),
            summary: String::new(),
        });
        if response.status != 101 {
            return Err(response);
        }
        Ok(WebSocket { conn, response })
    }
}

/// The form a page submits from its own script on load, as
/// `(action, url-encoded hidden fields)`: pages with
/// `document.forms[0].submit()` and a `<form method="post">`.
fn auto_submitted_form(html: &str) -> Option<(String, String)> {
    if !html.contains("document.forms[0].submit()") {
        return None;
    }
    let form = &html[html.find("<form")?..];
    let form = &form[..form.find("</form>")?];
    let tag = &form[..form.find('>')?];
    if !tag.to_ascii_lowercase().contains("method=\"post\"") {
        return None;
    }
    let action = attr(tag, "action")?;
    let mut body = form_urlencoded::Serializer::new(String::new());
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if let (Some(name), Some(value)) = (attr(tag, "name"), attr(tag, "value")) {
            body.append_pair(&name, &value);
        }
    }
    Some((action, body.finish()))
}

/// An attribute's value in a tag (double-quoted), HTML entities decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = start + tag[start..].find('"')?;
    Some(html_unescape(&tag[start..end]))
}

/// Decodes the character references an HTML attribute value may hold.
fn html_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") || e.starts_with("#X") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn unreachable_paused(p: &Paused) -> ! {
    panic!("navigation paused at {} without a stop condition", p.next)
}

/// An open WebSocket.
pub struct WebSocket {
    conn: Conn,
    /// The 101 answer.
    pub response: Response,
}

impl WebSocket {
    /// Sends a text message (masked, as clients must).
    pub fn send(&mut self, text: &str) -> std::io::Result<()> {
        let data = text.as_bytes();
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81u8];
        match data.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.conn.write_all(&frame)?;
        self.conn.flush()
    }

    /// Reads one text message.
    pub fn recv(&mut self) -> std::io::Result<String> {
        let mut h = [0u8; 2];
        self.conn.read_exact(&mut h)?;
        let len = match h[1] & 0x7f {
            126 => {
                let mut l = [0u8; 2];
                self.conn.read_exact(&mut l)?;
                u16::from_be_bytes(l) as usize
            }
            127 => {
                let mut l = [0u8; 8];
                self.conn.read_exact(&mut l)?;
                u64::from_be_bytes(l) as usize
            }
            n => n as usize,
        };
        let mut data = vec![0u8; len];
        self.conn.read_exact(&mut data)?;
        Ok(String::from_utf8_lossy(&data).into_owned())
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// `host[:port]` as in the Host header (port only when not the default).
fn host_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

/// Path and query.
fn target(url: &Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// The site: scheme and registrable domain (approximated as the last two
/// labels; an IP address is its own site).
pub fn site(url: &Url) -> (String, String) {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let domain = if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        host
    } else {
        let labels: Vec<&str> = host.rsplitn(3, '.').collect();
        labels
            .iter()
            .take(2)
            .rev()
            .copied()
            .collect::<Vec<_>>()
            .join(".")
    };
    (url.scheme().to_string(), domain)
}

/// RFC 6265 default-path.
fn default_path(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].to_string(),
    }
}

/// RFC 6265 path-match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn jar_rules() {
        let mut b = Browser::new(Path::new("/dev/null"));
        let app = url("https://app.test:8443/login");
        b.set_cookie(&app, "a=1; Path=/; Secure; HttpOnly; SameSite=Lax");
        b.set_cookie(&app, "__Host-x=1; Path=/app; Secure");
        b.set_cookie(&url("http://app.test/"), "s=1; Secure");
        b.set_cookie(&app, "n=1; SameSite=None");
        b.set_cookie(&app, &format!("big={}", "v".repeat(4094)));
        b.set_cookie(&app, "strict=1; SameSite=Strict");
        assert_eq!(
            b.cookies()
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "strict"]
        );
        assert_eq!(b.refused.len(), 4, "{:?}", b.refused);
        // Cross-site top-level GET: Lax goes, Strict stays.
        assert_eq!(
            b.cookie_header(&url("https://app.test:8443/callback"), true, true, "GET")
                .as_deref(),
            Some("a=1")
        );
        // Cross-site POST: neither.
        assert_eq!(b.cookie_header(&app, true, true, "POST"), None);
        // Never over http (Secure), never to another host, any port.
        assert_eq!(
            b.cookie_header(&url("http://app.test:8443/"), false, true, "GET"),
            Some("strict=1".into())
        );
        assert_eq!(
            b.cookie_header(&url("https://idp.test/"), false, true, "GET"),
            None
        );
        assert!(b
            .cookie_header(&url("https://app.test:1/"), false, true, "GET")
            .is_some());
        b.set_cookie(&app, "a=; Max-Age=0");
        assert_eq!(b.cookies().len(), 1);
        b.set_cookie(&app, "strict=; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert!(b.cookies().is_empty());
    }

    #[test]
    fn form_post_pages_are_submitted() {
        let page = r#"<script>document.addEventListener('DOMContentLoaded', function () { document.forms[0].submit() });</script>
<form method="post" action="https://app.test:8443/callback">
    <input type="hidden" name="code" value="a&amp;b&#x3d;c"/>
<input type="hidden" name="state" value="s&#39;1"/></form>"#;
        let (action, body) = auto_submitted_form(page).unwrap();
        assert_eq!(action, "https://app.test:8443/callback");
        assert_eq!(body, "code=a%26b%3Dc&state=s%271");
        assert!(auto_submitted_form(&page.replace("submit()", "")).is_none());
    }

    #[test]
    fn sites() {
        assert_eq!(
            site(&url("https://a.app.test/")),
            site(&url("https://app.test:1/"))
        );
        assert_ne!(
            site(&url("https://app.test/")),
            site(&url("http://app.test/"))
        );
        assert_ne!(
            site(&url("https://app.test/")),
            site(&url("https://127.0.0.1:9/"))
        );
    }

    #[test]
    fn paths() {
        assert_eq!(default_path("/a/b"), "/a");
        assert_eq!(default_path("/a"), "/");
        assert!(path_matches("/app/x", "/app"));
        assert!(!path_matches("/apple", "/app"));
    }
}
