#!/usr/bin/env bash
# Reef against tshark on captures of real load for Redis, PostgreSQL and MySQL:
# records each with tcpdump on the loopback while a load generator runs against the
# local server, then times both tools on one core and compares transaction counts.
#
# Usage: bench/protocols.sh [--reef BIN] [--core N] [--only redis|pgsql|mysql]
#                           [--redis-requests N] [--pgbench-tx N] [--mysql-queries N]
#                           [--keep] [--reuse]
#
# Defaults: --reef target/release/reef, --core 0, all three protocols,
#           --redis-requests 200000 (redis-benchmark -P 16, GET/SET/INCR/LPUSH/...),
#           --pgbench-tx 20000 (pgbench -M extended, 4 clients, a read-only script),
#           --mysql-queries 20000 (mysqlslap-like SELECTs through the mariadb client).
# Needs root (tcpdump), tshark, hyperfine, tcpdump, redis-benchmark, pgbench and
# mariadb, and the servers at 127.0.0.1:6379, :5432 (trust) and :3306 (root, no
# password); scripts/setup installs and starts the servers.
# Captures go to bench/out/ (kept with --keep; otherwise deleted at the end);
# --reuse times the captures already there instead of recording new ones.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
REEF="$REPO_ROOT/target/release/reef"
CORE=0
ONLY=""
REDIS_N=200000
PG_TX=20000
MY_Q=20000
KEEP=0
REUSE=0

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --reef) REEF=$2; shift 2 ;;
        --core) CORE=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --redis-requests) REDIS_N=$2; shift 2 ;;
        --pgbench-tx) PG_TX=$2; shift 2 ;;
        --mysql-queries) MY_Q=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --reuse) REUSE=1; KEEP=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done

missing=()
for tool in tshark hyperfine tcpdump taskset python3 redis-benchmark pgbench mariadb; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )); then
    echo "error: missing tools: ${missing[*]}" >&2
    echo "install with: apt-get install -y tshark hyperfine tcpdump redis-tools postgresql-contrib mariadb-client" >&2
    exit 2
fi
[[ -x $REEF ]] || { echo "error: $REEF not found; build it with: cargo build --release -p reef" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "error: run as root (tcpdump on lo)" >&2; exit 2; }

OUT="$REPO_ROOT/bench/out"
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/reef-proto-bench.XXXXXX)
TCPDUMP_PID=""
cleanup() {
    [[ -n $TCPDUMP_PID ]] && kill "$TCPDUMP_PID" 2>/dev/null || true
    rm -rf "$WORK"
    if (( ! KEEP )); then rm -f "$OUT"/proto-*.pcap; fi
}
trap cleanup EXIT

# Records FILE with tcpdump on lo for the port while the rest of the arguments run.
record() {
    local file=$1 port=$2; shift 2
    if (( REUSE )) && [[ -s $file ]]; then return 0; fi
    tcpdump -i lo -U -B 65536 -s 0 -w "$file" "tcp port $port" 2>"$WORK/tcpdump.err" &
    TCPDUMP_PID=$!
    sleep 1
    "$@" >"$WORK/load.out" 2>&1 || { echo "error: load generator failed:" >&2; tail -5 "$WORK/load.out" >&2; exit 1; }
    sleep 1
    kill -INT "$TCPDUMP_PID"; wait "$TCPDUMP_PID" 2>/dev/null || true
    TCPDUMP_PID=""
    if grep -q "dropped by kernel" "$WORK/tcpdump.err"; then
        grep "dropped by kernel" "$WORK/tcpdump.err" | sed 's/^/  tcpdump: /'
    fi
}

# Counts reef's entries of one protocol in a jsonl stream on stdin.
count_reef() {
    python3 -c '
import json, sys
want = sys.argv[1]
print(sum(1 for l in sys.stdin if json.loads(l).get("protocol") == want))' "$1"
}

# Counts tshark's messages: the values of one field (all occurrences, comma
# separated), those equal to a token when one is given.
count_tshark() {
    python3 -c '
import sys
tok = sys.argv[1] or None
print(sum(1 for l in sys.stdin for v in l.strip().split(",") if v and (tok is None or v == tok)))' "$1"
}

# name, file, reef protocol, tshark display filter, tshark field, token
compare() {
    local name=$1 file=$2 proto=$3 filter=$4 field=$5 token=$6
    local size mb n_reef n_tshark tshark_cmd reef_cmd
    size=$(stat -c %s "$file")
    mb=$(python3 -c "print(f'{$size/1e6:.1f}')")
    tshark_cmd="taskset -c $CORE tshark -r $(printf %q "$file") -n -Y $(printf %q "$filter") -T fields -E occurrence=a -e $field"
    reef_cmd="taskset -c $CORE $(printf %q "$REEF") dissect --format jsonl $(printf %q "$file")"
    n_tshark=$(bash -c "$tshark_cmd" | count_tshark "$token")
    n_reef=$(bash -c "$reef_cmd" | count_reef "$proto")
    hyperfine --style basic --output=pipe --export-json "$WORK/$name-tshark.json" \
        --runs 1 "$tshark_cmd" >/dev/null
    hyperfine --style basic --output=pipe --export-json "$WORK/$name-reef.json" \
        --warmup 1 --runs 3 "$reef_cmd" >/dev/null
    python3 - "$WORK/$name" "$name" "$mb" "$size" "$n_tshark" "$n_reef" <<'EOF2'
import json, sys
mean = lambda tool: json.load(open(f"{sys.argv[1]}-{tool}.json"))["results"][0]["mean"]
name, mb, size, nt, nr = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
t, r = mean("tshark"), mean("reef")
print(f"{name:<6} {mb:>6} MB   tshark {t:6.2f} s {size/t/1e6:6.1f} MB/s {nt:>7} msgs"
      f"   reef {r:6.3f} s {size/r/1e6:6.1f} MB/s {nr:>7} entries   {t/r:5.1f}x")
EOF2
}

echo "reef: $REEF   core: $CORE   tshark: $(tshark --version | head -1)"

if [[ -z $ONLY || $ONLY == redis ]]; then
    f="$OUT/proto-redis.pcap"
    record "$f" 6379 redis-benchmark -h 127.0.0.1 -p 6379 -n "$REDIS_N" -c 8 -P 16 -q \
        -t set,get,incr,lpush,rpop,sadd,hset,lrange_100
    # tshark's view: each command the client sends is a RESP array.
    compare redis "$f" redis "tcp.dstport==6379 && resp" resp.array.length ""
fi

if [[ -z $ONLY || $ONLY == pgsql ]]; then
    f="$OUT/proto-pgsql.pcap"
    cat >"$WORK/pgbench.sql" <<'SQL'
\set n random(1, 1000)
SELECT :n AS n, md5(:n::text) AS h;
SELECT count(*) FROM pg_class WHERE relpages >= :n;
SQL
    export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=postgres PGDATABASE=test PGSSLMODE=disable
    record "$f" 5432 pgbench -n -M extended -c 4 -j 2 -t $((PG_TX / 4)) -f "$WORK/pgbench.sql"
    # One entry per Execute (extended protocol) on Reef's side; tshark's Execute messages.
    compare pgsql "$f" postgresql "pgsql" pgsql.type Execute
fi

if [[ -z $ONLY || $ONLY == mysql ]]; then
    f="$OUT/proto-mysql.pcap"
    python3 -c "
import sys
n = int(sys.argv[1])
for i in range(n):
    print(f'SELECT {i} AS n, MD5({i}) AS h, REPEAT(\"x\", {i % 200}) AS pad;')" "$MY_Q" >"$WORK/mysql.sql"
    record "$f" 3306 mariadb -h 127.0.0.1 -P 3306 -u root --skip-ssl test -e "source $WORK/mysql.sql"
    compare mysql "$f" mysql "mysql" mysql.command 3
fi
