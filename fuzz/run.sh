#!/usr/bin/env bash
# Builds and runs every fuzz target for N seconds (default 60), one after another, starting from
# a copy of its committed seeds (fuzz/seeds/<target>) in fuzz/corpus/<target>, so the seeds are
# never modified. Prints "fuzz <target>: <execs> execs, OK" per target and exits non-zero as soon
# as a target crashes (the reproducer is left in fuzz/artifacts/<target>/).
#
# Usage: fuzz/run.sh [seconds] [target...]
# Needs a nightly toolchain; installs cargo-fuzz when it is missing.
set -euo pipefail

secs="${1:-60}"
shift || true
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
toolchain="${FUZZ_TOOLCHAIN:-+nightly}"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "$toolchain" fuzz list)
fi

cargo "$toolchain" fuzz build

for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    if [ -d "fuzz/seeds/$target" ]; then
        cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    fi
    log="$(mktemp)"
    # -rss_limit_mb: the targets keep their buffers small; a leak or blow-up is a finding.
    if ! cargo "$toolchain" fuzz run "$target" "$corpus" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10 \
        >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz $target: CRASH (see fuzz/artifacts/$target/)"
        rm -f "$log"
        exit 1
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)"
    rm -f "$log"
    echo "fuzz $target: ${execs:-?} execs, OK"
done
