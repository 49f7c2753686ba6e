#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Azurite from npm,
# the Python store from PyPI), then every crate's unit, integration and doc
# tests, and the workspaces that pin other versions of the Azure SDK crates.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install.sh

# One target directory for every workspace, so the separate ones below reuse
# the dependencies the main one already built.
export CARGO_TARGET_DIR="$PWD/target"

cargo test --workspace --all-features

# The official Rust checkpoint store 0.9 (azure_core 1.1), against Azurite.
tests/interop-rust09/test.sh

# The adapter for azure_messaging_eventhubs 0.16 (azure_core 1.2 betas).
crates/eventhub-checkpoints-sdk/test.sh
