#!/usr/bin/env bash
# Benchmark: how fast hub-start launches a burst of due `run` services (issue 13: ≥ 1,000
# launches/s on this 2-CPU machine).
#
# Run by hand (not in CI): bench/launch-burst.sh [SERVICES] (default 1000). BIN=DIR takes
# hub-levels and hub-start from DIR instead of building them (A/B runs against another build).
# N check-less services, each `x-hub.run: [COPY-OF-SLEEP, 100000]` with no dependency, all due
# at once; `hub-levels | hub-start --state-dir …` (release, no gate: a check-less `run` service
# is done once launched). The figure is N / (last `started` ts − first `started` ts), and the
# whole hub-start run. The stack is then killed by the process groups of its pid files.
set -euo pipefail
cd "$(dirname "$0")/.."
services=${1:-1000}
if [ -n "${BIN:-}" ]; then
    bin=$(cd "$BIN" && pwd)
else
    cargo build --release -q -p hub-levels -p hub-start
    bin="$PWD/target/release"
fi
work=$(mktemp -d /tmp/hub-bench-launch.XXXXXX)
cleanup() {
    local f pid
    for f in "$work"/state/pids/*.pid; do
        [ -e "$f" ] || continue
        read -r pid _ < "$f"
        kill -KILL -- "-$pid" 2> /dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
cp "$(command -v sleep)" "$work/burst-sleep"
{
    echo "name: hub-bench-launch"
    echo "services:"
    for ((i = 0; i < services; i++)); do
        echo "  s$i:"
        echo "    x-hub: { class: core, run: [$work/burst-sleep, '100000'] }"
    done
} > "$work/compose.yaml"
"$bin/hub-levels" -f "$work/compose.yaml" > "$work/plan.jsonl"
load=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s%N)
"$bin/hub-start" --state-dir "$work/state" < "$work/plan.jsonl" > "$work/events.jsonl" 2> "$work/log"
t1=$(date +%s%N)
python3 - "$work/events.jsonl" "$(((t1 - t0) / 1000000))" "$load" << 'PY'
import json, sys
ts = [r["ts"] for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "started"]
span = max(ts) - min(ts)
rate = len(ts) / (span / 1000) if span else float("inf")
print(f"{len(ts)} launches: first → last started {span} ms, {rate:.0f} launches/s; "
      f"hub-start ran {sys.argv[2]} ms; load {sys.argv[3]}")
PY
