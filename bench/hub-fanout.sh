#!/usr/bin/env bash
# Fan-out of the hub: N WebSocket clients (default 100), each subscribed with its own SQL
# filter (mixed selectivities, a few take everything), reading live entries that a
# publisher sends to JetStream at a fixed rate (default 10 000 entries/s, batches of 500)
# for a warm-up (5 s) and a measured period (30 s). Reports entries delivered to clients
# per second, publish→client latency (p50/p90/p99/max, from each entry's timestamp, set
# when its batch is published), lost entries, CPU of the hub's threads, the clients', the
# publisher's and nats-server's, and RSS; checks that every client got exactly the
# entries its filter selects (exit status 1 if not).
#
# All in one process (services/hub/examples/fanout_bench.rs): its own nats-server -js on
# a free loopback port with a temporary store (needs nats-server on PATH), the hub
# in-process on its own runtime, the clients and the publisher on theirs. Release build.
#
# Usage: bench/hub-fanout.sh [--clients N] [--rate ENTRIES_PER_S] [--seconds D]
#            [--batch B] [--warmup S] [--hub-threads T] [--client-threads T]
#            [--parse scan|json] [--per-client]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v nats-server >/dev/null || { echo "needs nats-server (apt-get install -y nats-server)" >&2; exit 2; }
exec cargo run --release -p reef-hub --example fanout_bench -- "$@"
