"""Scenario runner: hedge an options book over a replayed LOBSTER day (or the queue-reactive simulator),
restart-safe, and compare hedging policies on hedging-error variance against total cost.

The market-data stream is the book's best bid and ask sampled every ``md_step_s`` seconds.  A hedge is
worked to its end through the slicer, the Cont–Kukanov router and the venue (the replay, where the hedge's
own orders move the book) before the stream moves on: while it works, the engine does not decide another.

Restart safety: the engine journals each hedge before it is sent, with an id derived from the message
that triggered it, and checkpoints the stream offset.  A restarted run reopens the store, finishes any
hedge that was not done (the venue session that held its resting orders is gone: they are journalled as
cancelled, as under cancel-on-disconnect, and their fills stay), and goes on from the checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from impactlab.data import ParentOrder, Side, Store
from impactlab.errors import HedgingError
from impactlab.hedging.engine import HedgeDecision, HedgeOutcome, HedgingConfig, HedgingEngine
from impactlab.hedging.greeks import OptionPosition, Portfolio, book_greeks
from impactlab.hedging.model import HedgeCostModel

__all__ = ["BookSpec", "ScenarioResult", "compare_policies", "market_stream", "replay_executor", "run_scenario"]

log = logging.getLogger(__name__)
NS = 1_000_000_000


@dataclass(frozen=True)
class BookSpec:
    """An options book on one underlying: ``contracts`` calls (negative: short) at ``moneyness`` × the spot
    at the start, expiring in ``expiry_days``, marked at ``implied_vol`` (default: the day's annualised
    realised volatility); the underlying position starts delta-hedged."""

    contracts: float = -400.0
    moneyness: float = 1.0
    expiry_days: float = 10.0
    implied_vol: float | None = None
    multiplier: float = 100.0


@dataclass
class ScenarioResult:
    """One policy's run: its hedges and the hedging P&L."""

    policy: str
    hedges: list[dict[str, Any]]
    total_cost_usd: float
    hedge_error_var_usd2: float
    pnl_interval_s: float
    final_delta_shares: float
    model_versions: list[str]
    status: dict[str, Any] = field(default_factory=dict)
    pnl_usd: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "hedges": len(self.hedges),
            "shares_traded": float(sum(h["quantity"] for h in self.hedges)),
            "total_cost_usd": self.total_cost_usd,
            "hedge_error_sd_usd": math.sqrt(self.hedge_error_var_usd2),
            "hedge_error_var_usd2": self.hedge_error_var_usd2,
            "final_delta_shares": self.final_delta_shares,
            "model_versions": self.model_versions,
        }


def market_stream(day: Any, *, start_s: float, end_s: float, step_s: float) -> list[dict[str, Any]]:
    """Best bid and ask of a LOBSTER day every ``step_s`` seconds (as the engine's messages)."""
    t = day.session_open_ns + (np.arange(start_s, end_s, step_s) * NS).astype(np.int64)
    idx = np.searchsorted(day.ts_ns, t, side="right") - 1
    ok = idx >= 0
    out = []
    for i, (ts, j) in enumerate(zip(t[ok], idx[ok], strict=True)):
        bid, ask = day.book[j, 2] / 1e4, day.book[j, 0] / 1e4
        out.append({"ts_ns": int(ts), "bid": float(bid), "ask": float(ask), "offset": i})
    return out


def _portfolio(day: Any, spec: BookSpec, start_ns: int, mid: float, sigma_annual: float) -> Portfolio:
    vol = spec.implied_vol if spec.implied_vol is not None else sigma_annual
    opt = OptionPosition(f"{day.symbol}-C", day.symbol, "call", round(mid * spec.moneyness, 2),
                         start_ns + int(spec.expiry_days * 86_400 * NS), spec.contracts, vol,
                         spec.multiplier)  # fmt: skip
    p = Portfolio(day.symbol, {opt.option_id: opt})
    p.shares = -round(book_greeks(p, mid, start_ns).option_delta_shares)  # start delta-hedged
    return p


def replay_executor(
    day: Any, data: Any, store: Store, *, router: str = "ck"
) -> Callable[[HedgeDecision, bool], HedgeOutcome]:
    """Works each hedge on a fresh replay of ``day`` from the decision (or the restart) on: guarded order
    manager, slicer, Cont–Kukanov router (or naive), TCA recorded in the store."""
    from impactlab.execution import (
        ContKukanovRouter,
        ExecutionEngine,
        NaiveRouter,
        RiskLimits,
        SimClock,
        SimulatedVenue,
        Slicer,
        guarded_order_manager,
        queue_outflow_samples,
    )
    from impactlab.simulation import ConstantLatency, FeeModel, ReplayMarket
    from impactlab.tca import LobsterPath, analyse, record_tca

    outflow = {s: queue_outflow_samples(day, s, 30.0) for s in (1, -1)}
    inside = {s: queue_outflow_samples(day, s, 30.0, improve_ticks=1) for s in (1, -1)}
    path = LobsterPath(day)
    five_min_volume = float(day.size[day.event_type == 4].sum()) / 78
    limits = RiskLimits(max_participation=0.5)

    def run(d: HedgeDecision, resume: bool) -> HedgeOutcome:
        start = d.ts_ns
        if resume:  # carry on after the last thing the crashed run journalled for this hedge
            ev = store.read("order_events", where="client_order_id LIKE ?", params=[d.parent_order_id + "-%"])
            if ev.num_rows:
                start = max(start, int(max(ev.column("ts_ns").to_pylist())) + 1_000_000)
        clock = SimClock(start)
        venue = ReplayMarket(data, start_ns=start, fees=FeeModel(-0.2, 0.3), entry_latency=ConstantLatency(NS // 1000),
                             response_latency=ConstantLatency(NS // 1000))  # fmt: skip
        sv = SimulatedVenue("NASDAQ", venue, collar=limits.collar_price)
        oms = guarded_order_manager(store, {"NASDAQ": sv}, limits=limits, clock=clock,
                                    market_volume=five_min_volume, restore=resume)  # fmt: skip
        if resume:
            oms.abandon_open("venue session lost in a restart (cancel on disconnect)")
        rt: Any = ContKukanovRouter() if router == "ck" else NaiveRouter()
        eng = ExecutionEngine(oms, {"NASDAQ": sv}, rt, clock=clock, outflow={"NASDAQ": outflow[d.side]},
                              improve_outflow={"NASDAQ": inside[d.side]}, post_s=30.0)  # fmt: skip
        parent = ParentOrder(d.parent_order_id, day.symbol, Side(d.side), d.quantity, d.ts_ns,
                             d.ts_ns + int(d.horizon_s * NS))  # fmt: skip
        res = eng.run(parent, Slicer(d.schedule, parent))
        kids = [mo.order for mo in oms.orders.values() if mo.order.parent_order_id == parent.order_id]
        predicted = {"hedge-model": d.expected_cost_usd / (d.quantity * d.arrival_mid) * 1e4}
        tca = analyse(parent, list(res.fills), mid_at=path.mid_at, children=kids, end_ns=res.end_ns, post_s=30.0,
                      predicted_bps=predicted)  # fmt: skip
        record_tca(store, [tca], now_ns=clock())
        a = res.arrival_mid
        cost = sum(d.side * f.quantity * (f.price - a) + f.fee for f in res.fills)
        temporary = tca.temporary_bps * d.quantity * a / 1e4 if np.isfinite(tca.temporary_bps) else float("nan")
        return HedgeOutcome(d.hedge_id, res.filled, float(cost), float(temporary), int(res.end_ns))

    return run


def run_scenario(
    day: Any,
    config: HedgingConfig,
    store_path: str | Path,
    *,
    model: HedgeCostModel,
    book: BookSpec = BookSpec(),
    start_s: float = 600.0,
    end_s: float = 22_500.0,
    md_step_s: float = 5.0,
    pnl_interval_s: float = 300.0,
    data: Any = None,
    checkpoint_every: int = 100,
    stop_after: int | None = None,
    on_message: Callable[[int], None] | None = None,
) -> ScenarioResult:
    """Hedge ``book`` over ``day`` from ``start_s`` to ``end_s`` seconds after the open; resumable.

    ``store_path`` holds the journal: running again on the same store resumes where it stopped.
    ``stop_after`` stops (cleanly) after that many messages (tests); ``on_message(offset)`` is called after
    each message (the kill test's hook).
    """
    from impactlab.simulation import ReplayData

    data = data if data is not None else ReplayData.from_lobster(day)
    stream = market_stream(day, start_s=start_s, end_s=end_s, step_s=md_step_s)
    if not stream:
        raise HedgingError(f"no market data between {start_s} s and {end_s} s")
    first = stream[0]
    # the model's σ ($/√s of trading time) as an annual relative volatility: 252 sessions of 6.5 hours
    sigma_annual = model.sigma / (0.5 * (first["bid"] + first["ask"])) * math.sqrt(252 * 6.5 * 3600)
    with Store(store_path) as store:
        portfolio = _portfolio(day, book, first["ts_ns"], 0.5 * (first["bid"] + first["ask"]), sigma_annual)
        initial_shares = float(portfolio.shares)
        engine = HedgingEngine(config, portfolio, store, model=model, executor=replay_executor(day, data, store))
        offset = int(store.get_state("md_offset", 0))
        free_ns = 0
        for d in engine.open_hedges():  # a restart: finish what the crashed run had started
            engine.last = None
            out = engine.handle(d)
            if out is not None:
                free_ns = max(free_ns, out.end_ns)
        done = store.read("hedge_events", where="kind = 'done'")
        if done.num_rows:
            free_ns = max(free_ns, int(max(done.column("ts_ns").to_pylist())))
        n = 0
        for msg in stream[offset:]:
            i = msg["offset"]
            if msg["ts_ns"] < free_ns:  # a hedge is working: the monitor watches, the engine decides nothing
                engine.on_market(msg, decide=False)
                continue
            decision = engine.on_market(msg)
            if decision is not None:
                store.put_state("md_offset", i, ts_ns=msg["ts_ns"])  # a restart re-reads from the decision
                out = engine.handle(decision)
                if out is not None:
                    free_ns = out.end_ns
            elif i % checkpoint_every == 0:
                store.put_state("md_offset", i, ts_ns=msg["ts_ns"])
            if on_message is not None:
                on_message(i)
            n += 1
            if stop_after is not None and n >= stop_after:
                break
        else:
            store.put_state("md_offset", len(stream), ts_ns=stream[-1]["ts_ns"])
        result = _result(config.policy, store, engine, day, portfolio, initial_shares, stream, pnl_interval_s)
    return result


def _result(
    policy: str, store: Store, engine: HedgingEngine, day: Any, portfolio: Portfolio, initial_shares: float,
    stream: Sequence[dict[str, Any]], pnl_interval_s: float,
) -> ScenarioResult:  # fmt: skip
    """Hedging P&L marked to the mid every ``pnl_interval_s``: options (Black–Scholes at the book's implied
    vol) + shares held + the cash the hedges moved, each fill counted at the mid when it traded, so that
    execution costs stay out of it; its increments' variance is the hedging error.  Costs are the hedges'
    shortfalls against their arrival mids, fees in."""
    from impactlab.tca import LobsterPath

    path = LobsterPath(day)
    hedges = store.read("hedges").to_pylist()
    done = {e["hedge_id"]: e for e in store.read("hedge_events", where="kind = 'done'").to_pylist()}
    parents = {h["parent_order_id"] for h in hedges}
    fills = sorted((f for f in store.read("fills").to_pylist() if f["parent_order_id"] in parents),
                   key=lambda f: f["ts_ns"])  # fmt: skip
    f_t = np.array([f["ts_ns"] for f in fills], np.int64)
    f_q = np.cumsum([f["side"] * f["quantity"] for f in fills]) if fills else np.zeros(0)
    f_cash = np.cumsum([-f["side"] * f["quantity"] * path.mid_at(f["ts_ns"]) for f in fills]) if fills else np.zeros(0)
    step = max(1, round(pnl_interval_s / ((stream[1]["ts_ns"] - stream[0]["ts_ns"]) / NS))) if len(stream) > 1 else 1
    marks = stream[::step]
    values = []
    book = Portfolio(portfolio.underlying, dict(portfolio.options))
    for m in marks:
        mid = 0.5 * (m["bid"] + m["ask"])
        k = int(np.searchsorted(f_t, m["ts_ns"], side="right"))
        shares = initial_shares + (float(f_q[k - 1]) if k else 0.0)
        cash = float(f_cash[k - 1]) if k else 0.0
        g = book_greeks(book, mid, m["ts_ns"])
        values.append(g.option_value + shares * mid + cash)
    pnl = np.diff(np.array(values))
    cost = float(sum((done[h["hedge_id"]]["realised_cost_usd"] or 0.0) for h in hedges if h["hedge_id"] in done))
    versions = [r["version"] for r in engine.registry.versions()]
    return ScenarioResult(
        policy, [dict(h, realised_cost_usd=done.get(h["hedge_id"], {}).get("realised_cost_usd")) for h in hedges],
        cost, float(np.var(pnl, ddof=1)) if pnl.size > 1 else float("nan"), pnl_interval_s,
        float(engine.greeks.delta_shares) if engine.greeks else float("nan"), versions, engine.status(),
        [float(x) for x in pnl],
    )  # fmt: skip


def compare_policies(
    day: Any,
    model: HedgeCostModel,
    workdir: str | Path,
    *,
    policies: Sequence[tuple[str, HedgingConfig]],
    book: BookSpec = BookSpec(),
    **kwargs: Any,
) -> list[ScenarioResult]:
    """Run each named policy on its own fresh store under ``workdir`` over the same day and book."""
    from impactlab.simulation import ReplayData

    data = ReplayData.from_lobster(day)
    out = []
    for name, cfg in policies:
        path = Path(workdir) / f"hedge-{name}.duckdb"
        path.unlink(missing_ok=True)
        res = run_scenario(day, cfg, path, model=model, book=book, data=data, **kwargs)
        res.policy = name
        out.append(res)
    return out
