#!/usr/bin/env bash
# Load benchmark: 1 KiB non-streaming chat completions on loopback, against
# the mock upstream directly and through asg; prints both throughputs, their
# ratio and p50/p99 latency. Uses wrk (Debian package).
#
#   tests/bench/load.sh [duration_seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
CONNS=${2:-32}
THREADS=2
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)"; exit 2; }

cargo build --release -q -p asg -p asg-e2e --bins
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$BIN/mock-upstream" --listen 127.0.0.1:0 > "$WORK/mock.out" 2> "$WORK/mock.err" &
for _ in $(seq 50); do grep -q LISTENING "$WORK/mock.out" && break; sleep 0.1; done
MOCK=$(awk '/LISTENING/ {print $2}' "$WORK/mock.out")

PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
ASG_LISTEN=127.0.0.1:$PROXY_PORT ASG_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT ASG_UPSTREAM=http://$MOCK \
  ASG_DATA_DIR="$WORK/data" ASG_POLICY=dev ASG_LOG=warn "$BIN/asg" run > "$WORK/asg.out" 2> "$WORK/asg.err" &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null && break; sleep 0.1; done

# A ~1 KiB request body and a ~1 KiB response body (x-mock-size pads the reply).
python3 - "$WORK/post.lua" <<'PY'
import json, sys
text = ("Summarize the following meeting notes for the team. " * 20)[:900]
body = json.dumps({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": text}]})
lua = 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["x-mock-scenario"] = "big"\nwrk.headers["x-mock-size"] = "1024"\n' % json.dumps(body)
open(sys.argv[1], "w").write(lua)
PY

run() { wrk -t$THREADS -c$CONNS -d${DURATION}s --latency -s "$WORK/post.lua" "$1/v1/chat/completions"; }
echo "== warm-up"; wrk -t1 -c4 -d2s -s "$WORK/post.lua" "http://127.0.0.1:$PROXY_PORT/v1/chat/completions" >/dev/null
echo "== direct: mock upstream"; run "http://$MOCK" | tee "$WORK/direct.txt"
echo "== through asg"; run "http://127.0.0.1:$PROXY_PORT" | tee "$WORK/asg.txt"

python3 - "$WORK/direct.txt" "$WORK/asg.txt" <<'PY'
import re, sys
def parse(path):
    t = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
    def pct(p):
        m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, t)
        v, u = float(m.group(1)), m.group(2)
        return v / 1000 if u == "us" else v * 1000 if u == "s" else v
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
    return rps, pct(50), pct(99), int(errors.group(1)) if errors else 0
d, a = parse(sys.argv[1]), parse(sys.argv[2])
print("\n%-22s %12s %10s %10s %8s" % ("", "req/s", "p50 ms", "p99 ms", "non-2xx"))
print("%-22s %12.0f %10.3f %10.3f %8d" % ("mock upstream direct", *d))
print("%-22s %12.0f %10.3f %10.3f %8d" % ("through asg", *a))
print("throughput ratio asg/direct: %.2f" % (a[0] / d[0]))
if a[3] or d[3]:
    sys.exit("non-2xx responses during the benchmark")
PY
