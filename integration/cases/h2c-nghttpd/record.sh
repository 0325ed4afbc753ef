#!/bin/sh
# Records capture.pcap: nghttpd (Debian's nghttp2-server) serving a small site over
# cleartext HTTP/2 on loopback, and real clients using prior knowledge:
# curl --http2-prior-knowledge (one GET), nghttp (three requests on one connection,
# one a 404; a page whose stylesheet the server pushes; a POST), h2load (20
# requests, 4 concurrent streams on each of 2 connections).
# Usage: record.sh WWW_DIR OUT.pcap   (needs root for tcpdump on lo)
set -eu
www=$1; out=$2; port=18080
nghttpd --no-tls -d "$www" -p/index.html=/css/site.css "$port" >/dev/null 2>&1 &
srv=$!
tcpdump -i lo -s 0 -U -w "$out" "tcp port $port" >/dev/null 2>&1 &
dump=$!
sleep 1
base=http://127.0.0.1:$port
curl -s --http2-prior-knowledge -o /dev/null "$base/small.txt"
nghttp -n "$base/small.txt" "$base/data.json" "$base/missing"
nghttp -n "$base/index.html"
nghttp -n -d "$www/small.txt" "$base/small.txt"
h2load -n 20 -c 2 -m 4 "$base/small.txt" >/dev/null
sleep 1
kill "$dump" "$srv"
wait 2>/dev/null || true
