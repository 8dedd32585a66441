"""Market paths TCA reads: the mid at any time, the interval VWAP and the close."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from impactlab.data.market import MarketDay

__all__ = ["MarketPath", "RecordedPath"]


class MarketPath:
    """The mid, trades and close of a market day from any source (the book states and the prints)."""

    def __init__(self, day: MarketDay) -> None:
        self.day = day
        self._ts = day.ts_ns
        self._mid = day.mid
        self._trade_ts = day.trades.ts_ns
        self._trade_px = day.trades.price
        self._trade_sz = day.trades.size

    def mid_at(self, ts_ns: int) -> float:
        """The mid of the last state at or before ``ts_ns`` (the last known mid after the close)."""
        i = int(np.searchsorted(self._ts, ts_ns, side="right")) - 1
        if i < 0:
            return float("nan")
        while i > 0 and not np.isfinite(self._mid[i]):
            i -= 1
        return float(self._mid[i])

    def interval_vwap(self, start_ns: int, end_ns: int) -> float:
        """The market's VWAP (visible and hidden prints) over ``[start_ns, end_ns]``."""
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
