#!/usr/bin/env bash
# Benchmark hub-report on 1,000,000 event lines (by hand, not in CI): wall time and peak RSS.
#   bench/report.sh            # both streams, every format
# Goal: under 2 s and under 50 MB peak RSS per run. Figures go in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
lines="${LINES:-1000000}"
dir="${BENCH_DIR:-/tmp/hub-report-bench}"
mkdir -p "$dir"
cargo build --release -q -p hub-report
bin=target/release/hub-report
for kind in runs wide; do
    file="$dir/$kind.jsonl"
    if [ ! -s "$file" ] || [ "$(wc -l <"$file")" -ne "$lines" ]; then
        python3 bench/report_gen.py "$kind" "$lines" >"$file"
    fi
    echo "== $kind: $(wc -l <"$file") lines, $(du -m "$file" | cut -f1) MB"
    for format in text json html prometheus; do
        /usr/bin/time -f "%e s wall  %U s user  %M KB max RSS" "$bin" "$file" --format "$format" \
            -o "$dir/$kind.$format" 2>"$dir/time.txt" || true
        printf '%-24s %s\n' "$kind --format $format" "$(tail -1 "$dir/time.txt")"
    done
done
# The trend path: a history of 10,000 runs (one real report, its times jittered per run).
history="$dir/history.jsonl"
if [ ! -s "$history" ]; then
    head -n 40 "$dir/runs.jsonl" | "$bin" --run bench-0000000 --format json |
        python3 -c '
import json, random, sys
base = json.loads(sys.stdin.read()); rng = random.Random(1)
for i in range(10000):
    r = json.loads(json.dumps(base)); r["run_id"] = f"bench-{i:07d}"
    f = rng.uniform(0.8, 1.2); r["duration_ms"] = int(r["duration_ms"] * f)
    for s in r["services"]:
        if s["time_to_healthy_ms"] is not None:
            s["time_to_healthy_ms"] = int(s["time_to_healthy_ms"] * rng.uniform(0.8, 1.2))
    print(json.dumps(r, separators=(",", ":")))
' >"$history"
fi
echo "== trend over $(wc -l <"$history") runs"
/usr/bin/time -f "%e s wall  %U s user  %M KB max RSS" "$bin" trend --history "$history" --last 10000 \
    -o "$dir/trend.txt" 2>"$dir/time.txt" || true
printf '%-24s %s\n' "trend --last 10000" "$(tail -1 "$dir/time.txt")"
