"""deploy/: the plain manifests with the Secrets deploy/certs.sh makes, and the interception
CAs (chart-generated and certs.sh-generated) loaded by the real gateway."""

import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.request

import pytest
import yaml

from harness import (CHART, RELEASE_NS, ROOT, Injector, admit, asg_bin, b64, free_ports, one, render,
                     validate)


def certs_sh(*namespaces):
    proc = subprocess.run([ROOT / "deploy" / "certs.sh", *namespaces], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    bundle = re.search(r'caBundle","value":"([A-Za-z0-9+/=]+)"', proc.stderr).group(1)
    return docs, bundle


def test_plain_manifests_with_certs_sh_admit_a_pod(tmp_path):
    secrets, bundle = certs_sh("agents")
    for s in secrets:
        validate(s, "1.29.0")
    names = sorted((s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets)
    assert names == [("agents", "asg-admin"), ("agents", "asg-ca"), (RELEASE_NS, "asg-injector-tls")]
    plain = [d for d in yaml.safe_load_all((ROOT / "deploy" / "asg.yaml").read_text()) if d]
    assert not [d for d in plain if d["metadata"]["name"] == "asg-policies"], "policies.create=false"
    # kubectl -n agents create configmap asg-policies --from-file=policies/ --from-file=policies/rules/
    files = [f for d in ("policies", "policies/rules") for f in sorted((ROOT / d).iterdir()) if f.is_file()]
    policies = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "asg-policies", "namespace": "agents"},
                "data": {f.name: f.read_text() for f in files}}
    assert len(policies["data"]) == len(files), "file names collide"
    secrets.append(policies)
    mwc = one(plain, "MutatingWebhookConfiguration")
    for w in mwc["webhooks"]:  # what the printed kubectl patch does
        w["clientConfig"]["caBundle"] = bundle
    inj = Injector(tmp_path / "injector", plain + secrets)
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "agents"},
               "spec": {"containers": [{"name": "agent", "image": "python:3.12-slim"}]}}
        resp, patched = admit(inj, pod, "agents")
        assert patched is not None
        # Everything the sidecar references exists: manifests plus certs.sh output.
        have = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in plain + secrets}
        for v in patched["spec"]["volumes"]:
            if "secret" in v:
                assert ("Secret", "agents", v["secret"]["secretName"]) in have
            if "configMap" in v:
                assert ("ConfigMap", "agents", v["configMap"]["name"]) in have
                assert {i["key"] for i in v["configMap"]["items"]} <= set(policies["data"])
    finally:
        inj.stop()


def chart_ca():
    docs = render(sets=["injection.namespaces[0].name=agents"])
    s = one(docs, "Secret", "asg-ca", "agents")
    return b64(s["data"]["tls.crt"]), b64(s["data"]["tls.key"]), b64(s["data"]["ca.crt"])


def certs_sh_ca():
    docs, _ = certs_sh("agents")
    s = next(d for d in docs if d["metadata"]["name"] == "asg-ca")
    return b64(s["data"]["tls.crt"]), b64(s["data"]["tls.key"]), b64(s["data"]["ca.crt"])


@pytest.mark.parametrize("source", ["chart", "certs.sh"])
def test_the_sidecar_signs_with_the_ca_and_agents_trust_the_bundle(source, tmp_path):
    """The gateway loads the CA as the sidecar would (the chart's is a SEC1 EC key, certs.sh's
    PKCS#8), `asg pod-init` builds the agents' bundle, and a client trusting only that bundle
    accepts the certificate the gateway mints for an intercepted host."""
    crt, key, ca = chart_ca() if source == "chart" else certs_sh_ca()
    if source == "chart":
        assert "BEGIN EC PRIVATE KEY" in key
    (tmp_path / "ca").mkdir()
    for name, text in (("tls.crt", crt), ("tls.key", key), ("ca.crt", ca)):
        (tmp_path / "ca" / name).write_text(text)
    os.chmod(tmp_path / "ca" / "tls.key", 0o600)
    init = subprocess.run([asg_bin(), "pod-init", "--ca-cert", tmp_path / "ca" / "ca.crt",
                           "--trust-dir", tmp_path / "trust"], capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    bundle = (tmp_path / "trust" / "bundle.pem").read_text()
    assert bundle.rstrip().endswith((tmp_path / "trust" / "ca.pem").read_text().rstrip())

    proxy, admin = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASG_")}
    env.update(ASG_LISTEN=f"127.0.0.1:{proxy}", ASG_ADMIN_LISTEN=f"127.0.0.1:{admin}",
               ASG_DATA_DIR=str(tmp_path / "data"), ASG_CA_CERT=str(tmp_path / "ca" / "tls.crt"),
               ASG_CA_KEY=str(tmp_path / "ca" / "tls.key"), ASG_POLICY="dev",
               ASG_POLICY_DIR=str(ROOT / "policies"), ASG_THREADS="1")
    log = open(tmp_path / "asg.log", "w+")
    gw = subprocess.Popen([asg_bin(), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while True:
            assert gw.poll() is None, open(tmp_path / "asg.log").read()
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).status == 200:
                    break
            except OSError:
                pass
            assert time.time() < deadline, open(tmp_path / "asg.log").read()
            time.sleep(0.1)
        s = socket.create_connection(("127.0.0.1", proxy), timeout=10)
        s.sendall(b"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n")
        head = s.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
        ctx = ssl.create_default_context(cafile=str(tmp_path / "trust" / "bundle.pem"))
        tls = ctx.wrap_socket(s, server_hostname="api.openai.com")
        issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
        assert "asg" in issuer["commonName"], issuer
        tls.close()
    finally:
        gw.terminate()
        gw.wait(10)
        log.close()


def test_render_script_args_match_the_chart_test():
    script = (ROOT / "deploy" / "render.sh").read_text()
    args = json.loads(re.search(r"^# helm-args: (.*)$", script, re.M).group(1))
    assert args[1] == str(CHART.relative_to(ROOT))
