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

# The benchmark script end to end (Azurite, our store, the Python store, the
# raw floor, the report) on tiny workloads and a debug build: it fails if a
# client fails or ours and the floor send different requests. The figures
# themselves come from benches/compare.sh alone (docs/performance.md).
BENCH_CARGO_PROFILE=dev BENCH_RUNS=1 benches/compare.sh \
    --claim-partitions 8 --checkpoint-partitions 2 --checkpoint-updates 3 \
    --list-count 12 --list-repeats 1 --page-sizes 5000,5 --memory-iterations 1 \
    --out target/ehcp-bench-smoke/results.md --json target/ehcp-bench-smoke/results.json >/dev/null

# The official Rust checkpoint store 0.9 (azure_core 1.1), against Azurite.
tests/interop-rust09/test.sh

# The adapter for azure_messaging_eventhubs 0.16 (azure_core 1.2 betas).
crates/eventhub-checkpoints-sdk/test.sh
