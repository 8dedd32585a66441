"""Almgren–Chriss: the paper's Table 1 example and Table 2, the closed forms, the TWAP limit, stability."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules import AlmgrenChriss, LinearImpact, serial_correlation_gain
from impactlab.schedules import _kernels as K

# Table 1 of Almgren & Chriss (2000): X = 10⁶ shares over T = 5 days in N = 5 steps
TABLE1 = {
    "quantity": 1e6,
    "horizon": 5.0,
    "n_steps": 5,
    "sigma": 0.95,
    "eta": 2.5e-6,
    "gamma": 2.5e-7,
    "epsilon": 0.0625,
}


def table1(**kw: float) -> AlmgrenChriss:
    return AlmgrenChriss(**{**TABLE1, **kw})  # type: ignore[arg-type]


def test_table1_example_kappa_drift_target_and_sigma_sqrt_t() -> None:
    ac = table1(drift=0.02)
    kappa = ac.kappa(1e-6)
    assert round(kappa, 1) == 0.6  # "κ ≈ 0.6/day"
    assert round(kappa * ac.horizon) == 3  # "κT ≈ 3"
    # x̄ = α/(2λσ²) ≈ 11,080 (the paper's text misprints it as 1,100)
    assert ac.drift_target(1e-6) == pytest.approx(0.02 / (2 * 1e-6 * 0.95**2))
    assert round(ac.drift_target(1e-6), -3) == 11_000
    assert round(0.95 * math.sqrt(5), 2) == 2.12  # σ√T as printed


def test_trajectory_is_the_sinh_formula_and_trades_telescope() -> None:
    ac = table1()
    lam = 1e-6
    kappa = ac.kappa(lam)
    t = ac.times()
    expected = 1e6 * np.sinh(kappa * (5 - t)) / np.sinh(kappa * 5)
    x = ac.trajectory(lam)
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-6)
    # κ solves 2(cosh κτ − 1)/τ² = λσ²/η̃
    assert 2 * (math.cosh(kappa) - 1) == pytest.approx(lam * 0.95**2 / ac.eta_tilde, rel=1e-12)
    s = ac.solve(lam)
    assert s.trades.sum() == pytest.approx(1e6)
    assert np.all(np.diff(s.holdings) < 0)


@pytest.mark.parametrize("lam", [1e-9, 1e-7, 1e-6, 1e-5, 1e-3])
def test_eq20_closed_form_equals_the_exact_sums(lam: float) -> None:
    ac = table1()
    np.testing.assert_allclose(ac.closed_form(lam), ac.moments(ac.trajectory(lam)), rtol=1e-9)
    # and equals the same paper's printed (overflow-prone) form where that one is finite
    kappa, X, T, tau = ac.kappa(lam), 1e6, 5.0, 1.0
    e = (
        0.5 * 2.5e-7 * X**2
        + 0.0625 * X
        + ac.eta_tilde
        * X**2
        * math.tanh(0.5 * kappa * tau)
        * (tau * math.sinh(2 * kappa * T) + 2 * T * math.sinh(kappa * tau))
        / (2 * tau**2 * math.sinh(kappa * T) ** 2)
    )
    v = (
        0.5
        * 0.95**2
        * X**2
        * (tau * math.sinh(kappa * T) * math.cosh(kappa * (T - tau)) - T * math.sinh(kappa * tau))
        / (math.sinh(kappa * T) ** 2 * math.sinh(kappa * tau))
    )
    assert ac.closed_form(lam) == pytest.approx((e, v), rel=1e-9)


def test_lambda_zero_is_twap_and_its_closed_form() -> None:
    ac = table1()
    np.testing.assert_allclose(ac.trajectory(0.0), ac.twap().holdings, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ac.trajectory(1e-14), ac.twap().holdings, rtol=1e-6)
    e, v = ac.closed_form(0.0)
    X, T, N = 1e6, 5.0, 5
    assert e == pytest.approx(0.5 * 2.5e-7 * X**2 + 0.0625 * X + (2.5e-6 - 0.5 * 2.5e-7) * X**2 / T)
    assert v == pytest.approx(0.95**2 * X**2 * T * (1 - 1 / N) * (1 - 1 / (2 * N)) / 3)
    assert ac.moments(ac.twap().holdings) == pytest.approx((e, v))


@pytest.mark.parametrize("lam", [0.1, 1.0, 1e3, 1e30, 1e300, math.inf])
def test_finite_for_every_risk_aversion_and_n(lam: float) -> None:
    for n in (5, 390, 5000):
        ac = AlmgrenChriss(1e6, 1.0, n, 0.95, 2.5e-6, 2.5e-7)
        if math.isinf(lam):
            with pytest.raises(InfeasibleScheduleError, match="risk_aversion"):
                ac.trajectory(lam)
            continue
        x = ac.trajectory(lam)
        assert np.all(np.isfinite(x)) and x[0] == 1e6 and x[-1] == 0.0
        assert np.all(np.diff(x) <= 0)
        e, v = ac.closed_form(lam)
        assert math.isfinite(e) and math.isfinite(v)


@settings(max_examples=60, deadline=None)
@given(
    kappa=st.floats(0.0, 1e4),
    horizon=st.floats(0.01, 100.0),
    n=st.integers(1, 300),
)
def test_compiled_kernel_matches_its_python_twin(kappa: float, horizon: float, n: int) -> None:
    a, b = np.empty(n + 1), np.empty(n + 1)
    K.ac_holdings(1e6, horizon, n, kappa, a)
    K.ac_holdings_py(1e6, horizon, n, kappa, b)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-6)
    ref = np.array([1e6 * K.sinh_ratio_py(kappa, horizon - j * horizon / n, horizon) for j in range(n + 1)])
    np.testing.assert_allclose(a, ref, rtol=1e-9, atol=1e-6)


def test_frontier_is_efficient_and_matches_single_solves() -> None:
    ac = AlmgrenChriss(1e6, 1.0, 390, 0.95, 2.5e-6, 2.5e-7)
    f = ac.frontier()
    assert len(f) == 100 and np.all(np.isfinite(f.holdings))
    # more risk aversion: higher expected cost, lower variance
    assert np.all(np.diff(f.expected_cost) > 0) and np.all(np.diff(f.variance) < 0)
    for i in (0, 50, 99):
        np.testing.assert_allclose(f.holdings[i], ac.trajectory(float(f.risk_aversion[i])), rtol=1e-12, atol=1e-6)
        assert (f.expected_cost[i], f.variance[i]) == pytest.approx(ac.closed_form(float(f.risk_aversion[i])), rel=1e-8)
    # a point on the frontier is optimal for its own λ: no other frontier point beats E + λV
    lam = float(f.risk_aversion[40])
    obj = f.expected_cost + lam * f.variance
    assert int(np.argmin(obj)) == 40


def test_var_optimal_minimises_value_at_risk() -> None:
    ac = table1()
    lam, sched, var = ac.var_optimal(0.95)
    z = 1.6448536269514722
    for other in (lam * 0.5, lam * 2, lam * 10, 0.0):
        e, v = ac.moments(ac.trajectory(other))
        assert e + z * math.sqrt(v) >= var - 1e-6
    assert sched.params["risk_aversion"] == lam


def test_drift_trajectory_is_eq24_and_lowers_expected_cost_of_a_sale() -> None:
    ac = table1(drift=0.02)
    lam = 1e-6
    kappa, xbar = ac.kappa(lam), ac.drift_target(lam)
    t = ac.times()
    expected = (
        1e6 * np.sinh(kappa * (5 - t)) / np.sinh(kappa * 5)
        + (1 - (np.sinh(kappa * (5 - t)) + np.sinh(kappa * t)) / np.sinh(kappa * 5)) * xbar
    )
    expected[-1] = 0
    np.testing.assert_allclose(ac.trajectory(lam), expected, rtol=1e-10)
    # with a rising price, a seller holds more for longer: holdings above the driftless ones
    assert np.all(ac.trajectory(lam)[1:-1] > table1().trajectory(lam)[1:-1])
    # and the drift-optimal trajectory beats the driftless one under the drift's own objective
    e_opt, v_opt = ac.moments(ac.trajectory(lam))
    e_plain, v_plain = ac.moments(table1().trajectory(lam))
    assert e_opt + lam * v_opt < e_plain + lam * v_plain


# Table 2, as printed (gain in $/day; 39 periods a day, σ = 0.95, γ = 0)
TABLE2 = {
    -0.1: (19, 38, 96, 192),
    -0.2: (64, 129, 321, 643),
    -0.5: (257, 514, 1286, 2571),
}


@pytest.mark.parametrize("rho", sorted(TABLE2))
def test_table2_serial_correlation_gain(rho: float) -> None:
    for eta, printed in zip((2.5e-6, 1.25e-6, 0.5e-6, 0.25e-6), TABLE2[rho], strict=True):
        gain = 39 * serial_correlation_gain(rho, sigma=0.95, eta=eta, tau=1 / 39)
        if (rho, eta) == (-0.1, 0.25e-6):
            assert gain == pytest.approx(191.25, abs=0.01)  # the paper prints 192: its known slip
        else:
            assert round(gain) == printed


def test_serial_correlation_adjustment_achieves_the_gain() -> None:
    """Shifting y* = ρΔ·τ/(2η̃(1 − ρ)) shares gains y*·ρΔ/(1 − ρ) − η̃y*²/τ, whose mean over Δ ~ N(0, σ²τ) is
    the Table 2 formula."""
    rho, tau, eta = -0.2, 1 / 39, 1.25e-6
    ac = AlmgrenChriss(1e5, 1.0, 39, 0.95, eta, side=-1)
    rng = np.random.default_rng(1)
    moves = rng.normal(0, 0.95 * math.sqrt(tau), 200_000)
    y = np.array([ac.serial_correlation_adjustment(m, rho) for m in moves[:5]])
    assert y == pytest.approx(rho * moves[:5] * tau / (2 * eta * (1 - rho)))
    ys = rho * moves * tau / (2 * eta * (1 - rho))
    gains = ys * rho * moves / (1 - rho) - eta * ys**2 / tau
    assert gains.mean() == pytest.approx(serial_correlation_gain(rho, sigma=0.95, eta=eta, tau=tau), rel=0.02)


def test_linear_impact_cost_model_prices_schedules_like_the_paper() -> None:
    ac = table1()
    model = LinearImpact(eta=2.5e-6, gamma=2.5e-7, epsilon=0.0625)
    for lam in (0.0, 1e-6):
        s = ac.solve(lam)
        assert s.expected_cost(model) == pytest.approx(ac.closed_form(lam)[0], rel=1e-12)
        assert s.variance(0.95) == pytest.approx(ac.closed_form(lam)[1], rel=1e-12)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"quantity": 0.0}, "quantity"),
        ({"quantity": -5.0}, "quantity"),
        ({"horizon": 0.0}, "horizon"),
        ({"n_steps": 0}, "n_steps"),
        ({"eta": 1e-7, "gamma": 1e-6}, "not convex"),
        ({"sigma": -1.0}, "sigma"),
    ],
)
def test_bad_input_names_the_binding_constraint(kw: dict[str, float], match: str) -> None:
    with pytest.raises(InfeasibleScheduleError, match=match):
        table1(**kw)


def test_negative_risk_aversion_and_drift_without_risk_are_refused() -> None:
    with pytest.raises(InfeasibleScheduleError, match="risk_aversion"):
        table1().trajectory(-1e-6)
    with pytest.raises(InfeasibleScheduleError, match="unbounded"):
        table1(drift=0.02).trajectory(0.0)


def test_compiled_frontier_matches_its_python_twin() -> None:
    kappas = np.array([0.0, 1e-3, 0.5, 3.0, 80.0])
    out = [(np.empty((5, 40)), np.empty(5), np.empty(5)) for _ in range(2)]
    K.ac_frontier(1e6, 2.0, 39, kappas, 0.95, 2e-6, 10.0, *out[0])
    K.ac_frontier_py(1e6, 2.0, 39, kappas, 0.95, 2e-6, 10.0, *out[1])
    for a, b in zip(out[0], out[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
