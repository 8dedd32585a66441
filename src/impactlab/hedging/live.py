"""The hedging engine live on the bus: market data in from a feed handler, hedges, child orders and fills out,
exactly-once in effect across crashes.

Delivery is at-least-once (a durable consumer redelivers what was not acknowledged); processing is idempotent:
the engine's store records the last quote it acted on (the bus ``seq`` and, for a frame of quotes, the index
in it) together with its journal, skips anything at or before it after a restart, and publishes every hedge,
order and fill under its own id, which the bus de-duplicates. So killing the engine at any point and starting
it again loses and duplicates nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from impactlab.bus import Bus
from impactlab.bus.feed import decode_quotes
from impactlab.data import Store
from impactlab.errors import BusError
from impactlab.hedging.engine import HedgeDecision, HedgingConfig, HedgingEngine
from impactlab.hedging.scenario import BookSpec, ReplaySource, _portfolio

__all__ = ["LiveStats", "run_live"]

log = logging.getLogger(__name__)
NS = 1_000_000_000
_WHOLE = 1 << 62  # a position saved as a bare seq (before frames): the whole message


@dataclass
class LiveStats:
    """What one live session did."""

    received: int = 0  # bus messages
    quotes: int = 0  # quotes acted on (a message may carry a frame of them)
    skipped_seen: int = 0
    bad: int = 0
    hedges: int = 0
    published: dict[str, int] = field(default_factory=lambda: {"hedge": 0, "orders": 0, "fills": 0})
    last_seq: int = 0
    finished: bool = False
    wall_s: float = 0.0
    decision_latency_us: list[float] = field(default_factory=list)


async def _publish_hedge(bus: Bus, store: Store, hedge_id: str, sym: str, stats: LiveStats) -> None:
    """The hedge (as journalled, with its outcome), its child orders and its fills, each under its own id:
    publishing again after a restart is harmless."""
    h = store.read("hedges", where="hedge_id = ?", params=[hedge_id]).to_pylist()[0]
    for o in store.read("child_orders", where="parent_order_id = ?", params=[h["parent_order_id"]]).to_pylist():
        await bus.publish(f"orders.{sym}", orjson.dumps(o), msg_id=f"order:{o['client_order_id']}")
        stats.published["orders"] += 1
    fills = store.read("fills", where="parent_order_id = ?", params=[h["parent_order_id"]]).to_pylist()
    for f in fills:
        await bus.publish(f"fills.{sym}", orjson.dumps(f), msg_id=f"fill:{f['fill_id']}")
        stats.published["fills"] += 1
    done = store.read("hedge_events", where="hedge_id = ? AND kind = 'done'", params=[hedge_id]).to_pylist()
    msg = {**h, "done": bool(done), "filled": done[0]["filled"] if done else None,
           "realised_cost_usd": done[0]["realised_cost_usd"] if done else None}  # fmt: skip
    if done:  # the finished hedge carries its fills, so a TCA consumer (the service) needs nothing else
        msg["fills"] = [{k: f[k] for k in ("fill_id", "ts_ns", "quantity", "price", "fee", "liquidity", "venue")}
                        for f in fills]  # fmt: skip
    await bus.publish(f"hedge.{sym}", orjson.dumps(msg), msg_id=f"hedge:{hedge_id}:{'done' if done else 'open'}")
    stats.published["hedge"] += 1


async def run_live(
    bus: Bus,
    source: ReplaySource,
    config: HedgingConfig,
    store_path: str | Path,
    *,
    model: Any,
    book: BookSpec | None = None,
    durable: str | None = None,
    checkpoint_every: int = 100,
    idle_timeout_s: float = 30.0,
    router: str = "ck",
    on_hedge: Callable[[HedgeDecision], None] | None = None,
) -> LiveStats:
    """Hedge ``book`` on the quotes of ``md.SYMBOL`` until the feed's end-of-stream (or ``idle_timeout_s``
    without a message).

    ``source`` is the venue the hedges execute on (the replayed day, where the hedges' own orders move the
    book) and gives the first quote the book is set up at; the market data the engine decides on comes only
    from the bus.  ``store_path`` holds the journal and the bus position: running again on the same store
    (after a crash) resumes.
    """
    sym = config.underlying
    durable = durable or f"hedger-{sym}"
    stats = LiveStats()
    t_start = time.perf_counter()
    first = source.first()
    mid0 = 0.5 * (first["bid"] + first["ask"])
    mk = model.market(1)
    sigma_annual = model.sigma(mk) / mk.price * math.sqrt(252 * source.day.spec.calendar.length_s())
    with Store(store_path) as store:
        portfolio = _portfolio(source.day, book or BookSpec(), first["ts_ns"], mid0, sigma_annual)
        executor = source.executor(store, router=router)
        engine = HedgingEngine(config, portfolio, store, model=model, executor=executor)
        pos = store.get_state("bus_seq", [0, 0])  # [seq, index in its frame] of the last quote acted on
        done = (int(pos[0]), int(pos[1])) if isinstance(pos, list) else (int(pos), _WHOLE)
        free_ns = 0
        for d in engine.open_hedges():  # a restart: finish what the crashed run had started
            out = engine.handle(d)
            if out is not None:
                free_ns = max(free_ns, out.end_ns)
        for h in store.read("hedges").to_pylist():  # announce everything: what a crash kept off the bus goes out now
            await _publish_hedge(bus, store, h["hedge_id"], sym, stats)
            ev = store.read("hedge_events", where="hedge_id = ? AND kind = 'done'", params=[h["hedge_id"]])
            if ev.num_rows:
                free_ns = max(free_ns, int(ev.column("ts_ns")[0].as_py()))
        sub = await bus.subscribe(f"md.{sym}", durable=durable)
        try:
            while True:
                msg = await sub.next(idle_timeout_s)
                if msg is None:
                    log.warning("no market data for %.0f s: stopping", idle_timeout_s)
                    break
                stats.received += 1
                stats.last_seq = msg.seq
                if msg.seq < done[0]:  # acted on before a restart
                    stats.skipped_seen += 1
                    continue
                try:
                    frame = decode_quotes(msg.data)
                except BusError:
                    frame = [None]
                k0 = done[1] + 1 if msg.seq == done[0] else 0  # a frame cut short by a crash goes on
                if k0 >= len(frame):
                    stats.skipped_seen += 1
                    continue
                if len(frame) == 1 and isinstance(frame[0], dict) and frame[0].get("eos"):
                    store.put_state("bus_seq", [msg.seq, 0], ts_ns=engine.last.ts_ns if engine.last else 0)
                    await sub.ack(msg)
                    stats.finished = True
                    break
                decided = False
                ts: Any = None
                for k in range(k0, len(frame)):
                    q = frame[k]
                    stats.quotes += 1
                    if isinstance(q, dict):
                        q["offset"] = msg.seq
                    else:
                        stats.bad += 1  # the engine counts and refuses it too
                    ts = q.get("ts_ns") if isinstance(q, dict) else None
                    if isinstance(ts, int) and ts < free_ns:  # a hedge is working: the monitor watches
                        engine.on_market(q, decide=False)
                        continue
                    t0 = time.perf_counter_ns()
                    decision = engine.on_market(q)
                    if decision is None:
                        continue
                    stats.decision_latency_us.append((time.perf_counter_ns() - t0) / 1e3)
                    if on_hedge is not None:
                        on_hedge(decision)
                    # the journal first (the hedge id is the quote's time, so a quote seen again after a crash
                    # finds its hedge there), then the position
                    out = engine.handle(decision)
                    store.put_state("bus_seq", [msg.seq, k], ts_ns=decision.ts_ns)
                    if out is not None:
                        free_ns = out.end_ns
                    stats.hedges += 1
                    await _publish_hedge(bus, store, decision.hedge_id, sym, stats)
                    decided = True
                if decided or msg.seq % checkpoint_every == 0:  # the whole message is done: acknowledge it
                    store.put_state("bus_seq", [msg.seq, len(frame) - 1], ts_ns=int(ts) if isinstance(ts, int) else 0)
                    await sub.ack(msg)
                    done = (msg.seq, len(frame) - 1)
        finally:
            await sub.close()
    stats.wall_s = time.perf_counter() - t_start
    return stats
