"""The Helm chart: lint, schema validation of every value combination in helm/asg/ci for
Kubernetes 1.29 and the newest schema, values.schema.json refusals, and what no schema
sees (webhook names, selectors, privileges, uids, probes, where the CA key goes)."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import (CHART, KUBE_VERSIONS, RELEASE_NS, ROOT, asg_bin, b64, copy_chart, find, helm,
                     one, render, render_args, validate)

CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def values_id(p):
    return p.name.replace("-values.yaml", "")


def test_lint_strict():
    out = helm("lint", "--strict", CHART)
    assert "0 chart(s) failed" in out.stdout
    for v in CI_VALUES:
        helm("lint", "--strict", CHART, "-f", v)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_rendered_objects_validate_strictly(values, kube_version):
    docs = render([values], kube_version=kube_version)
    assert len(docs) >= 8
    for d in docs:
        validate(d, kube_version)


@pytest.mark.parametrize("setting,message", [
    ("injector.replicas=0", "injector.replicas"),
    ("webhook.failurePolicy=Maybe", "failurePolicy"),
    ("webhook.timeoutSeconds=31", "timeoutSeconds"),
    ("sidecar.mode=sideways", "mode"),
    ("sidecar.uid=0", "uid"),
    ("image.pullPolicy=Sometimes", "pullPolicy"),
    ("injection.namespaces[0].name=Bad_NS", "name"),
    ("policies.profiles.secrets=x", "profiles"),
    ("sidecar.resources.requests.cpu=lots", "cpu"),
    ("unknownKey=1", "unknownKey"),
    ("state.url=http://redis:6379", "url"),
    ("state.passwordSecret.name=Bad_Name", "name"),
    ("state.prefix=a:b", "prefix"),
])
def test_schema_refuses_bad_values(setting, message):
    proc = helm(*render_args(sets=[setting]), check=False)
    assert proc.returncode != 0, setting
    assert "values don't meet the specifications of the schema" in proc.stderr, proc.stderr
    assert message in proc.stderr


@pytest.mark.parametrize("sets,message", [
    (["ca.source=cert-manager", "injection.namespaces[0].name=a"], "issuerRef.name"),
    (["injection.namespaces[0].name=kube-system"], "never injected"),
    ([f"injection.namespaces[0].name={RELEASE_NS}"], "never injected"),
    (["sidecar.profile=team"], "not a built-in profile"),
    (["injection.namespaces[0].name=a", "injection.namespaces[0].profile=team"], "not a built-in profile"),
])
def test_template_refuses_inconsistent_values(sets, message):
    proc = helm(*render_args(sets=sets), check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def default():
    return render([CHART / "ci" / "default-values.yaml"])


def webhook_service(docs):
    return one(docs, "Service")


def test_webhook_configuration(default):
    mwc = one(default, "MutatingWebhookConfiguration")
    svc = webhook_service(default)
    names = [w["name"] for w in mwc["webhooks"]]
    assert len(set(names)) == len(names) == 2
    for w in mwc["webhooks"]:
        # kube-apiserver wants a fully qualified name: at least three DNS labels.
        assert DNS_SUBDOMAIN.match(w["name"]) and w["name"].count(".") >= 2, w["name"]
        assert w["sideEffects"] == "None"
        assert w["admissionReviewVersions"] == ["v1"]
        assert w["failurePolicy"] == "Fail" and 1 <= w["timeoutSeconds"] <= 30
        assert w["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                               "resources": ["pods"], "scope": "Namespaced"}]
        ref = w["clientConfig"]["service"]
        assert (ref["name"], ref["namespace"], ref["path"]) == (svc["metadata"]["name"], RELEASE_NS, "/inject")
        port = next(p for p in svc["spec"]["ports"] if p["port"] == ref["port"])
        dep = one(default, "Deployment")
        ports = {p["name"]: p for p in dep["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert port["targetPort"] in ports
        excluded = next(e for e in w["namespaceSelector"]["matchExpressions"]
                        if e["key"] == "kubernetes.io/metadata.name")
        assert excluded["operator"] == "NotIn"
        assert {RELEASE_NS, "kube-system"} <= set(excluded["values"])
    by_name = {w["name"]: w for w in mwc["webhooks"]}
    ns_hook = by_name["namespace.sidecar-injector.asg.dev"]
    assert {"key": "asg-injection", "operator": "In", "values": ["enabled"]} in \
        ns_hook["namespaceSelector"]["matchExpressions"]
    assert ns_hook["objectSelector"]["matchExpressions"] == [
        {"key": "asg.dev/inject", "operator": "NotIn", "values": ["false"]}]
    obj_hook = by_name["object.sidecar-injector.asg.dev"]
    assert obj_hook["objectSelector"]["matchExpressions"] == [
        {"key": "asg.dev/inject", "operator": "In", "values": ["true"]}]


def test_webhook_certificate_is_signed_by_the_ca_bundle_for_the_service_name(default, tmp_path):
    mwc = one(default, "MutatingWebhookConfiguration")
    bundles = {w["clientConfig"]["caBundle"] for w in mwc["webhooks"]}
    assert len(bundles) == 1
    secret = one(default, "Secret", "asg-injector-tls", RELEASE_NS)
    assert secret["type"] == "kubernetes.io/tls"
    (tmp_path / "ca.pem").write_text(b64(bundles.pop()))
    (tmp_path / "tls.crt").write_text(b64(secret["data"]["tls.crt"]))
    svc = webhook_service(default)["metadata"]["name"]
    ok = subprocess.run(["openssl", "verify", "-CAfile", tmp_path / "ca.pem", "-verify_hostname",
                         f"{svc}.{RELEASE_NS}.svc", "-purpose", "sslserver", tmp_path / "tls.crt"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_injector_deployment(default):
    dep = one(default, "Deployment")
    spec = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2
    term = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    pdb = one(default, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert spec["automountServiceAccountToken"] is False
    assert dep["spec"]["template"]["metadata"]["labels"]["asg.dev/inject"] == "false"
    c = spec["containers"][0]
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS" and "livenessProbe" in c
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["capabilities"] == {"drop": ["ALL"]}
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["seccompProfile"]["type"] == \
        "RuntimeDefault"
    # Minimal RBAC: an account without roles (the injector calls no API).
    assert one(default, "ServiceAccount")["automountServiceAccountToken"] is False
    assert not [d for d in default if d["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def test_ca_and_policies_in_each_namespace(default):
    master = one(default, "Secret", "asg-ca", RELEASE_NS)
    assert master["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    copy = one(default, "Secret", "asg-ca", "agents")
    assert copy["data"]["tls.key"] == master["data"]["tls.key"]
    assert "BEGIN CERTIFICATE" in b64(copy["data"]["ca.crt"])
    policies = one(default, "ConfigMap", "asg-policies", "agents")["data"]
    settings = yaml.safe_load(one(default, "ConfigMap", "asg-injector")["data"]["settings.yaml"])
    assert {i["key"] for i in settings["policyItems"]} == set(policies)
    for item in settings["policyItems"]:
        assert policies[item["key"]] == (ROOT / "policies" / item["path"]).read_text(), item
    assert settings["onlyListedNamespaces"] is True and list(settings["namespaces"]) == ["agents"]
    admin = one(default, "Secret", "asg-admin", "agents")
    assert len(b64(admin["data"]["operator-key"])) == 40


@pytest.mark.parametrize("kube_version,native", [("1.28.0", False), ("1.29.0", True), ("1.33.0", True)])
def test_native_sidecars_follow_the_cluster_version(kube_version, native):
    docs = render([CHART / "ci" / "default-values.yaml"], kube_version=kube_version)
    settings = yaml.safe_load(one(docs, "ConfigMap", "asg-injector")["data"]["settings.yaml"])
    assert settings["nativeSidecars"] is native


def kube_inject(docs, tmp_path, pod, namespace="agents"):
    """The chart's settings applied by `asg kube-inject` (the webhook's own code path)."""
    (tmp_path / "settings.yaml").write_text(one(docs, "ConfigMap", "asg-injector")["data"]["settings.yaml"])
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(pod))
    out = subprocess.run([asg_bin(), "kube-inject", "-f", tmp_path / "pod.yaml", "-c", tmp_path / "settings.yaml",
                          "-n", namespace], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def sample_pod(**annotations):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "agent", "namespace": "agents", "annotations": annotations},
            "spec": {"containers": [{"name": "agent", "image": "python:3.12-slim"}]}}


@pytest.mark.parametrize("values", CI_VALUES, ids=values_id)
def test_sidecars_the_chart_configures(values, tmp_path):
    """What the chart's settings make the injector produce: privileges, uids, probes, the key."""
    docs = render([values], kube_version="1.30.0")
    chart_values = yaml.safe_load(values.read_text())
    uid = chart_values.get("sidecar", {}).get("uid", 1337)
    for mode in ("proxy-env", "transparent"):
        pod = kube_inject(docs, tmp_path, sample_pod(**{"asg.dev/mode": mode}))
        spec = pod["spec"]
        every = spec.get("initContainers", []) + spec["containers"]
        byname = {c["name"]: c for c in every}
        asg, init = byname["asg"], byname["asg-init"]
        for c in (asg, init):
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert asg["securityContext"]["runAsUser"] == uid and asg["securityContext"]["runAsNonRoot"]
        assert asg["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        port = asg["ports"][0]["containerPort"]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert asg[probe]["httpGet"]["port"] == port
        admin = next(e["value"] for e in asg["env"] if e["name"] == "ASG_ADMIN_LISTEN")
        assert admin.endswith(f":{port}") and admin.startswith("0.0.0.0"), "probes reach the pod address"
        if mode == "transparent":
            assert init["securityContext"]["capabilities"] == {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}
            args = init["command"]
            assert int(args[args.index("--uid") + 1]) == uid == int(args[args.index("--gid") + 1])
        else:
            assert init["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            assert init["securityContext"]["runAsNonRoot"] is True
        # The CA key is mounted into the sidecar only; agents and the init container
        # see the certificate (ca.crt) at most.
        key_volumes = {v["name"] for v in spec["volumes"]
                       if "secret" in v and "items" not in v["secret"]}
        for c in every:
            mounted = {m["name"] for m in c.get("volumeMounts", [])}
            if c["name"] == "asg":
                assert key_volumes <= mounted
            else:
                assert not (key_volumes & mounted), c["name"]
        for version in ("1.29.0", KUBE_VERSIONS[-1]):
            validate(pod, version)


def test_shared_state_and_audit_stdout_reach_the_sidecar(tmp_path):
    """External Redis: URL and prefix as values, the password only as a Secret reference."""
    docs = render([CHART / "ci" / "redis-values.yaml"])
    pod = kube_inject(docs, tmp_path, sample_pod())
    asg = next(c for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
               if c["name"] == "asg")
    env = {e["name"]: e for e in asg["env"]}
    assert env["ASG_STATE_URL"] == {"name": "ASG_STATE_URL",
                                    "value": "rediss://redis.shared.svc:6380/2?timeout_ms=250"}
    assert env["ASG_STATE_PREFIX"]["value"] == "fleet-agents"
    assert env["ASG_STATE_PASSWORD"] == {"name": "ASG_STATE_PASSWORD", "valueFrom": {
        "secretKeyRef": {"name": "asg-redis", "key": "redis-password"}}}
    assert env["ASG_AUDIT_STDOUT"]["value"] == "true"
    # The chart never creates or copies the Redis password.
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "asg-redis"]
    plain = kube_inject(render([CHART / "ci" / "default-values.yaml"]), tmp_path, sample_pod())
    names = {e["name"] for c in plain["spec"].get("initContainers", []) + plain["spec"]["containers"]
             for e in c.get("env", [])}
    assert not {"ASG_STATE_URL", "ASG_STATE_PREFIX", "ASG_STATE_PASSWORD", "ASG_AUDIT_STDOUT"} & names


def test_a_bad_state_url_is_refused_by_the_injector(tmp_path):
    """The schema only checks the scheme; the injector checks the rest before any pod gets it."""
    docs = render(sets=["state.url=redis://redis:6379?timeout=5", "injection.namespaces[0].name=agents"])
    (tmp_path / "settings.yaml").write_text(one(docs, "ConfigMap", "asg-injector")["data"]["settings.yaml"])
    (tmp_path / "pod.yaml").write_text(yaml.safe_dump(sample_pod()))
    out = subprocess.run([asg_bin(), "kube-inject", "-f", tmp_path / "pod.yaml", "-c", tmp_path / "settings.yaml",
                          "-n", "agents"], capture_output=True, text=True)
    assert out.returncode != 0
    assert 'stateUrl: ASG_STATE_URL: unknown option "timeout"' in out.stderr, out.stderr


def test_cert_manager_objects(tmp_path):
    docs = render([CHART / "ci" / "cert-manager-values.yaml"])
    mwc = one(docs, "MutatingWebhookConfiguration")
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{RELEASE_NS}/asg-injector-tls"
    assert all("caBundle" not in w["clientConfig"] for w in mwc["webhooks"])
    serving = one(docs, "Certificate", "asg-injector-tls", RELEASE_NS)
    assert f"asg-injector.{RELEASE_NS}.svc" in serving["spec"]["dnsNames"]
    ca = one(docs, "Certificate", "asg-ca", "agents")
    assert ca["spec"]["isCA"] is True and ca["spec"]["secretName"] == "asg-ca"
    assert ca["spec"]["privateKey"]["encoding"] == "PKCS8"
    assert ca["spec"]["issuerRef"]["name"] == "platform-root-ca"
    assert not [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "asg-ca"]


def test_optional_monitoring_and_network_policy():
    docs = render([CHART / "ci" / "transparent-values.yaml"])
    sm = one(docs, "ServiceMonitor")
    svc_ports = {p["name"] for p in webhook_service(docs)["spec"]["ports"]}
    assert sm["spec"]["endpoints"][0]["port"] in svc_ports
    assert sm["spec"]["selector"]["matchLabels"].items() <= webhook_service(docs)["metadata"]["labels"].items()
    netpol = one(docs, "NetworkPolicy")
    assert netpol["spec"]["egress"] == [] and set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert [p["port"] for p in netpol["spec"]["ingress"][0]["ports"]] == ["webhook"]
    assert one(docs, "MutatingWebhookConfiguration")["webhooks"][0]["failurePolicy"] == "Ignore"
    assert find(docs, "Deployment")[0]["spec"]["replicas"] == 3
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 2
    plain = render([CHART / "ci" / "default-values.yaml"])
    assert not [d for d in plain if d["kind"] in ("ServiceMonitor", "NetworkPolicy")]


def test_secret_mode_creates_no_secrets():
    docs = render([CHART / "ci" / "secret-values.yaml"])
    assert not [d for d in docs if d["kind"] == "Secret"]
    dep = one(docs, "Deployment")
    vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if v["name"] == "webhook-tls")
    assert vol["secret"]["secretName"] == "my-injector-tls"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith("registry.example/asg@sha256:")
    settings = yaml.safe_load(one(docs, "ConfigMap", "asg-injector")["data"]["settings.yaml"])
    assert settings["adminSecret"] == "" and settings["nativeSidecars"] is False
    assert "team" in settings["profiles"] and settings["onlyListedNamespaces"] is False
    assert "team.toml" in one(docs, "ConfigMap", "asg-policies", "tools")["data"]


def test_notes_give_next_steps(tmp_path):
    """NOTES.txt, rendered: `helm template` skips it, so a copy is rendered as a template
    (--debug prints it although it is not YAML)."""
    chart = copy_chart(tmp_path / "asg")
    (chart / "templates" / "NOTES.txt").rename(chart / "templates" / "notes.txt")
    proc = helm("template", "asg", chart, "-n", RELEASE_NS, "--kube-version", "1.30.0",
                "--set", "injection.namespaces[0].name=agents", "--show-only", "templates/notes.txt",
                "--debug", check=False)
    text = proc.stdout.split("# Source: asg/templates/notes.txt", 1)[1]
    assert "kubectl label namespace agents asg-injection=enabled" in text
    assert "native" in text and "asg_requests_total" in text and "operator-key" in text
    proc = helm("template", "asg", chart, "-n", RELEASE_NS, "--show-only", "templates/notes.txt", "--debug",
                check=False)
    assert "No namespace is prepared yet" in proc.stdout


def test_deploy_manifests_are_the_rendered_chart():
    """deploy/asg.yaml is `deploy/render.sh` output: regenerate it when the chart changes."""
    script = (ROOT / "deploy" / "render.sh").read_text()
    args = json.loads(re.search(r"^# helm-args: (.*)$", script, re.M).group(1))
    rendered = helm("template", *args).stdout
    shipped = (ROOT / "deploy" / "asg.yaml").read_text()
    body = shipped.split("\n---\n", 1)[1] if shipped.startswith("#") else shipped
    assert body.strip() == rendered.strip().removeprefix("---").strip(), \
        "deploy/asg.yaml is stale: run deploy/render.sh"
    for d in yaml.safe_load_all(shipped):
        if d:
            validate(d, "1.29.0")
