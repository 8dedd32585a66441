"""The matching engine the trader talks to: one order API over a generated market or a historical replay.

:class:`Venue` owns the book arrays and the trader's order table and runs the compiled kernels of
:mod:`impactlab.simulation._kernels`; a subclass supplies the flow of everyone else's orders
(:class:`~impactlab.simulation.QueueReactiveMarket`, :class:`~impactlab.simulation.ReplayMarket`).

Time
    The venue keeps an exchange clock.  ``step(local_ns)`` moves it to ``local_ns − feed latency`` (what
    the trader can have seen by then), applying the trader's orders at their arrival times
    (``submit`` time + entry latency) in between, and returns the events whose receive time
    (exchange time + response latency) is at or before ``local_ns``.  Each event carries both times.
Orders
    ``market``, ``limit`` (good till cancelled) and ``ioc`` limit orders; ``cancel``.  Price-time priority:
    an aggressive order walks the opposite side from the best price; a resting order joins the back of
    its level and fills when aggressors have consumed everything ahead of it.  An order the trader could
    not have meant (a size that is not positive, a price off the tick grid, a duplicate or unknown id, an
    order that would trade against the trader's own resting order) is rejected with a reason; nothing the
    trader sends raises.
"""

from __future__ import annotations

import heapq
import itertools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import SimulationError
from impactlab.simulation import _kernels as k
from impactlab.simulation.models import ConstantLatency, FeeModel, LatencyModel, OrderEvent

__all__ = ["BookView", "Venue"]

OrderType = Literal["market", "limit", "ioc"]


@dataclass(frozen=True)
class BookView:
    """The top of the book as the trader sees it (replay: after its own consumption and impact).

    Prices in currency, sizes in shares/contracts; NaN / 0 where a level is empty.
    """

    exchange_ns: int
    bid_price: NDArray[np.float64]
    bid_size: NDArray[np.float64]
    ask_price: NDArray[np.float64]
    ask_size: NDArray[np.float64]

    @property
    def mid(self) -> float:
        return float((self.bid_price[0] + self.ask_price[0]) / 2)

    @property
    def spread(self) -> float:
        return float(self.ask_price[0] - self.bid_price[0])

    @property
    def spread_bps(self) -> float:
        return self.spread / self.mid * 1e4

    @property
    def imbalance(self) -> float:
        """``(bid₁ − ask₁)/(bid₁ + ask₁)`` sizes, in [−1, 1]."""
        b, a = float(self.bid_size[0]), float(self.ask_size[0])
        return (b - a) / (b + a) if b + a > 0 else 0.0


@dataclass
class _Order:
    order_id: int
    side: int
    quantity: float
    order_type: OrderType
    price: float | None
    slot: int = -1
    filled: float = 0.0
    status: Literal["pending", "live", "done", "cancelled", "rejected"] = "pending"


@dataclass(order=True)
class _Action:
    arrive_ns: int
    seq: int
    kind: str = field(compare=False)
    order_id: int = field(compare=False)


class Venue(ABC):
    """Shared engine; see the module docstring.  Subclasses implement ``_run_flow(t_ns)``.

    Parameters
    ----------
    ladder_ticks
        Number of price ticks the book array spans.
    tick_size
        Price increment, currency.
    replay
        True if ``q`` is a historical book the trader's orders do not join (they are tracked beside it).
    entry_latency, response_latency, feed_latency
        Latency models: order to the exchange, exchange report to the trader, market data to the trader.
    fees
        Maker/taker fees.
    seed
        Seed of the venue's generator (latencies, generated flow).
    max_orders
        Capacity of the trader's open-order table.
    """

    def __init__(
        self,
        *,
        ladder_ticks: int,
        tick_size: float,
        replay: bool,
        base_tick: int = 0,
        start_ns: int = 0,
        entry_latency: LatencyModel | None = None,
        response_latency: LatencyModel | None = None,
        feed_latency: LatencyModel | None = None,
        fees: FeeModel | None = None,
        seed: int = 0,
        max_orders: int = 256,
        max_fills: int = 65_536,
    ) -> None:
        if ladder_ticks < 16:
            raise SimulationError(f"'ladder_ticks' must be >= 16, got {ladder_ticks}")
        if not tick_size > 0:
            raise SimulationError(f"'tick_size' must be > 0, got {tick_size!r}")
        self.tick_size = float(tick_size)
        self.replay = bool(replay)
        self.entry_latency = entry_latency or ConstantLatency(0)
        self.response_latency = response_latency or ConstantLatency(0)
        self.feed_latency = feed_latency or ConstantLatency(0)
        self.fees = fees or FeeModel()
        self.rng = np.random.default_rng(seed)
        n = int(ladder_ticks)
        self._q = np.zeros((2, n))
        self._own = np.zeros((2, n))
        self._cons = np.zeros((2, n))
        self._top = np.array([-1, n], dtype=np.int64)
        self._oi = np.zeros((max_orders, 5), dtype=np.int64)
        self._of = np.zeros((max_orders, 2))
        self._fi = np.zeros((max_fills, 4), dtype=np.int64)
        self._ff = np.zeros(max_fills)
        self._st = np.zeros(k.N_ST, dtype=np.int64)
        self._sf = np.zeros(k.N_SF)
        self._st[k.ST_BASE] = base_tick
        self._sf[k.SF_TNEXT] = np.inf
        self._overlay: NDArray[np.float64] = np.zeros(4)
        self.start_ns = int(start_ns)
        self.now_ns = int(start_ns)  # exchange clock
        self._orders: dict[int, _Order] = {}
        self._slots: dict[int, int] = {}
        self._pending: list[_Action] = []
        self._outbox: list[tuple[int, int, OrderEvent]] = []
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self.counts: dict[str, int] = {"accepted": 0, "rejected": 0, "fills": 0, "cancelled": 0}
        self.reject_reasons: dict[str, int] = {}

    # -- subclass hook ------------------------------------------------------------------------------

    @abstractmethod
    def _run_flow(self, t_ns: int) -> None:
        """Apply everyone else's orders up to exchange time ``t_ns``."""

    # -- prices -------------------------------------------------------------------------------------

    def _tick_of(self, price: float) -> int | None:
        x = price / self.tick_size
        t = round(x)
        return int(t) if abs(x - t) <= 1e-6 * max(1.0, abs(x)) else None

    def _index_of(self, abs_tick: int) -> int:
        return abs_tick - int(self._st[k.ST_BASE]) - int(self._st[k.ST_SHIFT])

    def _price_of_index(self, idx: int) -> float:
        return (idx + int(self._st[k.ST_BASE]) + int(self._st[k.ST_SHIFT])) * self.tick_size

    # -- the trader's API ---------------------------------------------------------------------------

    def submit(
        self,
        side: int,
        quantity: float,
        *,
        order_type: OrderType = "limit",
        price: float | None = None,
        local_ns: int | None = None,
        order_id: int | None = None,
    ) -> int:
        """Send an order at ``local_ns`` (default: the exchange clock); returns its id.

        The order reaches the exchange after the entry latency.  Invalid orders are rejected with a
        reason (an event), never raised.
        """
        oid = int(order_id) if order_id is not None else next(self._ids)
        t = self.now_ns if local_ns is None else int(local_ns)
        reason = ""
        if oid in self._orders:
            reason = f"duplicate order id {oid}"
        else:
            if side not in (1, -1):
                reason = f"'side' must be +1 (buy) or -1 (sell), got {side!r}"
            elif not (np.isfinite(quantity) and quantity > 0):
                reason = f"'quantity' must be > 0, got {quantity!r}"
            elif order_type not in ("market", "limit", "ioc"):
                reason = f"'order_type' must be market, limit or ioc, got {order_type!r}"
            elif order_type != "market":
                if price is None or not np.isfinite(price) or price <= 0:
                    reason = f"'price' must be a positive number for a {order_type} order, got {price!r}"
                elif self._tick_of(price) is None:
                    reason = f"'price' {price!r} is not on the tick grid ({self.tick_size:g})"
        if reason:
            self._reject(oid, side if side in (1, -1) else 0, quantity, t, reason, register=False)
            return oid
        self._orders[oid] = _Order(oid, side, float(quantity), order_type, price)
        arrive = t + self.entry_latency.sample_ns(self.rng)
        heapq.heappush(self._pending, _Action(max(arrive, self.now_ns), next(self._seq), "new", oid))
        return oid

    def cancel(self, order_id: int, *, local_ns: int | None = None) -> None:
        """Ask to cancel ``order_id``; an unknown or finished order gets a reject event."""
        t = self.now_ns if local_ns is None else int(local_ns)
        if order_id not in self._orders:
            self._reject(order_id, 0, 0.0, t, f"cancel for unknown order id {order_id}", register=False)
            return
        arrive = t + self.entry_latency.sample_ns(self.rng)
        heapq.heappush(self._pending, _Action(max(arrive, self.now_ns), next(self._seq), "cancel", order_id))

    def cancel_all(self, *, local_ns: int | None = None) -> int:
        """Cancel every open order (the kill switch's venue side); returns how many were asked."""
        open_ids = [o.order_id for o in self._orders.values() if o.status in ("pending", "live")]
        for oid in open_ids:
            self.cancel(oid, local_ns=local_ns)
        return len(open_ids)

    @property
    def awaiting_responses(self) -> bool:
        """True while a request is still on its way to the exchange or a response on its way back."""
        return bool(self._pending or self._outbox)

    def step(self, local_ns: int) -> list[OrderEvent]:
        """Advance to what the trader knows at ``local_ns``; return the events received by then."""
        self.run_to(int(local_ns) - self.feed_latency.sample_ns(self.rng))
        out: list[OrderEvent] = []
        while self._outbox and self._outbox[0][0] <= local_ns:
            out.append(heapq.heappop(self._outbox)[2])
        return out

    def run_to(self, exchange_ns: int) -> None:
        """Move the exchange clock to ``exchange_ns`` (never backwards)."""
        t = max(int(exchange_ns), self.now_ns)
        while self._pending and self._pending[0].arrive_ns <= t:
            act = heapq.heappop(self._pending)
            self._run_flow(act.arrive_ns)
            self.now_ns = act.arrive_ns
            self._collect()
            if act.kind == "new":
                self._arrive(self._orders[act.order_id])
            else:
                self._cancel_now(act.order_id, "requested")
            self._collect()
        self._run_flow(t)
        self.now_ns = t
        self._collect()

    def order(self, order_id: int) -> dict[str, Any]:
        """Status, filled and remaining quantity of an order."""
        o = self._orders[order_id]
        return {"status": o.status, "filled": o.filled, "remaining": o.quantity - o.filled}

    @property
    def open_orders(self) -> list[int]:
        return [o.order_id for o in self._orders.values() if o.status in ("pending", "live")]

    def queue_ahead(self, order_id: int) -> float:
        """Quantity ahead of a resting order in its level's queue."""
        o = self._orders[order_id]
        if o.status != "live" or o.slot < 0:
            raise SimulationError(f"order {order_id} is not resting (status {o.status})")
        return float(self._of[o.slot, k.Q_AHEAD])

    def book(self, levels: int = 5) -> BookView:
        """The book the trader sees at the exchange clock."""
        out: list[NDArray[np.float64]] = []
        for s in (0, 1):
            start = k.effective_best(self._q, self._top, self._cons, self.replay, s)
            idx = np.empty(levels, dtype=np.int64)
            qty = np.empty(levels)
            k.top_levels(self._q, self._cons, self.replay, s, int(start), levels, idx, qty)
            px = np.where(idx >= 0, (idx + self._st[k.ST_BASE] + self._st[k.ST_SHIFT]) * self.tick_size, np.nan)
            out += [px, qty]
        return BookView(self.now_ns, out[0], out[1], out[2], out[3])

    @property
    def impact_shift_ticks(self) -> int:
        """How far the trader's own impact has moved the replayed book (0 in a simulation)."""
        return int(self._st[k.ST_SHIFT])

    @property
    def order_flow_imbalance(self) -> float:
        """Cumulative order-flow imbalance at the touch since the start (shares)."""
        return float(self._sf[k.SF_OFI])

    @property
    def traded_volume(self) -> float:
        """Cumulative volume traded by others since the start (shares)."""
        return float(self._sf[k.SF_VOL])

    @property
    def events_processed(self) -> int:
        return int(self._st[k.ST_NEV])

    # -- internals ----------------------------------------------------------------------------------

    def _emit(self, ev: OrderEvent) -> None:
        heapq.heappush(self._outbox, (ev.local_ns, next(self._seq), ev))

    def _reject(self, oid: int, side: int, qty: float, t: int, reason: str, *, register: bool) -> None:
        self.counts["rejected"] += 1
        key = reason.split(" (")[0].split(",")[0]
        key = "".join(c for c in key if not c.isdigit()).strip()
        self.reject_reasons[key] = self.reject_reasons.get(key, 0) + 1
        if register and oid in self._orders:
            self._orders[oid].status = "rejected"
        ex = max(t, self.now_ns)
        self._emit(OrderEvent("rejected", oid, side, float("nan"), float(qty), ex, ex, reason=reason))

    def _local(self, exchange_ns: int) -> int:
        return exchange_ns + self.response_latency.sample_ns(self.rng)

    def _arrive(self, o: _Order) -> None:
        t = self.now_ns
        side = o.side
        s_opp = 1 if side == 1 else 0
        if o.order_type == "market":
            limit_tick = np.iinfo(np.int64).max // 4 if side == 1 else -(np.iinfo(np.int64).max // 4)
        else:
            assert o.price is not None
            tick = self._tick_of(o.price)
            assert tick is not None
            limit_tick = tick
        # self-trade prevention: never cross the trader's own resting orders
        for other in self._orders.values():
            if other.status == "live" and other.side == -side and other.slot >= 0:
                otick = int(self._oi[other.slot, k.O_TPX])
                if (side == 1 and otick <= limit_tick) or (side == -1 and otick >= limit_tick):
                    self._reject(
                        o.order_id, side, o.quantity, t, "would trade against own resting order", register=True
                    )
                    return
        self.counts["accepted"] += 1
        self._emit(OrderEvent("accepted", o.order_id, side, o.price or float("nan"), o.quantity, t, self._local(t)))
        best = k.effective_best(self._q, self._top, self._cons, self.replay, s_opp)
        n = self._q.shape[1]
        crosses = 0 <= best < n and (
            (side == 1 and best + self._st[k.ST_BASE] + self._st[k.ST_SHIFT] <= limit_tick)
            or (side == -1 and best + self._st[k.ST_BASE] + self._st[k.ST_SHIFT] >= limit_tick)
        )
        slot = self._free_slot()
        if slot < 0:
            self._reject(o.order_id, side, o.quantity, t, "too many open orders", register=True)
            return
        o.slot = slot
        self._slots[slot] = o.order_id
        self._oi[slot] = (0, side, -1, limit_tick if o.order_type != "market" else 0, t)
        self._of[slot] = (o.quantity, 0.0)
        if crosses:
            filled = k.take(
                self._q, self._top, self._cons, self.replay, self._fi, self._ff, self._st, self._sf,
                slot, side, o.quantity, limit_tick, t,
            )  # fmt: skip
            if filled > 0 and self.replay and (self._overlay[0] or self._overlay[1]):
                k.overlay_push(self._st, self._sf, t, side * filled, self._overlay[0], self._overlay[1])
                if k.overlay_shift(self._st, self._sf, t):
                    k.remap_own(self._q, self._own, self._cons, self._oi, self._of, self._st, t)
            self._of[slot, k.Q_REM] = o.quantity - filled
            self._collect()
        rem = float(self._of[slot, k.Q_REM])
        if rem <= 1e-12:
            self._finish(o, "done", o.filled, "")
            return
        if o.order_type in ("market", "ioc"):
            why = "IOC remainder" if o.order_type == "ioc" else "no more liquidity"
            self._finish(o, "cancelled", rem, why)
            return
        idx = self._index_of(limit_tick)
        s = 0 if side == 1 else 1
        if not 0 <= idx < n:
            self._finish(o, "cancelled", rem, "price outside the simulated book")
            return
        ahead = self._q[s, idx] - self._cons[s, idx] if self.replay else self._q[s, idx]
        self._oi[slot] = (1, side, idx, limit_tick, t)
        self._of[slot] = (rem, max(float(ahead), 0.0))
        self._own[s, idx] += rem
        if not self.replay:
            k.level_add(self._q, self._top, s, idx, rem)
        o.status = "live"

    def _free_slot(self) -> int:
        for i in range(self._oi.shape[0]):
            if i not in self._slots:
                return i
        return -1

    def _release(self, o: _Order) -> None:
        if o.slot >= 0:
            self._slots.pop(o.slot, None)
            self._oi[o.slot, k.O_STATE] = 0
        o.slot = -1

    def _finish(self, o: _Order, status: Literal["cancelled", "done"], qty: float, reason: str) -> None:
        o.status = status
        self._release(o)
        if status == "cancelled":
            self.counts["cancelled"] += 1
        self._emit(
            OrderEvent(status, o.order_id, o.side, o.price or float("nan"), qty, self.now_ns, self._local(self.now_ns),
                       reason=reason)
        )  # fmt: skip

    def _cancel_now(self, oid: int, reason: str) -> None:
        o = self._orders[oid]
        if o.status not in ("live", "pending"):
            self._reject(oid, o.side, 0.0, self.now_ns, f"cancel for order {oid} that is {o.status}", register=False)
            return
        if o.status == "pending" or o.slot < 0:
            self._finish(o, "cancelled", o.quantity - o.filled, reason)
            return
        slot = o.slot
        s = 0 if o.side == 1 else 1
        idx = int(self._oi[slot, k.O_PX])
        rem = float(self._of[slot, k.Q_REM])
        if self._oi[slot, k.O_STATE] == 1 and 0 <= idx < self._q.shape[1]:
            self._own[s, idx] = max(self._own[s, idx] - rem, 0.0)
            if not self.replay:
                k.level_sub(self._q, self._top, s, idx, rem)
                me = self._of[slot, k.Q_AHEAD]
                for j, jid in self._slots.items():
                    same_level = self._oi[j, k.O_STATE] == 1 and self._oi[j, k.O_PX] == idx
                    if jid != oid and same_level and self._oi[j, k.O_SIDE] == o.side and self._of[j, k.Q_AHEAD] > me:
                        self._of[j, k.Q_AHEAD] = max(self._of[j, k.Q_AHEAD] - rem, 0.0)
        self._finish(o, "cancelled", rem, reason)

    def _collect(self) -> None:
        """Turn the kernel's fill buffer into events and update the orders."""
        nf = int(self._st[k.ST_NFILL])
        for j in range(nf):
            slot, tick, t, maker = (int(v) for v in self._fi[j])
            qty = float(self._ff[j])
            oid = self._slots.get(slot)
            if oid is None:
                continue
            o = self._orders[oid]
            px = round(tick * self.tick_size, 10)
            o.filled += qty
            self.counts["fills"] += 1
            self._emit(
                OrderEvent("fill", oid, o.side, px, qty, t, self._local(t), self.fees.fee(px, qty, bool(maker)),
                           "maker" if maker else "taker")
            )  # fmt: skip
        self._st[k.ST_NFILL] = 0
        if self._st[k.ST_DROPPED]:
            raise SimulationError(f"the fill buffer overflowed ({int(self._st[k.ST_DROPPED])} fills lost)")
        for slot, oid in list(self._slots.items()):
            o = self._orders[oid]
            if o.status != "live":
                continue
            if self._oi[slot, k.O_STATE] == 0 and self._of[slot, k.Q_REM] <= 1e-12:
                o.status = "done"
                self._release(o)
                self._emit(OrderEvent("done", oid, o.side, o.price or float("nan"), o.filled, self.now_ns,
                                      self._local(self.now_ns)))  # fmt: skip
            elif self._oi[slot, k.O_STATE] == 2:
                self._finish(o, "cancelled", float(self._of[slot, k.Q_REM]), "price moved off the simulated book")
