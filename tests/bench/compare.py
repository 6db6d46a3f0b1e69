#!/usr/bin/env python3
"""Side-by-side load comparison on loopback, in one run with alternating rounds:

* the mock upstream directly,
* nginx (Debian package) as a plain reverse proxy in front of the same mock,
* pingora as a plain reverse proxy (`pingora_floor`, the example built from this repository's pingora with
  nothing of asg in it): the framework's own floor, so asg's figure reads as "framework + what asg adds",
* asg with full inspection, audit mode `always` and `decisions`,

for 1 KiB and 16 KiB chat completions, for SSE streams, and for an agent's turn (`agent`: the captured
Claude Code request of `tests/fixtures/agents/`, 55 KB of system prompt, tool definitions and history,
with one new message per request, streamed back). Every request carries a text of its own (a number
per wrk thread and request), so that asg, which remembers the findings of texts it judged, judges the
new text of every request as it would in real traffic and is not measured on a cache. For each target it prints the median over
the rounds of req/s, p50/p99 latency and the proxy's CPU time per request (utime + stime from
`/proc/<pid>/stat`, all nginx processes summed), and asg's resident memory after the run.

Then latency at a fixed rate (`--rate`, 1,000 req/s of 1 KiB completions by default): wrk runs closed
loop, as fast as it can, so its percentiles are those of a saturated proxy. `fixed-rate` (the e2e
crate's open-loop generator) sends each request at its due time and measures from then, so a stall
shows as delay, not as a lower rate. It prints p50/p99/p99.9 per target and each proxy's added p99
(its p99 minus the direct p99), medians over the rounds.

wrk, the mock, the proxy under test and the kernel share the machine, so absolute numbers move with
whatever else runs; the ratios within one run are the figures to quote.

Usage: tests/bench/compare.py [--duration 8] [--rounds 3] [--connections 32] [--policy production]
       [--workloads 1k,16k,sse,agent] [--baseline OTHER_ASG_BINARY] [--rate 1000] [--rate-duration 5]
       [--profile dist]
       (run through `make bench-compare`, which measures the `dist` build that ships, with whole-program
       optimisation, for asg and the pingora floor alike; --rate 0 skips the fixed-rate part)
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release"
# Where asg and the pingora floor come from (`--profile`); the mock and the load generator stay in BIN.
PROXY_BIN = BIN
CLK_TCK = os.sysconf("SC_CLK_TCK")

WORKLOADS = {
    # name: (request text bytes, response bytes, stream)
    "1k": (900, 1024, False),
    "16k": (15 * 1024, 16 * 1024, False),
    "sse": (900, 4096, True),
    "agent": (0, 4096, True),
}
AGENT_CAPTURE = ROOT / "tests" / "fixtures" / "agents" / "claude_code_tool_roundtrip.json"
# Replaced per request by the wrk thread's number and the request's (`fixed-rate` does the same).
SEQ = "@SEQ@"


def workload_body(name: str) -> tuple[str, dict]:
    """The request path and body of a workload, with SEQ where each request puts its own number."""
    req_bytes, _, stream = WORKLOADS[name]
    if name == "agent":
        capture = json.loads(AGENT_CAPTURE.read_text())
        body = capture["body"]
        # Without its session id: wrk's connections would read as several agents sharing one Claude
        # Code session, which the gateway refuses; like the other workloads, no session is named.
        body.pop("metadata", None)
        body["messages"][-1]["content"].append(
            {"type": "text", "text": f"Turn {SEQ}: now run the test suite and tell me which tests fail."})
        return "/v1/messages", body
    text = (f"Meeting {SEQ}. " + "Summarize the following meeting notes for the team. " * (req_bytes // 50 + 1))
    body = {"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": text[:req_bytes]}]}
    if stream:
        body["stream"] = True
    return "/v1/chat/completions", body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, what: str, timeout: float = 15.0):
    end = time.time() + timeout
    while time.time() < end:
        try:
            v = pred()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"bench-compare: {what} did not come up within {timeout:.0f} s")


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Target:
    def __init__(self, name: str, url: str, pids_fn):
        self.name, self.url, self.pids_fn = name, url, pids_fn
        self.rounds: dict[str, list[dict]] = {}


def start_mock(work: Path) -> tuple[subprocess.Popen, str]:
    out = open(work / "mock.out", "w+")
    p = subprocess.Popen([str(BIN / "mock-upstream"), "--listen", "127.0.0.1:0"], stdout=out,
                         stderr=open(work / "mock.err", "w"))

    def addr():
        out.seek(0)
        m = re.search(r"LISTENING (\S+)", out.read())
        return m.group(1) if m else None
    return p, wait_for(addr, "mock upstream")


def start_nginx(work: Path, mock: str) -> tuple[subprocess.Popen, int]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    conf = work / "nginx.conf"
    (work / "nginx").mkdir()
    os.chmod(work, 0o755)  # nginx workers drop root; they must reach their temp paths
    conf.write_text(f"""
worker_processes {os.cpu_count()};
pid {work}/nginx/nginx.pid;
error_log {work}/nginx/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx/body;
    proxy_temp_path {work}/nginx/proxy;
    fastcgi_temp_path {work}/nginx/fastcgi;
    uwsgi_temp_path {work}/nginx/uwsgi;
    scgi_temp_path {work}/nginx/scgi;
    upstream mock {{ server {mock}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 10m;
        client_body_buffer_size 1m;  # keep request bodies in memory, as asg does
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
    p = subprocess.Popen([nginx, "-p", str(work / "nginx"), "-c", str(conf), "-g", "daemon off;"],
                         stdout=subprocess.DEVNULL, stderr=open(work / "nginx.err", "w"))
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2).close() or True, "nginx")
    return p, port


def start_floor(mock: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    p = subprocess.Popen([str(PROXY_BIN / "examples" / "pingora_floor"), f"127.0.0.1:{port}", mock],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2).close() or True, "pingora_floor")
    return p, port


def start_asg(work: Path, mock: str, name: str, sync: str, policy: str, binary: Path) -> tuple[subprocess.Popen, int]:
    port, admin = free_port(), free_port()
    env = dict(os.environ, ASG_LISTEN=f"127.0.0.1:{port}", ASG_ADMIN_LISTEN=f"127.0.0.1:{admin}",
               ASG_UPSTREAM=f"http://{mock}", ASG_DATA_DIR=str(work / name), ASG_POLICY=policy,
               ASG_POLICY_DIR=str(ROOT / "policies"), ASG_AUDIT_SYNC=sync, ASG_LOG="warn")
    p = subprocess.Popen([str(binary), "run"], env=env, stdout=open(work / f"{name}.out", "w"),
                         stderr=open(work / f"{name}.err", "w"))
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=0.5).status == 200,
             name)
    return p, port


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid] + [int(x) for x in out.split()]


def lua_script(work: Path, name: str) -> tuple[Path, str]:
    """A wrk script sending workload `name` with a number of its own per request, and its path."""
    path, body = workload_body(name)
    resp_bytes = WORKLOADS[name][1]
    prefix, suffix = json.dumps(body).split(SEQ, 1)
    script = work / f"{name}.lua"
    script.write_text(
        "wrk.method = \"POST\"\n"
        "wrk.headers[\"Content-Type\"] = \"application/json\"\n"
        "wrk.headers[\"x-mock-scenario\"] = \"big\"\n"
        f"wrk.headers[\"x-mock-size\"] = \"{resp_bytes}\"\n"
        f"local prefix = {json.dumps(prefix)}\n"
        f"local suffix = {json.dumps(suffix)}\n"
        "local threads = 0\n"
        "function setup(thread) threads = threads + 1; thread:set(\"tid\", threads) end\n"
        "local n = 0\n"
        "function request()\n"
        "  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, prefix .. (tid or 0) .. \"-\" .. n .. suffix)\n"
        "end\n")
    return script, path


def parse_wrk(text: str) -> dict:
    def latency(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)\b" % p, text)
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    reqs = int(re.search(r"(\d+) requests in", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), "p50": latency(50),
            "p99": latency(99), "requests": reqs, "non2xx": int(bad.group(1)) if bad else 0,
            "sockerr": sum(int(x) for x in errs.groups()) if errs else 0}


def run_fixed_rate(url: str, body: Path, rate: int, duration: float) -> dict:
    out = subprocess.run([str(BIN / "fixed-rate"), "--url", f"{url}/v1/chat/completions", "--rate", str(rate),
                          "--duration", str(duration), "--body-file", str(body),
                          "--header", "content-type:application/json", "--header", "x-mock-scenario:big",
                          "--header", f"x-mock-size:{WORKLOADS['1k'][1]}"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def fixed_rate_phase(work: Path, targets: list, args) -> dict:
    """Every target at the same fixed rate, alternating order per round; medians per target."""
    body = work / "fixed-rate-body.json"
    body.write_text(json.dumps(workload_body("1k")[1]))
    runs: dict[str, list[dict]] = {}
    for r in range(args.rounds):
        for t in (targets if r % 2 == 0 else list(reversed(targets))):
            res = run_fixed_rate(t.url, body, args.rate, args.rate_duration)
            if res["errors"] or res["non2xx"]:
                print(f"warning: {t.name} fixed rate round {r}: {res['non2xx']} non-2xx, {res['errors']} errors"
                      f" ({res['last_error']})", file=sys.stderr)
            runs.setdefault(t.name, []).append(res)
    med = {name: {k: statistics.median(x[k] for x in rs) for k in ("achieved_rps", "p50_ms", "p99_ms", "p999_ms")}
           for name, rs in runs.items()}
    print(f"\nfixed rate: {args.rate} req/s for {args.rate_duration:g} s (open loop, latency from each request's due "
          f"time), 1 KiB completions, median of {args.rounds} alternating rounds")
    print(f"{'':19} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'added p99 ms':>13}")
    d = med["direct"]
    for t in targets:
        m = med[t.name]
        added = f"{m['p99_ms'] - d['p99_ms']:.3f}" if t.name != "direct" else ""
        print(f"{t.name:19} {m['achieved_rps']:9.0f} {m['p50_ms']:8.3f} {m['p99_ms']:8.3f} {m['p999_ms']:9.3f} "
              f"{added:>13}")
    return med


def run_wrk(url: str, script: Path, duration: int, conns: int) -> dict:
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--policy", default="production")
    ap.add_argument("--workloads", default="1k,16k,sse,agent")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--rate", type=int, default=1000,
                    help="fixed request rate for the open-loop latency part (0 skips it)")
    ap.add_argument("--rate-duration", type=float, default=5.0, help="seconds per target and round at --rate")
    ap.add_argument("--baseline", type=Path, action="append", default=[],
                    help="another asg binary (say, main's) run beside this one as base-always/base-decisions; "
                         "repeat to run several (named after their file: asg-X runs as X-always, X-decisions)")
    ap.add_argument("--profile", default="release",
                    help="cargo profile of the asg binary and the pingora floor measured (make bench-compare: dist)")
    args = ap.parse_args()
    global PROXY_BIN
    PROXY_BIN = ROOT / "target" / args.profile
    if not (PROXY_BIN / "asg").exists():
        sys.exit(f"bench-compare: target/{args.profile}/asg is missing (cargo build --profile {args.profile} -p asg)")
    if args.rate > 0 and not (BIN / "fixed-rate").exists():
        sys.exit("bench-compare: target/release/fixed-rate is missing (cargo build --release -p asg-e2e --bins)")
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"bench-compare: {tool} is not installed (apt-get install -y {tool})")

    work = Path(tempfile.mkdtemp(prefix="asg-bench-"))
    procs = []
    try:
        mock, mock_addr = start_mock(work)
        procs.append(mock)
        ngx, ngx_port = start_nginx(work, mock_addr)
        procs.append(ngx)
        targets = [Target("direct", f"http://{mock_addr}", lambda: [mock.pid]),
                   Target("nginx", f"http://127.0.0.1:{ngx_port}", lambda: children(ngx.pid))]
        if (PROXY_BIN / "examples" / "pingora_floor").exists():
            floor, floor_port = start_floor(mock_addr)
            procs.append(floor)
            targets.append(Target("pingora", f"http://127.0.0.1:{floor_port}", lambda: [floor.pid]))
        else:
            print(f"bench-compare: no target/{args.profile}/examples/pingora_floor, the framework floor is skipped "
                  f"(cargo build --profile {args.profile} -p asg --example pingora_floor)", file=sys.stderr)
        asgs = {}
        runs = [("asg-always", "always", PROXY_BIN / "asg"), ("asg-decisions", "decisions", PROXY_BIN / "asg")]
        for binary in args.baseline:
            tag = "base" if len(args.baseline) == 1 else binary.name.removeprefix("asg-")[:9]
            runs += [(f"{tag}-always", "always", binary), (f"{tag}-decisions", "decisions", binary)]
        for name, sync, binary in runs:
            p, port = start_asg(work, mock_addr, name, sync, args.policy, binary)
            procs.append(p)
            asgs[name] = p
            targets.append(Target(name, f"http://127.0.0.1:{port}", lambda p=p: [p.pid]))

        workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
        for w in workloads:
            script, path = lua_script(work, w)
            for t in targets:  # warm-up: connections, caches, lazy statics
                subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-s", str(script), f"{t.url}{path}"],
                               capture_output=True, check=True)
            for r in range(args.rounds):
                order = targets if r % 2 == 0 else list(reversed(targets))
                for t in order:
                    pids = t.pids_fn()
                    before = cpu_ticks(pids)
                    res = run_wrk(f"{t.url}{path}", script, args.duration, args.connections)
                    used = cpu_ticks(pids) - before
                    res["cpu_us"] = used / CLK_TCK * 1e6 / max(res["requests"], 1)
                    t.rounds.setdefault(w, []).append(res)
                    if res["non2xx"] or res["sockerr"]:
                        print(f"warning: {t.name} {w} round {r}: {res['non2xx']} non-2xx, "
                              f"{res['sockerr']} socket errors", file=sys.stderr)

        print(f"\nbench-compare: policy {args.policy}, wrk -t2 -c{args.connections} -d{args.duration}s, "
              f"median of {args.rounds} alternating rounds, {os.cpu_count()} CPUs")
        raw = {}
        for w in workloads:
            med = {t.name: {k: statistics.median(r[k] for r in t.rounds[w])
                            for k in ("rps", "p50", "p99", "cpu_us")} for t in targets}
            raw[w] = med
            d, n = med["direct"], med["nginx"]
            req, resp, stream = WORKLOADS[w]
            size = len(json.dumps(workload_body(w)[1])) if w == "agent" else req
            print(f"\n{w}: request ~{size} B, response {resp} B{' as SSE' if stream else ''}")
            print(f"{'':19} {'req/s':>9} {'x direct':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} "
                  f"{'x nginx CPU':>12}")
            for t in targets:
                m = med[t.name]
                cpu_ratio = f"{m['cpu_us'] / n['cpu_us']:.1f}" if t.name != "direct" else ""
                print(f"{t.name:19} {m['rps']:9.0f} {m['rps'] / d['rps']:9.2f} {m['p50']:8.3f} {m['p99']:8.3f} "
                      f"{m['cpu_us']:11.1f} {cpu_ratio:>12}")
        print("\n(CPU us/req of 'direct' is the mock's own CPU; of the proxies, their own process CPU only.)")
        if args.rate > 0:
            raw["fixed_rate"] = fixed_rate_phase(work, targets, args)
        print()
        for name, p in asgs.items():
            print(f"{name} resident memory after the run: {rss_mib(p.pid):.0f} MiB")
        if args.json:
            Path(args.json).write_text(json.dumps(raw, indent=2))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
