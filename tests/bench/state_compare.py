#!/usr/bin/env python3
"""What shared state costs a proxied request: the same asg binary on sled (its data folder) and on
Redis over loopback (ASG_STATE_URL, a redis-server this script starts: append-only file, fsync
`everysec`), side by side in one run with alternating rounds.

Each request is a 1 KiB chat completion in a session (`x-session-id`, one of 64 so sessions build
history), production policy, audit mode `always`. Printed per backend: req/s, p50/p99 latency,
asg's CPU per request, and for Redis the commands it ran per proxied request (INFO commandstats)
and its own CPU per request. Run at low concurrency for added latency and at higher concurrency for
throughput.

wrk, the mock, asg and redis-server share the machine, so absolute numbers move with whatever else
runs; the ratios within one run are the figures to quote.

Usage: tests/bench/state_compare.py [--duration 5] [--rounds 3] [--connections 4,32]
       (release build first: cargo build --release -p asg -p asg-e2e)
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (BIN, CLK_TCK, ROOT, cpu_ticks, free_port, parse_wrk, start_mock,  # noqa: E402
                     wait_for)


def start_redis(work: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (work / "redis").mkdir()
    p = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--appendonly", "yes",
                          "--appendfsync", "everysec", "--save", "", "--dir", str(work / "redis")],
                         stdout=open(work / "redis.out", "w"), stderr=subprocess.STDOUT)
    wait_for(lambda: redis_cli(port, "PING") == "PONG", "redis-server")
    return p, port


def redis_cli(port: int, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                          timeout=5).stdout.strip()


def redis_commands(port: int) -> int:
    text = redis_cli(port, "INFO", "commandstats")
    return sum(int(m) for m in re.findall(r"calls=(\d+)", text))


def start_asg(work: Path, mock: str, name: str, state_url: str | None) -> tuple[subprocess.Popen, int]:
    port, admin = free_port(), free_port()
    env = dict(os.environ, ASG_LISTEN=f"127.0.0.1:{port}", ASG_ADMIN_LISTEN=f"127.0.0.1:{admin}",
               ASG_UPSTREAM=f"http://{mock}", ASG_DATA_DIR=str(work / name), ASG_POLICY="production",
               ASG_POLICY_DIR=str(ROOT / "policies"), ASG_AUDIT_SYNC="always", ASG_LOG="warn")
    env.pop("ASG_STATE_URL", None)
    if state_url:
        env["ASG_STATE_URL"] = state_url
    p = subprocess.Popen([str(BIN / "asg"), "run"], env=env, stdout=open(work / f"{name}.out", "w"),
                         stderr=open(work / f"{name}.err", "w"))
    wait_for(lambda: urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=0.5).status == 200,
             name)
    return p, port


def lua_script(work: Path) -> Path:
    text = ("Summarize the following meeting notes for the team. " * 19)[:900]
    body = '{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"%s"}]}' % text
    path = work / "session.lua"
    path.write_text(
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        "  local h = {['Content-Type'] = 'application/json', ['x-mock-scenario'] = 'big',\n"
        "             ['x-mock-size'] = '1024', ['x-session-id'] = 'bench-' .. (n % 64),\n"
        "             ['x-agent-id'] = 'bench-agent'}\n"
        f"  return wrk.format('POST', '/v1/chat/completions', h, {body!r})\n"
        "end\n")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", default="4,32")
    args = ap.parse_args()
    for tool in ("wrk", "redis-server", "redis-cli"):
        if not shutil.which(tool):
            sys.exit(f"state_compare: {tool} is not installed (apt-get install -y wrk redis-server)")
    work = Path(tempfile.mkdtemp(prefix="asg-state-bench-"))
    procs = []
    try:
        mock, mock_addr = start_mock(work)
        procs.append(mock)
        redis, rport = start_redis(work)
        procs.append(redis)
        sled_p, sled_port = start_asg(work, mock_addr, "sled", None)
        procs.append(sled_p)
        red_p, red_port = start_asg(work, mock_addr, "redis", f"redis://127.0.0.1:{rport}/0")
        procs.append(red_p)
        targets = {"sled": (sled_p, sled_port), "redis": (red_p, red_port)}
        script = lua_script(work)
        for _, port in targets.values():
            subprocess.run(["wrk", "-t1", "-c4", "-d1s", "-s", str(script), f"http://127.0.0.1:{port}"],
                           capture_output=True, check=True)
        conns = [int(c) for c in args.connections.split(",")]
        results: dict[tuple[str, int], list[dict]] = {}
        for c in conns:
            for r in range(args.rounds):
                order = list(targets.items()) if r % 2 == 0 else list(reversed(targets.items()))
                for name, (p, port) in order:
                    before, rbefore = cpu_ticks([p.pid]), cpu_ticks([redis.pid])
                    cmds = redis_commands(rport)
                    out = subprocess.run(["wrk", "-t2", f"-c{c}", f"-d{args.duration}s", "--latency", "-s",
                                          str(script), f"http://127.0.0.1:{port}"],
                                         capture_output=True, text=True, check=True).stdout
                    res = parse_wrk(out)
                    n = max(res["requests"], 1)
                    res["cpu_us"] = (cpu_ticks([p.pid]) - before) / CLK_TCK * 1e6 / n
                    res["redis_cmds"] = (redis_commands(rport) - cmds) / n
                    res["redis_cpu_us"] = (cpu_ticks([redis.pid]) - rbefore) / CLK_TCK * 1e6 / n
                    if res["non2xx"] or res["sockerr"]:
                        print(f"warning: {name} c{c} round {r}: {res['non2xx']} non-2xx, "
                              f"{res['sockerr']} socket errors", file=sys.stderr)
                    results.setdefault((name, c), []).append(res)
            time.sleep(0.5)
        print(f"\nstate_compare: 1 KiB chat in 64 sessions, production policy, audit always, "
              f"wrk -t2 -d{args.duration}s, median of {args.rounds} alternating rounds, {os.cpu_count()} CPUs")
        for c in conns:
            print(f"\n-c{c}           {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'asg CPU us/req':>15} "
                  f"{'redis cmds/req':>15} {'redis CPU us/req':>17}")
            med = {}
            for name in targets:
                rs = results[(name, c)]
                med[name] = {k: statistics.median(x[k] for x in rs)
                             for k in ("rps", "p50", "p99", "cpu_us", "redis_cmds", "redis_cpu_us")}
                m = med[name]
                extra = (f"{m['redis_cmds']:15.1f} {m['redis_cpu_us']:17.1f}" if name == "redis"
                         else f"{'':15} {'':17}")
                print(f"{name:13} {m['rps']:8.0f} {m['p50']:8.3f} {m['p99']:8.3f} {m['cpu_us']:15.1f} {extra}")
            s, r = med["sled"], med["redis"]
            print(f"{'redis/sled':13} {r['rps'] / s['rps']:8.2f} {r['p50'] / s['p50']:8.2f} "
                  f"{r['p99'] / s['p99']:8.2f} {r['cpu_us'] / s['cpu_us']:15.2f}   "
                  f"(p50 {1000 * (r['p50'] - s['p50']):+.0f} us, p99 {1000 * (r['p99'] - s['p99']):+.0f} us)")
    finally:
        for p in procs:
            p.kill()
            p.wait()
        if not os.environ.get("ASG_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
