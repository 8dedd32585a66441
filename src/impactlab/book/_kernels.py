"""Order-book kernels: pure functions on arrays, each written once in plain Python and compiled with
numba (the ``arch`` pattern).  ``*_py`` is the interpreted twin used in parity tests; the public names are
the compiled versions.

The fixed-depth book (``askP1, askS1, bidP1, bidS1, …`` in integer ticks) knows only the L visible
levels, exactly as a level-L order-event file can tell them.  The loaders' kernels (the price ladder and
the order-by-order book) are in :mod:`impactlab.data._kernels` and re-exported here.
"""

from __future__ import annotations

import numba
import numpy as np
from numpy.typing import NDArray

from impactlab.data._kernels import (  # noqa: F401 - re-exported for the book tests
    ladder_replay,
    ladder_replay_py,
    ladder_set,
    ladder_set_py,
)

EMPTY_ASK = 10**15  # impactlab.data.market.EMPTY_ASK_TICK: an empty level in integer ticks
EMPTY_BID = -(10**15)  # EMPTY_BID_TICK
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
    dummy = EMPTY_BID if side == 1 else EMPTY_ASK
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
