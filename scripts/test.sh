#!/usr/bin/env bash
# Runs every test of zkmigrate and its lab, installing what the tests need
# first (scripts/setup.sh). Tests start real ZooKeeper servers on 127.x.y.z
# loopback addresses (never 127.0.0.1, never the default ports) and stop them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked "$@"
