"""Process launchers for the mock upstream and the real gateway, mirroring the Rust `asg_e2e` crate.

Binaries are looked up under the cargo target directory (`$CARGO_TARGET_DIR` or `<repo>/target`, profile
`$ASG_E2E_PROFILE` or `debug`) and can be overridden with `MOCK_UPSTREAM_BIN` / `ASG_BIN`. Nothing here
builds them: run `make build` (or `cargo build --workspace --bins`) first.

Everything binds to and talks to 127.0.0.1 only; control requests never use proxy variables.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
FAKE_AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
FAKE_OPENAI_KEY = (
    "sk-proj-M0ckFakeKeyNotReal0TestOnly1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sTu"
    "T3BlbkFJVw1Xy2Zz3Mock4Fake5Key6For7Gateway8Tests9Only0AbCdEfGhIjKl"
)
TEXT_REPLY = "Hello from the mock upstream."
SHELL_SECRET_ARGS = '{"command":"cat ~/.ssh/id_rsa"}'
SHELL_BENIGN_ARGS = '{"command":"ls -la"}'


class HarnessError(RuntimeError):
    pass


def profile_dir() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target")
    return target / os.environ.get("ASG_E2E_PROFILE", "debug")


def find_bin(name: str, env_var: str, build_hint: str) -> Path:
    path = Path(os.environ[env_var]) if os.environ.get(env_var) else profile_dir() / name
    if not path.is_file():
        raise HarnessError(f"{name} binary not found at {path}: run `{build_hint}` first (or set {env_var})")
    return path


def mock_upstream_bin() -> Path:
    return find_bin("mock-upstream", "MOCK_UPSTREAM_BIN", "cargo build -p asg-e2e --bins")


def asg_bin() -> Path:
    return find_bin("asg", "ASG_BIN", "cargo build -p asg")


def free_ports(n: int) -> list[int]:
    """`n` free loopback ports, drawn below the kernel's ephemeral range: a port from bind(:0)
    may meanwhile become another test's listener or an outgoing connection's source port.
    Other test processes draw from the same range, so `Gateway` retries when a bind fails."""
    lo, hi = 10_000, 32_768
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
        if start > 12_000:
            hi = start
    except (OSError, ValueError, IndexError):
        pass
    rng = random.Random()
    socks: list[socket.socket] = []
    try:
        for _ in range(n * 200):
            if len(socks) == n:
                break
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", rng.randrange(lo, hi)))
                socks.append(s)
            except OSError:
                s.close()
        if len(socks) < n:
            raise HarnessError(f"no {n} free loopback ports in {lo}..{hi}")
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: no proxy or ASG_* variables from the caller, NO_PROXY for loopback."""
    env = {k: v for k, v in os.environ.items() if not (k.upper().endswith("_PROXY") or k.upper().startswith("ASG_"))}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra or {})
    return env


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None, timeout: float = 10.0):
    """A request without proxies; returns (status, headers, body bytes) also for 4xx/5xx."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def tail(text: str, n: int = 8000) -> str:
    return text[-n:]


class MockUpstream:
    """A running `mock-upstream` (plain HTTP or TLS). Use `close()` or a `with` block."""

    def __init__(self, args: list[str] | tuple = (), bin: Path | None = None):
        self.bin = Path(bin) if bin else mock_upstream_bin()
        self._dir = tempfile.mkdtemp(prefix="asg-mock-")
        self._stderr_path = Path(self._dir) / "mock-upstream.stderr.log"
        self.tls = "--tls-cert" in args
        with open(self._stderr_path, "wb") as stderr:
            # stdin stays open: the mock exits when this process dies (--exit-on-stdin-eof).
            self.proc = subprocess.Popen(
                [str(self.bin), "--listen", "127.0.0.1:0", "--exit-on-stdin-eof", *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=child_env(),
            )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline().decode()), daemon=True)
        reader.start()
        reader.join(15)
        first = line[0] if line else ""
        if not first.startswith("LISTENING "):
            self.proc.kill()
            self.proc.wait()
            log = self.stderr_text()
            self.close()
            raise HarnessError(f"mock-upstream did not print LISTENING (got {first!r}); stderr:\n{tail(log)}")
        host, port = first.split()[1].rsplit(":", 1)
        self.host, self.port = host, int(port)

    @property
    def base_url(self) -> str:
        """Root URL: the Anthropic SDK base URL."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"

    def url(self, path: str) -> str:
        return self.base_url + path

    def requests(self) -> list[dict]:
        """Recorded requests: dicts with id, ts, method, path (with query), headers (lower-case), body."""
        status, _, body = http("GET", self.url("/__mock/requests"))
        if status != 200:
            raise HarnessError(f"GET /__mock/requests: {status} {body!r}")
        return json.loads(body)

    def requests_to(self, path: str) -> list[dict]:
        return [r for r in self.requests() if r["path"].split("?")[0] == path]

    def reset(self) -> None:
        status, _, body = http("POST", self.url("/__mock/reset"), b"")
        if status != 200:
            raise HarnessError(f"POST /__mock/reset: {status} {body!r}")

    def stderr_text(self) -> str:
        return self._stderr_path.read_text(errors="replace") if self._stderr_path.exists() else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Gateway:
    """A running `asg run`, configured through the same environment as the Rust launcher:
    ASG_LISTEN, ASG_ADMIN_LISTEN (free loopback ports), ASG_UPSTREAM, ASG_POLICY, ASG_DATA_DIR (fresh temp
    dir), plus `env`. `policy_file` / `policy_text` are written into a temp policy folder (ASG_POLICY then
    points at the copy) so a test can edit it with `write_policy`."""

    def __init__(
        self,
        upstream: str,
        policy: str | None = None,
        *,
        env: dict[str, str] | None = None,
        policy_file: str | Path | None = None,
        policy_text: tuple[str, str] | None = None,
        config: str | Path | None = None,
        config_text: str | None = None,
        args: list[str] | tuple = (),
        ready_timeout: float = 20.0,
        bin: str | Path | None = None,
    ):
        self.bin = Path(bin) if bin else asg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="asg-gw-"))
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir()
        self.policy_path: Path | None = None
        if policy_text or policy_file:
            (self.dir / "policies").mkdir()
            # Profiles name their rule data relative to their folder (rules/secrets.toml),
            # as in a mounted ConfigMap: ship the repo's rules alongside the copy.
            shutil.copytree(REPO_ROOT / "policies" / "rules", self.dir / "policies" / "rules")
            if policy_text:
                name, text = policy_text
                self.policy_path = self.dir / "policies" / name
                self.policy_path.write_text(text)
            else:
                self.policy_path = self.dir / "policies" / Path(policy_file).name
                shutil.copyfile(policy_file, self.policy_path)
        self.args = ["run"]
        if config_text is not None:
            config = self.dir / "config.toml"
            Path(config).write_text(config_text)
        if config:
            self.args += ["--config", str(config)]
        self.args += list(args)
        proxy_port, admin_port = free_ports(2)
        self.proxy_addr = f"127.0.0.1:{proxy_port}"
        self.admin_addr = f"127.0.0.1:{admin_port}"
        self.env = {
            "ASG_LISTEN": self.proxy_addr,
            "ASG_ADMIN_LISTEN": self.admin_addr,
            "ASG_UPSTREAM": upstream,
            "ASG_DATA_DIR": str(self.data_dir),
        }
        chosen_policy = str(self.policy_path) if self.policy_path else policy
        if chosen_policy:
            self.env["ASG_POLICY"] = chosen_policy
        self.env.update(env or {})
        self._own_ports = not ({"ASG_LISTEN", "ASG_ADMIN_LISTEN"} & set(env or {}))
        self.ready_timeout = ready_timeout
        self.stdout_path = self.dir / "asg.stdout.log"
        self.stderr_path = self.dir / "asg.stderr.log"
        self.proc: subprocess.Popen | None = None
        try:
            # Another test process may take a port between free_ports and asg's bind: draw new
            # ones and start again (asg exits with "in use" rather than run half-bound).
            for attempt in range(5):
                try:
                    self._spawn()
                    break
                except HarnessError:
                    if attempt == 4 or not self._port_was_taken():
                        raise
                    proxy_port, admin_port = free_ports(2)
                    self.proxy_addr = f"127.0.0.1:{proxy_port}"
                    self.admin_addr = f"127.0.0.1:{admin_port}"
                    self.env["ASG_LISTEN"] = self.proxy_addr
                    self.env["ASG_ADMIN_LISTEN"] = self.admin_addr
        except BaseException:
            self.close()
            raise

    def _port_was_taken(self) -> bool:
        if not self._own_ports:
            return False
        last = self.stderr_text().rsplit("==== asg_harness: starting", 1)[-1]
        return "in use" in last and (self.proxy_addr in last or self.admin_addr in last)

    def _spawn(self) -> None:
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            err.write(f"==== asg_harness: starting {self.bin} {' '.join(self.args)}\n".encode())
            err.flush()
            self.proc = subprocess.Popen(
                [str(self.bin), *self.args], stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env(self.env)
            )
        deadline = time.monotonic() + self.ready_timeout
        last = "no answer"
        while True:
            code = self.proc.poll()
            if code is not None:
                raise HarnessError(
                    f"asg exited with status {code} before becoming ready ({self.bin} {' '.join(self.args)}).\n"
                    f"--- asg stderr ---\n{tail(self.stderr_text())}"
                )
            if self._port_was_taken():
                # pingora keeps retrying a taken port for half a minute; the caller picks others.
                self.kill_hard()
                raise HarnessError(f"a port of asg was taken.\n--- asg stderr ---\n{tail(self.stderr_text())}")
            try:
                status, _, body = http("GET", self.admin_url + "/ready", timeout=1.0)
                if status == 200:
                    return
                last = f"status {status}: {body[:200]!r}"
            except OSError as e:
                last = str(e)
            if time.monotonic() >= deadline:
                self.kill_hard()
                raise HarnessError(
                    f"asg not ready after {self.ready_timeout}s (GET /ready: {last}).\n"
                    f"--- asg stderr ---\n{tail(self.stderr_text())}"
                )
            time.sleep(0.05)

    @property
    def proxy_url(self) -> str:
        """Root URL of the proxy listener: the Anthropic SDK base URL."""
        return f"http://{self.proxy_addr}"

    @property
    def openai_base_url(self) -> str:
        return self.proxy_url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.proxy_url

    @property
    def admin_url(self) -> str:
        return f"http://{self.admin_addr}"

    @property
    def policy_dir(self) -> Path | None:
        return self.policy_path.parent if self.policy_path else None

    def write_policy(self, text: str) -> None:
        """Replace the policy file atomically (temp file + rename); then wait for the reload yourself."""
        if not self.policy_path:
            raise HarnessError("write_policy needs policy_file or policy_text")
        tmp = self.policy_path.with_suffix(".tmp-asg-harness")
        tmp.write_text(text)
        os.replace(tmp, self.policy_path)

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def metrics_text(self) -> str:
        status, _, body = http("GET", self.admin_url + "/metrics")
        if status != 200:
            raise HarnessError(f"GET /metrics: {status} {body[:500]!r}")
        return body.decode()

    def metric_value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return metric_value(self.metrics_text(), name, labels)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_hard(self) -> None:
        """SIGKILL (no graceful shutdown) and reap."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        if self.proc:
            self.proc.wait()

    def restart(self) -> None:
        """Kill if running, start again with the same ports, environment and data dir; wait for /ready."""
        self.kill_hard()
        self._spawn()

    def close(self) -> None:
        self.kill_hard()
        if os.environ.get("ASG_E2E_KEEP"):
            print(f"asg_harness: keeping {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def parse_metrics(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text format samples as (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        brace = line.find("{")
        space = line.find(" ")
        labels: dict[str, str] = {}
        if brace != -1 and (space == -1 or brace < space):
            name, rest = line[:brace], line[brace + 1 :]
            i = 0
            while True:
                while i < len(rest) and rest[i] in ", ":
                    i += 1
                if rest[i] == "}":
                    rest = rest[i + 1 :]
                    break
                eq = rest.index("=", i)
                key = rest[i:eq].strip()
                i = rest.index('"', eq) + 1
                value = []
                while rest[i] != '"':
                    if rest[i] == "\\":
                        i += 1
                        value.append("\n" if rest[i] == "n" else rest[i])
                    else:
                        value.append(rest[i])
                    i += 1
                labels[key] = "".join(value)
                i += 1
        elif space != -1:
            name, rest = line[:space], line[space:]
        else:
            continue
        try:
            samples.append((name, labels, float(rest.split()[0])))
        except (IndexError, ValueError):
            continue
    return samples


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """Sum of the samples of `name` whose labels include `labels` (subset match); None if none match."""
    want = labels or {}
    values = [v for n, lab, v in parse_metrics(text) if n == name and all(lab.get(k) == x for k, x in want.items())]
    return sum(values) if values else None


def openai_client(base_url: str, headers: dict[str, str] | None = None, **kwargs):
    """The official OpenAI client for a base URL (which must end in /v1): no retries, no proxy env."""
    import openai

    return openai.OpenAI(
        base_url=base_url,
        api_key=kwargs.pop("api_key", "sk-test-not-real"),
        max_retries=kwargs.pop("max_retries", 0),
        default_headers=headers,
        http_client=openai.DefaultHttpxClient(trust_env=False),
        **kwargs,
    )


def anthropic_client(base_url: str, headers: dict[str, str] | None = None, **kwargs):
    """The official Anthropic client for a root base URL: no retries, no proxy env."""
    import anthropic

    return anthropic.Anthropic(
        base_url=base_url,
        api_key=kwargs.pop("api_key", "sk-ant-test-not-real"),
        max_retries=kwargs.pop("max_retries", 0),
        default_headers=headers,
        http_client=anthropic.DefaultHttpxClient(trust_env=False),
        **kwargs,
    )
