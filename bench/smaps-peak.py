#!/usr/bin/env python3
"""Where a process's private dirty memory goes at its peak (docs/benchmarks.md, "Memory of a JIT app").

Usage: bench/smaps-peak.py -- COMMAND [ARGS...]
Runs COMMAND, reads /proc/PID/smaps every 50 ms, keeps the snapshot with the most Private_Dirty, and prints (to
stderr) every mapping holding 256 KiB or more of it, biggest first, then the total. How to read the mappings of a
.NET process: anonymous rw-p mappings of 1-8 MiB inside the GC's reservation (next to its big ---p range) are GC
regions (4 MiB basic regions, 32 MiB LOH regions, committed in part); /memfd:doublemapper is the JIT's code and loader
heaps (W^X double mapping); [heap] and 64 MiB-aligned anonymous mappings are glibc malloc (the JIT's own memory among
it); rw-p pages of *.dll are ReadyToRun images' relocated data.
"""
import re
import subprocess
import sys
import time

command = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
if not command:
    sys.exit(__doc__)
process = subprocess.Popen(command)
best_total, best_text = 0, ""
while process.poll() is None:
    try:
        with open(f"/proc/{process.pid}/smaps") as f:
            text = f.read()
    except OSError:
        break
    total = sum(int(kb) for kb in re.findall(r"^Private_Dirty:\s+(\d+)", text, re.M))
    if total > best_total:
        best_total, best_text = total, text
    time.sleep(0.05)

rows, mapping = [], None
for line in best_text.splitlines():
    if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
        mapping = line
    elif line.startswith("Private_Dirty:"):
        kb = int(line.split()[1])
        if kb >= 256:
            low, high = (int(x, 16) for x in mapping.split()[0].split("-"))
            rows.append((kb, high - low, mapping))
for kb, size, mapping in sorted(rows, reverse=True):
    print(f"{kb / 1024:7.2f} MiB dirty of {size / 1048576:8.2f} MiB  {mapping}", file=sys.stderr)
print(f"peak private dirty {best_total / 1024:.1f} MiB", file=sys.stderr)
sys.exit(process.returncode or 0)
