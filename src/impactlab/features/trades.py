"""Where trades sit among the book states, and the adverse-selection proxy."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from impactlab.data.market import MarketDay
from impactlab.errors import DataValidationError

__all__ = ["adverse_selection_bps", "pre_trade_state", "state_at", "trade_state"]


def pre_trade_state(day: MarketDay) -> NDArray[np.int64]:
    """Index of the book state just before each trade (its pre-trade mid), −1 where none.

    Where trades and states both point into the event stream, the last state whose events end before
    the trade's (exact: the state before an execution message); otherwise the last state strictly
    earlier in time.
    """
    tr, b = day.trades, day.book
    if len(day.events) and (tr.event_index >= 0).all() and (b.event_index >= 0).all():
        return np.searchsorted(b.event_index, tr.event_index, side="left").astype(np.int64) - 1
    return state_at(b.ts_ns, tr.ts_ns, strict=True)


def trade_state(day: MarketDay) -> NDArray[np.int64]:
    """Index of the first book state that includes each trade (the state in force after it)."""
    tr, b = day.trades, day.book
    if len(day.events) and (tr.event_index >= 0).all() and (b.event_index >= 0).all():
        return np.minimum(np.searchsorted(b.event_index, tr.event_index, side="left"), len(b) - 1).astype(np.int64)
    return np.maximum(state_at(b.ts_ns, tr.ts_ns), 0)


def state_at(state_ts: NDArray[np.int64], when_ns: NDArray[np.int64], *, strict: bool = False) -> NDArray[np.int64]:
    """Index of the state in force at each time: the last state with ``ts <= when`` (``< when`` if strict).

    −1 where no state precedes the time.
    """
    return np.searchsorted(state_ts, when_ns, side="left" if strict else "right").astype(np.int64) - 1


def adverse_selection_bps(
    trade_sign: NDArray[np.integer],
    pre_index: NDArray[np.int64],
    state_ts: NDArray[np.int64],
    mid: NDArray[np.float64],
    trade_ts: NDArray[np.int64],
    horizon_s: float,
) -> NDArray[np.float64]:
    """Signed mid move after each trade: ``sign × (mid(t + h) − mid_pre) / mid_pre × 10⁴``.

    Parameters
    ----------
    trade_sign
        +1 buyer-initiated, −1 seller-initiated.
    pre_index
        Index of the book state just before each trade (its pre-trade mid).
    state_ts, mid
        Book state times and mids.
    trade_ts
        Trade times, ns.
    horizon_s
        Horizon h, seconds, > 0.

    Returns
    -------
    ndarray
        Bps; positive when the price moved in the trade's direction (the liquidity provider lost).
        NaN when the horizon runs past the data or a mid is undefined.
    """
    if not horizon_s > 0:
        raise DataValidationError(f"'horizon_s' must be > 0, got {horizon_s}", field="horizon_s", value=horizon_s)
    target = trade_ts + round(horizon_s * 1e9)
    post = state_at(state_ts, target)
    valid = (pre_index >= 0) & (target <= state_ts[-1])
    pre_mid = np.where(pre_index >= 0, mid[np.clip(pre_index, 0, None)], np.nan)
    post_mid = mid[np.clip(post, 0, None)]
    with np.errstate(invalid="ignore"):
        out = trade_sign * (post_mid - pre_mid) / pre_mid * 1e4
    return np.where(valid, out, np.nan)
