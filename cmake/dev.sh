#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine:
#   bash cmake/dev.sh serve [attune serve flags...]  install what is missing, build, run the platform
#   bash cmake/dev.sh test                           install what is missing, build, run the tests
#                                                    (CI; leaves out the e2e `soak` runs)
#   bash cmake/dev.sh test-full                      the same with the `soak` runs too
#   bash cmake/dev.sh deps | build                   just those steps
# Idempotent: installed packages and an up-to-date build are left alone.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${ATTUNE_BUILD_DIR:-$ROOT/build}"

PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates ccache
  librdkafka-dev librocksdb-dev libpistache-dev nlohmann-json3-dev libsodium-dev libspdlog-dev
  libyaml-cpp-dev libwebsocketpp-dev libasio-dev libcurl4-openssl-dev libcli11-dev
  libhowardhinnant-date-dev tzdata prometheus-cpp-dev libjemalloc-dev libgtest-dev libgmock-dev libarchive-dev
  python3 python3-pytest python3-requests python3-websocket python3-websockets
  python3-confluent-kafka python3-venv python3-pip python3-setuptools python3-wheel
  podman runc catatonit busybox-static  # container actions: engine, runtime, --init, test image
  chromium chromium-driver python3-selenium  # the web console's browser tests
)

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }

deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # node.js actions: Debian's nodejs and npm, unless a node with npm is installed already (e.g.
  # NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package).
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing+=(nodejs npm); fi
  if [ ${#missing[@]} -eq 0 ]; then
    log "packages: all ${#PACKAGES[@]} present"
    return
  fi
  log "installing ${#missing[@]} packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  log "building in $BUILD"
  # ccache keeps compiled objects across clones and build directories of this machine (paths
  # relative to the checkout), so a clean clone rebuilds in a minute instead of ten.
  local launcher=()
  if command -v ccache >/dev/null; then
    export CCACHE_BASEDIR="$ROOT" CCACHE_NOHASHDIR=true
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
  fi
  cmake --build "$BUILD" -j "$(nproc)"
  console
}

# The web console (api/console/): npm ci + esbuild into <build>/api/cli/console, next to the
# binary, which serves it at /. Skipped with a message when node/npm are missing or the build
# fails (the API works without it); ATTUNE_SKIP_CONSOLE=1 skips it on purpose.
console() {
  local src="$ROOT/api/console" out="$BUILD/api/cli/console" stamp="$BUILD/console.stamp"
  [ -f "$src/package.json" ] || return 0
  if [ "${ATTUNE_SKIP_CONSOLE:-}" = "1" ]; then
    log "web console: skipped (ATTUNE_SKIP_CONSOLE=1); / will say how to build it"
    return 0
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "web console: SKIPPED, node/npm not found (apt-get install nodejs npm); the API works without it"
    return 0
  fi
  if [ -f "$stamp" ] && [ -f "$out/index.html" ] &&
     [ -z "$(find "$src" -path "$src/node_modules" -prune -o -type f -newer "$stamp" -print -quit)" ]; then
    log "web console: up to date ($out)"
    return 0
  fi
  log "web console: npm ci and build into $out"
  if (cd "$src" && npm ci --no-audit --no-fund --loglevel=error && node build.mjs "$out"); then
    touch "$stamp"
  else
    log "web console: SKIPPED, its build failed (above); the API works without it"
  fi
}

run_tests() {
  log "unit and integration tests (ctest)"
  ctest --test-dir "$BUILD" --output-on-failure -j 2 --timeout 300
  log "end-to-end tests (pytest against the real attune serve)"
  local rc=0
  local select=(-m "not soak")
  [ "${1:-}" = "full" ] && select=()
  ATTUNE_BIN="$BUILD/api/cli/attune" /usr/bin/python3 -m pytest "$ROOT/tests/e2e" -q -p no:cacheprovider \
    "${select[@]}" || rc=$?
  if [ $rc -eq 5 ]; then
    echo "pytest collected no tests: that is a failure" >&2
    exit 1
  fi
  return $rc
}

cmd="${1:-}"
shift || true
case "$cmd" in
  deps) deps ;;
  build) deps; build ;;
  serve) deps; build; exec "$BUILD/api/cli/attune" serve "$@" ;;
  test) deps; build; run_tests ;;
  test-full) deps; build; run_tests full ;;
  *) echo "usage: bash cmake/dev.sh serve|test|test-full|deps|build" >&2; exit 2 ;;
esac
