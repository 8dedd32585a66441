"""Run a short hedging scenario on the GOOG replay and SIGKILL this process at the N-th store write
(``argv: STORE N``; N = 0 runs to the end).  Used by the restart test: a kill can land anywhere the engine
writes its journal, orders or fills, including between journalling an order and sending it."""

from __future__ import annotations

import os
import signal
import sys

from impactlab.calibration.costmodel import calibrate_instrument
from impactlab.data import Store
from impactlab.hedging import HedgingConfig
from impactlab.hedging.scenario import BookSpec, ReplaySource, run_scenario
from impactlab.rl.tasks import load_day

CONFIG = HedgingConfig("GOOG", threshold_shares=400.0, risk_aversion=1e-3, horizons_s=(30.0, 60.0, 120.0))
BOOK = BookSpec(contracts=-400.0)
WINDOW = {"start_s": 600.0, "end_s": 2_400.0, "md_step_s": 5.0}


def kill_at_store_write(kill_at: int) -> None:
    """SIGKILL this process right after its ``kill_at``-th store write (0: never)."""
    if kill_at <= 0:
        return
    writes = {"n": 0}

    def counted(fn):  # type: ignore[no-untyped-def]
        def wrapper(self, *a, **k):  # type: ignore[no-untyped-def]
            out = fn(self, *a, **k)
            writes["n"] += 1
            if writes["n"] >= kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        return wrapper

    Store.write = counted(Store.write)  # type: ignore[method-assign]
    Store.put_state = counted(Store.put_state)  # type: ignore[method-assign]


def main() -> None:
    store_path, kill_at = sys.argv[1], int(sys.argv[2])
    day = load_day("GOOG")
    model = calibrate_instrument(day)
    kill_at_store_write(kill_at)
    res = run_scenario(ReplaySource(day, **WINDOW), CONFIG, store_path, model=model, book=BOOK)
    print("DONE", len(res.hedges))


if __name__ == "__main__":
    main()
