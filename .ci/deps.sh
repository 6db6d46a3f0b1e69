#!/usr/bin/env bash
# Install the Debian packages `make run` (build) or `make test` (test) needs and the machine lacks.
# As root it installs them; with passwordless sudo it uses sudo; otherwise it prints the exact command
# and fails. Rust (1.88+) and Node.js (20+, with npm) cannot come from Debian 12's archive at those
# versions: their absence is reported with what to do.
set -euo pipefail
what=${1:-test}
build=(cmake build-essential pkg-config)
# python3-venv: the SDK test venv; iptables: the transparent-mode test (in a network namespace);
# chromium + chromium-driver: the operator console test; curl: the README examples' tests;
# openssl: deploy/certs.sh and the chart tests; redis-server: the shared-state tests (they start
# their own instances on loopback ports).
test=(python3 python3-venv curl iptables openssl chromium chromium-driver redis-server)
case "$what" in
  build) packages=("${build[@]}") ;;
  test) packages=("${build[@]}" "${test[@]}") ;;
  *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    echo "deps: installing ${missing[*]}"
    sh -c "$cmd"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "deps: installing ${missing[*]} (sudo)"
    sudo sh -c "$cmd"
  else
    echo "deps: missing Debian packages: ${missing[*]}" >&2
    echo "deps: run as root:  $cmd" >&2
    exit 1
  fi
fi

fail=0
if ! command -v cargo >/dev/null; then
  echo "deps: Rust is missing: install rustup (https://rustup.rs) and Rust 1.88 or newer" >&2
  fail=1
fi
if [ "$what" = test ]; then
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null; then
    echo "deps: Node.js 20 or newer with npm is needed for the Node SDK and agent CLI tests (found: $(node --version 2>/dev/null || echo none))" >&2
    fail=1
  fi
fi
exit $fail
