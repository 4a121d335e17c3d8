#!/usr/bin/env bash
# Berth's whole test suite, from a bare Debian machine (as root):
#   1. installs and starts what the tests need (scripts/setup-test-env.sh:
#      docker daemon, podman, skopeo, oras-py, ...),
#   2. runs Berth's conformance program against a fresh Berth,
#   3. runs every Rust test (unit, integration, real clients) with nextest,
#      then the doc-tests,
#   4. runs the benchmark harness in short mode, soak test included,
#   5. runs each fuzz target briefly (scripts/fuzz.sh; fails on a crash).
set -euo pipefail
cd "$(dirname "$0")/.."
# One clean build: incremental caches would only take disk.
export CARGO_INCREMENTAL=0
df -h . | sed 's/^/disk: /'

# With BERTH_FREE_DISK=1 (.ci/run sets it), each stage's build output is
# removed once no later stage needs it, so the builds do not pile up.
done_with() {
    if [ "${BERTH_FREE_DISK:-}" = 1 ]; then
        rm -rf "$@"
        df -h . | sed 's/^/disk: /'
    fi
}

# shellcheck source=scripts/setup-test-env.sh
source scripts/setup-test-env.sh

if ! command -v cargo-nextest >/dev/null; then
    cargo install --locked cargo-nextest
fi
cargo build --workspace --all-targets
# The container-image test packages this; building it here keeps that test short.
scripts/static-binary.sh >/dev/null

echo "== conformance: the OCI Distribution Spec against a fresh Berth"
data=$(mktemp -d)
out=$(mktemp)
target/debug/berth serve --listen 127.0.0.1:0 --data-dir "$data" >"$out" &
berth=$!
trap 'kill $berth 2>/dev/null || true; rm -rf "$data" "$out"' EXIT
for _ in $(seq 100); do grep -q '^listening on ' "$out" && break; sleep 0.05; done
url=$(sed -n 's/^listening on //p' "$out")
[ -n "$url" ] || { echo "berth did not start"; exit 1; }
target/debug/conformance "$url"
kill "$berth"; wait "$berth" || true

echo "== cargo nextest"
cargo nextest run --workspace --no-fail-fast

echo "== doc-tests (nextest does not run them)"
cargo test --workspace --doc

done_with target/debug target/x86_64-unknown-linux-gnu

echo "== benchmark harness, short mode (figures meaningless; the soak test's"
echo "   guarantees are not: any 5xx, corrupt pull or lost event fails it)"
cargo build --release -p berth -p bench
target/release/bench --all --short

done_with target/release

echo "== fuzz: each cargo-fuzz target for ${FUZZ_SECONDS:-20}s (scripts/fuzz.sh)"
scripts/fuzz.sh
