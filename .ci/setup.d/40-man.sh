#!/usr/bin/env bash
# tests/install.rs renders every installed man page with `man -l`: it needs man and groff.
set -euo pipefail
command -v man >/dev/null && command -v groff >/dev/null && exit 0
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq man-db groff-base >/dev/null
