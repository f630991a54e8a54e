//! Real load-balancer software in front of the edge Envoy: Debian's HAProxy
//! (in `mode http`, and in `mode tcp` with `send-proxy-v2`) and nginx as an
//! L7 proxy, each terminating TLS with the bed's certificate and connecting
//! to Envoy from its own loopback address (the address oidc-edge is told to
//! trust, or to treat as a TCP load balancer). Their configurations follow
//! each project's documented recipe; the handle stops the process when it
//! drops and prints its log if the test failed.
//!
//! Also the one-hop app: Flask behind werkzeug's `ProxyFix(x_for=1, ...)`,
//! the configuration werkzeug documents for an app behind one proxy.

use crate::repo_root;
use crate::tls::Pki;
use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where HAProxy's `mode http` LB connects from (an HTTP LB: trusted).
pub const HAPROXY_HTTP_FROM: &str = "127.0.0.4";
/// Where nginx connects from (an HTTP LB: trusted).
pub const NGINX_FROM: &str = "127.0.0.5";
/// Where HAProxy's `mode tcp` LB with `send-proxy-v2` connects from.
pub const HAPROXY_PROXY_FROM: &str = "127.0.0.6";

/// A running LB (or app) process.
pub struct LbProcess {
    /// For messages: "haproxy-http", "nginx", "flask".
    pub name: String,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl LbProcess {
    fn spawn(name: &str, mut cmd: Command, port: u16, log: PathBuf) -> LbProcess {
        let file = fs::File::create(&log).expect("log file");
        let err = file.try_clone().expect("log file");
        cmd.stdin(Stdio::null()).stdout(file).stderr(err);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("spawn {name}: {e} (./build.sh test installs haproxy, nginx-light and Flask)")
        });
        let mut p = LbProcess {
            name: name.to_string(),
            port,
            child,
            log,
        };
        p.wait_listening();
        p
    }

    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not listen on {} within 30 s:\n{}",
                    self.name,
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the process wrote.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for LbProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} output ----\n{}", self.name, self.log());
        }
    }
}

/// HAProxy wants the certificate and its key in one file.
fn haproxy_pem(dir: &Path, pki: &Pki) -> PathBuf {
    let pem = dir.join("haproxy.pem");
    let mut both = fs::read(&pki.cert).expect("cert");
    both.extend(fs::read(&pki.key).expect("key"));
    fs::write(&pem, both).expect("write pem");
    pem
}

fn haproxy(name: &str, dir: &Path, port: u16, cfg: String) -> LbProcess {
    let file = dir.join(format!("{name}.cfg"));
    fs::write(&file, cfg).expect("write haproxy config");
    let mut cmd = Command::new("haproxy");
    // -db: stay in the foreground; -W would fork a master.
    cmd.arg("-db").arg("-f").arg(&file);
    LbProcess::spawn(name, cmd, port, dir.join(format!("{name}.log")))
}

const HAPROXY_DEFAULTS: &str = "global
    maxconn 1000
defaults
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
";

/// HAProxy in `mode http` terminating TLS on `port`, as its documentation
/// recommends for an app behind it: `option forwardfor` appends the
/// client's address to `X-Forwarded-For`, and `X-Forwarded-Proto` is set
/// from the TLS connection. `Host` passes on unchanged. It connects to the
/// edge Envoy at `edge_port` from [`HAPROXY_HTTP_FROM`].
pub fn haproxy_http(dir: &Path, pki: &Pki, port: u16, edge_port: u16) -> LbProcess {
    let pem = haproxy_pem(dir, pki);
    let cfg = format!(
        "{HAPROXY_DEFAULTS}
frontend https_in
    mode http
    bind 127.0.0.1:{port} ssl crt {pem}
    option forwardfor
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    default_backend edge
backend edge
    mode http
    server edge 127.0.0.1:{edge_port} source {HAPROXY_HTTP_FROM}
",
        pem = pem.display()
    );
    haproxy("haproxy-http", dir, port, cfg)
}

/// HAProxy in `mode tcp` terminating TLS on `port` (as AWS NLB TLS
/// listeners do) and announcing the client with `send-proxy-v2`: it adds no
/// HTTP header, and whatever the client sends passes on unchanged. It
/// connects to the edge Envoy's PROXY listener at `edge_port` from
/// [`HAPROXY_PROXY_FROM`].
pub fn haproxy_tcp_proxy(dir: &Path, pki: &Pki, port: u16, edge_port: u16) -> LbProcess {
    let pem = haproxy_pem(dir, pki);
    let cfg = format!(
        "{HAPROXY_DEFAULTS}
frontend tls_in
    mode tcp
    bind 127.0.0.1:{port} ssl crt {pem}
    default_backend edge_proxy
backend edge_proxy
    mode tcp
    server edge 127.0.0.1:{edge_port} send-proxy-v2 source {HAPROXY_PROXY_FROM}
",
        pem = pem.display()
    );
    haproxy("haproxy-tcp", dir, port, cfg)
}

/// nginx as an L7 load balancer terminating TLS on `port`, with the proxy
/// headers of its documentation: `Host $host` (which drops the port),
/// `X-Real-IP`, `X-Forwarded-For $proxy_add_x_forwarded_for`,
/// `X-Forwarded-Proto $scheme`, and WebSocket upgrades. It connects to the
/// edge Envoy at `edge_port` from [`NGINX_FROM`].
pub fn nginx(dir: &Path, pki: &Pki, port: u16, edge_port: u16) -> LbProcess {
    let d = dir.join("nginx");
    fs::create_dir_all(&d).expect("nginx dir");
    // One process (no master and workers): stopping it leaves nothing
    // behind. With a master, killing it orphaned its worker, which kept
    // running after the test.
    let cfg = format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{edge_port};
            proxy_bind {NGINX_FROM};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 1h;
        }}
    }}
}}
",
        d = d.display(),
        cert = pki.cert.display(),
        key = pki.key.display(),
    );
    let file = d.join("nginx.conf");
    fs::write(&file, cfg).expect("write nginx config");
    let mut cmd = Command::new("nginx");
    cmd.arg("-e")
        .arg("stderr")
        .arg("-p")
        .arg(&d)
        .arg("-c")
        .arg(&file);
    LbProcess::spawn("nginx", cmd, port, dir.join("nginx.log"))
}

/// The Flask app (`integration-tests/e2e/proxyfix_app.py`) behind werkzeug's
/// `ProxyFix` trusting one proxy, answering what it believes about each
/// request as JSON. Flask comes from `.tools/python` (installed by
/// `./build.sh test` from PyPI) or the system's Python.
pub fn flask_app(dir: &Path) -> LbProcess {
    let port = crate::free_port();
    let script = repo_root().join("integration-tests/e2e/proxyfix_app.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(port.to_string())
        .env("PYTHONPATH", crate::node::python_path());
    LbProcess::spawn("flask", cmd, port, dir.join("flask.log"))
}
