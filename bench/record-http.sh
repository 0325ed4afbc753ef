#!/usr/bin/env bash
# Record a large pcap of real HTTP/1.1 traffic for benchmarking reef against tshark.
#
# Two network namespaces (reefbench-srv, reefbench-cli) joined by a veth pair
# (10.77.0.1/24 <-> 10.77.0.2/24). nginx runs in the server namespace with a
# config generated into a temp dir; wrk drives a deterministic mix of paths,
# methods and status codes from the client namespace; tcpdump records the
# server-side veth. No traffic leaves the namespaces.
#
# Usage: sudo bench/record-http.sh [--requests N] [--out FILE] [--connections C]
#                                  [--threads T] [--max-duration SECS]
#                                  [--keep-offloads] [--verify]
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

REQUESTS=130000
OUT="$REPO_ROOT/bench/out/http-large.pcap"
THREADS=1
CONNECTIONS=8
MAX_DURATION=900
KEEP_OFFLOADS=0
VERIFY=0

NS_SRV=reefbench-srv
NS_CLI=reefbench-cli
VETH_SRV=rb-srv0
VETH_CLI=rb-cli0
IP_SRV=10.77.0.1
IP_CLI=10.77.0.2
PORT=80

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    cat <<EOF

Options:
  --requests N        target number of HTTP transactions (default $REQUESTS)
  --out FILE          output pcap (default bench/out/http-large.pcap)
  --connections C     wrk connections (default $CONNECTIONS)
  --threads T         wrk threads (default $THREADS)
  --max-duration S    upper bound on wrk's run time in seconds (default $MAX_DURATION)
  --keep-offloads     keep TSO/GSO/checksum offload on the veth (capture then holds
                      >MTU "super-segments" and partial checksums); default turns them
                      off with ethtool so the capture looks like a real wire
  --verify            after recording, count requests and status codes with tshark
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        --requests) REQUESTS=$2; shift 2 ;;
        --requests=*) REQUESTS=${1#*=}; shift ;;
        --out) OUT=$2; shift 2 ;;
        --out=*) OUT=${1#*=}; shift ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --connections=*) CONNECTIONS=${1#*=}; shift ;;
        --threads) THREADS=$2; shift 2 ;;
        --threads=*) THREADS=${1#*=}; shift ;;
        --max-duration) MAX_DURATION=$2; shift 2 ;;
        --max-duration=*) MAX_DURATION=${1#*=}; shift ;;
        --keep-offloads) KEEP_OFFLOADS=1; shift ;;
        --verify) VERIFY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

for v in REQUESTS THREADS CONNECTIONS MAX_DURATION; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
        opt=${v,,}; echo "error: --${opt//_/-} must be a positive integer (got '${!v}')" >&2
        exit 2
    fi
done
if (( CONNECTIONS < THREADS )); then
    echo "error: --connections must be >= --threads" >&2
    exit 2
fi

# ---------------------------------------------------------------- preflight
if [[ $EUID -ne 0 ]]; then
    echo "error: must run as root (network namespaces, tcpdump): sudo $0 $*" >&2
    exit 1
fi
missing=()
for tool in ip tcpdump nginx wrk capinfos; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( VERIFY )); then command -v tshark >/dev/null 2>&1 || missing+=(tshark); fi
if (( ${#missing[@]} )); then
    echo "error: missing tools: ${missing[*]}" >&2
    echo "install with: apt-get install -y iproute2 tcpdump tshark wrk nginx-light hyperfine" >&2
    echo "(capinfos/editcap come with tshark's dependency wireshark-common)" >&2
    exit 1
fi
if (( ! KEEP_OFFLOADS )) && ! command -v ethtool >/dev/null 2>&1; then
    echo "warning: ethtool not found; offloads stay on (capture will contain >MTU" >&2
    echo "         GSO segments). Install with: apt-get install -y ethtool" >&2
    KEEP_OFFLOADS=1
fi

# ---------------------------------------------------------------- cleanup
WORK=""
NGINX_PID=""
TCPDUMP_PID=""
WRK_PID=""
HEAD_PID=""

kill_ns_pids() {
    # Processes still inside one of *our* namespaces (e.g. left over from an
    # interrupted earlier run) are ours; end them by pid.
    local ns=$1 pids
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns" || return 0
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -n $pids ]] || return 0
    kill -TERM $pids 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -z $pids ]] && return 0
        sleep 0.2
    done
    kill -KILL $pids 2>/dev/null || true
}

teardown_netns() {
    local ns
    for ns in "$NS_CLI" "$NS_SRV"; do
        kill_ns_pids "$ns"
        if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$ns"; then
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "$WRK_PID" "$HEAD_PID" "$TCPDUMP_PID" "$NGINX_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    teardown_netns
    if [[ -n $WORK && -d $WORK ]]; then
        if (( rc != 0 )) && [[ -f $WORK/error.log ]] && [[ -s $WORK/error.log ]]; then
            echo "--- nginx error.log (last 20 lines) ---" >&2
            tail -n 20 "$WORK/error.log" >&2 || true
        fi
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Idempotence: remove leftovers of an earlier interrupted run.
teardown_netns

WORK=$(mktemp -d /tmp/reefbench.XXXXXX)
chmod 755 "$WORK"
START_TS=$(date +%s)

# ---------------------------------------------------------------- network
ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
ip link add "$VETH_SRV" netns "$NS_SRV" type veth peer name "$VETH_CLI" netns "$NS_CLI"
ip -n "$NS_SRV" addr add "$IP_SRV/24" dev "$VETH_SRV"
ip -n "$NS_CLI" addr add "$IP_CLI/24" dev "$VETH_CLI"
ip -n "$NS_SRV" link set lo up
ip -n "$NS_CLI" link set lo up
ip -n "$NS_SRV" link set "$VETH_SRV" up
ip -n "$NS_CLI" link set "$VETH_CLI" up
if (( ! KEEP_OFFLOADS )); then
    # MTU-sized segments and real checksums, as on a physical wire.
    ip netns exec "$NS_SRV" ethtool -K "$VETH_SRV" tso off gso off gro off tx off >/dev/null 2>&1 || true
    ip netns exec "$NS_CLI" ethtool -K "$VETH_CLI" tso off gso off gro off tx off >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------- content
WWW="$WORK/www"
mkdir -p "$WWW/static" "$WWW/gz" "$WORK/tmp"
: > "$WWW/static/0b.txt"
# Text files: deterministic, printable.
gen_text() { # size file
    local size=$1 file=$2
    # Process substitution, not a pipe: yes' SIGPIPE must not trip pipefail.
    head -c "$size" < <(yes 'The quick brown fox jumps over the lazy dog; kube-apiserver says hello.') > "$file"
}
gen_text 200 "$WWW/static/200b.txt"
{
    head_html='<!doctype html><html><head><title>reef bench</title></head><body><pre>
'
    tail_html='
</pre></body></html>
'
    printf "$head_html"
    head -c $(( 2048 - 71 - 22 )) < <(yes 'apiVersion: v1 kind: Pod metadata: {name: web-0, namespace: default}')
    printf "$tail_html"
} > "$WWW/static/2k.html"
# Binary files: incompressible.
head -c 20480 /dev/urandom > "$WWW/static/20k.bin"
head -c 204800 /dev/urandom > "$WWW/static/200k.bin"
printf '<!doctype html><html><body><h1>reef bench</h1></body></html>\n' > "$WWW/index.html"
# A ~16 KB JSON document served gzip-compressed (chunked) on request.
{
    printf '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123456"},"items":['
    for i in $(seq 1 60); do
        (( i > 1 )) && printf ','
        printf '{"metadata":{"name":"web-%d","namespace":"default","uid":"00000000-0000-0000-0000-%012d","labels":{"app":"web","tier":"frontend"}},"spec":{"nodeName":"node-%d","containers":[{"name":"nginx","image":"nginx:1.25"}]},"status":{"phase":"Running"}}' "$i" "$i" "$(( i % 5 ))"
    done
    printf ']}\n'
} > "$WWW/gz/pods.json"
chmod -R a+rX "$WWW"
LAST_MODIFIED=$(LC_ALL=C date -u -r "$WWW/static/2k.html" '+%a, %d %b %Y %H:%M:%S GMT')

# ---------------------------------------------------------------- nginx
cat > "$WORK/nginx.conf" <<EOF
# Generated by bench/record-http.sh - not the system config.
worker_processes 1;
daemon off;
user nobody nogroup;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;

events { worker_connections 1024; }

http {
    types {
        text/html html;
        text/plain txt;
        application/json json;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
    access_log off;
    server_tokens off;
    log_not_found off;
    sendfile on;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;

    server {
        listen $IP_SRV:$PORT default_server;
        server_name reef-bench;
        root $WWW;

        location = / { index index.html; }
        location /static/ { }
        location /gz/ {
            gzip on;
            gzip_types application/json text/plain;
            gzip_min_length 0;
            gzip_comp_level 1;
        }
        location = /healthz { return 204; }
        location = /readyz { default_type text/plain; return 200 "ok"; }
        location = /old { return 301 http://$IP_SRV/static/2k.html; }
        location = /err/500 { return 500; }
        location = /err/503 { return 503; }
        location = /api/v1/namespaces/default/secrets/admin-token { return 403; }
        location = /api/v1/namespaces/default/pods {
            default_type application/json;
            return 200 '{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"123456"},"items":[{"metadata":{"name":"web-0","namespace":"default"},"status":{"phase":"Running"}},{"metadata":{"name":"web-1","namespace":"default"},"status":{"phase":"Pending"}}]}';
        }
        location = /api/v1/namespaces/kube-system/pods/coredns-5d78c9869d-abcde {
            default_type application/json;
            return 200 '{"kind":"Pod","apiVersion":"v1","metadata":{"name":"coredns-5d78c9869d-abcde","namespace":"kube-system"},"status":{"phase":"Running"}}';
        }
        location = /apis/apps/v1/namespaces/default/deployments {
            default_type application/json;
            return 200 '{"kind":"DeploymentList","apiVersion":"apps/v1","items":[]}';
        }
        location = /api/v1/namespaces/default/configmaps {
            default_type application/json;
            if (\$request_method = POST) {
                return 201 '{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"bench-cm","namespace":"default","resourceVersion":"1"}}';
            }
            return 200 '{"kind":"ConfigMapList","apiVersion":"v1","items":[]}';
        }
        location ~ ^/api/v1/namespaces/default/configmaps/[a-z0-9-]+$ {
            default_type application/json;
            return 200 '{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"bench-cm","namespace":"default","resourceVersion":"2"}}';
        }
        location ~ ^/api/v1/namespaces/default/pods/[a-z0-9-]+$ {
            default_type application/json;
            return 200 '{"kind":"Status","apiVersion":"v1","status":"Success"}';
        }
    }
}
EOF

ip netns exec "$NS_SRV" nginx -e "$WORK/error.log" -p "$WORK/" -c "$WORK/nginx.conf" -t >/dev/null 2>"$WORK/nginx-t.log" || {
    echo "error: nginx config test failed:" >&2; cat "$WORK/nginx-t.log" >&2; exit 1; }
ip netns exec "$NS_SRV" nginx -e "$WORK/error.log" -p "$WORK/" -c "$WORK/nginx.conf" &
NGINX_PID=$!

ready=0
for _ in $(seq 1 50); do
    if ip netns exec "$NS_CLI" curl -s -o /dev/null --max-time 1 "http://$IP_SRV:$PORT/readyz"; then
        ready=1; break
    fi
    kill -0 "$NGINX_PID" 2>/dev/null || break
    sleep 0.1
done
if (( ! ready )); then
    echo "error: nginx did not come up" >&2
    exit 1
fi

# ---------------------------------------------------------------- wrk script
# wrk cannot do HEAD requests whose response announces a body (its parser waits
# for the Content-Length bytes and the connection hangs), so ~1 % of the
# requests are HEADs sent by a small python client on its own keep-alive
# connection, concurrently with wrk.
HEAD_REQUESTS=$(( REQUESTS / 100 ))
WRK_REQUESTS=$(( REQUESTS - HEAD_REQUESTS ))
PER_THREAD=$(( (WRK_REQUESTS + THREADS - 1) / THREADS ))
cat > "$WORK/head.py" <<EOF
# Generated by bench/record-http.sh: HEAD requests over one keep-alive connection.
import http.client, sys, collections
n = int(sys.argv[1])
paths = [("/static/2k.html", {}), ("/static/200k.bin", {}), ("/static/missing.txt", {}),
         ("/gz/pods.json", {"Accept-Encoding": "gzip"}), ("/api/v1/namespaces/default/pods", {})]
conn = http.client.HTTPConnection("$IP_SRV", $PORT, timeout=30)
seen = collections.Counter()
for i in range(n):
    path, headers = paths[i % len(paths)]
    conn.request("HEAD", path, headers=headers)
    r = conn.getresponse()
    r.read()
    seen[r.status] += 1
conn.close()
print("head client: %d HEAD requests, status mix: %s" % (n, " ".join("%d=%d" % kv for kv in sorted(seen.items()))))
EOF
cat > "$WORK/mix.lua" <<EOF
-- Generated by bench/record-http.sh. Deterministic weighted mix of requests;
-- each thread stops itself after $PER_THREAD responses.
local target = $PER_THREAD
local json_body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"bench-cm","namespace":"default"},"data":{"key":"value","mode":"bench"}}'
local patch_body = '{"data":{"mode":"patched"}}'
local gz = { ["Accept-Encoding"] = "gzip" }
local ims = { ["If-Modified-Since"] = "$LAST_MODIFIED" }
local jsonh = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
local patchh = { ["Content-Type"] = "application/merge-patch+json" }

-- { weight, method, path, headers, body }   (weights sum to ~2000)
local mix = {
  { 340, "GET",    "/static/200b.txt" },
  { 150, "GET",    "/static/2k.html" },
  {  80, "GET",    "/static/0b.txt" },
  {  10, "GET",    "/static/20k.bin" },
  {   1, "GET",    "/static/200k.bin" },
  {  30, "GET",    "/" },
  {  40, "GET",    "/static/2k.html", ims },                  -- 304
  {  50, "GET",    "/gz/pods.json", gz },                      -- gzip, chunked
  { 380, "GET",    "/api/v1/namespaces/default/pods?limit=500", jsonh },
  { 200, "GET",    "/api/v1/namespaces/kube-system/pods/coredns-5d78c9869d-abcde", jsonh },
  { 120, "GET",    "/apis/apps/v1/namespaces/default/deployments", jsonh },
  { 120, "POST",   "/api/v1/namespaces/default/configmaps", jsonh, json_body },  -- 201
  {  40, "PUT",    "/api/v1/namespaces/default/configmaps/bench-cm", jsonh, json_body },
  {  20, "PATCH",  "/api/v1/namespaces/default/configmaps/bench-cm", patchh, patch_body },
  {  30, "DELETE", "/api/v1/namespaces/default/pods/web-0" },
  {  60, "GET",    "/healthz" },                               -- 204
  {  40, "GET",    "/old" },                                   -- 301
  {  70, "GET",    "/static/missing.txt" },                    -- 404
  {  50, "GET",    "/api/v1/namespaces/default/nonexistent/thing" }, -- 404
  {  20, "GET",    "/api/v1/namespaces/default/secrets/admin-token" }, -- 403
  {  10, "POST",   "/static/200b.txt", jsonh, json_body },     -- 405
  {  40, "GET",    "/err/500" },                               -- 500
  {  40, "GET",    "/err/503" },                               -- 503
}

local reqs = {}
function init(args)
  for _, m in ipairs(mix) do
    local s = wrk.format(m[2], m[3], m[4], m[5])
    for _ = 1, m[1] do reqs[#reqs + 1] = s end
  end
  -- Fisher-Yates with a fixed LCG so every run sends the same sequence.
  local seed = 12345
  for i = #reqs, 2, -1 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    local j = seed % i + 1
    reqs[i], reqs[j] = reqs[j], reqs[i]
  end
end

local sent = 0
function request()
  sent = sent + 1
  return reqs[(sent - 1) % #reqs + 1]
end

done_count = 0
statuses = {}
function response(status, headers, body)
  done_count = done_count + 1
  statuses[status] = (statuses[status] or 0) + 1
  if done_count == target then
    -- thread:stop() ends this thread's loop, but wrk's main thread still sleeps
    -- for the whole -d duration; the marker file tells record-http.sh to end
    -- wrk early with SIGINT (wrk then prints its summary as usual).
    local f = io.open("$WORK/wrk-done." .. thread_id, "w")
    if f then f:write(done_count, "\n"); f:close() end
    wrk.thread:stop()
  end
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local keys = {}
  for k in pairs(total) do keys[#keys + 1] = k end
  table.sort(keys)
  io.write("wrk status mix:")
  for _, k in ipairs(keys) do io.write(string.format(" %d=%d", k, total[k])) end
  io.write("\n")
  io.write(string.format("wrk completed requests: %d\n", summary.requests))
end
EOF

# ---------------------------------------------------------------- capture
mkdir -p "$(dirname "$OUT")"
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
rm -f "$OUT"
# -Z root: do not drop privileges before opening the output file.
ip netns exec "$NS_SRV" tcpdump -i "$VETH_SRV" -n -s 0 -B 65536 -Z root \
    -w "$OUT" "tcp port $PORT" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 1 100); do
    grep -q 'listening on' "$WORK/tcpdump.err" 2>/dev/null && break
    kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$WORK/tcpdump.err" >&2; exit 1; }
    sleep 0.1
done
sleep 0.3

# ---------------------------------------------------------------- load
echo ">>> wrk: $WRK_REQUESTS requests ($THREADS thread(s) x $PER_THREAD), $CONNECTIONS connections, max ${MAX_DURATION}s;" \
     "python: $HEAD_REQUESTS HEAD requests on 1 connection"
LOAD_START=$(date +%s.%N)
set +e
ip netns exec "$NS_CLI" python3 "$WORK/head.py" "$HEAD_REQUESTS" > "$WORK/head.out" 2>&1 &
HEAD_PID=$!
ip netns exec "$NS_CLI" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${MAX_DURATION}s" --timeout 10s \
    -s "$WORK/mix.lua" "http://$IP_SRV:$PORT/" > "$WORK/wrk.out" 2>&1 &
WRK_PID=$!
while kill -0 "$WRK_PID" 2>/dev/null; do
    markers=$(find "$WORK" -maxdepth 1 -name 'wrk-done.*' | wc -l)
    if (( markers >= THREADS )); then
        kill -INT "$WRK_PID" 2>/dev/null || true
        break
    fi
    sleep 0.05
done
wait "$WRK_PID"
WRK_RC=$?
wait "$HEAD_PID"
HEAD_RC=$?
set -e
WRK_PID=""
HEAD_PID=""
LOAD_END=$(date +%s.%N)
cat "$WORK/wrk.out" "$WORK/head.out"
if (( WRK_RC != 0 || HEAD_RC != 0 )); then
    echo "error: wrk exited with $WRK_RC, head client with $HEAD_RC" >&2
    exit 1
fi

# Let the connection teardown (FIN/ACK) reach the capture, then stop tcpdump
# with SIGINT so it flushes its buffer and prints its statistics.
sleep 1
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=""

WRK_DONE=$(awk '/^wrk completed requests:/ {print $4}' "$WORK/wrk.out")
WRK_DONE=${WRK_DONE:-0}
CAPTURED=$(awk '/packets captured/ {print $1}' "$WORK/tcpdump.err")
RECEIVED=$(awk '/packets received by filter/ {print $1}' "$WORK/tcpdump.err")
DROPPED=$(awk '/packets dropped by kernel/ {print $1}' "$WORK/tcpdump.err")
IFDROPPED=$(awk '/packets dropped by interface/ {print $1}' "$WORK/tcpdump.err")

SIZE=$(stat -c %s "$OUT")
PACKETS=$(capinfos -c -M "$OUT" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
END_TS=$(date +%s)

echo
echo "=================== record-http summary ==================="
printf 'capture           %s\n' "$OUT"
printf 'file size         %d bytes (%s MB)\n' "$SIZE" "$(awk -v s="$SIZE" 'BEGIN {printf "%.1f", s / 1e6}')"
printf 'packets           %s\n' "$PACKETS"
printf 'requests          %s by wrk + %s HEAD by python = %s (target %s)\n' \
    "$WRK_DONE" "$HEAD_REQUESTS" "$(( WRK_DONE + HEAD_REQUESTS ))" "$REQUESTS"
printf 'load duration     %s s\n' "$(awk -v a="$LOAD_START" -v b="$LOAD_END" 'BEGIN {printf "%.1f", b - a}')"
printf 'tcpdump           captured=%s received=%s dropped_by_kernel=%s dropped_by_interface=%s\n' \
    "${CAPTURED:-?}" "${RECEIVED:-?}" "${DROPPED:-?}" "${IFDROPPED:-n/a}"
printf 'offloads          %s\n' "$( (( KEEP_OFFLOADS )) && echo on || echo 'off (MTU-sized segments)')"
printf 'total time        %d s\n' "$(( END_TS - START_TS ))"

if (( VERIFY )); then
    echo
    echo ">>> verifying with tshark (slow)"
    tshark -r "$OUT" -n -Y 'http.request || http.response' -T fields \
        -e http.request.method -e http.response.code > "$WORK/tshark.tsv"
    TS_REQ=$(awk -F'\t' '$1 != ""' "$WORK/tshark.tsv" | wc -l)
    TS_RESP=$(awk -F'\t' '$2 != ""' "$WORK/tshark.tsv" | wc -l)
    printf 'tshark requests   %s\n' "$TS_REQ"
    printf 'tshark responses  %s\n' "$TS_RESP"
    echo 'tshark methods:'
    awk -F'\t' '$1 != "" {print $1}' "$WORK/tshark.tsv" | sort | uniq -c | sort -rn
    echo 'tshark status codes:'
    awk -F'\t' '$2 != "" {print $2}' "$WORK/tshark.tsv" | sort | uniq -c | sort -k2n
fi
echo "==========================================================="

if (( WRK_DONE < WRK_REQUESTS )); then
    echo "error: wrk completed only $WRK_DONE of $WRK_REQUESTS requests within ${MAX_DURATION}s;" \
         "raise --max-duration" >&2
    exit 1
fi
if [[ -n ${DROPPED:-} && $DROPPED != 0 ]]; then
    echo "warning: tcpdump reported $DROPPED packets dropped by kernel; the capture has gaps." >&2
    echo "         Re-run with fewer --connections." >&2
fi
