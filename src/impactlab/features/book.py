"""Per-event book features: mid, microprice, spread, depth, imbalance, and order-flow imbalance."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data.market import MarketDay
from impactlab.errors import DataValidationError
from impactlab.features import _kernels as fk

__all__ = ["book_features", "l1_features", "ofi_events"]

F64 = NDArray[np.float64]


def book_features(
    bid_price: F64, bid_size: F64, ask_price: F64, ask_size: F64, *, tick_size: float, depth_levels: int = 5
) -> dict[str, F64]:
    """Features of each book state.

    Parameters
    ----------
    bid_price, bid_size, ask_price, ask_size
        ``(n, L)`` levels, best first; empty levels NaN-priced with size 0.
    tick_size
        Price increment, currency.
    depth_levels
        Cumulative depth and depth imbalance are reported for levels 1..``min(depth_levels, L)``.

    Returns
    -------
    dict of arrays, each ``(n,)``
        ``mid``, ``microprice``, ``spread``, ``spread_ticks``, ``spread_bps``, ``bid_depth_k``,
        ``ask_depth_k``, ``imbalance_k`` for k = 1..K (``imbalance_k = (bid_depth_k − ask_depth_k) /
        (bid_depth_k + ask_depth_k)``).  One-sided states give NaN mid, spread and microprice.

    Notes
    -----
    Microprice = ``(P^A q^B + P^B q^A) / (q^A + q^B)``: the mid tilted toward the thinner side.
    """
    if not tick_size > 0:
        raise DataValidationError(f"'tick_size' must be > 0, got {tick_size}", field="tick_size", value=tick_size)
    pb, qb, pa, qa = bid_price[:, 0], bid_size[:, 0], ask_price[:, 0], ask_size[:, 0]
    mid = 0.5 * (pb + pa)
    spread = pa - pb
    with np.errstate(invalid="ignore", divide="ignore"):
        micro = (pa * qb + pb * qa) / (qa + qb)
        out: dict[str, F64] = {
            "mid": mid,
            "microprice": micro,
            "spread": spread,
            "spread_ticks": spread / tick_size,
            "spread_bps": spread / mid * 1e4,
        }
        k_max = min(depth_levels, bid_size.shape[1])
        cb = np.cumsum(bid_size[:, :k_max], axis=1)
        ca = np.cumsum(ask_size[:, :k_max], axis=1)
        for k in range(k_max):
            out[f"bid_depth_{k + 1}"] = cb[:, k]
            out[f"ask_depth_{k + 1}"] = ca[:, k]
            tot = cb[:, k] + ca[:, k]
            out[f"imbalance_{k + 1}"] = np.where(tot > 0, (cb[:, k] - ca[:, k]) / tot, np.nan)
    return out


def ofi_events(bid_price: F64, bid_size: F64, ask_price: F64, ask_size: F64) -> F64:
    """Order-flow imbalance contribution ``e_n`` of each L1 book change (Cont, Kukanov & Stoikov 2014).

    Parameters
    ----------
    bid_price, bid_size, ask_price, ask_size
        ``(n,)`` best levels; an empty side is NaN-priced with size 0.

    Returns
    -------
    ndarray ``(n,)``
        ``e_0 = 0`` (no previous state), then

        ``e_n = 1{P^B_n ≥ P^B_{n−1}} q^B_n − 1{P^B_n ≤ P^B_{n−1}} q^B_{n−1}
        − 1{P^A_n ≤ P^A_{n−1}} q^A_n + 1{P^A_n ≥ P^A_{n−1}} q^A_{n−1}``.

    Notes
    -----
    An empty bid is treated as price −∞ and an empty ask as +∞ (size 0), so a side that appears or
    disappears contributes its whole size.

    References
    ----------
    Cont, R., Kukanov, A. & Stoikov, S. (2014). The price impact of order book events. Journal of
    Financial Econometrics 12(1), 47–88.
    """
    pb = np.where(np.isfinite(bid_price), bid_price, -np.inf)
    pa = np.where(np.isfinite(ask_price), ask_price, np.inf)
    qb = np.where(np.isfinite(bid_price), bid_size, 0.0)
    qa = np.where(np.isfinite(ask_price), ask_size, 0.0)
    e = np.zeros(pb.shape[0], dtype=np.float64)
    if e.size < 2:
        return e
    e[1:] = (
        (pb[1:] >= pb[:-1]) * qb[1:]
        - (pb[1:] <= pb[:-1]) * qb[:-1]
        - (pa[1:] <= pa[:-1]) * qa[1:]
        + (pa[1:] >= pa[:-1]) * qa[:-1]
    )
    return e


def l1_features(day: MarketDay, *, compiled: bool = True) -> dict[str, F64]:
    """L1 features of every book state of a day in one compiled pass over its level-1 columns.

    Returns ``mid``, ``microprice``, ``spread_ticks``, ``spread_bps``, ``imbalance_1`` and ``ofi``, equal to
    :func:`book_features` and :func:`ofi_events` on the float views (tested), without building them.
    """
    out = np.empty((len(day), len(fk.L1_COLUMNS)), dtype=np.float64)
    b = day.book
    cols = [np.ascontiguousarray(a[:, 0]) for a in (b.bid_price, b.bid_size, b.ask_price, b.ask_size)]
    fn: Any = fk.l1_features if compiled else fk.l1_features_py
    fn(*cols, day.tick_size, out)
    return {name: out[:, j] for j, name in enumerate(fk.L1_COLUMNS)}
