#!/usr/bin/env bash
# State under distinct ids: N inspect calls, each with a new session and
# agent id, then N approval requests for distinct actions. Prints resident
# memory before and after each phase, the sessions the gateway still
# tracks, the pending approvals and what was refused.
#
#   tests/bench/state_caps.sh [N]        (default 15000)
#   ASG_BIN=path/to/asg tests/bench/state_caps.sh      compare another build
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-15000}
[ -n "${ASG_BIN:-}" ] || cargo build --release -q -p asg
ASG=${ASG_BIN:-target/release/asg}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
ASG_LISTEN=127.0.0.1:$PROXY_PORT ASG_ADMIN_LISTEN=127.0.0.1:$ADMIN_PORT ASG_UPSTREAM=http://127.0.0.1:9 \
  ASG_DATA_DIR="$WORK/data" ASG_POLICY=dev ASG_LOG=warn ASG_AUDIT_SYNC=decisions "$ASG" run > "$WORK/asg.out" 2> "$WORK/asg.err" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null && break; sleep 0.1; done

python3 - "$ADMIN_PORT" "$N" "$PID" <<'PY'
import http.client, json, sys, time
port, n, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def rss():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
conn = http.client.HTTPConnection("127.0.0.1", port)
def post(path, body):
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()
def get(path):
    conn.request("GET", path)
    r = conn.getresponse()
    return json.loads(r.read())
print("resident at start: %d MB" % rss())
t = time.time()
for i in range(n):
    post("/inspect/tool-call", {"tool_name": "read_file", "tool_target": "notes/%d.md" % i,
                                "session_id": "s-%d" % i, "agent_id": "a-%d" % i})
time.sleep(1.5)  # the state writer persists (and trims) every 500 ms
stats = get("/operator/api/stats")
print("%d distinct sessions in %.1f s: resident %d MB, sessions tracked (active) %s"
      % (n, time.time() - t, rss(), stats.get("active_sessions")))
codes = {}
for i in range(n):
    status, _ = post("/approval/submit", {"session_id": "p-%d" % i, "action_type": "exec_shell",
                                          "action_target": "echo %d" % i})
    codes[status] = codes.get(status, 0) + 1
stats = get("/operator/api/stats")
print("%d approval requests: answers %s, pending shown %s, resident %d MB"
      % (n, codes, stats.get("pending_approvals"), rss()))
PY
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^asg_(state_evicted_total|approvals_total\{event="(opened|refused_cap)")' || true
