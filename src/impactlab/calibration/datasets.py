"""Calibration tables: parent-order outcomes and bar flows, in the columns the impact models read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

from impactlab.data.market import MarketDay
from impactlab.data.store import Store
from impactlab.errors import CalibrationError

__all__ = [
    "TRADING_DAY_NS",
    "bar_flows",
    "large_order_events",
    "market_trade_series",
    "order_outcomes",
    "outcomes_from_store",
    "trade_series",
]

TRADING_DAY_NS = int(6.5 * 3600 * 1e9)
"""One US equity session (09:30–16:00), the unit of ``duration_days``."""


def order_outcomes(orders: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """Derived columns of completed parent orders (the interchange file of ``PARENT_ORDERS``).

    Returns the completed orders (all outcome columns present) with, added:

    - ``cost_bps``: realised cost ``side · (avg_price − arrival_mid) / arrival_mid · 10⁴`` (J);
    - ``permanent_bps``: ``side · (post_mid − arrival_mid) / arrival_mid · 10⁴`` (I);
    - ``temporary_bps``: ``cost_bps − permanent_bps / 2`` (K);
    - ``duration_days``: ``(end_ns − start_ns)`` in 6.5-hour sessions;
    - ``participation``: ``quantity / (adv · duration_days)``;
    - ``pov``: ``quantity / (quantity + adv · duration_days)``, the order's share of the volume while it ran.

    ``attrs['orders_in_flight']`` counts the orders left out because an outcome is still missing.
    """
    df = orders.to_pandas() if isinstance(orders, pa.Table) else orders.copy()
    need = ["side", "quantity", "start_ns", "end_ns", "arrival_mid", "avg_price", "post_mid", "adv", "daily_vol"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise CalibrationError(f"parent-order table lacks columns {missing}")
    done = df[need].notna().all(axis=1)
    out = df[done].reset_index(drop=True)
    side = out["side"].to_numpy(float)
    arr = out["arrival_mid"].to_numpy(float)
    out["cost_bps"] = side * (out["avg_price"].to_numpy(float) - arr) / arr * 1e4
    out["permanent_bps"] = side * (out["post_mid"].to_numpy(float) - arr) / arr * 1e4
    out["temporary_bps"] = out["cost_bps"] - out["permanent_bps"] / 2
    out["duration_days"] = (out["end_ns"] - out["start_ns"]).to_numpy(float) / TRADING_DAY_NS
    vt = out["adv"].to_numpy(float) * out["duration_days"].to_numpy(float)
    with np.errstate(divide="ignore"):
        out["participation"] = out["quantity"].to_numpy(float) / vt
    out["pov"] = out["quantity"].to_numpy(float) / (out["quantity"].to_numpy(float) + vt)
    if "shares_outstanding" in out and out["shares_outstanding"].isna().any():
        out = out.drop(columns="shares_outstanding")
    out.attrs["orders_in_flight"] = int((~done).sum())
    return out


def bar_flows(bars: pd.DataFrame | pa.Table, *, adv: float, daily_vol: float) -> pd.DataFrame:
    """Bars as impact observations: the bar's net flow is the 'order', its mid move the cost.

    Adds ``quantity = |signed_volume|``, ``side = sign(signed_volume)``, ``adv``, ``daily_vol`` and
    ``cost_bps = side · return_bps`` (the move in the direction of the net flow); bars without a
    defined return are left out.  Bars with zero net flow keep ``side = 0`` (they carry no cost).
    """
    if adv <= 0 or daily_vol <= 0:
        raise CalibrationError(f"'adv' and 'daily_vol' must be > 0, got {adv}, {daily_vol}")
    df = bars.to_pandas() if isinstance(bars, pa.Table) else bars.copy()
    df = df[np.isfinite(df["return_bps"].to_numpy(float))].reset_index(drop=True)
    sv = df["signed_volume"].to_numpy(float)
    df["side"] = np.sign(sv)
    df["quantity"] = np.abs(sv)
    df["adv"] = float(adv)
    df["daily_vol"] = float(daily_vol)
    df["cost_bps"] = df["side"] * df["return_bps"]
    return df


def outcomes_from_store(store: Store, **filters: Any) -> pd.DataFrame:
    """The parent-order outcome table rebuilt from the system's own records in the store.

    ``avg_price`` is recomputed from the fills of each parent order (volume-weighted); the arrival,
    end and post mids, ADV and volatility come from the ``parent_orders`` rows.  Orders without fills
    or outcomes are counted in ``attrs['orders_in_flight']``.
    """
    orders = store.read("parent_orders").to_pandas()
    fills = store.read("fills").to_pandas()
    if filters:
        for k, v in filters.items():
            orders = orders[orders[k] == v]
    if len(fills):
        g = fills.assign(notional=fills["price"] * fills["quantity"]).groupby("parent_order_id")
        vwap = (g["notional"].sum() / g["quantity"].sum()).rename("fill_avg_price")
        filled = g["quantity"].sum().rename("filled_quantity")
        orders = orders.merge(vwap, left_on="order_id", right_index=True, how="left").merge(
            filled, left_on="order_id", right_index=True, how="left"
        )
        orders["avg_price"] = orders["fill_avg_price"].where(orders["fill_avg_price"].notna(), orders["avg_price"])
        orders = orders.drop(columns=["fill_avg_price"])
    return order_outcomes(orders)


def trade_series(
    ts_ns: NDArray[np.int64], sign: NDArray[Any], size: NDArray[np.float64], mid_before: NDArray[np.float64]
) -> pd.DataFrame:
    """Trades in trade time for the propagator: one row per aggressive order.

    Consecutive prints with the same timestamp and sign are one market order walking the book (LOBSTER
    writes one execution message per resting order hit), so they are merged: sizes summed, the mid
    taken before the first print.  Returns ``ts_ns, sign, size, mid, mid_bps`` (10⁴·ln mid) and
    ``next_return_bps`` (the log-mid change to the next order; the last row has none and is dropped).
    """
    ts = np.asarray(ts_ns)
    sg = np.asarray(sign, float)
    ok = np.isfinite(mid_before) & (mid_before > 0) & (sg != 0)
    ts, sg, sz, mid = ts[ok], sg[ok], np.asarray(size, float)[ok], np.asarray(mid_before, float)[ok]
    if ts.size < 2:
        raise CalibrationError(f"too little data: {ts.size} trades with a defined mid")
    new = np.ones(ts.size, dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (sg[1:] != sg[:-1])
    start = np.flatnonzero(new)
    df = pd.DataFrame(
        {
            "ts_ns": ts[start],
            "sign": sg[start],
            "size": np.add.reduceat(sz, start),
            "mid": mid[start],
        }
    )
    df["mid_bps"] = 1e4 * np.log(df["mid"].to_numpy())
    df["next_return_bps"] = np.append(np.diff(df["mid_bps"].to_numpy()), np.nan)
    return df.iloc[:-1].reset_index(drop=True)


def market_trade_series(day: MarketDay) -> pd.DataFrame:
    """:func:`trade_series` of a day: its trades (visible and hidden), the mid of the book state before each.

    Unsigned prints (sign 0) are left out: they carry no direction.
    """
    from impactlab.features.book import l1_features
    from impactlab.features.trades import pre_trade_state

    tr = day.trades
    mid = l1_features(day)["mid"]
    pre = pre_trade_state(day)
    mid_before = np.where(pre >= 0, mid[np.clip(pre, 0, None)], np.nan)
    signed = tr.sign != 0
    return trade_series(tr.ts_ns[signed], tr.sign[signed], tr.size[signed], mid_before[signed])


def large_order_events(
    day: MarketDay, *, quantile: float = 0.99, horizons_s: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
) -> pd.DataFrame:
    """Event study of large market orders: how far the mid moved, and how it recovered.

    Market orders are merged executions (:func:`trade_series`); those at or above the ``quantile`` of
    size are events.  For each event and horizon τ the row holds ``signed_quantity`` (sign × size),
    ``tau_s``, ``event`` (an id), ``mid_before`` and ``move_bps``: ``10⁴ · (mid(t + τ) − mid_before) /
    mid_before`` with τ = 0 the mid right after the order.  Horizons past the end of the day are left out.
    """
    from impactlab.features.book import l1_features
    from impactlab.features.trades import state_at

    if not 0 < quantile < 1:
        raise CalibrationError(f"'quantile' must be in (0, 1), got {quantile}")
    mid = l1_features(day)["mid"]
    tr = day.trades
    orders = market_trade_series(day)
    if orders.empty:
        raise CalibrationError(f"{day.label}: no signed trades for an event study")
    big = orders[orders["size"] >= np.quantile(orders["size"], quantile)].reset_index(drop=True)
    flow = np.concatenate([[0.0], np.cumsum(tr.sign * tr.size)])
    rows = []
    for tau in horizons_s:
        when = big["ts_ns"].to_numpy() + round(tau * 1e9)
        idx = state_at(day.ts_ns, when)
        after = mid[np.clip(idx, 0, None)]
        ok = (when <= day.ts_ns[-1]) & np.isfinite(after)
        later = flow[np.searchsorted(tr.ts_ns, when, "right")] - flow[np.searchsorted(tr.ts_ns, big["ts_ns"], "right")]
        rows.append(
            pd.DataFrame(
                {
                    "event": np.flatnonzero(ok),
                    "ts_ns": big["ts_ns"].to_numpy()[ok],
                    "tau_s": tau,
                    "signed_quantity": (big["sign"] * big["size"]).to_numpy()[ok],
                    "mid_before": big["mid"].to_numpy()[ok],
                    "move_bps": 1e4 * (after[ok] - big["mid"].to_numpy()[ok]) / big["mid"].to_numpy()[ok],
                    "later_signed_volume": later[ok],
                }
            )
        )
    return pd.concat(rows).sort_values(["event", "tau_s"]).reset_index(drop=True)
