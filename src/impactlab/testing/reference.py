"""Independent plain-Python implementations, used as test oracles and as benchmark baselines."""

from __future__ import annotations

import numpy as np

from impactlab.data.market import EventFlag, EventKind, MarketDay

__all__ = ["ReferenceL3Book", "reference_replay"]


def reference_replay(day: MarketDay) -> tuple[int, int]:
    """Replay a day's order events with dict books against its recorded states (LOBSTER); returns
    ``(mismatched_rows, rows_with_level_from_beyond_depth)``.

    Written independently of the compiled kernel: each side is a ``{price: size}`` dict holding only
    the visible levels.  After each message the dict is cut to the top L levels and compared with the
    file row; a file level worse than every level the dict holds, arriving when the dict holds fewer
    than L levels after a deletion, is taken from the file (it came from beyond the depth).
    """
    L = day.depth
    n = len(day)
    bid_t, ask_t = day.book.ticks(day.tick_size)
    bz = np.rint(day.book.bid_size).astype(np.int64)
    az = np.rint(day.book.ask_size).astype(np.int64)
    bid_ok = np.isfinite(day.book.bid_price) & (bz > 0)
    ask_ok = np.isfinite(day.book.ask_price) & (az > 0)
    ev = day.events
    hidden = (ev.flags & np.uint8(EventFlag.HIDDEN)) != 0
    et_all = np.zeros(len(ev), np.int64)
    et_all[ev.kind == EventKind.ADD] = 1
    et_all[ev.kind == EventKind.CANCEL] = 2
    et_all[(ev.kind == EventKind.FILL) & ~hidden] = 4
    sz_all = np.rint(ev.size).astype(np.int64)

    def levels_of(k: int, side: int) -> list[tuple[int, int]]:
        px, sz, ok = (bid_t, bz, bid_ok) if side == 1 else (ask_t, az, ask_ok)
        return [(int(px[k, j]), int(sz[k, j])) for j in range(L) if ok[k, j]]

    def top(d: dict[int, int], bid: bool) -> list[tuple[int, int]]:
        return sorted(d.items(), reverse=bid)[:L]

    # state before message 0: row 0 with message 0 undone
    asks = dict(levels_of(0, -1))
    bids = dict(levels_of(0, 1))
    et0, s0, p0, q0 = int(et_all[0]), int(ev.side[0]), int(ev.price_ticks[0]), int(sz_all[0])
    d0 = bids if s0 == 1 else asks
    if et0 == 1:
        d0[p0] = d0.get(p0, 0) - q0
        if d0[p0] <= 0:
            del d0[p0]
    elif et0 in (2, 3, 4):
        d0[p0] = d0.get(p0, 0) + q0
    mismatched = beyond = 0
    for k in range(n):
        et, s, p, q = int(et_all[k]), int(ev.side[k]), int(ev.price_ticks[k]), int(sz_all[k])
        d = bids if s == 1 else asks
        deleted = {1: False, -1: False}
        if et == 1:
            d[p] = d.get(p, 0) + q
        elif et in (2, 3, 4):
            d[p] = d.get(p, 0) - q
            if d[p] <= 0:
                del d[p]
                deleted[s] = True
        file_a = levels_of(k, -1)
        file_b = levels_of(k, 1)
        row_bad = False
        row_beyond = False
        for side, dd, fl, bid in ((-1, asks, file_a, False), (1, bids, file_b, True)):
            mine = top(dd, bid)
            n_known = len(mine)
            # a deletion leaves the worst visible slot unknown: take it from the file
            if deleted[side] and n_known < len(fl) and mine == fl[:n_known]:
                mine = fl[: n_known + 1]
                if len(fl) > n_known:
                    row_beyond = True
            if mine != fl:
                row_bad = True
            dd.clear()
            dd.update(dict(fl))
        mismatched += row_bad
        beyond += row_beyond
    return mismatched, beyond


class ReferenceL3Book:
    """A plain-Python order-by-order book (dicts and lists), written independently of the compiled kernel.

    Semantics as :mod:`impactlab.data._l3`: an add joins the back of its price's queue; a cancel removes
    size in place; a modify that changes the price or raises the size goes to the back of the new price's
    queue, one that lowers the size keeps its place; a clear empties the book; trades and fills change
    nothing.  ``action`` codes: 1 add, 2 cancel, 3 modify, 4 trade, 5 fill, 6 clear.
    """

    def __init__(self) -> None:
        self.queues: dict[tuple[int, float], list[list[float]]] = {}  # (side, price) -> [[order_id, size], ...]
        self.where: dict[int, tuple[int, float]] = {}

    def _remove(self, oid: int) -> list[float]:
        key = self.where.pop(oid)
        q = self.queues[key]
        i = next(j for j, o in enumerate(q) if o[0] == oid)
        entry = q.pop(i)
        if not q:
            del self.queues[key]
        return entry

    def apply(self, action: int, side: int, price: float, size: float, oid: int) -> None:
        """Apply one event."""
        if action == 6:
            self.queues.clear()
            self.where.clear()
        elif action == 1:
            if oid in self.where:
                return
            if size > 0:
                self.queues.setdefault((side, price), []).append([oid, size])
                self.where[oid] = (side, price)
        elif action == 2:
            if oid not in self.where:
                return
            q = self.queues[self.where[oid]]
            entry = next(o for o in q if o[0] == oid)
            entry[1] -= min(size, entry[1])
            if entry[1] <= 0:
                self._remove(oid)
        elif action == 3:
            if oid not in self.where:
                if size > 0:
                    self.queues.setdefault((side, price), []).append([oid, size])
                    self.where[oid] = (side, price)
                return
            key = self.where[oid]
            entry = next(o for o in self.queues[key] if o[0] == oid)
            if key != (side, price) or size > entry[1]:
                self._remove(oid)
                if size > 0:
                    self.queues.setdefault((side, price), []).append([oid, size])
                    self.where[oid] = (side, price)
            elif size == 0:
                self._remove(oid)
            else:
                entry[1] = size

    def levels(self, side: int) -> list[tuple[float, float, int]]:
        """``(price, size, orders)`` best first."""
        keys = sorted((p for s, p in self.queues if s == side), reverse=side == 1)
        return [(p, sum(o[1] for o in self.queues[(side, p)]), len(self.queues[(side, p)])) for p in keys]

    def queue(self, side: int, price: float) -> list[tuple[int, float]]:
        """``(order_id, size)`` in priority order."""
        return [(int(o[0]), o[1]) for o in self.queues.get((side, price), [])]
