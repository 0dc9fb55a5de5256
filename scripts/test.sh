#!/usr/bin/env bash
# Runs every test of zkmigrate and its lab, installing what the tests need
# first (scripts/setup.sh). Tests start real ZooKeeper servers on 127.x.y.z
# loopback addresses (never 127.0.0.1, never the default ports) and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

# The tests run zkmigrate built with its crash and pause points
# (src/failpoint.rs; the crash matrix and fault tests need them), so lint
# that build, and check that the release build (without them) compiles too.
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked --features zkmigrate/failpoints -- -D warnings
cargo check --workspace --bins --locked

echo "== cargo test"
cargo test --workspace --locked --features zkmigrate/failpoints "$@"
