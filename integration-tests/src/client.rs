//! A raw HTTP/1.1 client: exact header bytes (duplicates, odd values,
//! non-UTF-8), and a chosen loopback source address, so a test can play a
//! trusted load balancer (e.g. 127.0.0.2) or an untrusted client (127.0.0.3).

use socket2::{Domain, Socket, Type};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

/// A request to send.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    source: IpAddr,
    body: Vec<u8>,
    /// Bytes sent before the request (a PROXY protocol header).
    preamble: Vec<u8>,
}

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Request {
    /// A GET for `path` with `Host: host`, from 127.0.0.1.
    pub fn get(host: &str, path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            headers: vec![("Host".into(), host.as_bytes().to_vec())],
            source: "127.0.0.1".parse().expect("ip"),
            body: Vec::new(),
            preamble: Vec::new(),
        }
    }

    /// Adds a header line (repeat to send a header twice).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.into(), value.as_bytes().to_vec()));
        self
    }

    /// Adds a header line with raw bytes.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Request {
        self.headers.push((name.into(), value.to_vec()));
        self
    }

    /// A POST of `body` with the given content type.
    pub fn post(host: &str, path: &str, content_type: &str, body: &str) -> Request {
        let mut r = Request::get(host, path);
        r.method = "POST".into();
        r.headers
            .push(("Content-Type".into(), content_type.as_bytes().to_vec()));
        r.headers
            .push(("Content-Length".into(), body.len().to_string().into_bytes()));
        r.body = body.as_bytes().to_vec();
        r
    }

    /// Starts the connection with a PROXY protocol v1 line (`PROXY TCP4
    /// <src> <dst> <sport> <dport>`), as a PROXY-speaking load balancer does,
    /// or a client pretending to be one.
    pub fn proxy_v1(mut self, line: &str) -> Request {
        self.preamble = format!("{line}\r\n").into_bytes();
        self
    }

    /// Sends from this loopback source address.
    pub fn from(mut self, source: &str) -> Request {
        self.source = source.parse().expect("source ip");
        self
    }

    /// Sends the request to `port` on 127.0.0.1 and reads the whole response.
    pub fn send(&self, port: u16) -> Response {
        self.try_send(port)
            .unwrap_or_else(|e| panic!("{} {} to port {port}: {e}", self.method, self.path))
    }

    /// Sends with the cookies of `jar` and keeps in it what the response
    /// sets, as a browser's jar does: a `Set-Cookie` with `Max-Age=0`
    /// deletes its cookie.
    pub fn send_with_cookies(self, jar: &mut BTreeMap<String, String>, port: u16) -> Response {
        let req = if jar.is_empty() {
            self
        } else {
            let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            self.header("Cookie", &cookies.join("; "))
        };
        let resp = req.send(port);
        for sc in resp.all("set-cookie") {
            let pair = sc.split(';').next().unwrap_or_default();
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("Set-Cookie without name=value: {sc}"));
            if sc.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
        resp
    }

    /// Like [`Request::send`], but an I/O error is returned, not a panic.
    pub fn try_send(&self, port: u16) -> std::io::Result<Response> {
        let dst = SocketAddr::from(([127, 0, 0, 1], port));
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        sock.bind(&SocketAddr::new(self.source, 0).into())?;
        sock.connect_timeout(&dst.into(), Duration::from_secs(5))?;
        let mut stream: TcpStream = sock.into();
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        let mut raw = self.preamble.clone();
        raw.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.path).as_bytes());
        for (k, v) in &self.headers {
            raw.extend_from_slice(k.as_bytes());
            raw.extend_from_slice(b": ");
            raw.extend_from_slice(v);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"Connection: close\r\n\r\n");
        raw.extend_from_slice(&self.body);
        stream.write_all(&raw)?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf)?;
        Ok(parse_response(&buf))
    }
}

pub(crate) fn parse_response(buf: &[u8]) -> Response {
    let text_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("incomplete response: {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..text_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let raw_body = &buf[text_end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    // A stream Envoy cut short ends mid-chunk: keep what arrived.
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let data = &b[eol + 2..];
        out.extend_from_slice(&data[..size.min(data.len())]);
        b = data.get(size + 2..).unwrap_or_default();
    }
    out
}
