"""Optimal execution with power-law temporary impact, risk aversion, a participation cap and an intraday
volume curve: a convex programme solved by cvxpy (Clarabel's interior point with power cones)."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import ConvergenceWarning, InfeasibleScheduleError
from impactlab.schedules._schedule import Schedule, ScheduleCost
from impactlab.schedules.market import MarketContext

__all__ = ["PowerLawTemporaryImpact", "optimal_nonlinear"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class PowerLawTemporaryImpact:
    """Temporary impact growing as a power of participation, plus linear permanent impact, in price units.

    A trade of ``n_k`` shares in an interval where the market is expected to trade ``v_k`` pays
    ``ε n_k + η n_k (n_k/v_k)^β``; the permanent impact ``γ`` per share costs ``½γX²`` whatever the
    schedule (its continuous-time value).  β = 1 with ``v_k ∝ τ_k`` is Almgren–Chriss's ``ηn²/τ``.

    Parameters
    ----------
    eta
        Temporary impact at 100% participation (price units per share).
    beta
        Exponent β > 0 (Almgren et al. 2005: 0.6).
    gamma, epsilon
        Permanent impact per share, fixed cost per share.
    """

    eta: float
    beta: float
    gamma: float = 0.0
    epsilon: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eta) and self.eta > 0):
            raise InfeasibleScheduleError(f"'eta' must be > 0, got {self.eta!r}")
        if not (math.isfinite(self.beta) and self.beta > 0):
            raise InfeasibleScheduleError(
                f"the problem is not convex for a temporary-impact exponent β <= 0 (cost ∝ n^(1+β) must be convex), "
                f"got β = {self.beta!r}"
            )
        for name in ("gamma", "epsilon"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise InfeasibleScheduleError(f"'{name}' must be finite and >= 0, got {v!r}")

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Expected cost in currency; needs the schedule's participation (build it with a volume forecast)."""
        if schedule.participation is None:
            raise InfeasibleScheduleError(
                "power-law impact needs the schedule's participation: give it expected volumes"
            )
        n, p = schedule.trades, schedule.participation
        temp = self.epsilon * float(np.abs(n).sum()) + self.eta * float(np.sum(np.abs(n) * np.abs(p) ** self.beta))
        perm = 0.5 * self.gamma * schedule.quantity**2
        return ScheduleCost(temp, perm, temp + perm, "currency", model=f"PowerLawTemporaryImpact(β={self.beta:g})")


def optimal_nonlinear(
    quantity: float,
    times: F64,
    expected_volume: F64,
    impact: PowerLawTemporaryImpact,
    *,
    sigma: float,
    risk_aversion: float,
    participation_cap: float | None = None,
    side: int = 1,
    time_unit: str = "s",
) -> Schedule:
    """Minimise ``Σ η n_k (n_k/v_k)^β + λσ² Σ τ_k x_k²`` over trades ``n_k ≥ 0`` (no round trips) with
    ``Σ n_k = X`` and ``n_k ≤ cap · v_k``.

    Parameters
    ----------
    quantity
        Shares X > 0.
    times
        Interval boundaries (``N + 1``).
    expected_volume
        Market volume expected in each interval, ``v_k`` (from :class:`~impactlab.schedules.VolumeCurve`).
    impact
        The temporary-impact law.
    sigma
        Price volatility per √time unit.
    risk_aversion
        λ ≥ 0 per price unit.
    participation_cap
        Largest share of each interval's volume the order may take.

    Raises
    ------
    InfeasibleScheduleError
        Zero or negative quantity; a negative risk aversion (unbounded); a cap too low to finish (the
        message gives the shares the cap allows).

    Notes
    -----
    Solved in fractions ``u_k = N n_k/X`` (order one) with the objective divided by the linear
    schedule's cost, so the conic solver works on well-scaled numbers; an inaccurate solve warns
    :class:`~impactlab.errors.ConvergenceWarning`.
    """
    import cvxpy as cp

    if not (math.isfinite(quantity) and quantity > 0):
        raise InfeasibleScheduleError(f"'quantity' must be > 0 shares, got {quantity!r}")
    if not (math.isfinite(risk_aversion) and risk_aversion >= 0):
        raise InfeasibleScheduleError(
            f"'risk_aversion' must be >= 0 (a negative one makes the problem unbounded), got {risk_aversion!r}"
        )
    if not (math.isfinite(sigma) and sigma >= 0):
        raise InfeasibleScheduleError(f"'sigma' must be >= 0, got {sigma!r}")
    t = np.asarray(times, float)
    v = np.asarray(expected_volume, float)
    if t.ndim != 1 or t.size < 2 or np.any(np.diff(t) <= 0):
        raise InfeasibleScheduleError("'times' must be at least two strictly increasing boundaries")
    n_int = t.size - 1
    if v.shape != (n_int,) or np.any(v <= 0) or not np.all(np.isfinite(v)):
        raise InfeasibleScheduleError(f"'expected_volume' needs {n_int} positive values, got shape {v.shape}")
    cap_shares = None
    if participation_cap is not None:
        if not 0 < participation_cap <= 1:
            raise InfeasibleScheduleError(f"'participation_cap' must be in (0, 1], got {participation_cap!r}")
        cap_shares = participation_cap * v
        if cap_shares.sum() < quantity * (1 - 1e-9):
            raise InfeasibleScheduleError(
                f"participation cap too low to finish: {participation_cap:.2%} of the {v.sum():,.0f} shares expected "
                f"allows {cap_shares.sum():,.0f} < {quantity:,.0f}"
            )
    tau = np.diff(t)
    beta = impact.beta
    unit = quantity / n_int
    a = impact.eta * unit ** (1 + beta) * v ** (-beta)  # temp = Σ a_k u_k^(1+β)
    b = risk_aversion * sigma**2 * quantity**2  # risk = b Σ τ_k (1 − cumsum(u)_k/N)²
    twap_temp = float(a.sum())
    twap_risk = b * float(np.sum(tau * (1 - np.arange(1, n_int + 1) / n_int) ** 2))
    scale = max(twap_temp + twap_risk, 1e-300)
    u = cp.Variable(n_int, nonneg=True)
    held = 1 - cp.cumsum(u) / n_int
    objective = cp.sum(cp.multiply(a / scale, cp.power(u, 1 + beta)))
    if b > 0:
        objective = objective + (b / scale) * cp.sum(cp.multiply(tau, cp.square(held)))
    cons = [cp.sum(u) == n_int]
    if cap_shares is not None:
        cons.append(u <= cap_shares / unit)
    prob = cp.Problem(cp.Minimize(objective), cons)
    prob.solve(solver=cp.CLARABEL)
    if u.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        raise InfeasibleScheduleError(f"the nonlinear schedule did not solve (status {prob.status})")
    if prob.status == "optimal_inaccurate":
        warnings.warn("the nonlinear schedule solved only to reduced accuracy", ConvergenceWarning, stacklevel=2)
    n = np.clip(np.asarray(u.value, float), 0.0, None) * unit
    if cap_shares is not None:
        n = np.minimum(n, cap_shares)
    n *= quantity / n.sum()
    return Schedule.from_trades(
        t,
        n,
        side=side,
        time_unit=time_unit,
        strategy="nonlinear-optimal",
        params={
            "risk_aversion": risk_aversion,
            "beta": beta,
            "participation_cap": participation_cap if participation_cap is not None else float("nan"),
            "solver_status": str(prob.status),
        },
        expected_volume=v,
    )
