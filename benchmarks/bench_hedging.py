"""Hedging: decision latency from a market-data update to a hedge decision, and the policy comparison on
the replayed GOOG day (hedging-error variance against total cost, with the frontier)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._common import Section
from impactlab.calibration.costmodel import calibrate_instrument
from impactlab.data import Store
from impactlab.hedging import HedgingConfig, HedgingEngine, OptionPosition, Portfolio
from impactlab.hedging.report import compare, frontier_svg
from impactlab.hedging.scenario import market_stream
from impactlab.rl.tasks import load_day

NS = 1_000_000_000
FIGURES = Path(__file__).resolve().parent / "figures"


def _book(symbol: str, t0: int, spot: float, n: int) -> Portfolio:
    rng = np.random.default_rng(0)
    opts = {}
    for i in range(n):
        kind = "call" if i % 2 == 0 else "put"
        opts[f"O{i}"] = OptionPosition(f"O{i}", symbol, kind, round(spot * rng.uniform(0.9, 1.1), 2),
                                       t0 + int(rng.uniform(2, 60) * 86_400 * NS), float(rng.integers(-200, 200) or 1),
                                       float(rng.uniform(0.12, 0.3)))  # fmt: skip
    return Portfolio(symbol, opts)


def _latency(quick: bool) -> Section:
    day = load_day("GOOG")
    model = calibrate_instrument(day)
    stream = market_stream(day, start_s=600.0, end_s=2_400.0 if quick else 22_500.0, step_s=1.0)
    mid0 = 0.5 * (stream[0]["bid"] + stream[0]["ask"])
    sec = Section(
        title="Hedging engine — decision latency, market-data update to hedge decision (one pinned core)",
        command="make bench  (benchmarks/bench_hedging.py)",
        baseline="the same updates with the immediate policy (greeks and threshold, no cost profile), same run",
        columns=["policy", "book", "updates", "decisions", "p50 µs", "p99 µs", "max µs", "target p99"],
    )
    for policy in ("impact", "immediate"):
        for n_opt in (1, 20):
            # threshold 1 share: nearly every update is a breach, so nearly every one prices a hedge
            cfg = HedgingConfig("GOOG", policy=policy, threshold_shares=1.0, max_gap_s=1e9, max_hedge_shares=1e9)  # type: ignore[arg-type]
            eng = HedgingEngine(cfg, _book("GOOG", stream[0]["ts_ns"], mid0, n_opt), Store(":memory:"), model=model)
            ts, n_dec = np.empty(len(stream)), 0
            for i, m in enumerate(stream):
                t0 = time.perf_counter_ns()
                d = eng.on_market(m)
                ts[i] = time.perf_counter_ns() - t0
                n_dec += d is not None
            if policy == "impact":
                assert n_dec > 0.9 * len(stream)  # the timed path is the decision path
            p50, p99 = np.percentile(ts[100:], [50, 99]) / 1e3
            sec.add(policy, f"{n_opt} option{'s' if n_opt > 1 else ''}", f"{len(stream):,}", f"{n_dec:,}", f"{p50:.0f}",
                    f"{p99:.0f}", f"{ts.max() / 1e3:.0f}", "< 1,000 µs" if policy == "impact" else "–")  # fmt: skip
    sec.notes.append(
        "Each update: parse and validate the message, the circuit breaker, Black–Scholes greeks of the book, the "
        "threshold, and for the impact-aware policy the cost and risk (with the book's gamma) over 5 horizons of the "
        "instrument model's trajectories (one compiled pass) and the choice of the best, then the chosen schedule and "
        "its forecast; the hedge is not executed here. GOOG best bid/ask every second."
    )
    return sec


OVERLAY_TASK = {"symbol": "AMZN", "quantity": 1_000.0, "horizon_s": 300.0, "step_s": 30.0}


def _overlay(agent_dir: Path, quick: bool) -> float:
    """Train the RL overlay the scenarios compare: PPO on the AMZN replay (a held-out ticker for the GOOG
    hedges), 1,000-share orders over 5 minutes with a decision every 30 s; returns its training CPU seconds."""
    from impactlab.cli.rl import build_train

    t = OVERLAY_TASK
    res = build_train("overlay", "replay", agent_dir, symbol=str(t["symbol"]), quantity=float(t["quantity"]),
                      horizon_s=float(t["horizon_s"]), step_s=float(t["step_s"]),
                      timesteps=2_000 if quick else 20_000, seed=0)  # fmt: skip
    return float(res["cpu_s"])


def _scenario(quick: bool, scenario: str, agent_dir: Path, train_cpu_s: float) -> Section:
    from impactlab.cli.hedging import build_hedge_scenario

    t0 = time.perf_counter()
    end = (3_600.0 if quick else 22_500.0) if scenario == "replay" else (3_600.0 if quick else 3 * 3_600.0)
    with tempfile.TemporaryDirectory() as tmp:
        results, meta = build_hedge_scenario(scenario=scenario, out_dir=Path(tmp), end_s=end,
                                             start_s=600.0 if scenario == "replay" else 1.0,
                                             risk_aversions=(1e-4, 1e-3, 1e-2), overlay_agent=agent_dir,
                                             overlay_risk_aversion=1e-3)  # fmt: skip
    wall = time.perf_counter() - t0
    FIGURES.mkdir(exist_ok=True)
    fig = FIGURES / f"hedging_frontier_GOOG_{scenario}.svg"
    fig.write_text(frontier_svg(results))
    cmp = compare(results)
    where = "the GOOG 2012-06-21 replay" if scenario == "replay" else "the simulator fitted to GOOG 2012-06-21"
    sec = Section(
        title=f"Hedging a short-call book over {where} — policies compared",
        command=f"make bench  (benchmarks/bench_hedging.py); the same: impactlab hedge run --scenario {scenario} "
        "--html report.html",
        baseline="immediate hedging (all at market at once) of the same book on the same market",
        columns=["policy", "hedges", "shares traded", "total cost $", "hedge error sd $", "cost vs immediate",
                 "variance vs immediate (paired 95% CI, $²)", "model versions"],
    )  # fmt: skip
    for r in results:
        s = r.summary()
        c = cmp.get(r.policy)
        sec.add(
            r.policy, s["hedges"], f"{s['shares_traded']:,.0f}", f"{s['total_cost_usd']:,.0f}",
            f"{s['hedge_error_sd_usd']:,.0f}", f"{c['cost_ratio'] - 1:+.0%}" if c else "–",
            f"{c['var_ratio']:.2f}× [{c['var_diff_ci95_usd2'][0]:+,.0f}, {c['var_diff_ci95_usd2'][1]:+,.0f}]"
            if c else "–",
            len(s["model_versions"]),
        )  # fmt: skip
    sec.notes.append(
        f"{meta['scenario']}; book: {meta['book']}; hedge when |delta| > {meta['threshold_shares']:g} shares. "
        f"Every hedge goes through the slicer, the Cont–Kukanov router and the risk gate on the {scenario}, where "
        "its own orders move the book; fills, TCA and model versions go to each policy's store, and the instrument "
        "cost model (the one the pre-trade report and the service use) is refitted from the hedges' realised costs "
        "every 5 hedges or on drift (a change of over 50% on a reference order waits for approval: `model versions` "
        "counts the versions recorded, pending ones included). Hedging error: the "
        "book's P&L (options at Black–Scholes, shares, the hedges' cash at the mid) per 5 minutes; its variance "
        "against immediate hedging is a paired mean of squared increments. Cost: the hedges' fills against their "
        f"arrival mids, fees in. Frontier: `benchmarks/figures/{fig.name}`. Wall time: {wall:.0f} s."
    )
    t = OVERLAY_TASK
    sec.notes.append(
        f"impact-λ0.001+overlay: the impact-aware policy's hedges (the same decisions as impact-λ0.001), each "
        "non-urgent child sized (×0, 0.5, 1, 1.5 of the slicer's) and priced (market, or a limit 1 tick inside, at "
        "or 1 tick behind the own best) by a PPO overlay trained on the "
        f"{t['symbol']} replay ({t['quantity']:,.0f}-share orders over {t['horizon_s']:g} s, a decision every "
        f"{t['step_s']:g} s; {train_cpu_s:.0f} s of training CPU in this run) instead of the Cont–Kukanov router; "
        "sells see the mirrored book. Urgent slices and the final sweep still go to market."
    )
    if scenario == "sim":
        sec.notes.append(
            "In the simulator each policy's own orders change the simulated flow that follows, so the policies see "
            "different paths after their first hedge: the pairing is looser than on the replay."
        )
    return sec


def run(quick: bool = False) -> list[Section]:
    with tempfile.TemporaryDirectory() as tmp:
        agent = Path(tmp) / "overlay"
        cpu = _overlay(agent, quick)
        return [_latency(quick), _scenario(quick, "replay", agent, cpu), _scenario(quick, "sim", agent, cpu)]
