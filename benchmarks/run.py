"""Run every benchmark and write BENCHMARKS.md.

Usage: ``python benchmarks/run.py [--out BENCHMARKS.md] [--quick] [--only bench_hedging ...]`` (``make bench``).
``--only`` runs the named modules and replaces their sections (by title) in the existing file, keeping the rest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the process is pinned to one core: no OpenMP oversubscription
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (
    bench_binance,
    bench_book,
    bench_bus,
    bench_calibration,
    bench_costmodel,
    bench_data,
    bench_execution,
    bench_faults,
    bench_hedging,
    bench_load,
    bench_ml,
    bench_rl,
    bench_schedules,
    bench_service,
    bench_simulation,
    bench_universe,
)
from benchmarks._common import pin_one_core

BENCHES = [
    bench_book,
    bench_binance,
    bench_data,
    bench_load,
    bench_calibration,
    bench_ml,
    bench_schedules,
    bench_simulation,
    bench_rl,
    bench_execution,
    bench_faults,
    bench_hedging,
    bench_costmodel,
    bench_service,
    bench_universe,
    bench_bus,
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="BENCHMARKS.md")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and files")
    ap.add_argument("--only", nargs="+", metavar="MODULE", help="run these modules; keep the file's other sections")
    args = ap.parse_args()
    names = {b.__name__.split(".")[-1]: b for b in BENCHES}
    unknown = set(args.only or ()) - set(names)
    if unknown:
        ap.error(f"unknown benchmark module(s) {sorted(unknown)}; known: {sorted(names)}")
    pinned = pin_one_core()
    sections = []
    for bench in [names[n] for n in args.only] if args.only else BENCHES:
        print(f"running {bench.__name__} …", file=sys.stderr, flush=True)
        got = bench.run(quick=args.quick)
        for sec in got if isinstance(got, list) else [got]:
            sections.append(sec)
            print(sec.markdown(), file=sys.stderr, flush=True)
    head = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python benchmarks/run.py --out BENCHMARKS.md`); do not edit by hand.",
        "Every benchmark checks its result before timing it and times its baseline in the same run, on the same",
        "machine: ratios are the figures to trust on shared, noisy machines.",
        "",
        f"- Run: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} logical CPUs, process {pinned}.",
        "",
    ]
    body = [s.markdown() for s in sections]
    if args.only:
        body = _merge(Path(args.out), body)
        head[-2] += f" Partial run of {', '.join(args.only)}; the other sections are from earlier runs."
    Path(args.out).write_text("\n".join(head) + "\n" + "\n".join(body))
    print(f"wrote {args.out}", file=sys.stderr)


def _merge(path: Path, fresh: list[str]) -> list[str]:
    """The sections of ``path`` (each from its ``## `` title on) with those titled as in ``fresh`` replaced, in
    place; fresh sections with new titles go at the end."""
    old = path.read_text().split("\n## ") if path.exists() else [""]
    kept = ["## " + s.rstrip("\n") + "\n" for s in old[1:]]
    title = {s.splitlines()[0]: i for i, s in enumerate(kept)}
    for sec in fresh:
        i = title.get(sec.splitlines()[0])
        if i is None:
            kept.append(sec)
        else:
            kept[i] = sec
    return kept


if __name__ == "__main__":
    main()
