#!/usr/bin/env python3
"""Streaming overhead of asg on loopback: added time to first event, and memory per open stream.

* TTFB: the same streaming Chat Completions request (the mock's default text stream), sent `--runs`
  times over one keep-alive connection to the mock directly and through asg, alternating in blocks;
  the time from the last request byte to the first `data:` byte. Prints p50/p90/p99 of both and of the
  difference.
* Memory: `--streams` concurrent streams held open through asg (the mock waits 60 s between events),
  each read up to its first event; the gateway's RSS growth divided by the number of streams.

Usage (release binaries):
    cargo build --release -p asg -p asg-e2e --bins
    ASG_E2E_PROFILE=release .venv/bin/python tests/bench/stream_ttfb.py [--runs 3000] [--streams 500]
"""

import argparse
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import asg_harness  # noqa: E402

# Events in the mock's default text stream (role chunk, text deltas, finish, [DONE]).
EVENTS = 8
BODY = json.dumps({"model": "gpt-4.1", "stream": True, "messages": [{"role": "user", "content": "hi"}]})


def request(addr: str, headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    head = [
        "POST /v1/chat/completions HTTP/1.1",
        f"host: {addr}",
        "content-type: application/json",
        f"content-length: {len(BODY)}",
    ]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if close:
        head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n" + BODY).encode()


def connect(addr: str) -> socket.socket:
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def timed_first_events(addr: str, runs: int) -> list[float]:
    """Seconds from sending each request to the first `data:` byte, on one keep-alive connection."""
    s = connect(addr)
    req = request(addr)
    out = []
    for _ in range(runs):
        s.sendall(req)
        t0 = time.perf_counter()
        buf = b""
        first = None
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"{addr} closed the connection")
            buf += chunk
            if first is None and b"data: " in buf:
                first = time.perf_counter() - t0
            if buf.endswith(b"\r\n0\r\n\r\n"):
                break
        out.append(first)
    s.close()
    return out


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ttfb(mock: asg_harness.MockUpstream, gw: asg_harness.Gateway, runs: int) -> None:
    direct_addr = mock.base_url.removeprefix("http://")
    for addr in (direct_addr, gw.proxy_addr):
        timed_first_events(addr, 300)  # warm-up: connections, pools, caches
    direct, proxied, rounds = [], [], []
    block = 500
    cpu = 0.0
    for _ in range(max(1, runs // block)):
        d = timed_first_events(direct_addr, block)
        before = cpu_seconds(gw.proc.pid)
        q = timed_first_events(gw.proxy_addr, block)
        cpu += cpu_seconds(gw.proc.pid) - before
        direct += d
        proxied += q
        rounds.append((pct(q, 50) - pct(d, 50), pct(q, 99) - pct(d, 99)))
    ms = lambda x: f"{x * 1000:7.3f} ms"  # noqa: E731
    print(f"time to first event, {len(direct)} requests each (keep-alive, loopback)")
    for p in (50, 90, 99):
        d, q = pct(direct, p), pct(proxied, p)
        print(f"  p{p}: direct {ms(d)}   through asg {ms(q)}   added {ms(q - d)}")
    print(f"  mean: direct {ms(statistics.mean(direct))}   through asg {ms(statistics.mean(proxied))}")
    # On a shared machine other processes inflate the tail; rounds of `block` requests each show it.
    p99s = sorted(r[1] for r in rounds)
    print(f"  added p99 per round of {block}: best {ms(p99s[0])}, median {ms(statistics.median(p99s))}, "
          f"worst {ms(p99s[-1])} ({len(rounds)} rounds)")
    # What the gateway itself spends, from its own histograms (per request / per stream).
    for stage in ("request", "stream"):
        total = gw.metric_value("asg_inspection_seconds_sum", {"stage": stage}) or 0.0
        count = gw.metric_value("asg_inspection_seconds_count", {"stage": stage}) or 1.0
        print(f"  asg_inspection_seconds{{stage={stage}}}: mean {total / count * 1e6:.1f} us over {int(count)}")
    # CPU time is not inflated by other processes the way wall-clock tails are.
    print(f"  asg CPU time per streamed request (inspect request, proxy, rewrite {EVENTS} events): "
          f"{cpu / len(proxied) * 1e6:.0f} us")


def memory(gw: asg_harness.Gateway, streams: int) -> None:
    pid = gw.proc.pid
    # One stream first, so lazily built state (pools, policy caches) is not counted per stream.
    warm = connect(gw.proxy_addr)
    warm.sendall(request(gw.proxy_addr, {"x-mock-delay-ms": "60000"}, close=True))
    while b"data: " not in warm.recv(65536):
        pass
    time.sleep(0.5)
    before = rss_kib(pid)
    socks = []
    for _ in range(streams):
        s = connect(gw.proxy_addr)
        s.sendall(request(gw.proxy_addr, {"x-mock-delay-ms": "60000", "x-mock-scenario": "secret"}, close=True))
        socks.append(s)
    for s in socks:
        buf = b""
        while b"data: " not in buf:
            buf += s.recv(65536)
    time.sleep(1.0)
    after = rss_kib(pid)
    print(f"memory: {streams} open streams, asg RSS {before} KiB -> {after} KiB, "
          f"{(after - before) / streams:.1f} KiB per open stream (connection + upstream connection + rewriter)")
    for s in socks:
        s.close()
    warm.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3000)
    ap.add_argument("--streams", type=int, default=500)
    args = ap.parse_args()
    mock = asg_harness.MockUpstream(["--record-limit", "0"])
    gw = asg_harness.Gateway(mock.base_url, "dev", env={"ASG_LOG": "warn"})
    try:
        print(f"asg: {gw.bin}")
        ttfb(mock, gw, args.runs)
        memory(gw, args.streams)
    finally:
        gw.close()
        mock.close()


if __name__ == "__main__":
    main()
