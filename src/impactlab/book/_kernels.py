"""Order-book kernels: pure functions on arrays, each written once in plain Python and compiled with
numba (the ``arch`` pattern).  ``*_py`` is the interpreted twin used in parity tests; the public names are
the compiled versions.

Two books live here:

* a fixed-depth book in LOBSTER's raw layout (``askP1, askS1, bidP1, bidS1, …``, prices × 10⁴), which
  knows only the L visible levels, exactly as a level-L message file can tell them;
* an unbounded price-level book for venues that publish absolute level quantities (Binance), kept as
  two sorted arrays with the best price at the end, so that the frequent updates near the touch move
  little memory.
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
        row_bad = False
        row_beyond = False
        for lv in range(levels):
            for off in (0, 2):
                j = 4 * lv + off
                if state[j + 1] == UNKNOWN:
                    state[j] = book[k, j]
                    state[j + 1] = book[k, j + 1]
                    if book[k, j + 1] > 0:
                        row_beyond = True
                elif state[j] != book[k, j] or state[j + 1] != book[k, j + 1]:
                    row_bad = True
        if row_bad:
            for j in range(width):
                state[j] = book[k, j]
            bad += 1
        mismatch[k] = row_bad
        beyond[k] = row_beyond
    return bad


# --------------------------------------------------------------------------------------------------
# Unbounded price-level book (absolute quantities), best price at the end of each side
# --------------------------------------------------------------------------------------------------


def _search_py(keys: NDArray[np.int64], n: int, key: int) -> int:
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def plb_set_py(
    keys: NDArray[np.int64], qty: NDArray[np.float64], count: NDArray[np.int64], s: int, key: int, q: float
) -> int:
    """Set the level ``key`` of side ``s`` (0 bid, 1 ask) to quantity ``q`` (0 deletes).

    Keys are ``price`` for bids and ``-price`` for asks, so both sides are ascending with the best level
    last.  Returns 0, or 1 for the deletion of an unknown level (harmless in diff-only books).
    """
    n = count[s]
    i = _search_py(keys[s], n, key)
    found = i < n and keys[s, i] == key
    if q == 0.0:
        if not found:
            return 1
        for j in range(i, n - 1):
            keys[s, j] = keys[s, j + 1]
            qty[s, j] = qty[s, j + 1]
        count[s] = n - 1
        return 0
    if found:
        qty[s, i] = q
        return 0
    for j in range(n, i, -1):
        keys[s, j] = keys[s, j - 1]
        qty[s, j] = qty[s, j - 1]
    keys[s, i] = key
    qty[s, i] = q
    count[s] = n + 1
    return 0


def plb_replay_py(
    clear: NDArray[np.bool_],
    start: NDArray[np.int64],
    stop: NDArray[np.int64],
    lvl_side: NDArray[np.int8],
    lvl_key: NDArray[np.int64],
    lvl_qty: NDArray[np.float64],
    keys: NDArray[np.int64],
    qty: NDArray[np.float64],
    count: NDArray[np.int64],
    depth: int,
    top_px: NDArray[np.int64],
    top_qty: NDArray[np.float64],
) -> int:
    """Apply depth events to the book and record its top ``depth`` levels after each event.

    Event e applies level updates ``start[e]:stop[e]`` (after emptying the book if ``clear[e]``, as for a
    snapshot).  ``top_px[e]``/``top_qty[e]`` get ``[bid_1..bid_depth, ask_1..ask_depth]`` (prices as
    integer keys, 0 and 0.0 where a level is empty).  Returns the number of unknown-level deletions.
    """
    unknown = 0
    for e in range(clear.shape[0]):
        if clear[e]:
            count[0] = 0
            count[1] = 0
        for i in range(start[e], stop[e]):
            s = 0 if lvl_side[i] == 1 else 1
            key = lvl_key[i] if s == 0 else -lvl_key[i]
            unknown += plb_set_py(keys, qty, count, s, key, lvl_qty[i])
        for s in range(2):
            n = count[s]
            for k in range(depth):
                col = s * depth + k
                if k < n:
                    top_px[e, col] = keys[s, n - 1 - k] if s == 0 else -keys[s, n - 1 - k]
                    top_qty[e, col] = qty[s, n - 1 - k]
                else:
                    top_px[e, col] = 0
                    top_qty[e, col] = 0.0
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
_search = _compile_with(_search_py)
plb_set = _compile_with(plb_set_py, _search_py=_search)
plb_replay = _compile_with(plb_replay_py, plb_set_py=plb_set)
