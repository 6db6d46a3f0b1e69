"""The official SDKs through asg as a forward proxy: only HTTPS_PROXY and the CA variable are set,
no base URL. The SDKs talk to https://api.openai.com and https://api.anthropic.com; asg intercepts the
CONNECT, terminates TLS with a leaf from its local CA, inspects, and forwards to the TLS mock upstream
(ASG_CONNECT_TO maps the API hosts to it; ASG_UPSTREAM_CA verifies its certificate). Nothing leaves
loopback.

Covers: a dangerous tool call is blocked, a secret is masked (both ways), streams stay incremental,
a client without the CA fails, and the Node `openai` SDK does the same with undici's EnvHttpProxyAgent
and NODE_EXTRA_CA_CERTS (tests/node/openai_forward.mjs)."""

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request

import anthropic
import openai
import pytest

import asg_harness
from asg_harness import FAKE_AWS_KEY, FAKE_OPENAI_KEY, FIXTURES, REPO_ROOT, TEXT_REPLY

TLS = FIXTURES / "tls"
NODE_DIR = REPO_ROOT / "tests" / "node"
SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "shell", "description": "Run a command", "parameters": SCHEMA}}]
RESPONSES_TOOLS = [{"type": "function", "name": "shell", "description": "Run a command", "parameters": SCHEMA, "strict": False}]
ANTHROPIC_TOOLS = [{"name": "shell", "description": "Run a command", "input_schema": SCHEMA}]
CLAUDE = "claude-sonnet-4-6"
# Variables that would change where the SDKs connect or what they trust.
FOREIGN = ["OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "ALL_PROXY", "all_proxy"]


class TlsMock(asg_harness.MockUpstream):
    """The TLS mock, with control requests that trust the test CA (the harness's helper uses the
    default trust store, which does not hold it)."""

    _opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(TLS / "ca.pem"))),
    )

    def _control(self, method, path):
        req = urllib.request.Request(self.url(path), data=b"" if method == "POST" else None, method=method)
        with self._opener.open(req, timeout=10) as r:
            return r.read()

    def requests(self):
        return json.loads(self._control("GET", "/__mock/requests"))

    def reset(self):
        self._control("POST", "/__mock/reset")


@pytest.fixture(scope="module")
def tls_mock():
    try:
        m = TlsMock(["--tls-cert", str(TLS / "apis.pem"), "--tls-key", str(TLS / "apis.key")])
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield m
    m.close()


@pytest.fixture(scope="module")
def fwd(tls_mock):
    hosts = ["api.openai.com:443", "api.anthropic.com:443"]
    env = {
        "ASG_CONNECT_TO": ",".join(f"{h}={tls_mock.host}:{tls_mock.port}" for h in hosts),
        "ASG_UPSTREAM_CA": str(TLS / "ca.pem"),
    }
    try:
        gw = asg_harness.Gateway(tls_mock.base_url, "dev", env=env)
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield gw
    gw.close()


@pytest.fixture
def proxy_env(fwd, tls_mock, monkeypatch):
    """Exactly what a user sets: HTTPS_PROXY and SSL_CERT_FILE (the asg CA)."""
    tls_mock.reset()
    for var in FOREIGN:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://{fwd.proxy_addr}")
    monkeypatch.setenv("SSL_CERT_FILE", str(fwd.data_dir / "ca" / "ca.pem"))
    return fwd


def oai(headers=None):
    # No base_url, no http_client: the SDK's defaults read the environment.
    return openai.OpenAI(api_key="sk-test-not-real", max_retries=0, default_headers=headers)


def claude(headers=None):
    return anthropic.Anthropic(api_key="sk-ant-test-not-real", max_retries=0, default_headers=headers)


def chat(client, text="hello", **kw):
    return client.chat.completions.create(model="gpt-4.1", messages=[{"role": "user", "content": text}], tools=CHAT_TOOLS, **kw)


def spread(arrivals):
    return arrivals[-1] - arrivals[0]


def test_openai_chat_tool_call_blocked_and_secrets_masked(proxy_env, tls_mock):
    reply = chat(oai({"x-mock-scenario": "tool_shell"}), "show my ssh key")
    msg = reply.choices[0].message
    assert not msg.tool_calls
    assert "blocked by the security gateway" in msg.content
    reply = chat(oai({"x-mock-scenario": "secret"}))
    text = reply.choices[0].message.content
    assert FAKE_AWS_KEY not in text and FAKE_OPENAI_KEY not in text
    assert "[REDACTED:aws_access_key_id:" in text
    tls_mock.reset()
    reply = chat(oai({"x-mock-scenario": "echo"}), f"my key is {FAKE_OPENAI_KEY}")
    sent = tls_mock.requests()[0]
    assert sent["headers"]["host"] == "api.openai.com", "the SDK kept its default base URL"
    assert FAKE_OPENAI_KEY not in sent["body"]
    assert "[REDACTED:openai_api_key:" in reply.choices[0].message.content


def test_openai_responses_function_call_blocked(proxy_env):
    resp = oai({"x-mock-scenario": "tool_shell"}).responses.create(model="gpt-5", input="show my ssh key", tools=RESPONSES_TOOLS)
    assert not [o for o in resp.output if o.type == "function_call"]
    assert "blocked by the security gateway" in resp.output_text


def test_openai_stream_is_incremental(proxy_env):
    started = time.monotonic()
    stream = oai({"x-mock-delay-ms": "250"}).chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hello"}], stream=True
    )
    arrivals, text = [], ""
    for chunk in stream:
        arrivals.append(time.monotonic() - started)
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    assert text == TEXT_REPLY
    assert len(arrivals) >= 4
    assert spread(arrivals) >= 0.75, f"stream was buffered: {arrivals}"


def test_anthropic_tool_use_blocked_and_secret_masked(proxy_env):
    msg = claude({"x-mock-scenario": "tool_shell"}).messages.create(
        model=CLAUDE, max_tokens=256, tools=ANTHROPIC_TOOLS, messages=[{"role": "user", "content": "show my ssh key"}]
    )
    assert not [b for b in msg.content if b.type == "tool_use"]
    assert any("blocked by the security gateway" in b.text for b in msg.content if b.type == "text")
    msg = claude({"x-mock-scenario": "secret"}).messages.create(
        model=CLAUDE, max_tokens=256, messages=[{"role": "user", "content": "hello"}]
    )
    text = "".join(b.text for b in msg.content if b.type == "text")
    assert FAKE_AWS_KEY not in text and "[REDACTED:aws_access_key_id:" in text


def test_anthropic_stream_is_incremental(proxy_env):
    started = time.monotonic()
    arrivals, text = [], ""
    with claude({"x-mock-delay-ms": "250"}).messages.stream(
        model=CLAUDE, max_tokens=256, messages=[{"role": "user", "content": "hello"}]
    ) as stream:
        for event in stream:
            arrivals.append(time.monotonic() - started)
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
    assert text == TEXT_REPLY
    assert spread(arrivals) >= 0.75, f"stream was buffered: {arrivals}"


def test_traffic_is_counted_per_route(proxy_env):
    chat(oai())
    claude().messages.create(model=CLAUDE, max_tokens=16, messages=[{"role": "user", "content": "hello"}])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = proxy_env.metrics_text()
        openai_n = asg_harness.metric_value(text, "asg_requests_total", {"route": "openai"}) or 0
        anthropic_n = asg_harness.metric_value(text, "asg_requests_total", {"route": "anthropic"}) or 0
        if openai_n >= 1 and anthropic_n >= 1:
            break
        time.sleep(0.05)
    assert openai_n >= 1 and anthropic_n >= 1
    assert asg_harness.metric_value(text, "asg_forward_decisions_total", {"mode": "connect", "action": "intercept"}) >= 2


def test_without_the_asg_ca_the_sdk_refuses_to_connect(proxy_env, tls_mock, monkeypatch):
    # Trusting only the test CA (the mock's real issuer) is not enough: asg's leaf is not trusted.
    monkeypatch.setenv("SSL_CERT_FILE", str(TLS / "ca.pem"))
    with pytest.raises(openai.APIConnectionError):
        chat(oai())
    assert tls_mock.requests() == []


def test_node_openai_sdk_through_the_proxy(fwd):
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Node 20+ is required for tests/node)", pytrace=False)
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.fail(f"Node dependencies missing: run `npm ci --prefix {NODE_DIR.relative_to(REPO_ROOT)}` (or `make node-deps`)", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and k not in FOREIGN}
    env.update(
        HTTPS_PROXY=f"http://{fwd.proxy_addr}",
        NO_PROXY="127.0.0.1,localhost",
        NODE_EXTRA_CA_CERTS=str(fwd.data_dir / "ca" / "ca.pem"),
    )
    run = subprocess.run([node, str(NODE_DIR / "openai_forward.mjs")], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"node failed:\n{run.stdout}\n{run.stderr}"
    results = json.loads(run.stdout.strip().splitlines()[-1])
    assert results["tool_call_blocked"] and results["secret_masked"]
    assert results["stream_spread_ms"] >= 750

    # Without NODE_EXTRA_CA_CERTS the same script fails on the certificate.
    env.pop("NODE_EXTRA_CA_CERTS")
    env["NODE_EXTRA_CA_CERTS"] = str(TLS / "ca.pem")
    run = subprocess.run([node, str(NODE_DIR / "openai_forward.mjs")], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "certificate" in (run.stdout + run.stderr).lower() or "APIConnectionError" in run.stderr, run.stderr
