"""Nonlinear-impact optimum (cvxpy) against the closed form and SciPy; TWAP, VWAP, POV on the LOBSTER curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

from impactlab.data.lobster import load_lobster
from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules import (
    AlmgrenChriss,
    PowerLawTemporaryImpact,
    Schedule,
    VolumeCurve,
    optimal_nonlinear,
    pov,
    twap,
    vwap,
)
from impactlab.schedules.volume import SESSION_S
from tests.conftest import lobster_path


@pytest.mark.parametrize(("n", "lam"), [(5, 1e-6), (50, 1e-6), (390, 2e-6), (78, 0.0)])
def test_beta_one_equals_the_almgren_chriss_closed_form(n: int, lam: float) -> None:
    ac = AlmgrenChriss(1e6, 5.0, n, 0.95, 2.5e-6)
    s = optimal_nonlinear(
        1e6, ac.times(), np.full(n, ac.tau), PowerLawTemporaryImpact(2.5e-6, 1.0), sigma=0.95, risk_aversion=lam
    )
    np.testing.assert_allclose(s.holdings, ac.trajectory(lam), rtol=0, atol=1e-6 * 1e6)


def test_power_law_optimum_agrees_with_scipy_and_respects_the_cap() -> None:
    n = 20
    t = np.linspace(0, 1, n + 1)
    vol = np.linspace(2.0, 1.0, n) * 5e4  # more volume early
    impact = PowerLawTemporaryImpact(0.05, 0.6)
    s = optimal_nonlinear(1e5, t, vol, impact, sigma=0.3, risk_aversion=2e-5, participation_cap=0.15)
    assert np.all(s.trades >= 0) and s.trades.sum() == pytest.approx(1e5)
    assert s.participation is not None and s.participation.max() <= 0.15 + 1e-9
    tau = np.diff(t)

    def obj(nn: np.ndarray) -> float:
        x = 1e5 - np.cumsum(nn)
        return float(0.05 * np.sum(nn * (np.clip(nn, 0, None) / vol) ** 0.6) + 2e-5 * 0.3**2 * np.sum(tau * x**2))

    ref = optimize.minimize(
        obj,
        np.full(n, 1e5 / n),
        method="SLSQP",
        bounds=[(0, 0.15 * v) for v in vol],
        constraints=[{"type": "eq", "fun": lambda nn: nn.sum() - 1e5}],
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert obj(s.trades) <= ref.fun * (1 + 1e-6)
    assert s.cost(impact).total == pytest.approx(obj(s.trades) - 2e-5 * 0.3**2 * np.sum(tau * s.holdings[1:] ** 2))


def test_nonlinear_bad_input() -> None:
    t = np.linspace(0, 1, 6)
    v = np.full(5, 1e4)
    with pytest.raises(InfeasibleScheduleError, match="cap too low"):
        optimal_nonlinear(
            1e5, t, v, PowerLawTemporaryImpact(1.0, 0.5), sigma=1.0, risk_aversion=0.0, participation_cap=0.5
        )
    with pytest.raises(InfeasibleScheduleError, match="quantity"):
        optimal_nonlinear(-1.0, t, v, PowerLawTemporaryImpact(1.0, 0.5), sigma=1.0, risk_aversion=0.0)
    with pytest.raises(InfeasibleScheduleError, match="unbounded"):
        optimal_nonlinear(1e3, t, v, PowerLawTemporaryImpact(1.0, 0.5), sigma=1.0, risk_aversion=-1.0)
    with pytest.raises(InfeasibleScheduleError, match="not convex"):
        PowerLawTemporaryImpact(1.0, -0.2)


@pytest.fixture(scope="module")
def curve(data: Path) -> VolumeCurve:
    days = [load_lobster(lobster_path(data, s, 1), lobster_path(data, s, 1, "orderbook")) for s in ("GOOG", "AMZN")]
    return VolumeCurve.from_days(days)


def test_volume_curve_from_lobster_is_u_shaped(curve: VolumeCurve) -> None:
    f = curve.fractions
    assert curve.n_days == 2 and f.size == 78 and f.sum() == pytest.approx(1.0)
    first, last, middle = f[:6].mean(), f[-6:].mean(), f[30:48].mean()
    assert first > 1.3 * middle and last > 1.3 * middle  # heavier at the open and the close
    assert float(curve.cumulative(SESSION_S)) == pytest.approx(1.0)
    assert float(curve.cumulative(SESSION_S + 3600)) == pytest.approx(1.0 + float(curve.cumulative(3600)))


def test_vwap_twap_pov(curve: VolumeCurve) -> None:
    adv = 2e6
    v = vwap(5e4, 3600, curve=curve, daily_volume=adv, step_s=300, start_s=1800)
    assert v.participation is not None
    np.testing.assert_allclose(v.participation, v.participation[0], rtol=1e-12)  # constant participation
    assert v.trades.sum() == pytest.approx(5e4) and v.times[0] == 1800 and v.horizon == 3600
    t = twap(5e4, 3600, step_s=300, start_s=1800, curve=curve, daily_volume=adv)
    np.testing.assert_allclose(t.trades, 5e4 / 12)
    p = pov(5e4, 0.1, curve=curve, daily_volume=adv, step_s=300, start_s=1800)
    assert p.trades.sum() == pytest.approx(5e4)
    assert p.participation is not None and np.allclose(p.participation, 0.1)
    assert float(curve.cumulative(p.times[-1]) - curve.cumulative(1800)) * adv == pytest.approx(5e5)
    frame = v.to_frame()
    assert list(frame.columns[:3]) == ["start_s", "end_s", "trade_shares"] and len(frame) == 12


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: vwap(0, 3600, curve=c, daily_volume=1e6), "quantity"),
        (lambda c: vwap(-5, 3600, curve=c, daily_volume=1e6), "quantity"),
        (lambda c: vwap(1e4, 30, curve=c, daily_volume=1e6, step_s=60), "shorter than one step"),
        (lambda c: twap(1e4, 30, step_s=60), "shorter than one step"),
        (lambda c: pov(1e6, 0.001, curve=c, daily_volume=1e6), "cap too low to finish"),
        (lambda c: pov(1e4, 1.5, curve=c, daily_volume=1e6), "rate"),
    ],
)
def test_volume_schedule_bad_input(curve: VolumeCurve, call: object, match: str) -> None:
    with pytest.raises(InfeasibleScheduleError, match=match):
        call(curve)  # type: ignore[operator]


def test_schedule_is_frozen_and_checks_itself() -> None:
    s = Schedule.from_trades([0, 1, 2], [3.0, 1.0])
    with pytest.raises(ValueError, match="read-only"):
        s.trades[0] = 5
    with pytest.raises(AttributeError):
        s.side = -1  # type: ignore[misc]
    with pytest.raises(InfeasibleScheduleError, match="must not decrease"):
        Schedule.from_trades([0, 2, 1], [1.0, 1.0])
    with pytest.raises(InfeasibleScheduleError, match="end at 0"):
        Schedule([0, 1], [2.0, 1.0], [1.0])
    assert s.variance(2.0) == pytest.approx(4.0 * (1 * 1.0**2 + 1 * 0.0))
