"""Synthetic instrument-days from the queue-reactive simulator, written as the universe dataset
(:mod:`impactlab.data.universe`), so that calibration over a thousand instruments can be exercised.

Each instrument gets its own price, activity and market-order intensity (drawn once from its seed); each of
its days is a fresh run of :class:`~impactlab.simulation.QueueReactiveMarket` with the published
Cont–Stoikov–Talreja rates scaled by that activity.  Every event is recorded; the top-of-book sizes are
rebuilt from the events (a compiled kernel with a Python twin), and executions become trades with the
aggressor's sign.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data.lobster import midnight_ns
from impactlab.data.universe import InstrumentDay, PartitionKey, write_instrument_day
from impactlab.errors import SimulationError
from impactlab.simulation import _kernels as k
from impactlab.simulation.flow import QueueReactiveMarket, QueueReactiveParams

__all__ = ["SyntheticUniverse", "synthetic_instrument_day", "write_synthetic_universe"]

NS = 1_000_000_000
OPEN_S = 34_200  # 09:30 New York


@dataclass(frozen=True)
class SyntheticUniverse:
    """How a synthetic universe is drawn.

    Parameters
    ----------
    instruments, days
        Universe size: ``instruments`` symbols (``SYN0000``…) over ``days`` business days from ``start``.
    session_s
        Seconds simulated per day from 09:30.
    activity
        Range of the factor that scales every published CST rate, per instrument.
    market_share
        Range of the extra factor on the market-order rate (how much of the flow is aggressive).
    price
        Range of the initial price (log-uniform), currency; the tick is 0.01.
    seed
        One seed for the universe; an instrument-day's draw depends only on it, the instrument and the day.
    """

    instruments: int = 10
    days: int = 1
    session_s: float = 23_400.0
    activity: tuple[float, float] = (0.15, 0.4)
    market_share: tuple[float, float] = (0.7, 1.5)
    price: tuple[float, float] = (10.0, 500.0)
    start: dt.date = dt.date(2024, 1, 2)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.instruments < 1 or self.days < 1:
            raise SimulationError(f"need >= 1 instrument and day, got {self.instruments} and {self.days}")
        if not 0 < self.session_s <= 86_400 - OPEN_S:
            raise SimulationError(f"'session_s' must be in (0, {86_400 - OPEN_S}], got {self.session_s}")
        for name in ("activity", "market_share", "price"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise SimulationError(f"'{name}' must be a range 0 < low <= high, got {(lo, hi)}")

    def dates(self) -> list[dt.date]:
        out: list[dt.date] = []
        d = self.start
        while len(out) < self.days:
            if d.weekday() < 5:
                out.append(d)
            d += dt.timedelta(days=1)
        return out

    def symbol(self, i: int) -> str:
        return f"SYN{i:04d}"


def _draw(u: SyntheticUniverse, i: int) -> tuple[float, float, float]:
    rng = np.random.default_rng([u.seed, i])
    lo, hi = u.price
    price = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return round(price, 2), float(rng.uniform(*u.activity)), float(rng.uniform(*u.market_share))


def synthetic_instrument_day(u: SyntheticUniverse, i: int, day_index: int) -> InstrumentDay:
    """Simulate instrument ``i`` on day ``day_index`` of ``u``."""
    price, act, mkt = _draw(u, i)
    date = u.dates()[day_index]
    base = QueueReactiveParams.published()
    params = QueueReactiveParams(
        tuple(x * act for x in base.limit_rate_per_s), tuple(x * act for x in base.cancel_rate_per_s),
        base.market_rate_per_s * act * mkt, source=f"published CST rates × {act:.3f} (market orders × {mkt:.3f})",
    )  # fmt: skip
    open_ns = midnight_ns(date) + OPEN_S * NS
    tick = 0.01
    m = QueueReactiveMarket(params, price=price, tick_size=tick, record=True, seed=int(
        np.random.SeedSequence([u.seed, i, day_index]).generate_state(1)[0]), start_ns=open_ns)  # fmt: skip
    q0 = m._q.copy()  # the book before the first event
    base_tick = int(m._st[k.ST_BASE])
    m.run_to(open_ns + int(u.session_s * NS))
    rec = m.records()
    n = len(rec)
    if n == 0:
        raise SimulationError(f"{u.symbol(i)} {date}: the simulation produced no events")

    def ladder(px: Any) -> NDArray[np.int64]:
        x = np.asarray(px, float)
        return np.where(np.isfinite(x), np.rint(np.nan_to_num(x) / tick) - base_tick, -1).astype(np.int64)

    bid_size, ask_size = np.zeros(n), np.zeros(n)
    k.l1_from_events(q0, rec["side"].to_numpy(np.int64), ladder(rec["price"]), rec["size"].to_numpy(float),
                     rec["type"].to_numpy(np.int64), ladder(rec["best_bid"]), ladder(rec["best_ask"]), bid_size,
                     ask_size)  # fmt: skip
    ts = rec["t_ns"].to_numpy(np.int64)
    ex = np.flatnonzero(rec["type"].to_numpy() == 4)
    return InstrumentDay(
        PartitionKey(u.symbol(i), date),
        {"ts_ns": ts, "bid_price": rec["best_bid"].to_numpy(float), "bid_size": bid_size,
         "ask_price": rec["best_ask"].to_numpy(float), "ask_size": ask_size},
        {"ts_ns": ts[ex], "price": rec["price"].to_numpy(float)[ex], "size": rec["size"].to_numpy(float)[ex],
         "sign": (-rec["side"].to_numpy(np.int64)[ex]).astype(np.int8), "pre_state": ex - 1},
        tick_size=tick, session_open_ns=open_ns, session_close_ns=open_ns + int(u.session_s * NS),
        source=f"synthetic: {params.source}, seed {u.seed}",
        extra={"price": price, "activity": act, "market_share": mkt},
    )  # fmt: skip


def write_synthetic_universe(
    u: SyntheticUniverse, out_dir: str | Path, *, on_written: Callable[[str], None] | None = None
) -> list[str]:
    """Simulate and write every instrument-day of ``u`` under ``out_dir``; returns the partitions."""
    out = []
    for i in range(u.instruments):
        for d in range(u.days):
            day = synthetic_instrument_day(u, i, d)
            write_instrument_day(out_dir, day)
            out.append(str(day.key))
            if on_written:
                on_written(str(day.key))
    return out
