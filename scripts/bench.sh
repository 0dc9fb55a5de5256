#!/usr/bin/env bash
# The benchmark: zkmigrate against a plain runbook of the same five-step
# method (scripts/baseline.sh), on the same lab size (3 servers, PerServer
# target), each with the leader at the lowest, middle and highest id when
# the migration starts, each cell run BENCH_REPEATS times (default 3): 18
# runs, a fresh lab each, one lab at a time, interleaved (for each repeat,
# for each position, both arms) so that whatever else loads the machine
# falls on both arms alike. Writes docs/benchmarks.md with, per run, the
# workload's report (elections, unavailable_ms, max_gap_ms, acked, lost),
# the time of steps 4+5 and of the whole run, zkmigrate's peak RSS and the
# API requests of each tool; per position and arm the median and mean of
# each; and the ratios zkmigrate/baseline of the medians. Needs root.
#
# Every command that talks to the lab (zkmigrate, kubectl, ssh, nc) runs in
# the lab's operator machine through `zklab run --on ops`.
#
# The machine is shared. Before the first run the script waits, polling
# every 60 s for up to BENCH_WAIT_QUIET minutes (default 45; 0: no wait),
# until no other lab is up (/tmp/zklab holds nothing) and no `cargo test`
# runs; then it runs anyway. What it saw then, and at the start of each run,
# goes into the doc.
#
# Each run's files stay in the work directory (printed at the end): the
# workload's record, zkmigrate's status, the run's log, and the ZooKeeper
# logs of the hosts and of the Pods (LAB.zklogs/), copied before the lab is
# torn down.
#
# Environment (the doc records any that were set):
#   BENCH_REPEATS     runs of each (arm, position) (default 3)
#   BENCH_POSITIONS   leader positions to run (default "low mid high";
#                     "natural" leaves the leader the lab elected)
#   BENCH_ARMS        default "zkmigrate baseline"
#   BENCH_DOC         where to write the document (default docs/benchmarks.md)
#   BENCH_WAIT_QUIET  minutes to wait for a quiet machine (default 45)
set -euo pipefail
cd "$(dirname "$0")/.."

POSITIONS=${BENCH_POSITIONS:-low mid high}
ARMS=${BENCH_ARMS:-zkmigrate baseline}
DOC=${BENCH_DOC:-docs/benchmarks.md}
REPEATS=${BENCH_REPEATS:-3}
WAIT_QUIET=${BENCH_WAIT_QUIET:-45}
if ! [[ $REPEATS =~ ^[0-9]+$ ]] || [ "$REPEATS" -lt 1 ]; then
  echo "bench: BENCH_REPEATS must be a whole number of at least 1, not $REPEATS" >&2
  exit 2
fi
if ! [[ $WAIT_QUIET =~ ^[0-9]+$ ]]; then
  echo "bench: BENCH_WAIT_QUIET must be a whole number of minutes, not $WAIT_QUIET" >&2
  exit 2
fi
command_line="scripts/bench.sh"
for v in BENCH_REPEATS BENCH_POSITIONS BENCH_ARMS BENCH_DOC BENCH_WAIT_QUIET; do
  [ -z "${!v:-}" ] || command_line="$v=\"${!v}\" $command_line"
done

scripts/setup.sh
cargo build --locked --workspace --bins

# What was built: others may commit or edit while this runs.
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=false
[ -z "$(git status --porcelain 2>/dev/null)" ] || dirty=true

WORK=$(mktemp -d /tmp/zkbench.XXXXXX)
# The binaries measured, copied: others may rebuild target/ while this runs.
mkdir -p "$WORK/bin"
cp target/debug/zklab target/debug/zkmigrate "$WORK/bin/"
ZKLAB=$WORK/bin/zklab
ZKMIGRATE=$WORK/bin/zkmigrate
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

have_elect=false
if "$ZKLAB" fault --help 2>/dev/null | grep -qw elect; then have_elect=true; fi
for p in $POSITIONS; do
  case $p in
    low | mid | high)
      if ! $have_elect; then
        echo "bench: \`zklab fault elect\` is not in this build; it places the leader." >&2
        echo "bench: BENCH_POSITIONS=natural runs with the leader the lab elects." >&2
        exit 1
      fi ;;
    natural) ;;
    *) echo "bench: unknown position $p (low, mid, high, natural)" >&2; exit 2 ;;
  esac
done

LAB=""
cleanup() {
  if [ -n "$LAB" ]; then "$ZKLAB" down --name "$LAB" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
say() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*"; }

# What else is using the machine, one line (empty when quiet): other labs
# (anything in /tmp/zklab but this script's current lab) and `cargo test`.
busy() {
  local others=() n what=""
  if [ -d /tmp/zklab ]; then
    for n in $(ls -A /tmp/zklab); do
      [ "$n" = "$LAB" ] || others+=("$n")
    done
  fi
  [ ${#others[@]} -eq 0 ] || what="other labs: ${others[*]}"
  if pgrep -f "cargo test" >/dev/null; then
    what="${what:+$what; }cargo test running"
  fi
  printf '%s' "$what"
}

ops() { "$ZKLAB" run --name "$LAB" --on ops -- env KUBECONFIG="$KCFG" "$@"; }

# zkmigrate under the RSS wrapper; its output goes to the run's log.
zkm() {
  ops python3 "$PWD/scripts/bench.py" rss "$RSS" -- \
    env ZKMIGRATE_LOG=warn "$ZKMIGRATE" "$@" >>"$LOGFILE" 2>&1
}

# The API server's request counters now (JSON; total null without /metrics).
api() {
  local text
  if text=$(ops kubectl --cache-dir "$WORK/kcache" get --raw /metrics 2>>"$LOGFILE"); then
    python3 scripts/bench.py requests <<<"$text"
  else
    echo '{"total": null, "by_verb": {}}'
  fi
}

run_one() { # ARM POSITION REPEAT
  local arm=$1 position=$2 repeat=$3 leader_id code
  LAB="bn${arm:0:1}${position:0:1}$repeat"
  LOGFILE=$WORK/$LAB.log
  RSS=$WORK/$LAB.rss
  local rss_steps=$WORK/$LAB.rss-steps123
  : >"$RSS"
  "$ZKLAB" down --name "$LAB" >/dev/null 2>&1 || true
  local busy_at_start load_at_start
  busy_at_start=$(busy)
  load_at_start=$(cut -d' ' -f1 /proc/loadavg)
  say "$arm, leader $position, repeat $repeat: zklab up --name $LAB --servers 3 --target PerServer" \
    "(load $load_at_start${busy_at_start:+; $busy_at_start})"
  local out
  out=$("$ZKLAB" up --name "$LAB" --servers 3 --target PerServer 2>>"$LOGFILE")
  PLAN=$(sed -n 's/^plan: //p' <<<"$out")
  KCFG=$(sed -n 's/^kubeconfig: //p' <<<"$out")
  case $position in
    low) leader_id=1 ;;
    mid) leader_id=2 ;;
    high) leader_id=3 ;;
    natural) leader_id="" ;;
  esac
  if [ -n "$leader_id" ]; then
    "$ZKLAB" fault elect --server "$leader_id" --name "$LAB" >>"$LOGFILE" 2>&1
  fi
  "$ZKLAB" load start --name "$LAB" >>"$LOGFILE" 2>&1

  local t0 a0 t1 a1 t2 a2 t3 a3 leader_before arm_code=0
  t0=$(now); a0=$(api)
  say "  steps 1-3: zkmigrate step --until clients; zklab load reconnect"
  set +e
  RSS=$rss_steps zkm step -f "$PLAN" --until clients --yes
  code=$?
  set -e
  if [ "$code" -ne 4 ]; then
    echo "bench: $LAB: zkmigrate step --until clients exited $code, not 4 (log: $LOGFILE)" >&2
    exit 1
  fi
  local services
  services=$(for i in 1 2 3; do printf 'zk-%s.zookeeper.svc.cluster.local:2181,' "$i"; done)
  "$ZKLAB" load reconnect --name "$LAB" --connect "${services%,}" >>"$LOGFILE" 2>&1
  leader_before=$(ops python3 scripts/bench.py leader "$PLAN")

  t1=$(now); a1=$(api)
  say "  steps 4-5 ($arm); leader now: $leader_before"
  set +e
  case $arm in
    zkmigrate) zkm step -f "$PLAN" --until replace --yes --resume --confirm clients ;;
    baseline)
      ops env ZKMIGRATE="$ZKMIGRATE" python3 scripts/bench.py rss "$RSS" -- \
        scripts/baseline.sh "$PLAN" >>"$LOGFILE" 2>&1 ;;
  esac
  arm_code=$?
  set -e
  t2=$(now); a2=$(api)
  if [ "$arm" = zkmigrate ] && [ "$arm_code" -eq 0 ]; then
    set +e
    zkm step -f "$PLAN" --all --yes
    arm_code=$?
    set -e
  fi
  t3=$(now); a3=$(api)
  [ "$arm_code" -eq 0 ] || say "  $arm exited $arm_code (log: $LOGFILE)"

  "$ZKLAB" load stop --name "$LAB" >>"$LOGFILE" 2>&1 || true
  local report
  report=$("$ZKLAB" load report --name "$LAB" 2>>"$LOGFILE")
  say "  report: $report"

  local endstate host_sha pod_sha
  ops "$ZKMIGRATE" status -f "$PLAN" -o json >"$WORK/$LAB.status.json" 2>>"$LOGFILE" || true
  endstate=$(python3 scripts/bench.py endstate "$WORK/$LAB.status.json" 2>&1 || true)
  [ "$arm_code" -eq 0 ] || endstate="$arm exited $arm_code; $endstate"
  # The lab writes its name into the hosts' zoo.cfg (a comment): hashed
  # with the name replaced, so that the two arms' labs compare.
  host_sha=$(for k in 1 2 3; do
    "$ZKLAB" run --name "$LAB" --on "host$k" -- cat /etc/zookeeper/conf/zoo.cfg
  done | sed "s/\b$LAB\b/LAB/g" | sha256sum | cut -c1-12)
  pod_sha=$(ops kubectl --cache-dir "$WORK/kcache" -n zookeeper get configmap zk-config \
    -o 'jsonpath={.data.zoo\.cfg}' 2>>"$LOGFILE" | sed "s/\b$LAB\b/LAB/g" | sha256sum | cut -c1-12)
  say "  end state: $endstate"
  # Where the workload's gaps fell: its record (the lab's load directory)
  # against zkmigrate's journal or the baseline's log.
  cp "/tmp/zklab/$LAB/load/events.jsonl" "$WORK/$LAB.events.jsonl"
  local gaps
  gaps=$(python3 scripts/bench.py gaps "$WORK/$LAB.events.jsonl" "$WORK/$LAB.status.json" \
    "$LOGFILE" "$t1" "$t2" "$arm")
  # The ZooKeeper logs, hosts' and Pods', kept for a look inside the gaps.
  mkdir -p "$WORK/$LAB.zklogs"
  local k f rel
  for k in 1 2 3; do
    cp "/tmp/zklab/$LAB/hosts/host$k/var-log-zookeeper/zookeeper.log" \
      "$WORK/$LAB.zklogs/host$k.log" 2>/dev/null || true
  done
  if [ -d "/tmp/zklab/$LAB/kubelet/pods" ]; then
    while IFS= read -r f; do
      rel=${f#/tmp/zklab/$LAB/kubelet/pods/}
      cp "$f" "$WORK/$LAB.zklogs/pod_${rel//\//_}" 2>/dev/null || true
    done < <(find "/tmp/zklab/$LAB/kubelet/pods" -path '*zk-*' -name '*.log' -type f)
  fi

  # Each gap of 500 ms or more taken apart with those logs (see bench.py).
  local inside
  inside=$(python3 scripts/bench.py inside "$WORK/$LAB.events.jsonl" "$WORK/$LAB.zklogs" "$gaps" \
    2>>"$LOGFILE" || echo null)

  python3 - "$arm" "$position" "$LAB" "$report" "$leader_before" \
    "$t0" "$t1" "$t2" "$t3" "$a0" "$a1" "$a2" "$a3" "$RSS" "$rss_steps" \
    "$endstate" "$host_sha" "$pod_sha" "$arm_code" "$gaps" "$repeat" \
    "$busy_at_start" "$load_at_start" "$inside" >>"$RESULTS" <<'PY'
import json, sys
(arm, position, lab, report, leader, t0, t1, t2, t3, a0, a1, a2, a3, rss, rss_steps,
 endstate, host_sha, pod_sha, code, gaps, repeat, busy, load, inside) = sys.argv[1:]
t0, t1, t2, t3 = map(float, (t0, t1, t2, t3))
a0, a1, a2, a3 = (json.loads(a) for a in (a0, a1, a2, a3))
# Each scrape of /metrics is counted by the API server once answered, so
# an interval's delta includes the scrapes the benchmark made in it: the
# one that opens it (steps 4+5), the three before the last (whole run).
def delta(x, y, own_scrapes):
    if x["total"] is None or y["total"] is None:
        return None
    return y["total"] - x["total"] - own_scrapes
def peak(path):
    values = [int(l) for l in open(path) if l.strip()]
    return max(values) if values else None
print(json.dumps({
    "arm": arm, "position": position, "repeat": int(repeat), "lab": lab, "exit": int(code),
    "busy_at_start": busy, "load_at_start": float(load),
    "report": json.loads(report),
    "leader_before_step4": json.loads(leader)["leader"],
    "modes_before_step4": json.loads(leader)["modes"],
    "t45_s": t2 - t1, "total_s": t3 - t0,
    "api45": delta(a1, a2, 1), "api_total": delta(a0, a3, 3),
    "api45_by_verb": {v: a2["by_verb"].get(v, 0) - a1["by_verb"].get(v, 0) - (v == "GET")
                      for v in a2["by_verb"] if a2["by_verb"].get(v, 0) != a1["by_verb"].get(v, 0)},
    "rss_kib": peak(rss), "rss_steps123_kib": peak(rss_steps),
    "endstate": endstate, "host_cfg_sha": host_sha, "pod_cfg_sha": pod_sha,
    "gaps": json.loads(gaps), "inside": json.loads(inside),
}))
PY
  "$ZKLAB" down --name "$LAB" >>"$LOGFILE" 2>&1
  LAB=""
}

# Wait for a quiet machine: no other lab, no `cargo test`.
wait_started=$(now)
still_busy=$(busy)
if [ -n "$still_busy" ] && [ "$WAIT_QUIET" -gt 0 ]; then
  say "waiting for a quiet machine (up to $WAIT_QUIET min): $still_busy"
  deadline=$((SECONDS + WAIT_QUIET * 60))
  while [ -n "$still_busy" ] && [ "$SECONDS" -lt "$deadline" ]; do
    sleep 60
    still_busy=$(busy)
    [ -z "$still_busy" ] || say "  still busy: $still_busy"
  done
fi
waited=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$wait_started" "$(now)")
if [ -n "$still_busy" ]; then
  say "running anyway after ${waited%.*} s: $still_busy"
else
  say "the machine is quiet (waited ${waited%.*} s)"
fi

started=$(now)
started_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
for repeat in $(seq "$REPEATS"); do
  for position in $POSITIONS; do
    for arm in $ARMS; do
      run_one "$arm" "$position" "$repeat"
    done
  done
done

elapsed=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$started" "$(now)")
meta=$(python3 - "$command_line" "$elapsed" "$have_elect" "$dirty" "$commit" "$REPEATS" \
  "$WAIT_QUIET" "$waited" "$still_busy" "$started_utc" <<'PY'
import json, os, platform, subprocess, sys, datetime
(command, elapsed, elect, dirty, commit, repeats, wait_quiet, waited, still_busy,
 started_utc) = sys.argv[1:]
mem_kib = int(next(l.split()[1] for l in open("/proc/meminfo") if l.startswith("MemTotal:")))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
print(json.dumps({
    "command": command,
    "date": started_utc,
    "ended": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "elapsed_s": float(elapsed), "nproc": int(subprocess.run(["nproc"], capture_output=True, text=True).stdout), "mem_gib": mem_kib / 1048576,
    "cpu": cpu, "kernel": platform.release(), "commit": commit or "unknown",
    "dirty": dirty == "true", "elect": elect == "true", "repeats": int(repeats),
    "wait_quiet_min": int(wait_quiet), "waited_s": float(waited), "busy_after_wait": still_busy,
}))
PY
)
python3 scripts/bench.py doc "$RESULTS" "$DOC" "$meta"
say "wrote $DOC (runs: $RESULTS, logs: $WORK/*.log, ZooKeeper logs: $WORK/*.zklogs/)"
sed -n '/^## Results/,/^## End state/p' "$DOC"
