"""Feed handlers: replay LOBSTER days or Binance captures onto the bus as a top-of-book feed, at the
recorded pace, accelerated, or as fast as the bus takes it.

A quote is published when the best bid or ask (price or size) changes: ``{"symbol", "ts_ns", "bid", "ask",
"bid_size", "ask_size"}`` (JSON) on ``md.SYMBOL``; the feed ends with ``{"symbol", "eos": true}`` so a
consumer knows the replay is over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from numpy.typing import NDArray

from impactlab.bus._base import Bus, check_subject
from impactlab.errors import BusError

__all__ = ["FeedStats", "Quotes", "binance_quotes", "lobster_quotes", "replay_feed"]


@dataclass(frozen=True, eq=False)
class Quotes:
    """Top-of-book changes of one instrument: equal-length arrays, time-ordered."""

    symbol: str
    ts_ns: NDArray[np.int64]
    bid: NDArray[np.float64]
    ask: NDArray[np.float64]
    bid_size: NDArray[np.float64]
    ask_size: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.ts_ns.size)

    def window(self, start_ns: int, end_ns: int) -> Quotes:
        """The quotes with ``start_ns <= ts_ns < end_ns``."""
        sel = (self.ts_ns >= start_ns) & (self.ts_ns < end_ns)
        return Quotes(self.symbol, self.ts_ns[sel], self.bid[sel], self.ask[sel], self.bid_size[sel],
                      self.ask_size[sel])  # fmt: skip

    def messages(self) -> Iterator[bytes]:
        for i in range(len(self)):
            yield orjson.dumps({"symbol": self.symbol, "ts_ns": int(self.ts_ns[i]), "bid": float(self.bid[i]),
                                "ask": float(self.ask[i]), "bid_size": float(self.bid_size[i]),
                                "ask_size": float(self.ask_size[i])})  # fmt: skip


def _changes(symbol: str, ts: Any, bp: Any, bz: Any, ap: Any, az: Any) -> Quotes:
    ok = np.isfinite(bp) & np.isfinite(ap) & (bp > 0) & (bp < ap)  # two-sided, uncrossed
    x = np.stack([bp, bz, ap, az], axis=1)[ok]
    t = np.asarray(ts)[ok]
    keep = np.ones(t.size, dtype=bool)
    keep[1:] = (x[1:] != x[:-1]).any(axis=1)
    x, t = x[keep], t[keep]
    return Quotes(symbol, t.astype(np.int64), x[:, 0], x[:, 2], x[:, 1], x[:, 3])


def lobster_quotes(day: Any) -> Quotes:
    """Top-of-book changes of a LOBSTER day."""
    bp, bz = day.bid()
    ap, az = day.ask()
    return _changes(day.symbol, day.ts_ns, bp[:, 0], bz[:, 0], ap[:, 0], az[:, 0])


def binance_quotes(cap: Any) -> Quotes:
    """Top-of-book changes of a Binance capture's rebuilt book (receive times)."""
    from impactlab.book.binance import rebuild_binance

    b = rebuild_binance(cap, depth=1)
    return _changes(cap.symbol.upper(), b.local_ns, b.bid_price[:, 0], b.bid_size[:, 0], b.ask_price[:, 0],
                    b.ask_size[:, 0])  # fmt: skip


@dataclass(frozen=True)
class FeedStats:
    """What a replay sent and how long it took."""

    messages: int
    wall_s: float
    first_seq: int
    last_seq: int

    @property
    def per_s(self) -> float:
        return self.messages / self.wall_s if self.wall_s > 0 else float("inf")


async def replay_feed(
    bus: Bus,
    quotes: Quotes,
    *,
    speed: float | None = None,
    subject: str | None = None,
    eos: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> FeedStats:
    """Publish ``quotes`` on ``md.SYMBOL`` (or ``subject``).

    ``speed``: ``None`` as fast as the bus takes them; 1.0 at the recorded pace; 60.0 a minute of market time
    per second.  Returns the count, the wall time and the ``seq`` range the messages got.
    """
    if speed is not None and not speed > 0:
        raise BusError(f"'speed' must be > 0 or None, got {speed}")
    subj = check_subject(subject or f"md.{quotes.symbol}")
    first = await bus.last_seq() + 1
    t0 = clock()
    ts0 = int(quotes.ts_ns[0]) if len(quotes) else 0
    n = 0
    for i, msg in enumerate(quotes.messages()):
        if speed is not None:
            due = (int(quotes.ts_ns[i]) - ts0) / 1e9 / speed
            wait = due - (clock() - t0)
            if wait > 0:
                await sleep(wait)
        await bus.publish_nowait(subj, msg)
        n += 1
        if n % 4096 == 0:
            await asyncio.sleep(0)  # let the connection's writer run
    if eos:
        await bus.publish(subj, orjson.dumps({"symbol": quotes.symbol, "eos": True}))
    await bus.flush()
    return FeedStats(n, clock() - t0, first, await bus.last_seq())
