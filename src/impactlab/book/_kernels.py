"""Order-book kernels: pure functions on arrays, each written once in plain Python and compiled with
numba (the ``arch`` pattern).  ``*_py`` is the interpreted twin used in parity tests; the public names are
the compiled versions.

Two books live here:

* a fixed-depth book in LOBSTER's raw layout (``askP1, askS1, bidP1, bidS1, …``, prices × 10⁴), which
  knows only the L visible levels, exactly as a level-L message file can tell them;
* a price ladder for venues that publish absolute level quantities (Binance).  A batch rebuild knows
  every price up front, so prices are first ranked (order-preserving) and the ladder is dense over
  ranks: every update is O(1), whatever the spread between the deepest and the best level.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

DUMMY_ASK = 9_999_999_999
DUMMY_BID = -9_999_999_999
UNKNOWN = -1  # size marking a visible slot whose level lies beyond the known depth

# --------------------------------------------------------------------------------------------------
# Fixed-depth LOBSTER book
# --------------------------------------------------------------------------------------------------


def lob_add_py(state: NDArray[np.int64], levels: int, side: int, price: int, qty: int) -> int:
    """Add ``qty`` at ``price`` on ``side`` (+1 bid, −1 ask); returns 0, or 3 if beyond the visible depth."""
    off = 2 if side == 1 else 0
    s = -1 if side == 1 else 1  # p is better than q  <=>  s*p < s*q
    for k in range(levels):
        px = state[4 * k + off]
        if px == price:
            state[4 * k + off + 1] += qty
            return 0
        if s * px > s * price:
            for j in range(levels - 1, k, -1):
                state[4 * j + off] = state[4 * (j - 1) + off]
                state[4 * j + off + 1] = state[4 * (j - 1) + off + 1]
            state[4 * k + off] = price
            state[4 * k + off + 1] = qty
            return 0
    return 3


def lob_sub_py(state: NDArray[np.int64], levels: int, side: int, price: int, qty: int) -> int:
    """Remove ``qty`` at ``price``; an emptied level is deleted and the last slot becomes unknown.

    Returns 0, 1 if the price is not a visible level, 2 if more was removed than the level held.
    """
    off = 2 if side == 1 else 0
    dummy = DUMMY_BID if side == 1 else DUMMY_ASK
    for k in range(levels):
        if state[4 * k + off] == price:
            left = state[4 * k + off + 1] - qty
            if left > 0:
                state[4 * k + off + 1] = left
                return 0
            for j in range(k, levels - 1):
                state[4 * j + off] = state[4 * (j + 1) + off]
                state[4 * j + off + 1] = state[4 * (j + 1) + off + 1]
            state[4 * (levels - 1) + off] = dummy
            state[4 * (levels - 1) + off + 1] = UNKNOWN
            return 0 if left == 0 else 2
    return 1


def lob_apply_py(state: NDArray[np.int64], levels: int, etype: int, side: int, price: int, qty: int) -> int:
    """Apply one LOBSTER message to the visible book (types 5 and 7 leave it unchanged)."""
    if etype == 1:
        return lob_add_py(state, levels, side, price, qty)
    if etype == 2 or etype == 3 or etype == 4:
        return lob_sub_py(state, levels, side, price, qty)
    return 0


def lobster_replay_py(
    etype: NDArray[np.int8],
    side: NDArray[np.int8],
    price: NDArray[np.int64],
    size: NDArray[np.int64],
    book: NDArray[np.int64],
    levels: int,
    state: NDArray[np.int64],
    mismatch: NDArray[np.bool_],
    beyond: NDArray[np.bool_],
    status: NDArray[np.int8],
) -> int:
    """Apply every message to the previous state and compare with the book file row by row.

    ``state`` holds the book before message 0 and is updated in place.  For each row k the kernel sets
    ``mismatch[k]`` when a known level differs from ``book[k]`` (the state is then resynchronised from
    the file, so one fault does not cascade), ``beyond[k]`` when a level entered the visible range from
    beyond the requested depth (its price and size are taken from the file: the message file cannot
    show them), and ``status[k]`` to the apply code.  Returns the number of mismatched rows.
    """
    n = etype.shape[0]
    width = 4 * levels
    bad = 0
    for k in range(n):
        status[k] = lob_apply_py(state, levels, etype[k], side[k], price[k], size[k])
        # only the last level of a side can be unknown (a deletion shifts the levels up)
        row_beyond = False
        for j in (width - 4, width - 2):
            if state[j + 1] == UNKNOWN:
                state[j] = book[k, j]
                state[j + 1] = book[k, j + 1]
                if book[k, j + 1] > 0:
                    row_beyond = True
        diff = 0
        for j in range(width):  # branch-free, so the compiler can vectorise it
            diff |= state[j] ^ book[k, j]
        row_bad = diff != 0
        if row_bad:
            for j in range(width):
                state[j] = book[k, j]
            bad += 1
        mismatch[k] = row_bad
        beyond[k] = row_beyond
    return bad


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


def _compile_with(fn, **globals_):  # type: ignore[no-untyped-def]
    """Compile ``fn`` with its helper calls rebound to their compiled versions."""
    import types

    g = dict(fn.__globals__)
    g.update(globals_)
    clone = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)
    return _jit(clone)


lob_add = _compile_with(lob_add_py)
lob_sub = _compile_with(lob_sub_py)
lob_apply = _compile_with(lob_apply_py, lob_add_py=lob_add, lob_sub_py=lob_sub)
lobster_replay = _compile_with(lobster_replay_py, lob_apply_py=lob_apply)
ladder_set = _compile_with(ladder_set_py)
ladder_replay = _compile_with(ladder_replay_py, ladder_set_py=ladder_set)
