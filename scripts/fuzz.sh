#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ briefly and fails if one crashes
# (a panic, a failed assertion, a sanitizer report, a timeout or running out
# of memory). Each target starts from its seeds (fuzz/seeds/<target>, read
# only) with its dictionary (fuzz/dict/<target>.dict) if it has one; what it
# finds goes to a temporary corpus, and a crashing input to
# fuzz/artifacts/<target>/, where `cargo fuzz run <target> <file>` replays it.
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (20) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh manifest
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}

# libFuzzer and the sanitizers need nightly compiler flags. Use the
# machine's nightly toolchain; without one, let the stable compiler accept
# them (RUSTC_BOOTSTRAP), which works for this use.
if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=nightly
else
    toolchain=stable
    export RUSTC_BOOTSTRAP=1
    echo "fuzz: no nightly toolchain; using stable with RUSTC_BOOTSTRAP=1"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets"; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for target in "${targets[@]}"; do
    corpus=$work/corpus-$target
    mkdir -p "$corpus"
    inputs=("$corpus")
    [ -d "fuzz/seeds/$target" ] && inputs+=("fuzz/seeds/$target")
    flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    [ -f "fuzz/dict/$target.dict" ] && flags+=(-dict="fuzz/dict/$target.dict")
    log=$work/$target.log
    echo "== fuzz $target (${seconds}s)"
    if ! cargo "+$toolchain" fuzz run --fuzz-dir fuzz "$target" "${inputs[@]}" -- "${flags[@]}" >"$log" 2>&1; then
        tail -n 60 "$log"
        grep -m 1 -A 3 "panicked at" "$log" || true
        echo "fuzz: target $target FAILED (crashing input in fuzz/artifacts/$target/)"
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    found=$(find "$corpus" -type f | wc -l)
    echo "fuzz $target: ${runs:-?} executions, $found new corpus inputs, no crash"
done
