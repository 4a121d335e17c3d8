#!/usr/bin/env bash
# Builds berth as one static binary (glibc, statically linked: offline, no
# musl toolchain needed) and prints its path. The container image packages
# it: see the Dockerfile's `runtime` stage.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
# The `image` profile (Cargo.toml) builds for size and strips symbols.
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --profile image --locked --target "$target" -p berth --bin berth >&2
echo "${CARGO_TARGET_DIR:-$PWD/target}/$target/image/berth"
