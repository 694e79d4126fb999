#!/usr/bin/env bash
# hub-report's tests: headless Chromium (the HTML report is opened and screenshotted) and
# Python's prometheus_client (its text parser reads the Prometheus output). Idempotent.
set -euo pipefail

if ! command -v chromium >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium fonts-dejavu-core >/dev/null
fi

# The parser goes into the python3 the tests will find on PATH; its real path is exported so
# the tests use that interpreter even where a version manager's shim would pick another.
python="$(python3 -c 'import sys; print(sys.executable)')"
if ! "$python" -c 'import prometheus_client' 2>/dev/null; then
    "$python" -m pip install --quiet --disable-pip-version-check 'prometheus_client>=0.17,<1'
fi
echo "export HUB_REPORT_PYTHON=$python" >>/tmp/hub-ci-env
