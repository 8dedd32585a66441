"""Fault injection for the scale-out code: a partition fit that fails, or kills its process, on chosen
attempts.  Picklable and importable by worker processes (local or Dask), which a test's own module is not."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["FlakyFit"]


@dataclass(frozen=True)
class FlakyFit:
    """Wraps :func:`~impactlab.calibration.universe.fit_instrument_day`: for each ``SYMBOL/DATE`` in
    ``fail``, the first ``fail[p]`` attempts raise ``OSError`` (or, if ``kill`` is set, end the worker process
    with ``os._exit``); attempts are counted in files under ``state_dir``, so they are seen across processes."""

    state_dir: str
    fail: dict[str, int] = field(default_factory=dict)
    kill: bool = False

    def attempts(self, partition: str) -> int:
        """Attempts seen so far for ``partition``."""
        return len(list(Path(self.state_dir).glob(partition.replace("/", "_") + ".*")))

    def __call__(self, task: Any) -> dict[str, Any]:
        from impactlab.calibration.universe import fit_instrument_day

        name = f"{task.symbol}/{task.date}"
        n = self.attempts(name)
        Path(self.state_dir).mkdir(parents=True, exist_ok=True)
        (Path(self.state_dir) / f"{name.replace('/', '_')}.{n}").touch()
        if n < self.fail.get(name, 0):
            if self.kill:
                os._exit(17)
            raise OSError(f"injected fault on {name}, attempt {n + 1}")
        return fit_instrument_day(task)
