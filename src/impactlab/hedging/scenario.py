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

import dataclasses
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from impactlab.data import ParentOrder, Side, Store
from impactlab.errors import HedgingError
from impactlab.hedging.engine import HedgeDecision, HedgeOutcome, HedgingConfig, HedgingEngine
from impactlab.hedging.greeks import OptionPosition, Portfolio, book_greeks

__all__ = [
    "BookSpec",
    "ReplaySource",
    "ScenarioResult",
    "SimulatorSource",
    "compare_policies",
    "market_stream",
    "run_scenario",
]

log = logging.getLogger(__name__)
NS = 1_000_000_000
ChildPolicyFactory = Callable[[Any], Any]
"""Makes the execution engine's child policy for one hedge from the venue's market (e.g. a trained RL overlay:
``lambda market: OverlayChildPolicy(policy, market)``)."""


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
    """Best bid and ask of a day every ``step_s`` seconds from its start (as the engine's messages)."""
    t = day.start_ns + (np.arange(start_s, end_s, step_s) * NS).astype(np.int64)
    idx = np.searchsorted(day.ts_ns, t, side="right") - 1
    ok = idx >= 0
    out = []
    for i, (ts, j) in enumerate(zip(t[ok], idx[ok], strict=True)):
        bid, ask = day.book.bid_price[j, 0], day.book.ask_price[j, 0]
        if not (np.isfinite(bid) and np.isfinite(ask)):
            continue
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


class _Work:
    """What working a hedge needs on any venue: the order manager with its gate, the router and its ξ."""

    def __init__(self, day: Any, store: Store) -> None:
        from impactlab.execution import RiskLimits, queue_outflow_samples, session_window_volume

        self.day, self.store = day, store
        self.outflow = {s: queue_outflow_samples(day, s, 30.0) for s in (1, -1)}
        self.inside = {s: queue_outflow_samples(day, s, 30.0, improve_ticks=1) for s in (1, -1)}
        self.five_min_volume = session_window_volume(day, 300.0)
        self.limits = RiskLimits(max_participation=0.5)

    def run(
        self,
        d: HedgeDecision,
        raw_venue: Any,
        clock: Any,
        *,
        resume: bool,
        router: str,
        mid_at: Callable[[int], float],
        on_step: Callable[[int], None] | None = None,
        child_policy: ChildPolicyFactory | None = None,
    ) -> HedgeOutcome:
        from impactlab.execution import (
            ContKukanovRouter,
            ExecutionEngine,
            NaiveRouter,
            SimulatedVenue,
            Slicer,
            guarded_order_manager,
        )
        from impactlab.tca import analyse, record_tca

        sv = SimulatedVenue("NASDAQ", raw_venue, collar=self.limits.collar_price)
        oms = guarded_order_manager(self.store, {"NASDAQ": sv}, limits=self.limits, clock=clock,
                                    market_volume=self.five_min_volume, restore=resume,
                                    instrument=self.day.spec)  # fmt: skip
        if resume:
            oms.abandon_open("venue session lost in a restart (cancel on disconnect)")
        rt: Any = ContKukanovRouter() if router == "ck" else NaiveRouter()
        eng = ExecutionEngine(oms, {"NASDAQ": sv}, rt, clock=clock, outflow={"NASDAQ": self.outflow[d.side]},
                              improve_outflow={"NASDAQ": self.inside[d.side]}, post_s=30.0, on_step=on_step,
                              child_policy=None if child_policy is None else child_policy(raw_venue))  # fmt: skip
        parent = ParentOrder(d.parent_order_id, self.day.symbol, Side(d.side), d.quantity, d.ts_ns,
                             d.ts_ns + int(d.horizon_s * NS))  # fmt: skip
        res = eng.run(parent, Slicer(d.schedule, parent))
        kids = [mo.order for mo in oms.orders.values() if mo.order.parent_order_id == parent.order_id]
        predicted = {d.model_version: d.expected_cost_usd / (d.quantity * d.arrival_mid) * 1e4}
        tca = analyse(parent, list(res.fills), mid_at=mid_at, children=kids, end_ns=res.end_ns, post_s=30.0,
                      predicted_bps=predicted)  # fmt: skip
        record_tca(self.store, [tca], now_ns=clock(), forecasts={parent.order_id: d.forecast})
        a = res.arrival_mid
        cost = sum(d.side * f.quantity * (f.price - a) + f.fee for f in res.fills)
        temporary = tca.temporary_bps * d.quantity * a / 1e4 if np.isfinite(tca.temporary_bps) else float("nan")
        return HedgeOutcome(d.hedge_id, res.filled, float(cost), float(temporary), int(res.end_ns))


class ReplaySource:
    """The replayed LOBSTER day: quotes every ``md_step_s`` seconds; each hedge works on a fresh replay from
    its decision (or the restart) on, where its own orders move the book.  Restartable."""

    kind = "replay"
    restartable = True

    def __init__(self, day: Any, *, start_s: float, end_s: float, md_step_s: float, data: Any = None) -> None:
        from impactlab.simulation import ReplayData
        from impactlab.tca import MarketPath

        self.day = day
        self.data = data if data is not None else ReplayData.from_day(day)
        self.stream = market_stream(day, start_s=start_s, end_s=end_s, step_s=md_step_s)
        if not self.stream:
            raise HedgingError(f"no market data between {start_s} s and {end_s} s")
        self.mid_at = MarketPath(day).mid_at
        self.describe = (f"{day.symbol} {day.date} replay, {start_s:g}–{end_s:g} s after the open, quotes every "
                         f"{md_step_s:g} s")  # fmt: skip

    def first(self) -> dict[str, Any]:
        return self.stream[0]

    def messages(self) -> Iterator[dict[str, Any]]:
        return iter(self.stream)

    def executor(
        self, store: Store, *, router: str = "ck", child_policy: ChildPolicyFactory | None = None
    ) -> Callable[[HedgeDecision, bool], HedgeOutcome]:
        from impactlab.execution import SimClock
        from impactlab.simulation import ConstantLatency, FeeModel, ReplayMarket

        work = _Work(self.day, store)

        def run(d: HedgeDecision, resume: bool) -> HedgeOutcome:
            start = d.ts_ns
            if resume:  # carry on after the last thing the crashed run journalled for this hedge
                ev = store.read("order_events", where="client_order_id LIKE ?", params=[d.parent_order_id + "-%"])
                if ev.num_rows:
                    start = max(start, int(max(ev.column("ts_ns").to_pylist())) + 1_000_000)
            venue = ReplayMarket(self.data, start_ns=start, fees=FeeModel(-0.2, 0.3),
                                 entry_latency=ConstantLatency(NS // 1000),
                                 response_latency=ConstantLatency(NS // 1000))  # fmt: skip
            return work.run(d, venue, SimClock(start), resume=resume, router=router, mid_at=self.mid_at,
                            child_policy=child_policy)  # fmt: skip

        return run


class SimulatorSource:
    """The queue-reactive simulator fitted to the day (:func:`~impactlab.simulation.fit_queue_reactive`): one
    seeded market that both sends the quotes and fills the hedges, so the hedges' own orders stay in it.
    While a hedge works, the quotes it passes through are sampled (on the stream's grid) and handed to the
    monitor afterwards.  Not restartable: the simulated market lives in the process."""

    kind = "sim"
    restartable = False

    def __init__(self, day: Any, *, duration_s: float, md_step_s: float, seed: int = 0) -> None:
        from impactlab.rl.tasks import _fitted_flow
        from impactlab.simulation import ConstantLatency, FeeModel, QueueReactiveMarket

        self.day = day
        params = _fitted_flow(day)
        self.venue = QueueReactiveMarket(
            params, price=float(params.extra["price"]), tick_size=day.tick_size, seed=seed,
            fees=FeeModel(-0.2, 0.3), initial_spread_ticks=max(1, round(params.extra["mean_spread_ticks"])),
            entry_latency=ConstantLatency(NS // 1000), response_latency=ConstantLatency(NS // 1000),
        )  # fmt: skip
        self.venue.run_to(self.venue.now_ns + 60 * NS)  # a minute of warm-up
        self.t0 = int(self.venue.now_ns)
        self.step_ns = int(md_step_s * NS)
        self.n = int(duration_s / md_step_s)
        self.recorded: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._last_i = -1
        self.describe = (f"queue-reactive simulator fitted to {day.symbol} {day.date} (seed {seed}), "
                         f"{duration_s:g} s, quotes every {md_step_s:g} s")  # fmt: skip

    def _quote(self, i: int) -> dict[str, Any] | None:
        if i <= self._last_i:
            return None  # each grid time is quoted once
        self._last_i = i
        b = self.venue.book(1)
        bid, ask = float(b.bid_price[0]), float(b.ask_price[0])
        if not (np.isfinite(bid) and np.isfinite(ask) and bid < ask):
            return None
        m = {"ts_ns": self.t0 + i * self.step_ns, "bid": bid, "ask": ask, "offset": i}
        self.recorded.append(m)
        return m

    def first(self) -> dict[str, Any]:
        m = self._quote(0)
        if m is None:
            raise HedgingError("the simulator has no two-sided quote after its warm-up")
        self.recorded.clear()
        self._last_i = -1
        return m

    def messages(self) -> Iterator[dict[str, Any]]:
        for i in range(self.n):
            while self._pending:  # quotes sampled while a hedge worked, in order
                yield self._pending.pop(0)
            t = self.t0 + i * self.step_ns
            if t < self.venue.now_ns:
                continue  # a hedge took the market past this time: its quotes came from the tap
            self.venue.run_to(t)
            m = self._quote(i)
            if m is not None:
                yield m
        yield from self._pending

    def mid_at(self, ts_ns: int) -> float:
        ts = [m["ts_ns"] for m in self.recorded]
        k = int(np.searchsorted(ts, ts_ns, side="right")) - 1
        m = self.recorded[max(k, 0)]
        return 0.5 * (float(m["bid"]) + float(m["ask"]))

    def executor(
        self, store: Store, *, router: str = "ck", child_policy: ChildPolicyFactory | None = None
    ) -> Callable[[HedgeDecision, bool], HedgeOutcome]:
        from impactlab.execution import SimClock

        work = _Work(self.day, store)

        def run(d: HedgeDecision, resume: bool) -> HedgeOutcome:
            if resume:
                raise HedgingError("the simulator scenario cannot resume a hedge: its market died with the process")
            nxt = {"i": (d.ts_ns - self.t0) // self.step_ns + 1}

            def tap(t_ns: int) -> None:
                while nxt["i"] < self.n and self.t0 + nxt["i"] * self.step_ns <= t_ns:
                    m = self._quote(nxt["i"])
                    if m is not None:
                        self._pending.append(m)
                    nxt["i"] += 1

            out = work.run(d, self.venue, SimClock(int(self.venue.now_ns)), resume=False, router=router,
                           mid_at=self.mid_at, on_step=tap, child_policy=child_policy)  # fmt: skip
            # the one market went on past the order's end (the post-trade mid): the next decision comes after it
            return dataclasses.replace(out, end_ns=max(out.end_ns, int(self.venue.now_ns)))

        return run


def run_scenario(
    source: ReplaySource | SimulatorSource,
    config: HedgingConfig,
    store_path: str | Path,
    *,
    model: Any,
    book: BookSpec = BookSpec(),
    pnl_interval_s: float = 300.0,
    checkpoint_every: int = 100,
    router: str = "ck",
    child_policy: ChildPolicyFactory | None = None,
) -> ScenarioResult:
    """Hedge ``book`` over ``source`` (:class:`ReplaySource` or :class:`SimulatorSource`).

    ``store_path`` holds the journal: on a replay, running again on the same store resumes where it
    stopped.  ``router`` (``"ck"`` or ``"naive"``) places each child; ``child_policy`` replaces it with a
    policy that sizes and prices each non-urgent child (the RL overlay).
    """
    day = source.day
    first = source.first()
    mid0 = 0.5 * (first["bid"] + first["ask"])
    # the model's σ ($/√s of trading time) as an annual relative volatility: 252 sessions of the calendar's length
    mk = model.market(1)
    sigma_annual = model.sigma(mk) / mk.price * math.sqrt(252 * day.spec.calendar.length_s())
    with Store(store_path) as store:
        if not source.restartable and store.count("hedges"):
            raise HedgingError(f"{store_path} already holds hedges and a {source.kind} scenario cannot resume")
        portfolio = _portfolio(day, book, first["ts_ns"], mid0, sigma_annual)
        initial_shares = float(portfolio.shares)
        executor = source.executor(store, router=router, child_policy=child_policy)
        engine = HedgingEngine(config, portfolio, store, model=model, executor=executor)
        offset = int(store.get_state("md_offset", 0))
        free_ns = 0
        for d in engine.open_hedges():  # a restart: finish what the crashed run had started
            out = engine.handle(d)
            if out is not None:
                free_ns = max(free_ns, out.end_ns)
        done = store.read("hedge_events", where="kind = 'done'")
        if done.num_rows:
            free_ns = max(free_ns, int(max(done.column("ts_ns").to_pylist())))
        seen: list[dict[str, Any]] = []
        last_ts = first["ts_ns"]
        for msg in source.messages():
            i = msg["offset"]
            seen.append(msg)
            last_ts = msg["ts_ns"]
            if i < offset:
                continue
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
        store.put_state("md_offset", 1 << 62, ts_ns=last_ts)  # finished
        result = _result(config.policy, store, engine, source.mid_at, portfolio, initial_shares, seen, pnl_interval_s,
                         spec=day.spec)  # fmt: skip
    return result


def _result(
    policy: str, store: Store, engine: HedgingEngine, mid_at: Callable[[int], float], portfolio: Portfolio,
    initial_shares: float, stream: Sequence[dict[str, Any]], pnl_interval_s: float, *, spec: Any = None,
) -> ScenarioResult:  # fmt: skip
    """Hedging P&L marked to the mid every ``pnl_interval_s``: options (Black–Scholes at the book's implied
    vol) + shares held + the cash the hedges moved, each fill counted at the mid when it traded, so that
    execution costs stay out of it; its increments' variance is the hedging error.  Costs are the hedges'
    shortfalls against their arrival mids, fees in."""
    hedges = store.read("hedges").to_pylist()
    done = {e["hedge_id"]: e for e in store.read("hedge_events", where="kind = 'done'").to_pylist()}
    parents = {h["parent_order_id"] for h in hedges}
    fills = sorted((f for f in store.read("fills").to_pylist() if f["parent_order_id"] in parents),
                   key=lambda f: f["ts_ns"])  # fmt: skip
    f_t = np.array([f["ts_ns"] for f in fills], np.int64)
    f_q = np.cumsum([f["side"] * f["quantity"] for f in fills]) if fills else np.zeros(0)
    f_cash = np.cumsum([-f["side"] * f["quantity"] * mid_at(f["ts_ns"]) for f in fills]) if fills else np.zeros(0)
    grid = np.array([m["ts_ns"] for m in stream], np.int64)
    want = np.arange(grid[0], grid[-1] + 1, int(pnl_interval_s * NS)) if grid.size else grid
    marks = [stream[max(int(np.searchsorted(grid, t, side="right")) - 1, 0)] for t in want]
    values = []
    mids = []
    book = Portfolio(portfolio.underlying, dict(portfolio.options))
    for m in marks:
        mid = 0.5 * (m["bid"] + m["ask"])
        mids.append(mid)
        k = int(np.searchsorted(f_t, m["ts_ns"], side="right"))
        shares = initial_shares + (float(f_q[k - 1]) if k else 0.0)
        cash = float(f_cash[k - 1]) if k else 0.0
        g = book_greeks(book, mid, m["ts_ns"])
        values.append(g.option_value + shares * mid + cash)
    pnl = np.diff(np.array(values))
    raw_cost = {
        h["hedge_id"]: (done[h["hedge_id"]]["realised_cost_usd"] or 0.0) for h in hedges if h["hedge_id"] in done
    }
    # the engine works in price × quantity; the result is in the settlement currency: × the multiplier of a
    # linear contract; for an inverse one a contract is worth CV/p coins, so a move dp of price × contracts is
    # dp·CV/(p·p') coins (to first order), and a hedge's cost c at arrival mid a is c·CV/a² coins
    if spec is not None and spec.inverse:
        mid_arr = np.array(mids)
        pnl = pnl * spec.contract_value / (mid_arr[:-1] * mid_arr[1:]) if pnl.size else pnl
        arrival = {h["hedge_id"]: float(h["arrival_mid"]) for h in hedges}
        cost = float(sum(c * spec.contract_value / arrival[k] ** 2 for k, c in raw_cost.items()))
    else:
        money = float(spec.multiplier) if spec is not None else 1.0
        pnl = pnl * money
        cost = money * float(sum(raw_cost.values()))
    versions = [r["version"] for r in engine.registry.rows(engine.model.symbol)]
    return ScenarioResult(
        policy, [dict(h, realised_cost_usd=done.get(h["hedge_id"], {}).get("realised_cost_usd")) for h in hedges],
        cost, float(np.var(pnl, ddof=1)) if pnl.size > 1 else float("nan"), pnl_interval_s,
        float(engine.greeks.delta_shares) if engine.greeks else float("nan"), versions, engine.status(),
        [float(x) for x in pnl],
    )  # fmt: skip


def compare_policies(
    make_source: Callable[[], ReplaySource | SimulatorSource],
    model: Any,
    workdir: str | Path,
    *,
    policies: Sequence[tuple[str, HedgingConfig] | tuple[str, HedgingConfig, ChildPolicyFactory | None]],
    book: BookSpec = BookSpec(),
    on_done: Callable[[ScenarioResult], None] | None = None,
    existing: str = "refuse",
    **kwargs: Any,
) -> list[ScenarioResult]:
    """Run each named policy (with its child-policy factory, if it has one) on a fresh source (the same day,
    the same seed) and its own store, ``workdir/hedge-<name>.duckdb``; ``on_done`` is called after each.

    ``existing`` says what to do with a store (a journal) already there: ``"refuse"`` (the default: raise
    :class:`~impactlab.errors.HedgingError` naming them, nothing is touched), ``"resume"`` (carry each on:
    journalled hedges are resumed, never decided twice) or ``"replace"`` (delete them and start again)."""
    if existing not in ("refuse", "resume", "replace"):
        raise HedgingError(f"'existing' must be refuse, resume or replace, got {existing!r}")
    paths = {name: Path(workdir) / f"hedge-{name}.duckdb" for name, *_ in policies}
    found = [p for p in paths.values() if p.exists()]
    if found and existing == "refuse":
        raise HedgingError(
            f"{len(found)} hedging journal(s) already in {workdir} ({', '.join(p.name for p in found)}): "
            "pass --resume to carry them on or --replace to start again"
        )
    out = []
    for name, cfg, *rest in policies:
        path = paths[name]
        if existing == "replace":
            for old in (path, path.with_name(path.name + ".wal"), path.with_name(path.name + ".kill-switch.json")):
                old.unlink(missing_ok=True)
        child = rest[0] if rest else None
        res = run_scenario(make_source(), cfg, path, model=model, book=book, child_policy=child, **kwargs)
        res.policy = name
        out.append(res)
        if on_done is not None:
            on_done(res)
    return out
