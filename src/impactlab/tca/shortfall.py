"""Implementation shortfall of executed parent orders, decomposed, with the usual benchmarks.

For a parent order of ``X`` shares on side ``s`` decided at mid ``D``, first worked at mid ``A``
(arrival), with fills ``(q_i, p_i)`` of children sent when the mid was ``m_i``, ``U`` shares unfilled,
the mid ``E`` at the end and ``P`` a fixed time after (post-trade), in bps of ``X·D``::

    delay        = s (A − D) Σq_i                         the market's move before the first child
    temporary    = s Σ q_i (p_i − m_i)                    spread and temporary impact of each child
    permanent    = s (P − A) Σ q_i w_i                    the move that stayed after the trade, built up
                                                          linearly with the shares done (w_i: the share
                                                          of the order done at fill i, mid-fill)
    timing       = s Σ q_i (m_i − A) − permanent          what is left of the move during execution
    opportunity  = s U (E − D)                            shares never filled, marked at the end
    fees         = Σ fee_i

and ``shortfall = delay + temporary + permanent + timing + opportunity + fees`` exactly (Perold's
implementation shortfall against the decision price).  ``reversion_bps = s (E − P)/D`` is the part of
the end price that came back after the trade (the temporary impact still in the price at the end).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from impactlab.data import ChildOrder, Fill, ParentOrder
from impactlab.errors import DataValidationError

__all__ = ["TCAResult", "aggregate", "analyse"]

_PARTS = ("delay_bps", "temporary_bps", "permanent_bps", "timing_bps", "opportunity_bps", "fees_bps")


@dataclass(frozen=True)
class TCAResult:
    """The shortfall of one parent order and its parts (bps of the decision value ``X·D``), the
    benchmarks (bps, positive = worse than the benchmark), and realised against predicted cost."""

    order_id: str
    symbol: str
    side: int
    quantity: float
    filled: float
    average_price: float
    decision_mid: float
    arrival_mid: float
    end_mid: float
    post_mid: float
    shortfall_bps: float
    delay_bps: float
    temporary_bps: float
    permanent_bps: float
    timing_bps: float
    opportunity_bps: float
    fees_bps: float
    reversion_bps: float
    vs_arrival_bps: float
    vs_interval_vwap_bps: float
    vs_close_bps: float
    fills: int
    maker_fraction: float
    predicted_bps: dict[str, float] = field(default_factory=dict)
    end_ns: int = 0
    """When execution ended: the end mid's time (the post-trade mid is read ``post_s`` later)."""
    post_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def parts(self) -> dict[str, float]:
        return {p: float(getattr(self, p)) for p in _PARTS}


def _bps(x: float, base: float) -> float:
    return float(x / base * 1e4) if base else float("nan")


def analyse(
    parent: ParentOrder,
    fills: Sequence[Fill],
    *,
    mid_at: Callable[[int], float],
    children: Sequence[ChildOrder] = (),
    decision_ns: int | None = None,
    end_ns: int | None = None,
    post_s: float = 60.0,
    interval_vwap: float = float("nan"),
    close: float = float("nan"),
    predicted_bps: Mapping[str, float] | None = None,
) -> TCAResult:
    """TCA of one parent order.

    Parameters
    ----------
    parent, fills, children
        The order, its fills and its child orders (a child's ``created_ns`` gives the mid its fills are
        measured against; without children, every fill is measured against the arrival mid).
    mid_at
        ``mid_at(ts_ns)``: the market's mid at a time (from the book, a replay or recorded quotes).
    decision_ns, end_ns
        When the order was decided (default: its ``start_ns``) and ended (default: the last fill, or
        ``end_ns`` of the parent if later).
    post_s
        Seconds after the end at which the post-trade mid is read.
    interval_vwap, close
        Benchmarks: the market's VWAP over the execution interval, and the close.
    predicted_bps
        Pre-trade expected cost by model name, kept with the result for realised-against-predicted.
    """
    s = int(parent.side)
    x = float(parent.quantity)
    own = [f for f in fills if f.parent_order_id == parent.order_id]
    if len(own) != len(fills):
        raise DataValidationError(f"fills of other parent orders given for {parent.order_id!r}", field="fills")
    t_dec = int(parent.start_ns if decision_ns is None else decision_ns)
    kids = sorted(children, key=lambda c: c.created_ns)
    first = kids[0].created_ns if kids else (min(f.ts_ns for f in own) if own else t_dec)
    last_fill = max((f.ts_ns for f in own), default=parent.end_ns)
    t_end = int(end_ns if end_ns is not None else max(parent.end_ns, last_fill))
    d, a = float(mid_at(t_dec)), float(mid_at(first))
    e, p = float(mid_at(t_end)), float(mid_at(t_end + int(post_s * 1e9)))
    for name, v in (("decision mid", d), ("arrival mid", a), ("end mid", e)):
        if not (np.isfinite(v) and v > 0):
            raise DataValidationError(f"order {parent.order_id!r}: no {name} from the market path", field=name, value=v)
    sent_mid = {c.client_order_id: float(mid_at(c.created_ns)) for c in kids}
    q = np.array([f.quantity for f in own], float)
    px = np.array([f.price for f in own], float)
    m = np.array([sent_mid.get(f.client_order_id, a) for f in own], float)
    fees = float(sum(f.fee for f in own))
    filled = float(q.sum())
    unfilled = max(x - filled, 0.0)
    base = x * d
    cum = np.cumsum(q) - q / 2  # shares done at each fill, mid-fill
    w = cum / filled if filled > 0 else cum
    perm_move = (p - a) if np.isfinite(p) else 0.0
    permanent = s * perm_move * float(q @ w)
    temporary = s * float(q @ (px - m))
    during = s * float(q @ (m - a))
    delay = s * (a - d) * filled
    opportunity = s * unfilled * (e - d)
    total = delay + temporary + during + opportunity + fees
    avg = float(q @ px / filled) if filled > 0 else float("nan")
    maker = float(sum(f.quantity for f in own if f.liquidity == "maker") / filled) if filled > 0 else 0.0
    return TCAResult(
        order_id=parent.order_id,
        symbol=parent.symbol,
        side=s,
        quantity=x,
        filled=filled,
        average_price=avg,
        decision_mid=d,
        arrival_mid=a,
        end_mid=e,
        post_mid=p,
        shortfall_bps=_bps(total, base),
        delay_bps=_bps(delay, base),
        temporary_bps=_bps(temporary, base),
        permanent_bps=_bps(permanent, base),
        timing_bps=_bps(during - permanent, base),
        opportunity_bps=_bps(opportunity, base),
        fees_bps=_bps(fees, base),
        reversion_bps=_bps(s * (e - p), d) if np.isfinite(p) else float("nan"),
        vs_arrival_bps=_bps(s * (avg - a), a),
        vs_interval_vwap_bps=_bps(s * (avg - interval_vwap), interval_vwap),
        vs_close_bps=_bps(s * (avg - close), close),
        fills=len(own),
        maker_fraction=maker,
        predicted_bps=dict(predicted_bps or {}),
        end_ns=t_end,
        post_s=float(post_s),
    )


def aggregate(results: Sequence[TCAResult]) -> dict[str, Any]:
    """Value-weighted averages of the shortfall, its parts and the benchmarks over many orders, with the
    mean realised-minus-predicted error of each model."""
    if not results:
        return {"orders": 0}
    wts = np.array([r.quantity * r.decision_mid for r in results])
    out: dict[str, Any] = {"orders": len(results), "notional": float(wts.sum())}
    for col in ("shortfall_bps", *_PARTS, "vs_arrival_bps", "vs_interval_vwap_bps", "vs_close_bps"):
        v = np.array([getattr(r, col) for r in results], float)
        ok = np.isfinite(v)
        out[col] = float(np.average(v[ok], weights=wts[ok])) if ok.any() else float("nan")
    models = sorted({m for r in results for m in r.predicted_bps})
    out["models"] = {}
    for model in models:
        pairs = [(r.shortfall_bps, r.predicted_bps[model]) for r in results if model in r.predicted_bps]
        err = np.array([a - b for a, b in pairs])
        out["models"][model] = {
            "orders": len(pairs),
            "mean_error_bps": float(err.mean()),
            "rmse_bps": float(np.sqrt((err**2).mean())),
        }
    return out
