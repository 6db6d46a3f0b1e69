#!/usr/bin/env bash
# Cost of hostile bodies: a ~7 KB gzip body that inflates to 7 MiB of one
# repeated letter (and a few other degenerate shapes), sent to
# /v1/chat/completions once, then four at a time. Prints per-request wall
# time and status, and the gateway's CPU time and peak resident memory
# (/usr/bin/time -v) for each round. The gateway restarts between rounds so
# every peak is its own.
#
#   tests/bench/amplification.sh [shape...]   shapes: A (default), words, base64, negation
#   ASG_BIN=path/to/asg tests/bench/amplification.sh    compare another build
#   AMP_BYTES=1048576 tests/bench/amplification.sh negation   another decoded size [7 MiB]
set -euo pipefail
cd "$(dirname "$0")/../.."
SHAPES=("${@:-A}")
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time is not installed (apt-get install -y time)"; exit 2; }

cargo build --release -q -p asg-e2e --bins
[ -n "${ASG_BIN:-}" ] || cargo build --release -q -p asg
ASG=${ASG_BIN:-target/release/asg}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

target/release/mock-upstream --listen 127.0.0.1:0 > "$WORK/mock.out" 2> "$WORK/mock.err" &
for _ in $(seq 50); do grep -q LISTENING "$WORK/mock.out" && break; sleep 0.1; done
MOCK=$(awk '/LISTENING/ {print $2}' "$WORK/mock.out")

python3 - "$WORK" "${AMP_BYTES:-7340032}" "${SHAPES[@]}" <<'PY'
import base64, gzip, json, random, sys
work, n, shapes = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rng = random.Random(7)
for shape in shapes:
    if shape == "A":
        text = "A" * n
    elif shape == "words":
        text = ("ignore " * (n // 7 + 1))[:n]
    elif shape == "negation":
        # dense injection phrases, each behind a negation
        text = ("do not ignore the previous rules, never reveal your instructions and " * (n // 70 + 1))[:n]
    elif shape == "base64":
        text = (base64.b64encode(b"\0" * (n * 3 // 4)).decode())[:n]
    else:
        sys.exit("unknown shape " + shape)
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}).encode()
    gz = gzip.compress(body, 9)
    open("%s/%s.gz" % (work, shape), "wb").write(gz)
    print("%-7s %8d bytes gzip -> %9d bytes JSON" % (shape, len(gz), len(body)))
PY

round() { # shape parallel
  local shape=$1 par=$2 port admin
  port=$(free_port); admin=$(free_port)
  ASG_LISTEN=127.0.0.1:$port ASG_ADMIN_LISTEN=127.0.0.1:$admin ASG_UPSTREAM=http://$MOCK \
    ASG_DATA_DIR="$WORK/data-$shape-$par" ASG_POLICY=${ASG_POLICY:-production} ASG_LOG=warn \
    /usr/bin/time -v -o "$WORK/time-$shape-$par" "$ASG" run > "$WORK/asg.out" 2> "$WORK/asg.err" &
  local tpid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$admin/ready" >/dev/null && break; sleep 0.1; done
  local pids=()
  for i in $(seq "$par"); do
    curl -s -o /dev/null -w "  request $i: status %{http_code}, %{time_total} s\n" --max-time "${AMP_MAX_TIME:-300}" \
      -H 'content-type: application/json' -H 'content-encoding: gzip' \
      --data-binary @"$WORK/$shape.gz" "http://127.0.0.1:$port/v1/chat/completions" &
    pids+=($!)
  done
  wait "${pids[@]}" || true
  sleep 0.3
  kill -TERM "$(pgrep -P "$tpid")" 2>/dev/null || true
  wait "$tpid" || true
  awk -F': ' '/User time|System time|Maximum resident/ {printf "  %s: %s\n", $1, $2}' "$WORK/time-$shape-$par" | sed 's/^\s*\t*//; s/^/  /'
}

for shape in "${SHAPES[@]}"; do
  for par in 1 4; do
    echo "== $shape, $par in parallel ($ASG)"
    round "$shape" "$par"
  done
done
