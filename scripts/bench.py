#!/usr/bin/env python3
"""Helpers of scripts/bench.sh and scripts/baseline.sh (the benchmark).

Subcommands, each small and without state of its own:

- rss OUT -- CMD...      run CMD, then append its peak RSS (KiB, the largest
                         of CMD and every descendant it waited for:
                         getrusage(RUSAGE_CHILDREN).ru_maxrss) to OUT; exit
                         with CMD's status.
- plan-env PLAN          the plan's fields baseline.sh needs, as shell
                         assignments to eval.
- pod-config ZOO_CFG     manifests YAML on stdin -> the same objects on
                         stdout, with the zoo.cfg of the Pods' ConfigMap
                         replaced by the file ZOO_CFG (see baseline.sh).
- requests               Prometheus text of the API server's /metrics on
                         stdin -> JSON {"total": N, "by_verb": {...}} of
                         apiserver_request_total.
- leader PLAN            JSON {"leader": ID or null, "modes": {...}}: each
                         server's `srvr` Mode at its plan address.
- endstate STATUS_JSON   reads `zkmigrate status -o json`; prints a one-line
                         verdict; exit 1 unless every server is in a Pod,
                         one leads and the others follow.
- gaps EVENTS STATUS LOG T1 T2 ARM
                         the workload's gaps in acknowledgements over 100 ms
                         (its events.jsonl), each put in its phase (steps
                         1-3, peers, replace, after) and at the action that
                         was running when it began: zkmigrate's from
                         `status -o json`, the baseline's from its log.
- doc RESULTS OUT META   writes docs/benchmarks.md from the runs' JSON lines.
"""

import json
import re
import resource
import shlex
import socket
import subprocess
import sys


def rss(argv):
    out, sep, cmd = argv[0], argv[1], argv[2:]
    if sep != "--" or not cmd:
        sys.exit("usage: bench.py rss OUT -- CMD...")
    code = subprocess.call(cmd)
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(out, "a") as f:
        f.write(f"{kib}\n")
    sys.exit(code)


def load_plan(path):
    import yaml

    with open(path) as f:
        return yaml.safe_load(f)


def plan_env(argv):
    plan = load_plan(argv[0])
    e, k = plan["ensemble"], plan["kubernetes"]
    ssh = e["access"]["ssh"]
    q = shlex.quote
    lines = [
        f"SERVER_IDS=({' '.join(str(s['id']) for s in e['servers'])})",
        f"CLIENT_PORT={int(e['clientPort'])}",
        f"CONFIG_PATH={q(e['configPath'])}",
        f"SVC_RESTART={q(e['service']['restart'])}",
        f"SVC_STOP={q(e['service']['stop'])}",
        f"SVC_DISABLE={q(e['service']['disable'])}",
        f"NAMESPACE={q(k['namespace'])}",
        f"CLUSTER_DOMAIN={q(k.get('clusterDomain', 'cluster.local'))}",
        f"SERVICE_NAME={q(k.get('serviceName', 'zk-{id}'))}",
        f"SSH_ARGS=(-p {int(ssh.get('port', 22))} -i {q(ssh['identityFile'])} "
        + " ".join(f"-o {q(o)}" for o in ssh.get("options", []))
        + ")",
        f"SSH_USER={q(ssh.get('user', 'root'))}",
    ]
    for s in e["servers"]:
        lines.append(f"HOST_{s['id']}={q(s['host'])}")
        lines.append(f"ADDR_{s['id']}={q(s['address'])}")
    print("\n".join(lines))


def pod_config(argv):
    import yaml

    with open(argv[0]) as f:
        zoo_cfg = f.read()
    docs = [d for d in yaml.safe_load_all(sys.stdin) if d]
    swapped = 0
    for d in docs:
        if d.get("kind") == "ConfigMap" and "zoo.cfg" in (d.get("data") or {}):
            d["data"]["zoo.cfg"] = zoo_cfg
            swapped += 1
    if swapped != 1:
        sys.exit(f"pod-config: expected one ConfigMap with zoo.cfg, found {swapped}")
    yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)


def parse_labels(text):
    labels = {}
    for part in text.split('",'):
        if "=" in part:
            key, value = part.split("=", 1)
            labels[key.strip()] = value.strip().strip('"')
    return labels


def requests(_argv):
    total, by_verb = 0, {}
    for line in sys.stdin:
        if not line.startswith("apiserver_request_total{"):
            continue
        labels_text, value = line.rsplit("}", 1)
        labels = parse_labels(labels_text[len("apiserver_request_total{") :])
        n = int(float(value.split()[0]))
        total += n
        verb = labels.get("verb", "?")
        by_verb[verb] = by_verb.get(verb, 0) + n
    print(json.dumps({"total": total, "by_verb": by_verb}))


def srvr(address, port):
    try:
        with socket.create_connection((address, port), timeout=2) as s:
            s.sendall(b"srvr")
            chunks = []
            while True:
                b = s.recv(4096)
                if not b:
                    break
                chunks.append(b)
        return b"".join(chunks).decode(errors="replace")
    except OSError as e:
        return f"error: {e}"


def leader(argv):
    plan = load_plan(argv[0])
    e = plan["ensemble"]
    modes = {}
    for s in e["servers"]:
        text = srvr(s["address"], int(e["clientPort"]))
        mode = next(
            (l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("Mode:")),
            None,
        )
        modes[str(s["id"])] = mode
    leaders = [int(i) for i, m in modes.items() if m == "leader"]
    print(json.dumps({"leader": leaders[0] if len(leaders) == 1 else None, "modes": modes}))


def endstate(argv):
    with open(argv[0]) as f:
        status = json.load(f)
    servers = status["servers"]
    where = {s["id"]: (s["location"], s["mode"]) for s in servers}
    ok = (
        all(loc == "pod" for loc, _ in where.values())
        and sum(1 for _, m in where.values() if m == "leader") == 1
        and all(m in ("leader", "follower") for _, m in where.values())
    )
    print(
        ("ok: " if ok else "NOT the end state: ")
        + ", ".join(f"server {i} in {loc} ({m})" for i, (loc, m) in sorted(where.items()))
    )
    sys.exit(0 if ok else 1)


def iso_ms(text):
    import datetime

    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def gaps(argv):
    events_path, status_path, log_path, t1, t2, arm = argv
    t1, t2 = float(t1) * 1000, float(t2) * 1000
    events = [json.loads(l) for l in open(events_path) if l.strip()]
    start = next(e for e in events if e["event"] == "started")["unix_ms"]
    acks = sorted(e["t_ms"] for e in events if e["event"] == "acked")
    stop = next((e["t_ms"] for e in events if e["event"] == "stopped"), None)
    bounds = [0] + acks + ([stop] if stop is not None else [])
    # What ran when: (start ms, end ms, name).
    actions = []
    if arm == "zkmigrate":
        with open(status_path) as f:
            status = json.load(f)
        for step in status["steps"]:
            for a in step.get("actions", []):
                if a.get("startedAt") and a.get("finishedAt"):
                    actions.append((iso_ms(a["startedAt"]), iso_ms(a["finishedAt"]), a["id"]))
    else:
        lines = []
        for line in open(log_path):
            parts = line.split(" baseline: ", 1)
            if len(parts) == 2 and parts[0].endswith("Z") and "T" in parts[0]:
                lines.append((iso_ms(parts[0]), parts[1].strip()))
        for i, (t, what) in enumerate(lines):
            end = lines[i + 1][0] if i + 1 < len(lines) else t2
            actions.append((t, end, what.split(":", 1)[0]))
    actions.sort()
    replace_start = next(
        (a for a, _e, name in actions if name.startswith("replace/")),
        t2,
    )

    def phase(t):
        if t < t1:
            return "steps 1-3"
        if t < replace_start:
            return "peers"
        if t < t2:
            return "replace"
        return "after"

    def running(t):
        found = [name for a, e, name in actions if a <= t < e]
        if found:
            return found[-1]
        before = [name for a, _e, name in actions if a <= t]
        return (before[-1] + " (after it)") if before else "before any action"

    out = {"by_phase": {p: 0 for p in ("steps 1-3", "peers", "replace", "after")}, "gaps": []}
    total = 0
    for a, b in zip(bounds, bounds[1:]):
        gap = b - a
        if gap <= 100:
            continue
        total += gap
        at = start + a
        out["by_phase"][phase(at)] += gap
        out["gaps"].append({"ms": gap, "t_ms": a, "phase": phase(at), "during": running(at)})
    out["total"] = total
    print(json.dumps(out))


# ---- inside the gaps: the ZooKeeper logs ----------------------------------

LOG_LINE = re.compile(r"^(\S+) \[([^\]]*(?:\][^\]]*)*?)\] (TRACE|DEBUG|INFO|WARN|ERROR) (\S+) - (.*)$")


def zk_segments(path):
    """One ZooKeeper log file -> its JVMs' lines, each [(ms, exact, text)].

    A host's log (the lab's zookeeper-service) holds every start of the
    server, each announced by a `date -Is` line, and slf4j-simple's times
    in ms since the JVM started: there `ms` is that second plus the
    relative time, which falls up to about 2 s before the true time
    (`exact` false). A Pod's log carries ISO times (`exact` true).
    """
    import datetime

    segments, current, base = [], None, None
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.endswith(" starting zookeeper") and "T" in line[:20]:
            try:
                base = datetime.datetime.fromisoformat(line.split(" ", 1)[0]).timestamp() * 1000
            except ValueError:
                base = None
            current = []
            segments.append(current)
            continue
        m = LOG_LINE.match(line)
        if not m:
            continue
        stamp, text = m.group(1), m.group(5)
        if stamp.isdigit():
            if base is None:
                continue
            ms, exact = base + int(stamp), False
        else:
            try:
                ms = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp() * 1000
            except ValueError:
                continue
            exact = True
        if current is None:
            current = []
            segments.append(current)
        current.append((ms, exact, text))
    return segments


FOLLOWING_GOT_LOOKING = re.compile(r"Notification: my state:FOLLOWING; n\.sid:(\d+), n\.state:LOOKING")


def server_id(name):
    """host2 -> 2, pod zk-2-0 -> 2 (None otherwise)."""
    m = re.search(r"(?:^host|zk-)(\d+)", name)
    return int(m.group(1)) if m else None


def inside(argv):
    """The gaps of 500 ms or more, each taken apart with the ZooKeeper logs.

    For each gap, from the workload's record: `to_drop_ms`, from the last
    acknowledgement until its first failed write (the connection dropped).
    From the logs of the servers that lost their leader in the gap (a line
    `Exception when following the leader` or `PeerState set to LOOKING`
    within 2.6 s of the drop, host logs' times being coarse): each one's
    time from that line until it served again (`Peer state changed: ... -
    broadcast`), read on its own log's clock, and the election time
    ZooKeeper logged in between. `serving_ms` is the earliest of them (the
    ensemble serves again), `election_ms` the new leader's count,
    `notification_timeouts` the most `Notification time out` lines (an
    election round that waited for votes in vain) any of them logged,
    `first_looking` the id of the server that went LOOKING first when a
    vote of it reached another while that one still followed (null when
    the logs do not tell), `new_leader` the id that led after, and
    `after_serving_ms` the rest of the gap: gap - to_drop - serving, the
    time from the ensemble serving again until the next acknowledgement
    (the client's reconnection and one write). Null when no server lost
    its leader in the gap (no election: the writer's own server went away).
    """
    import os

    events_path, logs_dir, gaps_json = argv
    gaps_out = json.loads(gaps_json)
    events = [json.loads(l) for l in open(events_path) if l.strip()]
    start = next(e for e in events if e["event"] == "started")["unix_ms"]
    fails = [e["t_ms"] for e in events if e["event"] == "failed"]
    logs = {}
    for name in sorted(os.listdir(logs_dir)):
        if name.endswith(".log"):
            server = name[:-4]
            if server.startswith("pod_"):
                # pod_<ns>_<pod>_<uid>_<container>_<n>.log -> pod zk-N-0
                server = "pod " + server.split("_")[2]
            logs.setdefault(server, []).extend(zk_segments(os.path.join(logs_dir, name)))
    out = []
    for g in gaps_out.get("gaps", []):
        if g["ms"] < 500 or "t_ms" not in g:
            continue
        a, b = g["t_ms"], g["t_ms"] + g["ms"]
        drop = next((t for t in fails if a < t <= b), None)
        row = {"t_ms": a, "ms": g["ms"], "during": g["during"],
               "to_drop_ms": None if drop is None else drop - a,
               "servers": [], "serving_ms": None, "election_ms": None, "after_serving_ms": None}
        if drop is None:
            out.append(row)
            continue
        drop_wall = start + drop
        for server, segs in logs.items():
            for seg in segs:
                lost = next((i for i, (ms, exact, text) in enumerate(seg)
                             if (drop_wall - (150 if exact else 2600)) <= ms <= (drop_wall + (150 if exact else 400))
                             and (text.startswith("Exception when following the leader")
                                  or text.startswith("PeerState set to LOOKING"))), None)
                if lost is None:
                    continue
                serving = next((j for j in range(lost + 1, len(seg))
                                if seg[j][2].startswith("Peer state changed: ")
                                and seg[j][2].endswith(" - broadcast")), None)
                if serving is None or seg[serving][0] - seg[lost][0] > 10000:
                    continue
                took = [t for _m, _e, t in seg[lost:serving] if " - LEADER ELECTION TOOK - " in t]
                election = None
                if took:
                    try:
                        election = int(took[-1].rsplit(" - ", 1)[1].split()[0])
                    except (IndexError, ValueError):
                        pass
                row["servers"].append({
                    "server": server,
                    "role": "leader" if seg[serving][2].startswith("Peer state changed: leading") else "follower",
                    "lost_to_serving_ms": round(seg[serving][0] - seg[lost][0]),
                    "election_ms": election,
                    "notification_timeouts": sum(1 for _m, _e, t in seg[lost:serving]
                                                 if t.startswith("Notification time out")),
                    # Another server's LOOKING vote that reached this one
                    # while it still followed: that server went LOOKING first.
                    "looking_before_me": sorted({int(m.group(1)) for _m, _e, t in seg[lost:serving]
                                                 for m in [FOLLOWING_GOT_LOOKING.match(t)] if m}),
                    "id": server_id(server),
                })
        if row["servers"]:
            row["serving_ms"] = min(s["lost_to_serving_ms"] for s in row["servers"])
            leaders = [s for s in row["servers"] if s["role"] == "leader"]
            row["election_ms"] = (leaders or row["servers"])[0]["election_ms"]
            row["after_serving_ms"] = g["ms"] - row["to_drop_ms"] - row["serving_ms"]
            row["notification_timeouts"] = max(s["notification_timeouts"] for s in row["servers"])
            firsts = {i for s in row["servers"] for i in s["looking_before_me"]}
            row["first_looking"] = sorted(firsts)[0] if len(firsts) == 1 else None
            row["new_leader"] = leaders[0]["id"] if leaders else None
        out.append(row)
    print(json.dumps(out))


# ---- the document ----------------------------------------------------------


def fmt_s(x):
    return "n/a" if x is None else f"{x:.1f}"


def fmt_int(x):
    return "n/a" if x is None else str(int(x))


def fmt_mib(kib):
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def ratio(a, b):
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "= (0/0)" if a == 0 else f"{a}/0"
    return f"{a / b:.2f}"


POSITIONS = {"low": "lowest id (1)", "mid": "middle id (2)", "high": "highest id (3)",
             "natural": "as elected by the lab"}
SHORT = {"low": "lowest", "mid": "middle", "high": "highest", "natural": "as elected"}
ARMS = ["zkmigrate", "baseline"]


def unavailable_45(r):
    g = r["gaps"]["by_phase"]
    return g["peers"] + g["replace"]


WORKLOAD = [
    ("leader elections", lambda r: r["report"]["elections"], fmt_int),
    ("unavailable_ms", lambda r: r["report"]["unavailable_ms"], fmt_int),
    ("unavailable_ms in steps 4+5", unavailable_45, fmt_int),
    ("max_gap_ms", lambda r: r["report"]["max_gap_ms"], fmt_int),
    ("acked", lambda r: r["report"]["acked"], fmt_int),
    ("lost", lambda r: r["report"]["lost"], fmt_int),
]
COST = [
    ("steps 4+5 time (s)", lambda r: r["t45_s"], fmt_s),
    ("whole run time (s)", lambda r: r["total_s"], fmt_s),
    ("API requests, steps 4+5", lambda r: r["api45"], fmt_int),
    ("API requests, whole run", lambda r: r["api_total"], fmt_int),
    ("peak RSS (MiB)", lambda r: r["rss_kib"], fmt_mib),
]
RATIOS = [m for m in WORKLOAD + COST if m[0] not in ("acked", "lost", "peak RSS (MiB)")]


def _get(get, r):
    try:
        return get(r)
    except (KeyError, TypeError):
        return None


def table(w, header, rows):
    w.append("| " + " | ".join(header) + " |")
    w.append("|" + "---|" * len(header))
    for row in rows:
        w.append("| " + " | ".join(row) + " |")
    w.append("")


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt_num(x, decimals):
    """A statistic: whole numbers without decimals, others with `decimals`."""
    if x is None:
        return "n/a"
    if float(x).is_integer():
        return str(int(x))
    return f"{x:.{decimals}f}"


# The statistics per position and arm, and the ratios of their medians:
# (name, get, decimals of a median, decimals of a mean).
STATS = [
    ("leader elections", WORKLOAD[0][1], 1, 2),
    ("unavailable_ms", WORKLOAD[1][1], 1, 0),
    ("unavailable_ms in steps 4+5", unavailable_45, 1, 0),
    ("max_gap_ms", WORKLOAD[3][1], 1, 0),
    ("steps 4+5 time (s)", COST[0][1], 1, 1),
    ("whole run time (s)", COST[1][1], 1, 1),
    ("API requests, steps 4+5", COST[2][1], 1, 1),
    ("API requests, whole run", COST[3][1], 1, 1),
]


def doc(argv):
    results_path, out_path = argv[0], argv[1]
    meta = json.loads(argv[2])
    runs = [json.loads(l) for l in open(results_path) if l.strip()]
    for r in runs:
        r.setdefault("repeat", 1)
    repeats = meta.get("repeats", max(r["repeat"] for r in runs) if runs else 1)
    positions = [p for p in POSITIONS if any(r["position"] == p for r in runs)]
    arms = [a for a in ARMS if any(r["arm"] == a for r in runs)]
    cell = {(a, p): sorted((r for r in runs if r["arm"] == a and r["position"] == p),
                           key=lambda r: r["repeat"])
            for a in arms for p in positions}
    ordered = [r for p in positions for a in arms for r in cell[(a, p)]]
    by_run = {(r["arm"], r["position"], r["repeat"]): r for r in runs}
    # Positions with runs of both arms, and the pairs of runs of the same
    # repeat and position (run one after the other).
    both = [p for p in positions if cell.get(("zkmigrate", p)) and cell.get(("baseline", p))]
    run_pairs = [(p, rep, by_run[("zkmigrate", p, rep)], by_run[("baseline", p, rep)])
                 for rep in sorted({r["repeat"] for r in runs}) for p in both
                 if ("zkmigrate", p, rep) in by_run and ("baseline", p, rep) in by_run]
    runs_of = {a: [r for r in runs if r["arm"] == a] for a in arms}

    def med(a, p, get):
        return median(_get(get, r) for r in cell[(a, p)])

    def avg(rs, get):
        return mean(_get(get, r) for r in rs)

    w = []
    w.append("# Benchmark: zkmigrate against a plain runbook of the same method\n")
    w.append(
        "Written by `scripts/bench.sh`. Every number on this page is one that script measured "
        "in the run described here; to change them, run it again.\n"
    )

    w.append("## How it was produced\n")
    w.append(f"- Command: `{meta['command']}` (as root, from the repository's root)")
    w.append(
        f"- Repeats: {repeats} run{'s' if repeats != 1 else ''} of each arm at each of "
        f"{len(positions)} leader position{'s' if len(positions) != 1 else ''}, {len(runs)} runs, "
        "interleaved: for each repeat, for each position, "
        + " then ".join(arms)
        + ", so that whatever else loads the machine falls on both arms alike"
    )
    ended = f" to {meta['ended']}" if meta.get("ended") else ""
    w.append(f"- Date: {meta['date']}{ended}; the runs took {meta['elapsed_s']:.0f} s in all")
    quiet = ""
    if "waited_s" in meta:
        if meta.get("busy_after_wait"):
            quiet = (
                f" Before the first run the script waited {meta['waited_s'] / 60:.0f} min for a quiet "
                f"machine (no other lab under `/tmp/zklab`, no `cargo test`) and ran anyway, still "
                f"busy ({meta['busy_after_wait']})."
            )
        elif meta["waited_s"] >= 1:
            quiet = (
                f" Before the first run the script waited {meta['waited_s'] / 60:.0f} min until no "
                "other lab was up (under `/tmp/zklab`) and no `cargo test` ran."
            )
        else:
            quiet = (
                " When the first run started, no other lab was up (under `/tmp/zklab`) and no "
                "`cargo test` ran."
            )
    busy_runs = [r for r in runs if r.get("busy_at_start")]
    loads = [r["load_at_start"] for r in runs if r.get("load_at_start") is not None]
    during = ""
    if any("busy_at_start" in r for r in runs):
        during = (
            f" At the start of {len(busy_runs)} of the {len(runs)} runs another lab was up or a "
            "`cargo test` ran"
            + (": " + "; ".join(f"{r['arm']}/{r['position']}/{r['repeat']} ({r['busy_at_start']})"
                                for r in busy_runs) if busy_runs else "")
            + "."
        )
    if loads:
        during += (
            f" The 1-minute load average at the start of the runs was {min(loads):.2f} to "
            f"{max(loads):.2f}."
        )
    w.append(
        f"- Machine: {meta['nproc']} CPUs (`nproc`), {meta['mem_gib']:.1f} GiB memory "
        f"(`MemTotal`), {meta['cpu']}, Linux {meta['kernel']}. The machine is shared: other "
        "work (builds, other labs' tests) may have run at the same time; the benchmark itself "
        "runs one lab at a time." + quiet + during
    )
    w.append(
        f"- Source: commit {meta['commit']}"
        + (" plus uncommitted changes in the working tree" if meta["dirty"] else "")
        + " when it was built; debug build (`cargo build --locked --workspace --bins`), the "
        "binaries copied aside before the first run"
    )
    w.append(
        "- Lab: `zklab up --servers 3 --target PerServer`, a fresh lab for each run: 3 hosts "
        "running Debian's ZooKeeper 3.8 (tickTime=500) reached over SSH, and the lab's "
        "Kubernetes control plane whose Pods run real ZooKeeper"
    )
    w.append(
        "- Leader: "
        + (
            "placed with `zklab fault elect --server N` before the workload starts, and observed "
            "again (`srvr` on every server) right before step 4 (column \"leader before step 4\")"
            if meta["elect"]
            else "NOT placed (`zklab fault elect` was not in this build): each run starts with "
            "the leader the lab elected"
        )
    )
    w.append(
        "- Workload: `zklab load start` (100 writes/s, and a session holding an ephemeral znode), "
        "started once the leader is placed, moved to the Service names with `zklab load reconnect` "
        "after step 3, stopped once the migration is over"
    )
    w.append("")

    w.append("## The two arms\n")
    w.append(
        "Both run every command from the lab's operator machine (`zklab run --on ops`) and do "
        "steps 1-3 alike: `zkmigrate step -f PLAN --until clients --yes` (preflight, services, "
        "clients: nothing is restarted; exit 4), then `zklab load reconnect --connect "
        "zk-1.zookeeper.svc.cluster.local:2181,...` as `scripts/demo.sh` does. They differ in "
        "steps 4 (peers) and 5 (replace):\n"
    )
    w.append(
        "- **zkmigrate**: `zkmigrate step -f PLAN --until replace --yes --resume --confirm clients`, "
        "then `zkmigrate step -f PLAN --all --yes` (finalize). This is the demo's single `--all "
        "--resume --confirm clients` cut in two, so that steps 4+5 are timed and their API "
        "requests counted over the same boundary as the baseline's. zkmigrate takes followers "
        "first and the leader last (who leads is observed again before each action), passes a "
        "quorum-first gate before each restart and fence (a leader, every voter serving, the leader "
        "counting every follower synced; before a fence, no voter behind the leader), and after "
        "each waits until the server serves and the leader counts it synced."
    )
    w.append(
        "- **baseline** (`scripts/baseline.sh`): the published method scripted as a plain runbook "
        "would. Step 4, in id order 1..n, over SSH with the plan's key and options: back up "
        "zoo.cfg, rewrite its `server.N` lines to the Service names and add "
        "`quorumListenOnAllIPs=true` (the same bytes zkmigrate writes: see \"End state\"), "
        "`zookeeper-service restart`, and count the server ready as soon as `srvr` answers with a "
        "`Mode:` line, the readiness check of Exhibitor's rolling ensemble change. No sync gate; "
        "the leader is not treated specially. Step 5, in id order: `zookeeper-service disable` "
        "and `stop` on the host and its myid moved aside (DESIGN 2), then `zkmigrate manifests "
        "-f PLAN --step replace --server N | kubectl apply --server-side "
        "--field-manager=zkmigrate -f -` (the Service now selects the Pod; the server's "
        "StatefulSet, the governing Service, the Pods' ConfigMap, the PodDisruptionBudget), the "
        "server's hand-made EndpointSlice deleted, and again `srvr` until a `Mode:` line, through "
        "the server's Service. The ConfigMap's zoo.cfg is the host's own file with `dataDir` moved "
        "to `/data`, as zkmigrate's engine derives it (`zkmigrate manifests` reads no host, so it "
        "renders a stand-in with ZooKeeper's sample tickTime; the baseline swaps in the real "
        "file). It polls `srvr` every 200 ms, as the plan's `pollInterval` makes zkmigrate poll."
    )
    w.append("")
    w.append(
        "The baseline is not built to lose. It never has two servers down at once and never moves "
        "on from a server that is still down: ZooKeeper prints `Mode:` only once the server has "
        "joined a quorum and loaded the leader's state. What it lacks is what zkmigrate adds: the "
        "leader last, a gate on the leader counting every follower synced (and on no voter "
        "lagging before a fence), leadership observed again before each action, and a check of "
        "each action's effect. Its `kubectl` gets a fresh discovery cache in each run, so its "
        "discovery requests count alike in every run.\n"
    )

    w.append("## Results\n")
    w.append("### What the workload saw\n")
    w.append("One row per run; \"repeat\" is the round the run belongs to (1 ran first).\n")
    table(
        w,
        ["leader at start", "arm", "repeat", "leader before step 4"] + [m[0] for m in WORKLOAD]
        + ["ephemeral kept", "sessions expired"],
        [
            [POSITIONS[r["position"]], r["arm"], str(r["repeat"]), fmt_int(r.get("leader_before_step4"))]
            + [f(_get(get, r)) for _, get, f in WORKLOAD]
            + [str(r["report"]["ephemeral_survived"]).lower(), fmt_int(r["report"]["sessions_expired"])]
            for r in ordered
        ],
    )
    w.append(
        "From `zklab load report` but for \"unavailable_ms in steps 4+5\": leader elections is "
        "the epoch difference over the workload's run; unavailable_ms the sum of the gaps over "
        "100 ms between acknowledged writes, over the whole run (steps 1-3 included); "
        "\"unavailable_ms in steps 4+5\" the same sum over the gaps that began between the start "
        "of step 4 and the end of step 5, from the workload's record (see \"Where the "
        "unavailability fell\").\n"
    )
    w.append("### What it cost\n")
    table(
        w,
        ["leader at start", "arm", "repeat"] + [m[0] for m in COST] + ["end state"],
        [
            [POSITIONS[r["position"]], r["arm"], str(r["repeat"])]
            + [f(_get(get, r)) for _, get, f in COST]
            + [r["endstate"]]
            for r in ordered
        ],
    )
    w.append(
        "Times are wall time as the benchmark script saw it. Steps 4+5: zkmigrate's `--until "
        "replace` invocation (it also confirms the clients step), or `baseline.sh`. Whole run: "
        "from the start of step 1 to the end of the last migration command (zkmigrate: "
        "finalize; baseline: its last `srvr`). API requests: the increase of the sum of "
        "`apiserver_request_total` (the lab API server's `/metrics`, read with `kubectl get --raw "
        "/metrics` from the operator machine) over the same intervals, less the benchmark's own "
        "reads of `/metrics` in them; the whole run includes steps 1-3, which zkmigrate does in "
        "both arms. The lab's controllers and kubelet run inside the API server's process and "
        "are not counted. Peak RSS: `ru_maxrss` from `getrusage(RUSAGE_CHILDREN)` after the "
        "command exits, that is the largest single process among the command and the "
        "descendants it waited for (ssh included); zkmigrate: the largest over its "
        "invocations of steps 4-5 and finalize; baseline: the largest over `baseline.sh` and "
        "what it ran (kubectl, ssh, nc, `zkmigrate manifests`). The end state is read after the "
        "last command with `zkmigrate status -f PLAN -o json`.\n"
    )

    w.append("### Per position and arm\n")
    w.append(
        "Over the runs of each cell (column \"runs\"); \"all positions\" is over every run of the "
        "arm. The median of an odd number of runs is the middle run; of an even number, the mean "
        "of the two middle runs.\n"
    )
    header = ["leader at start", "arm", "runs"] + [m[0] for m in STATS]

    def stat_rows(fn, col):
        rows = []
        for p in positions:
            for a in arms:
                rs = cell[(a, p)]
                if rs:
                    rows.append([POSITIONS[p], a, str(len(rs))]
                                + [fmt_num(fn([_get(m[1], r) for r in rs]), m[col]) for m in STATS])
        if len(positions) > 1:
            for a in arms:
                rs = runs_of[a]
                rows.append(["all positions", a, str(len(rs))]
                            + [fmt_num(fn([_get(m[1], r) for r in rs]), m[col]) for m in STATS])
        return rows

    w.append("Medians:\n")
    table(w, header, stat_rows(median, 2))
    w.append("Means:\n")
    table(w, header, stat_rows(mean, 3))

    w.append("## zkmigrate / baseline\n")
    w.append(
        "zkmigrate's median divided by the baseline's median, per leader position (the medians "
        "of the table above); the last row divides the two arms' means over all their runs. "
        "Below 1, zkmigrate needed less. `n/a` where a number is missing, `x/0` where the "
        "baseline's is 0.\n"
    )
    rrows = [[POSITIONS[p] + ", medians"]
             + [ratio(med("zkmigrate", p, m[1]), med("baseline", p, m[1])) for m in STATS]
             for p in both]
    if both:
        rrows.append(["all runs, means"]
                     + [ratio(avg(runs_of["zkmigrate"], m[1]), avg(runs_of["baseline"], m[1]))
                        for m in STATS])
    table(w, ["leader at start"] + [m[0] for m in STATS], rrows)

    w.append("## Summary\n")
    order = ", ".join(SHORT[p] for p in both)

    def compare(name, get, decimals, mean_decimals):
        zs = [med("zkmigrate", p, get) for p in both]
        bs = [med("baseline", p, get) for p in both]
        lower = sum(1 for z, b in zip(zs, bs) if z is not None and b is not None and z < b)
        equal = sum(1 for z, b in zip(zs, bs) if z is not None and b is not None and z == b)
        higher = sum(1 for z, b in zip(zs, bs) if z is not None and b is not None and z > b)
        parts = [f"zkmigrate lower with the leader at {lower} of {len(both)} positions"]
        if equal:
            parts.append(f"equal at {equal}")
        if higher:
            parts.append(f"higher at {higher}")
        text = (
            f"- {name}, by median: " + ", ".join(parts)
            + f" (medians zkmigrate {', '.join(fmt_num(z, decimals) for z in zs)}; "
            f"baseline {', '.join(fmt_num(b, decimals) for b in bs)}; leader at {order})."
        )
        pl = sum(1 for _p, _r, z, b in run_pairs
                 if _get(get, z) is not None and _get(get, b) is not None and _get(get, z) < _get(get, b))
        if run_pairs:
            text += (
                f" Run by run (the two arms' runs of the same repeat and position): zkmigrate "
                f"lower in {pl} of {len(run_pairs)} pairs."
            )
        za, ba = avg(runs_of["zkmigrate"], get), avg(runs_of["baseline"], get)
        if za is not None and ba is not None:
            text += (f" Mean over all runs: zkmigrate {fmt_num(za, mean_decimals)}, "
                     f"baseline {fmt_num(ba, mean_decimals)}.")
        zr = [_get(get, r) for r in runs_of["zkmigrate"] if _get(get, r) is not None]
        br = [_get(get, r) for r in runs_of["baseline"] if _get(get, r) is not None]
        if zr and br and len(runs) > len(both) * 2:
            text += (
                f" Range over all runs: zkmigrate {fmt_num(min(zr), 1)}-{fmt_num(max(zr), 1)}, "
                f"baseline {fmt_num(min(br), 1)}-{fmt_num(max(br), 1)}."
            )
        return text

    if both:
        w.append(compare("leader elections", WORKLOAD[0][1], 1, 2))
        w.append(compare("unavailable_ms", WORKLOAD[1][1], 1, 0))
        w.append(compare("unavailable_ms in steps 4+5", unavailable_45, 1, 0))
        w.append(compare("max_gap_ms", WORKLOAD[3][1], 1, 0))
    total_lost = sum(r["report"]["lost"] for r in runs)
    w.append(f"- Acknowledged writes lost, over all {len(runs)} runs: {total_lost}.")
    bad_end = [r for r in runs if not r["endstate"].startswith("ok")]
    w.append(
        "- Every run ended with every server in a Pod, one of them leading."
        if not bad_end
        else "- Runs NOT at the end state: "
        + ", ".join(f"{r['arm']}/{r['position']}/{r['repeat']}" for r in bad_end) + "."
    )
    placed = {"low": 1, "mid": 2, "high": 3}
    moved = [r for r in runs if r["position"] in placed and r.get("leader_before_step4") != placed[r["position"]]]
    if meta["elect"]:
        w.append(
            "- The leader right before step 4 was the placed one in every run."
            if not moved
            else "- The leader right before step 4 was NOT the placed one in: "
            + ", ".join(f"{r['arm']}/{r['position']}/{r['repeat']} (leader {r.get('leader_before_step4')})"
                        for r in moved)
            + "."
        )
    w.append("")

    w.append("## Where the unavailability fell\n")
    w.append(
        "Each gap of over 100 ms between acknowledged writes (what unavailable_ms sums), from the "
        "workload's record (`events.jsonl`), put in the phase and at the action that was running "
        "when the gap began: zkmigrate's actions from its journal (`zkmigrate status -o json`), "
        "the baseline's from its log (`peers/restart/N` lasts from the restart command until the "
        "`srvr` wait begins, `replace/fence/N` while the host is disabled and stopped, and so on). "
        "Gaps of 500 ms or more are listed.\n"
    )
    rows = []
    for r in ordered:
        g = r.get("gaps")
        if not g:
            continue
        big = "; ".join(f"{x['ms']} at {x['during']}" for x in g["gaps"] if x["ms"] >= 500) or "none"
        rows.append([POSITIONS[r["position"]], r["arm"], str(r["repeat"])]
                    + [fmt_int(g["by_phase"][k]) for k in ("steps 1-3", "peers", "replace", "after")]
                    + [big])
    table(w, ["leader at start", "arm", "repeat", "steps 1-3 (ms)", "peers (ms)", "replace (ms)",
              "after (ms)", "gaps of 500 ms or more (ms at action)"], rows)

    long_rows = [(r, x) for r in ordered for x in (r.get("inside") or [])]
    if any(r.get("inside") is not None for r in runs):
        w.append("## Inside the gaps of 500 ms or more\n")
        w.append(
            "Each gap of 500 ms or more taken apart with the run's ZooKeeper logs (the hosts' and "
            "the Pods', kept in the benchmark's work directory). \"Until the drop\": from the last "
            "acknowledgement until the workload's first failed write, from its record: the server "
            "being stopped still holds its connections. \"Lost leader to serving\": in the logs of "
            "the servers that lost their leader then (`Exception when following the leader` or "
            "`PeerState set to LOOKING`), the time until the first of them served again (`Peer "
            "state changed: ... - broadcast`), each read on its own log's clock; \"election\" is "
            "what the new leader logged (`LEADING - LEADER ELECTION TOOK`). \"After serving\": "
            "the rest of the gap (gap - until the drop - lost leader to serving), from the ensemble "
            "serving again until the next acknowledgement: the workload's client reconnecting "
            "(zookeeper-client pauses between rounds of tries, longer after each round) and one "
            "write. \"Time-outs\": the most `Notification time out` lines one of those servers "
            "logged in its election, each a round in which it waited for votes in vain and sent "
            "its vote again. \"First LOOKING\": which of the two servers left went LOOKING "
            "first, told by a LOOKING vote one of them logged receiving while it still followed "
            "(`Notification: my state:FOLLOWING; n.sid:N, n.state:LOOKING`): the new leader, or "
            "the other one; `?` where the logs do not tell. `n/a` where no server lost its leader "
            "(no election in that gap).\n"
        )

        def first(x):
            if x.get("serving_ms") is None:
                return "n/a"
            if x.get("first_looking") is None or x.get("new_leader") is None:
                return "?"
            return (f"new leader ({x['first_looking']})" if x["first_looking"] == x["new_leader"]
                    else f"the other ({x['first_looking']})")

        table(w, ["leader at start", "arm", "repeat", "gap (ms)", "at action", "until the drop (ms)",
                  "election (ms)", "time-outs", "first LOOKING", "lost leader to serving (ms)",
                  "after serving (ms)"],
              [[POSITIONS[r["position"]], r["arm"], str(r["repeat"]), fmt_int(x["ms"]), x["during"],
                fmt_int(x.get("to_drop_ms")), fmt_int(x.get("election_ms")),
                fmt_int(x.get("notification_timeouts")), first(x),
                fmt_int(x.get("serving_ms")), fmt_int(x.get("after_serving_ms"))]
               for r, x in long_rows])

        def spread(xs):
            xs = [x for x in xs if x is not None]
            if not xs:
                return "n/a"
            return f"{fmt_num(median(xs), 0)} ({min(xs)}-{max(xs)})"

        elected = [(r, x) for r, x in long_rows if x.get("serving_ms") is not None]
        rows = []
        for a in arms:
            xs = [x for r, x in elected if r["arm"] == a]
            rows.append([a, str(len([1 for r, x in long_rows if r["arm"] == a])), str(len(xs)),
                         str(sum(1 for x in xs if x.get("notification_timeouts")))]
                        + [spread([x.get(k) for x in xs])
                           for k in ("to_drop_ms", "election_ms", "serving_ms", "after_serving_ms")])
        for label, pick in (("gaps over 1200 ms", lambda x: x["ms"] > 1200),
                            ("gaps of 500-1200 ms", lambda x: x["ms"] <= 1200)):
            xs = [x for r, x in elected if pick(x)]
            if xs:
                rows.append([f"both arms, {label}", "", str(len(xs)),
                             str(sum(1 for x in xs if x.get("notification_timeouts")))]
                            + [spread([x.get(k) for x in xs])
                               for k in ("to_drop_ms", "election_ms", "serving_ms", "after_serving_ms")])
        w.append("Median (and range) over the gaps with an election:\n")
        table(w, ["arm", "gaps of 500 ms or more", "with an election", "of them with a time-out",
                  "until the drop (ms)", "election (ms)", "lost leader to serving (ms)",
                  "after serving (ms)"], rows)

    verbs = {}
    for r in runs:
        for v, n in (r.get("api45_by_verb") or {}).items():
            verbs.setdefault(r["arm"], {}).setdefault(v, 0)
            verbs[r["arm"]][v] += n
    if verbs:
        w.append("## API requests of steps 4+5 by verb\n")
        counts = ", ".join(f"{len(runs_of[a])} of {a}" for a in arms if a in verbs)
        w.append(f"Summed over each arm's runs ({counts}; `APPLY` is server-side apply).\n")
        allv = sorted({v for d in verbs.values() for v in d if any(x.get(v) for x in verbs.values())})
        table(w, ["arm"] + allv,
              [[arm] + [str(verbs[arm].get(v, 0)) for v in allv] for arm in ARMS if arm in verbs])

    w.append("## End state\n")
    w.append(
        "The files the two arms leave are compared by SHA-256 (first 12 hex digits), with the "
        "lab's name, which the lab writes into a comment, replaced: the three hosts' zoo.cfg after "
        "step 4, and the Pods' zoo.cfg in the ConfigMap `zk-config`.\n"
    )
    table(w, ["leader at start", "arm", "repeat", "hosts' zoo.cfg", "Pods' zoo.cfg"],
          [[POSITIONS[r["position"]], r["arm"], str(r["repeat"]), r["host_cfg_sha"], r["pod_cfg_sha"]]
           for r in ordered])
    same = len({r["host_cfg_sha"] for r in runs}) == 1 and len({r["pod_cfg_sha"] for r in runs}) == 1
    w.append(
        ("Both files are the same in every run of both arms." if same
         else "The files DIFFER between runs.") + "\n"
    )

    w.append("## Reading the numbers\n")
    w.append(
        "- Elections. Restarting or fencing the leader costs an election. zkmigrate takes the "
        "leader last in each of steps 4 and 5 and observes it again before each action, so it "
        "pays one election per step: the method's minimum (DESIGN 5.4). The baseline goes in id "
        "order: every time the server it is about to touch happens to lead (at the start, or "
        "after leadership moved in an earlier election), it pays one more. ZooKeeper's election "
        "prefers the highest id among servers with the same zxid, so after a restart the "
        "leadership tends to land on a server the id order has not reached yet."
    )
    w.append(
        "- Unavailability. An election is the longest gap, but its length varies from run to run, "
        "and a follower's restart or fence also costs a short gap when the workload's session is "
        "on that server. unavailable_ms in the report also holds steps 1-3, which are the same "
        "commands in both arms; compare \"unavailable_ms in steps 4+5\" for the arms' own "
        f"share. {repeats} run{'s' if repeats != 1 else ''} per cell on a shared "
        f"{meta['nproc']}-CPU machine: the same election (the same server restarted in the same "
        "state) can cost a different gap in two runs, as the per-run tables show, so the medians "
        "rank the arms on unavailability less surely than on elections; the summary gives the "
        "run-by-run count and the range beside them."
    )
    elected = [x for r in runs for x in (r.get("inside") or []) if x.get("serving_ms") is not None]
    longer = [x for x in elected if x["ms"] > 1200]
    shorter = [x for x in elected if x["ms"] <= 1200]
    def new_first(x):
        return x.get("first_looking") is not None and x.get("first_looking") == x.get("new_leader")

    if longer and shorter:
        by_arm = ", ".join(
            f"{a} {sum(1 for r in runs_of[a] for x in (r.get('inside') or []) if x.get('serving_ms') is not None and x['ms'] > 1200)}"
            f" of {sum(1 for r in runs_of[a] for x in (r.get('inside') or []) if x.get('serving_ms') is not None)}"
            for a in arms)
        w.append(
            f"- Long gaps. Of the {len(elected)} gaps of 500 ms or more with an election, "
            f"{len(longer)} lasted over 1200 ms ({by_arm}). "
            f"{sum(1 for x in longer if x.get('notification_timeouts'))} of those {len(longer)} "
            f"and {sum(1 for x in shorter if x.get('notification_timeouts'))} of the other "
            f"{len(shorter)} had an election round time out; the new leader had gone LOOKING "
            f"first in {sum(1 for x in longer if new_first(x))} of the long ones and "
            f"{sum(1 for x in shorter if new_first(x))} of the others. In the long ones, the new leader logged a "
            f"median election of {fmt_num(median([x['election_ms'] for x in longer]), 0)} ms "
            f"against {fmt_num(median([x['election_ms'] for x in shorter]), 0)} ms in the shorter "
            "ones, the servers served again a median "
            f"{fmt_num(median([x['serving_ms'] for x in longer]), 0)} ms after losing their leader "
            f"against {fmt_num(median([x['serving_ms'] for x in shorter]), 0)} ms, and the "
            "workload's next acknowledgement came a median "
            f"{fmt_num(median([x['after_serving_ms'] for x in longer]), 0)} ms after that against "
            f"{fmt_num(median([x['after_serving_ms'] for x in shorter]), 0)} ms (\"Inside the "
            "gaps of 500 ms or more\")."
        )
    slower = all(_get(COST[0][1], z) > _get(COST[0][1], b) for _p, _r, z, b in run_pairs
                 if _get(COST[0][1], z) is not None and _get(COST[0][1], b) is not None)
    more = all(_get(COST[2][1], z) > _get(COST[2][1], b) for _p, _r, z, b in run_pairs
               if _get(COST[2][1], z) is not None and _get(COST[2][1], b) is not None)
    if run_pairs and slower and more:
        w.append(
            "- Time and requests. zkmigrate took longer over steps 4+5 and made more API requests "
            "in every pair of runs: each action observes before it acts and verifies after, its "
            "gates poll the whole ensemble before each restart and fence, and after each restart "
            "or Pod start it waits until the leader counts the server synced (and, for a Pod, for "
            "the controller's EndpointSlice), where the baseline moves on at the first `Mode:` "
            "line. The baseline's `kubectl apply` sends every object `manifests --server N` "
            "renders for the state after that server (Services, slices, StatefulSets, ConfigMap, "
            "PodDisruptionBudget), zkmigrate only those that change."
        )
    w.append(
        "- Memory. The baseline's peak RSS is that of its largest helper process (`kubectl` or "
        "`zkmigrate manifests`), not of a tool of its own; it is shown for scale."
    )
    w.append("")
    with open(out_path, "w") as f:
        f.write("\n".join(w))


def main():
    cmds = {
        "rss": rss,
        "plan-env": plan_env,
        "pod-config": pod_config,
        "requests": requests,
        "leader": leader,
        "endstate": endstate,
        "gaps": gaps,
        "inside": inside,
        "doc": doc,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
