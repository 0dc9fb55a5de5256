#!/usr/bin/env bash
# The main job: a live migration under load, in the lab, ending with the
# workload's report. Builds a lab (3 hosts over SSH, a Kubernetes control
# plane), starts the workload, runs zkmigrate from the lab's operator
# machine step by step (switching the workload's clients to the Service
# names at the clients step, as an operator would), prints the report JSON
# and a summary, and tears the lab down. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --locked --workspace --bins

LAB=${ZKLAB_DEMO_NAME:-demo}
ZKLAB=target/debug/zklab
ZKMIGRATE=$PWD/target/debug/zkmigrate
started=$(date +%s)

cleanup() { "$ZKLAB" down --name "$LAB" >/dev/null 2>&1 || true; }
trap cleanup EXIT
cleanup

echo "== zklab up: 3 hosts with ZooKeeper 3.8 over SSH, and a Kubernetes control plane"
out=$("$ZKLAB" up --name "$LAB")
echo "$out"
PLAN=$(sed -n 's/^plan: //p' <<<"$out")
KUBECONFIG_PATH=$(sed -n 's/^kubeconfig: //p' <<<"$out")

# zkmigrate runs where an operator would: on the lab's operator machine.
# Its own lines ("-> action", "done: ...") tell the story; logs at warn
# unless ZKMIGRATE_LOG says otherwise.
zkmigrate() {
  "$ZKLAB" run --name "$LAB" --on ops -- env KUBECONFIG="$KUBECONFIG_PATH" \
    ZKMIGRATE_LOG="${ZKMIGRATE_LOG:-warn}" "$ZKMIGRATE" "$@"
}

echo "== the workload: 100 writes/s and a session holding an ephemeral znode"
"$ZKLAB" load start --name "$LAB"

echo "== zkmigrate plan"
zkmigrate plan -f "$PLAN"

echo "== zkmigrate step: preflight, services, clients"
set +e
zkmigrate step -f "$PLAN" --until clients --yes
code=$?
set -e
if [ "$code" -ne 4 ]; then
  echo "demo: expected the clients step to wait for --confirm (exit 4), got $code" >&2
  exit 1
fi

echo "== the operator moves the clients to the Service names"
services=$(for i in 1 2 3; do printf 'zk-%s.zookeeper.svc.cluster.local:2181,' "$i"; done)
"$ZKLAB" load reconnect --name "$LAB" --connect "${services%,}"

echo "== zkmigrate step: peers, replace, finalize"
zkmigrate step -f "$PLAN" --all --yes --resume --confirm clients

echo "== zkmigrate status"
zkmigrate status -f "$PLAN"

"$ZKLAB" load stop --name "$LAB"
report=$("$ZKLAB" load report --name "$LAB")
echo "== report"
echo "$report"
python3 - "$report" "$(( $(date +%s) - started ))" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"\n{r['acked']} writes acknowledged, {r['lost']} lost, {r['elections']} leader elections, "
      f"{r['unavailable_ms']} ms without acknowledgements (longest gap {r['max_gap_ms']} ms); "
      f"ephemeral znode survived: {r['ephemeral_survived']}; sessions expired: {r['sessions_expired']}. "
      f"Demo took {sys.argv[2]} s.")
sys.exit(0 if r["lost"] == 0 else 1)
PY
