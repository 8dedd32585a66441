"""The order state machine and the order manager: every child order and fill is journalled to the store
before it is acted on, client order ids make sending idempotent, and a bad execution report is refused
with a reason and counted, never raised into the loop that reads it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from impactlab.data import ChildOrder, Fill, Store
from impactlab.errors import ExecutionError

__all__ = ["ExecutionReport", "ManagedOrder", "OrderManager", "OrderState", "VenueAdapter"]

log = logging.getLogger(__name__)

_EPS = 1e-9


class OrderState(StrEnum):
    """Where a child order is; ``filled``, ``cancelled`` and ``rejected`` are final."""

    PENDING_NEW = "pending_new"
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
}


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What a venue says about a child order, in venue-neutral terms (a FIX ExecutionReport, a simulator
    event).

    ``kind``: ``new`` (acknowledged), ``fill`` (``quantity`` at ``price``), ``cancelled`` (the rest is off
    the book), ``rejected`` (``reason``).  ``exec_id`` is unique per venue; a report seen twice (a FIX
    resend) is recognised by it and ignored.
    """

    exec_id: str
    client_order_id: str
    kind: Literal["new", "fill", "cancelled", "rejected"]
    ts_ns: int
    venue: str
    quantity: float = 0.0
    price: float = 0.0
    liquidity: Literal["maker", "taker"] = "taker"
    fee: float = 0.0
    reason: str = ""


class VenueAdapter(Protocol):
    """A destination for child orders: the simulator, a historical replay or a FIX session."""

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

    Notes
    -----
    Refused execution reports are counted in :attr:`rejected_reports` by reason (unknown order, fill
    larger than the open quantity, transition from a final state …) and logged; they never raise.
    """

    def __init__(
        self,
        store: Store,
        venues: dict[str, VenueAdapter],
        *,
        clock: Callable[[], int],
        risk: Callable[[ChildOrder], None] | None = None,
        on_fill: Callable[[Fill], None] | None = None,
    ) -> None:
        self.store = store
        self.venues = dict(venues)
        self.clock = clock
        self._risk = risk
        self._on_fill = on_fill
        self.orders: dict[str, ManagedOrder] = {}
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

    def submit(self, order: ChildOrder) -> ManagedOrder:
        """Check, journal and send ``order``.  A client order id seen before returns the order already
        known and sends nothing (a retry after a crash never doubles an order).

        Raises :class:`~impactlab.errors.RiskLimitError` (from the risk check) or
        :class:`~impactlab.errors.ExecutionError` for an unknown venue.  A refused order is journalled as
        rejected, with the check that refused it, and never sent; its id stays taken.
        """
        known = self.orders.get(order.client_order_id)
        if known is not None:
            return known
        if order.venue not in self.venues:
            raise ExecutionError(f"order {order.client_order_id!r}: unknown venue {order.venue!r}")
        if self._risk is not None:
            try:
                self._risk(order)
            except Exception as exc:
                check = getattr(exc, "check", type(exc).__name__)
                self.refused_orders[check] += 1
                refused = ManagedOrder(order, OrderState.REJECTED, reason=f"risk: {exc}")
                self.store.add_records([order])  # the audit trail keeps what was refused and why
                self._journal(refused)
                self.orders[order.client_order_id] = refused
                raise
        mo = ManagedOrder(order)
        self.store.add_records([order])  # the order exists on disk before it exists at the venue
        self._journal(mo)
        self.orders[order.client_order_id] = mo
        self.venues[order.venue].send(order)
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

    def poll(self, now_ns: int | None = None) -> int:
        """Read every venue's reports up to ``now_ns`` (default: the clock); returns how many were applied."""
        t = int(self.clock() if now_ns is None else now_ns)
        return sum(self.apply(r) for v in self.venues.values() for r in v.poll(t))

    def apply(self, report: ExecutionReport) -> bool:
        """Apply one report; returns False (and counts why) if it was refused or a duplicate."""
        key = f"{report.venue}:{report.exec_id}"
        if key in self._exec_ids:
            self.duplicate_reports += 1
            return False
        mo = self.orders.get(report.client_order_id)
        if mo is None:
            return self._refuse(report, "unknown order")
        if report.venue != mo.order.venue:
            return self._refuse(report, "report from another venue")
        if report.kind == "fill":
            if not (report.quantity > 0 and report.price > 0):
                return self._refuse(report, "fill with a non-positive quantity or price")
            if mo.state.final and mo.state is not OrderState.CANCELLED:
                return self._refuse(report, f"fill on a {mo.state} order")
            if report.quantity > mo.order.quantity - mo.filled + _EPS:
                return self._refuse(report, "fill larger than the open quantity")
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
        target = {"new": OrderState.NEW, "cancelled": OrderState.CANCELLED, "rejected": OrderState.REJECTED}.get(
            report.kind
        )
        if target is None:
            return self._refuse(report, f"unknown report kind {report.kind!r}")
        if target is OrderState.NEW and mo.state is not OrderState.PENDING_NEW:
            self._exec_ids.add(key)  # a late acknowledgement after a fill changes nothing
            return True
        if target not in _NEXT.get(mo.state, frozenset()):
            return self._refuse(report, f"{report.kind} on a {mo.state} order")
        self._exec_ids.add(key)
        mo.state = target
        mo.reason = report.reason
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
    ) -> OrderManager:
        """Rebuild the manager from the store after a restart: every child order with its last journalled
        state and its fills, and the execution ids already applied (so a venue's resend is not applied
        twice)."""
        from impactlab.data.schemas import OrderType, Side

        om = cls(store, venues, clock=clock, risk=risk)
        wanted = set(parent_order_ids) if parent_order_ids is not None else None
        for r in store.read("child_orders").to_pylist():
            if wanted is not None and r["parent_order_id"] not in wanted:
                continue
            order = ChildOrder(
                r["client_order_id"], r["parent_order_id"], r["symbol"], Side(r["side"]), r["quantity"],
                OrderType(r["order_type"]), r["venue"], r["created_ns"], r["limit_price"],
            )  # fmt: skip
            om.orders[order.client_order_id] = ManagedOrder(order)
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
