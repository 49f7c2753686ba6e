#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Azurite from npm),
# then every crate's unit, integration and doc tests.
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

cargo test --workspace --all-features
