"""Writes the crash matrix's result (JSON lines from tests/crash_lab.rs)
into docs/reliability.md, between the markers
<!-- matrix result --> and <!-- /matrix result -->."""
import datetime
import json
import os
import platform
import subprocess
import sys

result_file, elapsed, doc = sys.argv[1], int(sys.argv[2]), sys.argv[3]
runs = [json.loads(line) for line in open(result_file) if line.strip()]
if not runs:
    sys.exit("crash matrix: no result was written")

commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                        text=True).stdout.strip() or "unknown"
mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
lines = [
    f"Last run: {datetime.date.today().isoformat()}, `scripts/crash-matrix.sh`, "
    f"{elapsed // 60} min {elapsed % 60} s on {os.cpu_count()} cores, "
    f"{mem_kib // (1024 * 1024)} GiB ({platform.machine()}), commit {commit}.",
    "",
    "| target | boundaries crashed at, then resumed | passed | acked | lost | elections | ephemeral survived | sessions expired | time |",
    "|---|---|---|---|---|---|---|---|---|",
]
for r in runs:
    rep = r["report"]
    k = r["boundaries"]
    lines.append(
        f"| {r['target']} | {k} | {k} of {k} | {rep['acked']} | {rep['lost']} | {rep['elections']} "
        f"| {str(rep['ephemeral_survived']).lower()} | {rep['sessions_expired']} | {r['seconds']} s |"
    )
lines.append("")
lines.append("<details><summary>The boundaries, in the order crashed at</summary>")
lines.append("")
for r in runs:
    lines.append(f"{r['target']}: " + ", ".join(f"`{b}`" for b in r["crashed_at"]))
    lines.append("")
lines.append("</details>")

text = open(doc).read()
start, end = "<!-- matrix result -->", "<!-- /matrix result -->"
if start not in text or end not in text:
    sys.exit(f"{doc} lacks the markers {start} {end}")
before = text.split(start)[0]
after = text.split(end)[1]
open(doc, "w").write(before + start + "\n" + "\n".join(lines) + "\n" + end + after)
