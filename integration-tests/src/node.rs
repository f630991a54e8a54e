//! Processes of the end-to-end bed (`integration-tests/e2e/`): the
//! oidc-provider IdP and the relying-party apps (Node.js, and the Python
//! Authlib app). Each prints `<what> listening <port>` once it accepts
//! connections; the handle kills the process when dropped and prints its
//! output if the test failed.

use crate::repo_root;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The folder with `package.json`, the scripts and (after `npm ci`) `node_modules`.
pub fn e2e_dir() -> PathBuf {
    let dir = repo_root().join("integration-tests/e2e");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "no node_modules in {}: run ./build.sh test (it runs npm ci there)",
        dir.display()
    );
    dir
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A running script of the bed.
pub struct NodeProcess {
    /// A name for messages ("idp", "node-a").
    pub name: String,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    child: Child,
    log: PathBuf,
}

/// A script of the bed started but not yet listening.
pub struct Starting {
    name: String,
    script: String,
    child: Child,
    log: PathBuf,
    port: std::sync::mpsc::Receiver<u16>,
}

impl NodeProcess {
    /// Runs `script` (in the e2e folder) with `env`, and waits up to 30 s for
    /// its "listening" line.
    pub fn start(name: &str, script: &str, env: &[(&str, String)]) -> NodeProcess {
        NodeProcess::spawn(name, script, env).wait()
    }

    /// Runs `script` without waiting, so several can start at once. Spawn on
    /// the test's own thread: the process is killed when the thread that
    /// spawned it ends (so that nothing outlives a killed test).
    pub fn spawn(name: &str, script: &str, env: &[(&str, String)]) -> Starting {
        NodeProcess::spawn_with("node", name, script, env)
    }

    /// Runs `script` (in the e2e folder) with `program` (`node`,
    /// `python3`), as [`NodeProcess::spawn`] does.
    pub fn spawn_with(program: &str, name: &str, script: &str, env: &[(&str, String)]) -> Starting {
        let dir = e2e_dir();
        let log = std::env::temp_dir().join(format!(
            "oidc-edge-node-{}-{}-{name}.log",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst)
        ));
        let file = fs::File::create(&log).expect("node log file");
        let mut cmd = Command::new(program);
        cmd.arg(script)
            .current_dir(&dir)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("spawn {program} {script}: {e} (run ./build.sh test to install it)")
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let log_copy = log.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(port) = line
                        .split_once(" listening ")
                        .and_then(|(_, p)| p.trim().parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                        sent = true;
                        continue;
                    }
                }
                // Later output goes to the log next to stderr.
                if let Ok(mut f) = fs::OpenOptions::new().append(true).open(&log_copy) {
                    use std::io::Write;
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        Starting {
            name: name.to_string(),
            script: script.to_string(),
            child,
            log,
            port: rx,
        }
    }

    /// Kills the process now (a node that crashed or was stopped).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the process wrote to stderr (and stdout after its first line).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Starting {
    /// Waits up to 30 s for the "listening" line.
    pub fn wait(self) -> NodeProcess {
        let Starting {
            name,
            script,
            mut child,
            log,
            port: rx,
        } = self;
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Ok(port) = rx.recv_timeout(Duration::from_millis(100)) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{name} ({script}) exited with {status}:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{name} ({script}) did not listen within 30 s:\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        NodeProcess {
            name,
            port,
            child,
            log,
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- {} output ----\n{}", self.name, self.log());
        } else {
            let _ = fs::remove_file(&self.log);
        }
    }
}

/// `PYTHONPATH` for the bed's Python apps: `.tools/python` (where
/// `./build.sh test` installs Flask and Authlib from PyPI) before the
/// caller's own `PYTHONPATH`.
pub fn python_path() -> std::ffi::OsString {
    let mut path = repo_root().join(".tools/python").into_os_string();
    if let Some(p) = std::env::var_os("PYTHONPATH") {
        path.push(":");
        path.push(p);
    }
    path
}
