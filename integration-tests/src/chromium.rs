//! Headless Chromium (Debian's `chromium`, installed by `./build.sh test`)
//! for the logins that must also hold in a real browser: its cookie rules
//! (SameSite, Secure, `__Host-`), its redirect handling and its JavaScript
//! (a form_post page submits itself) are the ones users have.

use std::path::PathBuf;
use std::process::Command;

/// The Chromium binary: `CHROMIUM`, or `chromium` on the PATH.
pub fn chromium_bin() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"))
}

/// Opens `url` in a fresh profile, with `host` resolved to 127.0.0.1, lets
/// every redirect and script run, and returns the final page's DOM.
///
/// The test CA is not in Chromium's store, so certificate errors are
/// ignored; everything else (https, so Secure and `__Host-` cookies) is as
/// for a user.
pub fn final_dom(url: &str, host: &str) -> String {
    let profile = tempdir();
    let out = Command::new(chromium_bin())
        .args([
            "--headless",
            // Root in a container: no sandbox; no GPU, small /dev/shm.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--ignore-certificate-errors",
            "--no-first-run",
        ])
        .arg(format!("--host-resolver-rules=MAP {host} 127.0.0.1"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium (./build.sh test installs it; or set CHROMIUM)");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text inside the page's first `<pre>` (how Chromium shows a JSON or
/// plain-text answer), entities decoded.
pub fn pre_text(dom: &str) -> Option<String> {
    let start = dom.find("<pre")?;
    let body = &dom[start..];
    let body = &body[body.find('>')? + 1..];
    let text = &body[..body.find("</pre>")?];
    Some(
        text.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

fn tempdir() -> PathBuf {
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "oidc-edge-chromium-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).expect("chromium profile dir");
    dir
}
