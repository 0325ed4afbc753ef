#!/bin/sh
# Records capture.pcap: clients that start in HTTP/1.1 and switch with
# `Upgrade: h2c`, on loopback, against nghttpx (Debian's nghttp2-proxy, which
# accepts the upgrade; nghttpd does not) in front of nghttpd. Only the client side
# (port 18091) is recorded:
# curl --http2 (a GET whose response comes as HTTP/2 stream 1), and nghttp -u (a GET
# upgraded the same way, then a second request on the same connection, as stream 13: nghttp
# first opens streams 3 to 11 as PRIORITY anchors).
# Usage: record.sh WWW_DIR OUT.pcap   (needs root for tcpdump on lo)
set -eu
www=$1; out=$2; port=18091
nghttpd --no-tls -d "$www" 18090 >/dev/null 2>&1 &
backend=$!
nghttpx -f"127.0.0.1,$port;no-tls" -b'127.0.0.1,18090;;proto=h2' --no-ocsp -L ERROR \
    --errorlog-file=/dev/null --accesslog-file=/dev/null --pid-file=/tmp/h2c-upgrade-nghttpx.pid &
sleep 1
tcpdump -i lo -s 0 -U -w "$out" "tcp port $port" >/dev/null 2>&1 &
dump=$!
sleep 1
base=http://127.0.0.1:$port
curl -s --http2 -o /dev/null "$base/index.html"
nghttp -n -u "$base/data.json" "$base/small.txt"
sleep 1
kill "$dump" "$(cat /tmp/h2c-upgrade-nghttpx.pid)" "$backend"
wait 2>/dev/null || true
