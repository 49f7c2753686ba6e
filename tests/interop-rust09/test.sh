#!/usr/bin/env bash
# Runs the interop tests against the official Rust crate
# azure_messaging_eventhubs_checkpointstore_blob 0.9 (this directory's own
# cargo workspace, pinned by its Cargo.lock). The tests start their own
# https Azurite through ../support; Azurite is installed into ../azurite
# first if it is missing, as tests/run.sh does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
azurite=$here/../azurite
if [[ -z ${AZURITE_BLOB_BIN:-} && ! -x $azurite/node_modules/.bin/azurite-blob ]]; then
    npm ci --prefix "$azurite" --no-audit --no-fund
fi
cargo test --locked --manifest-path "$here/Cargo.toml" "$@"
