"""Walk-the-book cost of an immediate market order against one book snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from impactlab.errors import InsufficientDepthError

__all__ = ["WalkResult", "walk_the_book"]


@dataclass(frozen=True)
class WalkResult:
    """Outcome of a market order walking the book.

    Attributes
    ----------
    side
        +1 buy (consumes asks), −1 sell (consumes bids).
    requested, filled
        Shares asked for and shares the visible depth could fill.
    avg_price
        Volume-weighted fill price, currency (NaN if nothing filled).
    arrival_mid
        Mid of the snapshot, the cost benchmark.
    cost_bps
        ``side × (avg_price − arrival_mid) / arrival_mid × 10⁴``: positive is a cost, for buys and sells.
    levels_consumed
        Levels touched, the last possibly in part.
    worst_price
        Price of the last level touched.
    complete
        Whether ``filled == requested``.
    """

    side: int
    requested: float
    filled: float
    avg_price: float
    arrival_mid: float
    cost_bps: float
    levels_consumed: int
    worst_price: float
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return dict(self.__dict__)


def walk_the_book(
    quantity: float,
    side: int,
    *,
    ask_price: ArrayLike,
    ask_size: ArrayLike,
    bid_price: ArrayLike,
    bid_size: ArrayLike,
    allow_partial: bool = False,
) -> WalkResult:
    """Average price and cost of a market order of ``quantity`` shares against a snapshot.

    Parameters
    ----------
    quantity
        Shares, > 0.
    side
        +1 buy, −1 sell.
    ask_price, ask_size, bid_price, bid_size
        Levels best first; empty levels may be NaN-priced or zero-sized and are skipped.
    allow_partial
        If the visible depth is too small, return a partial-fill report instead of raising.

    Returns
    -------
    WalkResult

    Raises
    ------
    InsufficientDepthError
        The visible depth is smaller than ``quantity`` and ``allow_partial`` is false.
    ValueError
        Bad arguments (non-positive quantity, side not ±1, no two-sided book for the mid).

    Notes
    -----
    With levels ``(p_i, s_i)`` consumed best first, ``avg = Σ p_i f_i / Σ f_i`` with ``f_i = min(s_i,
    remaining)``, and ``cost_bps = side · (avg − mid)/mid · 10⁴``; the cost of a buy in a book and of
    a sell in its mirror image are equal.
    """
    if not np.isfinite(quantity) or quantity <= 0:
        raise ValueError(f"'quantity' must be finite and > 0, got {quantity}")
    if side not in (1, -1):
        raise ValueError(f"'side' must be +1 or -1, got {side}")
    ap, az = np.asarray(ask_price, float), np.asarray(ask_size, float)
    bp, bz = np.asarray(bid_price, float), np.asarray(bid_size, float)
    a_ok = np.isfinite(ap) & (az > 0)
    b_ok = np.isfinite(bp) & (bz > 0)
    if not a_ok.any() or not b_ok.any():
        raise ValueError("a two-sided book is needed for the arrival mid")
    mid = 0.5 * (ap[a_ok][0] + bp[b_ok][0])
    px, sz = (ap[a_ok], az[a_ok]) if side == 1 else (bp[b_ok], bz[b_ok])
    cum = np.cumsum(sz)
    total = float(cum[-1])
    if total < quantity and not allow_partial:
        raise InsufficientDepthError(
            f"market {'buy' if side == 1 else 'sell'} of {quantity:g} exceeds the visible depth of {total:g}"
            f" over {px.size} levels"
        )
    filled = min(float(quantity), total)
    n = int(np.searchsorted(cum, filled, side="left")) + 1
    fills = sz[:n].copy()
    fills[-1] = filled - (cum[n - 2] if n > 1 else 0.0)
    avg = float(px[:n] @ fills / filled)
    return WalkResult(
        side=side,
        requested=float(quantity),
        filled=filled,
        avg_price=avg,
        arrival_mid=float(mid),
        cost_bps=float(side * (avg - mid) / mid * 1e4),
        levels_consumed=n,
        worst_price=float(px[n - 1]),
        complete=filled >= quantity,
    )
