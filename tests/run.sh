#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Azurite from npm,
# the Python store from PyPI), then every crate's unit, integration and doc
# tests, and the workspaces that pin other versions of the Azure SDK crates.
set -euo pipefail
cd "$(dirname "$0")/.."

# Azurite, pinned in tests/azurite/package-lock.json; reinstalled only when
# missing or when the lock file changed since the last install.
azurite=tests/azurite
if [[ ! -x $azurite/node_modules/.bin/azurite-blob \
    || ! -f $azurite/node_modules/.package-lock.json \
    || $azurite/package-lock.json -nt $azurite/node_modules/.package-lock.json ]]; then
    npm ci --prefix "$azurite" --no-audit --no-fund
fi

# The Python store the interop tests run against, pinned in
# tests/interop/requirements.txt, in tests/.venv; reinstalled only when the
# venv is missing or the requirements changed since the last install.
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

# One target directory for every workspace, so the separate ones below reuse
# the dependencies the main one already built.
export CARGO_TARGET_DIR="$PWD/target"

cargo test --workspace --all-features

# The official Rust checkpoint store 0.9 (azure_core 1.1), against Azurite.
tests/interop-rust09/test.sh

# The adapter for azure_messaging_eventhubs 0.16 (azure_core 1.2 betas).
crates/eventhub-checkpoints-sdk/test.sh
