"""Rebuild LOBSTER books from messages and check them against the book file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.book import _kernels as k
from impactlab.data.lobster import LobsterDay

__all__ = ["ReplayReport", "initial_state", "replay_lobster"]


@dataclass(frozen=True)
class ReplayReport:
    """Outcome of replaying a LOBSTER day against its own book file.

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


def initial_state(day: LobsterDay) -> NDArray[np.int64]:
    """The visible book before the first message: book row 0 with message 0 undone.

    Undoing a submission removes its size (a level it created disappears, and the slot it pushed beyond
    the depth becomes unknown); undoing a cancel or execution puts the size back.
    """
    state: NDArray[np.int64] = np.array(day.book[0], dtype=np.int64)
    if len(day) == 0:
        return state
    et, sd, px, sz = int(day.event_type[0]), int(day.side[0]), int(day.price_e4[0]), int(day.size[0])
    if et == 1:
        k.lob_sub_py(state, day.levels, sd, px, sz)
    elif et in (2, 3, 4):
        k.lob_add_py(state, day.levels, sd, px, sz)
    return state


def replay_lobster(day: LobsterDay, *, compiled: bool = True) -> ReplayReport:
    """Apply every message of ``day`` to the previous state and compare with the book file on every row.

    Parameters
    ----------
    day
        A loaded LOBSTER day.
    compiled
        Use the numba kernel (default) or its plain-Python twin.
    """
    n = len(day)
    state = initial_state(day)
    mismatch = np.zeros(n, dtype=np.bool_)
    beyond = np.zeros(n, dtype=np.bool_)
    status = np.zeros(n, dtype=np.int8)
    fn = k.lobster_replay if compiled else k.lobster_replay_py
    if compiled:  # warm the JIT on a copy of a few rows so the timing is the kernel alone
        m = min(n, 8)
        fn(
            day.event_type[:m],
            day.side[:m],
            day.price_e4[:m],
            day.size[:m],
            day.book[:m],
            day.levels,
            state.copy(),
            mismatch[:m].copy(),
            beyond[:m].copy(),
            status[:m].copy(),
        )
    t0 = time.perf_counter()
    bad = fn(day.event_type, day.side, day.price_e4, day.size, day.book, day.levels, state, mismatch, beyond, status)
    secs = time.perf_counter() - t0
    return ReplayReport(
        symbol=day.symbol,
        levels=day.levels,
        rows=n,
        mismatched_rows=int(bad),
        rows_with_level_from_beyond_depth=int(beyond.sum()),
        unmatched_messages=int(((status == 1) | (status == 2)).sum()),
        seconds=secs,
        messages_per_s=n / secs if secs > 0 else float("inf"),
        first_mismatches=[int(x) for x in day.line[np.flatnonzero(mismatch)[:10]]],
    )
