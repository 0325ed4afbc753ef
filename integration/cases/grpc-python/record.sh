#!/bin/sh
# Records capture.pcap: a Python gRPC server and client (grpcio from PyPI) on
# loopback (port 18095), see demo.py; and demo.desc, the descriptor set of demo.proto
# for `reef dissect --proto-descriptors`.
# Usage: record.sh OUT.pcap   (needs root for tcpdump on lo; pip install grpcio grpcio-tools)
set -eu
cd "$(dirname "$0")"
out=$(realpath -m "$1"); port=18095
tmp=$(mktemp -d)
python3 -m grpc_tools.protoc -I. --python_out="$tmp" --grpc_python_out="$tmp" \
    --include_imports --descriptor_set_out=demo.desc demo.proto
cp demo.py "$tmp/"
PYTHONPATH=$tmp python3 "$tmp/demo.py" serve "$port" &
srv=$!
sleep 2
tcpdump -i lo -s 0 -U -w "$out" "tcp port $port" >/dev/null 2>&1 &
dump=$!
sleep 1
PYTHONPATH=$tmp python3 "$tmp/demo.py" call "$port"
sleep 1
kill "$dump" "$srv"
wait 2>/dev/null || true
rm -rf "$tmp"
