#!/usr/bin/env bash
# Real servers for tests/real_servers.rs: PostgreSQL, Redis and nginx from Debian's packages.
# Idempotent; as root, after the `apt-get update` .ci/run already did.
#
# The tests start their own copies (own data dir, config and free port in a temp folder), so
# the packages' default system services must NOT run: they would hold 5432/6379/80 and do
# nothing for the tests. The install is done with services blocked (policy-rc.d), and any
# that runs anyway is stopped and disabled.
#
# PostgreSQL's initdb and postgres refuse to run as root. The tests (which CI runs as root)
# run them as the `postgres` user the package creates, through `setpriv --reuid=postgres
# --regid=postgres --init-groups --` (util-linux, always installed): setpriv execs the program
# without forking (unlike su/runuser), so the pid hub sees is the server's. The test makes its
# temp folder 0755 and the data folder's parent `postgres`-owned 0700, and points the unix
# socket at that folder (not /var/run/postgresql). Binaries: /usr/lib/postgresql/<ver>/bin
# (not on PATH; the tests look there).
#
# Writes `export HUB_REQUIRE_SERVERS=1` to /tmp/hub-ci-env: then a missing server fails the
# tests instead of printing SKIPPED.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "20-servers: not root; skipping the install (tests/real_servers.rs will print SKIPPED)"
    exit 0
fi

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/pg_isready" ] && printf '%s\n' "$dir"
    done | sort -V | tail -n 1
}

need=()
[ -n "$(pg_bin)" ] || need+=(postgresql)
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || need+=(redis-server)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v setpriv >/dev/null || need+=(util-linux)

if [ "${#need[@]}" -gt 0 ]; then
    # Keep the packages' postinst from starting their services (exit 101: "not allowed").
    own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        own_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    echo "20-servers: installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [ "$own_policy" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# Whatever started anyway (an image where services may start): stop it and keep it off.
systemd_running=0
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemd_running=1
fi
for service in postgresql redis-server nginx; do
    if [ "$systemd_running" = 1 ]; then
        systemctl disable --now "$service" >/dev/null 2>&1 || true
    elif [ -x "/etc/init.d/$service" ]; then
        "/etc/init.d/$service" stop >/dev/null 2>&1 || true
        command -v update-rc.d >/dev/null && update-rc.d "$service" disable >/dev/null 2>&1 || true
    fi
done

pg="$(pg_bin)"
if [ -z "$pg" ]; then
    echo "20-servers: no PostgreSQL server under /usr/lib/postgresql/*/bin after the install" >&2
    exit 1
fi
id postgres >/dev/null 2>&1 || { echo "20-servers: the postgres user is missing (the postgresql package creates it)" >&2; exit 1; }
echo "20-servers: $("$pg/postgres" --version), $(redis-server --version | cut -d' ' -f1-3), $(/usr/sbin/nginx -v 2>&1)"

touch /tmp/hub-ci-env
grep -qx 'export HUB_REQUIRE_SERVERS=1' /tmp/hub-ci-env || echo 'export HUB_REQUIRE_SERVERS=1' >> /tmp/hub-ci-env
