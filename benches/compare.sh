#!/usr/bin/env bash
# Benchmarks our checkpoint store side by side with the Python store
# (azure-eventhub-checkpointstoreblob-aio 1.2.0) and a raw-HTTP floor, on one
# in-memory Azurite, plus the store's own cost on the in-memory backend.
# Prints the table and writes it to target/ehcp-bench/results.md (every run
# as JSON beside it). See docs/performance.md.
#
#   benches/compare.sh                      # 5 timed runs (median), 1 warm-up round
#   benches/compare.sh --runs 3             # any ehcp-bench option is passed on
#   BENCH_RUNS=9 benches/compare.sh
#   BENCH_CARGO_PROFILE=dev benches/compare.sh ...   # a debug build (plumbing only)
#
# From a clean clone it first installs what it needs through tests/install.sh
# (as tests/run.sh does): Azurite from npm into tests/azurite, the Python store from
# PyPI into tests/.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

tests/install.sh
azurite=tests/azurite
venv=tests/.venv

root=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# Figures come from a release build; tests/run.sh smoke-tests this script on
# tiny workloads with BENCH_CARGO_PROFILE=dev (no second build of everything).
profile="${BENCH_CARGO_PROFILE:-release}"
cargo build --profile "$profile" --quiet -p eventhub-checkpoints-bench
if [[ $profile == dev ]]; then
    bench="$CARGO_TARGET_DIR/debug/ehcp-bench"
else
    bench="$CARGO_TARGET_DIR/$profile/ehcp-bench"
fi

# One Azurite for every workload and client: in memory, on 127.0.0.1, on a
# free port it picks and reports. Stopped when this script exits.
workdir=$(mktemp -d "${TMPDIR:-/tmp}/ehcp-bench-azurite.XXXXXX")
azurite_pid=
cleanup() {
    if [[ -n $azurite_pid ]]; then
        kill "$azurite_pid" 2>/dev/null || true
        wait "$azurite_pid" 2>/dev/null || true
    fi
    rm -rf -- "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

(cd "$workdir" && exec "$root/$azurite/node_modules/.bin/azurite-blob" \
    --inMemoryPersistence --blobHost 127.0.0.1 --blobPort 0 --silent --disableTelemetry \
    >"$workdir/azurite.out" 2>"$workdir/azurite.err") &
azurite_pid=$!

endpoint=
for _ in $(seq 1 600); do
    endpoint=$(sed -n 's/.*successfully listens on \(http:[^ ]*\).*/\1/p' "$workdir/azurite.out" | head -n1)
    [[ -n $endpoint ]] && break
    if ! kill -0 "$azurite_pid" 2>/dev/null; then
        echo "Azurite exited before listening:" >&2
        cat "$workdir/azurite.out" "$workdir/azurite.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z $endpoint ]]; then
    echo "Azurite did not report listening within 60 s" >&2
    exit 1
fi

azurite_version=$(node -p "require('./$azurite/node_modules/azurite/package.json').version" 2>/dev/null || echo "?")
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)
notes=(
    --note "Machine: $(nproc) CPU(s) (${cpu_model:-unknown}), $(uname -sr); Azurite $azurite_version (node $(node --version)) in memory on the same machine, sharing the CPUs with the client; Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')."
    --note "Load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
)

"$bench" \
    --endpoint "${endpoint%/}/devstoreaccount1" \
    --server-pid "$azurite_pid" \
    --python "$venv/bin/python" \
    --python-driver benches/python_driver.py \
    --runs "${BENCH_RUNS:-5}" \
    --out "$CARGO_TARGET_DIR/ehcp-bench/results.md" \
    --json "$CARGO_TARGET_DIR/ehcp-bench/results.json" \
    "${notes[@]}" \
    "$@"
