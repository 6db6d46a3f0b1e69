"""Webhook latency: 1,000 AdmissionReviews of a realistic pod over one kept-alive TLS connection
(as kube-apiserver reuses connections), against the same client's GET /healthz on the same
connection (the transport and client floor). Not a test: prints numbers.

    cargo build --release -p asg
    ASG_E2E_PROFILE=release .ci-tools/venv/bin/python tests/kube/bench_injector.py [N]
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from harness import Injector, render, review  # noqa: E402


def pod():
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "reporter-7f9c-", "namespace": "agents",
                     "labels": {"app": "reporter", "pod-template-hash": "7f9c"},
                     "annotations": {"asg.dev/profile": "production"}},
        "spec": {
            "serviceAccountName": "reporter",
            "initContainers": [{"name": "fetch", "image": "curlimages/curl:8.8.0",
                                "args": ["-sSfo", "/w/p.txt", "https://prompts.example/p.txt"],
                                "volumeMounts": [{"name": "work", "mountPath": "/w"}]}],
            "containers": [
                {"name": "agent", "image": "python:3.12-slim", "command": ["python", "-m", "reporter"],
                 "env": [{"name": f"VAR_{i}", "value": "x" * 40} for i in range(20)]
                 + [{"name": "OPENAI_API_KEY", "valueFrom": {"secretKeyRef": {"name": "openai", "key": "k"}}}],
                 "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}},
                 "volumeMounts": [{"name": "work", "mountPath": "/w"}]},
                {"name": "tools", "image": "ghcr.io/example/mcp-tools:0.3", "ports": [{"containerPort": 8000}]},
            ],
            "volumes": [{"name": "work", "emptyDir": {}}],
        },
    }


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    docs = render(sets=["injection.namespaces[0].name=agents"], kube_version="1.30.0")
    with tempfile.TemporaryDirectory() as d:
        inj = Injector(Path(d), docs)
        try:
            conn = inj.connection()
            bodies = [json.dumps(review(pod(), "agents")).encode() for _ in range(n)]
            # Warm up the connection and both paths.
            for b in bodies[:50]:
                assert inj.post(b, conn)[0] == 200
            health, reviews = [], []
            for b in bodies:
                t = time.perf_counter()
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                health.append(time.perf_counter() - t)
                t = time.perf_counter()
                status, body = inj.post(b, conn)
                reviews.append(time.perf_counter() - t)
                assert status == 200 and b'"patchType":"JSONPatch"' in body
            size = len(bodies[0])
            ms = lambda x: f"{x * 1000:.3f} ms"  # noqa: E731
            print(f"{n} reviews, request {size} bytes, one kept-alive TLS connection, client in Python")
            print(f"  review   p50 {ms(statistics.median(reviews))}  p99 {ms(pct(reviews, 99))}  max {ms(max(reviews))}")
            print(f"  healthz  p50 {ms(statistics.median(health))}  p99 {ms(pct(health, 99))}")
            print(f"  review / healthz p50: {statistics.median(reviews) / statistics.median(health):.2f}x")
            hist = [line for line in inj.metrics().splitlines() if line.startswith("asg_injector_review_seconds")]
            print("  server side (body read to answer):", *[h for h in hist if "_sum" in h or "_count" in h])
        finally:
            inj.stop()


if __name__ == "__main__":
    main()
