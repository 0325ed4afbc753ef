#!/usr/bin/env bash
# Record the keepalive-1000 golden fixture:
#   1000 sequential (not pipelined) HTTP/1.1 GETs over ONE keep-alive TCP
#   connection, full SYN..FIN, then the packet(s) carrying the response to
#   request 500 removed with editcap.
#
# Writes, next to this script:
#   capture.pcap   the capture with the response to request 500 missing
#   expected.tsv   index, method, path, status per request ("-" = no response)
#   README.md      how it was made and which frame(s) were dropped
#
# Usage: sudo integration/cases/keepalive-1000/record.sh [--original FILE]
#   --original FILE   also keep the undropped capture at FILE (not committed)
#   REEFKA_KEEP_WORK=1 in the environment keeps the temp dir (for debugging)

set -euo pipefail

CASE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

NS_SRV=reefka-srv
NS_CLI=reefka-cli
VETH_SRV=rka-srv0
VETH_CLI=rka-cli0
IP_SRV=10.78.0.1
IP_CLI=10.78.0.2
PORT=8080
N=1000
DROP_INDEX=500
KEEP_ORIGINAL=""

while [[ $# -gt 0 ]]; do
    case "$1" in
        --original) KEEP_ORIGINAL=$2; shift 2 ;;
        --original=*) KEEP_ORIGINAL=${1#*=}; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# ---------------------------------------------------------------- preflight
if [[ $EUID -ne 0 ]]; then
    echo "error: must run as root (network namespaces, tcpdump): sudo $0" >&2
    exit 1
fi
missing=()
for tool in ip tcpdump nginx python3 tshark editcap capinfos; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )); then
    echo "error: missing tools: ${missing[*]}" >&2
    echo "install with: apt-get install -y iproute2 tcpdump tshark nginx-light python3" >&2
    echo "(editcap/capinfos come with tshark's dependency wireshark-common)" >&2
    exit 1
fi
HAVE_ETHTOOL=1
if ! command -v ethtool >/dev/null 2>&1; then
    echo "warning: ethtool not found; veth offloads stay on (segments may exceed the MTU," >&2
    echo "         checksums may be partial). Install with: apt-get install -y ethtool" >&2
    HAVE_ETHTOOL=0
fi

# ---------------------------------------------------------------- cleanup
WORK=""
NGINX_PID=""
TCPDUMP_PID=""

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }

teardown_netns() {
    local ns pids
    for ns in "$NS_CLI" "$NS_SRV"; do
        ns_exists "$ns" || continue
        # Anything still running inside our own namespace is ours.
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        if [[ -n $pids ]]; then
            kill -TERM $pids 2>/dev/null || true
            sleep 0.5
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [[ -z $pids ]] || kill -KILL $pids 2>/dev/null || true
        fi
        ip netns del "$ns" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for pid in "$TCPDUMP_PID" "$NGINX_PID"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    teardown_netns
    if [[ -n $WORK && -d $WORK ]]; then
        if (( rc != 0 )) && [[ -s $WORK/error.log ]]; then
            echo "--- nginx error.log (last 20 lines) ---" >&2
            tail -n 20 "$WORK/error.log" >&2 || true
        fi
        if [[ -n ${REEFKA_KEEP_WORK:-} ]]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

teardown_netns   # leftovers of an interrupted earlier run
WORK=$(mktemp -d /tmp/reefka.XXXXXX)
chmod 755 "$WORK"

# ---------------------------------------------------------------- network
ip netns add "$NS_SRV"
ip netns add "$NS_CLI"
ip link add "$VETH_SRV" netns "$NS_SRV" type veth peer name "$VETH_CLI" netns "$NS_CLI"
ip -n "$NS_SRV" addr add "$IP_SRV/24" dev "$VETH_SRV"
ip -n "$NS_CLI" addr add "$IP_CLI/24" dev "$VETH_CLI"
for ns in "$NS_SRV" "$NS_CLI"; do ip -n "$ns" link set lo up; done
ip -n "$NS_SRV" link set "$VETH_SRV" up
ip -n "$NS_CLI" link set "$VETH_CLI" up
if (( HAVE_ETHTOOL )); then
    ip netns exec "$NS_SRV" ethtool -K "$VETH_SRV" tso off gso off gro off tx off >/dev/null 2>&1 || true
    ip netns exec "$NS_CLI" ethtool -K "$VETH_CLI" tso off gso off gro off tx off >/dev/null 2>&1 || true
fi

# ---------------------------------------------------------------- content
# Deterministic rules (also used below to cross-check tshark's view):
#   i % 13 == 0            -> 500  (return 500 "<text>": a body, so nginx keeps the connection)
#   else i % 7 == 0        -> 404  (no file)
#   else                   -> 200  text/plain body of 16 + (i*37 % 200) bytes
expected_status() { # i
    local i=$1
    if (( i % 13 == 0 )); then echo 500
    elif (( i % 7 == 0 )); then echo 404
    else echo 200; fi
}

mkdir -p "$WORK/www/item" "$WORK/tmp"
python3 - "$WORK/www/item" "$N" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    if i % 13 == 0 or i % 7 == 0:
        continue
    size = 16 + (i * 37) % 200
    head = "item %d:" % i
    filler = "abcdefghijklmnopqrstuvwxyz0123456789" * 8
    body = (head + filler)[: size - 1] + "\n"
    with open(os.path.join(d, str(i)), "w") as f:
        f.write(body)
EOF
chmod -R a+rX "$WORK/www"

ERR_LOCATIONS=""
for (( i = 13; i <= N; i += 13 )); do
    ERR_LOCATIONS+="        location = /item/$i { return 500 \"item $i: internal error\\n\"; }"$'\n'
done

cat > "$WORK/nginx.conf" <<EOF
# Generated by integration/cases/keepalive-1000/record.sh - not the system config.
worker_processes 1;
daemon off;
user nobody nogroup;
pid $WORK/nginx.pid;
error_log $WORK/error.log warn;
events { worker_connections 64; }
http {
    types { text/plain txt; }
    default_type text/plain;
    access_log off;
    log_not_found off;
    server_tokens off;
    etag off;
    keepalive_requests 2000;
    keepalive_timeout 300s;
    client_body_temp_path $WORK/tmp/body;
    proxy_temp_path $WORK/tmp/proxy;
    fastcgi_temp_path $WORK/tmp/fastcgi;
    uwsgi_temp_path $WORK/tmp/uwsgi;
    scgi_temp_path $WORK/tmp/scgi;
    server {
        listen $IP_SRV:$PORT default_server;
        server_name keepalive-1000;
        root $WORK/www;
        location = /readyz { return 200 "ok\n"; }
$ERR_LOCATIONS
        location /item/ { }
    }
}
EOF

ip netns exec "$NS_SRV" nginx -e "$WORK/error.log" -p "$WORK/" -c "$WORK/nginx.conf" -t >/dev/null 2>"$WORK/nginx-t.log" || {
    echo "error: nginx config test failed:" >&2; cat "$WORK/nginx-t.log" >&2; exit 1; }
ip netns exec "$NS_SRV" nginx -e "$WORK/error.log" -p "$WORK/" -c "$WORK/nginx.conf" &
NGINX_PID=$!

# Readiness probe before the capture starts, so it is not in the capture.
ip netns exec "$NS_CLI" python3 - "$IP_SRV" "$PORT" <<'EOF'
import http.client, sys, time
for _ in range(100):
    try:
        c = http.client.HTTPConnection(sys.argv[1], int(sys.argv[2]), timeout=1)
        c.request("GET", "/readyz"); c.getresponse().read(); c.close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("nginx did not come up")
EOF

# ---------------------------------------------------------------- capture
ORIG="$WORK/original.pcap"
ip netns exec "$NS_SRV" tcpdump -i "$VETH_SRV" -n -s 0 -B 8192 -Z root \
    -w "$ORIG" "tcp port $PORT" 2>"$WORK/tcpdump.err" &
TCPDUMP_PID=$!
for _ in $(seq 1 100); do
    grep -q 'listening on' "$WORK/tcpdump.err" 2>/dev/null && break
    kill -0 "$TCPDUMP_PID" 2>/dev/null || { cat "$WORK/tcpdump.err" >&2; exit 1; }
    sleep 0.1
done
sleep 0.3

# One connection, one request at a time: send, read the whole response, next.
ip netns exec "$NS_CLI" python3 - "$IP_SRV" "$PORT" "$N" <<'EOF'
import http.client, sys
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
conn = http.client.HTTPConnection(host, port, timeout=10)
conn.connect()
sock = conn.sock
for i in range(1, n + 1):
    conn.request("GET", "/item/%d" % i, headers={"User-Agent": "reef-keepalive-1000"})
    r = conn.getresponse()
    r.read()
    if conn.sock is not sock:
        sys.exit("connection was not kept alive at request %d" % i)
    if r.getheader("Connection", "").lower() == "close":
        sys.exit("server closed the connection after request %d" % i)
conn.close()
print("client: %d requests on one connection" % n)
EOF

sleep 1   # let the FIN exchange reach the capture
kill -INT "$TCPDUMP_PID"
wait "$TCPDUMP_PID" || true
TCPDUMP_PID=""
DROPPED_BY_KERNEL=$(awk '/packets dropped by kernel/ {print $1}' "$WORK/tcpdump.err")
if [[ ${DROPPED_BY_KERNEL:-0} != 0 ]]; then
    echo "error: tcpdump dropped $DROPPED_BY_KERNEL packets; re-run" >&2
    exit 1
fi

# ---------------------------------------------------------------- verify original
tsh() { tshark -n "$@" 2>/dev/null; }

STREAMS=$(tsh -r "$ORIG" -T fields -e tcp.stream | sort -u | wc -l)
SYNS=$(tsh -r "$ORIG" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e frame.number | wc -l)
FINS=$(tsh -r "$ORIG" -Y 'tcp.flags.fin == 1' -T fields -e frame.number | wc -l)
RSTS=$(tsh -r "$ORIG" -Y 'tcp.flags.reset == 1' -T fields -e frame.number | wc -l)
ANOMALIES=$(tsh -r "$ORIG" -Y 'tcp.analysis.lost_segment || tcp.analysis.retransmission || tcp.analysis.ack_lost_segment || tcp.analysis.out_of_order' -T fields -e frame.number | wc -l)
if (( STREAMS != 1 || SYNS != 1 || FINS != 2 || RSTS != 0 || ANOMALIES != 0 )); then
    echo "error: expected 1 TCP stream, 1 SYN, 2 FIN, 0 RST, 0 TCP anomalies;" \
         "got $STREAMS streams, $SYNS SYN, $FINS FIN, $RSTS RST, $ANOMALIES anomalies" >&2
    exit 1
fi

# Requests in capture order: frame, method, uri, frame of the response
# (-2: http.response_in is only filled in on a second pass).
tsh -2 -r "$ORIG" -Y http.request -T fields -e frame.number -e http.request.method \
    -e http.request.uri -e http.response_in > "$WORK/requests.tsv"
# Responses: frame, status, frame of the request, frames of a reassembled PDU.
tsh -r "$ORIG" -Y http.response -T fields -E occurrence=a -E aggregator=, \
    -e frame.number -e http.response.code -e http.request_in -e tcp.segment > "$WORK/responses.tsv"

REQS=$(wc -l < "$WORK/requests.tsv")
RESPS=$(wc -l < "$WORK/responses.tsv")
if (( REQS != N || RESPS != N )); then
    echo "error: tshark sees $REQS requests and $RESPS responses, expected $N each" >&2
    exit 1
fi

# expected.tsv from tshark's view of the original capture, cross-checked
# against the rules, and the frames to drop.
python3 - "$WORK/requests.tsv" "$WORK/responses.tsv" "$N" "$DROP_INDEX" \
    "$CASE_DIR/expected.tsv" "$WORK/drop.txt" <<'EOF'
import sys
req_path, resp_path, n, drop_index, out_path, drop_path = sys.argv[1:7]
n, drop_index = int(n), int(drop_index)

def rule(i):
    return 500 if i % 13 == 0 else 404 if i % 7 == 0 else 200

responses = {}
for line in open(resp_path):
    f = line.rstrip("\n").split("\t")
    frame, code, req_in, segs = int(f[0]), int(f[1]), int(f[2]), f[3]
    responses[frame] = (code, req_in, [int(s) for s in segs.split(",") if s] or [frame])

rows = []
drop_frames = None
for idx, line in enumerate(open(req_path), start=1):
    frame, method, uri, resp_in = line.rstrip("\n").split("\t")
    frame, resp_in = int(frame), int(resp_in)
    code, req_in, segs = responses[resp_in]
    if req_in != frame:
        sys.exit("request %d (frame %d): response frame %d points back to %d" % (idx, frame, resp_in, req_in))
    if uri != "/item/%d" % idx or method != "GET":
        sys.exit("request %d is %s %s, expected GET /item/%d" % (idx, method, uri, idx))
    if code != rule(idx):
        sys.exit("request %d got %d, rules say %d" % (idx, code, rule(idx)))
    status = str(code)
    if idx == drop_index:
        drop_frames = segs
        status = "-"
        drop_info = (frame, resp_in, code)
    rows.append("%d\t%s\t%s\t%s" % (idx, method, uri, status))

# The dropped frame(s) must belong to that response alone.
for other_frame, (code, req_in, segs) in responses.items():
    if req_in != drop_info[0] and set(segs) & set(drop_frames):
        sys.exit("frame(s) %s also carry the response to frame %d" % (drop_frames, req_in))

with open(out_path, "w") as out:
    out.write("index\tmethod\tpath\tstatus\n")
    out.write("\n".join(rows) + "\n")
with open(drop_path, "w") as d:
    d.write("%d %d %d %s\n" % (drop_info[0], drop_info[1], drop_info[2], ",".join(map(str, drop_frames))))
EOF

read -r REQ_FRAME RESP_FRAME RESP_CODE DROP_FRAMES < "$WORK/drop.txt"
# The response must be the only HTTP payload in those frames and fit in them.
DROP_FILTER="frame.number in {${DROP_FRAMES//,/ }}"
DROP_DESC=$(tsh -r "$ORIG" -Y "$DROP_FILTER" -T fields -E separator=' ' \
    -e frame.number -e frame.len -e tcp.seq -e tcp.len -e tcp.flags.str | sed 's/·/./g; s/^/    /')
RESP_BYTES=$(tsh -r "$ORIG" -Y "$DROP_FILTER" -T fields -e tcp.len | awk '{s += $1} END {print s}')
GAP_END=$(tsh -r "$ORIG" -Y "$DROP_FILTER" -T fields -e tcp.nxtseq | sort -n | tail -n 1)
# First client packet after the gap and what it acknowledges.
read -r NEXT_FRAME NEXT_ACK NEXT_LEN < <(tsh -r "$ORIG" \
    -Y "ip.src == $IP_CLI && frame.number > ${DROP_FRAMES##*,}" -T fields -E separator=' ' \
    -e frame.number -e tcp.ack -e tcp.len | head -n 1)
NEXT_URI=$(tsh -r "$ORIG" -Y "frame.number == $NEXT_FRAME" -T fields -e http.request.uri)
if [[ -n $NEXT_URI ]]; then NEXT_KIND="the request GET $NEXT_URI"; else NEXT_KIND="a pure ACK"; fi
NEXT_DESC="frame $NEXT_FRAME ($NEXT_KIND) acknowledges relative seq $NEXT_ACK"
if (( NEXT_ACK >= GAP_END )); then
    NEXT_DESC+=", i.e. the $RESP_BYTES bytes that are not in the capture"
fi
PURE_ACKS=$(tsh -r "$ORIG" -Y 'tcp.len == 0 && tcp.flags.syn == 0 && tcp.flags.fin == 0' -T fields -e frame.number | wc -l)

# ---------------------------------------------------------------- drop
OUT="$CASE_DIR/capture.pcap"
# shellcheck disable=SC2086
editcap -F pcap "$ORIG" "$OUT" ${DROP_FRAMES//,/ }
if [[ -n $KEEP_ORIGINAL ]]; then
    cp "$ORIG" "$KEEP_ORIGINAL"
fi

ORIG_PACKETS=$(capinfos -c -M "$ORIG" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
OUT_PACKETS=$(capinfos -c -M "$OUT" | awk -F: '/Number of packets/ {gsub(/ /, "", $2); print $2}')
NDROP=$(awk -F, '{print NF}' <<< "$DROP_FRAMES")
if (( OUT_PACKETS != ORIG_PACKETS - NDROP )); then
    echo "error: editcap wrote $OUT_PACKETS packets, expected $(( ORIG_PACKETS - NDROP ))" >&2
    exit 1
fi

# How tshark itself sees the result (informational).
AFTER_REQS=$(tsh -r "$OUT" -Y http.request -T fields -e frame.number | wc -l)
AFTER_RESPS=$(tsh -r "$OUT" -Y http.response -T fields -e frame.number | wc -l)
AFTER_UNANSWERED=$(tsh -2 -r "$OUT" -Y 'http.request && !http.response_in' -T fields -e http.request.uri | tr '\n' ' ')
OUT_SIZE=$(stat -c %s "$OUT")
STATUS_MIX=$(awk -F'\t' 'NR > 1 {print $4}' "$CASE_DIR/expected.tsv" | sort | uniq -c | awk '{printf "%s%s=%s", sep, $2, $1; sep=", "}')
OFFLOADS=$( (( HAVE_ETHTOOL )) && echo "off (ethtool: MTU-sized segments, real checksums)" || echo "on")

# ---------------------------------------------------------------- README
cat > "$CASE_DIR/README.md" <<EOF
# keepalive-1000

One HTTP/1.1 keep-alive TCP connection carrying $N requests sent one after
another (never pipelined), recorded from real traffic, with **one response
removed**: the response to request $DROP_INDEX.

## Why

A dissector that pairs requests with responses by position ("the next response
on this connection answers the oldest open request") shifts every later pairing
by one when a single response is lost: request $DROP_INDEX would get the
response of $(( DROP_INDEX + 1 )), $(( DROP_INDEX + 1 )) that of $(( DROP_INDEX + 2 )), and so on, and request $N would end
up without a response. The capture has a sequence gap on the server-to-client
side exactly where the response was, so a correct dissector can tell. The right
answer is **$(( N - 1 )) matched request/response pairs and one request
(\`GET /item/$DROP_INDEX\`) flagged as having no response**; every other request
has the status listed in \`expected.tsv\`.

## Files

- \`capture.pcap\` - pcap (Ethernet, microsecond timestamps, snaplen 262144),
  $OUT_PACKETS packets, $OUT_SIZE bytes.
- \`expected.tsv\` - tab-separated with a header line \`index method path status\`:
  one row per request in capture order; \`status\` is the HTTP status code the
  request's response carries, or \`-\` for the one request whose response is not
  in the capture. Generated from tshark's view of the original (undropped)
  capture and cross-checked against the server rules below.
- \`record.sh\` - re-creates all three files (needs root; see below).

## How it was made

\`record.sh\` (run as root) creates two network namespaces \`$NS_SRV\` and
\`$NS_CLI\` joined by a veth pair ($IP_SRV/24 and $IP_CLI/24; veth offloads $OFFLOADS),
runs nginx in \`$NS_SRV\` with its own generated config (\`keepalive_requests 2000\`,
\`keepalive_timeout 300s\`) on port $PORT and records the server-side veth with
\`tcpdump -s 0\`. A python \`http.client\` client in \`$NS_CLI\` sends
\`GET /item/1\` ... \`GET /item/$N\` on one connection, reading each response
completely before sending the next request, then closes the connection; the
capture holds the whole connection from SYN to FIN (1 TCP stream, 0 RST, no TCP
anomalies before the drop).

Server rules (deterministic):

| request i        | status | body |
|------------------|--------|------|
| i % 13 == 0      | 500    | \`item i: internal error\` (\`return 500 "..."\`, a body so nginx keeps the connection open) |
| else i % 7 == 0  | 404    | nginx's HTML error page |
| else             | 200    | text/plain, 16 + (i*37 % 200) bytes |

Status mix in \`expected.tsv\`: $STATUS_MIX.

## What was dropped

In the original capture request $DROP_INDEX (\`GET /item/$DROP_INDEX\`) is frame $REQ_FRAME and its
response (status $RESP_CODE, $RESP_BYTES bytes of TCP payload in $NDROP segment(s)) is frame(s) $DROP_FRAMES:

\`\`\`
    frame frame.len tcp.seq(relative) tcp.len flags
$DROP_DESC
\`\`\`

They were deleted with \`editcap -F pcap original.pcap capture.pcap $DROP_FRAMES\`; nothing
else was changed, so every later frame is numbered $NDROP lower in \`capture.pcap\` than in
the original ($ORIG_PACKETS packets -> $OUT_PACKETS). The missing segment ended at relative
seq $GAP_END; in the original numbering the first client packet after it, $NEXT_DESC.
(The original has only $PURE_ACKS pure ACKs, handshake and teardown included: the requests
carry the ACK for the previous response.)

For reference, tshark 4.0 on \`capture.pcap\`: $AFTER_REQS requests, $AFTER_RESPS responses,
requests without a response: $AFTER_UNANSWERED
EOF

echo
echo "================ keepalive-1000 summary ================"
printf 'original capture  %s packets, 1 TCP stream, %s requests, %s responses\n' "$ORIG_PACKETS" "$REQS" "$RESPS"
printf 'dropped           response to request %s (GET /item/%s, status %s): frame(s) %s (%s payload bytes)\n' \
    "$DROP_INDEX" "$DROP_INDEX" "$RESP_CODE" "$DROP_FRAMES" "$RESP_BYTES"
printf 'capture.pcap      %s packets, %s bytes\n' "$OUT_PACKETS" "$OUT_SIZE"
printf 'expected.tsv      %s rows; status mix: %s\n' "$(( $(wc -l < "$CASE_DIR/expected.tsv") - 1 ))" "$STATUS_MIX"
printf 'tshark after drop %s requests, %s responses, unanswered: %s\n' "$AFTER_REQS" "$AFTER_RESPS" "$AFTER_UNANSWERED"
echo "========================================================"
