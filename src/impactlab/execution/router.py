"""Smart order routing: Cont & Kukanov's (2017) split of an order between market and limit orders and
across venues, and the naive router it is compared with.

All costs are in bps of the (consolidated) mid.  For a buy of ``S`` shares over a short horizon, a market
share on venue k costs its half-spread plus taker fee, ``c_k = (ask_k − mid)/mid + f_k``; a limit share
resting at venue k's best bid earns ``h_k + r_k`` (half-spread plus maker rebate) if it fills, which it
does when the queue outflow ξ_k over the horizon passes the queue ahead Q_k; shares left unfilled cost
``λ_u + θ`` (under-fill penalty plus the impact of catching up) and shares over-filled ``λ_o``::

    V(M, L) = E[ Σ market cost(M) − Σ_k (h_k + r_k) min(L_k, (ξ_k − Q_k)⁺) + (λ_u + θ)(S − A)⁺ + λ_o (A − S)⁺ ]

with ``A = M + Σ_k min(L_k, (ξ_k − Q_k)⁺)``.  V is convex; :class:`ContKukanovRouter` minimises its sample
average over recent outflows (see the class for how the problem separates by venue once nothing may be
over-filled).  With one venue the optimum is explicit (:func:`ck_single_venue`):
``F(Q + L*) = (2h + f + r)/(h + r + λ_u + θ)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import ExecutionError
from impactlab.execution import _kernels as k
from impactlab.execution.venues import VenueQuote

__all__ = [
    "ContKukanovRouter",
    "NaiveRouter",
    "RouteDecision",
    "ck_expected_cost",
    "ck_single_venue",
    "queue_outflow_samples",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class RouteDecision:
    """Shares to send as market orders and as limit orders, by venue; ``limit_price`` holds the price of
    each venue's limit order (the own best, or one tick better); where it is missing, the own best."""

    market: dict[str, float]
    limit: dict[str, float]
    expected_cost_bps: float = float("nan")
    details: dict[str, float] = field(default_factory=dict)
    limit_price: dict[str, float] = field(default_factory=dict)

    @property
    def market_total(self) -> float:
        return float(sum(self.market.values()))

    @property
    def limit_total(self) -> float:
        return float(sum(self.limit.values()))


def _mid(quotes: Sequence[VenueQuote], side: int, mid: float | None) -> float:
    if mid is not None:
        return float(mid)
    best = min(q.price for q in quotes) if side > 0 else max(q.price for q in quotes)
    return float(best)


def _market_split(quotes: Sequence[VenueQuote], unit: F64, qty: float, lot: float) -> dict[str, float]:
    """Send ``qty`` market shares to the cheapest venues first, up to each one's displayed size; what is
    left goes to the cheapest venue."""
    out = {q.venue: 0.0 for q in quotes}
    left = qty
    order = np.argsort(unit, kind="stable")
    for i in order:
        if left <= 0:
            break
        take = min(left, quotes[i].size)
        out[quotes[i].venue] += take
        left -= take
    if left > 0:
        out[quotes[int(order[0])].venue] += left
    return {v: _lots(x, lot) for v, x in out.items()}


def _lots(x: float, lot: float) -> float:
    return float(math.floor(x / lot + 1e-9) * lot)


class NaiveRouter:
    """Everything as market orders to the best displayed price (fees, rebates and queues ignored)."""

    name = "naive (all market, best price)"

    def route(
        self, quantity: float, side: int, quotes: Sequence[VenueQuote], *, mid: float | None = None, **_: object
    ) -> RouteDecision:
        if not quotes:
            raise ExecutionError("no venues to route to")
        px = np.array([q.price for q in quotes]) * side
        market = _market_split(quotes, px, quantity, 1.0)
        market[quotes[int(np.argmin(px))].venue] += quantity - sum(market.values())
        return RouteDecision(market, {q.venue: 0.0 for q in quotes})


@dataclass(frozen=True)
class ContKukanovRouter:
    """Cont–Kukanov optimal order placement across venues, without over-filling.

    With the market order taking whatever the limit orders do not (``M = S − Σ L_k``, so ``A <= S`` and
    nothing is over-filled) and the market shares priced at the cheapest venue's all-in cost ``c``, the
    objective separates by venue: ``V = cS + Σ_k [(u − c) L_k − (g_k + u) E min(L_k, ξ̃_k)]`` with
    ``u = λ_u + θ``, ``g_k = h_k + r_k`` and ``ξ̃_k = (ξ_k − Q_k)⁺``.  Its optimum is the single-venue
    quantile condition on each venue, ``F̃_k(L_k) = (g_k + c − μ)/(g_k + u)``, with the multiplier μ >= 0
    of ``Σ L_k <= S`` found by bisection (compiled: :func:`impactlab.execution._kernels.ck_limits`).  The
    paper solves its general problem (over-filling allowed) by stochastic approximation; without
    over-filling the separable form is exact, and the tests check it against a brute-force search.

    Where the spread is two ticks or more, each venue's limit order may rest at the own best (behind the
    queue ``Q_k``, earning ``h_k + r_k``) or one tick better (nothing ahead, earning a tick less, filled by
    the flow in the quote's ``improve_outflow``).  The router takes, venue by venue, the level whose own
    optimum ``min_L (u − c)L − (g + u) E min(L, ξ̃)`` is lower, then splits across venues as above: exact
    among orders with one price per venue.

    Parameters
    ----------
    under_penalty_bps
        λ_u + θ: cost of each share left unfilled at the horizon (the penalty plus the impact of the
        catch-up market order), bps of the mid.
    max_samples
        Outflow samples used per venue (the most recent): bounds the decision time.  Only the set of
        samples matters; samples passed in ascending order skip the kernels' sort (the engine sorts once).
    lot
        Limit orders are rounded down to this lot; what rounding takes off goes to market.
    improve
        Whether to consider resting one tick inside the spread (needs quotes with ``improve_outflow``).
    """

    under_penalty_bps: float = 5.0
    max_samples: int = 256
    lot: float = 1.0
    improve: bool = True
    name: str = "Cont–Kukanov"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.under_penalty_bps) and self.under_penalty_bps >= 0):
            raise ExecutionError(f"'under_penalty_bps' must be finite and >= 0, got {self.under_penalty_bps!r}")
        if not (self.max_samples >= 1 and self.lot > 0):
            raise ExecutionError("Cont–Kukanov needs max_samples >= 1 and lot > 0")

    def arrays(self, side: int, quotes: Sequence[VenueQuote], mid: float | None = None) -> tuple[F64, F64, F64, F64]:
        """(market unit cost, displayed depth, limit gain, free outflow samples) in bps / shares, for limit
        orders at the own best."""
        unit, depth, gain, xi, *_ = self._arrays(side, quotes, mid, improve=False)
        return unit, depth, gain, xi

    def _arrays(
        self, side: int, quotes: Sequence[VenueQuote], mid: float | None, *, improve: bool
    ) -> tuple[F64, F64, F64, F64, F64, list[float], F64 | None, F64 | None, NDArray[np.bool_] | None]:
        """The router's arrays at the own best; with ``improve``, also those one tick inside the spread
        (gain, outflow, which venues may) for the venues whose quotes allow it (else ``None``)."""
        m = _mid(quotes, side, mid)
        unit = np.array([side * (q.price - m) / m * 1e4 + q.taker_fee_bps for q in quotes])
        depth = np.array([q.size for q in quotes])
        # h_k: the own best's distance from the mid (the far price's when the quote has no own best)
        near = [q.near_price if math.isfinite(q.near_price) else m - (q.price - m) for q in quotes]
        gain = np.array([side * (m - p) / m * 1e4 + q.maker_rebate_bps for q, p in zip(quotes, near, strict=True)])
        better = [q.can_improve(side) for q in quotes] if improve and self.improve else []
        n = min(q.outflow.size for q in quotes)
        if any(better):
            n = min(n, *(q.improve_outflow.size for q, b in zip(quotes, better, strict=True) if b))  # type: ignore[union-attr]
        n = min(n, self.max_samples)
        if n < 1:
            raise ExecutionError("every venue needs at least one queue-outflow sample")
        queue = np.array([q.queue for q in quotes])
        xi = np.maximum(np.column_stack([q.outflow[-n:] for q in quotes]) - queue, 0.0)
        if not any(better):
            return unit, depth, gain, xi, np.array(near), near, None, None, None
        zero = np.zeros(n)
        x_in = np.column_stack([q.improve_outflow[-n:] if b else zero for q, b in zip(quotes, better, strict=True)])  # type: ignore[index]
        tick = np.array([q.tick for q in quotes])
        return unit, depth, gain, xi, tick, near, gain - tick / m * 1e4, x_in, np.array(better)

    def route(
        self,
        quantity: float,
        side: int,
        quotes: Sequence[VenueQuote],
        *,
        mid: float | None = None,
        with_cost: bool = False,
    ) -> RouteDecision:
        """Split ``quantity`` shares (``side`` +1 buy / −1 sell) across ``quotes``; ``with_cost`` also
        evaluates the objective at the decision (``expected_cost_bps``, bps of the order)."""
        if not quotes:
            raise ExecutionError("no venues to route to")
        if not (math.isfinite(quantity) and quantity > 0):
            raise ExecutionError(f"'quantity' must be finite and > 0, got {quantity!r}")
        unit, depth, gain, xi, tick, near, g_in, x_in, better = self._arrays(side, quotes, mid, improve=True)
        c, u = float(unit.min()), float(self.under_penalty_bps)
        if better is None:
            lim = k.ck_limits(float(quantity), c, gain, xi, u)
            prices = near
        else:  # gain and xi become the chosen levels' in place
            lim, level = k.ck_route(float(quantity), c, gain, xi, g_in, x_in, better, u)
            prices = [p + side * t * lv for p, t, lv in zip(near, tick, level, strict=True)]
        limit = {q.venue: _lots(float(x), self.lot) for q, x in zip(quotes, lim, strict=True)}
        limit_price = {q.venue: float(p) for q, p in zip(quotes, prices, strict=True)}
        m_qty = quantity - sum(limit.values())
        market = _market_split(quotes, unit, m_qty, self.lot)
        market[quotes[int(np.argmin(unit))].venue] += m_qty - sum(market.values())
        if not with_cost:
            return RouteDecision(market, limit, limit_price=limit_price)
        cost = ck_expected_cost(
            quantity, m_qty, np.array([limit[q.venue] for q in quotes]), unit, depth, gain, xi, self.under_penalty_bps
        )
        return RouteDecision(market, limit, cost, limit_price=limit_price)


def ck_expected_cost(
    target: float,
    market_qty: float,
    limit_qty: F64,
    unit_cost: F64,
    depth: F64,
    limit_gain: F64,
    free_outflow: F64,
    under_penalty: float,
    over_penalty: float = 0.0,
) -> float:
    """Sample-average V(M, L) in bps·shares / target, i.e. bps of the order (the router's objective)."""
    order = np.argsort(unit_cost, kind="stable")
    left, mc = market_qty, 0.0
    for i in order:
        take = min(left, depth[i])
        mc += take * unit_cost[i]
        left -= take
    mc += max(left, 0.0) * unit_cost[order[-1]]
    fills = np.minimum(limit_qty[None, :], free_outflow)
    a = market_qty + fills.sum(axis=1)
    v = mc - fills @ limit_gain + under_penalty * np.maximum(target - a, 0) + over_penalty * np.maximum(a - target, 0)
    return float(v.mean() / target)


def ck_single_venue(
    target: float,
    queue: float,
    half_spread_bps: float,
    taker_fee_bps: float,
    maker_rebate_bps: float,
    under_penalty_bps: float,
    outflow: F64,
) -> tuple[float, float]:
    """Cont–Kukanov's explicit single-venue split ``(M*, L*)``: ``L* = clip(F⁻¹(p) − Q, 0, S)`` with
    ``p = (2h + f + r)/(h + r + λ_u + θ)`` and F the empirical distribution of ``outflow``; ``M* = S − L*``."""
    h, f, r, u = half_spread_bps, taker_fee_bps, maker_rebate_bps, under_penalty_bps
    p = (2 * h + f + r) / (h + r + u)
    if p >= 1:
        lim = target
    else:
        x = np.sort(np.asarray(outflow, float))
        q_p = float(x[min(math.ceil(p * x.size) - 1, x.size - 1)]) if p > 0 else 0.0
        lim = float(np.clip(q_p - queue, 0.0, target))
    return target - lim, lim


def queue_outflow_samples(
    day: object,
    side: int,
    horizon_s: float,
    *,
    executions_only: bool = False,
    improve_ticks: int = 0,
    max_samples: int | None = None,
) -> F64:
    """Cont–Kukanov's ξ samples from a day: in each window of ``horizon_s`` seconds, how much of the
    queue at the price that was best on ``side`` (+1: the bid, where a buyer's limit order rests) when the
    window began was executed or cancelled during it.

    The price is held fixed, as an order resting there would be: when the market moves away (a better bid
    arrives, or the level is cancelled and trading moves elsewhere), the queue at our price stops flowing out.
    By default ξ is the paper's outflow, trades and cancellations at the price; ``executions_only`` counts
    trades alone (cancellations may come from behind an order and never fill it).

    With ``improve_ticks = j > 0`` the samples are for an order ``j`` ticks better than that best, alone at
    its price: what reaches it is every execution on ``side`` at its price or worse (the seller went through
    it) and every new order on the other side priced through it (as the replay fills it).
    """
    from impactlab.data.market import EventFlag, EventKind, MarketDay

    if not isinstance(day, MarketDay):
        raise TypeError(f"expected a MarketDay, got {type(day).__name__}")
    ev, b = day.events, day.book
    bid_t, ask_t = b.ticks(day.tick_size)
    best = bid_t[:, 0] if side > 0 else ask_t[:, 0]
    if day.has_order_ids and len(ev):
        t, esd, px, sz = ev.ts_ns, ev.side, ev.price_ticks, ev.size
        hidden = (ev.flags & np.uint8(EventFlag.HIDDEN)) != 0
        fill = (ev.kind == EventKind.FILL) & ~hidden
        add = ev.kind == EventKind.ADD
        cancel = ev.kind == EventKind.CANCEL
        pre = np.searchsorted(b.event_index, np.arange(len(ev)), side="left") - 1
    else:  # no order events: the prints at the price are the outflow (cancellations are not seen)
        tr = day.trades
        t, esd = tr.ts_ns, (-tr.sign).astype(np.int8)
        px, sz = np.rint(tr.price / day.tick_size).astype(np.int64), tr.size
        fill = tr.sign != 0
        add = cancel = np.zeros(t.size, dtype=bool)
        pre = np.searchsorted(b.ts_ns, t, side="left") - 1
    if t.size == 0:
        return np.zeros(0, dtype=np.float64)
    win = ((t - t[0]) // int(horizon_s * 1e9)).astype(np.int64)
    first = np.searchsorted(win, np.arange(int(win[-1]) + 1), side="left")
    # the best price just before each window's first event (the book state before it)
    p_start = best[np.clip(pre[first], 0, None)]
    if improve_ticks > 0:
        ours = p_start[win] + side * improve_ticks
        hit = (esd == side) & fill & (side * (ours - px) >= 0)
        cross = (esd == -side) & add & (side * (ours - px) >= 0)
        mask = hit | cross
        sums = np.bincount(win[mask], weights=sz[mask].astype(float), minlength=int(win[-1]) + 1)
        return (sums[-max_samples:] if max_samples is not None else sums).astype(np.float64)
    flow = (esd == side) & fill if executions_only else (esd == side) & (cancel | fill)
    at_price = px == p_start[win]
    mask = flow & at_price
    sums = np.bincount(win[mask], weights=sz[mask].astype(float), minlength=int(win[-1]) + 1)
    if max_samples is not None:
        sums = sums[-max_samples:]
    return sums.astype(np.float64)
