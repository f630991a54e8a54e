//! The OCI image that `./build.sh oci` makes (`./build.sh test` makes it
//! before the tests run) is what an Istio `WasmPlugin` can pull: pushed to a
//! real registry (Debian's docker-registry) with skopeo, read back the way
//! Istio reads the "compat" format — an OCI manifest whose last layer is
//! tar+gzip holding `plugin.wasm` — and that `plugin.wasm` is, byte for
//! byte, the module the other tests run in Envoy.

use integration_tests::envoy::{free_port, wasm_path};
use integration_tests::repo_root;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Registry {
    child: Child,
    dir: PathBuf,
    addr: String,
}

impl Registry {
    fn start() -> Registry {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("oidc-edge-registry-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (./build.sh test installs it)");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry not listening on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, dir, addr }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo (./build.sh test installs it)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn the_oci_image_round_trips_through_a_registry_as_istio_reads_it() {
    let layout = repo_root().join("target/oci");
    assert!(
        layout.join("index.json").exists(),
        "no OCI image in {}: run ./build.sh oci (./build.sh test makes it)",
        layout.display()
    );
    let index = json(&layout.join("index.json"));
    let tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("the layout names its tag")
        .to_string();
    let registry = Registry::start();
    let remote = format!("docker://{}/oidc-edge:{tag}", registry.addr);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &remote,
    ]);

    // The manifest as the registry serves it.
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &remote]);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    let last = layers.last().expect("at least one layer");
    assert_eq!(
        last["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );

    // Pull it back and unpack the last layer as Istio does.
    let pulled = registry.dir.join("pulled");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &remote,
        &format!("oci:{}:{tag}", pulled.display()),
    ]);
    let digest = last["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let unpacked = registry.dir.join("unpacked");
    std::fs::create_dir_all(&unpacked).unwrap();
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(pulled.join("blobs/sha256").join(digest))
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plugin = std::fs::read(unpacked.join("plugin.wasm")).expect("plugin.wasm in the layer");
    let module = std::fs::read(wasm_path()).unwrap();
    assert!(
        plugin == module,
        "the image holds {} bytes, the module under test has {}",
        plugin.len(),
        module.len()
    );
}
