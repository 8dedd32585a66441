"""Independent plain-Python implementations, used as test oracles and as benchmark baselines."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from impactlab.data.lobster import DUMMY_ASK, DUMMY_BID, LobsterDay

__all__ = ["reference_lobster_replay"]


def reference_lobster_replay(day: LobsterDay) -> tuple[int, int]:
    """Replay a LOBSTER day with dict books; returns ``(mismatched_rows, rows_with_level_from_beyond_depth)``.

    Written independently of the compiled kernel: each side is a ``{price: size}`` dict holding only
    the visible levels.  After each message the dict is cut to the top L levels and compared with the
    file row; a file level worse than every level the dict holds, arriving when the dict holds fewer
    than L levels after a deletion, is taken from the file (it came from beyond the depth).
    """
    L = day.levels
    book = day.book
    n = len(day)

    def side_levels(row: NDArray[np.int64], off: int, dummy: int) -> dict[int, int]:
        return {int(row[4 * k + off]): int(row[4 * k + off + 1]) for k in range(L) if row[4 * k + off] != dummy}

    def top(d: dict[int, int], bid: bool) -> list[tuple[int, int]]:
        return sorted(d.items(), reverse=bid)[:L]

    # state before message 0: row 0 with message 0 undone
    asks = side_levels(book[0], 0, DUMMY_ASK)
    bids = side_levels(book[0], 2, DUMMY_BID)
    et0, s0, p0, q0 = int(day.event_type[0]), int(day.side[0]), int(day.price_e4[0]), int(day.size[0])
    d0 = bids if s0 == 1 else asks
    if et0 == 1:
        d0[p0] = d0.get(p0, 0) - q0
        if d0[p0] <= 0:
            del d0[p0]
    elif et0 in (2, 3, 4):
        d0[p0] = d0.get(p0, 0) + q0
    mismatched = beyond = 0
    for k in range(n):
        et, s, p, q = int(day.event_type[k]), int(day.side[k]), int(day.price_e4[k]), int(day.size[k])
        d = bids if s == 1 else asks
        deleted = {1: False, -1: False}
        if et == 1:
            d[p] = d.get(p, 0) + q
        elif et in (2, 3, 4):
            d[p] = d.get(p, 0) - q
            if d[p] <= 0:
                del d[p]
                deleted[s] = True
        row = book[k]
        file_a = [(int(row[4 * j]), int(row[4 * j + 1])) for j in range(L) if row[4 * j] != DUMMY_ASK]
        file_b = [(int(row[4 * j + 2]), int(row[4 * j + 3])) for j in range(L) if row[4 * j + 2] != DUMMY_BID]
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
