"""Order-by-order (L3) book with exact FIFO queues: a pure kernel with its plain-Python twin.

Orders live in dense slots (order ids mapped once, up front, by ``np.unique``) and price levels in dense
ranks over the prices that occur, so every operation is O(1) except moving the best price past empty
ranks.  Each level is a doubly linked FIFO queue of order slots.

Semantics (Databento MBO, and any order-by-order feed):

* ``ADD`` appends the order at the tail of its level.
* ``CANCEL`` removes ``size`` from the order (the order leaves the book at zero) and keeps its place.
* ``MODIFY`` sets the order's price and size: a price change or a size increase loses priority (the order
  moves to the tail of its new level), a size decrease keeps it.  A modify of an unknown order adds it.
* ``CLEAR`` empties the book.  ``TRADE`` and ``FILL`` change nothing: the venue reports the resting
  order's reduction as a following cancel or modify.

Status codes returned per event: 0 applied, 1 add of a live order (ignored), 2 cancel of an unknown order
(ignored), 3 cancel of more than the order held (clipped), 4 modify of an unknown order (added).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data._kernels import compile_with

A_NONE, A_ADD, A_CANCEL, A_MODIFY, A_TRADE, A_FILL, A_CLEAR = 0, 1, 2, 3, 4, 5, 6

I64 = NDArray[np.int64]


def l3_unlink_py(
    slot: int,
    o_side: NDArray[np.int8],
    o_rank: I64,
    o_size: I64,
    o_prev: I64,
    o_next: I64,
    o_live: NDArray[np.bool_],
    head: I64,
    tail: I64,
    lvl_qty: I64,
    lvl_cnt: I64,
    best: I64,
) -> None:
    """Take a live order out of its queue (its level's totals and the best price follow)."""
    s = o_side[slot]
    r = o_rank[slot]
    p = o_prev[slot]
    n = o_next[slot]
    if p >= 0:
        o_next[p] = n
    else:
        head[s, r] = n
    if n >= 0:
        o_prev[n] = p
    else:
        tail[s, r] = p
    lvl_qty[s, r] -= o_size[slot]
    lvl_cnt[s, r] -= 1
    o_live[slot] = False
    if lvl_cnt[s, r] == 0 and r == best[s]:
        n_rank = lvl_cnt.shape[1]
        if s == 0:
            i = r - 1
            while i >= 0 and lvl_cnt[0, i] == 0:
                i -= 1
            best[0] = i
        else:
            i = r + 1
            while i < n_rank and lvl_cnt[1, i] == 0:
                i += 1
            best[1] = i


def l3_append_py(
    slot: int,
    s: int,
    r: int,
    size: int,
    o_side: NDArray[np.int8],
    o_rank: I64,
    o_size: I64,
    o_prev: I64,
    o_next: I64,
    o_live: NDArray[np.bool_],
    head: I64,
    tail: I64,
    lvl_qty: I64,
    lvl_cnt: I64,
    best: I64,
) -> None:
    """Put an order at the tail of the queue at rank ``r`` on side ``s`` (0 bid, 1 ask)."""
    o_side[slot] = s
    o_rank[slot] = r
    o_size[slot] = size
    o_live[slot] = True
    t = tail[s, r]
    o_prev[slot] = t
    o_next[slot] = -1
    if t >= 0:
        o_next[t] = slot
    else:
        head[s, r] = slot
    tail[s, r] = slot
    lvl_qty[s, r] += size
    lvl_cnt[s, r] += 1
    if (s == 0 and r > best[0]) or (s == 1 and r < best[1]):
        best[s] = r


def l3_top_py(
    s: int,
    start: int,
    step: int,
    lvl_cnt: I64,
    lvl_qty: I64,
    depth: int,
    top_rank: I64,
    top_qty: I64,
    row: int,
    col: int,
) -> None:
    """Write the ``depth`` best non-empty levels of side ``s`` (walking ranks from ``start`` by ``step``) into
    ``top_rank[row, col:col + depth]`` / ``top_qty`` (−1 / 0 past the last level)."""
    n_rank = lvl_cnt.shape[1]
    k = 0
    i = start
    while k < depth and 0 <= i < n_rank:
        if lvl_cnt[s, i] > 0:
            top_rank[row, col + k] = i
            top_qty[row, col + k] = lvl_qty[s, i]
            k += 1
        i += step
    while k < depth:
        top_rank[row, col + k] = -1
        top_qty[row, col + k] = 0
        k += 1


def l3_replay_py(
    action: NDArray[np.int8],
    side: NDArray[np.int8],
    rank: I64,
    size: I64,
    slot: I64,
    record: NDArray[np.bool_],
    o_side: NDArray[np.int8],
    o_rank: I64,
    o_size: I64,
    o_prev: I64,
    o_next: I64,
    o_live: NDArray[np.bool_],
    head: I64,
    tail: I64,
    lvl_qty: I64,
    lvl_cnt: I64,
    best: I64,
    depth: int,
    out_row: I64,
    top_rank: I64,
    top_qty: I64,
    status: NDArray[np.int8],
) -> int:
    """Apply every event; after each event with ``record`` set, write the top ``depth`` levels.

    ``side`` is +1 bid / −1 ask; ``rank`` the dense price rank; ``slot`` the dense order slot.  Row
    ``out_row[e]`` of ``top_rank``/``top_qty`` receives ``[bid_1..bid_depth, ask_1..ask_depth]`` (−1 / 0 where
    empty).  Returns the number of recorded rows.
    """
    n_rank = lvl_cnt.shape[1]
    rows = 0
    for e in range(action.shape[0]):
        a = action[e]
        st = 0
        if a == 1 or a == 3:
            s = 0 if side[e] == 1 else 1
            k = slot[e]
            if a == 1 and o_live[k]:
                st = 1
            else:
                queue = False  # the order goes to the back of the queue at its (new) price
                if not o_live[k]:
                    st = 4 if a == 3 else 0
                    queue = True
                elif o_side[k] != s or o_rank[k] != rank[e] or size[e] > o_size[k]:
                    l3_unlink_py(k, o_side, o_rank, o_size, o_prev, o_next, o_live, head, tail, lvl_qty, lvl_cnt, best)
                    queue = True
                elif size[e] == 0:
                    l3_unlink_py(k, o_side, o_rank, o_size, o_prev, o_next, o_live, head, tail, lvl_qty, lvl_cnt, best)
                else:  # a smaller size keeps the order's place
                    lvl_qty[o_side[k], o_rank[k]] += size[e] - o_size[k]
                    o_size[k] = size[e]
                if queue and size[e] > 0:
                    l3_append_py(k, s, rank[e], size[e], o_side, o_rank, o_size, o_prev, o_next, o_live, head, tail,
                                 lvl_qty, lvl_cnt, best)  # fmt: skip
        elif a == 2:
            k = slot[e]
            if not o_live[k]:
                st = 2
            else:
                q = size[e]
                if q > o_size[k]:
                    st = 3
                    q = o_size[k]
                if q >= o_size[k]:
                    l3_unlink_py(k, o_side, o_rank, o_size, o_prev, o_next, o_live, head, tail, lvl_qty, lvl_cnt, best)
                else:
                    o_size[k] -= q
                    lvl_qty[o_side[k], o_rank[k]] -= q
        elif a == 6:
            for i in range(o_live.shape[0]):
                o_live[i] = False
            for s in range(2):
                for i in range(n_rank):
                    head[s, i] = -1
                    tail[s, i] = -1
                    lvl_qty[s, i] = 0
                    lvl_cnt[s, i] = 0
            best[0] = -1
            best[1] = n_rank
        status[e] = st
        if record[e]:
            out_row[e] = rows
            l3_top_py(0, best[0], -1, lvl_cnt, lvl_qty, depth, top_rank, top_qty, rows, 0)
            l3_top_py(1, best[1], 1, lvl_cnt, lvl_qty, depth, top_rank, top_qty, rows, depth)
            rows += 1
        else:
            out_row[e] = -1
    return rows


l3_unlink = compile_with(l3_unlink_py)
l3_append = compile_with(l3_append_py)
l3_top = compile_with(l3_top_py)
l3_replay = compile_with(l3_replay_py, l3_unlink_py=l3_unlink, l3_append_py=l3_append, l3_top_py=l3_top)


class L3Book:
    """An order-by-order book over dense order slots and price ranks, replayed by the compiled kernel.

    Parameters
    ----------
    prices
        Sorted distinct prices (the ranks' values), quote currency.
    order_ids
        Sorted distinct order ids (the slots' ids).
    """

    def __init__(self, prices: NDArray[np.float64], order_ids: I64) -> None:
        self.prices = prices
        self.order_ids = order_ids
        n, r = max(int(order_ids.size), 1), max(int(prices.size), 1)
        self.o_side = np.zeros(n, np.int8)
        self.o_rank = np.zeros(n, np.int64)
        self.o_size = np.zeros(n, np.int64)
        self.o_prev = -np.ones(n, np.int64)
        self.o_next = -np.ones(n, np.int64)
        self.o_live = np.zeros(n, np.bool_)
        self.head = -np.ones((2, r), np.int64)
        self.tail = -np.ones((2, r), np.int64)
        self.lvl_qty = np.zeros((2, r), np.int64)
        self.lvl_cnt = np.zeros((2, r), np.int64)
        self.best = np.array([-1, r], np.int64)

    def state(self) -> tuple[object, ...]:
        """The kernel's state arrays, in argument order."""
        return (
            self.o_side,
            self.o_rank,
            self.o_size,
            self.o_prev,
            self.o_next,
            self.o_live,
            self.head,
            self.tail,
            self.lvl_qty,
            self.lvl_cnt,
            self.best,
        )

    def replay(
        self,
        action: NDArray[np.int8],
        side: NDArray[np.int8],
        rank: I64,
        size: I64,
        slot: I64,
        record: NDArray[np.bool_],
        *,
        depth: int,
        compiled: bool = True,
    ) -> tuple[I64, I64, I64, NDArray[np.int8]]:
        """Apply events; return ``(out_row, top_rank, top_qty, status)`` for the recorded events."""
        n_rec = int(record.sum())
        out_row = np.empty(action.size, np.int64)
        top_rank = np.empty((n_rec, 2 * depth), np.int64)
        top_qty = np.empty((n_rec, 2 * depth), np.int64)
        status = np.zeros(action.size, np.int8)
        fn: Any = l3_replay if compiled else l3_replay_py
        fn(action, side, rank, size, slot, record, *self.state(), depth, out_row, top_rank, top_qty, status)
        return out_row, top_rank, top_qty, status

    def queue(self, side: int, price: float) -> list[tuple[int, int]]:
        """``(order_id, size)`` resting at ``price`` on ``side`` (+1 bid, −1 ask), first in priority first."""
        r = int(np.searchsorted(self.prices, price))
        if r >= self.prices.size or self.prices[r] != price:
            return []
        s = 0 if side == 1 else 1
        out = []
        k = int(self.head[s, r])
        while k >= 0:
            out.append((int(self.order_ids[k]), int(self.o_size[k])))
            k = int(self.o_next[k])
        return out

    def queue_ahead(self, order_id: int) -> float:
        """Size resting ahead of a live order in its queue (its exact FIFO position), NaN if not resting."""
        k = int(np.searchsorted(self.order_ids, order_id))
        if k >= self.order_ids.size or self.order_ids[k] != order_id or not self.o_live[k]:
            return float("nan")
        ahead = 0
        p = int(self.o_prev[k])
        while p >= 0:
            ahead += int(self.o_size[p])
            p = int(self.o_prev[p])
        return float(ahead)

    def levels(self, side: int) -> list[tuple[float, int, int]]:
        """``(price, size, orders)`` of every non-empty level on ``side``, best first."""
        s = 0 if side == 1 else 1
        ranks = np.flatnonzero(self.lvl_cnt[s] > 0)
        ranks = ranks[::-1] if s == 0 else ranks
        return [(float(self.prices[r]), int(self.lvl_qty[s, r]), int(self.lvl_cnt[s, r])) for r in ranks]
