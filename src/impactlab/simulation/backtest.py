"""Run a schedule of child orders on a venue and measure its implementation shortfall and its parts."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import SimulationError
from impactlab.simulation.venue import Venue

__all__ = ["BacktestResult", "run_schedule"]

NS = 1_000_000_000


@dataclass(frozen=True)
class BacktestResult:
    """Implementation shortfall of one execution, in bps of the arrival value ``quantity × arrival mid``.

    ``shortfall_bps = execution_bps + timing_bps + fees_bps + opportunity_bps``:

    * ``execution_bps``: fills against the mid when each child was sent (spread and temporary impact);
    * ``timing_bps``: the mid's move from arrival to each child's sending, on the shares filled (the
      market's drift plus the trader's own permanent impact);
    * ``fees_bps``; ``opportunity_bps``: shares left unfilled, marked to the final mid.

    ``own_impact_bps`` is how far the trader's own trades moved the replayed book by the end (the
    overlay; 0 on a simulator, whose book the orders change directly).
    """

    side: int
    quantity: float
    filled: float
    arrival_mid: float
    average_price: float
    final_mid: float
    shortfall_bps: float
    execution_bps: float
    timing_bps: float
    fees_bps: float
    opportunity_bps: float
    own_impact_bps: float
    children: int
    fills: int
    events: int
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_schedule(
    venue: Venue,
    offsets_s: NDArray[np.float64],
    quantities: NDArray[np.float64],
    side: int,
    *,
    horizon_s: float,
    style: Literal["market", "limit"] = "market",
) -> BacktestResult:
    """Send child ``i`` of ``quantities[i]`` shares ``offsets_s[i]`` seconds after the venue's clock.

    ``style="market"`` sends market orders; ``"limit"`` posts at the trader's own best quote and sends
    what is still unfilled at the next child's time (and at the horizon) as a market order.
    """
    t_s = np.asarray(offsets_s, float)
    q = np.asarray(quantities, float)
    if t_s.shape != q.shape or t_s.ndim != 1 or t_s.size == 0:
        raise SimulationError(f"'offsets_s' and 'quantities' must be equal-length vectors, got {t_s.shape}, {q.shape}")
    if np.any(q < 0) or np.any(np.diff(t_s) < 0) or np.any(t_s < 0) or t_s[-1] > horizon_s:
        raise SimulationError("child times must be sorted within [0, horizon_s] and quantities >= 0")
    if side not in (1, -1):
        raise SimulationError(f"'side' must be +1 or -1, got {side!r}")
    total = float(q.sum())
    t0 = venue.now_ns
    ev0 = venue.events_processed
    shift0 = venue.impact_shift_ticks
    arrival = venue.book(1).mid
    if not np.isfinite(arrival):
        raise SimulationError("the book has no two-sided quote at the start")
    filled = paid = fees = 0.0
    exec_cost = timing = 0.0
    nfills = 0
    owed = 0.0  # shares a limit child left unfilled, to send at the next child
    open_id: int | None = None
    mid_at: dict[int, float] = {}
    wall0 = time.perf_counter()

    def absorb(events: list[Any]) -> None:
        nonlocal filled, paid, fees, exec_cost, timing, nfills, owed
        for e in events:
            if e.kind == "fill":
                m = mid_at.get(e.order_id, arrival)
                filled += e.quantity
                paid += e.price * e.quantity
                fees += e.fee
                exec_cost += side * (e.price - m) * e.quantity
                timing += side * (m - arrival) * e.quantity
                nfills += 1
                if e.order_id == open_id:
                    owed -= e.quantity

    children = 0
    for i in range(t_s.size + 1):
        t = t0 + int((t_s[i] if i < t_s.size else horizon_s) * NS)
        absorb(venue.step(t))
        if open_id is not None and open_id in venue.open_orders:
            venue.cancel(open_id, local_ns=t)
            absorb(venue.step(t))
        open_id = None
        want = (q[i] if i < t_s.size else 0.0) + max(owed, 0.0)
        owed = 0.0
        if want <= 1e-9:
            continue
        b = venue.book(1)
        mid = b.mid if np.isfinite(b.mid) else arrival
        last = i == t_s.size
        if style == "market" or last:
            oid = venue.submit(side, want, order_type="market", local_ns=t)
        else:
            own_best = b.bid_price[0] if side == 1 else b.ask_price[0]
            if not np.isfinite(own_best):
                oid = venue.submit(side, want, order_type="market", local_ns=t)
            else:
                oid = venue.submit(side, want, order_type="limit", price=float(own_best), local_ns=t)
                open_id = oid
                owed = want
        mid_at[oid] = mid
        children += 1
        absorb(venue.step(t))
    end = t0 + int(horizon_s * NS) + 1
    absorb(venue.step(end))
    # children sent at the horizon are still in flight (latency): wait for their responses, up to a minute
    wait_ns = 1_000_000
    while venue.awaiting_responses and wait_ns < 60 * NS:
        end += wait_ns
        wait_ns *= 2
        absorb(venue.step(end))
    final_mid = venue.book(1).mid
    if not np.isfinite(final_mid):
        final_mid = arrival
    notional = total * arrival
    left = total - filled
    opp = side * (final_mid - arrival) * left
    shortfall = side * (paid - arrival * filled) + fees + opp
    tick_bps = venue.tick_size / arrival * 1e4
    return BacktestResult(
        side=side,
        quantity=total,
        filled=filled,
        arrival_mid=arrival,
        average_price=paid / filled if filled else float("nan"),
        final_mid=float(final_mid),
        shortfall_bps=shortfall / notional * 1e4,
        execution_bps=exec_cost / notional * 1e4,
        timing_bps=timing / notional * 1e4,
        fees_bps=fees / notional * 1e4,
        opportunity_bps=opp / notional * 1e4,
        own_impact_bps=side * (venue.impact_shift_ticks - shift0) * tick_bps,
        children=children,
        fills=nfills,
        events=venue.events_processed - ev0,
        wall_s=time.perf_counter() - wall0,
    )
