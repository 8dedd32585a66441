"""Kernels the loaders use to rebuild books: pure functions on arrays, each written once in plain Python
and compiled with numba (the ``arch`` pattern); ``*_py`` is the interpreted twin used in parity tests.

* A price ladder for venues that publish absolute level quantities (Binance).  A batch rebuild knows
  every price up front, so prices are first ranked (order-preserving) and the ladder is dense over
  ranks: every update is O(1), whatever the spread between the deepest and the best level.
* An order-by-order (L3) book with exact FIFO queues (Databento MBO), in :mod:`impactlab.data._l3`.
"""

from __future__ import annotations

import types

import numba
import numpy as np
from numpy.typing import NDArray

# --------------------------------------------------------------------------------------------------
# Price ladder over ranked prices (absolute quantities, Binance-style)
# --------------------------------------------------------------------------------------------------


def ladder_set_py(
    q: NDArray[np.float64], best: NDArray[np.int64], nlev: NDArray[np.int64], s: int, r: int, qty: float
) -> int:
    """Set the level of price rank ``r`` on side ``s`` (0 bid, 1 ask) to ``qty`` (0 deletes).

    ``q[s]`` is a dense ladder over price ranks; ``best[s]`` the rank of the best level (−1 / ``R`` when
    a side is empty) and ``nlev[s]`` the number of non-empty levels.  Returns 1 for the deletion of a
    level that was not known (harmless when building from diffs alone), else 0.
    """
    old = q[s, r]
    if qty == 0.0:
        if old == 0.0:
            return 1
        q[s, r] = 0.0
        nlev[s] -= 1
        if r == best[s]:
            if nlev[s] == 0:
                best[s] = -1 if s == 0 else q.shape[1]
            elif s == 0:
                i = r - 1
                while q[0, i] == 0.0:
                    i -= 1
                best[0] = i
            else:
                i = r + 1
                while q[1, i] == 0.0:
                    i += 1
                best[1] = i
        return 0
    if old == 0.0:
        nlev[s] += 1
    q[s, r] = qty
    if (s == 0 and r > best[0]) or (s == 1 and r < best[1]):
        best[s] = r
    return 0


def ladder_replay_py(
    clear: NDArray[np.bool_],
    start: NDArray[np.int64],
    stop: NDArray[np.int64],
    lvl_side: NDArray[np.int8],
    lvl_rank: NDArray[np.int64],
    lvl_qty: NDArray[np.float64],
    q: NDArray[np.float64],
    best: NDArray[np.int64],
    nlev: NDArray[np.int64],
    depth: int,
    top_rank: NDArray[np.int64],
    top_qty: NDArray[np.float64],
) -> int:
    """Apply depth events to the ladder and record its top ``depth`` levels after each event.

    Event e applies level updates ``start[e]:stop[e]`` (after emptying the book if ``clear[e]``, as for a
    snapshot).  ``top_rank[e]``/``top_qty[e]`` get ``[bid_1..bid_depth, ask_1..ask_depth]`` (price ranks;
    −1 and 0.0 where a level is empty).  Returns the number of unknown-level deletions.
    """
    n_rank = q.shape[1]
    unknown = 0
    for e in range(clear.shape[0]):
        if clear[e]:
            for s in range(2):
                for i in range(n_rank):
                    q[s, i] = 0.0
                nlev[s] = 0
            best[0] = -1
            best[1] = n_rank
        for i in range(start[e], stop[e]):
            s = 0 if lvl_side[i] == 1 else 1
            unknown += ladder_set_py(q, best, nlev, s, lvl_rank[i], lvl_qty[i])
        # bids, walking down from the best
        k = 0
        i = best[0]
        while k < depth and i >= 0:
            if q[0, i] != 0.0:
                top_rank[e, k] = i
                top_qty[e, k] = q[0, i]
                k += 1
            i -= 1
        while k < depth:
            top_rank[e, k] = -1
            top_qty[e, k] = 0.0
            k += 1
        k = 0
        i = best[1]
        while k < depth and i < n_rank:
            if q[1, i] != 0.0:
                top_rank[e, depth + k] = i
                top_qty[e, depth + k] = q[1, i]
                k += 1
            i += 1
        while k < depth:
            top_rank[e, depth + k] = -1
            top_qty[e, depth + k] = 0.0
            k += 1
    return unknown


_jit = numba.njit(cache=True, nogil=True)


def compile_with(fn, **globals_):  # type: ignore[no-untyped-def]
    """Compile ``fn`` with its helper calls rebound to their compiled versions."""
    g = dict(fn.__globals__)
    g.update(globals_)
    clone = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
    return _jit(clone)


ladder_set = compile_with(ladder_set_py)
ladder_replay = compile_with(ladder_replay_py, ladder_set_py=ladder_set)


# --------------------------------------------------------------------------------------------------
# National best bid and offer from per-exchange quotes (TAQ)
# --------------------------------------------------------------------------------------------------


def nbbo_py(
    ts: NDArray[np.int64],
    ex: NDArray[np.int64],
    bid: NDArray[np.float64],
    bid_size: NDArray[np.float64],
    ask: NDArray[np.float64],
    ask_size: NDArray[np.float64],
    n_ex: int,
    ttl_ns: int,
    out: NDArray[np.float64],
    emit: NDArray[np.bool_],
) -> None:
    """Best bid and offer over exchanges after every quote.

    Each exchange's latest quote replaces its previous one (a non-positive price withdraws that side); a
    quote older than ``ttl_ns`` no longer counts (``ttl_ns <= 0``: quotes never expire).
    After quote k, ``out[k] = [best bid, size at it summed over exchanges, best ask, size]`` (NaN / 0 when
    no exchange quotes a side), and ``emit[k]`` is True on the last quote of each time stamp, where the
    state is the NBBO in force from that time on.
    """
    cb = np.zeros(n_ex)
    cbs = np.zeros(n_ex)
    ca = np.zeros(n_ex)
    cas = np.zeros(n_ex)
    cts = np.zeros(n_ex, np.int64)
    n = ts.shape[0]
    for k in range(n):
        e = ex[k]
        cts[e] = ts[k]
        cb[e] = bid[k]
        cbs[e] = bid_size[k]
        ca[e] = ask[k]
        cas[e] = ask_size[k]
        bb = 0.0
        bbs = 0.0
        ba = 0.0
        bas = 0.0
        for j in range(n_ex):
            if ttl_ns > 0 and ts[k] - cts[j] > ttl_ns:
                continue
            if cb[j] > 0.0 and cbs[j] > 0.0:
                if cb[j] > bb:
                    bb = cb[j]
                    bbs = cbs[j]
                elif cb[j] == bb:
                    bbs += cbs[j]
            if ca[j] > 0.0 and cas[j] > 0.0:
                if ba == 0.0 or ca[j] < ba:
                    ba = ca[j]
                    bas = cas[j]
                elif ca[j] == ba:
                    bas += cas[j]
        out[k, 0] = bb if bb > 0.0 else np.nan
        out[k, 1] = bbs
        out[k, 2] = ba if ba > 0.0 else np.nan
        out[k, 3] = bas
        emit[k] = k == n - 1 or ts[k + 1] != ts[k]


nbbo = compile_with(nbbo_py)


# --------------------------------------------------------------------------------------------------
# Fixed-depth integer book (askP, askS, bidP, bidS per level) into float views and integer ticks
# --------------------------------------------------------------------------------------------------


def split_levels_py(
    book: NDArray[np.int64],
    levels: int,
    price_scale: float,
    tick_int: int,
    dummy_ask: int,
    dummy_bid: int,
    empty_ask_tick: int,
    empty_bid_tick: int,
    ap: NDArray[np.float64],
    az: NDArray[np.float64],
    at: NDArray[np.int64],
    bp: NDArray[np.float64],
    bz: NDArray[np.float64],
    bt: NDArray[np.int64],
) -> None:
    """One pass over an integer book: prices in currency (NaN where empty), sizes (0 there) and integer
    ticks (the empty sentinels there).  A level is empty when its price is the vendor's dummy or its size
    is not positive."""
    for i in range(book.shape[0]):
        for k in range(levels):
            p = book[i, 4 * k]
            s = book[i, 4 * k + 1]
            if p == dummy_ask or s <= 0:
                ap[i, k] = np.nan
                az[i, k] = 0.0
                at[i, k] = empty_ask_tick
            else:
                ap[i, k] = p / price_scale
                az[i, k] = s
                at[i, k] = p // tick_int
            p = book[i, 4 * k + 2]
            s = book[i, 4 * k + 3]
            if p == dummy_bid or s <= 0:
                bp[i, k] = np.nan
                bz[i, k] = 0.0
                bt[i, k] = empty_bid_tick
            else:
                bp[i, k] = p / price_scale
                bz[i, k] = s
                bt[i, k] = p // tick_int


split_levels = compile_with(split_levels_py)
