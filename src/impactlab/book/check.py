"""Rebuild a fixed-depth book from order events and check it against the source's own book states.

For sources that ship both (LOBSTER's message and order-book files): every event is applied to the
previous state of the visible levels, and the result is compared with the recorded state on every row
and level.  The kernel works on integer ticks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.book import _kernels as k
from impactlab.data.market import EventFlag, EventKind, MarketDay
from impactlab.errors import DataValidationError

__all__ = ["ReplayReport", "initial_state", "replay_check"]


@dataclass(frozen=True)
class ReplayReport:
    """Outcome of replaying a day's order events against its own recorded book states.

    Attributes
    ----------
    rows
        Book rows compared (one per message).
    mismatched_rows
        Rows where a level known from the messages differs from the file.
    rows_with_level_from_beyond_depth
        Rows where a level entered the visible range from beyond the requested depth; the message file
        omits events beyond that depth, so its price and size are taken from the file.
    unmatched_messages
        Messages that named a price that is not a visible level (status 1) or removed more than the level
        held (status 2); each of those also shows as a mismatched row.
    seconds, messages_per_s
        Time spent in the compiled kernel (after JIT warm-up) and its throughput.
    first_mismatches
        Up to ten 1-based source lines of mismatched rows.
    """

    symbol: str
    levels: int
    rows: int
    mismatched_rows: int
    rows_with_level_from_beyond_depth: int
    unmatched_messages: int
    seconds: float
    messages_per_s: float
    first_mismatches: list[int]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "symbol": self.symbol,
            "levels": self.levels,
            "rows": self.rows,
            "mismatched_rows": self.mismatched_rows,
            "rows_with_level_from_beyond_depth": self.rows_with_level_from_beyond_depth,
            "unmatched_messages": self.unmatched_messages,
            "seconds": self.seconds,
            "messages_per_s": self.messages_per_s,
            "first_mismatches": self.first_mismatches,
        }


def _layout(day: MarketDay) -> tuple[NDArray[np.int8], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Kernel codes, integer prices and sizes of the events, and the recorded book as ``(n, 4·depth)`` ticks.

    Built once per day and kept in ``day.extras`` (the day is immutable, so the layout cannot go stale).
    """
    cached = day.extras.get("_check_layout")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    out = _build_layout(day)
    day.extras["_check_layout"] = out
    return out


def _build_layout(day: MarketDay) -> tuple[NDArray[np.int8], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    ev, b = day.events, day.book
    if len(ev) != len(b) or not np.array_equal(b.event_index, np.arange(len(b))):
        raise DataValidationError(
            f"{day.label}: the check needs one recorded book state per order event ({day.source} has "
            f"{len(ev)} events and {len(b)} states)",
            field="source",
            value=day.source,
        )
    code = np.zeros(len(ev), dtype=np.int8)
    code[ev.kind == EventKind.ADD] = 1
    code[ev.kind == EventKind.CANCEL] = 2
    fill = ev.kind == EventKind.FILL
    hidden = (ev.flags & np.uint8(EventFlag.HIDDEN)) != 0
    code[fill & ~hidden] = 4
    code[fill & hidden] = 5
    bid_t, ask_t = b.ticks(day.tick_size)  # empty levels at the kernel's sentinels
    raw = np.empty((len(b), 4 * day.depth), dtype=np.int64)
    raw[:, 0::4] = ask_t
    raw[:, 1::4] = b.ask_size
    raw[:, 2::4] = bid_t
    raw[:, 3::4] = b.bid_size
    return code, ev.price_ticks, np.rint(ev.size).astype(np.int64), raw


def initial_state(day: MarketDay) -> NDArray[np.int64]:
    """The visible book before the first event: state 0 with event 0 undone (integer-tick layout).

    Undoing a submission removes its size (a level it created disappears, and the slot it pushed beyond
    the depth becomes unknown); undoing a cancel or execution puts the size back.
    """
    code, px, sz, raw = _layout(day)
    return _initial(code, day.events.side, px, sz, raw, day.depth)


def _initial(
    code: NDArray[np.int8],
    side: NDArray[np.int8],
    px: NDArray[np.int64],
    sz: NDArray[np.int64],
    raw: NDArray[np.int64],
    levels: int,
) -> NDArray[np.int64]:
    state: NDArray[np.int64] = np.array(raw[0], dtype=np.int64)
    if code.size == 0:
        return state
    et, sd, p, q = int(code[0]), int(side[0]), int(px[0]), int(sz[0])
    if et == 1:
        k.lob_sub_py(state, levels, sd, p, q)
    elif et in (2, 3, 4):
        k.lob_add_py(state, levels, sd, p, q)
    return state


def replay_check(day: MarketDay, *, compiled: bool = True) -> ReplayReport:
    """Apply every event of ``day`` to the previous state and compare with the recorded book on every row.

    Parameters
    ----------
    day
        A day with order events and one recorded state per event (LOBSTER).
    compiled
        Use the numba kernel (default) or its plain-Python twin.
    """
    n = len(day)
    code, px, sz, raw = _layout(day)
    side = day.events.side
    levels = day.depth
    state = _initial(code, side, px, sz, raw, levels)
    mismatch = np.zeros(n, dtype=np.bool_)
    beyond = np.zeros(n, dtype=np.bool_)
    status = np.zeros(n, dtype=np.int8)
    fn = k.lobster_replay if compiled else k.lobster_replay_py
    if compiled:  # warm the JIT on a copy of a few rows so the timing is the kernel alone
        m = min(n, 8)
        fn(
            code[:m],
            side[:m],
            px[:m],
            sz[:m],
            raw[:m],
            levels,
            state.copy(),
            mismatch[:m].copy(),
            beyond[:m].copy(),
            status[:m].copy(),
        )
    t0 = time.perf_counter()
    bad = fn(code, side, px, sz, raw, levels, state, mismatch, beyond, status)
    secs = time.perf_counter() - t0
    return ReplayReport(
        symbol=day.symbol,
        levels=levels,
        rows=n,
        mismatched_rows=int(bad),
        rows_with_level_from_beyond_depth=int(beyond.sum()),
        unmatched_messages=int(((status == 1) | (status == 2)).sum()),
        seconds=secs,
        messages_per_s=n / secs if secs > 0 else float("inf"),
        first_mismatches=[int(x) for x in day.events.line[np.flatnonzero(mismatch)[:10]]],
    )
