#!/usr/bin/env bash
# Checks and tests eventhub-checkpoints-sdk, its own Cargo workspace (its
# azure_core 1.2.0-beta.1 cannot share a lock file with the main workspace's
# azure_core 1.1): formatting, clippy, docs, the example build, and the unit,
# integration (Azurite) and doc tests. tests/run.sh calls it.
set -euo pipefail
cd "$(dirname "$0")"
manifest=Cargo.toml
root=../..

# Azurite for the contract test, as tests/run.sh installs it.
azurite=$root/tests/azurite
if [[ -z ${AZURITE_BLOB_BIN:-} && ( ! -x $azurite/node_modules/.bin/azurite-blob \
    || ! -f $azurite/node_modules/.package-lock.json \
    || $azurite/package-lock.json -nt $azurite/node_modules/.package-lock.json ) ]]; then
    npm ci --prefix "$azurite" --no-audit --no-fund
fi

cargo fmt --manifest-path "$manifest" -- --check
cargo clippy --manifest-path "$manifest" --locked --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --manifest-path "$manifest" --locked --no-deps
cargo build --manifest-path "$manifest" --locked --examples
cargo test --manifest-path "$manifest" --locked
