#!/usr/bin/env bash
# Compare reef with tshark on one core: wall time, throughput and HTTP request count.
#
# Usage: bench/run.sh [--pcap FILE] [--reef BIN] [--core N] [--reef-runs N]
#                     [--tshark-runs N] [--tolerance PCT] [--tshark-only]
#
# Defaults: --pcap bench/out/http-large.pcap (make it with bench/record-http.sh),
#           --reef target/release/reef, --core 0, --reef-runs 3 (after 1 warmup),
#           --tshark-runs 1, --tolerance 0.5 (percent).
# Exit status: 0 if the request counts agree within the tolerance, 1 if not,
#              2 on usage or setup errors.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

PCAP="$REPO_ROOT/bench/out/http-large.pcap"
REEF="$REPO_ROOT/target/release/reef"
CORE=0
REEF_RUNS=3
REEF_WARMUP=1
TSHARK_RUNS=1
TOLERANCE=0.5
TSHARK_ONLY=0

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --pcap) PCAP=$2; shift 2 ;;
        --pcap=*) PCAP=${1#*=}; shift ;;
        --reef) REEF=$2; shift 2 ;;
        --reef=*) REEF=${1#*=}; shift ;;
        --core) CORE=$2; shift 2 ;;
        --core=*) CORE=${1#*=}; shift ;;
        --reef-runs) REEF_RUNS=$2; shift 2 ;;
        --reef-runs=*) REEF_RUNS=${1#*=}; shift ;;
        --tshark-runs) TSHARK_RUNS=$2; shift 2 ;;
        --tshark-runs=*) TSHARK_RUNS=${1#*=}; shift ;;
        --tolerance) TOLERANCE=$2; shift 2 ;;
        --tolerance=*) TOLERANCE=${1#*=}; shift ;;
        --tshark-only) TSHARK_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
        *) PCAP=$1; shift ;;
    esac
done

# ---------------------------------------------------------------- preflight
missing=()
for tool in tshark hyperfine taskset python3; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )); then
    echo "error: missing tools: ${missing[*]}" >&2
    echo "install with: apt-get install -y tshark hyperfine util-linux python3" >&2
    exit 2
fi
if [[ ! -r $PCAP ]]; then
    echo "error: capture $PCAP not found; record it with: sudo bench/record-http.sh" >&2
    exit 2
fi
if (( ! TSHARK_ONLY )) && [[ ! -x $REEF ]]; then
    echo "error: reef binary $REEF not found or not executable;" >&2
    echo "       build it with: cargo build --release  (or pass --reef BIN, or --tshark-only)" >&2
    exit 2
fi
if ! taskset -c "$CORE" true 2>/dev/null; then
    echo "error: cannot pin to core $CORE (taskset -c $CORE failed)" >&2
    exit 2
fi

WORK=$(mktemp -d /tmp/reefbench-run.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

PIN=(taskset -c "$CORE")
SIZE=$(stat -L -c %s "$PCAP")
q() { printf '%q' "$1"; }
QPCAP=$(q "$PCAP")
QREEF=$(q "$REEF")

echo "capture   $PCAP ($SIZE bytes)"
echo "cpu       core $CORE: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "tshark    $(tshark --version 2>/dev/null | head -n 1)"
if (( ! TSHARK_ONLY )); then
    echo "reef      $REEF ($("$REEF" --version 2>/dev/null | head -n 1 || echo 'version unknown'))"
fi
echo

# Bring the file into the page cache so no run pays for the first disk read.
cat "$PCAP" > /dev/null

# ---------------------------------------------------------------- counts
# One untimed run of each tool to count HTTP requests.
echo ">>> counting requests with tshark"
TSHARK_COUNT=$("${PIN[@]}" tshark -r "$PCAP" -n -Y http.request -T fields -e http.request.method \
    2>"$WORK/tshark.err" | wc -l)
if grep -v -e 'Running as user "root"' "$WORK/tshark.err" | grep -q .; then
    echo "tshark stderr:" >&2
    grep -v -e 'Running as user "root"' "$WORK/tshark.err" | head -n 5 >&2
fi

if (( ! TSHARK_ONLY )); then
    echo ">>> counting requests with reef"
    # A request record: protocol "http" and a non-null, non-empty method.
    # (Falls back to a nested {"request": {"method": ...}} if reef emits that.)
    cat > "$WORK/count.py" <<'EOF'
import json, sys, collections
requests = 0
lines = 0
bad = 0
protocols = collections.Counter()
for raw in sys.stdin.buffer:
    raw = raw.strip()
    if not raw:
        continue
    lines += 1
    try:
        obj = json.loads(raw)
    except ValueError:
        bad += 1
        continue
    if not isinstance(obj, dict):
        bad += 1
        continue
    proto = obj.get("protocol")
    protocols[str(proto)] += 1
    method = obj.get("method")
    if method is None and isinstance(obj.get("request"), dict):
        method = obj["request"].get("method")
    if isinstance(proto, str) and proto.lower() == "http" and isinstance(method, str) and method != "":
        requests += 1
print(requests)
sys.stderr.write("reef jsonl: %d lines, %d not JSON objects, protocols: %s\n" % (
    lines, bad, ", ".join("%s=%d" % kv for kv in protocols.most_common())))
EOF
    set +e
    "${PIN[@]}" "$REEF" dissect --format jsonl "$PCAP" 2>"$WORK/reef.err" \
        | python3 "$WORK/count.py" >"$WORK/reef.count" 2>"$WORK/count.err"
    status=("${PIPESTATUS[@]}")
    set -e
    cat "$WORK/count.err"
    if (( status[0] != 0 || status[1] != 0 )); then
        echo "error: reef dissect exited with ${status[0]}, counter with ${status[1]}" >&2
        head -n 20 "$WORK/reef.err" >&2
        exit 2
    fi
    REEF_COUNT=$(cat "$WORK/reef.count")
    if [[ -s $WORK/reef.err ]]; then
        echo "reef stderr (first lines):"
        head -n 5 "$WORK/reef.err"
    fi
    # One --stats run to show what reef reports about itself.
    "${PIN[@]}" "$REEF" dissect --format jsonl --stats "$PCAP" >/dev/null 2>"$WORK/reef-stats.err" || {
        echo "error: reef dissect --stats failed:" >&2; head -n 20 "$WORK/reef-stats.err" >&2; exit 2; }
    if [[ -s $WORK/reef-stats.err ]]; then
        echo "reef --stats (stderr):"
        head -n 40 "$WORK/reef-stats.err"
    fi
fi
echo

# ---------------------------------------------------------------- timing
# hyperfine runs pinned to one core together with the command it times;
# output goes through a pipe (--output=pipe) so nobody special-cases /dev/null.
bench() { # name json runs warmup command
    local name=$1 json=$2 runs=$3 warmup=$4 cmd=$5
    "${PIN[@]}" hyperfine --style basic --output=pipe --runs "$runs" --warmup "$warmup" \
        --export-json "$json" -n "$name" "$cmd"
}

echo ">>> timing tshark ($TSHARK_RUNS run(s))"
bench tshark "$WORK/tshark.json" "$TSHARK_RUNS" 0 \
    "tshark -r $QPCAP -n -Y http.request -T fields -e http.request.method"
if (( ! TSHARK_ONLY )); then
    echo ">>> timing reef jsonl ($REEF_WARMUP warmup + $REEF_RUNS runs)"
    bench "reef jsonl" "$WORK/reef.json" "$REEF_RUNS" "$REEF_WARMUP" \
        "$QREEF dissect --format jsonl $QPCAP"
    echo ">>> timing reef jsonl --stats ($REEF_WARMUP warmup + $REEF_RUNS runs)"
    bench "reef jsonl --stats" "$WORK/reef-stats.json" "$REEF_RUNS" "$REEF_WARMUP" \
        "$QREEF dissect --format jsonl --stats $QPCAP > /dev/null"
fi

# ---------------------------------------------------------------- report
python3 - "$SIZE" "$TOLERANCE" "$TSHARK_COUNT" "${REEF_COUNT:-}" "$WORK" "$TSHARK_ONLY" <<'EOF'
import json, os, sys
size, tol, ts_count, reef_count, work, tshark_only = sys.argv[1:7]
size = int(size); tol = float(tol); ts_count = int(ts_count); tshark_only = tshark_only == "1"

def load(name):
    path = os.path.join(work, name)
    if not os.path.exists(path):
        return None
    r = json.load(open(path))["results"][0]
    return r

rows = [("tshark", load("tshark.json"))]
if not tshark_only:
    rows += [("reef jsonl", load("reef.json")), ("reef jsonl --stats", load("reef-stats.json"))]

print()
print("==================== reef vs tshark (one core) ====================")
print("%-20s %12s  (%d bytes)" % ("capture size", "%.1f MB" % (size / 1e6), size))
print("%-20s %12s %10s %10s %12s" % ("", "mean [s]", "stddev", "min [s]", "MB/s"))
for name, r in rows:
    sd = r.get("stddev") or 0.0
    print("%-20s %12.3f %10.3f %10.3f %12.1f" % (name, r["mean"], sd, r["min"], size / 1e6 / r["mean"]))
ts_mean = rows[0][1]["mean"]
if not tshark_only:
    for name, r in rows[1:]:
        print("%-20s %11.1fx  (tshark mean / mean)" % ("speedup " + name.replace("reef ", ""), ts_mean / r["mean"]))
print("%-20s %12d" % ("requests tshark", ts_count))
rc = 0
if not tshark_only:
    reef_count = int(reef_count)
    diff = abs(reef_count - ts_count) / ts_count * 100 if ts_count else (0.0 if reef_count == 0 else 100.0)
    print("%-20s %12d" % ("requests reef", reef_count))
    verdict = "OK" if diff <= tol else "FAIL"
    print("%-20s %12s  (%.3f %%; tolerance %.2f %%)  %s" % ("difference", "%+d" % (reef_count - ts_count), diff, tol, verdict))
    if diff > tol:
        rc = 1
print("====================================================================")
sys.exit(rc)
EOF
