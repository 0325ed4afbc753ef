#!/usr/bin/env bash
# Entries/s through JetStream, batched against one message per entry, in one run, with a
# nats-server of its own (free port, temporary store). Release build.
#
# Usage: bench/publish.sh [--entries N] [--single-entries N] [--pcap FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install -y nats-server)" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
store=$(mktemp -d "${REEF_BENCH_STORE:-/tmp}/reef-bench-nats.XXXXXX")
nats-server -js -a 127.0.0.1 -p "$port" -sd "$store" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$store"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
args=("$@")
if [ ${#args[@]} -eq 0 ] && [ -f bench/out/http-large.pcap ]; then args=(--pcap bench/out/http-large.pcap); fi
cargo run -q --release -p reef-worker --example publish_bench -- --nats "nats://127.0.0.1:$port" "${args[@]}"
