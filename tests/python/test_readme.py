"""The README's promises, checked: the quickstart snippet runs verbatim against the gateway, and
`asg run` with no settings listens on 127.0.0.1:8080 (proxy) and 127.0.0.1:9090 (admin) with the dev
profile and its state in ./data. The defaults test runs in a private network namespace (`unshare -rn`)
so the fixed ports are free whatever else runs on the machine."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import asg_harness
from asg_harness import TEXT_REPLY

README = asg_harness.REPO_ROOT / "README.md"


def python_blocks(text):
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_quickstart_snippet_runs_verbatim(asg_gateway, mock):
    snippet = python_blocks(README.read_text())[0]
    assert 'base_url="http://127.0.0.1:8080/v1"' in snippet
    gw = asg_gateway("dev")
    # The only change: the test gateway's port instead of 8080 (8080 may be taken here).
    port = gw.proxy_url.rsplit(":", 1)[1]
    code = snippet.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    env.update(OPENAI_API_KEY="sk-test-not-real", NO_PROXY="127.0.0.1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == TEXT_REPLY
    assert mock.requests()[-1]["path"] == "/v1/chat/completions"


def _can_unshare():
    if not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -rn (user + network namespaces)")
def test_defaults_listen_on_8080_and_9090(tmp_path):
    asg = asg_harness.asg_bin()
    mock = asg_harness.mock_upstream_bin()
    script = f"""
set -e
trap 'kill -9 $(jobs -p) 2>/dev/null' EXIT
ip link set lo up 2>/dev/null || true
{mock} --listen 127.0.0.1:7000 >/dev/null 2>&1 &
cd {tmp_path}
ASG_UPSTREAM=http://127.0.0.1:7000 {asg} run >asg.log 2>&1 &
for i in $(seq 100); do curl -sf 127.0.0.1:9090/ready >/dev/null && break; sleep 0.1; done
curl -s 127.0.0.1:9090/ready
echo
curl -s 127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' -d '{{"model":"m","messages":[{{"role":"user","content":"hi"}}]}}'
echo
ls data
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASG_")}
    out = subprocess.run(["unshare", "-rn", "bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    lines = out.stdout.strip().splitlines()
    assert len(lines) >= 3, out.stdout + out.stderr + (tmp_path / "asg.log").read_text()
    assert '"status":"ready"' in lines[0] and '"policy_version":"dev@' in lines[0], lines[0]
    assert TEXT_REPLY in lines[1]
    assert "asg.sled" in lines[2:] and "mask.key" in lines[2:]
