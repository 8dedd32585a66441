"""Run the hedging engine live on a NATS bus (``argv: URL STORE N``) and SIGKILL this process at the N-th
store write (N = 0 runs to the feed's end).  Used by the bus restart test."""

from __future__ import annotations

import asyncio
import sys

from impactlab.bus import NatsBus
from impactlab.calibration.costmodel import calibrate_instrument
from impactlab.hedging.live import run_live
from impactlab.hedging.scenario import ReplaySource
from impactlab.rl.tasks import load_day
from tests.hedging.killable_run import BOOK, CONFIG, WINDOW, kill_at_store_write


async def main() -> None:
    url, store_path, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    day = load_day("GOOG")
    model = calibrate_instrument(day)
    kill_at_store_write(kill_at)
    bus = await NatsBus.connect(url)
    stats = await run_live(bus, ReplaySource(day, **WINDOW), CONFIG, store_path, model=model, book=BOOK,
                           idle_timeout_s=20.0)  # fmt: skip
    await bus.close()
    print("DONE" if stats.finished else "IDLE", stats.hedges, stats.last_seq)


if __name__ == "__main__":
    asyncio.run(main())
