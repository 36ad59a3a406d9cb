"""Cold start: a new process from start to first answer, and its memory.

python benchmarks/coldstart.py    # goals: <= 10 s to first answer, server RSS <= 1.5 GB
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import arguments, print_table

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, time
t0 = time.perf_counter()
from assistant.answer import Assistant
a = Assistant.open()
t1 = time.perf_counter()
a.ask("Hur många socialsekreterare arbetar i Stockholms stad?")
t2 = time.perf_counter()
print(json.dumps({"open": t1 - t0, "first": t2 - t1,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    arguments(__doc__)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, check=True)
    total = time.perf_counter() - start
    data = json.loads(out.stdout.strip().splitlines()[-1])
    print_table(
        ["what", "value"],
        [
            ["process start -> first answer (s)", total],
            ["  of which Assistant.open (s)", data["open"]],
            ["  of which first ask (s)", data["first"]],
            ["peak RSS (MB)", data["rss_mb"]],
        ],
    )


if __name__ == "__main__":
    main()
