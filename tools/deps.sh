#!/usr/bin/env bash
# Installs the Debian packages replog builds and tests with, if any are missing.
# Idempotent and quiet when everything is present. Sourced by demo.sh and test.sh.
set -euo pipefail

REPLOG_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  cppzmq-dev libzmq3-dev          # peer transport (ZeroMQ + its C++ binding)
  libmsgpack-cxx-dev              # storage and wire encoding
  liblmdb-dev lmdb-utils          # the update log; mdb_stat/mdb_dump for tests
  libboost-program-options-dev    # CLI, config file and environment options
  libgtest-dev libgmock-dev       # tests
  libsodium-dev                   # BLAKE2b state hash, base64
  nlohmann-json3-dev              # typed JSON and info JSON
  libcurl4-openssl-dev libpugixml-dev  # the S3 client: HTTP with SigV4, its XML
  libzstd-dev                     # compressed frame bodies between peers
  s3cmd                           # an independent S3 client for the archive's interop test
  python3 python3-zmq python3-msgpack  # test helpers, the example API client
  python3-nacl                    # the interop test's own Ed25519 -> X25519 keys
  python3-zstandard               # the interop test's compressed bodies (feature bit 4)
  iproute2 nftables faketime      # the nemesis: namespaces, partitions, clock offsets
  tcpdump                         # the capture test: no payload on the wire with CURVE
  chromium                        # the dashboard's browser test (headless, driven by playwright-core)
)

missing=()
for p in "${REPLOG_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The S3-compatible server the archive tests start on loopback (s3rver, from
# npm), installed into tests/s3/node_modules from the committed lock file.
# Node.js comes from Debian unless one is already on the PATH.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing: nodejs npm" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
s3_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/s3" && pwd)"
if [ ! -f "$s3_dir/node_modules/.package-lock.json" ] ||
   [ "$s3_dir/package-lock.json" -nt "$s3_dir/node_modules/.package-lock.json" ]; then
  echo "installing: s3rver (npm ci in tests/s3)" >&2
  npm ci --prefix "$s3_dir" --no-audit --no-fund --silent >/dev/null
fi

# playwright-core, which drives Debian's Chromium in the dashboard's browser
# test, installed into tests/web/node_modules from the committed lock file.
web_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/web" && pwd)"
if [ ! -f "$web_dir/node_modules/.package-lock.json" ] ||
   [ "$web_dir/package-lock.json" -nt "$web_dir/node_modules/.package-lock.json" ]; then
  echo "installing: playwright-core (npm ci in tests/web)" >&2
  npm ci --prefix "$web_dir" --no-audit --no-fund --silent >/dev/null
fi

# The peers of the side-by-side benchmarks (Yjs, Automerge, Hypercore,
# PouchDB; bench/run.sh), installed into bench/peers/node_modules from the
# committed lock file so that ctest can check their scripts
# (Bench.PeersScriptsPrintValidResults). Never linked into replog.
peers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../bench/peers" && pwd)"
if [ ! -f "$peers_dir/node_modules/.package-lock.json" ] ||
   [ "$peers_dir/package-lock.json" -nt "$peers_dir/node_modules/.package-lock.json" ]; then
  echo "installing: the benchmark peers (npm ci in bench/peers)" >&2
  npm ci --prefix "$peers_dir" --no-audit --no-fund --silent >/dev/null
fi
