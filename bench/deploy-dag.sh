#!/usr/bin/env bash
# Benchmark: scripts/hub-deploy on a generated 50-service DAG of local processes, --schedule dag
# against --schedule levels, both against the critical path (the longest chain of ready delays
# along the dependencies: no orchestrator can beat it).
#
# Run by hand (not in CI): bench/deploy-dag.sh [ROUNDS] [SERVICES] [LEVELS] [SEED]
# (defaults 5 50 6 42; env PORT_BASE, default 19200). Needs gcc (static libc) and python3.
#
# Each service is tests/docker/server.c compiled statically and run as a local process
# (`x-hub.run: [env, LISTEN_PORT=P, READY_AFTER_MS=D, server]`): it starts in about a millisecond
# and listens on 127.0.0.1:P after its ready delay D (100-800 ms, fixed by the seed), health
# `tcp`. Rounds alternate dag / levels; scripts/hub-down tears the stack down between rounds.
# Figures: wall time of hub-deploy (release binaries), the span inside the events (first `plan`
# record → last `healthy` record), and detection latency per service: its `healthy` record's ts −
# (its `started` record's ts + its ready delay). The `started` record is written just after the
# launch, so this slightly underestimates (by the launch time, ~1 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
services=${2:-50}
levels=${3:-6}
seed=${4:-42}
port_base=${PORT_BASE:-19200}

cargo build --release -q -p hub-levels -p hub-start -p hub-wait-healthy -p hub-report
export HUB_BIN_DIR="$PWD/target/release"
work=$(mktemp -d /tmp/hub-bench-dag.XXXXXX)
compose="$work/compose.yaml"
cleanup() {
    scripts/hub-down -f "$compose" --state-dir "$work/state" --grace 2s -q > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

gcc -static -O2 -o "$work/server" tests/docker/server.c
python3 bench/deploy_dag.py gen "$work/server" "$port_base" "$seed" "$services" "$levels" "$work/delays.json" > "$compose"
read -r critical levels_bound chain < <(python3 bench/deploy_dag.py bounds "$work/delays.json")
echo "DAG: $services services, $levels levels (hub-levels: $("$HUB_BIN_DIR/hub-levels" -f "$compose" --count)), seed $seed"
echo "critical path: $critical ms ($chain); ideal levels barrier (sum of each level's slowest): $levels_bound ms"

# wait_ports_free: every port of the stack refuses connections (the last round's servers are gone).
wait_ports_free() {
    local deadline=$((SECONDS + 20)) p busy
    while :; do
        busy=0
        for ((p = port_base; p < port_base + services; p++)); do
            if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2> /dev/null; then busy=1; break; fi
        done
        [ "$busy" = 0 ] && return 0
        [ $SECONDS -ge $deadline ] && { echo "port $p still answers after teardown" >&2; return 1; }
        sleep 0.1
    done
}

results="$work/results.jsonl"
wait_ports_free
for ((round = 1; round <= rounds; round++)); do
    # Alternate which schedule goes first.
    if ((round % 2)); then order=(dag levels); else order=(levels dag); fi
    for schedule in "${order[@]}"; do
        state="$work/state"
        rm -rf "$state"
        events="$work/events-$round-$schedule.jsonl"
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(date +%s%N)
        rc=0
        scripts/hub-deploy -f "$compose" --schedule "$schedule" --state-dir "$state" --events "$events" -q 2> "$work/deploy.log" || rc=$?
        t1=$(date +%s%N)
        wall=$(((t1 - t0) / 1000000))
        if [ "$rc" != 0 ]; then
            echo "round $round $schedule: hub-deploy exited $rc" >&2
            tail -20 "$work/deploy.log" >&2
            exit 1
        fi
        stats=$(python3 bench/deploy_dag.py events "$work/delays.json" "$events")
        python3 - "$stats" "$schedule" "$wall" "$load" "$work/delays.json" >> "$results" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
s.update(schedule=sys.argv[2], wall_ms=int(sys.argv[3]), load=float(sys.argv[4]), delays=sys.argv[5])
print(json.dumps(s))
PY
        healthy=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["healthy"])' "$stats")
        printf 'round %d %-6s wall %5d ms  healthy %d/%d  load %s\n' "$round" "$schedule" "$wall" "$healthy" "$services" "$load" >&2
        [ "$healthy" = "$services" ] || { echo "not every service became healthy: see $events" >&2; exit 1; }
        scripts/hub-down -f "$compose" --state-dir "$state" --grace 2s -q > /dev/null
        wait_ports_free
    done
done
echo "rounds: $rounds per schedule; $(uptime)"
python3 bench/deploy_dag.py summary "$results"
