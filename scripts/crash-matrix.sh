#!/usr/bin/env bash
# The whole crash matrix (docs/reliability.md): for each target
# (StatefulSet, PerServer), a lab migration in which zkmigrate dies by
# SIGKILL at every journaled boundary in turn and is resumed each time
# (tests/crash_lab.rs with ZKMIGRATE_CRASH_ONLY empty: every boundary).
# Writes the result into docs/reliability.md between its "matrix result"
# markers. CI runs the same test on a sample of boundaries. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

result=$(mktemp /tmp/zkmigrate-crash-matrix.XXXXXX)
trap 'rm -f "$result"' EXIT
started=$(date +%s)
ZKMIGRATE_CRASH_ONLY= ZKMIGRATE_CRASH_RESULT="$result" \
  cargo test --locked --features failpoints --test crash_lab -- --test-threads=2
elapsed=$(( $(date +%s) - started ))

python3 scripts/crash_matrix_doc.py "$result" "$elapsed" docs/reliability.md
echo "crash matrix: passed; docs/reliability.md updated"
