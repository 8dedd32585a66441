"""The service on the bus: every hedge the live engine finishes (``hedge.SYMBOL`` with ``done`` and its fills)
goes through the same TCA path as ``POST /tca`` — recorded, compared with the service's prediction, fed to
drift monitoring and the recalibration hook.

Delivery is at-least-once (a durable consumer, acknowledged after each hedge is recorded); a hedge seen again
is recognised by its parent order id and skipped.  A message that cannot be analysed is counted, logged and
acknowledged: one bad message never stops the consumer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import ValidationError

from impactlab.bus import Bus
from impactlab.service.schemas import TCARequest

if TYPE_CHECKING:
    from impactlab.service.app import ServiceState

__all__ = ["BusTcaStats", "tca_from_bus"]

log = logging.getLogger(__name__)


@dataclass
class BusTcaStats:
    """What the consumer has done so far."""

    received: int = 0
    analysed: int = 0
    open_hedges: int = 0  # announced but not finished: nothing to analyse yet
    duplicates: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    last_seq: int = 0
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tca_request(hedge: dict[str, Any]) -> TCARequest:
    """The ``POST /tca`` request of a finished hedge message (validated: raises ``ValidationError``)."""
    fills = hedge.get("fills") or []
    end = max((int(f["ts_ns"]) for f in fills if isinstance(f, dict) and "ts_ns" in f), default=hedge.get("ts_ns"))
    side = {1: "buy", -1: "sell"}.get(hedge.get("side"), hedge.get("side"))  # type: ignore[arg-type]
    parent = {"order_id": hedge.get("parent_order_id"), "symbol": hedge.get("underlying"), "side": side,
              "quantity": hedge.get("quantity"), "start_ns": hedge.get("ts_ns"), "end_ns": end}  # fmt: skip
    return TCARequest.model_validate({"parent": parent, "fills": fills})


async def tca_from_bus(
    state: ServiceState,
    bus: Bus,
    *,
    subject: str = "hedge.>",
    durable: str = "service-tca",
    stats: BusTcaStats | None = None,
    stop: asyncio.Event | None = None,
    idle_timeout_s: float | None = None,
    poll_s: float = 0.5,
) -> BusTcaStats:
    """Analyse every finished hedge on ``subject`` until ``stop`` is set (or ``idle_timeout_s`` passes with no
    message); returns the counts (``stats``, updated as it goes, if given)."""
    from impactlab.service.app import ApiError, submit_tca

    stats = stats or BusTcaStats()
    sub = await bus.subscribe(subject, durable=durable)
    idle = 0.0
    try:
        while stop is None or not stop.is_set():
            msg = await sub.next(poll_s)
            if msg is None:
                idle += poll_s
                if idle_timeout_s is not None and idle >= idle_timeout_s:
                    break
                continue
            idle = 0.0
            stats.received += 1
            stats.last_seq = msg.seq
            reason = None
            try:
                hedge = orjson.loads(msg.data)
                if not isinstance(hedge, dict):
                    raise ValueError("not a JSON object")
                if not hedge.get("done"):
                    stats.open_hedges += 1
                else:
                    submit_tca(state, tca_request(hedge))
                    stats.analysed += 1
            except ApiError as exc:
                if exc.status == 409:
                    stats.duplicates += 1  # analysed before a restart
                else:
                    reason, stats.last_error = exc.kind, f"seq {msg.seq}: {exc.message}"
            except (ValueError, ValidationError) as exc:  # orjson's error is a ValueError
                reason, stats.last_error = "bad message", f"seq {msg.seq}: {str(exc)[:300]}"
            except Exception as exc:  # never die on one message: count it, log it, go on
                log.exception("TCA of bus message %d failed", msg.seq)
                reason, stats.last_error = type(exc).__name__, f"seq {msg.seq}: {exc}"
            if reason is not None:
                stats.refused[reason] = stats.refused.get(reason, 0) + 1
                log.warning("hedge message not analysed: %s", stats.last_error)
            await sub.ack(msg)
    finally:
        await sub.close()
    return stats
