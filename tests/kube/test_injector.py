"""The real `asg injector` over TLS, driven like kube-apiserver drives a webhook.

The injector runs with the certificate, caBundle and settings the chart renders; each
case picks the webhook by the chart's selectors, sends an AdmissionReview v1, applies the
returned patch and validates the Pod against the Kubernetes schemas (1.29 and newest).
No real API server round trip is tested (none can run here).
"""

import copy
import json
import re
import ssl
import time

import pytest
import yaml

from harness import (KUBE_VERSIONS, Injector, admit, one, render, review, validate,
                     webhooks_called)

NS = "agents"
ENABLED = {"asg-injection": "enabled"}


@pytest.fixture(scope="module")
def chart():
    return render(sets=[f"injection.namespaces[0].name={NS}",
                        "injection.namespaces[1].name=research",
                        "injection.namespaces[1].profile=strict"])


@pytest.fixture(scope="module")
def injector(chart, tmp_path_factory):
    inj = Injector(tmp_path_factory.mktemp("injector"), chart)
    yield inj
    inj.stop()


def pod(name="agent", labels=None, annotations=None, **spec):
    meta = {"generateName": f"{name}-", "namespace": NS, "labels": {"app": name, **(labels or {})}}
    if annotations:
        meta["annotations"] = annotations
    body = {"serviceAccountName": "reporter",
            "containers": [{"name": "agent", "image": "python:3.12-slim",
                            "env": [{"name": "OPENAI_API_KEY", "value": "from-a-secret"}]}]}
    body.update(spec)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def containers(p, kind="containers"):
    return {c["name"]: c for c in p["spec"].get(kind, [])}


def env(c):
    return {e["name"]: e.get("value") for e in c.get("env", [])}


def check_valid(p):
    for version in KUBE_VERSIONS:
        validate(p, version)


def test_selectors_route_pods_like_the_api_server(chart):
    mwc = one(chart, "MutatingWebhookConfiguration")
    name = lambda ws: [w["name"] for w in ws]  # noqa: E731
    assert name(webhooks_called(mwc, NS, ENABLED, {"app": "a"})) == ["namespace.sidecar-injector.asg.dev"]
    assert name(webhooks_called(mwc, NS, ENABLED, {"asg.dev/inject": "false"})) == []
    assert name(webhooks_called(mwc, NS, {}, {"app": "a"})) == []
    assert name(webhooks_called(mwc, NS, {}, {"asg.dev/inject": "true"})) == ["object.sidecar-injector.asg.dev"]
    assert name(webhooks_called(mwc, NS, {"asg-injection": "disabled"}, {"asg.dev/inject": "true"})) == []
    for excluded in ("kube-system", "asg-system"):
        assert webhooks_called(mwc, excluded, ENABLED, {"asg.dev/inject": "true"}) == []


def test_opt_in_by_namespace_injects_a_native_proxy_env_sidecar(injector):
    resp, p = admit(injector, pod(), NS)
    assert resp["allowed"] is True and p is not None
    check_valid(p)
    inits = containers(p, "initContainers")
    assert list(inits) == ["asg-init", "asg"]
    asg = inits["asg"]
    assert asg["restartPolicy"] == "Always"
    sc = asg["securityContext"]
    assert sc["runAsNonRoot"] and sc["readOnlyRootFilesystem"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"} and sc["allowPrivilegeEscalation"] is False
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(asg)
    e = env(asg)
    assert e["ASG_AGENT_ID"] == "$(ASG_POD_NAMESPACE)/$(ASG_SERVICE_ACCOUNT)/$(ASG_POD_NAME)"
    assert e["ASG_POLICY"] == "dev" and e["ASG_CA_KEY"] == "/etc/asg/ca/tls.key"
    fields = {x["name"]: x["valueFrom"]["fieldRef"]["fieldPath"] for x in asg["env"] if "valueFrom" in x
              and "fieldRef" in x["valueFrom"]}
    assert fields == {"ASG_POD_NAME": "metadata.name", "ASG_POD_NAMESPACE": "metadata.namespace",
                      "ASG_SERVICE_ACCOUNT": "spec.serviceAccountName"}
    agent = containers(p)["agent"]
    ae = env(agent)
    assert ae["HTTPS_PROXY"] == ae["http_proxy"] == "http://127.0.0.1:15080"
    assert ae["SSL_CERT_FILE"] == ae["REQUESTS_CA_BUNDLE"] == "/var/run/asg/trust/bundle.pem"
    assert ae["NODE_EXTRA_CA_CERTS"] == ae["CODEX_CA_CERTIFICATE"] == "/var/run/asg/trust/ca.pem"
    assert ae["OPENAI_API_KEY"] == "from-a-secret"
    assert json.loads(p["metadata"]["annotations"]["asg.dev/status"])["sidecar"] == "native"


def test_opt_in_by_pod_label_and_profile_by_namespace(injector):
    resp, p = admit(injector, pod(labels={"asg.dev/inject": "true"}), "research")
    assert p is not None
    assert env(containers(p, "initContainers")["asg"])["ASG_POLICY"] == "strict"


def test_opt_out_by_annotation_is_left_alone(injector):
    resp, p = admit(injector, pod(annotations={"asg.dev/inject": "false"}), NS)
    assert resp["allowed"] is True and p is None


def test_already_injected_is_a_no_op(injector):
    _, first = admit(injector, pod(), NS)
    resp, again = admit(injector, first, NS)
    assert resp["allowed"] is True and again is None


def test_dry_run_gets_the_same_patch_and_is_counted_apart(injector):
    p = pod()
    req_wet, req_dry = review(p, NS), review(p, NS, dry_run=True)
    wet = json.loads(injector.post(json.dumps(req_wet).encode())[1])["response"]
    dry = json.loads(injector.post(json.dumps(req_dry).encode())[1])["response"]
    assert dry["patch"] == wet["patch"] and dry["allowed"] is True
    assert re.search(r'asg_injector_reviews_total\{dry_run="true",result="injected"\} [1-9]', injector.metrics())


@pytest.mark.parametrize("native", [True, False])
def test_transparent_mode_native_and_classic(injector, native):
    ann = {"asg.dev/mode": "transparent", "asg.dev/native-sidecar": str(native).lower(),
           "asg.dev/proxy-cpu": "250m", "asg.dev/proxy-memory-limit": "768Mi"}
    _, p = admit(injector, pod(annotations=ann), NS)
    check_valid(p)
    inits = containers(p, "initContainers")
    init = inits["asg-init"]
    asg = inits["asg"] if native else containers(p)["asg"]
    if native:
        assert list(inits) == ["asg-init", "asg"] and asg["restartPolicy"] == "Always"
    else:
        assert list(inits) == ["asg-init"] and "restartPolicy" not in asg
        assert list(containers(p))[0] == "asg", "a classic sidecar starts first"
        assert asg["lifecycle"]["postStart"]["exec"]["command"][1:3] == ["pod-init", "--wait-ready"]
    caps = init["securityContext"]["capabilities"]
    assert caps == {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}
    args = init["command"]
    uid = int(args[args.index("--uid") + 1])
    assert uid == asg["securityContext"]["runAsUser"] == injector.settings["uid"]
    assert int(args[args.index("--proxy-port") + 1]) == int(env(asg)["ASG_TRANSPARENT_LISTEN"].split(":")[1])
    assert asg["resources"]["requests"]["cpu"] == "250m" and asg["resources"]["limits"]["memory"] == "768Mi"
    agent = env(containers(p)["agent"])
    assert "HTTPS_PROXY" not in agent and agent["SSL_CERT_FILE"].endswith("bundle.pem")


def test_update_and_delete_are_ignored(injector):
    for op in ("UPDATE", "DELETE"):
        resp, p = admit(injector, pod(), NS, operation=op)
        assert resp["allowed"] is True and p is None


def test_malformed_reviews_get_a_clear_400(injector):
    status, body = injector.post(b"{not json")
    assert status == 400
    st = json.loads(body)
    assert st["kind"] == "Status" and "not an AdmissionReview" in st["message"]
    old = review(pod(), NS)
    old["apiVersion"] = "admission.k8s.io/v1beta1"
    status, body = injector.post(json.dumps(old).encode())
    assert status == 400 and "admissionReviewVersions" in json.loads(body)["message"]
    status, _ = injector.post(b"<xml/>", content_type="application/xml")
    assert status == 415


def test_bad_annotations_and_unprepared_namespaces_are_denied(injector):
    resp, p = admit(injector, pod(annotations={"asg.dev/profile": "nope"}), NS)
    assert resp["allowed"] is False and p is None
    assert "asg.dev/profile" in resp["status"]["message"]
    resp, _ = admit(injector, pod(labels={"asg.dev/inject": "true"}), "elsewhere")
    assert resp["allowed"] is False and "injection.namespaces" in resp["status"]["message"]


def test_tls_is_verified_by_name_and_reloaded_when_the_secret_changes(injector, chart):
    with pytest.raises(ssl.SSLCertVerificationError):
        injector.connection(server_name="wrong.asg-system.svc").connect()
    # A fresh render generates a new CA and serving pair: swap it in like kubelet does.
    fresh = render(sets=[f"injection.namespaces[0].name={NS}"])
    secret = one(fresh, "Secret", "asg-injector-tls")
    new_ca = one(fresh, "Secret", "asg-injector-tls")["data"]["ca.crt"]
    injector.write_tls(secret, generation=2)
    import base64
    new_ca = base64.b64decode(new_ca).decode()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            conn = injector.connection(ca_pem=new_ca)
            conn.connect()
            conn.close()
            break
        except ssl.SSLError:
            time.sleep(0.1)
    else:
        raise AssertionError(f"the new certificate was not served: {injector.logs()}")
    with pytest.raises(ssl.SSLCertVerificationError):
        injector.connection().connect()  # the old caBundle no longer verifies
    assert 'asg_injector_tls_reloads_total{result="ok"} 1' in injector.metrics()
    # Reviews keep working with the new CA.
    injector.ca_pem = new_ca
    _, p = admit(injector, pod(), NS)
    assert p is not None


def test_the_patched_pod_references_only_what_the_chart_installs(injector, chart):
    _, p = admit(injector, pod(), NS)
    names = {(d["kind"], d["metadata"]["name"]) for d in chart if d["metadata"].get("namespace") == NS}
    policies = one(chart, "ConfigMap", "asg-policies", NS)
    for v in p["spec"]["volumes"]:
        if "secret" in v:
            assert ("Secret", v["secret"]["secretName"]) in names, v
            for item in v["secret"].get("items", []):
                assert item["key"] in one(chart, "Secret", v["secret"]["secretName"], NS)["data"]
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in names, v
            assert {i["key"] for i in v["configMap"]["items"]} == set(policies["data"])
    for c in containers(p, "initContainers").values():
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in one(chart, "Secret", ref["name"], NS)["data"]


def test_reviews_of_a_whole_deployment_stream_validate(injector):
    """Many shapes at once: init containers, pod security context, volumes."""
    p = pod(initContainers=[{"name": "fetch", "image": "curlimages/curl:8.8.0"}],
            securityContext={"runAsNonRoot": True, "runAsUser": 1000},
            volumes=[{"name": "work", "emptyDir": {}}])
    p["spec"]["containers"].append({"name": "tools", "image": "ghcr.io/example/mcp:1",
                                    "ports": [{"containerPort": 8000}]})
    _, out = admit(injector, copy.deepcopy(p), NS)
    check_valid(out)
    inits = list(containers(out, "initContainers"))
    assert inits == ["asg-init", "asg", "fetch"]
    assert "HTTPS_PROXY" in env(containers(out, "initContainers")["fetch"])
    assert yaml.safe_dump(out)  # serializable
