#!/usr/bin/env bash
# Berth's whole test suite, from a bare Debian machine (as root):
#   1. installs and starts what the tests need (scripts/setup-test-env.sh:
#      docker daemon, podman, skopeo, oras-py, ...),
#   2. runs Berth's conformance program against a fresh Berth, then against
#      two replicas on PostgreSQL + S3 with requests alternating,
#   3. runs every Rust test (unit, integration, real clients) with nextest,
#      then the doc-tests,
#   4. runs the benchmark harness in short mode, soak test included,
#   5. runs each fuzz target briefly (scripts/fuzz.sh; fails on a crash).
set -euo pipefail
cd "$(dirname "$0")/.."
# One clean build: incremental caches would only take disk.
export CARGO_INCREMENTAL=0
df -h . | sed 's/^/disk: /'

# With BERTH_TEST_FREE_DISK=1 (.ci/run sets it), each stage's build output is
# removed once no later stage needs it, so the builds do not pile up.
done_with() {
    if [ "${BERTH_TEST_FREE_DISK:-}" = 1 ]; then
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

# `start_berth URL_VAR [VAR=value ...]` starts `berth serve` on a free port
# and a temporary data directory, with that environment, and sets URL_VAR
# to its URL.
started=() scratch=()
start_berth() {
    local var=$1 data out
    shift
    data=$(mktemp -d)
    out=$(mktemp)
    scratch+=("$data" "$out")
    env "$@" target/debug/berth serve --listen 127.0.0.1:0 --data-dir "$data" >"$out" &
    started+=("$!")
    for _ in $(seq 200); do grep -q '^listening on ' "$out" && break; sleep 0.05; done
    printf -v "$var" '%s' "$(sed -n 's/^listening on //p' "$out")"
    [ -n "${!var}" ] || { echo "berth did not start" >&2; return 1; }
}
stop_berths() {
    kill "${started[@]}" 2>/dev/null || true
    wait "${started[@]}" 2>/dev/null || true
    rm -rf "${scratch[@]}"
    started=() scratch=()
}
trap stop_berths EXIT

echo "== conformance: the OCI Distribution Spec against a fresh Berth"
start_berth url
target/debug/conformance "$url"
stop_berths

echo "== conformance against two replicas on PostgreSQL + S3, requests alternating"
store="conformance$(date +%s)"
psql "$BERTH_TEST_POSTGRES" -qc "CREATE DATABASE $store"
curl -fsS -X PUT "$AWS_ENDPOINT_URL/$store" >/dev/null
shared=(BERTH_METADATA_URL="${BERTH_TEST_POSTGRES%/*}/$store" BERTH_BLOB_URL="s3://$store/berth")
start_berth one "${shared[@]}"
start_berth two "${shared[@]}"
target/debug/conformance "$one" "$two"
stop_berths

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
