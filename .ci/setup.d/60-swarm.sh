#!/usr/bin/env bash
# tests/swarm.rs needs the engine 50-docker.sh started to be a swarm manager: a single-node
# swarm on the loopback address. Idempotent: an engine that already is a manager is left as
# it is (and is not left at the end: it was not ours). When this script made the swarm it
# appends HUB_SWARM_INIT=1 to /tmp/hub-ci-env, and .ci/run leaves the swarm again at its end
# (`docker swarm leave --force`), tests failed or not. HUB_REQUIRE_SWARM=1 makes a missing
# swarm a test failure instead of an ignored test.
set -euo pipefail

if ! docker info >/dev/null 2>&1; then
    echo "60-swarm: no Docker engine answers; tests/swarm.rs will be ignored"
    exit 0
fi
state=$(docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}')
case "$state" in
    "active true")
        echo "60-swarm: the engine already is a swarm manager"
        ;;
    inactive*)
        docker swarm init --advertise-addr 127.0.0.1 >/dev/null
        echo 'export HUB_SWARM_INIT=1' >>/tmp/hub-ci-env
        echo "60-swarm: single-node swarm initialised (left again at the end of .ci/run)"
        ;;
    *)
        echo "60-swarm: the engine is in a swarm but not a manager ($state); cannot deploy stacks" >&2
        exit 1
        ;;
esac
grep -qx 'export HUB_REQUIRE_SWARM=1' /tmp/hub-ci-env 2>/dev/null || echo 'export HUB_REQUIRE_SWARM=1' >>/tmp/hub-ci-env
