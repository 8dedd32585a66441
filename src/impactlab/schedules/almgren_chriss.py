"""Almgren–Chriss optimal execution with linear impact: trajectory, cost moments, efficient frontier, VaR."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules import _kernels as K
from impactlab.schedules._schedule import Schedule

__all__ = ["AlmgrenChriss", "EfficientFrontier", "serial_correlation_gain"]

F64 = NDArray[np.float64]


def _finite(name: str, value: float, *, low: float = -math.inf, strict: bool = False) -> float:
    v = float(value)
    ok = math.isfinite(v) and (v > low if strict else v >= low)
    if not ok:
        raise InfeasibleScheduleError(f"'{name}' must be finite and {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


@dataclass(frozen=True)
class AlmgrenChriss:
    """The Almgren–Chriss execution problem with linear impact, and its closed-form optimum.

    Parameters
    ----------
    quantity
        Shares to trade, X > 0.
    horizon
        Time to finish, T, in ``time_unit``.
    n_steps
        Number of equal intervals N (``τ = T/N``).
    sigma
        Price volatility per √``time_unit`` (price units per share; the paper's $/share/day^½).
    eta
        Temporary impact per unit trading rate, η (price per share per (share per ``time_unit``)).
    gamma
        Permanent impact per share, γ (price per share per share).
    epsilon
        Fixed cost per share, ε (half the spread plus fees).
    drift
        Expected price change per ``time_unit`` (the paper's α); it favours delaying a sale and speeding a
        purchase.
    side
        −1 for the paper's sell programme, +1 to buy; costs are symmetric, only the drift's sign depends on it.
    time_unit
        Label of the time unit, carried into the :class:`Schedule`.

    Notes
    -----
    With ``η̃ = η − ½γτ`` and risk aversion λ, the optimum of ``E + λV`` is
    ``x_j = X sinh(κ(T − t_j)) / sinh(κT)`` where ``2(cosh κτ − 1)/τ² = λσ²/η̃``; with drift the holdings
    gain ``[1 − (sinh κ(T − t_j) + sinh κt_j)/sinh κT] · x̄``, ``x̄ = α/(2λσ²)`` (eq. 24).  Expected cost
    ``E = ½γX² + εX + (η̃/τ)Σn_k² − αΣτx_k`` and variance ``V = σ²τΣx_k²``; eq. (20) gives both in closed
    form.  λ = 0 is the linear (TWAP) trajectory.  The problem is convex only when η̃ > 0.

    References
    ----------
    Almgren, R. & Chriss, N. (2000). Optimal execution of portfolio transactions. Journal of Risk 3(2), 5–39.
    """

    quantity: float
    horizon: float
    n_steps: int
    sigma: float
    eta: float
    gamma: float = 0.0
    epsilon: float = 0.0
    drift: float = 0.0
    side: int = -1
    time_unit: str = "day"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.quantity) and self.quantity > 0):
            raise InfeasibleScheduleError(f"'quantity' must be > 0 shares, got {self.quantity!r}")
        _finite("horizon", self.horizon, low=0.0, strict=True)
        if int(self.n_steps) != self.n_steps or self.n_steps < 1:
            raise InfeasibleScheduleError(f"'n_steps' must be an integer >= 1, got {self.n_steps!r}")
        _finite("sigma", self.sigma, low=0.0)
        _finite("eta", self.eta, low=0.0, strict=True)
        _finite("gamma", self.gamma, low=0.0)
        _finite("epsilon", self.epsilon, low=0.0)
        _finite("drift", self.drift)
        if self.side not in (1, -1):
            raise InfeasibleScheduleError(f"'side' must be +1 or -1, got {self.side!r}")
        if self.eta_tilde <= 0:
            raise InfeasibleScheduleError(
                f"the problem is not convex: η̃ = η − γτ/2 = {self.eta:g} − {self.gamma:g}·{self.tau:g}/2 = "
                f"{self.eta_tilde:g} must be > 0 (more steps or a smaller γ)"
            )

    # -- derived quantities -----------------------------------------------------------------------------
    @property
    def tau(self) -> float:
        """Interval length τ = T/N."""
        return self.horizon / self.n_steps

    @property
    def eta_tilde(self) -> float:
        """η̃ = η − ½γτ."""
        return self.eta - 0.5 * self.gamma * self.tau

    @property
    def alpha(self) -> float:
        """Drift in the order's favour for waiting: +drift for a sale, −drift for a purchase."""
        return -self.side * self.drift

    def kappa(self, risk_aversion: float) -> float:
        """κ from ``2(cosh κτ − 1)/τ² = λσ²/η̃``, as ``arccosh(1 + z) = log1p(z + √(z(z + 2)))``,
        ``z = λσ²τ²/(2η̃)`` (full precision for tiny z, +∞ when λσ² overflows)."""
        lam = _finite("risk_aversion", risk_aversion, low=0.0)
        z = 0.5 * lam * self.sigma**2 * self.tau**2 / self.eta_tilde
        if not math.isfinite(z):
            return math.inf
        return math.log1p(z + math.sqrt(z * (z + 2.0))) / self.tau

    def times(self) -> F64:
        """``t_0 = 0 … t_N = T``."""
        return np.arange(self.n_steps + 1, dtype=np.float64) * self.tau

    def drift_target(self, risk_aversion: float) -> float:
        """``x̄ = α/(2λσ²)``, the holding the drift alone would justify (∞ at λ = 0 with drift)."""
        lam = _finite("risk_aversion", risk_aversion, low=0.0)
        if self.alpha == 0:
            return 0.0
        denom = 2 * lam * self.sigma**2
        return self.alpha / denom if denom > 0 else math.copysign(math.inf, self.alpha)

    # -- trajectory ---------------------------------------------------------------------------------------
    def trajectory(self, risk_aversion: float) -> F64:
        """Optimal holdings ``x_0 = X … x_N = 0`` (compiled; finite for every λ ≥ 0).

        Returns a new array; with a drift, the eq. (24) correction is added.
        """
        kappa = self.kappa(risk_aversion)
        out = np.empty(self.n_steps + 1)
        K.ac_holdings(self.quantity, self.horizon, self.n_steps, kappa, out)
        if self.alpha != 0:
            xbar = self.drift_target(risk_aversion)
            if not math.isfinite(xbar):
                raise InfeasibleScheduleError(
                    "with a drift and no risk aversion the problem is unbounded (x̄ = α/(2λσ²) is infinite): "
                    "give 'risk_aversion' > 0 and 'sigma' > 0"
                )
            t = self.times()
            back = np.array([K.sinh_ratio(kappa, self.horizon - tj, self.horizon) for tj in t])
            fwd = np.array([K.sinh_ratio(kappa, tj, self.horizon) for tj in t])
            out = out + (1.0 - back - fwd) * xbar
        out[-1] = 0.0
        return out

    def solve(self, risk_aversion: float) -> Schedule:
        """The optimal :class:`Schedule` for risk aversion λ (per unit of price², e.g. 1/$)."""
        x = self.trajectory(risk_aversion)
        return Schedule(
            self.times(),
            x,
            x[:-1] - x[1:],
            None,
            self.side,
            self.time_unit,
            "almgren-chriss",
            {"risk_aversion": float(risk_aversion), "kappa": self.kappa(risk_aversion)},
        )

    def twap(self) -> Schedule:
        """The linear trajectory (λ = 0, no drift)."""
        x = self.quantity * (1.0 - np.arange(self.n_steps + 1) / self.n_steps)
        x[-1] = 0.0
        return Schedule(self.times(), x, x[:-1] - x[1:], None, self.side, self.time_unit, "twap", {})

    # -- moments --------------------------------------------------------------------------------------------
    def moments(self, holdings: F64) -> tuple[float, float]:
        """``(E, V)`` of any trajectory on this grid: ``E = ½γX² + εΣ|n_k| + (η̃/τ)Σn_k² − αΣτx_k``,
        ``V = σ²τΣ_{k≥1} x_k²``."""
        x = np.asarray(holdings, float)
        if x.shape != (self.n_steps + 1,):
            raise InfeasibleScheduleError(f"holdings need {self.n_steps + 1} values, got {x.shape}")
        n = x[:-1] - x[1:]
        e = (
            0.5 * self.gamma * self.quantity**2
            + self.epsilon * float(np.abs(n).sum())
            + self.eta_tilde / self.tau * float(n @ n)
            - self.alpha * self.tau * float(x[1:].sum())
        )
        return e, self.sigma**2 * self.tau * float(x[1:] @ x[1:])

    def closed_form(self, risk_aversion: float) -> tuple[float, float]:
        """``(E, V)`` of the optimal trajectory from eq. (20) (no drift), written without overflow.

        With ``a = κT`` and ``b = κτ``: ``sinh 2a / sinh² a = 2 coth a``,
        ``sinh b / sinh² a = 2e^{b−2a}(1 − e^{−2b})/(1 − e^{−2a})²`` and
        ``V = ½σ²X²[2τe^{−2b}(1 + e^{2b−2a})/((1 − e^{−2a})(1 − e^{−2b})) − 4Te^{−2a}/(1 − e^{−2a})²]``.
        Below κT = 10⁻³, where the bracket cancels, the exact sums of :meth:`moments` are used; at κ = 0
        the linear-trajectory forms ``E = ½γX² + εX + η̃X²/T``, ``V = ⅓σ²X²T(1 − 1/N)(1 − 1/(2N))``.
        """
        if self.alpha != 0:
            raise InfeasibleScheduleError("eq. (20) is for the driftless problem; use moments(trajectory(λ))")
        kappa = self.kappa(risk_aversion)
        X, T, tau, N = self.quantity, self.horizon, self.tau, self.n_steps
        fixed = 0.5 * self.gamma * X**2 + self.epsilon * X
        if kappa == 0.0:
            return fixed + self.eta_tilde * X**2 / T, self.sigma**2 * X**2 * T * (1 - 1 / N) * (1 - 0.5 / N) / 3
        a, b = kappa * T, kappa * tau
        if a < 1e-3:
            return self.moments(self.trajectory(risk_aversion))
        if math.isinf(kappa):  # everything at t = 0: one trade of X
            return fixed + self.eta_tilde / tau * X**2, 0.0
        em2a, em2b = -math.expm1(-2 * a), -math.expm1(-2 * b)
        sinhb_over_sinh2a = 2.0 * math.exp(b - 2 * a) * em2b / em2a**2
        e = fixed + self.eta_tilde * X**2 * math.tanh(0.5 * b) * (
            2 * tau / math.tanh(a) + 2 * T * sinhb_over_sinh2a
        ) / (2 * tau**2)
        v = (
            0.5
            * self.sigma**2
            * X**2
            * (
                2 * tau * math.exp(-2 * b) * (1 + math.exp(2 * b - 2 * a)) / (em2a * em2b)
                - 4 * T * math.exp(-2 * a) / em2a**2
            )
        )
        return e, max(v, 0.0)

    # -- frontier and VaR ----------------------------------------------------------------------------------
    def frontier(self, risk_aversions: F64 | None = None, *, n_points: int = 100) -> EfficientFrontier:
        """Optimal trajectories, E and V over a range of λ (default: ``n_points`` values spreading κT
        log-evenly from 10⁻² to 50), compiled; every trajectory is kept."""
        if risk_aversions is None:
            kt = np.geomspace(1e-2, 50.0, n_points, dtype=np.float64)
            lam = self.risk_aversion_for_kappa(kt / self.horizon)
        else:
            lam = np.asarray(risk_aversions, float)
            if lam.ndim != 1 or not np.all(np.isfinite(lam)) or np.any(lam < 0):
                raise InfeasibleScheduleError("'risk_aversions' must be a 1-d array of finite values >= 0")
        if self.alpha != 0:
            hold = np.vstack([self.trajectory(float(v)) for v in lam])
            ev = np.array([self.moments(h) for h in hold])
            return EfficientFrontier(lam, np.array([self.kappa(float(v)) for v in lam]), ev[:, 0], ev[:, 1], hold, self)
        kappas = np.array([self.kappa(float(v)) for v in lam])
        hold = np.empty((lam.size, self.n_steps + 1))
        e, v = np.empty(lam.size), np.empty(lam.size)
        fixed = 0.5 * self.gamma * self.quantity**2 + self.epsilon * self.quantity
        K.ac_frontier(self.quantity, self.horizon, self.n_steps, kappas, self.sigma, self.eta_tilde, fixed, hold, e, v)
        return EfficientFrontier(lam, kappas, e, v, hold, self)

    def risk_aversion_for_kappa(self, kappa: F64 | float) -> F64:
        """λ giving urgency κ: ``λ = 2η̃(cosh κτ − 1)/(σ²τ²)``."""
        if self.sigma == 0:
            raise InfeasibleScheduleError("with sigma = 0 every risk aversion gives the linear trajectory")
        k = np.asarray(kappa, float)
        return np.asarray(2 * self.eta_tilde * (np.cosh(k * self.tau) - 1) / (self.sigma**2 * self.tau**2), float)

    def value_at_risk(self, risk_aversion: float, confidence: float) -> float:
        """``E + z_p √V`` of the λ-optimal trajectory (the paper's VaR of trading cost)."""
        z = _z(confidence)
        e, v = self.moments(self.trajectory(risk_aversion))
        return e + z * math.sqrt(v)

    def var_optimal(self, confidence: float = 0.95) -> tuple[float, Schedule, float]:
        """The λ whose optimal trajectory has the least value at risk ``E + z_p √V`` at ``confidence``.

        Searches κT on a log grid (10⁻³ … 10³), then refines with a bounded Brent step; returns
        ``(λ, schedule, VaR)``.
        """
        z = _z(confidence)
        if self.sigma == 0:
            return 0.0, self.twap(), self.moments(self.twap().holdings)[0]
        grid = np.geomspace(1e-3, 1e3, 121) / self.horizon

        def var_k(k: float) -> float:
            lam = float(self.risk_aversion_for_kappa(k))
            e, v = self.moments(self.trajectory(lam)) if self.alpha else self.closed_form(lam)
            return e + z * math.sqrt(v)

        vals = np.array([var_k(float(k)) for k in grid])
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        res = optimize.minimize_scalar(
            lambda lk: var_k(math.exp(lk)), bounds=(math.log(lo), math.log(hi)), method="bounded"
        )
        best_k = math.exp(res.x) if res.fun <= vals[i] else float(grid[i])
        lam = float(self.risk_aversion_for_kappa(best_k))
        sched = self.solve(lam)
        return lam, sched, var_k(best_k)

    def serial_correlation_adjustment(self, last_move: float, rho: float) -> float:
        """Shares by which to cut this interval's trade (negative: add) after the price moved ``last_move``
        last interval, with returns serially correlated at lag one by ρ (§4.2).

        The expected further move is ``ρ/(1 − ρ) · last_move``; shifting y shares to later intervals gains
        ``y · that`` and costs ``η̃y²/τ`` now, so ``y* = ρ·last_move·τ/(2η̃(1 − ρ))`` for a sale (the
        opposite sign for a purchase).  Averaged over moves this gains :func:`serial_correlation_gain`.
        """
        r = _finite("rho", rho)
        if not -1 < r < 1:
            raise InfeasibleScheduleError(f"'rho' must be in (-1, 1), got {rho!r}")
        return -self.side * r * float(last_move) * self.tau / (2 * self.eta_tilde * (1 - r))


def serial_correlation_gain(rho: float, *, sigma: float, eta: float, tau: float, gamma: float = 0.0) -> float:
    """Expected gain per interval from trading on lag-one serial correlation ρ of returns (Almgren–Chriss
    2000, §4.2): ``ρ²σ²τ²/(4η̃(1 − ρ)²)``, ``η̃ = η − ½γτ``.

    Table 2 of the paper is this times the number of intervals in a day.
    """
    if not -1 < rho < 1:
        raise InfeasibleScheduleError(f"'rho' must be in (-1, 1), got {rho!r}")
    eta_t = eta - 0.5 * gamma * tau
    if eta_t <= 0:
        raise InfeasibleScheduleError(f"η̃ = η − γτ/2 must be > 0, got {eta_t:g}")
    return rho**2 * sigma**2 * tau**2 / (4 * eta_t * (1 - rho) ** 2)


def _z(confidence: float) -> float:
    if not 0.5 <= confidence < 1:
        raise InfeasibleScheduleError(f"'confidence' must be in [0.5, 1), got {confidence!r}")
    return float(stats.norm.ppf(confidence))


@dataclass(frozen=True, eq=False)
class EfficientFrontier:
    """Optimal trajectories over risk aversions, with their expected cost and variance.

    Attributes
    ----------
    risk_aversion, kappa, expected_cost, variance
        One value per point, in the order asked for.
    holdings
        ``(points, N + 1)`` optimal holdings.
    problem
        The problem they solve.
    """

    risk_aversion: F64
    kappa: F64
    expected_cost: F64
    variance: F64
    holdings: F64
    problem: AlmgrenChriss

    def __len__(self) -> int:
        return int(self.risk_aversion.size)

    def schedule(self, i: int) -> Schedule:
        """Point ``i`` as a :class:`Schedule`."""
        x = self.holdings[i].copy()
        p = self.problem
        return Schedule(
            p.times(),
            x,
            x[:-1] - x[1:],
            None,
            p.side,
            p.time_unit,
            "almgren-chriss",
            {"risk_aversion": float(self.risk_aversion[i]), "kappa": float(self.kappa[i])},
        )

    def to_dict(self) -> dict[str, list[float]]:
        """Plain-JSON form (without the trajectories)."""
        return {
            "risk_aversion": self.risk_aversion.tolist(),
            "kappa": self.kappa.tolist(),
            "expected_cost": self.expected_cost.tolist(),
            "variance": self.variance.tolist(),
        }
