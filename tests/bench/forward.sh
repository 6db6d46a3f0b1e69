#!/usr/bin/env bash
# Forward-proxy benchmark on loopback (release builds):
#  1. cost of a new intercepted connection: TCP + CONNECT + TLS handshake, with a leaf minted for a new
#     host name each time, then with the cached leaf (client: tests/examples/forward_load.rs);
#  2. throughput of 1 KiB chat completions through a CONNECT tunnel (TLS to the gateway, TLS upstream)
#     against reverse mode (plain HTTP to the gateway, the same TLS upstream), same client, same load.
#
#   [ROUNDS=3] tests/bench/forward.sh [duration_seconds] [connections] [handshakes]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-10}
CONNS=${2:-16}
COUNT=${3:-1000}
ROUNDS=${ROUNDS:-3}

cargo build --release -q -p asg -p asg-e2e --bins --example forward_load
BIN=target/release
LOAD=$BIN/examples/forward_load
TLS=tests/fixtures/tls
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$BIN/mock-upstream" --listen 127.0.0.1:0 --record-limit 0 --tls-cert $TLS/apis.pem --tls-key $TLS/apis.key \
  > "$WORK/mock.out" 2> "$WORK/mock.err" &
for _ in $(seq 50); do grep -q LISTENING "$WORK/mock.out" && break; sleep 0.1; done
MOCK=$(awk '/LISTENING/ {print $2}' "$WORK/mock.out")

# dev, plus *.bench.test intercepted (the handshake benchmark's fresh host names).
mkdir -p "$WORK/policies" && cp -r policies/rules "$WORK/policies/"
sed 's/^intercept = \[\]/intercept = ["*.bench.test"]/' policies/dev.toml > "$WORK/policies/bench.toml"
PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
ASG_LISTEN=127.0.0.1:$PROXY_PORT ASG_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT \
  ASG_UPSTREAM=https://localhost:${MOCK##*:} ASG_UPSTREAM_CA=$TLS/ca.pem \
  ASG_CONNECT_TO=api.openai.com:443=$MOCK ASG_POLICY="$WORK/policies/bench.toml" \
  ASG_DATA_DIR="$WORK/data" ASG_LOG=warn "$BIN/asg" run > "$WORK/asg.out" 2> "$WORK/asg.err" &
ASG_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null || { echo "asg did not start:"; cat "$WORK/asg.err"; exit 1; }
CA="$WORK/data/ca/ca.pem"
P=127.0.0.1:$PROXY_PORT
# The gateway's CPU time (user + system, clock ticks): per request or per connection it does not depend
# on what else the machine is doing, unlike throughput on a shared machine.
TCK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$ASG_PID/stat"; }
# measure NAME COUNT_FIELD CMD...: run CMD (one JSON line), store it with the gateway's CPU time per unit.
measure() {
  local name=$1 field=$2; shift 2
  local before after
  before=$(cpu); "$@" > "$WORK/$name.json"; after=$(cpu)
  python3 - "$WORK/$name.json" "$field" "$((after - before))" "$TCK" <<'PY'
import json, sys
path, field, ticks, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
d = json.load(open(path))
n = d[field]["n"] if field != "requests" else d["requests"]
d["asg_cpu_us_per_unit"] = round(ticks / tck * 1e6 / n, 1)
json.dump(d, open(path, "w"))
print(json.dumps(d))
PY
}

echo "== new intercepted connections: leaf minted for a new host each time ($COUNT)"
measure minted total "$LOAD" handshake --proxy $P --ca "$CA" --count "$COUNT" --unique
echo "== new intercepted connections: cached leaf ($COUNT)"
measure cached total "$LOAD" handshake --proxy $P --ca "$CA" --count "$COUNT" --host api.openai.com
echo "== gateway side (asg_forward_tls_handshake_seconds: sum / count)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | awk '/^asg_forward_tls_handshake_seconds_(sum|count)/ {print "  " $0}'

echo "== warm-up"
"$LOAD" tunnel --proxy $P --ca "$CA" -c 4 -d 2 > /dev/null
"$LOAD" reverse --proxy $P -c 4 -d 2 > /dev/null
# Alternate the two modes over several rounds: the machine may be shared, so compare within a round.
for round in $(seq "$ROUNDS"); do
  echo "== round $round: reverse mode (plain HTTP to asg, TLS upstream), $CONNS connections, ${DURATION}s"
  measure "reverse-$round" requests "$LOAD" reverse --proxy $P -c "$CONNS" -d "$DURATION"
  echo "== round $round: CONNECT tunnel (TLS to asg, intercepted; TLS upstream), $CONNS connections, ${DURATION}s"
  measure "tunnel-$round" requests "$LOAD" tunnel --proxy $P --ca "$CA" -c "$CONNS" -d "$DURATION"
done
if command -v wrk >/dev/null; then
  echo "== reverse mode with wrk, as a cross-check of the load client"
  python3 - "$WORK/post.lua" <<'PY'
import json, sys
text = ("Summarize the following meeting notes for the team. " * 20)[:900]
body = json.dumps({"model": "gpt-4.1-mini", "messages": [{"role": "user", "content": text}]})
lua = 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["x-mock-scenario"] = "big"\nwrk.headers["x-mock-size"] = "1024"\n' % json.dumps(body)
open(sys.argv[1], "w").write(lua)
PY
  wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/post.lua" "http://$P/v1/chat/completions" | grep -E "Requests/sec|50%|99%"
fi
echo "== summary (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
python3 - "$WORK" "$ROUNDS" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
for name in ("minted", "cached"):
    h = json.load(open(f"{work}/{name}.json"))
    print("new connection, leaf %s: client total p50 %d us p99 %d us (TLS handshake p50 %d us); asg CPU %.0f us per connection" % (
        name, h["total"]["p50_us"], h["total"]["p99_us"], h["tls"]["p50_us"], h["asg_cpu_us_per_unit"]))
ratios, cpu = [], []
for i in range(1, rounds + 1):
    r = json.load(open(f"{work}/reverse-{i}.json")); t = json.load(open(f"{work}/tunnel-{i}.json"))
    ratios.append(t["rps"] / r["rps"])
    cpu.append((r["asg_cpu_us_per_unit"], t["asg_cpu_us_per_unit"]))
    print("round %d: reverse %5.0f req/s p50 %5d us p99 %6d us cpu %5.1f us/req | tunnel %5.0f req/s p50 %5d us p99 %6d us cpu %5.1f us/req | ratio %.2f" % (
        i, r["rps"], r["latency"]["p50_us"], r["latency"]["p99_us"], cpu[-1][0], t["rps"], t["latency"]["p50_us"], t["latency"]["p99_us"], cpu[-1][1], ratios[-1]))
print("tunnel/reverse throughput: median %.2f (min %.2f, max %.2f)" % (statistics.median(ratios), min(ratios), max(ratios)))
print("asg CPU per request: reverse median %.1f us, tunnel median %.1f us (+%.0f%%)" % (
    statistics.median(c[0] for c in cpu), statistics.median(c[1] for c in cpu),
    100 * (statistics.median(c[1] for c in cpu) / statistics.median(c[0] for c in cpu) - 1)))
PY
