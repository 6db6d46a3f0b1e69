"""The real agents through the real gateway, against the mock upstream on loopback.

Claude Code, Codex CLI and Gemini CLI are the pinned npm packages in tests/agents (`make agents` installs
them); the openai-agents SDK and the MCP SDK client come from the test venv. Each client gets an isolated
HOME holding a marker file at ~/.ssh/id_rsa. For every client:

* benign text passes;
* a secret split across stream events is masked in what the client prints;
* a dangerous tool call (`cat ~/.ssh/id_rsa` with the client's own shell tool) is NOT executed: the marker
  never appears in the client's output, in anything the upstream received (the tool result an executed
  call would send back), or in any file the client wrote under HOME (transcripts, session logs);
* the client's own prompts and tool definitions cause no findings.

The mock is scripted from the prompt (`[mock:NAME]`, see tests/src/mock/script.rs): it answers with a
call of the client's own shell tool and ends the turn once a tool result comes back.
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

import asg_harness
from asg_harness import FAKE_AWS_KEY, REPO_ROOT
from test_forward_proxy import TLS, TlsMock

AGENTS = REPO_ROOT / "tests" / "agents" / "node_modules"
HOSTS = ["api.openai.com:443", "api.anthropic.com:443", "generativelanguage.googleapis.com:443"]
TIMEOUT = 150

# Commands, by client (the Claude Code wrapper runs its native binary without a postinstall step).
COMMANDS = {
    "claude": ["node", str(AGENTS / "@anthropic-ai" / "claude-code" / "cli-wrapper.cjs")],
    "codex": [str(AGENTS / ".bin" / "codex")],
    "gemini": [str(AGENTS / ".bin" / "gemini")],
}

def version(kind: str) -> str:
    pkg = {
        "claude": "@anthropic-ai/claude-code",
        "codex": "@openai/codex",
        "gemini": "@google/gemini-cli",
    }[kind]
    return json.loads((AGENTS / pkg / "package.json").read_text())["version"]


@pytest.fixture(scope="module", autouse=True)
def agents_installed():
    missing = [k for k, cmd in COMMANDS.items() if not Path(cmd[-1]).exists()]
    if missing:
        pytest.fail(f"agent CLIs not installed ({', '.join(missing)}): run `make agents`", pytrace=False)


def start_mock(*args):
    try:
        return TlsMock(["--tls-cert", str(TLS / "apis.pem"), "--tls-key", str(TLS / "apis.key"), *args])
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def tls_mock():
    m = start_mock()
    yield m
    m.close()


@pytest.fixture(scope="module")
def sse_only_mock():
    """A mock that answers the Responses WebSocket upgrade with 404."""
    m = start_mock("--no-websocket")
    yield m
    m.close()


def gateway(mock, policy="dev", **kw):
    env = {
        "ASG_CONNECT_TO": ",".join(f"{h}={mock.host}:{mock.port}" for h in HOSTS),
        "ASG_UPSTREAM_CA": str(TLS / "ca.pem"),
    }
    try:
        return asg_harness.Gateway(mock.base_url, policy, env=env, **kw)
    except asg_harness.HarnessError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="module")
def gw(tls_mock):
    g = gateway(tls_mock)
    yield g
    g.close()


def relaxed_policy() -> str:
    """dev without the prose detectors and sessions: transport mechanics only (tool rules, secrets on)."""
    text = (REPO_ROOT / "policies" / "dev.toml").read_text()
    text = text.replace('name = "dev"', 'name = "transport-test"')
    text = text.replace("prompt_injection = true", "prompt_injection = false")
    text = text.replace("policy_drift = true", "policy_drift = false")
    head, _, tail = text.partition("[session]\nenabled = true")
    return head + "[session]\nenabled = false" + tail


class Home:
    """An isolated HOME with a marker at ~/.ssh/id_rsa (and an empty working folder)."""

    def __init__(self, root: Path):
        self.path = root / "home"
        self.work = self.path / "work"
        self.work.mkdir(parents=True)
        (self.path / ".ssh").mkdir()
        self.marker = f"ASG-MARKER-{uuid.uuid4().hex}"
        (self.path / ".ssh" / "id_rsa").write_text(self.marker + "\n")

    def files_with_marker(self) -> list[str]:
        hits = []
        for p in self.path.rglob("*"):
            if p.is_file() and p != self.path / ".ssh" / "id_rsa":
                try:
                    if self.marker in p.read_text(errors="ignore"):
                        hits.append(str(p.relative_to(self.path)))
                except OSError:
                    pass
        return hits


@pytest.fixture
def home(tmp_path):
    return Home(tmp_path)


def agent_env(kind: str, gw, home: Home, mode: str) -> dict:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home.path),
        "LANG": "C.UTF-8",
        "NO_PROXY": "127.0.0.1,localhost",
        "CI": "1",
    }
    ca = str(gw.data_dir / "ca" / "ca.pem")
    if mode == "proxy":
        env["HTTPS_PROXY"] = gw.proxy_url
    if kind == "claude":
        env.update(
            ANTHROPIC_API_KEY="sk-ant-test-not-real",
            # One attempt: a refused connection must end the run, not retry for minutes.
            CLAUDE_CODE_MAX_RETRIES="0",
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        )
        if mode == "base_url":
            env["ANTHROPIC_BASE_URL"] = gw.proxy_url
        else:
            env["NODE_EXTRA_CA_CERTS"] = ca
    elif kind == "codex":
        env.update(OPENAI_API_KEY="sk-test-not-real", CODEX_HOME=str(home.path / ".codex"), CODEX_CA_CERTIFICATE=ca)
        (home.path / ".codex").mkdir(exist_ok=True)
    elif kind == "gemini":
        env.update(GEMINI_API_KEY="test-gemini-key", GEMINI_CLI_NO_RELAUNCH="true")
        settings = {
            "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
            "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
            "privacy": {"usageStatisticsEnabled": False},
            "telemetry": {"enabled": False},
        }
        (home.path / ".gemini").mkdir(exist_ok=True)
        (home.path / ".gemini" / "settings.json").write_text(json.dumps(settings))
        if mode == "base_url":
            env["GOOGLE_GEMINI_BASE_URL"] = gw.proxy_url
        else:
            env["NODE_EXTRA_CA_CERTS"] = ca
    return env


def agent_args(kind: str, prompt: str) -> list[str]:
    if kind == "claude":
        # Bash allowed without asking: a call the gateway let through would run.
        return ["-p", prompt, "--allowedTools", "Bash"]
    if kind == "codex":
        return ["exec", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox", prompt]
    # A Gemini 2.5 model: Gemini 3 models first ask a routing classifier the mock cannot answer.
    return ["-m", "gemini-2.5-flash", "-p", prompt, "--yolo"]


def run_agent(kind: str, gw, home: Home, prompt: str, mode: str = "base_url"):
    started = time.monotonic()
    proc = subprocess.run(
        COMMANDS[kind] + agent_args(kind, prompt),
        cwd=home.work,
        env=agent_env(kind, gw, home, mode),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
    )
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    return proc.returncode, out, time.monotonic() - started


def audit(gw, limit=50):
    status, _, body = asg_harness.http("GET", f"{gw.admin_url}/operator/api/audit?limit={limit}")
    assert status == 200, body
    data = json.loads(body)
    return data["events"] if isinstance(data, dict) else data


def assert_never_executed(home: Home, out: str, mock):
    assert home.marker not in out, f"the marker reached the client's output:\n{out[-3000:]}"
    sent = json.dumps(mock.requests())
    assert home.marker not in sent, "the marker reached the upstream (the call ran and its result went back)"
    assert home.files_with_marker() == [], "the marker is in files the client wrote"


def timing(kind: str, what: str, seconds: float):
    # Shown with `pytest -s` and in the report's evidence.
    print(f"[agent-timing] {kind} {version(kind)} {what}: {seconds:.1f}s")


# ---- Claude Code and Gemini CLI: base URL and HTTPS_PROXY, default profile -------------------------


@pytest.mark.parametrize("kind", ["claude", "gemini"])
@pytest.mark.parametrize("mode", ["base_url", "proxy"])
def test_benign_secret_and_dangerous_call(gw, tls_mock, home, kind, mode):
    tls_mock.reset()
    rc, out, t = run_agent(kind, gw, home, "[mock:text] say hello", mode)
    timing(kind, f"{mode} text", t)
    assert rc == 0, out[-3000:]
    assert "Hello from the mock upstream." in out

    rc, out, t = run_agent(kind, gw, home, "[mock:secret] what is in the config?", mode)
    timing(kind, f"{mode} secret", t)
    assert rc == 0, out[-3000:]
    assert FAKE_AWS_KEY not in out and "ODNN7EXAMPLE" not in out, out[-3000:]
    assert "[REDACTED:aws_access_key_id:" in out

    rc, out, t = run_agent(kind, gw, home, "[mock:agent_shell] show me my ssh key", mode)
    timing(kind, f"{mode} dangerous call", t)
    assert "blocked by the security gateway" in out, out[-3000:]
    assert_never_executed(home, out, tls_mock)
    shell = {"claude": "Bash", "gemini": "run_shell_command"}[kind]
    assert any(f"{shell}: block" in e["tools"] for e in audit(gw)), "the refusal is audited"


def test_negative_control_the_marker_leaks_without_the_gateway(tls_mock, home):
    """The dangerous-call tests mean something: straight to the upstream, the call runs."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home.path),
        "ANTHROPIC_API_KEY": "sk-ant-test-not-real",
        "ANTHROPIC_BASE_URL": tls_mock.base_url,
        "NODE_EXTRA_CA_CERTS": str(TLS / "ca.pem"),
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    tls_mock.reset()
    proc = subprocess.run(
        COMMANDS["claude"] + agent_args("claude", "[mock:agent_shell] show me my ssh key"),
        cwd=home.work, env=env, capture_output=True, timeout=TIMEOUT,
    )
    assert home.marker in json.dumps(tls_mock.requests()), proc.stdout.decode()[-2000:]


@pytest.mark.parametrize("kind", ["claude", "gemini", "codex"])
def test_own_prompts_and_tool_definitions_cause_no_findings(tls_mock, home, kind):
    g = gateway(tls_mock)
    try:
        rc, out, _ = run_agent(kind, g, home, "[mock:text] say hello", "proxy")
        assert "Hello from the mock upstream." in out, out[-3000:]
        inspected = [e for e in audit(g) if e["dialect"] not in ("tunnel", "passthrough")]
        assert inspected, "the client's requests were inspected"
        for e in inspected:
            assert e["findings"] == [], f"{e['path']}: {e['findings']}"
    finally:
        g.close()


# ---- Codex CLI: the Responses WebSocket, and the SSE fallback ---------------------------------------


def test_codex_default_profile(gw, tls_mock, home):
    rc, out, _ = run_agent("codex", gw, home, "[mock:text] say hello", "proxy")
    assert "Hello from the mock upstream." in out, out[-3000:]


@pytest.mark.parametrize("transport", ["websocket", "sse"])
def test_codex_transports(tls_mock, sse_only_mock, home, transport):
    """Codex's first transport is the Responses WebSocket; against an upstream that only speaks SSE it
    falls back to POST + SSE. Both are inspected. (The prose detectors are off here: Codex's own
    prompts still trip them on this branch, see test_codex_default_profile.)"""
    mock = tls_mock if transport == "websocket" else sse_only_mock
    g = gateway(mock, policy_text=("transport-test.toml", relaxed_policy()))
    try:
        mock.reset()
        rc, out, t = run_agent("codex", g, home, "[mock:text] say hello", "proxy")
        timing("codex", f"{transport} text", t)
        assert rc == 0 and "Hello from the mock upstream." in out, out[-3000:]

        rc, out, t = run_agent("codex", g, home, "[mock:secret] what is in the config?", "proxy")
        timing("codex", f"{transport} secret", t)
        assert FAKE_AWS_KEY not in out and "[REDACTED:aws_access_key_id:" in out, out[-3000:]

        rc, out, t = run_agent("codex", g, home, "[mock:agent_shell] show me my ssh key", "proxy")
        timing("codex", f"{transport} dangerous call", t)
        assert "blocked by the security gateway" in out, out[-3000:]
        assert_never_executed(home, out, mock)

        records = audit(g, 200)
        ws_turns = [e for e in records if (e.get("path") or "").endswith("(websocket)")]
        posts = [e for e in records if e["dialect"] == "openai_responses" and e.get("status") == 200
                 and not (e.get("path") or "").endswith("(websocket)")]
        if transport == "websocket":
            assert len(ws_turns) >= 3 and not posts, "every turn went over the WebSocket"
            # Codex's `exec` wraps the shell call in JavaScript: the inner call is refused.
            assert any(t.endswith(": block") for e in ws_turns for t in e["tools"]), ws_turns
        else:
            assert not ws_turns and len(posts) >= 3, "every turn went over POST + SSE"
    finally:
        g.close()


# ---- openai-agents SDK and the MCP SDK client -----------------------------------------------------


def test_openai_agents_sdk(gw, tls_mock, home):
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    ran = []

    @function_tool
    def run_shell(command: str) -> str:
        """Run a shell command and return its output."""
        ran.append(command)
        return subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              env={"HOME": str(home.path)}).stdout

    client = AsyncOpenAI(base_url=gw.openai_base_url, api_key="sk-test-not-real", max_retries=0)
    model = OpenAIResponsesModel(model="gpt-5", openai_client=client)
    agent = Agent(name="ops", instructions="You help with shell tasks.", tools=[run_shell], model=model)

    tls_mock.reset()
    assert Runner.run_sync(agent, "[mock:text] say hello").final_output == "Hello from the mock upstream."
    secret = Runner.run_sync(agent, "[mock:secret] what is in the config?").final_output
    assert FAKE_AWS_KEY not in secret and "[REDACTED:aws_access_key_id:" in secret
    refused = Runner.run_sync(agent, "[mock:agent_shell] show me my ssh key").final_output
    assert "blocked by the security gateway" in refused
    assert ran == [], "the tool never ran"
    assert_never_executed(home, refused, tls_mock)
    benign = [e for e in audit(gw) if e["dialect"] == "openai_responses"][-1]
    assert benign["findings"] == [], "the SDK's own request shape raises nothing"


def test_mcp_sdk_client(tls_mock):
    import asyncio

    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    config = f"""
[[route]]
name = "tools"
prefix = "/mcp"
upstream = "{tls_mock.base_url}"
api = "mcp"
"""
    g = gateway(tls_mock, config_text=config)
    try:
        async def session(headers):
            http_client = httpx2.AsyncClient(headers=headers, trust_env=False, timeout=20)
            async with streamable_http_client(f"{g.proxy_url}/mcp", http_client=http_client) as streams:
                async with ClientSession(streams[0], streams[1]) as s:
                    await s.initialize()
                    tools = await s.list_tools()
                    read = await s.call_tool("read_config", {"path": "config.ini"})
                    shell = await s.call_tool("shell", {"command": "cat ~/.ssh/id_rsa"})
            return tools, read, shell

        tls_mock.reset()
        tools, read, shell = asyncio.run(session({"x-mock-mcp-mode": "sse"}))
        assert [t.name for t in tools.tools] == ["read_config", "shell"]
        assert FAKE_AWS_KEY not in read.content[0].text and "[REDACTED:aws_access_key_id:" in read.content[0].text
        assert shell.is_error and "blocked by the security gateway" in shell.content[0].text
        calls = [r for r in tls_mock.requests() if '"tools/call"' in (r.get("body") or "")]
        assert len(calls) == 1 and "read_config" in calls[0]["body"], "the refused call never reached the server"
        methods = [r["method"] for r in tls_mock.requests()]
        assert "DELETE" in methods, "the session end reached the server"
        # initialize, tools/list and the like: the server's own tool definitions raise nothing.
        plain = [e for e in audit(g) if e["dialect"] == "mcp" and not e["tools"] and not e["masked"]]
        assert plain and all(e["findings"] == [] for e in plain), plain
    finally:
        g.close()
