#!/usr/bin/env python3
"""The tool corpus (`tests/corpus/tools/`) through a running gateway binary, as an agent sees it.

Every call of the corpus is served by the mock upstream as a buffered Chat Completions answer proposing
that one call; the gateway under test (this tree's `asg`, or an older binary given with `--bin`, which
judges with the rules built into it) relays or rewrites it. Each call gets its own session and agent
id, so no call is judged with another's history. Per profile it counts, for the benign sets (ordinary,
hard negatives, benign twins):

* flagged    the audit records a decision other than `allow` for the call's session (challenged and
             forwarded, rewritten, held or refused);
* human      the agent got "requires approval" instead of the call (someone has to look at it);
* refused    the agent got a block instead of the call;

and for attacks: blocked, sent to approval, and let through (flagged or not). This measures the
binary from outside, so it works for any version; `cargo run --release -p asg --example measure_tools`
is the in-process measurement of this tree (same corpus, same verdicts, plus cost per call).

Usage: tests/bench/tools_proxy.py [--bin PATH] [--split frozen|tuning|all] [--profiles dev,production,strict]
       [--show N]   (the mock from `cargo build -p asg-e2e --bins`; the gateway from `--bin`, default
       target/debug/asg — measure a release build: `cargo build --release -p asg`, `--bin target/release/asg`)
"""

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import asg_harness as h  # noqa: E402

CORPUS = h.REPO_ROOT / "tests" / "corpus" / "tools"
BENIGN = ("ordinary", "hard_negative", "twin")
# Reads, builds, tests, local git and workspace edits: what no profile, strict included, may hold up.
LOCAL_WORK = ("read", "build", "vcs", "write")


def expand(v):
    if isinstance(v, dict):
        r = v.get("$repeat")
        if isinstance(r, list) and len(v) == 1 and len(r) == 2:
            return r[0] * r[1]
        return {k: expand(x) for k, x in v.items()}
    if isinstance(v, list):
        return [expand(x) for x in v]
    return v


def load(split):
    files = {"frozen": ["frozen.jsonl"], "tuning": ["tuning.jsonl"], "all": ["frozen.jsonl", "tuning.jsonl"]}[split]
    cases = []
    for f in files:
        for line in (CORPUS / f).read_text().splitlines():
            if line.strip():
                c = json.loads(line)
                c["args"] = expand(c["args"])
                cases.append(c)
    return cases


def answer(tool, args):
    return json.dumps(
        {
            "id": "chatcmpl-corpus",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": tool, "arguments": json.dumps(args)},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }
    )


def outcome(status, body):
    """What the agent got: pass | human | refused | error."""
    if status != 200:
        return "refused" if status == 403 else "error"
    msg = json.loads(body)["choices"][0]["message"]
    if msg.get("tool_calls"):
        return "pass"
    text = msg.get("content") or ""
    if "requires approval" in text:
        return "human"
    if "blocked" in text:
        return "refused"
    return "error"


RANK = ["allow", "allow_with_redaction", "challenge", "require_approval", "block"]


def decisions_by_session(gw):
    """The strongest audited decision per session id (request and response stages)."""
    status, _, body = h.http("GET", gw.admin_url + "/operator/api/audit/export?limit=100000", timeout=60)
    if status != 200:
        raise h.HarnessError(f"audit export: {status} {body[:300]!r}")
    out = {}
    for line in body.decode().splitlines():
        e = json.loads(line)
        sid, d = e.get("session_id") or "", e.get("decision") or "allow"
        rank = RANK.index(d) if d in RANK else len(RANK)
        if rank > out.get(sid, (-1, ""))[0]:
            out[sid] = (rank, d)
    return {k: v[1] for k, v in out.items()}


def pct(n, d):
    return f"{100.0 * n / d:5.1f} %" if d else "   -  "


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", help="the asg binary (default: target/<profile>/asg)")
    ap.add_argument("--split", default="frozen")
    ap.add_argument("--profiles", default="dev,production,strict")
    ap.add_argument("--show", type=int, default=0, help="list this many benign calls needing a human and attacks let through")
    a = ap.parse_args()
    a.bin = str(Path(a.bin).resolve()) if a.bin else None
    cases = load(a.split)
    with tempfile.TemporaryDirectory(prefix="asg-tools-corpus-") as d:
        for c in cases:
            (Path(d) / f"{c['id']}.json").write_text(answer(c["tool"], c["args"]))
        # Started from an empty folder, a binary judges with the profiles built into it (not with
        # this tree's policies/, which an older binary may not understand).
        os.chdir(d)
        with h.MockUpstream(["--fixtures", d]) as mock:
            print(f"{a.bin or h.asg_bin()}: split {a.split}, {len(cases)} calls")
            for profile in a.profiles.split(","):
                run(mock, profile, cases, a)


def run(mock, profile, cases, a):
    gw = h.Gateway(mock.base_url, profile, bin=a.bin)
    benign, attacks, risky = Counter(), Counter(), Counter()
    shown, got = [], {}
    try:
        url = gw.proxy_url + "/v1/chat/completions"
        for i, c in enumerate(cases):
            req = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "carry on"}]}
            hdrs = {
                "content-type": "application/json",
                "x-mock-fixture": f"{c['id']}.json",
                "x-session-id": f"corpus-{profile}-{i}",
                "x-agent-id": f"corpus-agent-{i}",
            }
            status, _, body = h.http("POST", url, json.dumps(req).encode(), hdrs, timeout=30)
            got[i] = outcome(status, body)
        time.sleep(1.0)
        decided = decisions_by_session(gw)
    finally:
        gw.close()
    for i, c in enumerate(cases):
        decision, g = decided.get(f"corpus-{profile}-{i}", "allow"), got[i]
        if c["set"] in BENIGN:
            benign["n"] += 1
            benign["flagged"] += decision != "allow"
            benign[g] += 1
            if c["effect"] in LOCAL_WORK:
                benign["local_n"] += 1
                benign["local_stopped"] += g != "pass"
            if (g != "pass" or decision != "allow") and len(shown) < a.show:
                shown.append(f"    benign {g:<7} {decision:<18} {c['id']} ({c['effect']})")
        elif c["set"] == "attack":
            attacks["n"] += 1
            attacks[g] += 1
            if g == "pass":
                attacks["pass_flagged" if decision != "allow" else "pass_clean"] += 1
                if len(shown) < a.show:
                    shown.append(f"    attack passed  {decision:<18} {c['id']}")
        elif c["set"] == "risky":
            risky["n"] += 1
            risky[g] += 1
    n, m, r = benign["n"], attacks["n"], risky["n"]
    print(f"\n== {profile}")
    print(
        f"  benign {n}: flagged {benign['flagged']} ({pct(benign['flagged'], n)}), "
        f"need a human {benign['human']} ({pct(benign['human'], n)}), refused {benign['refused']} "
        f"({pct(benign['refused'], n)}), errors {benign['error']}"
    )
    ln = benign["local_n"]
    print(f"  of which reads/builds/tests/local git/edits {ln}: not let through {benign['local_stopped']} ({pct(benign['local_stopped'], ln)})")
    print(
        f"  attacks {m}: blocked {attacks['refused']} ({pct(attacks['refused'], m)}), "
        f"to approval {attacks['human']} ({pct(attacks['human'], m)}), stopped "
        f"{attacks['refused'] + attacks['human']} ({pct(attacks['refused'] + attacks['human'], m)}), "
        f"let through {attacks['pass']} (of which flagged {attacks['pass_flagged']}), errors {attacks['error']}"
    )
    print(f"  risky {r}: held or blocked {risky['human'] + risky['refused']} ({pct(risky['human'] + risky['refused'], r)})")
    for line in shown:
        print(line)


if __name__ == "__main__":
    main()
