"""Venue adapters: the simulator and the historical replay behind the :class:`VenueAdapter` protocol, and
what the router needs to know about each venue (quote, queue, fees, queue-outflow history)."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from impactlab.data import ChildOrder, OrderType
from impactlab.errors import ExecutionError
from impactlab.execution.orders import ExecutionReport
from impactlab.simulation import Venue

__all__ = ["SimulatedVenue", "VenueQuote"]

log = logging.getLogger(__name__)
F64 = NDArray[np.float64]


@dataclass(frozen=True)
class VenueQuote:
    """One venue as the router sees it for a buy (or sell) order.

    ``price`` is the best price on the far side (the ask for a buy) and ``size`` the shares there;
    ``queue`` is the shares already resting at our side's best (ahead of a new limit order there);
    ``outflow`` holds samples of how much of that queue trades or cancels over the router's horizon
    (Cont–Kukanov's ξ).  Fees are in bps of notional: ``taker_fee_bps`` paid by market orders,
    ``maker_rebate_bps`` earned by filled limit orders.

    When the spread is wider than one tick, a limit order may instead improve the own best by one tick:
    nothing is ahead of it there and it earns a tick less.  The router weighs that option when the quote
    carries ``near_price`` (the own best), ``tick`` and ``improve_outflow`` (samples of the flow that would
    reach such an order over the horizon: :func:`~impactlab.execution.queue_outflow_samples` with
    ``improve_ticks=1``).
    """

    venue: str
    price: float
    size: float
    queue: float
    taker_fee_bps: float
    maker_rebate_bps: float
    outflow: F64
    near_price: float = float("nan")
    tick: float = 0.0
    improve_outflow: F64 | None = None

    def __post_init__(self) -> None:
        if not (np.isfinite(self.price) and self.price > 0 and self.size >= 0 and self.queue >= 0):
            raise ExecutionError(f"venue {self.venue!r}: quote needs a price > 0 and sizes >= 0, got {self}")
        if not (np.isfinite(self.tick) and self.tick >= 0):
            raise ExecutionError(f"venue {self.venue!r}: 'tick' must be finite and >= 0, got {self.tick!r}")

    def can_improve(self, side: int) -> bool:
        """Whether a limit order one tick better than the own best would still be passive (spread >= 2 ticks)
        and the quote says how often it would fill."""
        if self.improve_outflow is None or self.tick <= 0 or not np.isfinite(self.near_price):
            return False
        return bool(side * (self.price - self.near_price) >= 2 * self.tick - 1e-9 * self.price)


def quote_from_book(
    name: str, book: Any, side: int, fees: Any, outflow: F64, *, tick: float = 0.0, improve_outflow: F64 | None = None
) -> VenueQuote:
    """A :class:`VenueQuote` for an order on ``side`` from a venue's ``BookView`` and ``FeeModel``."""
    far_px, far_sz = (book.ask_price[0], book.ask_size[0]) if side > 0 else (book.bid_price[0], book.bid_size[0])
    near_sz = book.bid_size[0] if side > 0 else book.ask_size[0]
    return VenueQuote(
        name, float(far_px), float(far_sz), float(near_sz), fees.taker_bps, -fees.maker_bps, outflow,
        own_best(book, side), float(tick), improve_outflow,
    )  # fmt: skip


def own_best(book: Any, side: int) -> float:
    """The best price on ``side`` of a ``BookView`` (where a passive order joins); NaN on an empty side."""
    return float(book.bid_price[0] if side > 0 else book.ask_price[0])


class SimulatedVenue:
    """A :class:`~impactlab.simulation.Venue` (queue-reactive simulator or replay) as a venue adapter.

    Market orders are sent as immediate-or-cancel limit orders at ``collar(side)`` when a collar function
    is given (the risk gate's), so no child can trade through the collar on a thin book.
    """

    def __init__(self, name: str, venue: Venue, *, collar: object | None = None) -> None:
        self.name = name
        self.venue = venue
        self._collar = collar
        self._ids: dict[str, int] = {}
        self._clids: dict[int, str] = {}
        self._n_exec = itertools.count(1)
        self.cancel_rejects = 0

    @property
    def tick_size(self) -> float:
        return self.venue.tick_size

    def send(self, order: ChildOrder) -> None:
        if order.client_order_id in self._ids:
            return  # idempotent: the venue already has it
        side = int(order.side)
        if order.order_type is OrderType.MARKET and self._collar is not None:
            price = self._collar(side, self.venue.book(1).mid, self.venue.tick_size)  # type: ignore[operator]
            oid = self.venue.submit(side, order.quantity, order_type="ioc", price=price, local_ns=order.created_ns)
        elif order.order_type is OrderType.MARKET:
            oid = self.venue.submit(side, order.quantity, order_type="market", local_ns=order.created_ns)
        else:
            typ: Literal["ioc", "limit"] = "ioc" if order.order_type is OrderType.IOC else "limit"
            oid = self.venue.submit(
                side, order.quantity, order_type=typ, price=order.limit_price, local_ns=order.created_ns
            )
        self._ids[order.client_order_id] = oid
        self._clids[oid] = order.client_order_id

    def cancel(self, client_order_id: str) -> None:
        oid = self._ids.get(client_order_id)
        if oid is not None:
            self.venue.cancel(oid, local_ns=self.venue.now_ns)

    def poll(self, now_ns: int) -> list[ExecutionReport]:
        out: list[ExecutionReport] = []
        for e in self.venue.step(int(now_ns)):
            clid = self._clids.get(e.order_id)
            if clid is None:
                continue
            # execution ids carry the client order id: unique across runs that share a store
            if e.kind == "accepted":
                out.append(ExecutionReport(f"{clid}:a", clid, "new", e.local_ns, self.name))
            elif e.kind == "fill":
                out.append(
                    ExecutionReport(
                        f"{clid}:f{next(self._n_exec)}", clid, "fill", e.local_ns, self.name, e.quantity, e.price,
                        e.liquidity or "taker", e.fee,  # type: ignore[arg-type]
                    )
                )  # fmt: skip
            elif e.kind == "cancelled":
                out.append(ExecutionReport(f"{clid}:c", clid, "cancelled", e.local_ns, self.name, reason=e.reason))
            elif e.kind == "rejected":
                if e.reason.startswith("cancel for"):
                    self.cancel_rejects += 1  # too late to cancel: the order finished first
                    continue
                out.append(ExecutionReport(f"{clid}:r", clid, "rejected", e.local_ns, self.name, reason=e.reason))
        return out

    def mid(self) -> float:
        return float(self.venue.book(1).mid)

    def quote(self, side: int, outflow: F64, improve_outflow: F64 | None = None) -> VenueQuote:
        """This venue's :class:`VenueQuote` for an order on ``side``, with its own fees and tick."""
        return quote_from_book(
            self.name, self.venue.book(1), side, self.venue.fees, outflow, tick=self.tick_size,
            improve_outflow=improve_outflow,
        )  # fmt: skip

    def own_best(self, side: int) -> float:
        """The best price on our side (where a passive order joins the queue); NaN on an empty side."""
        return own_best(self.venue.book(1), side)
