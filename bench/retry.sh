#!/usr/bin/env bash
# Benchmarks for hub-retry and hub-breaker (run by hand, not in CI):
#   1. the overhead of `hub-retry -- true` against `true` alone (goal: under 1 ms);
#   2. breaker operations per second through the CLI, uncontended and with 8 processes
#      contending for one key's lock.
# Usage: bench/retry.sh [STATE_DIR]   (STATE_DIR: where the state file lives; default a temp
# folder under $TMPDIR; pass a tmpfs such as /dev/shm to see the cost without disk fsyncs).
# Needs hyperfine (apt-get install hyperfine). Builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p hub-retry -p hub-breaker
RETRY=$PWD/target/release/hub-retry
BREAKER=$PWD/target/release/hub-breaker
TRUE=$(command -v true)
base=${1:-${TMPDIR:-/tmp}}
dir=$(mktemp -d "$base/hub-bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT
state=$dir/breaker.json
export NO_COLOR=1
unset RETRY_MAX_ATTEMPTS RETRY_BASE_DELAY RETRY_MAX_DELAY CIRCUIT_BREAKER_THRESHOLD CIRCUIT_BREAKER_TIMEOUT

echo "== 1. hub-retry overhead (state in $dir)"
hyperfine -N --warmup 100 --runs 2000 --export-markdown "$dir/retry.md" \
    "$TRUE" \
    "$RETRY -- $TRUE" \
    "$RETRY --timeout 10s -- $TRUE" \
    "$RETRY --breaker bench:retry --state $state -- $TRUE"
cat "$dir/retry.md"

# CPU time (user + system, the child included) is steadier than wall time on a busy machine.
if command -v perf >/dev/null; then
    echo "== 1b. CPU time per run (perf stat, 1000 runs)"
    for c in "$TRUE" "$RETRY -- $TRUE"; do
        printf '%s: ' "$c"
        perf stat -r 1000 $c 2>&1 >/dev/null | grep -E "task-clock" | awk '{print $1, $2}'
    done
fi

echo "== 2a. breaker, one process at a time (hyperfine, per operation)"
"$BREAKER" --state "$state" reset --all
hyperfine -N --warmup 50 --runs 1000 --export-markdown "$dir/ops.md" \
    "$BREAKER --state $state check bench:closed" \
    "$BREAKER --state $state --threshold 1000000000 failure bench:count"
cat "$dir/ops.md"

# N processes, each running `ops` operations in a loop, all on one key: ops/s over wall time.
contended() {
    local procs=$1 ops=$2 op=$3
    "$BREAKER" --state "$state" reset --all
    local start end
    start=$(date +%s%N)
    for _ in $(seq "$procs"); do
        (for _ in $(seq "$ops"); do
            "$BREAKER" --state "$state" --threshold 1000000000 "$op" bench:shared
        done) &
    done
    wait
    end=$(date +%s%N)
    local total=$((procs * ops))
    local ms=$(((end - start) / 1000000))
    echo "| $procs | $op | $total | $ms | $((total * 1000 / (ms > 0 ? ms : 1))) |"
}
echo "== 2b. breaker, wall-clock throughput on one key"
echo "| processes | operation | operations | wall ms | ops/s |"
echo "|---|---|---|---|---|"
contended 1 1600 failure
contended 8 200 failure
contended 1 1600 check
contended 8 200 check
final=$("$BREAKER" --state "$state" status --json bench:shared)
echo "last run's state (8x200 check on a closed key: no write): $final"
