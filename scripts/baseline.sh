#!/usr/bin/env bash
# The benchmark's baseline: steps 4 (peers) and 5 (replace) of the published
# five-step method ("Embrace and Replace", HubSpot 2020), scripted as a plain
# runbook would, without zkmigrate's engine. scripts/bench.sh runs it inside
# a lab's operator machine, after `zkmigrate step --until clients` has done
# steps 1-3 (which restart nothing) and the workload has moved to the Service
# names:
#
#   zklab run --name LAB --on ops -- env KUBECONFIG=... ZKMIGRATE=.../zkmigrate \
#     scripts/baseline.sh /tmp/zklab/LAB/plan.yaml
#
# Step 4: in id order, over SSH (the plan's user, key and options), back up
# zoo.cfg, rewrite its server.N lines to the Service names and add
# quorumListenOnAllIPs=true (the same bytes zkmigrate writes: `zkmigrate plan`
# shows the diff), restart, and count the server ready as soon as `srvr`
# answers with a Mode: line (Exhibitor's rolling-change readiness). No sync
# gate; the leader is not treated specially.
#
# Step 5: in id order, disable and stop the host's ZooKeeper and move its
# myid aside (DESIGN 2), apply the server's objects as `zkmigrate manifests
# --step replace --server N` renders them (the Pods' zoo.cfg derived from the
# host's own file, as zkmigrate's engine does; `manifests` alone reads no
# host), delete the server's hand-made EndpointSlice, and wait until `srvr`
# through the server's Service answers with a Mode: line.
#
# It only runs inside a lab built by scripts/bench.sh (which runs setup.sh
# and the build); it builds nothing itself.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAN=${1:?usage: baseline.sh PLAN, inside the operator machine of a lab}
ZKMIGRATE=${ZKMIGRATE:-target/debug/zkmigrate}
: "${KUBECONFIG:?KUBECONFIG must name the kubeconfig of the lab}"
eval "$(python3 scripts/bench.py plan-env "$PLAN")"

# kubectl's discovery cache, fresh per lab, so that every run pays (and
# counts) the same discovery requests.
KUBECACHE=$(dirname "$PLAN")/baseline-kubectl-cache
kubectl() { command kubectl --cache-dir "$KUBECACHE" -n "$NAMESPACE" "$@"; }

POLL=0.2          # the same poll interval as the plan's policy.pollInterval
READY_TIMEOUT=300 # a runbook's "give up and page someone", in seconds

# UTC with milliseconds: bench.py reads these lines to tell which action ran
# when the workload saw a gap.
log() { printf '%s baseline: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*"; }

on_host() { # ID CMD: run CMD on server ID's host
  local host="HOST_$1"
  ssh "${SSH_ARGS[@]}" "$SSH_USER@${!host}" "$2"
}

service_host() { # ID -> zk-ID.NS.svc.DOMAIN
  printf '%s.%s.svc.%s' "${SERVICE_NAME//\{id\}/$1}" "$NAMESPACE" "$CLUSTER_DOMAIN"
}

# Waits until `srvr` at ADDRESS answers with a Mode: line. The word is sent
# without a newline and the reply read to EOF (DESIGN 7).
await_mode() { # WHAT ADDRESS
  local what=$1 address=$2 deadline=$((SECONDS + READY_TIMEOUT)) mode
  while :; do
    mode=$(printf srvr | nc -w 2 "$address" "$CLIENT_PORT" 2>/dev/null | sed -n 's/^Mode: //p' || true)
    if [ -n "$mode" ]; then
      log "$what: srvr at $address answers Mode: $mode"
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what: no Mode line from $address:$CLIENT_PORT in ${READY_TIMEOUT} s" >&2
      return 1
    fi
    sleep "$POLL"
  done
}

# The zoo.cfg edit of step 4, run on the host (bash -s, arguments CONFIG
# NAME): server.N lines to the Service names (NAME, with \2 for the id),
# quorumListenOnAllIPs=true set in place if the key is there, else added
# after the last server line; every other line untouched; a backup once;
# atomic replace.
REWRITE=$(cat <<'EOF'
set -euo pipefail
cfg=$1 name=$2 tmp="$1.new.$$"
[ -e "$cfg.pre-services" ] || cp -p "$cfg" "$cfg.pre-services"
sed -E "s/^(server\.([0-9]+)[[:space:]]*=[[:space:]]*)[^:;]+:/\1$name:/" "$cfg" |
  awk '{ line[NR] = $0 }
    /^[[:space:]]*quorumListenOnAllIPs[[:space:]]*=/ { q = NR }
    /^server\.[0-9]+[[:space:]]*=/ { last = NR }
    END {
      for (i = 1; i <= NR; i++) {
        print (i == q ? "quorumListenOnAllIPs=true" : line[i])
        if (!q && i == last) print "quorumListenOnAllIPs=true"
      }
      if (!q && !last) print "quorumListenOnAllIPs=true"
    }' >"$tmp"
chmod --reference="$cfg" "$tmp"
mv -f "$tmp" "$cfg"
EOF
)

# The fence of step 5, run on the host (bash -s, arguments CONFIG DISABLE
# STOP): disable, stop (the service script waits until the JVM is gone),
# move <dataDir>/myid aside, so that no second process can run this myid.
FENCE=$(cat <<'EOF'
set -euo pipefail
cfg=$1
$2 >/dev/null
$3 >/dev/null
d=$(sed -n 's/^dataDir=//p' "$cfg" | tail -1)
d=${d:-/var/lib/zookeeper}
mv "$d/myid" "$d/myid.zkmigrate-fenced"
EOF
)

# ---- step 4: peers ---------------------------------------------------------
name_pattern=$(service_host '\2')
for id in "${SERVER_IDS[@]}"; do
  log "peers/rewrite/$id: $CONFIG_PATH to the Service names"
  on_host "$id" "bash -s -- $(printf '%q ' "$CONFIG_PATH" "$name_pattern")" <<<"$REWRITE"
  log "peers/restart/$id: $SVC_RESTART"
  on_host "$id" "$SVC_RESTART" >/dev/null
  addr="ADDR_$id"
  log "peers/await/$id: srvr at ${!addr} until it shows a Mode line"
  await_mode "peers/ready/$id" "${!addr}"
done

# ---- step 5: replace -------------------------------------------------------
# The Pods' zoo.cfg: the hosts' own file after step 4, with what is
# host-specific rewritten as zkmigrate's replace/pod-config does (dataDir and
# dataLogDir to the Pod's volumes, host bind addresses dropped).
pod_cfg=$(mktemp)
trap 'rm -f "$pod_cfg"' EXIT
on_host "${SERVER_IDS[0]}" "cat $(printf '%q' "$CONFIG_PATH")" |
  sed -E -e 's|^dataDir=.*|dataDir=/data|' -e 's|^dataLogDir=.*|dataLogDir=/datalog|' \
    -e '/^(clientPortAddress|secureClientPortAddress|admin\.serverAddress)=/d' >"$pod_cfg"

for id in "${SERVER_IDS[@]}"; do
  log "replace/fence/$id: disable, stop, move myid aside"
  on_host "$id" "bash -s -- $(printf '%q ' "$CONFIG_PATH" "$SVC_DISABLE" "$SVC_STOP")" <<<"$FENCE"
  log "replace/apply/$id: zkmigrate manifests --step replace --server $id | kubectl apply; delete the host slice"
  "$ZKMIGRATE" manifests -f "$PLAN" --step replace --server "$id" |
    python3 scripts/bench.py pod-config "$pod_cfg" |
    kubectl apply --server-side --field-manager=zkmigrate -f - >/dev/null
  service=${SERVICE_NAME//\{id\}/$id}
  kubectl delete endpointslice \
    -l "endpointslice.kubernetes.io/managed-by=zkmigrate,kubernetes.io/service-name=$service" >/dev/null
  log "replace/await/$id: srvr through $(service_host "$id") until it shows a Mode line"
  await_mode "replace/ready/$id" "$(service_host "$id")"
done
log "done: every server runs in a Pod"
