"""``make bench``: run every bench/bench_*.py and print its figures beside the incumbent's.

Each bench module defines ``run(report)`` and calls ``report(what, ours, incumbent, note="")`` once
per figure.  Figures are measured on this machine at run time; nothing is hard-coded.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str]) -> int:
    selected = set(argv)
    rows: list[tuple[str, str, str, str, str]] = []

    def report(what: str, ours: str, incumbent: str, note: str = "") -> None:
        rows.append((section, what, ours, incumbent, note))
        print(f"  {what:<58} {ours:>18}   {incumbent:>22}  {note}", flush=True)

    for path in sorted(HERE.glob("bench_*.py")):
        section = path.stem[len("bench_"):]
        if selected and section not in selected:
            continue
        print(f"\n== {section}  {'(ood-k8s)':>69}   {'(incumbent)':>22}", flush=True)
        module = importlib.import_module(f"bench.{path.stem}")
        started = time.perf_counter()
        module.run(report)
        print(f"  ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
