//! The two OCI images `./build.sh oci` makes (`./build.sh test` makes them
//! before the tests run), in both variants of the Wasm image specification
//! (github.com/solo-io/wasm, `spec/`): `compat` (one tar+gzip layer holding
//! `plugin.wasm`) and `oci` (a runtime-config layer and a raw-module layer of
//! the spec's own media types). Each is pushed to a real registry (Debian's
//! docker-registry) with skopeo, fetched back by digest over the registry
//! API the way Istio's and Envoy Gateway's fetchers fetch it, and pulled by
//! digest with skopeo; the media types, the annotations and the module's
//! sha256 are checked on what came back.
//!
//! What those fetchers take from an image is re-stated here from their
//! sources (Istio 1.30 `pkg/wasm/imagefetcher.go` and `cache.go`, Envoy
//! Gateway 1.9 `internal/wasm/imagefetcher.go` and `cache.go`, which follow
//! the same rules):
//! - the checksum a `WasmPlugin.sha256` (or EG's `image.sha256`) is compared
//!   with is the sha256 of the manifest as the registry serves it, not the
//!   module's;
//! - a Docker schema 2 manifest: the last layer must be Docker's tar+gzip;
//! - otherwise first "compat": the last layer must be
//!   `application/vnd.oci.image.layer.v1.tar+gzip`; it is gunzipped and the
//!   first tar entry whose base name is `plugin.wasm` is the module;
//! - failing that "oci": exactly two layers, of which the first with
//!   `application/vnd.module.wasm.content.layer.v1+wasm` is the raw module;
//! - the result must start with the Wasm magic number and be 8 bytes or more.

use integration_tests::envoy::{free_port, wasm_path};
use integration_tests::{repo_root, Request};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
const WASM_CONTENT: &str = "application/vnd.module.wasm.content.layer.v1+wasm";

struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
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
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry not listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry { child, dir, port }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// GET on the registry API (what go-containerregistry does for Istio and EG).
    fn get(&self, path: &str, accept: &str) -> integration_tests::Response {
        let r = Request::get(&self.addr(), path)
            .header("accept", accept)
            .send(self.port);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r
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

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(repo_root())
        .args(args)
        .env("TZ", "UTC0")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// An image layout: its tag, manifest digest and manifest bytes.
struct Layout {
    dir: PathBuf,
    tag: String,
    digest: String,
    manifest: Vec<u8>,
}

fn layout(dir: &Path) -> Layout {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap_or_else(|_| {
            panic!(
                "no OCI image in {}: run ./build.sh oci (./build.sh test makes it)",
                dir.display()
            )
        }))
        .unwrap();
    let entries = index["manifests"].as_array().expect("manifests");
    assert_eq!(entries.len(), 1, "one image per layout");
    let tag = entries[0]["annotations"]["org.opencontainers.image.ref.name"]
        .as_str()
        .expect("the layout names its tag")
        .to_string();
    let digest = entries[0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest = std::fs::read(dir.join("blobs/sha256").join(&digest)).unwrap();
    Layout {
        dir: dir.to_path_buf(),
        tag,
        digest,
        manifest,
    }
}

/// Which rule of the fetchers found the module.
#[derive(Debug, PartialEq)]
enum Read {
    Compat,
    Oci,
}

/// The module Istio's and Envoy Gateway's fetchers take from this image,
/// given the manifest as served and a way to fetch blobs; the rules are in
/// this file's header.
fn fetch_as_istio_and_eg(
    manifest: &[u8],
    expected_sha256: &str,
    blob: &dyn Fn(&str) -> Vec<u8>,
) -> Result<(Read, Vec<u8>), String> {
    let actual = sha256_hex(manifest);
    if actual != expected_sha256 {
        return Err(format!(
            "checksum {actual} does not match {expected_sha256}"
        ));
    }
    let m: Value = serde_json::from_slice(manifest).map_err(|e| e.to_string())?;
    let layers = m["layers"].as_array().cloned().unwrap_or_default();
    let media = |l: &Value| l["mediaType"].as_str().unwrap_or_default().to_string();
    let digest = |l: &Value| l["digest"].as_str().unwrap_or_default().to_string();
    let (how, module) = if m["mediaType"] == DOCKER_MANIFEST {
        let last = layers.last().ok_or("no layers")?;
        if media(last) != DOCKER_TAR_GZIP {
            return Err(format!("docker image, last layer is {}", media(last)));
        }
        (Read::Compat, plugin_wasm(&gunzip(&blob(&digest(last)))?)?)
    } else {
        let compat = match layers.last() {
            None => Err("no layers".to_string()),
            Some(l) if media(l) != OCI_TAR_GZIP => Err(format!("last layer is {}", media(l))),
            Some(l) => gunzip(&blob(&digest(l))).and_then(|t| plugin_wasm(&t)),
        };
        match compat {
            Ok(module) => (Read::Compat, module),
            Err(compat_err) => {
                if layers.len() != 2 {
                    return Err(format!(
                        "not compat ({compat_err}); not oci: {} layers, not 2",
                        layers.len()
                    ));
                }
                let l = layers
                    .iter()
                    .find(|l| media(l) == WASM_CONTENT)
                    .ok_or(format!(
                        "not compat ({compat_err}); no {WASM_CONTENT} layer"
                    ))?;
                (Read::Oci, blob(&digest(l)))
            }
        }
    };
    if module.len() < 8 || !module.starts_with(b"\0asm") {
        return Err("not a Wasm binary".into());
    }
    Ok((how, module))
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    if !out.status.success() {
        return Err(format!(
            "not gzip: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// The first tar entry whose base name is `plugin.wasm` (ustar headers:
/// name at 0..100, size in octal at 124..136, prefix at 345..500).
fn plugin_wasm(tar: &[u8]) -> Result<Vec<u8>, String> {
    let mut at = 0;
    while let Some(h) = tar.get(at..at + 512) {
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let field = |r: std::ops::Range<usize>| {
            let f = &h[r];
            let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).into_owned()
        };
        let size = usize::from_str_radix(field(124..136).trim(), 8)
            .map_err(|e| format!("tar size: {e}"))?;
        let mut name = field(0..100);
        if &h[257..262] == b"ustar" && !field(345..500).is_empty() {
            name = format!("{}/{name}", field(345..500));
        }
        let data = at + 512;
        if name.rsplit('/').next() == Some("plugin.wasm") {
            return tar
                .get(data..data + size)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| "truncated plugin.wasm".to_string());
        }
        at = data + size.div_ceil(512) * 512;
    }
    Err("plugin.wasm not found in the archive".into())
}

/// Pushes one layout, reads it back as Istio/EG do and as skopeo does, and
/// returns the manifest as served.
fn round_trip(registry: &Registry, variant: &str, expect: Read) -> Value {
    let local = layout(&repo_root().join("target/oci").join(variant));
    let module = std::fs::read(wasm_path()).unwrap();
    let name = format!("oidc-edge-{variant}");
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:{}", local.dir.display(), local.tag),
        &format!("docker://{}/{name}:{}", registry.addr(), local.tag),
    ]);

    // By digest over the registry API, as go-containerregistry asks for it.
    let served = registry.get(
        &format!("/v2/{name}/manifests/sha256:{}", local.digest),
        &format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"),
    );
    assert_eq!(served.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(
        served.header("docker-content-digest"),
        Some(format!("sha256:{}", local.digest).as_str())
    );
    assert!(
        served.body == local.manifest,
        "the registry serves the manifest byte for byte"
    );
    let blob = |d: &str| registry.get(&format!("/v2/{name}/blobs/{d}"), "*/*").body;
    let (how, fetched) = fetch_as_istio_and_eg(&served.body, &local.digest, &blob)
        .unwrap_or_else(|e| panic!("{variant}: Istio and EG would refuse it: {e}"));
    assert_eq!(how, expect, "{variant} is read by the {expect:?} rule");
    assert!(
        fetched == module,
        "{variant}: the fetchers get {} bytes, the module under test has {}",
        fetched.len(),
        module.len()
    );
    // The module's checksum, pinned by a wrong manifest digest, is refused.
    assert!(fetch_as_istio_and_eg(&served.body, &sha256_hex(&module), &blob).is_err());

    // Pulled by digest with skopeo: the same manifest, the same module.
    let pulled = registry.dir.join(format!("pulled-{variant}"));
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!(
            "docker://{}/{name}@sha256:{}",
            registry.addr(),
            local.digest
        ),
        &format!("oci:{}:{}", pulled.display(), local.tag),
    ]);
    let back = layout(&pulled);
    assert_eq!(back.digest, local.digest, "{variant}: digest kept");
    let (_, from_pull) = fetch_as_istio_and_eg(&back.manifest, &local.digest, &|d: &str| {
        std::fs::read(
            pulled
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    })
    .unwrap();
    assert_eq!(sha256_hex(&from_pull), sha256_hex(&module));
    serde_json::from_slice(&served.body).unwrap()
}

/// The annotations every release image carries.
fn check_annotations(manifest: &Value) {
    let a = &manifest["annotations"];
    let version = std::fs::read_to_string(repo_root().join("filter/Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap();
    assert_eq!(a["org.opencontainers.image.version"], version.as_str());
    assert_eq!(a["org.opencontainers.image.title"], "oidc-edge");
    assert_eq!(a["org.opencontainers.image.licenses"], "Apache-2.0");
    let revision = a["org.opencontainers.image.revision"].as_str().unwrap();
    let head = git(&["rev-parse", "HEAD"]);
    assert!(
        revision == head || revision == format!("{head}-dirty"),
        "revision {revision} is the commit {head}"
    );
    assert_eq!(
        a["org.opencontainers.image.created"],
        git(&[
            "log",
            "-1",
            "--format=%cd",
            "--date=format-local:%Y-%m-%dT%H:%M:%SZ"
        ])
        .as_str(),
        "created is the commit's date"
    );
    let source = a["org.opencontainers.image.source"].as_str().unwrap();
    match std::env::var("OIDC_EDGE_SOURCE") {
        Ok(s) => assert_eq!(source, s),
        Err(_) => assert!(!source.is_empty()),
    }
}

#[test]
fn both_variants_round_trip_by_digest_and_are_read_as_istio_and_envoy_gateway_read_them() {
    let registry = Registry::start();

    let compat = round_trip(&registry, "compat", Read::Compat);
    assert_eq!(compat["mediaType"], OCI_MANIFEST);
    assert_eq!(
        compat["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = compat["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], OCI_TAR_GZIP);
    check_annotations(&compat);

    let oci = round_trip(&registry, "artifact", Read::Oci);
    assert_eq!(oci["config"]["mediaType"], WASM_CONFIG);
    let layers = oci["layers"].as_array().unwrap();
    let content: Vec<&Value> = layers
        .iter()
        .filter(|l| l["mediaType"] == WASM_CONTENT)
        .collect();
    assert_eq!(content.len(), 1, "one content layer");
    assert_eq!(
        content[0]["digest"],
        format!(
            "sha256:{}",
            sha256_hex(&std::fs::read(wasm_path()).unwrap())
        )
        .as_str(),
        "the content layer is the raw module"
    );
    assert_eq!(
        content[0]["annotations"]["org.opencontainers.image.title"],
        "plugin.wasm"
    );
    check_annotations(&oci);

    // The runtime config names the root_id the reference configuration uses
    // and the proxy-wasm ABI the module exports.
    let config: Value = serde_json::from_slice(
        &registry
            .get(
                &format!(
                    "/v2/oidc-edge-artifact/blobs/{}",
                    oci["config"]["digest"].as_str().unwrap()
                ),
                "*/*",
            )
            .body,
    )
    .unwrap();
    assert_eq!(config["type"], "envoy_proxy");
    let root_id = integration_tests::EnvoyConfig::reference()
        .doc
        .to_string()
        .split("\"root_id\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(str::to_string);
    assert_eq!(config["config"]["root_ids"][0].as_str(), root_id.as_deref());
    let module = std::fs::read(wasm_path()).unwrap();
    for abi in config["abiVersions"].as_array().unwrap() {
        let export = format!(
            "proxy_abi_version_{}",
            abi.as_str()
                .unwrap()
                .trim_start_matches('v')
                .replace('.', "_")
        );
        assert!(
            module.windows(export.len()).any(|w| w == export.as_bytes()),
            "the module exports {export}"
        );
    }
}
