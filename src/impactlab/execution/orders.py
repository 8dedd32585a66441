"""The order state machine and the order manager: every child order and fill is journalled to the store
before it is acted on, client order ids make sending idempotent, and a bad execution report is refused
with a reason and counted, never raised into the loop that reads it.

The manager is the last word on how much is working: a child is sent only while the parent's filled plus
open plus the child's quantity stays within the parent, and only to a venue that says it is available.
A fill the order cannot take (on a finished order, past its limit, beyond its size, for an unknown order)
is a *break*: stored in ``breaks``, alerted, and its parent halted.  An order with no answer within the
acknowledgement timeout becomes ``unknown`` and still counts as open until the venue's status settles it.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol

from impactlab.data import ChildOrder, Fill, ParentOrder, Store
from impactlab.errors import ExecutionError, RiskLimitError

__all__ = ["Break", "ExecutionReport", "ManagedOrder", "OrderManager", "OrderState", "VenueAdapter"]

log = logging.getLogger(__name__)
alerts = logging.getLogger("impactlab.alerts")
NS = 1_000_000_000

_EPS = 1e-9


class OrderState(StrEnum):
    """Where a child order is; ``filled``, ``cancelled`` and ``rejected`` are final.  ``unknown``: sent, and
    no answer within the acknowledgement timeout (or lost in an outage); it counts as fully open until the
    venue's status settles it."""

    PENDING_NEW = "pending_new"
    UNKNOWN = "unknown"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def final(self) -> bool:
        return self in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED)


# the transitions a report may cause (a fill may arrive before the acknowledgement on a fast venue)
_NEXT: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING_NEW: frozenset(
        {OrderState.NEW, OrderState.REJECTED, OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}
    ),
    OrderState.NEW: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}),
    OrderState.PARTIALLY_FILLED: frozenset({OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}),
    OrderState.UNKNOWN: frozenset(
        {OrderState.NEW, OrderState.REJECTED, OrderState.PARTIALLY_FILLED, OrderState.FILLED, OrderState.CANCELLED}
    ),
}
_STATUS = {
    "new": OrderState.NEW,
    "partially_filled": OrderState.PARTIALLY_FILLED,
    "filled": OrderState.FILLED,
    "cancelled": OrderState.CANCELLED,
    "rejected": OrderState.REJECTED,
}


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What a venue says about a child order, in venue-neutral terms (a FIX ExecutionReport, a simulator
    event).

    ``kind``: ``new`` (acknowledged), ``fill`` (``quantity`` at ``price``), ``cancelled`` (the rest is off
    the book), ``rejected`` (``reason``), ``status`` (the venue's answer to a status request: ``status`` is
    an :class:`OrderState` value or ``"unknown"`` when the venue has no such order, ``cum_quantity`` what it
    has filled).  ``exec_id`` is unique per venue; a report seen again with ``poss_dup`` (a FIX resend) is
    recognised by it and ignored; seen again without, it is a venue error and counted.
    """

    exec_id: str
    client_order_id: str
    kind: Literal["new", "fill", "cancelled", "rejected", "status"]
    ts_ns: int
    venue: str
    quantity: float = 0.0
    price: float = 0.0
    liquidity: Literal["maker", "taker"] = "taker"
    fee: float = 0.0
    reason: str = ""
    poss_dup: bool = False
    status: str = ""
    cum_quantity: float = 0.0


@dataclass(frozen=True, slots=True)
class Break:
    """An execution the book of record cannot take, or a status that disagrees with it (see ``breaks``)."""

    break_id: str
    ts_ns: int
    kind: Literal["fill", "reconciliation"]
    venue: str
    client_order_id: str
    parent_order_id: str
    exec_id: str
    quantity: float
    price: float
    reason: str


class VenueAdapter(Protocol):
    """A destination for child orders: the simulator, a historical replay or a FIX session.

    An adapter may also have ``available`` (False while its session is down: the manager sends nothing
    then) and ``request_status(order)`` (ask the venue where an order stands; the answer comes back as a
    ``status`` report), which a session that can drop needs for reconciliation.
    """

    name: str

    def send(self, order: ChildOrder) -> None:
        """Send a new order (the answer comes back as reports from :meth:`poll`)."""

    def cancel(self, client_order_id: str) -> None:
        """Ask to cancel an order."""

    def poll(self, now_ns: int) -> list[ExecutionReport]:
        """Reports received up to ``now_ns`` (the venue advances its own clock to it)."""
        ...


@dataclass
class ManagedOrder:
    """A child order and what has happened to it."""

    order: ChildOrder
    state: OrderState = OrderState.PENDING_NEW
    filled: float = 0.0
    notional: float = 0.0
    fees: float = 0.0
    seq: int = 0
    reason: str = ""
    fills: list[Fill] = field(default_factory=list)
    sent_ns: int = 0

    @property
    def open_quantity(self) -> float:
        return 0.0 if self.state.final else max(self.order.quantity - self.filled, 0.0)

    @property
    def average_price(self) -> float:
        return self.notional / self.filled if self.filled > 0 else float("nan")


class OrderManager:
    """Tracks child orders through their states and keeps the store's journal ahead of the venues.

    Parameters
    ----------
    store
        Where child orders, order events and fills are written before they are acted on.
    venues
        Adapters by name; an order's ``venue`` field picks one.
    clock
        Nanoseconds since the epoch (injected: a replay is deterministic).
    risk
        Called with each new order before anything is written or sent; raises
        :class:`~impactlab.errors.RiskLimitError` to refuse it.  :class:`~impactlab.execution.RiskGate` is
        the usual one; the manager has no way to send around it.
    on_fill, on_break
        Called with every fill applied, and with every :class:`Break` found.
    ack_timeout_s
        A sent order with no acknowledgement after this long becomes ``unknown`` and the venue is asked
        for its status.

    Notes
    -----
    Every child belongs to a parent opened with :meth:`open_parent`; the parent's filled + open + the
    child's quantity may not exceed its quantity (check ``parent_quantity``), a halted parent sends nothing
    more (``parent_halted``), and a venue that is not available gets nothing (``venue_down``): each refusal
    is a :class:`~impactlab.errors.RiskLimitError`, journalled like the risk gate's.  Execution reports the
    manager cannot apply are counted in :attr:`rejected_reports` by reason and logged; fills among them
    are also breaks (:attr:`breaks`, the ``breaks`` table) and halt their parent.  Nothing raises into the
    loop that reads reports.
    """

    def __init__(
        self,
        store: Store,
        venues: dict[str, VenueAdapter],
        *,
        clock: Callable[[], int],
        risk: Callable[[ChildOrder], None] | None = None,
        on_fill: Callable[[Fill], None] | None = None,
        on_break: Callable[[Break], None] | None = None,
        ack_timeout_s: float = 5.0,
    ) -> None:
        if not (ack_timeout_s > 0 and math.isfinite(ack_timeout_s)):
            raise ExecutionError(f"'ack_timeout_s' must be finite and > 0, got {ack_timeout_s!r}")
        self.store = store
        self.venues = dict(venues)
        self.clock = clock
        self._risk = risk
        self._on_fill = on_fill
        self._on_break: list[Callable[[Break], None]] = [on_break] if on_break is not None else []
        self.ack_timeout_ns = int(ack_timeout_s * NS)
        self.orders: dict[str, ManagedOrder] = {}
        self.parents: dict[str, float] = {}
        self.halted: dict[str, str] = {}
        self.breaks: list[Break] = []
        self._exec_ids: set[str] = set()
        self.rejected_reports: Counter[str] = Counter()
        self.duplicate_reports = 0
        self.refused_orders: Counter[str] = Counter()

    @property
    def risk(self) -> Callable[[ChildOrder], None] | None:
        """The check every order passes (read-only: it cannot be swapped out once the manager exists)."""
        return self._risk

    # -- journal --------------------------------------------------------------------------------------

    def _journal(self, mo: ManagedOrder) -> None:
        import pyarrow as pa

        from impactlab.data.schemas import ORDER_EVENTS

        oid = mo.order.client_order_id
        row = {
            "event_id": f"{oid}:{mo.seq}",
            "client_order_id": oid,
            "seq": mo.seq,
            "ts_ns": int(self.clock()),
            "state": str(mo.state),
            "filled": float(mo.filled),
            "reason": mo.reason,
        }
        self.store.write("order_events", pa.Table.from_pylist([row], schema=ORDER_EVENTS.remove_metadata()))
        mo.seq += 1

    # -- orders ---------------------------------------------------------------------------------------

    def on_break(self, action: Callable[[Break], None]) -> None:
        """Also call ``action`` with every break found from now on."""
        self._on_break.append(action)

    def open_parent(self, parent: ParentOrder) -> None:
        """Record ``parent`` and let children of it be sent, up to its quantity in all (filled plus open).
        Opening a parent again (a resume) keeps what it has done; its quantity may not change."""
        known = self.parents.get(parent.order_id)
        if known is not None and abs(known - parent.quantity) > _EPS:
            raise ExecutionError(f"parent {parent.order_id!r} is open for {known:g}, not {parent.quantity:g}")
        self.store.add_records([parent])
        self.parents[parent.order_id] = float(parent.quantity)

    def committed(self, parent_order_id: str) -> float:
        """Shares of the parent filled or still open (unknown orders count in full)."""
        return float(sum(mo.filled + mo.open_quantity for mo in self.orders.values()
                         if mo.order.parent_order_id == parent_order_id))  # fmt: skip

    def _pre_check(self, order: ChildOrder) -> None:
        """The manager's own checks, before the risk gate's."""
        pid = order.parent_order_id
        if pid not in self.parents:
            raise ExecutionError(f"order {order.client_order_id!r}: parent {pid!r} was not opened (open_parent)")
        if pid in self.halted:
            raise RiskLimitError(f"order {order.client_order_id!r} refused: parent {pid!r} is halted "
                                 f"({self.halted[pid]})", check="parent_halted", value=pid)  # fmt: skip
        cap, done = self.parents[pid], self.committed(pid)
        if done + float(order.quantity) > cap + _EPS:
            raise RiskLimitError(
                f"order {order.client_order_id!r} refused: parent {pid!r} has {done:g} of {cap:g} filled or "
                f"open, and {order.quantity:g} more would exceed it", check="parent_quantity",
                value=done + float(order.quantity), limit=cap,
            )  # fmt: skip
        if not getattr(self.venues[order.venue], "available", True):
            raise RiskLimitError(f"order {order.client_order_id!r} refused: venue {order.venue!r} is not "
                                 "available (session down or recovering)", check="venue_down",
                                 value=order.venue)  # fmt: skip

    def submit(self, order: ChildOrder) -> ManagedOrder:
        """Check, journal and send ``order``.  A client order id seen before returns the order already
        known and sends nothing (a retry after a crash never doubles an order).

        Raises :class:`~impactlab.errors.RiskLimitError` (from the manager's checks or the risk gate's) or
        :class:`~impactlab.errors.ExecutionError` for an unknown venue or parent.  A refused order is
        journalled as rejected, with the check that refused it, and never sent; its id stays taken.
        """
        known = self.orders.get(order.client_order_id)
        if known is not None:
            return known
        if order.venue not in self.venues:
            raise ExecutionError(f"order {order.client_order_id!r}: unknown venue {order.venue!r}")
        checks = [self._pre_check] + ([self._risk] if self._risk is not None else [])
        for check in checks:
            try:
                check(order)
            except RiskLimitError as exc:
                self.refused_orders[exc.check] += 1
                refused = ManagedOrder(order, OrderState.REJECTED, reason=f"risk: {exc}")
                self.store.add_records([order])  # the audit trail keeps what was refused and why
                self._journal(refused)
                self.orders[order.client_order_id] = refused
                raise
        mo = ManagedOrder(order, sent_ns=int(self.clock()))
        self.store.add_records([order])  # the order exists on disk before it exists at the venue
        self._journal(mo)
        self.orders[order.client_order_id] = mo
        try:
            self.venues[order.venue].send(order)
        except Exception as exc:  # the venue may or may not have it: unknown until its status says
            mo.state, mo.reason = OrderState.UNKNOWN, f"send failed: {exc}"
            self._journal(mo)
            log.error("order %s: send failed (%s); its state is unknown until the venue answers",
                      order.client_order_id, exc)  # fmt: skip
        return mo

    def cancel(self, client_order_id: str) -> bool:
        """Ask the venue to cancel an open order; False if it is unknown or already final."""
        mo = self.orders.get(client_order_id)
        if mo is None or mo.state.final:
            return False
        self.venues[mo.order.venue].cancel(client_order_id)
        return True

    def cancel_all(self) -> int:
        """Ask every venue to cancel every open order; returns how many were asked."""
        n = 0
        for oid, mo in list(self.orders.items()):
            if not mo.state.final:
                self.venues[mo.order.venue].cancel(oid)
                n += 1
        return n

    def abandon_open(self, reason: str) -> int:
        """Journal every open order as cancelled without asking a venue: the session that held them is gone
        (a restart against a venue that cancels on disconnect).  Fills already recorded stay.  Returns how
        many were closed."""
        n = 0
        for mo in self.orders.values():
            if not mo.state.final:
                mo.state, mo.reason = OrderState.CANCELLED, reason
                self._journal(mo)
                n += 1
        return n

    def open_orders(self, parent_order_id: str | None = None) -> list[ManagedOrder]:
        return [
            mo
            for mo in self.orders.values()
            if not mo.state.final and (parent_order_id is None or mo.order.parent_order_id == parent_order_id)
        ]

    def open_quantity(self, symbol: str | None = None) -> float:
        """Shares open (sent, not filled, not final) on ``symbol`` (all symbols if None)."""
        return float(
            sum(mo.open_quantity for mo in self.orders.values() if symbol is None or mo.order.symbol == symbol)
        )

    def filled(self, parent_order_id: str) -> float:
        return sum(mo.filled for mo in self.orders.values() if mo.order.parent_order_id == parent_order_id)

    def fills(self, parent_order_id: str | None = None) -> list[Fill]:
        return [
            f
            for mo in self.orders.values()
            if parent_order_id is None or mo.order.parent_order_id == parent_order_id
            for f in mo.fills
        ]

    # -- reports --------------------------------------------------------------------------------------

    def _refuse(self, report: ExecutionReport, reason: str) -> bool:
        self.rejected_reports[reason] += 1
        log.warning("refused execution report %s for %r from %s: %s", report.exec_id, report.client_order_id,
                    report.venue, reason)  # fmt: skip
        return False

    def _break(self, kind: Literal["fill", "reconciliation"], report: ExecutionReport, mo: ManagedOrder | None,
               reason: str, *, quantity: float) -> bool:  # fmt: skip
        """Store, alert and act on a break; the parent (if known) is halted."""
        import pyarrow as pa

        from impactlab.data.schemas import BREAKS

        pid = mo.order.parent_order_id if mo is not None else ""
        key = f"{report.venue}:{report.exec_id}"
        if kind == "reconciliation":
            key = f"{report.client_order_id}:recon:{report.exec_id}"
        brk = Break(key, int(self.clock()), kind, report.venue, report.client_order_id, pid,
                    report.exec_id if kind == "fill" else "", float(quantity),
                    float(report.price) if kind == "fill" else float("nan"), reason)  # fmt: skip
        self.store.write("breaks", pa.Table.from_pylist([{k: getattr(brk, k) for k in BREAKS.names}],
                                                        schema=BREAKS.remove_metadata()))  # fmt: skip
        self._exec_ids.add(f"{report.venue}:{report.exec_id}")
        self.breaks.append(brk)
        if pid:
            self.halted.setdefault(pid, f"break: {reason}")
        alerts.error("BREAK (%s) on %s order %r (parent %r): %s", kind, report.venue, report.client_order_id,
                     pid, reason)  # fmt: skip
        for action in self._on_break:
            try:
                action(brk)
            except Exception:
                log.exception("break handler")
        self.rejected_reports[f"break: {kind}"] += 1
        return False

    def halt(self, parent_order_id: str, reason: str) -> None:
        """Stop sending children of the parent (its open ones are the caller's to cancel)."""
        self.halted.setdefault(parent_order_id, reason)

    def poll(self, now_ns: int | None = None) -> int:
        """Read every venue's reports up to ``now_ns`` (default: the clock); returns how many were applied.
        Orders past the acknowledgement timeout become ``unknown`` and their venue is asked for their
        status."""
        t = int(self.clock() if now_ns is None else now_ns)
        n = sum(self.apply(r) for v in self.venues.values() for r in v.poll(t))
        self.expire(t)
        return n

    def expire(self, now_ns: int) -> int:
        """Turn orders sent more than the acknowledgement timeout ago and still unanswered into ``unknown``
        (journalled, logged) and ask their venue where they stand; returns how many changed."""
        n = 0
        for mo in self.orders.values():
            if mo.state is OrderState.PENDING_NEW and now_ns - mo.sent_ns > self.ack_timeout_ns:
                self.mark_unknown(mo.order.client_order_id, "no acknowledgement within the timeout")
                log.error("order %s: no answer from %s in %.1f s; unknown until its status is known",
                          mo.order.client_order_id, mo.order.venue, self.ack_timeout_ns / NS)  # fmt: skip
                self._request_status(mo)
                n += 1
        return n

    def mark_unknown(self, client_order_id: str, reason: str) -> bool:
        """Journal an open order as ``unknown`` (its venue has not confirmed where it stands); it still counts
        in full against its parent.  False if it is unknown here already, final, or not an order."""
        mo = self.orders.get(client_order_id)
        if mo is None or mo.state.final or mo.state is OrderState.UNKNOWN:
            return False
        mo.state, mo.reason = OrderState.UNKNOWN, reason
        self._journal(mo)
        return True

    def _request_status(self, mo: ManagedOrder) -> bool:
        venue = self.venues[mo.order.venue]
        ask = getattr(venue, "request_status", None)
        if ask is None or not getattr(venue, "available", True):
            return False
        try:
            ask(mo.order)
        except Exception as exc:
            log.warning("status request for %s failed: %s", mo.order.client_order_id, exc)
            return False
        return True

    def reconcile(self, venue: str | None = None) -> int:
        """Ask ``venue`` (every venue if None) for the status of every order not yet final there; the
        answers come back as ``status`` reports.  Returns how many were asked."""
        return sum(self._request_status(mo) for mo in self.orders.values()
                   if not mo.state.final and (venue is None or mo.order.venue == venue))  # fmt: skip

    def apply(self, report: ExecutionReport) -> bool:
        """Apply one report; returns False (and counts why) if it was refused, a break or a duplicate."""
        key = f"{report.venue}:{report.exec_id}"
        if key in self._exec_ids:
            if report.poss_dup or report.kind == "status":
                self.duplicate_reports += 1
                return False
            return self._refuse(report, "execution id seen before, without PossDup")
        mo = self.orders.get(report.client_order_id)
        if report.kind == "fill":
            return self._fill(report, mo, key)
        if mo is None:
            return self._refuse(report, "unknown order")
        if report.venue != mo.order.venue:
            return self._refuse(report, "report from another venue")
        if report.kind == "status":
            return self._status(report, mo)
        target = {"new": OrderState.NEW, "cancelled": OrderState.CANCELLED, "rejected": OrderState.REJECTED}.get(
            report.kind
        )
        if target is None:
            return self._refuse(report, f"unknown report kind {report.kind!r}")
        if target is OrderState.NEW and mo.state not in (OrderState.PENDING_NEW, OrderState.UNKNOWN):
            self._exec_ids.add(key)  # a late acknowledgement after a fill changes nothing
            return True
        if target not in _NEXT.get(mo.state, frozenset()):
            return self._refuse(report, f"{report.kind} on a {mo.state} order")
        self._exec_ids.add(key)
        mo.state = target
        mo.reason = report.reason
        self._journal(mo)
        return True

    def _fill(self, report: ExecutionReport, mo: ManagedOrder | None, key: str) -> bool:
        if mo is None:
            return self._break("fill", report, None, "fill for an order this manager never sent",
                               quantity=report.quantity)  # fmt: skip
        if report.venue != mo.order.venue:
            return self._break("fill", report, mo, f"fill from {report.venue}, the order went to {mo.order.venue}",
                               quantity=report.quantity)  # fmt: skip
        if not (math.isfinite(report.quantity) and report.quantity > 0 and math.isfinite(report.price)
                and report.price > 0):  # fmt: skip
            return self._refuse(report, "fill with a non-positive quantity or price")
        if mo.state in (OrderState.FILLED, OrderState.REJECTED):
            return self._break("fill", report, mo, f"fill on a {mo.state} order", quantity=report.quantity)
        if report.quantity > mo.order.quantity - mo.filled + _EPS:
            left = mo.order.quantity - mo.filled
            return self._break("fill", report, mo, f"fill of {report.quantity:g} with {left:g} open",
                               quantity=report.quantity)  # fmt: skip
        lim = mo.order.limit_price
        if lim is not None and int(mo.order.side) * (report.price - lim) > 1e-9 * max(abs(lim), 1.0):
            return self._break("fill", report, mo, f"fill at {report.price:g} through the limit {lim:g}",
                               quantity=report.quantity)  # fmt: skip
        fill = Fill(
            fill_id=key,
            client_order_id=mo.order.client_order_id,
            parent_order_id=mo.order.parent_order_id,
            symbol=mo.order.symbol,
            side=mo.order.side,
            quantity=float(report.quantity),
            price=float(report.price),
            ts_ns=int(report.ts_ns),
            venue=report.venue,
            liquidity=report.liquidity,
            fee=float(report.fee),
        )
        self.store.add_records([fill])  # the fill is on disk before the position changes
        self._exec_ids.add(key)
        mo.fills.append(fill)
        mo.filled += fill.quantity
        mo.notional += fill.quantity * fill.price
        mo.fees += fill.fee
        if not mo.state.final:  # a fill racing a cancel keeps the order cancelled, and is kept
            mo.state = OrderState.FILLED if mo.filled >= mo.order.quantity - _EPS else OrderState.PARTIALLY_FILLED
        self._journal(mo)
        record = getattr(self._risk, "record_fill", None)
        if record is not None:
            record(fill)  # the risk gate counts fills towards participation
        if self._on_fill is not None:
            self._on_fill(fill)
        return True

    def _status(self, report: ExecutionReport, mo: ManagedOrder) -> bool:
        """Settle an order by the venue's word on it (after a reconnect, or an unanswered send)."""
        if report.status == "unknown":  # the venue has no such order: it never arrived, or died with the venue
            if mo.state.final:
                return True
            if mo.filled > _EPS:
                mo.state, mo.reason = OrderState.CANCELLED, "the venue no longer knows the order (its rest is off)"
            else:
                mo.state, mo.reason = OrderState.REJECTED, "the venue never received the order"
            self._journal(mo)
            return True
        state = _STATUS.get(report.status)
        if state is None:
            return self._refuse(report, f"unknown order status {report.status!r}")
        if abs(report.cum_quantity - mo.filled) > _EPS:
            return self._break("reconciliation", report, mo, f"the venue has {report.cum_quantity:g} filled, the "
                               f"store {mo.filled:g}", quantity=report.cum_quantity - mo.filled)  # fmt: skip
        if state is not mo.state and not mo.state.final:
            mo.state, mo.reason = state, "status from the venue"
            self._journal(mo)
        return True

    # -- restart --------------------------------------------------------------------------------------

    @classmethod
    def restore(
        cls,
        store: Store,
        venues: dict[str, VenueAdapter],
        *,
        clock: Callable[[], int],
        risk: Callable[[ChildOrder], None] | None = None,
        parent_order_ids: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> OrderManager:
        """Rebuild the manager from the store after a restart: the parents, every child order with its
        last journalled state and its fills, the execution ids already applied (so a venue's resend is not
        applied twice), and the parents halted by a break.  ``kwargs`` go to the constructor."""
        from impactlab.data.schemas import OrderType, Side

        om = cls(store, venues, clock=clock, risk=risk, **kwargs)
        wanted = set(parent_order_ids) if parent_order_ids is not None else None
        for p in store.read("parent_orders").to_pylist():
            if wanted is None or p["order_id"] in wanted:
                om.parents[p["order_id"]] = float(p["quantity"])
        for b in store.read("breaks").to_pylist():
            if b["parent_order_id"] in om.parents:
                om.halted.setdefault(b["parent_order_id"], f"break: {b['reason']}")
            if b["exec_id"]:
                om._exec_ids.add(f"{b['venue']}:{b['exec_id']}")
        for r in store.read("child_orders").to_pylist():
            if wanted is not None and r["parent_order_id"] not in wanted:
                continue
            order = ChildOrder(
                r["client_order_id"], r["parent_order_id"], r["symbol"], Side(r["side"]), r["quantity"],
                OrderType(r["order_type"]), r["venue"], r["created_ns"], r["limit_price"],
            )  # fmt: skip
            om.orders[order.client_order_id] = ManagedOrder(order, sent_ns=int(r["created_ns"]))
        events = store.read("order_events").to_pylist()
        for e in sorted(events, key=lambda e: (e["client_order_id"], e["seq"])):
            mo = om.orders.get(e["client_order_id"])
            if mo is not None:
                mo.state, mo.seq, mo.reason = OrderState(e["state"]), e["seq"] + 1, e["reason"]
        for f in store.read("fills").to_pylist():
            mo = om.orders.get(f["client_order_id"])
            if mo is None:
                continue
            fill = Fill(
                f["fill_id"], f["client_order_id"], f["parent_order_id"], f["symbol"], Side(f["side"]),
                f["quantity"], f["price"], f["ts_ns"], f["venue"], f["liquidity"], f["fee"],
            )  # fmt: skip
            mo.fills.append(fill)
            mo.filled += fill.quantity
            mo.notional += fill.quantity * fill.price
            mo.fees += fill.fee
            om._exec_ids.add(fill.fill_id)
        for mo in om.orders.values():
            # a crash between writing a fill and journalling its state: the fills are the truth
            if not mo.state.final and mo.filled > 0:
                mo.state = OrderState.FILLED if mo.filled >= mo.order.quantity - _EPS else OrderState.PARTIALLY_FILLED
        return om


def child_id(parent_order_id: str, n: int) -> str:
    """The client order id of a parent's ``n``-th child: deterministic, so a restarted run that re-creates
    the same child gets the same id and is recognised."""
    return f"{parent_order_id}-{n:05d}"
