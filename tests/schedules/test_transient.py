"""Obizhaeva–Wang (Table 1 rows, Fig. 2 labels) and the transient-impact programme for general kernels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules import DecayKernel, PriceManipulationWarning, TransientImpact, obizhaeva_wang_optimum
from impactlab.schedules import _kernels as K

X0, Q, T = 100_000.0, 5_000.0, 1.0  # OW Table 1: 100,000 shares, depth 5,000, one day (390 minutes)


@pytest.mark.parametrize(
    ("rho", "half_life_min", "block"),
    [
        (2.231, 121.17, 23_635),  # the case of the paper's Fig. 2
        (50.0, 5.41, 1_923),  # the paper prints 1,921: its known slip (the formula gives 1,923)
        (1000.0, 0.27, 99.8),  # the paper prints a half-life of 0.20 min: ln 2/ρ · 390 is 0.27
    ],
)
def test_table1_rows(rho: float, half_life_min: float, block: float) -> None:
    sol = obizhaeva_wang_optimum(X0, T, depth=Q, resilience=rho, permanent=1 / (2 * Q))
    assert sol.half_life * 390 == pytest.approx(half_life_min, abs=0.01)
    assert sol.initial_block == pytest.approx(block, abs=0.5) and sol.final_block == sol.initial_block
    assert sol.rate == pytest.approx(rho * sol.initial_block)
    assert 2 * sol.initial_block + sol.rate * T == pytest.approx(X0)
    kappa = 1 / Q - 1 / (2 * Q)
    assert sol.cost == pytest.approx(0.5 / (2 * Q) * X0**2 + kappa * X0**2 / (rho * T + 2))


@pytest.mark.parametrize(("n", "label"), [(10, 26_317), (25, 24_697), (100, 23_899)])
def test_fig2_first_discrete_trade(n: int, label: int) -> None:
    model = TransientImpact.obizhaeva_wang(depth=Q, resilience=2.231, permanent=1 / (2 * Q))
    s = model.optimal(X0, np.linspace(0, T, n + 1))
    assert math.floor(s.trades[0]) == label  # the labels are truncated
    assert s.trades.sum() == pytest.approx(X0)
    assert s.trades[0] == pytest.approx(s.trades[-1])  # symmetric: equal blocks at both ends


def test_discrete_optimum_is_the_exact_qp_and_converges_to_the_continuous_cost() -> None:
    model = TransientImpact.obizhaeva_wang(depth=Q, resilience=2.231, permanent=1 / (2 * Q))
    sol = obizhaeva_wang_optimum(X0, T, depth=Q, resilience=2.231, permanent=1 / (2 * Q))
    times = np.linspace(0, T, 11)
    s = model.optimal(X0, times)
    cost = s.cost(model).total
    # no feasible perturbation lowers the cost (KKT of the equality-constrained QP)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = rng.normal(size=11)
        d -= d.mean()
        temp, perm = model.trade_cost(s.trades + 50 * d, times)
        assert temp + perm > cost
    # and SciPy's SLSQP on the same programme agrees
    g = model.kernel.matrix(times)
    res = optimize.minimize(
        lambda n: 0.5 * model.transient * n @ g @ n,
        np.full(11, X0 / 11),
        jac=lambda n: model.transient * g @ n,
        constraints=[{"type": "eq", "fun": lambda n: n.sum() - X0}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    np.testing.assert_allclose(s.trades, res.x, rtol=1e-4)
    costs = [model.optimal(X0, np.linspace(0, T, n + 1)).cost(model).total for n in (10, 100, 1000)]
    assert costs[0] > costs[1] > costs[2] > sol.cost
    assert costs[2] == pytest.approx(sol.cost, rel=1e-4)


def test_continuous_optimum_priced_at_constant_rate_is_the_closed_form() -> None:
    sol = obizhaeva_wang_optimum(X0, T, depth=Q, resilience=2.231, permanent=1 / (2 * Q))
    base = TransientImpact.obizhaeva_wang(depth=Q, resilience=2.231, permanent=1 / (2 * Q))
    exact = TransientImpact(base.kernel, base.transient, base.permanent, continuous=True)
    for n in (1, 10, 390):
        assert sol.schedule(n).cost(exact).total == pytest.approx(sol.cost, rel=1e-12)
    # the O(N) compiled form equals the dense interval-averaged matrix
    rng = np.random.default_rng(3)
    b = np.sort(rng.uniform(0, 50, 31))
    b[7] = b[6]  # a block
    n = rng.uniform(0, 5, 30)
    m = exact.interval_matrix(b)
    ref = float(n @ m @ n)
    assert K.exp_interval_quadratic(n, b[:-1], b[1:], 2.231) == pytest.approx(ref, rel=1e-12)
    assert K.exp_interval_quadratic_py(n, b[:-1], b[1:], 2.231) == pytest.approx(ref, rel=1e-12)
    # a custom kernel with the same shape, averaged numerically, comes close
    custom = TransientImpact(DecayKernel.custom(lambda t: np.exp(-2.231 * t)), base.transient, continuous=True)
    assert float(n @ custom.interval_matrix(b) @ n) == pytest.approx(ref, rel=5e-3)


def test_power_law_kernel_optimum_is_u_shaped_without_negative_trades() -> None:
    model = TransientImpact(DecayKernel.power_law(0.5, 0.01), 1e-4)
    s = model.optimal(1e5, np.linspace(0, 1, 101))
    n = s.trades
    assert np.all(n > 0)
    mid = n[40:61].mean()
    assert n[0] > 5 * mid and n[-1] > 5 * mid  # heavier at both ends (GSS: [s(T − s)]^{−(1−γ)/2} with blocks)
    assert n[:50] == pytest.approx(n[::-1][:50], rel=1e-8)


def test_linear_kernel_spreads_trades_beyond_its_support() -> None:
    model = TransientImpact(DecayKernel.linear(0.25), 1e-4)
    s = model.optimal(1e5, np.linspace(0, 1, 101))
    assert s.cost(model).total == pytest.approx(0.5 * 1e-4 * 1e5**2 / 5, rel=1e-6)  # 5 non-interacting blocks


def test_non_positive_definite_kernel_warns_and_refuses() -> None:
    concave = TransientImpact(DecayKernel.custom(lambda t: np.clip(1 - (t / 0.3) ** 2, 0, None)), 1.0)
    with (
        pytest.warns(PriceManipulationWarning, match="not positive definite"),
        pytest.raises(InfeasibleScheduleError, match="price manipulation"),
    ):
        concave.optimal(1e4, np.linspace(0, 1, 51))
    # the round trip it names really has negative cost
    g = concave.kernel.matrix(np.linspace(0, 1, 51))
    _w, v = np.linalg.eigh(g)
    assert v[:, 0] @ g @ v[:, 0] < 0


def test_round_trip_optimum_is_replaced_by_the_constrained_one() -> None:
    """A positive-definite kernel whose unconstrained optimum sells during a buy (transaction-triggered
    manipulation, Alfonsi–Schied–Slynko): warned, and the returned schedule never trades against the order."""
    # a Cauchy kernel: positive definite (its Fourier transform is e^{−|ω|}) but not convex near 0
    k = DecayKernel.custom(lambda t: 1 / (1 + (t / 0.05) ** 2))
    model = TransientImpact(k, 1.0)
    times = np.linspace(0, 1, 41)
    model.check_no_manipulation(times)
    g = model.kernel.matrix(times)
    w = np.linalg.solve(g, np.ones(41))
    assert (w / w.sum()).min() < 0  # the unconstrained optimum has round trips
    with pytest.warns(PriceManipulationWarning, match="trades against the order"):
        s = model.optimal(1e4, times)
    assert np.all(s.trades >= 0) and s.trades.sum() == pytest.approx(1e4)
    assert s.params["no_round_trip_constraint_binds"] is True
    # it is the best non-negative schedule: random feasible alternatives cost more
    rng = np.random.default_rng(0)
    best = 0.5 * s.trades @ g @ s.trades
    for _ in range(200):
        alt = rng.dirichlet(np.ones(41)) * 1e4
        assert 0.5 * alt @ g @ alt >= best - 1e-6 * best


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: obizhaeva_wang_optimum(0.0, 1.0, depth=Q, resilience=1.0), "quantity"),
        (lambda: obizhaeva_wang_optimum(1e4, 1.0, depth=Q, resilience=0.0), "resilience"),
        (lambda: obizhaeva_wang_optimum(1e4, 1.0, depth=Q, resilience=1.0, permanent=1.0), "exceeds"),
        (lambda: TransientImpact.obizhaeva_wang(depth=-1, resilience=1.0), "depth"),
        (lambda: DecayKernel.power_law(-0.5), "exponent"),
        (lambda: TransientImpact(DecayKernel.linear(1.0), -1.0), "transient"),
    ],
)
def test_bad_input(call: object, match: str) -> None:
    with pytest.raises(InfeasibleScheduleError, match=match):
        call()  # type: ignore[operator]
