//! Releases: `./build.sh package` (what `./build.sh release` does after
//! building the module) gives the same bytes twice, with everything a
//! release needs; CHANGELOG.md has a semver entry per release; the module
//! says in Envoy's log which release and commit it is.

use integration_tests::envoy::wasm_path;
use integration_tests::{repo_root, Envoy, EnvoyConfig};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn crate_version() -> String {
    std::fs::read_to_string(repo_root().join("filter/Cargo.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn package(dir: &Path) {
    let out = Command::new("bash")
        .arg(repo_root().join("build.sh"))
        .arg("package")
        .arg(dir)
        .arg(wasm_path())
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "./build.sh package: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file under `dir`, by relative path.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    files
}

fn manifest_digest(layout: &Path) -> String {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string()
}

#[test]
fn a_release_is_the_same_bytes_twice_and_has_what_it_promises() {
    let base = std::env::temp_dir().join(format!("oidc-edge-release-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    package(&a);
    package(&b);
    let (ta, tb) = (tree(&a), tree(&b));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(
            bytes == &tb[path],
            "{} differs between builds",
            path.display()
        );
    }

    let module = std::fs::read(wasm_path()).unwrap();
    assert!(ta[Path::new("oidc_edge.wasm")] == module);
    let sha = sha256_hex(&module);
    assert_eq!(
        String::from_utf8(ta[Path::new("oidc_edge.wasm.sha256")].clone()).unwrap(),
        format!("{sha}  oidc_edge.wasm\n"),
        "sha256sum -c reads it"
    );
    let notes = String::from_utf8(ta[Path::new("RELEASE_NOTES.md")].clone()).unwrap();
    let version = crate_version();
    assert!(
        notes.starts_with(&format!("# oidc-edge {version}\n")),
        "{notes}"
    );
    let changelog = std::fs::read_to_string(repo_root().join("CHANGELOG.md")).unwrap();
    let entry = changelog
        .split(&format!("## [{version}]"))
        .nth(1)
        .and_then(|e| e.split("\n## [").next())
        .expect("a CHANGELOG entry");
    let body = entry.split_once('\n').unwrap().1.trim();
    assert!(notes.contains(body), "the notes carry the CHANGELOG entry");
    assert!(notes.contains(&sha), "the notes name the module's sha256");
    for variant in ["compat", "artifact"] {
        let layout = a.join("oci").join(variant);
        let digest = manifest_digest(&layout);
        assert!(
            notes.contains(&digest),
            "the notes name the {variant} digest"
        );
        assert!(
            ta.contains_key(
                &Path::new("oci")
                    .join(variant)
                    .join("blobs/sha256")
                    .join(&digest)
            ),
            "the {variant} manifest is in the layout"
        );
    }
    let _ = std::fs::remove_dir_all(&base);
}

#[test]
fn the_changelog_has_a_semver_entry_per_release_newest_first() {
    let changelog = std::fs::read_to_string(repo_root().join("CHANGELOG.md")).unwrap();
    let mut versions = Vec::new();
    for line in changelog.lines().filter(|l| l.starts_with("## [")) {
        let (v, rest) = line["## [".len()..].split_once(']').expect("## [X.Y.Z]");
        let parts: Vec<u64> = v
            .split('.')
            .map(|p| {
                assert!(
                    !p.is_empty() && (p == "0" || !p.starts_with('0')),
                    "{line}: not semver"
                );
                p.parse().unwrap_or_else(|_| panic!("{line}: not semver"))
            })
            .collect();
        assert_eq!(parts.len(), 3, "{line}: X.Y.Z");
        let date = rest.strip_prefix(" - ").expect("a date");
        let d: Vec<&str> = date.split('-').collect();
        assert!(
            d.len() == 3 && d[0].len() == 4 && d[1].len() == 2 && d[2].len() == 2,
            "{line}: YYYY-MM-DD"
        );
        versions.push(parts);
    }
    assert!(!versions.is_empty());
    assert!(
        versions.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    let current: Vec<u64> = crate_version()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(
        versions[0], current,
        "the crate's version has the newest entry"
    );
}

#[test]
fn the_module_logs_its_version_and_build_commit_when_it_starts() {
    let envoy = Envoy::start(
        &EnvoyConfig::reference()
            .plugin_config("{}")
            .env("OIDC_EDGE_KEY_1", K1),
    );
    let log = envoy.log();
    let lines: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once("oidc-edge: ").map(|(_, m)| m))
        .filter(|m| m.ends_with(" starting"))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    assert!(
        lines.iter().all(|l| l == &lines[0]),
        "one line per VM, all alike"
    );
    let expected = format!("oidc-edge {} (commit ", crate_version());
    let commit = lines[0]
        .strip_prefix(&expected)
        .and_then(|r| r.strip_suffix(") starting"))
        .unwrap_or_else(|| panic!("{:?}", lines[0]));
    let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
    assert!(
        hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "the module names its commit (build it with ./build.sh build): {commit}"
    );
    let known = Command::new("git")
        .current_dir(repo_root())
        .args(["cat-file", "-e", &format!("{hash}^{{commit}}")])
        .status()
        .unwrap();
    assert!(known.success(), "{hash} is a commit of this repository");
}
