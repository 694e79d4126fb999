#!/usr/bin/env bash
# Benchmark: scripts/hub-deploy on a generated 50-service DAG of local processes, --schedule dag
# against --schedule levels, both against the critical path (the longest chain of ready delays
# along the dependencies: no orchestrator can beat it).
#
# Run by hand (not in CI): bench/deploy-dag.sh [ROUNDS] [SERVICES] [LEVELS] [SEED]
# (defaults 5 50 6 42; env PORT_BASE, default 19200; env SCHEDULES, default "dag levels";
# env CONFIG, default tcp; env BIN=DIR takes the four tools from DIR instead of building
# them, for A/B runs). Needs gcc (static libc) and python3. The size is SERVICES: 50,
# 1000, … (ports PORT_BASE…).
#
# CONFIG=flag is issue 13's own stack instead (LEVELS is then unused; seed 22 gives 75 levels
# and a 66.9 s critical path at 1,000 services, near the issue's 75 and 67.8 s): service i has
# up to 3 dependencies among the 12 before it, runs `sleep D; touch FLAG; exec sleep` (D
# 100-1500 ms) and is checked by its compose healthcheck `test -f FLAG` at a 100 ms interval.
#
# TEARDOWN=kill (for 10,000 services): instead of scripts/hub-down, SIGKILL the process group of
# every pid file in the state dir (hub-down looks for a stopped group's members in /proc, once
# per service, which is quadratic at that size).
#
# Each service is tests/docker/server.c compiled statically and run as a local process
# (`x-hub.run: [env, LISTEN_PORT=P, READY_AFTER_MS=D, server]`): it starts in about a millisecond
# and listens on 127.0.0.1:P after its ready delay D (100-800 ms, fixed by the seed), health
# `tcp`. Rounds alternate dag / levels; scripts/hub-down tears the stack down between rounds.
# Figures: wall time of hub-deploy (release binaries), the span inside the events (first `plan`
# record → last `healthy` record), and detection latency per service: its `healthy` record's ts −
# (its `started` record's ts + its ready delay). The `started` record is written just after the
# launch, so this slightly underestimates (by the launch time, ~1 ms). Hop: a service's `started`
# ts − the latest `healthy` ts among its dependencies. Hub's own cost: CPU (user+sys) of
# hub-deploy and everything it waited for (the tools, probe commands; not the services, which
# are detached), and, sampled every 0.2 s, the summed RSS, processes and threads of the hub
# tools (hub-levels, hub-start, hub-wait-healthy, hub-report) against the stack's own.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
services=${2:-50}
levels=${3:-6}
seed=${4:-42}
port_base=${PORT_BASE:-19200}
config=${CONFIG:-tcp}

if [ -n "${BIN:-}" ]; then
    HUB_BIN_DIR=$(cd "$BIN" && pwd)
    export HUB_BIN_DIR
else
    cargo build --release -q -p hub-levels -p hub-start -p hub-wait-healthy -p hub-report
    export HUB_BIN_DIR="$PWD/target/release"
fi
work=$(mktemp -d /tmp/hub-bench-dag.XXXXXX)
compose="$work/compose.yaml"
teardown() {
    if [ "${TEARDOWN:-}" = kill ]; then
        local f pid
        for f in "$1"/pids/*.pid; do
            [ -e "$f" ] || continue
            read -r pid _ < "$f"
            kill -KILL -- "-$pid" 2> /dev/null || true
        done
    else
        scripts/hub-down -f "$compose" --state-dir "$1" --grace 2s -q > /dev/null
    fi
}
cleanup() {
    teardown "$work/state" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ "$config" = flag ]; then
    # A copy of sleep with its own name, so the stack's processes are told from anyone's.
    cp "$(command -v sleep)" "$work/stack-sleep"
    mkdir "$work/flags"
    python3 bench/deploy_dag.py gen "$work/stack-sleep" "$port_base" "$seed" "$services" "$levels" "$work/delays.json" flag > "$compose"
else
    gcc -static -O2 -o "$work/server" tests/docker/server.c
    python3 bench/deploy_dag.py gen "$work/server" "$port_base" "$seed" "$services" "$levels" "$work/delays.json" > "$compose"
fi
read -r critical levels_bound chain < <(python3 bench/deploy_dag.py bounds "$work/delays.json")
echo "DAG ($config): $services services, $levels levels (hub-levels: $("$HUB_BIN_DIR/hub-levels" -f "$compose" --count)), seed $seed"
echo "critical path: $critical ms ($chain); ideal levels barrier (sum of each level's slowest): $levels_bound ms"

# wait_ports_free: every port of the stack refuses connections (the last round's servers are gone).
wait_ports_free() {
    [ "$config" = flag ] && return 0
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

# sample_hub FILE: every 0.2 s, the summed RSS (kB), processes and threads of hub's tools and of
# the stack's servers; FILE keeps the peaks: "hub_rss hub_procs hub_threads stack_rss stack_procs".
sample_hub() {
    local out=$1 peak_rss=0 peak_procs=0 peak_threads=0 s_rss=0 s_procs=0
    while :; do
        local rss=0 procs=0 threads=0 srss=0 sprocs=0 pid v t
        for pid in $(ps -eo pid=,comm= | awk '$2 ~ /^hub-(start|wait-healt|levels|report)/ {print $1}'); do
            read -r v t < <(awk '/^VmRSS/{r=$2} /^Threads/{t=$2} END{print r+0, t+0}' "/proc/$pid/status" 2> /dev/null || echo "0 0")
            rss=$((rss + v)); threads=$((threads + t)); procs=$((procs + 1))
        done
        for pid in $(pgrep -f "$work/server|$work/stack-sleep|rm -f $work/flags/"); do
            v=$(awk '/^VmRSS/{print $2+0}' "/proc/$pid/status" 2> /dev/null || echo 0)
            srss=$((srss + ${v:-0})); sprocs=$((sprocs + 1))
        done
        ((rss > peak_rss)) && peak_rss=$rss
        ((procs > peak_procs)) && peak_procs=$procs
        ((threads > peak_threads)) && peak_threads=$threads
        ((srss > s_rss)) && s_rss=$srss
        ((sprocs > s_procs)) && s_procs=$sprocs
        echo "$peak_rss $peak_procs $peak_threads $s_rss $s_procs" > "$out"
        sleep 0.2
    done
}

results="$work/results.jsonl"
wait_ports_free
for ((round = 1; round <= rounds; round++)); do
    # Alternate which schedule goes first.
    read -r -a order <<< "${SCHEDULES:-dag levels}"
    if ((round % 2 == 0)) && ((${#order[@]} == 2)); then order=("${order[1]}" "${order[0]}"); fi
    for schedule in "${order[@]}"; do
        state="$work/state"
        rm -rf "$state"
        events="$work/events-$round-$schedule.jsonl"
        load=$(cut -d' ' -f1 /proc/loadavg)
        t0=$(date +%s%N)
        rc=0
        sample_hub "$work/sample" &
        sampler=$!
        /usr/bin/time -f '%U %S' -o "$work/cpu" scripts/hub-deploy -f "$compose" --schedule "$schedule" --state-dir "$state" --events "$events" -q 2> "$work/deploy.log" || rc=$?
        t1=$(date +%s%N)
        kill "$sampler" 2> /dev/null || true
        wait "$sampler" 2> /dev/null || true
        wall=$(((t1 - t0) / 1000000))
        if [ "$rc" != 0 ]; then
            echo "round $round $schedule: hub-deploy exited $rc" >&2
            tail -20 "$work/deploy.log" >&2
            exit 1
        fi
        stats=$(python3 bench/deploy_dag.py events "$work/delays.json" "$events")
        python3 - "$stats" "$schedule" "$wall" "$load" "$work/delays.json" "$(cat "$work/cpu" | tail -1)" "$(cat "$work/sample" 2> /dev/null)" >> "$results" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
s.update(schedule=sys.argv[2], wall_ms=int(sys.argv[3]), load=float(sys.argv[4]), delays=sys.argv[5])
user, system = (float(x) for x in sys.argv[6].split())
s.update(cpu_s=round(user + system, 2))
hub_rss, hub_procs, hub_threads, stack_rss, stack_procs = (int(x) for x in (sys.argv[7] or "0 0 0 0 0").split())
s.update(hub_rss_kb=hub_rss, hub_procs=hub_procs, hub_threads=hub_threads, stack_rss_kb=stack_rss, stack_procs=stack_procs)
print(json.dumps(s))
PY
        healthy=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["healthy"])' "$stats")
        printf 'round %d %-6s wall %5d ms  healthy %d/%d  load %s\n' "$round" "$schedule" "$wall" "$healthy" "$services" "$load" >&2
        [ "$healthy" = "$services" ] || { echo "not every service became healthy: see $events" >&2; exit 1; }
        teardown "$state"
        wait_ports_free
    done
done
echo "rounds: $rounds per schedule; $(uptime)"
python3 bench/deploy_dag.py summary "$results"
