#!/usr/bin/env bash
# Live capture under load. nginx and wrk run in two network namespaces joined by a veth
# pair; `reef worker` captures on the server's end of the veth (inside its namespace,
# with --netns) and publishes to a nats-server of its own. For each load step it
# reports the traffic the worker saw (Gbit/s of IP packets), the packets the kernel
# dropped from the capture ring, the entries produced, and the CPU the worker used.
#
# Usage: sudo bench/live-capture.sh [--duration S] [--connections "1 4 16"] [--size BYTES]
#            [--delay-ms MS] [--threads N] [--offloads on|off] [--worker-cpu N]
#            [--reef BIN]
#
# --delay-ms makes each wrk connection wait MS milliseconds before each request, so
# that the steps load the capture at rates below what the machine can do (with
# 256 KiB responses, a 2 ms delay keeps a connection under ~1 Gbit/s); 0 (the
# default) lets wrk go as fast as it can.
# --worker-cpu pins the worker to one CPU (taskset), the load and NATS to the others:
# what it reaches there is what one core does. Offloads on (the default, as on pod
# veths) lets the kernel hand the capture 64 KB GSO segments; off gives MTU-sized
# packets, as a physical wire without GRO would.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10
STEPS="1 4 16"
SIZE=262144
THREADS=1
OFFLOADS=on
WORKER_CPU=1
DELAY_MS=0
REEF=target/release/reef
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --connections) STEPS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --delay-ms) DELAY_MS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --offloads) OFFLOADS=$2; shift 2 ;;
        --worker-cpu) WORKER_CPU=$2; shift 2 ;;
        --reef) REEF=$2; shift 2 ;;
        -h|--help) sed -n 2,19p "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

for tool in ip nginx wrk nats-server taskset curl python3; do
    command -v "$tool" >/dev/null || {
        echo "needs $tool: apt-get install -y iproute2 nginx-light wrk nats-server util-linux curl python3" >&2
        exit 2
    }
done
[ -x "$REEF" ] || { echo "no $REEF: cargo build --release -p reef" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, AF_PACKET)" >&2; exit 2; }

NS_SRV=reeflive-srv NS_CLI=reeflive-cli
VETH_SRV=rl-srv0 VETH_CLI=rl-cli0
SRV_IP=10.78.0.1 CLI_IP=10.78.0.2
TMP=$(mktemp -d /tmp/reef-live-bench.XXXXXX)
NATS_PID= WORKER_PID=

cleanup() {
    # (|| true: a killed process's status must not end the cleanup under set -e)
    [ -n "$WORKER_PID" ] && kill -INT "$WORKER_PID" 2>/dev/null && { wait "$WORKER_PID" 2>/dev/null || true; }
    [ -n "$NATS_PID" ] && kill "$NATS_PID" 2>/dev/null && { wait "$NATS_PID" 2>/dev/null || true; }
    for ns in $NS_SRV $NS_CLI; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$TMP"
    return 0
}
trap cleanup EXIT
cleanup_quiet() { for ns in $NS_SRV $NS_CLI; do ip netns del "$ns" 2>/dev/null || true; done; }
cleanup_quiet

ip netns add $NS_SRV
ip netns add $NS_CLI
ip link add $VETH_SRV netns $NS_SRV type veth peer name $VETH_CLI netns $NS_CLI
ip -n $NS_SRV addr add $SRV_IP/24 dev $VETH_SRV
ip -n $NS_CLI addr add $CLI_IP/24 dev $VETH_CLI
for ns in $NS_SRV $NS_CLI; do ip -n $ns link set lo up; done
ip -n $NS_SRV link set $VETH_SRV up
ip -n $NS_CLI link set $VETH_CLI up
if [ "$OFFLOADS" = off ]; then
    command -v ethtool >/dev/null || { echo "--offloads off needs ethtool" >&2; exit 2; }
    ip netns exec $NS_SRV ethtool -K $VETH_SRV tso off gso off gro off >/dev/null
    ip netns exec $NS_CLI ethtool -K $VETH_CLI tso off gso off gro off >/dev/null
fi

# nginx: one large file (the load), keep-alive without limit, no logs.
mkdir -p "$TMP/www" "$TMP/nginx"
chmod 755 "$TMP" "$TMP/www"  # nginx's workers run as nobody
head -c "$SIZE" /dev/urandom > "$TMP/www/big"
chmod 644 "$TMP/www/big"
cat > "$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
error_log $TMP/nginx/error.log;
pid $TMP/nginx/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    sendfile on;
    server {
        listen $SRV_IP:80;
        root $TMP/www;
    }
}
EOF
others=$(python3 -c "import os; print(','.join(str(c) for c in sorted(os.sched_getaffinity(0)) if c != $WORKER_CPU) or '$WORKER_CPU')")
ip netns exec $NS_SRV taskset -c "$others" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >/dev/null 2>&1 &
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
NATS_PORT=$(port)
METRICS_PORT=$(port)
taskset -c "$others" nats-server -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$TMP/nats" >/dev/null 2>&1 &
NATS_PID=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT) 2>/dev/null && break; sleep 0.1; done

REEF_LOG=warn taskset -c "$WORKER_CPU" "$REEF" worker --nats "nats://127.0.0.1:$NATS_PORT" --node bench \
    --netns /var/run/netns/$NS_SRV --interface $VETH_SRV --threads "$THREADS" \
    --metrics-listen "127.0.0.1:$METRICS_PORT" &
WORKER_PID=$!
for _ in $(seq 100); do curl -sf "127.0.0.1:$METRICS_PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "127.0.0.1:$METRICS_PORT/healthz" >/dev/null || { echo "the worker did not start" >&2; exit 1; }

metric() { # name (with labels) -> value, 0 when absent
    curl -sf "127.0.0.1:$METRICS_PORT/metrics" | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$WORKER_PID/stat"; }
CLK=$(getconf CLK_TCK)

echo "worker on CPU $WORKER_CPU (threads $THREADS), load and NATS on CPU $others; offloads $OFFLOADS; $SIZE-byte responses; $DELAY_MS ms between a connection's requests; $DURATION s per step"
printf '%-6s %10s %10s %12s %10s %12s %12s %12s\n' conns wrk_req/s Gbit/s packets/s drops entries/s worker_cpu entries_lost
# wrk's hook for a pause before each request.
echo "function delay() return $DELAY_MS end" > "$TMP/delay.lua"
for c in $STEPS; do
    b0=$(metric reef_received_bytes_total); p0=$(metric reef_received_packets_total)
    d0=$(metric reef_dropped_packets_total); e0=$(metric 'reef_entries_total{protocol="http"}')
    t0=$(cpu_ticks)
    out=$(ip netns exec $NS_CLI taskset -c "$others" wrk -t1 -c"$c" -d"${DURATION}s" -s "$TMP/delay.lua" "http://$SRV_IP/big" 2>&1)
    grep -q "Non-2xx" <<<"$out" && { echo "nginx answered errors: $out" >&2; exit 1; }
    sleep 1  # the last responses reach the worker
    b1=$(metric reef_received_bytes_total); p1=$(metric reef_received_packets_total)
    d1=$(metric reef_dropped_packets_total); e1=$(metric 'reef_entries_total{protocol="http"}')
    t1=$(cpu_ticks)
    reqs=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
    total=$(awk '/requests in/ { print $1 }' <<<"$out")
    python3 - "$c" "$reqs" "$total" "$DURATION" "$CLK" "$b0" "$b1" "$p0" "$p1" "$d0" "$d1" "$e0" "$e1" "$t0" "$t1" <<'EOF'
import sys
c, reqs, total, dur, clk, b0, b1, p0, p1, d0, d1, e0, e1, t0, t1 = sys.argv[1:]
dur, clk = float(dur), float(clk)
f = lambda a, b: float(b) - float(a)
entries = f(e0, e1)
print(f"{c:<6} {float(reqs):>10.0f} {f(b0, b1) * 8 / dur / 1e9:>10.2f} {f(p0, p1) / dur:>12.0f} "
      f"{f(d0, d1):>10.0f} {entries / dur:>12.0f} {f(t0, t1) / clk / dur:>12.2f} {int(total) - entries:>12.0f}")
EOF
done
echo "(entries_lost: requests wrk completed minus HTTP entries the worker produced; a connection"
echo " still open at the end of a step is counted when it closes, so a few may show up as lost.)"
