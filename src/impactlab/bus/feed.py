"""Feed handlers: replay LOBSTER days or Binance captures onto the bus as a top-of-book feed, at the
recorded pace, accelerated, or as fast as the bus takes it.

A quote is published when the best bid or ask (price or size) changes: ``{"symbol", "ts_ns", "bid", "ask",
"bid_size", "ask_size"}`` (JSON) on ``md.SYMBOL``; the feed ends with ``{"symbol", "eos": true}`` so a
consumer knows the replay is over.

A message carries one quote (an object) or a *frame* of quotes (an array, oldest first), as an exchange
packet carries several updates: framing is what lets one Python publisher and one Python consumer move
hundreds of thousands of quotes a second, since the bus's cost is per message.  In a paced replay a frame
holds the quotes due at the same wake-up (up to ``frame``), so framing adds no delay; :func:`decode_quotes`
reads either form.
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

__all__ = ["FeedStats", "Quotes", "day_quotes", "decode_quotes", "replay_feed"]


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

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Quotes ``start:stop`` as message objects."""
        sl = slice(start, stop)
        cols = zip(self.ts_ns[sl].tolist(), self.bid[sl].tolist(), self.ask[sl].tolist(),
                   self.bid_size[sl].tolist(), self.ask_size[sl].tolist(), strict=True)  # fmt: skip
        return [{"symbol": self.symbol, "ts_ns": t, "bid": b, "ask": a, "bid_size": bz, "ask_size": az}
                for t, b, a, bz, az in cols]  # fmt: skip

    def messages(self, frame: int = 1) -> Iterator[bytes]:
        """The quotes as bus messages: one object each (``frame=1``) or arrays of up to ``frame``."""
        for i in range(0, len(self), frame):
            rows = self.rows(i, i + frame)
            yield orjson.dumps(rows[0] if frame == 1 else rows)


def decode_quotes(data: bytes) -> list[Any]:
    """The quotes in one market-data message (a quote object or a frame: an array of them), oldest first;
    :class:`~impactlab.errors.BusError` if it is not JSON."""
    try:
        x = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise BusError(f"market-data message is not JSON: {bytes(data[:80])!r}") from exc
    return x if isinstance(x, list) else [x]


def _changes(symbol: str, ts: Any, bp: Any, bz: Any, ap: Any, az: Any) -> Quotes:
    ok = np.isfinite(bp) & np.isfinite(ap) & (bp > 0) & (bp < ap)  # two-sided, uncrossed
    x = np.stack([bp, bz, ap, az], axis=1)[ok]
    t = np.asarray(ts)[ok]
    keep = np.ones(t.size, dtype=bool)
    keep[1:] = (x[1:] != x[:-1]).any(axis=1)
    x, t = x[keep], t[keep]
    return Quotes(symbol, t.astype(np.int64), x[:, 0], x[:, 2], x[:, 1], x[:, 3])


def day_quotes(day: Any) -> Quotes:
    """Top-of-book changes of a market day from any source (the desk's clock: receive times where the
    source has them)."""
    bp, bz = day.bid()
    ap, az = day.ask()
    return _changes(day.symbol.upper(), day.ts_ns, bp[:, 0], bz[:, 0], ap[:, 0], az[:, 0])


@dataclass(frozen=True)
class FeedStats:
    """What a replay sent and how long it took."""

    messages: int
    wall_s: float
    first_seq: int
    last_seq: int
    quotes: int = -1  # -1: as many as messages (one quote each)

    @property
    def per_s(self) -> float:
        """Quotes per second."""
        n = self.messages if self.quotes < 0 else self.quotes
        return n / self.wall_s if self.wall_s > 0 else float("inf")


async def replay_feed(
    bus: Bus,
    quotes: Quotes,
    *,
    speed: float | None = None,
    frame: int = 1,
    subject: str | None = None,
    eos: bool = True,
    stamp: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Any] = asyncio.sleep,
    wall_ns: Callable[[], int] = time.time_ns,
) -> FeedStats:
    """Publish ``quotes`` on ``md.SYMBOL`` (or ``subject``).

    ``speed``: ``None`` as fast as the bus takes them; 1.0 at the recorded pace; 60.0 a minute of market time
    per second.  ``frame``: quotes per message at most (1: one object per quote; more: arrays, see the
    module doc).  ``stamp``: each quote also carries ``sent_ns``, the wall-clock time (``wall_ns``) its
    message was handed to the bus, for latency monitoring.  Returns the counts, the wall time and the ``seq``
    range the messages got.
    """
    if speed is not None and not speed > 0:
        raise BusError(f"'speed' must be > 0 or None, got {speed}")
    if not (isinstance(frame, int) and 1 <= frame <= 10_000):
        raise BusError(f"'frame' must be an integer in [1, 10000], got {frame!r}")
    subj = check_subject(subject or f"md.{quotes.symbol}")
    first = await bus.last_seq() + 1
    t0 = clock()
    ts = quotes.ts_ns
    n_q = len(quotes)
    ts0 = int(ts[0]) if n_q else 0
    i = n_msg = 0
    while i < n_q:
        j = min(i + frame, n_q)
        if speed is not None:
            wait = (int(ts[i]) - ts0) / 1e9 / speed - (clock() - t0)
            if wait > 0:
                await sleep(wait)
            if frame > 1:  # everything due by now goes in this frame
                now_ns = ts0 + int((clock() - t0) * speed * 1e9)
                j = min(j, max(i + 1, int(np.searchsorted(ts, now_ns, side="right"))))
        rows = quotes.rows(i, j)
        if stamp:
            now = wall_ns()
            for r in rows:
                r["sent_ns"] = now
        await bus.publish_nowait(subj, orjson.dumps(rows[0] if frame == 1 else rows))
        n_msg += 1
        if n_msg % 4096 == 0:
            await asyncio.sleep(0)  # let the connection's writer run
        i = j
    if eos:
        await bus.publish(subj, orjson.dumps({"symbol": quotes.symbol, "eos": True}))
    await bus.flush()
    return FeedStats(n_msg, clock() - t0, first, await bus.last_seq(), quotes=n_q)
