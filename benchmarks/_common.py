"""Shared helpers for the benchmarks: timing, memory, and result rows."""

from __future__ import annotations

import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from impactlab.config import data_dir

DATA = data_dir()


def pin_one_core() -> str:
    """Pin this process to one CPU so 'one core' means one core; returns a description."""
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        return "not pinned"


def timed(fn: Callable[[], Any], *, repeat: int = 5, warmup: int = 1) -> tuple[float, float, Any]:
    """Run ``fn`` ``warmup + repeat`` times; returns (median s, best s, last result)."""
    result = None
    for _ in range(warmup):
        result = fn()
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), result


def per_call(fn: Callable[[], Any], *, number: int = 1000, repeat: int = 7) -> float:
    """Median over ``repeat`` batches of the mean time of one call in a batch of ``number`` (for calls of
    microseconds, where timing one call at a time measures the timer and a cold cache)."""
    import timeit

    fn()
    return statistics.median(t / number for t in timeit.repeat(fn, number=number, repeat=repeat))


def peak_traced_mb(fn: Callable[[], Any]) -> float:
    """Peak memory traced by tracemalloc (Python and NumPy allocations) while ``fn`` runs, MB."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6


@dataclass
class Section:
    """One benchmark's table for BENCHMARKS.md."""

    title: str
    command: str
    baseline: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(c) for c in cells])

    def markdown(self) -> str:
        out = [f"## {self.title}", "", f"Command: `{self.command}`  ", f"Baseline: {self.baseline}", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "---|" * len(self.columns))
        out += ["| " + " | ".join(r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:,.2f} M/s" if x >= 1e5 else f"{x:,.0f} /s"
