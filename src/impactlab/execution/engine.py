"""The child-order slicer and the execution engine that works a parent order through the router, the risk
gate and the order manager on one or more venues, driven by an injected clock."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from impactlab.data import ChildOrder, Fill, OrderType, ParentOrder
from impactlab.errors import ExecutionError, RiskLimitError
from impactlab.execution.orders import OrderManager, child_id
from impactlab.execution.router import ContKukanovRouter, NaiveRouter
from impactlab.schedules import Schedule

__all__ = [
    "ChildChoice",
    "ChildContext",
    "ChildPolicy",
    "ExecutionEngine",
    "ExecutionResult",
    "SimClock",
    "SlicePlan",
    "Slicer",
    "WallClock",
]

log = logging.getLogger(__name__)
NS = 1_000_000_000
_UNIT_S = {"s": 1.0, "min": 60.0, "h": 3600.0, "day": 23_400.0}
F64 = NDArray[np.float64]


class SimClock:
    """A clock the engine moves by hand (simulation, replay, tests): calling it gives the time in ns."""

    def __init__(self, start_ns: int) -> None:
        self.now_ns = int(start_ns)

    def __call__(self) -> int:
        return self.now_ns

    def advance_to(self, t_ns: int) -> None:
        self.now_ns = max(self.now_ns, int(t_ns))


class WallClock:
    """The real clock, for live venues (FIX): ``advance_to`` sleeps until the time comes."""

    def __init__(self, sleep: Any = None) -> None:
        import time

        self._time = time.time_ns
        self._sleep = sleep or time.sleep

    def __call__(self) -> int:
        return self._time()

    @property
    def now_ns(self) -> int:
        return self._time()

    def advance_to(self, t_ns: int) -> None:
        wait = (int(t_ns) - self._time()) / 1e9
        if wait > 0:
            self._sleep(wait)


@dataclass(frozen=True)
class SlicePlan:
    """What to send at a decision: ``quantity`` shares; ``urgent`` means at market (behind schedule by more
    than the catch-up threshold, or the last slice)."""

    quantity: float
    urgent: bool
    target_filled: float


class Slicer:
    """Turns a :class:`~impactlab.schedules.Schedule` into child quantities over time.

    At the start of interval k the parent should have traded ``X − x_k`` by the interval's end; the child
    is what is behind that.  More than ``catch_up_fraction`` of the parent behind the schedule's previous
    boundary, or the last interval, makes the slice urgent (market orders at the collar).

    Parameters
    ----------
    schedule
        Times in ``schedule.time_unit`` from the parent's start; holdings in any unit (scaled to the
        parent's quantity).
    parent
        The parent order (its ``start_ns`` anchors the schedule).
    catch_up_fraction
        Behind by more than this fraction of the parent: go to market.
    lot
        Child quantities are rounded to this lot.
    """

    def __init__(
        self, schedule: Schedule, parent: ParentOrder, *, catch_up_fraction: float = 0.25, lot: float = 1.0
    ) -> None:
        if schedule.side != int(parent.side):
            raise ExecutionError(
                f"schedule side {schedule.side} differs from parent {parent.order_id!r}'s {parent.side}"
            )
        if not 0 < catch_up_fraction <= 1:
            raise ExecutionError(f"'catch_up_fraction' must be in (0, 1], got {catch_up_fraction!r}")
        unit = _UNIT_S.get(schedule.time_unit)
        if unit is None:
            raise ExecutionError(f"schedule time unit {schedule.time_unit!r} is not one of {sorted(_UNIT_S)}")
        t = np.asarray(schedule.times, float)
        self.boundaries_ns = parent.start_ns + np.round((t - t[0]) * unit * NS).astype(np.int64)
        x = np.asarray(schedule.holdings, float)
        self.cumulative = parent.quantity * (1 - x / x[0])  # shares done by each boundary
        self.parent = parent
        self.catch_up_fraction = float(catch_up_fraction)
        self.lot = float(lot)

    @property
    def n_slices(self) -> int:
        return int(self.boundaries_ns.size - 1)

    @property
    def end_ns(self) -> int:
        return int(self.boundaries_ns[-1])

    def plan(self, k: int, filled: float, working: float = 0.0) -> SlicePlan:
        """The slice at the start of interval ``k`` (0-based) given ``filled`` shares done and ``working``
        shares still resting."""
        if not 0 <= k < self.n_slices:
            raise ExecutionError(f"slice {k} outside 0…{self.n_slices - 1}")
        target = float(self.cumulative[k + 1])
        behind = float(self.cumulative[k]) - filled
        want = max(target - filled - working, 0.0)
        want = math.floor(want / self.lot + 1e-9) * self.lot
        urgent = k == self.n_slices - 1 or behind > self.catch_up_fraction * self.parent.quantity
        return SlicePlan(want, urgent, target)


@dataclass(frozen=True)
class ChildContext:
    """What a child policy sees at the start of slice ``slice_index``: the parent's ``quantity`` and
    ``side``, the shares ``filled`` so far, the schedule's target by the slice's start and end
    (``target_start``, ``target_end``, shares) and the ``planned`` child the slicer asks for."""

    slice_index: int
    n_slices: int
    side: int
    quantity: float
    filled: float
    target_start: float
    target_end: float
    planned: float
    ts_ns: int


@dataclass(frozen=True)
class ChildChoice:
    """A child policy's answer: send ``shares`` (0: delay) at market (``limit_offset_ticks`` None) or as a
    limit order that many ticks from the own best (positive: inside the spread)."""

    shares: float
    limit_offset_ticks: int | None = None


class ChildPolicy(Protocol):
    """Adjusts each non-urgent child of a schedule (size and aggression) in place of the router: the slot a
    learned overlay (:class:`OverlayChildPolicy`) plays in."""

    def choose(self, ctx: ChildContext) -> ChildChoice: ...


@dataclass(frozen=True)
class ExecutionResult:
    """One parent order worked to its end: fills, the mids TCA needs, and what was refused.

    ``halted`` says why the engine stopped the parent early (the kill switch, a break, a session that
    did not come back), empty when it ran its course; ``unresolved`` lists the child orders whose state
    the venue never confirmed (left ``unknown``: a person must check them); ``breaks`` counts the breaks
    found on the parent."""

    parent: ParentOrder
    fills: tuple[Fill, ...]
    arrival_mid: float
    end_mid: float
    post_mid: float
    end_ns: int
    children: int
    refused: dict[str, int]
    rejected_reports: dict[str, int]
    halted: str = ""
    unresolved: tuple[str, ...] = ()
    breaks: int = 0

    @property
    def filled(self) -> float:
        return float(sum(f.quantity for f in self.fills))

    @property
    def average_price(self) -> float:
        q = self.filled
        return float(sum(f.quantity * f.price for f in self.fills) / q) if q > 0 else float("nan")

    @property
    def shortfall_bps(self) -> float:
        """Implementation shortfall against the arrival mid, fees included, unfilled shares marked to the
        end mid (bps of the arrival value)."""
        s, x, a = int(self.parent.side), self.parent.quantity, self.arrival_mid
        paid = sum(f.quantity * (f.price - a) for f in self.fills) * s + sum(f.fee for f in self.fills)
        opp = s * (x - self.filled) * (self.end_mid - a)
        return float((paid + opp) / (x * a) * 1e4)


class ExecutionEngine:
    """Works parent orders on simulated or replayed venues.

    Parameters
    ----------
    oms
        The order manager (with its risk gate) every child goes through.
    venues
        The adapters by name (the same ones the order manager holds), with market data: ``mid()``,
        ``own_best(side)`` and ``quote(side, outflow)`` (:class:`SimulatedVenue`, or a
        :class:`~impactlab.execution.fix.FixVenue` with a book source).
    router
        :class:`ContKukanovRouter` (limit/market split across venues) or :class:`NaiveRouter`.
    clock
        The :class:`SimClock` the order manager and risk gate read (a :class:`WallClock` for FIX).
    outflow
        Queue-outflow samples by venue (the router's ξ over one slice).
    improve_outflow
        Samples, by venue, of the flow reaching an order one tick inside the spread over one slice (lets the
        Cont–Kukanov router improve the own best; see :class:`ContKukanovRouter`).
    post_s
        Seconds after the end at which the post-trade mid is read (for TCA's reversion).
    on_step
        Called with the time after every step the engine takes (a market-data tap: the hedging scenario
        samples the simulator's quotes while a hedge works).
    child_policy
        Decides each non-urgent child's size and aggression instead of the router (one venue only); urgent
        slices (behind the catch-up bound, the last) and the sweep still go to market.
    recover_s
        After a halt, how long to wait for a venue that is down to come back (to reconcile and cancel what
        is open there) and for every open order to be final.  What is still not confirmed then is left
        ``unknown`` and reported.

    Notes
    -----
    The engine halts a parent when the kill switch of the order manager's risk gate trips (a venue's
    session drop trips it) or the order manager halts it (a break): no more children, every open one
    cancelled once its venue is back and the venue's status of each asked (reconciliation).
    """

    def __init__(
        self,
        oms: OrderManager,
        venues: Mapping[str, Any],
        router: ContKukanovRouter | NaiveRouter,
        *,
        clock: SimClock | WallClock,
        outflow: Mapping[str, F64] | None = None,
        improve_outflow: Mapping[str, F64] | None = None,
        post_s: float = 60.0,
        on_step: Callable[[int], None] | None = None,
        child_policy: ChildPolicy | None = None,
        recover_s: float = 30.0,
    ) -> None:
        if child_policy is not None and len(venues) != 1:
            raise ExecutionError(f"a child policy works one venue, got {len(venues)}")
        self.child_policy = child_policy
        self.oms = oms
        self.venues = dict(venues)
        self.router = router
        self.clock = clock
        # the router reads the most recent samples as a set: keep the ones it would use (the same number on
        # every venue) and sort them once, so its kernels skip the sort
        raw = {v: np.asarray(x, float) for v, x in (outflow or {}).items()}
        raw_in = {v: np.asarray(x, float) for v, x in (improve_outflow or {}).items()}
        n = min([x.size for x in (*raw.values(), *raw_in.values())] + [getattr(router, "max_samples", 1 << 62)])
        self.outflow = {v: np.sort(raw[v][raw[v].size - n :]) for v in venues if v in raw}
        self.improve_outflow = {v: np.sort(x[x.size - n :]) for v, x in raw_in.items()}
        if isinstance(router, ContKukanovRouter) and set(self.outflow) != set(self.venues):
            raise ExecutionError("the Cont–Kukanov router needs queue-outflow samples for every venue")
        self.post_s = float(post_s)
        self.recover_ns = int(float(recover_s) * NS)
        self.on_step = on_step
        self._halting = False
        self._parent: str | None = None
        self.path: list[tuple[int, float]] = []  # (ns, consolidated mid) at every step the engine took

    def _mid(self) -> float:
        mids = [v.mid() for v in self.venues.values()]
        mids = [m for m in mids if np.isfinite(m)]
        return float(np.mean(mids)) if mids else float("nan")

    def _mid_safe(self) -> float:
        try:
            return self._mid()
        except Exception:  # a venue without market data while it is down
            return float("nan")

    def _halt_reason(self) -> str:
        ks = getattr(self.oms.risk, "kill_switch", None)
        if ks is not None and ks.tripped:
            return f"kill switch: {ks.reason}"
        return self.oms.halted.get(self._parent, "") if self._parent is not None else ""

    def _advance(self, t_ns: int) -> None:
        self.clock.advance_to(t_ns)
        self.oms.poll(t_ns)
        m = self._mid_safe()
        if np.isfinite(m) and (not self.path or self.path[-1][1] != m):
            self.path.append((int(t_ns), m))
        if self.on_step is not None:
            self.on_step(int(t_ns))
        if not self._halting:
            why = self._halt_reason()
            if why:
                raise _Halted(why)

    def _wait(self, pred: Callable[[], bool], until_ns: int, step_ns: int = 10_000_000) -> bool:
        t = int(self.clock())
        while not pred() and t < until_ns:
            t = max(t + step_ns, int(self.clock()))
            self._advance(t)
        return pred()

    def _halt(self, parent: ParentOrder, why: str) -> tuple[str, ...]:
        """Stop the parent: wait for its venues to come back, reconcile, cancel what is open, wait for every
        order to be final; returns the orders still unconfirmed (journalled ``unknown``)."""

        self._halting = True
        self.oms.halt(parent.order_id, why)
        log.error("parent %s halted: %s", parent.order_id, why)
        deadline = int(self.clock()) + self.recover_ns
        used = {mo.order.venue for mo in self.oms.open_orders(parent.order_id)}
        self._wait(lambda: all(getattr(self.venues[v], "available", True) for v in used), deadline)
        for v in used:
            if getattr(self.venues[v], "available", True):
                self.oms.reconcile(v)
        self._wait(lambda: False, min(int(self.clock()) + NS // 2, deadline))  # let the status answers in
        for mo in self.oms.open_orders(parent.order_id):
            self.oms.cancel(mo.order.client_order_id)
        self._wait(lambda: not self.oms.open_orders(parent.order_id), deadline)
        left = self.oms.open_orders(parent.order_id)
        for mo in left:
            self.oms.mark_unknown(mo.order.client_order_id, f"not confirmed after the halt ({why})")
        return tuple(mo.order.client_order_id for mo in left)

    def _send(self, parent: ParentOrder, n: int, venue: str, qty: float, limit: float | None) -> int:
        """Send ``qty`` as one child, or as several no larger than the risk gate's ``max_order_qty`` (a slice
        above the per-order limit is split, not refused whole); returns the next child number."""
        limits = getattr(self.oms.risk, "limits", None)
        cap = float(getattr(limits, "max_order_qty", math.inf))
        left = float(qty)
        while left > 1e-9:
            piece = min(left, cap)
            order = ChildOrder(
                child_id(parent.order_id, n), parent.order_id, parent.symbol, parent.side, piece,
                OrderType.MARKET if limit is None else OrderType.LIMIT, venue, self.clock(), limit,
            )  # fmt: skip
            n += 1
            left -= piece
            try:
                self.oms.submit(order)
            except RiskLimitError:  # refused, journalled and counted; the rest of the slice stays behind
                break
        return n

    def _settle(self, parent: ParentOrder, until_ns: int) -> None:
        """Cancel the parent's resting children and wait (1 ms steps) until every one is final."""
        for mo in self.oms.open_orders(parent.order_id):
            self.oms.cancel(mo.order.client_order_id)
        t = self.clock()
        while self.oms.open_orders(parent.order_id) and t < until_ns:
            t += 1_000_000
            self._advance(t)

    def _child(self, parent: ParentOrder, n: int, slicer: Slicer, k: int, filled: float, plan: SlicePlan) -> int:
        """Slice ``k`` as the child policy chooses (it is asked even when nothing is planned, so that what it
        tracks between decisions stays on the grid)."""
        assert self.child_policy is not None
        side = int(parent.side)
        ctx = ChildContext(k, slicer.n_slices, side, parent.quantity, filled, float(slicer.cumulative[k]),
                           plan.target_filled, plan.quantity, int(self.clock()))  # fmt: skip
        choice = self.child_policy.choose(ctx)
        left = parent.quantity - self.oms.committed(parent.order_id)
        qty = math.floor(min(max(float(choice.shares), 0.0), left) / slicer.lot + 1e-9) * slicer.lot
        if not qty > 0:
            return n
        name, v = next(iter(self.venues.items()))
        if choice.limit_offset_ticks is None:
            return self._send(parent, n, name, qty, None)
        best = v.own_best(side)
        if not np.isfinite(best):
            return n  # no quote on our side to price from: the slice stays behind
        px = round(round(best / v.tick_size + side * int(choice.limit_offset_ticks)) * v.tick_size, 10)
        return self._send(parent, n, name, qty, px)

    def run(self, parent: ParentOrder, slicer: Slicer) -> ExecutionResult:
        """Work ``parent`` along ``slicer`` to its end (or its halt); returns the fills and mids for TCA."""
        self._parent, self._halting = parent.order_id, False
        # a parent this order manager already knows children of is resumed (after a restart): its arrival mid
        # is the one recorded when it began, child numbers carry on, and slices already over are skipped
        n = sum(mo.order.parent_order_id == parent.order_id for mo in self.oms.orders.values())
        resumed = n > 0
        self.oms.open_parent(parent)
        known = self.oms.store.read("parent_orders", where="order_id = ?", params=[parent.order_id])
        arrival = known.column("arrival_mid")[0].as_py() if resumed and known.num_rows else None
        halted, unresolved = "", cast(tuple[str, ...], ())
        t = int(self.clock())
        end_mid = post_mid = float("nan")
        try:
            # orders open at a restart: ask the venues that can tell where they are
            if self.oms.open_orders() and self.oms.reconcile():
                self._wait(lambda: False, int(self.clock()) + NS // 2)
                for mo in self.oms.open_orders(parent.order_id):
                    self.oms.cancel(mo.order.client_order_id)
                self._wait(lambda: not self.oms.open_orders(parent.order_id), int(self.clock()) + 5 * NS)
            self._advance(max(parent.start_ns, int(self.clock())) if resumed else parent.start_ns)
            if arrival is None:
                arrival = self._mid()
                if not np.isfinite(arrival):
                    raise ExecutionError(f"parent {parent.order_id!r}: no two-sided quote at the start")
                self.oms.store.record_outcome(parent.order_id, arrival_mid=arrival)
            n = self._slices(parent, slicer, n, resumed)
            t = self._finish(parent, slicer, n)
            end_mid = self._mid()
        except _Halted as h:
            halted = str(h)
            unresolved = self._halt(parent, halted)
            t = int(self.clock())
            end_mid = self._mid_safe()
        n = sum(mo.order.parent_order_id == parent.order_id for mo in self.oms.orders.values())
        self._halting = True  # the post-trade mark is read whatever happens now
        if not halted or np.isfinite(end_mid):
            self._advance(t + int(self.post_s * NS))
            post_mid = self._mid_safe()
        fills = tuple(sorted(self.oms.fills(parent.order_id), key=lambda f: f.ts_ns))
        breaks = sum(b.parent_order_id == parent.order_id for b in self.oms.breaks)
        res = ExecutionResult(
            parent, fills, float(arrival) if arrival is not None else float("nan"), end_mid, post_mid, t, n,
            dict(self.oms.refused_orders), dict(self.oms.rejected_reports), halted, unresolved, breaks,
        )  # fmt: skip
        self.oms.store.record_outcome(
            parent.order_id, arrival_mid=arrival, avg_price=res.average_price if fills else None,
            end_mid=end_mid if np.isfinite(end_mid) else None, post_mid=post_mid if np.isfinite(post_mid) else None,
        )  # fmt: skip
        return res

    def _slices(self, parent: ParentOrder, slicer: Slicer, n: int, resumed: bool) -> int:
        side = int(parent.side)
        for k in range(slicer.n_slices):
            t = int(slicer.boundaries_ns[k])
            if resumed and k + 1 < slicer.n_slices and slicer.boundaries_ns[k + 1] <= self.clock():
                continue  # over before a restart: the next slice's plan catches up what it left
            self._advance(max(t, int(self.clock())) if resumed else t)
            self._settle(parent, t + NS)
            filled = self.oms.filled(parent.order_id)
            working = self.oms.committed(parent.order_id) - filled  # orders not yet final (unknown ones too)
            plan = slicer.plan(k, filled, working)
            if self.child_policy is not None and not plan.urgent:
                n = self._child(parent, n, slicer, k, filled, plan)
                continue
            if plan.quantity <= 0:
                continue
            if plan.urgent or isinstance(self.router, NaiveRouter):
                quotes = [v.quote(side, np.zeros(1)) for v in self.venues.values() if np.isfinite(v.mid())]
                decision = NaiveRouter().route(plan.quantity, side, quotes)
            else:
                quotes = [
                    v.quote(side, self.outflow[name], self.improve_outflow.get(name))
                    for name, v in self.venues.items()
                    if np.isfinite(v.mid())
                ]
                decision = self.router.route(plan.quantity, side, quotes, mid=self._mid())
            for venue, q in decision.market.items():
                if q > 0:
                    n = self._send(parent, n, venue, q, None)
            for venue, q in decision.limit.items():
                px = decision.limit_price.get(venue, self.venues[venue].own_best(side))
                if q > 0 and np.isfinite(px):
                    n = self._send(parent, n, venue, q, px)
        return n

    def _finish(self, parent: ParentOrder, slicer: Slicer, n: int) -> int:
        """The horizon: cancel what rests, sweep what is still owed at market, wait for it; returns the time."""
        side = int(parent.side)
        end = slicer.end_ns
        self._advance(end)
        self._settle(parent, end + NS)
        left = parent.quantity - self.oms.committed(parent.order_id)
        if left > 1e-9:  # the sweep: what is still owed goes to market at the horizon
            quotes = [v.quote(side, np.zeros(1)) for v in self.venues.values() if np.isfinite(v.mid())]
            if not quotes:
                log.warning("parent %s: no venue has a two-sided quote at the end; %.0f shares left", parent.order_id,
                            left)  # fmt: skip
            for venue, q in NaiveRouter().route(left, side, quotes).market.items() if quotes else ():
                if q > 0:
                    n = self._send(parent, n, venue, q, None)
        t = end
        while self.oms.open_orders(parent.order_id) and t < end + 60 * NS:
            t += 1_000_000
            self._advance(t)
        return t


class _Halted(Exception):
    """Raised inside the engine's loop when the parent must stop (caught by :meth:`ExecutionEngine.run`)."""
