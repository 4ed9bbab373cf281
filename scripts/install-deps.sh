#!/usr/bin/env bash
# Installs every Debian package meshguard needs to build, test, fuzz and benchmark.
# Idempotent: packages already present are skipped, so running it twice is cheap.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  clang libclang-rt-dev            # libFuzzer + ASan/UBSan runtimes for the sanitizer build
  libssl-dev openssl               # TLS, X.509, signatures; the openssl CLI cross-checks our certs
  libyaml-cpp-dev nlohmann-json3-dev
  libre2-dev                       # rego: regex.* built-ins (RE2 is the syntax Go's regexp and OPA use)
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  curl                             # end-to-end tests and the demo talk HTTP like a user would
  jq                               # end-to-end tests read the CLI's JSON output
  libasio-dev                      # standalone Asio: the proxy's event loops (C++20 coroutines)
  libnghttp2-dev                   # http2: HTTP/2 framing, HPACK and flow control (issue 15; no home-made codec)
  libjemalloc-dev                  # the daemons' allocator (CMake MESHGUARD_JEMALLOC, on by default)
  wrk nghttp2-client haproxy       # bench/dataplane: closed/open-loop load and the HAProxy 2.6 baseline;
                                   # h2load (nghttp2-client) also drives tests/e2e/proxy/http2.sh
  python3 iproute2                 # bench/dataplane: idle-connection holder, ss
  libsqlite3-dev                   # the control plane's embedded store (WAL)
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc  # control-plane API (gRPC over mTLS)
  etcd-server                      # control-plane replicas share an etcd v3 cluster (--store etcd://);
                                   # tests/e2e/control/etcd_replicas.sh starts a three-member one
  libjs-d3                         # the console's graph (d3 v3), served by meshguard-control at run time
  chromium chromium-driver         # tests/e2e/console: the console's pages in headless Chromium over WebDriver
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
