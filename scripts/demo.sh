#!/usr/bin/env bash
# The main job: a live migration under load, in the lab, ending with the
# workload's report. Installs what the lab needs (scripts/setup.sh), builds
# zkmigrate and zklab, and runs `zklab demo`: a lab of 3 hosts over SSH and
# a Kubernetes control plane, the workload, the whole migration with
# zkmigrate from the lab's operator machine (the workload's clients move to
# the Service names at the clients step, as an operator would), the report
# JSON and a summary, then the lab torn down. Needs root. Extra arguments go
# to `zklab demo` (e.g. --servers 5, --target PerServer, --leader 1, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --locked --workspace --bins

exec target/debug/zklab demo --name "${ZKLAB_DEMO_NAME:-demo}" "$@"
