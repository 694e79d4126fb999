#!/usr/bin/env bash
# Benchmark: `docker stack deploy` alone against `scripts/hub-deploy --swarm` on the same
# diamond, on the local single-node swarm (.ci/setup.d/60-swarm.sh):
#
#   db (ready 3 s after start)   cache (ready 1 s)
#            \                   /
#             api (2 replicas; NEEDS db and cache)
#                      |
#             web (global; NEEDS api)
#
# Each is the static test server (tests/docker/server.c, FROM scratch) with its own healthcheck
# (`/server check`, every 500 ms). NEEDS=host:port,… makes a server connect to its
# dependencies first and exit 1 if one does not answer, as an application whose database is
# not up yet crashes. Swarm alone starts all four at once and restarts the crashed tasks
# (restart_policy: any, 5 s delay) until their dependencies are up; hub releases each service
# the moment its dependencies' tasks are healthy.
#
# The services use `deploy.endpoint_mode: dnsrr`: in this VM the overlay network's virtual IPs
# (IPVS) do not answer (a connect to one times out), while DNS round robin to the tasks works.
#
# Run by hand (not in CI): bench/swarm-race.sh [ROUNDS]   (default 3)
# Per round and mode: the wall time until every service has all its tasks running past their
# healthcheck (swarm alone: polled every 0.2 s with `docker service ls`; hub: hub-deploy's own
# exit), and the tasks Swarm reports failed, per service. Tables to stdout, progress to stderr.
# The stacks and the image are removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
image=hub-bench-server:swarm-race
stack="hubswrace$$"

cargo build --release -q -p hub-levels -p hub-start -p hub-wait-healthy -p hub-report
export HUB_BIN_DIR="$PWD/target/release"
work=$(mktemp -d /tmp/hub-swarm-race.XXXXXX)

gone() {
    local label="label=com.docker.stack.namespace=$stack"
    [ -z "$(docker service ls -q --filter "$label")" ] &&
        [ -z "$(docker ps -aq --filter "$label")" ] &&
        [ -z "$(docker network ls -q --filter "$label")" ]
}
teardown() {
    docker stack rm "$stack" > /dev/null 2>&1 || true
    local deadline=$((SECONDS + 120))
    until gone; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "stack $stack not gone after 120 s" >&2; return 1; }
        for n in $(docker network ls -q --filter "label=com.docker.stack.namespace=$stack"); do
            docker network rm "$n" > /dev/null 2>&1 || true
        done
        sleep 0.2
    done
}
cleanup() {
    teardown || true
    docker rmi -f "$image" > /dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

gcc -static -O2 -o "$work/server" tests/docker/server.c 2> /dev/null
cp tests/docker/Dockerfile "$work/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$image" "$work" > /dev/null 2>&1

# Short-form depends_on: `docker stack deploy` refuses the long form (and ignores both).
cat > "$work/compose.yaml" <<YAML
x-check: &check
  test: ["CMD", "/server", "check"]
  interval: 500ms
  retries: 100
services:
  db:
    image: $image
    environment: { READY_AFTER_MS: "3000" }
    healthcheck: *check
    deploy: { endpoint_mode: dnsrr }
  cache:
    image: $image
    environment: { READY_AFTER_MS: "1000" }
    healthcheck: *check
    deploy: { endpoint_mode: dnsrr }
  api:
    image: $image
    depends_on: [db, cache]
    environment: { NEEDS: "db:8080,cache:8080", READY_AFTER_MS: "500" }
    healthcheck: *check
    deploy: { endpoint_mode: dnsrr, replicas: 2 }
  web:
    image: $image
    depends_on: [api]
    environment: { NEEDS: "api:8080", READY_AFTER_MS: "500" }
    healthcheck: *check
    deploy: { endpoint_mode: dnsrr, mode: global }
YAML

all_healthy() {
    local lines
    lines=$(docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Replicas}}')
    [ "$(printf '%s\n' "$lines" | grep -c .)" = 4 ] || return 1
    ! printf '%s\n' "$lines" | awk -F'[/ ]' '$1 != $2 || $2 == 0 { bad = 1 } END { exit !bad }'
}
failed_tasks() {
    docker stack ps "$stack" --format '{{.Name}} {{.CurrentState}}' |
        awk '$2 == "Failed" || $2 == "Rejected" { split($1, n, "."); s = n[1]; sub(/^[^_]*_/, "", s); c[s]++; t++ }
             END { out = ""; for (k in c) out = out k "=" c[k] " "; printf "%d %s\n", t + 0, out }'
}

echo "diamond db, cache -> api (2 replicas) -> web (global); engine $(docker version -f '{{.Server.Version}}'), load $(cut -d' ' -f1-3 /proc/loadavg)"
: > "$work/results"
for ((round = 0; round < rounds; round++)); do
    for mode in $( ((round % 2)) && echo "hub swarm" || echo "swarm hub"); do
        teardown
        t0=$(date +%s%N)
        if [ "$mode" = swarm ]; then
            docker stack deploy --detach=true --quiet --resolve-image never -c "$work/compose.yaml" "$stack" > /dev/null 2>&1
            until all_healthy; do sleep 0.2; done
        else
            scripts/hub-deploy -q --swarm "$stack" -f "$work/compose.yaml" --state-dir "$work/state" > /dev/null
        fi
        t1=$(date +%s%N)
        read -r failed detail < <(failed_tasks)
        ms=$(((t1 - t0) / 1000000))
        echo "round $((round + 1)) $mode: ${ms} ms, failed tasks: $failed ${detail}" >&2
        echo "$mode $ms $failed ${detail:-}" >> "$work/results"
    done
done

echo
echo "| mode | rounds | wall time median (min–max) | failed tasks per round (by service) |"
echo "|------|--------|----------------------------|-------------------------------------|"
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
for mode in swarm hub; do
    times=$(awk -v m="$mode" '$1 == m { print $2 }' "$work/results")
    label="docker stack deploy alone"
    [ "$mode" = hub ] && label="hub-deploy --swarm"
    failed=$(awk -v m="$mode" '$1 == m { d = ""; for (i = 4; i <= NF; i++) d = d (d ? " " : "") $i; f = f (f ? "; " : "") $3 (d ? " (" d ")" : "") } END { print f }' "$work/results")
    printf '| %s | %d | %s s (%s–%s) | %s |\n' "$label" "$(printf '%s\n' "$times" | grep -c .)" \
        "$(printf '%s\n' "$times" | median | awk '{ printf "%.2f", $1 / 1000 }')" \
        "$(printf '%s\n' "$times" | sort -n | head -1 | awk '{ printf "%.2f", $1 / 1000 }')" \
        "$(printf '%s\n' "$times" | sort -n | tail -1 | awk '{ printf "%.2f", $1 / 1000 }')" "$failed"
done
