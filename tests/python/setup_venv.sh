#!/bin/sh
# Create <repo>/.venv and install tests/python/requirements.txt into it, unless it is already up to date
# (a stamp holds the hash of the requirements and of the Python version). Idempotent and quiet.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"
req="$root/tests/python/requirements.txt"
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

want=$( { cat "$req"; "$python" --version 2>&1; } | sha256sum | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if [ -x "$venv/bin/python" ] && [ "$("$venv/bin/python" --version 2>&1)" != "$("$python" --version 2>&1)" ]; then
    echo "setup_venv: $python changed version, recreating $venv"
    rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "setup_venv: creating $venv"
    "$python" -m venv "$venv"
fi
echo "setup_venv: installing $(basename "$req")"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
