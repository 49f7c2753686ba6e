#!/usr/bin/env bash
# Installs what the tests and benchmarks need, each only when missing or when
# its pin changed since the last install: Azurite (pinned in
# tests/azurite/package-lock.json) into tests/azurite, and the Python store
# (pinned in tests/interop/requirements.txt) into tests/.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

azurite=tests/azurite
if [[ ! -x $azurite/node_modules/.bin/azurite-blob \
    || ! -f $azurite/node_modules/.package-lock.json \
    || $azurite/package-lock.json -nt $azurite/node_modules/.package-lock.json ]]; then
    npm ci --prefix "$azurite" --no-audit --no-fund
fi

venv=tests/.venv
requirements=tests/interop/requirements.txt
if [[ ! -x $venv/bin/python ]]; then
    python3 -m venv "$venv"
fi
if [[ ! -f $venv/.requirements-installed \
    || $requirements -nt $venv/.requirements-installed ]]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    touch "$venv/.requirements-installed"
fi
