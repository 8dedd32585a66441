"""Trades from order-book data, their signs, and the adverse-selection proxy."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data.binance import BinanceCapture
from impactlab.data.lobster import LobsterDay

__all__ = ["adverse_selection_bps", "binance_trades", "lobster_trades", "state_at"]


def lobster_trades(day: LobsterDay) -> dict[str, NDArray[Any]]:
    """Executions (types 4 and 5) of a LOBSTER day with their aggressor sign.

    The message's direction is the side of the resting order that was hit, so the aggressor sign is
    its negative: executing a sell limit order is a buyer-initiated trade (LOBSTER readme).

    Returns
    -------
    dict
        ``event_index`` (row in the day), ``ts_ns``, ``price``, ``size``, ``sign`` (+1 buyer-initiated),
        ``hidden`` (type 5).
    """
    idx = np.flatnonzero((day.event_type == 4) | (day.event_type == 5))
    return {
        "event_index": idx.astype(np.int64),
        "ts_ns": day.ts_ns[idx],
        "price": day.price_e4[idx] / 10_000.0,
        "size": day.size[idx].astype(np.float64),
        "sign": (-day.side[idx]).astype(np.int8),
        "hidden": day.event_type[idx] == 5,
    }


def binance_trades(cap: BinanceCapture) -> dict[str, NDArray[Any]]:
    """Trades of a capture; the sign is −1 when the buyer was the maker (``m`` true), else +1."""
    t = cap.trades
    return {"ts_ns": t["local_ns"], "price": t["price"], "size": t["size"], "sign": t["sign"]}


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
    if horizon_s <= 0:
        raise ValueError(f"'horizon_s' must be > 0, got {horizon_s}")
    target = trade_ts + round(horizon_s * 1e9)
    post = state_at(state_ts, target)
    valid = (pre_index >= 0) & (target <= state_ts[-1])
    pre_mid = np.where(pre_index >= 0, mid[np.clip(pre_index, 0, None)], np.nan)
    post_mid = mid[np.clip(post, 0, None)]
    with np.errstate(invalid="ignore"):
        out = trade_sign * (post_mid - pre_mid) / pre_mid * 1e4
    return np.where(valid, out, np.nan)
