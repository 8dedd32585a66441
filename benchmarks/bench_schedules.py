"""Schedules: Almgren–Chriss trajectory and frontier, the transient QP and the pre-trade report, against the PyPI
``almgren-chriss`` and ``slippage-tca`` packages in the same run; plus the reproduction checks."""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import numpy as np

from benchmarks._common import DATA, Section, per_call, timed

PROBLEM = {"quantity": 1e6, "horizon": 1.0, "sigma": 0.95, "eta": 2.5e-6, "gamma": 2.5e-7}


def _peers() -> tuple[Any, Any]:
    try:
        import almgren_chriss as peer_ac
    except ImportError:  # pragma: no cover - bench extras not installed
        peer_ac = None
    try:
        import slippage.execution as peer_sl
    except ImportError:  # pragma: no cover
        peer_sl = None
    return peer_ac, peer_sl


def _us(s: float) -> str:
    return f"{s * 1e6:,.1f} µs" if s < 1e-3 else f"{s * 1e3:,.2f} ms"


def speed(quick: bool = False) -> list[Section]:
    from impactlab.schedules import AlmgrenChriss, DecayKernel, TransientImpact

    peer_ac, peer_sl = _peers()
    rep = 20 if quick else 200
    traj = Section(
        "Almgren–Chriss trajectory",
        "python benchmarks/run.py (bench_schedules.speed)",
        "`almgren_chriss.trade_trajectory` 1.1.0 and `slippage.execution.optimal_trajectory` 0.1.0 (slippage-tca), "
        "same problem, same run; each call timed as the median of repeated calls",
        ["N", "impactlab", "almgren-chriss", "slippage-tca", "vs almgren-chriss", "max |Δx|/X vs peer"],
    )
    for n in (5, 390, 5000):
        ac = AlmgrenChriss(n_steps=n, **PROBLEM)  # type: ignore[arg-type]
        lam = 1e-6
        ours = ac.trajectory(lam)
        number = max(10, 20_000 // n) if not quick else 10
        t_ours = per_call(lambda ac=ac, lam=lam: ac.trajectory(lam), number=number)
        t_ac = t_sl = math.nan
        diff = math.nan
        if peer_ac is not None:
            ref = peer_ac.trade_trajectory(lam, 1.0 / n, 0.95, 2.5e-7, 2.5e-6, 1e6, 1.0)
            diff = float(np.max(np.abs(ref - ours)) / 1e6)
            t_ac = per_call(
                lambda n=n, lam=lam: peer_ac.trade_trajectory(lam, 1.0 / n, 0.95, 2.5e-7, 2.5e-6, 1e6, 1.0),
                number=number,
            )
        if peer_sl is not None:
            from slippage.impact import LinearImpact as SlLinear

            prob = peer_sl.ExecutionProblem(1e6, 1.0, n, 0.95, SlLinear(gamma=2.5e-7, eta=2.5e-6))
            t_sl = per_call(
                lambda prob=prob, lam=lam: peer_sl.optimal_trajectory(prob, lam), number=max(3, number // 20), repeat=3
            )
        traj.add(f"{n:,}", _us(t_ours), _us(t_ac), _us(t_sl), f"{t_ac / t_ours:.1f}× faster", f"{diff:.1e}")
    # finiteness across risk aversions (the peer overflows: sinh(κT) at large κ)
    lams = [1e-6, 0.1, 1.0, 1e3, 1e10]
    ours_ok = sum(bool(np.all(np.isfinite(AlmgrenChriss(n_steps=390, **PROBLEM).trajectory(v)))) for v in lams)  # type: ignore[arg-type]
    peer_ok = 0
    if peer_ac is not None:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for v in lams:
                with contextlib.suppress(OverflowError, ValueError, ZeroDivisionError):
                    peer_ok += bool(
                        np.all(np.isfinite(peer_ac.trade_trajectory(v, 1 / 390, 0.95, 2.5e-7, 2.5e-6, 1e6, 1.0)))
                    )
    traj.notes.append(
        f"finite trajectories at N = 390 for λ ∈ {lams}: impactlab {ours_ok}/{len(lams)}, "
        f"almgren-chriss {peer_ok}/{len(lams)}"
    )

    front = Section(
        "Efficient frontier, 100 points with full trajectories (N = 390)",
        "python benchmarks/run.py (bench_schedules.speed)",
        "`slippage.execution.efficient_frontier` (full trajectories) and 100 calls of `almgren_chriss` "
        "cost_expectation + cost_variance (E and V only), same run",
        ["implementation", "time", "vs impactlab"],
    )
    ac = AlmgrenChriss(n_steps=390, **PROBLEM)  # type: ignore[arg-type]
    f = ac.frontier()
    lams_f = f.risk_aversion
    t_ours = per_call(lambda: ac.frontier(lams_f), number=50)
    front.add("impactlab `AlmgrenChriss.frontier` (compiled)", _us(t_ours), "1.0×")
    if peer_sl is not None:
        from slippage.impact import LinearImpact as SlLinear

        prob = peer_sl.ExecutionProblem(1e6, 1.0, 390, 0.95, SlLinear(gamma=2.5e-7, eta=2.5e-6))
        t = timed(lambda: peer_sl.efficient_frontier(prob, [float(v) for v in lams_f]), repeat=3)[0]
        front.add("slippage-tca `efficient_frontier`", _us(t), f"{t / t_ours:.0f}× slower")
    if peer_ac is not None:

        def ev_only() -> None:
            for v in lams_f[lams_f < 0.05]:
                peer_ac.cost_expectation(float(v), 1 / 390, 0.95, 2.5e-7, 2.5e-6, 0.0, 1e6, 1.0)
                peer_ac.cost_variance(float(v), 1 / 390, 0.95, 2.5e-7, 2.5e-6, 1e6, 1.0)

        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            t = per_call(ev_only, number=10)
        front.add(
            f"almgren-chriss E and V only ({int((lams_f < 0.05).sum())} of the 100 λ it can evaluate)",
            _us(t),
            f"{t / t_ours:.1f}×",
        )
    front.notes.append("target: under 1 ms at N = 390 with every trajectory kept")

    qp = Section(
        "Discrete transient-impact programme (N = 390 trades)",
        "python benchmarks/run.py (bench_schedules.speed)",
        "`slippage.transient.optimal_transient_schedule` 0.1.0 (same kernel, same grid), same run",
        ["kernel", "impactlab", "slippage-tca", "ratio", "max |Δn|/X"],
    )
    times = np.linspace(0.0, 1.0, 390)
    for label, kernel, peer_kernel in (
        ("exponential ρ = 2.231 (Obizhaeva–Wang)", DecayKernel.exponential(2.231), ("exp", 2.231)),
        ("power law (1 + t/0.01)^−0.5", DecayKernel.power_law(0.5, 0.01), ("pow", 0.5)),
    ):
        model = TransientImpact(kernel, 1e-4)
        ours_s = model.optimal(1e5, times)
        t_ours = timed(lambda model=model: model.optimal(1e5, times), repeat=max(5, rep // 10))[0]
        t_peer, diff = math.nan, math.nan
        try:
            import slippage.transient as st

            pk = (
                st.ExponentialDecay(0.0, 1e-4, peer_kernel[1])
                if peer_kernel[0] == "exp"
                else st.PowerLawDecay(0.0, 1e-4, peer_kernel[1], 0.01)
            )
            ref = st.optimal_transient_schedule(pk, 1e5, 390, 1.0 / 389)
            diff = float(np.max(np.abs(np.asarray(ref.trades) - ours_s.trades)) / 1e5)
            t_peer = timed(lambda pk=pk: st.optimal_transient_schedule(pk, 1e5, 390, 1.0 / 389), repeat=3)[0]
        except ImportError:  # pragma: no cover
            pass
        qp.add(label, _us(t_ours), _us(t_peer), f"{t_peer / t_ours:.1f}× faster", f"{diff:.1e}")
    qp.notes.append("target: under 50 ms; includes the positive-definiteness check (Cholesky) on every solve")
    return [traj, front, qp]


def pretrade_bench(quick: bool = False) -> Section:
    from impactlab.calibration.pretrade import book_cost_model, market_context
    from impactlab.data.catalog import load_market
    from impactlab.schedules import CombinedCost, TransientImpact, pretrade

    sec = Section(
        "Pre-trade report: GOOG buy 50,000, 20 horizons (1 min … 1 day) + 3 strategies",
        "python benchmarks/run.py (bench_schedules.pretrade_bench); "
        "`impactlab pretrade --symbol GOOG --side buy --qty 50000`",
        "the same report priced the direct way: the transient cost by the dense N × N interval-averaged kernel "
        "matrix (what the O(N) compiled recursion replaces) and the square-root model asked afresh for every "
        "schedule (what the memo on its inputs replaces), same run",
        ["what", "median time", "vs baseline"],
    )
    day = load_market("GOOG", data=DATA)
    days = [day, load_market("AMZN", data=DATA)]
    market = market_context(day, volume_days=days)
    book = book_cost_model(day)
    report = pretrade(50_000, side=1, model=book.model, market=market)
    t_fast = timed(lambda: pretrade(50_000, side=1, model=book.model, market=market), repeat=3 if quick else 9)[0]

    transient = book.model.parts[0]
    assert isinstance(transient, TransientImpact)

    class Dense:
        def schedule_cost(self, schedule: Any, market: Any = None) -> Any:
            n = schedule.trades
            g = transient.interval_matrix(schedule.times)
            temp = transient.spread * float(np.abs(n).sum()) + 0.5 * transient.transient * float(n @ g @ n)
            from impactlab.schedules import ScheduleCost

            return ScheduleCost(temp / schedule.quantity, 0.0, temp / schedule.quantity, "bps", model="dense")

    from impactlab.schedules import ModelCost

    class Fresh:  # the permanent part asked afresh for every schedule (no memo)
        def schedule_cost(self, schedule: Any, market: Any = None) -> Any:
            return ModelCost(book.sqrt, role="permanent").schedule_cost(schedule, market)

    dense_model = CombinedCost((Dense(), Fresh()))
    dense = pretrade(50_000, side=1, model=dense_model, market=market)
    gap = max(abs(a.cost.total - b.cost.total) for a, b in zip(report.curve, dense.curve, strict=True))
    t_dense = timed(lambda: pretrade(50_000, side=1, model=dense_model, market=market), repeat=3)[0]
    sec.add("impactlab `pretrade` (O(N) transient cost)", _us(t_fast), f"{t_dense / t_fast:.1f}× faster")
    sec.add("dense matrix, model asked per schedule (baseline)", _us(t_dense), "1.0×")
    d = book.describe()
    for s in report.strategies:
        sec.notes.append(
            f"{s.name}: {s.horizon_s / 60:.0f} min at {s.participation:.0%} — temporary {s.cost.temporary:.2f}, "
            f"permanent {s.cost.permanent:.2f}, total {s.cost.total:.2f} bps, sd {s.cost.std:.2f} bps, "
            f"P(cost > 10 bps) {s.prob_exceeds:.1%}"
        )
    sec.notes.append(
        f"model from GOOG {day.date}: half-spread {d['half_spread_bps']:.2f} bps, "
        f"depth {d['depth_shares_per_bps']:.0f} sh/bps, half-life {d['half_life_s']:.2f} s, "
        f"square-root Y {d['sqrt_Y']:.2f}, δ {d['sqrt_delta']:.2f}; "
        f"largest difference between the two pricings {gap:.1e} bps; target: under 200 ms"
    )
    return sec


def reproduction() -> Section:
    from impactlab.schedules import (
        AlmgrenChriss,
        PowerLawTemporaryImpact,
        TransientImpact,
        obizhaeva_wang_optimum,
        optimal_nonlinear,
        serial_correlation_gain,
    )

    sec = Section(
        "Reproductions (papers' printed values)",
        "python benchmarks/run.py (bench_schedules.reproduction); asserted in tests/schedules",
        "the values printed in Almgren & Chriss (2000) and Obizhaeva & Wang (2013)",
        ["check", "printed", "impactlab"],
    )
    ac = AlmgrenChriss(1e6, 5, 5, 0.95, 2.5e-6, 2.5e-7, 0.0625, drift=0.02)
    sec.add("AC Table 1: κ (1/day)", "≈ 0.6", f"{ac.kappa(1e-6):.4f}")
    sec.add("AC Table 1: κT", "≈ 3", f"{5 * ac.kappa(1e-6):.3f}")
    sec.add("AC §4.1: x̄ = α/(2λσ²)", "≈ 11,000 (text: 1,100, a slip)", f"{ac.drift_target(1e-6):,.0f}")
    for rho, printed in ((-0.1, "19 / 38 / 96 / 192"), (-0.5, "257 / 514 / 1286 / 2571")):
        got = " / ".join(
            f"{39 * serial_correlation_gain(rho, sigma=0.95, eta=e, tau=1 / 39):.2f}"
            for e in (2.5e-6, 1.25e-6, 0.5e-6, 0.25e-6)
        )
        sec.add(f"AC Table 2, ρ = {rho}", printed, got)
    for rho, printed in (
        (2.231, "121 min, 23,635"),
        (50.0, "5.4 min, 1,921 (slip)"),
        (1000.0, "0.20 min (slip), 99.8"),
    ):
        s = obizhaeva_wang_optimum(1e5, 1.0, depth=5000, resilience=rho, permanent=1e-4)
        sec.add(
            f"OW Table 1, ρ = {rho:g}: half-life, x₀", printed, f"{s.half_life * 390:.2f} min, {s.initial_block:,.1f}"
        )
    model = TransientImpact.obizhaeva_wang(depth=5000, resilience=2.231, permanent=1e-4)
    got = ", ".join(f"{model.optimal(1e5, np.linspace(0, 1, n + 1)).trades[0]:,.2f}" for n in (10, 25, 100))
    sec.add("OW Fig. 2: first trade, N = 10 / 25 / 100", "26,317 / 24,697 / 23,899", got)
    dev = 0.0
    for n, lam in ((5, 1e-6), (390, 2e-6)):
        a = AlmgrenChriss(1e6, 5.0, n, 0.95, 2.5e-6)
        s2 = optimal_nonlinear(
            1e6, a.times(), np.full(n, a.tau), PowerLawTemporaryImpact(2.5e-6, 1.0), sigma=0.95, risk_aversion=lam
        )
        dev = max(dev, float(np.max(np.abs(s2.holdings - a.trajectory(lam))) / 1e6))
    sec.add("nonlinear optimum (cvxpy, β = 1) vs AC closed form, N = 5 and 390", "equal", f"max |Δx|/X = {dev:.1e}")
    return sec


def run(quick: bool = False) -> list[Section]:
    return [*speed(quick), pretrade_bench(quick), reproduction()]
