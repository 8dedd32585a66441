"""Market paths TCA reads: the mid at any time, the interval VWAP and the close."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from impactlab.data.lobster import LobsterDay

__all__ = ["LobsterPath", "RecordedPath"]


class LobsterPath:
    """The mid, trades and close of a LOBSTER day (the book after each message)."""

    def __init__(self, day: LobsterDay) -> None:
        self.day = day
        self._ts = day.ts_ns
        ask, bid = day.book[:, 0].astype(float), day.book[:, 2].astype(float)
        ok = (np.abs(ask) < 9e9) & (np.abs(bid) < 9e9) & (ask > 0) & (bid > 0)
        self._mid = np.where(ok, (ask + bid) / 2e4, np.nan)
        ex = (day.event_type == 4) | (day.event_type == 5)
        self._trade_ts = day.ts_ns[ex]
        self._trade_px = day.price_e4[ex] / 1e4
        self._trade_sz = day.size[ex].astype(float)

    def mid_at(self, ts_ns: int) -> float:
        """The mid after the last message at or before ``ts_ns`` (the last known mid after the close)."""
        i = int(np.searchsorted(self._ts, ts_ns, side="right")) - 1
        if i < 0:
            return float("nan")
        while i > 0 and not np.isfinite(self._mid[i]):
            i -= 1
        return float(self._mid[i])

    def interval_vwap(self, start_ns: int, end_ns: int) -> float:
        """The market's VWAP (visible and hidden executions) over ``[start_ns, end_ns]``."""
        lo, hi = np.searchsorted(self._trade_ts, [start_ns, end_ns], side="left")
        hi = int(np.searchsorted(self._trade_ts, end_ns, side="right"))
        sz = self._trade_sz[lo:hi]
        return float(sz @ self._trade_px[lo:hi] / sz.sum()) if sz.sum() > 0 else float("nan")

    @property
    def close(self) -> float:
        """The last trade of the day."""
        return float(self._trade_px[-1]) if self._trade_px.size else float("nan")


@dataclass(frozen=True)
class RecordedPath:
    """Mids recorded while an order was worked (a simulator run, a FIX session's market data)."""

    ts_ns: NDArray[np.int64]
    mid: NDArray[np.float64]
    close: float = float("nan")

    def mid_at(self, ts_ns: int) -> float:
        i = int(np.searchsorted(self.ts_ns, ts_ns, side="right")) - 1
        return float(self.mid[i]) if i >= 0 else float("nan")

    def interval_vwap(self, start_ns: int, end_ns: int) -> float:
        return float("nan")  # no market trades recorded
