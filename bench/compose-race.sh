#!/usr/bin/env bash
# Benchmark: the real scripts/hub-deploy (release binaries, the whole record pipeline) against
# `docker compose up -d --wait` on one compose project: a chain s0 <- s1 <- s2 (each
# `depends_on: {condition: service_healthy}`) of the static test server (tests/docker/server.c in
# a FROM scratch image, tests/docker/Dockerfile) that listens READY_AFTER_MS (1000) after it
# starts, healthcheck `["CMD", "/server", "check"]` every INTERVAL.
#
# Run by hand (not in CI): bench/compose-race.sh [ROUNDS] [INTERVAL]...   (defaults: 5 1s 5s)
# Needs a Docker engine with compose v2 (.ci/setup.d/50-docker.sh) and gcc with a static libc.
#
# Three modes, alternating (each round starts with the next mode), torn down with
# `docker compose down` before every bring-up; the figure is the wall time of the command:
#   compose     docker compose -p P -f compose.yaml up -d --wait
#   hub-engine  scripts/hub-deploy -f compose.yaml               (health: the engine's healthcheck)
#   hub-exec    scripts/hub-deploy -f compose.yaml -f exec.yaml  (x-hub.health.exec: true)
# Per-round times and the load average go to stderr, the tables to stdout. The image is removed
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shift || true
intervals=("$@")
[ ${#intervals[@]} -gt 0 ] || intervals=(1s 5s)
ready_after_ms=${READY_AFTER_MS:-1000}
image=hub-bench-server:race-sh
project="hubrace$$"
modes=(compose hub-engine hub-exec)

cargo build --release -q -p hub-levels -p hub-start -p hub-wait-healthy -p hub-report
export HUB_BIN_DIR="$PWD/target/release"
work=$(mktemp -d /tmp/hub-compose-race.XXXXXX)
down() {
    docker compose -p "$project" -f "$work/compose.yaml" down -v --remove-orphans --timeout 2 > /dev/null 2>&1
}
cleanup() {
    [ -f "$work/compose.yaml" ] && down || true
    docker rmi -f "$image" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

gcc -static -O2 -o "$work/server" tests/docker/server.c
cp tests/docker/Dockerfile "$work/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work" > /dev/null 2>&1

cat > "$work/exec.yaml" <<'YAML'
services:
  s0: { x-hub: { health: { exec: true } } }
  s1: { x-hub: { health: { exec: true } } }
  s2: { x-hub: { health: { exec: true } } }
YAML

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f s", ms / 1000 }'; }

echo "chain of 3 services, each ready ${ready_after_ms} ms after start; $(docker compose version --short 2> /dev/null | sed 's/^/compose /'), engine $(docker version -f '{{.Server.Version}}' 2> /dev/null)"
for interval in "${intervals[@]}"; do
    cat > "$work/compose.yaml" <<YAML
name: $project
services:
YAML
    for i in 0 1 2; do
        cat >> "$work/compose.yaml" <<YAML
  s$i:
    image: $image
    environment: { READY_AFTER_MS: "$ready_after_ms" }
    healthcheck: { test: ["CMD", "/server", "check"], interval: $interval, timeout: 2s, retries: 100 }
YAML
        [ "$i" -gt 0 ] && echo "    depends_on: { s$((i - 1)): { condition: service_healthy } }" >> "$work/compose.yaml"
    done
    : > "$work/times"
    : > "$work/split"
    for ((round = 0; round < rounds; round++)); do
        for ((k = 0; k < ${#modes[@]}; k++)); do
            mode=${modes[$(((round + k) % ${#modes[@]}))]}
            down
            state="$work/state-$mode"
            rm -rf "$state"
            load=$(cut -d' ' -f1 /proc/loadavg)
            t0=$(date +%s%N)
            case "$mode" in
                compose) docker compose -p "$project" -f "$work/compose.yaml" up -d --wait --wait-timeout 300 > "$work/log" 2>&1 ;;
                hub-engine) scripts/hub-deploy -f "$work/compose.yaml" --state-dir "$state" --events "$work/events" -q > "$work/log" 2>&1 ;;
                hub-exec) scripts/hub-deploy -f "$work/compose.yaml" -f "$work/exec.yaml" --state-dir "$state" --events "$work/events" -q > "$work/log" 2>&1 ;;
            esac || { echo "round $((round + 1)) $mode failed:" >&2; tail -20 "$work/log" >&2; exit 1; }
            t1=$(date +%s%N)
            ms=$(((t1 - t0) / 1000000))
            echo "$mode $ms $load" >> "$work/times"
            # hub rounds: where the time went, from the events (ms): inside `up` (a `healthy`
            # record, or the first `plan`, to the next `started`) and waiting for health
            # (`started` to `healthy`, against the server's READY_AFTER_MS).
            [ "$mode" = compose ] || python3 - "$work/events" "$mode" >> "$work/split" <<'PY'
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
mark = min(r["ts"] for r in records if r["type"] == "plan")
up = wait = 0
for r in records:
    if r["type"] == "started":
        up += r["ts"] - mark
        started = r["ts"]
    elif r["type"] == "healthy":
        wait += r["ts"] - started
        mark = r["ts"]
print(sys.argv[2], up, wait)
PY
            printf 'interval %s round %d %-10s %6d ms  load %s\n' "$interval" "$((round + 1))" "$mode" "$ms" "$load" >&2
        done
    done
    down
    echo
    echo "healthcheck interval $interval, $rounds rounds per mode, load average (1 min) $(awk '{ print $3 }' "$work/times" | sort -n | sed -n '1p;$p' | paste -sd '-')"
    echo
    echo "| mode | median | min | max | ratio to compose |"
    echo "|------|-------:|----:|----:|-----------------:|"
    base=$(awk '$1 == "compose" { print $2 }' "$work/times" | median)
    for mode in "${modes[@]}"; do
        med=$(awk -v m="$mode" '$1 == m { print $2 }' "$work/times" | median)
        min=$(awk -v m="$mode" '$1 == m { print $2 }' "$work/times" | sort -n | head -1)
        max=$(awk -v m="$mode" '$1 == m { print $2 }' "$work/times" | sort -n | tail -1)
        ratio=$(awk -v a="$med" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
        echo "| $mode | $(secs "$med") | $(secs "$min") | $(secs "$max") | $ratio |"
    done
    echo
    echo "where hub's time went (medians over the rounds, the 3 services summed): inside \`up -d --no-deps\` / from \`started\` to \`healthy\` (the servers' own ready delay: 3 x ${ready_after_ms} ms, counted from inside \`up\`)"
    echo
    for mode in hub-engine hub-exec; do
        up=$(awk -v m="$mode" '$1 == m { print $2 }' "$work/split" | median)
        wait=$(awk -v m="$mode" '$1 == m { print $3 }' "$work/split" | median)
        echo "- $mode: up $(secs "$up"), waiting for health $(secs "$wait")"
    done
done
