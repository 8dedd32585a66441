"""Transient impact: decay kernels, the cost of a schedule, and the optimal discrete schedule (a quadratic
programme), with Obizhaeva–Wang's exponential kernel as the special case solved in closed form."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray
from scipy import linalg

from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules import _kernels as K
from impactlab.schedules._schedule import Schedule, ScheduleCost

if TYPE_CHECKING:
    from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
    from impactlab.schedules.market import MarketContext

__all__ = [
    "DecayKernel",
    "ObizhaevaWangSolution",
    "PriceManipulationWarning",
    "TransientImpact",
    "obizhaeva_wang_optimum",
]

F64 = NDArray[np.float64]
KernelKind = Literal["exponential", "power-law", "linear", "custom"]


class PriceManipulationWarning(UserWarning):
    """The impact kernel admits price manipulation: a round trip with negative expected cost, or an optimum
    that trades against the order."""


@dataclass(frozen=True)
class DecayKernel:
    """How the price impact of one trade decays with the time since it, normalised to ``G(0) = 1``.

    Use the constructors: :meth:`exponential` (Obizhaeva–Wang), :meth:`power_law`, :meth:`linear`,
    :meth:`custom`.

    Attributes
    ----------
    kind
        The family.
    rate
        ρ of ``e^{−ρt}`` (per time unit); the exponent γ of ``(1 + t/ℓ)^{−γ}``; unused otherwise.
    scale
        ℓ: the time scale of the power law, or the support of the linear kernel ``(1 − t/ℓ)⁺``.
    fn
        ``G`` itself for a custom kernel (vectorised over lags).
    """

    kind: KernelKind
    rate: float = 0.0
    scale: float = 1.0
    fn: Callable[[F64], F64] | None = None

    @classmethod
    def exponential(cls, rate: float) -> DecayKernel:
        """``G(t) = e^{−ρt}``, ρ > 0 (Obizhaeva–Wang resilience; half-life ln 2/ρ)."""
        if not (math.isfinite(rate) and rate > 0):
            raise InfeasibleScheduleError(f"the resilience 'rate' must be > 0, got {rate!r}")
        return cls("exponential", float(rate))

    @classmethod
    def power_law(cls, exponent: float, scale: float = 1.0) -> DecayKernel:
        """``G(t) = (1 + t/ℓ)^{−γ}``, γ > 0, ℓ > 0 (Gatheral's power-law decay, regularised at 0)."""
        if not (exponent > 0 and scale > 0 and math.isfinite(exponent) and math.isfinite(scale)):
            raise InfeasibleScheduleError(f"power-law kernel needs exponent > 0 and scale > 0, got {exponent}, {scale}")
        return cls("power-law", float(exponent), float(scale))

    @classmethod
    def linear(cls, length: float) -> DecayKernel:
        """``G(t) = (1 − t/ℓ)⁺``, ℓ > 0."""
        if not (math.isfinite(length) and length > 0):
            raise InfeasibleScheduleError(f"the linear kernel's 'length' must be > 0, got {length!r}")
        return cls("linear", 0.0, float(length))

    @classmethod
    def custom(cls, fn: Callable[[F64], F64]) -> DecayKernel:
        """Any ``G`` (vectorised over lags ≥ 0, ``G(0) = 1``); its positive definiteness is checked when
        a schedule is optimised."""
        return cls("custom", fn=fn)

    def __call__(self, lag: F64 | float) -> F64:
        t = np.abs(np.asarray(lag, dtype=np.float64))
        if self.kind == "exponential":
            return np.exp(-self.rate * t)
        if self.kind == "power-law":
            return np.asarray((1.0 + t / self.scale) ** (-self.rate), dtype=np.float64)
        if self.kind == "linear":
            return np.clip(1.0 - t / self.scale, 0.0, None)
        assert self.fn is not None
        return np.asarray(self.fn(t), dtype=np.float64)

    def matrix(self, times: F64) -> F64:
        """``G(|t_i − t_j|)`` for trade instants ``times``."""
        t = np.asarray(times, float)
        return self(t[:, None] - t[None, :])

    def describe(self) -> str:
        """A short label: ``exponential(ρ=…)`` etc."""
        return {
            "exponential": f"exponential(ρ={self.rate:g})",
            "power-law": f"power-law(γ={self.rate:g}, ℓ={self.scale:g})",
            "linear": f"linear(ℓ={self.scale:g})",
            "custom": "custom",
        }[self.kind]


@dataclass(frozen=True)
class TransientImpact:
    """Transient (decaying) plus permanent linear impact, and the cost of discrete trades under it.

    Parameters
    ----------
    kernel
        Decay of the transient part, ``G(0) = 1``.
    transient
        κ: price move per share traded that decays by ``kernel`` (price units per share; Obizhaeva–Wang's
        ``1/q − λ``; bps per share for a model fitted in bps).
    permanent
        λ: price move per share that stays.
    spread
        Fixed cost per share (half the spread plus fees).
    unit
        ``"currency"`` when the coefficients are in price units, ``"bps"`` when in bps of the price.
    continuous
        Price a schedule as trading at a constant rate within each interval (exact for the exponential
        kernel; a zero-length interval stays a block) instead of one trade at each interval's start.

    Notes
    -----
    Trades ``n_k`` at instants ``s_k`` (a schedule's interval starts) cost
    ``C = spread · Σ|n_k| + λX²/2 + (κ/2) nᵀGn`` with ``G_ij = G(|s_i − s_j|)``: each trade pays the
    impact still in force from earlier ones plus half its own (it walks a block-shaped book).  The optimum
    for ``Σn_k = X`` solves ``Gn = μ1``: ``n = X G⁻¹1/(1ᵀG⁻¹1)``, cost ``λX²/2 + κX²/(2·1ᵀG⁻¹1)``.  When
    ``G`` is not positive definite a round trip has negative cost and there is no optimum (price
    manipulation, Gatheral–Schied–Slynko 2012); when the unconstrained optimum trades against the order,
    it is replaced by the optimum without such trades.

    References
    ----------
    Obizhaeva, A. A. & Wang, J. (2013). Optimal trading strategy and supply/demand dynamics. JFM 16, 1–32.
    Gatheral, J., Schied, A. & Slynko, A. (2012). Transient linear price impact and Fredholm integral
    equations. Mathematical Finance 22(3), 445–474.
    """

    kernel: DecayKernel
    transient: float
    permanent: float = 0.0
    spread: float = 0.0
    unit: Literal["currency", "bps"] = "currency"
    continuous: bool = False

    def __post_init__(self) -> None:
        for name in ("transient", "permanent", "spread"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise InfeasibleScheduleError(f"'{name}' impact must be finite and >= 0, got {v!r}")

    @classmethod
    def obizhaeva_wang(
        cls, *, depth: float, resilience: float, permanent: float = 0.0, spread: float = 0.0
    ) -> TransientImpact:
        """The Obizhaeva–Wang book: depth q (shares per price unit), resilience ρ and permanent impact λ per
        share; transient κ = 1/q − λ (must be ≥ 0)."""
        if not (math.isfinite(depth) and depth > 0):
            raise InfeasibleScheduleError(f"'depth' q must be > 0 shares per price unit, got {depth!r}")
        kappa = 1.0 / depth - permanent
        if kappa < 0:
            raise InfeasibleScheduleError(
                f"permanent impact λ = {permanent:g} exceeds the book's total 1/q = {1 / depth:g}: κ = 1/q − λ < 0"
            )
        return cls(DecayKernel.exponential(resilience), kappa, permanent, spread)

    @classmethod
    def from_model(cls, model: ObizhaevaWangImpact, *, half_spread_bps: float = 0.0) -> TransientImpact:
        """The fitted :class:`~impactlab.impact.ObizhaevaWangImpact` (λ, κ in bps per share, ρ per second)
        as a cost model in bps on a clock of seconds."""
        p = model.result_.params_dict()
        return cls(DecayKernel.exponential(p["rho_per_s"]), p["kappa_bps"], p["lambda_bps"], half_spread_bps, "bps")

    # -- cost ---------------------------------------------------------------------------------------------
    def trade_cost(self, trades: F64, times: F64) -> tuple[float, float]:
        """``(temporary, permanent)`` cost of trades ``trades`` at instants ``times``."""
        n = np.asarray(trades, float)
        g = self.kernel.matrix(times)
        temp = self.spread * float(np.abs(n).sum()) + 0.5 * self.transient * float(n @ g @ n)
        return temp, 0.5 * self.permanent * float(n.sum()) ** 2

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Cost of ``schedule``: one trade at each interval's start, or a constant rate within each interval
        with ``continuous`` (in the model's unit; a ``bps`` model's per-share coefficients are divided by X
        so that the cost is in bps of the order's value)."""
        n = schedule.trades
        if self.continuous:
            if self.kernel.kind == "exponential":
                t = schedule.times
                quad = K.exp_interval_quadratic(n, t[:-1], t[1:], self.kernel.rate)
            else:
                quad = float(n @ self.interval_matrix(schedule.times) @ n)
            temp = self.spread * float(np.abs(n).sum()) + 0.5 * self.transient * quad
            perm = 0.5 * self.permanent * float(n.sum()) ** 2
        else:
            temp, perm = self.trade_cost(n, schedule.times[:-1])
        free = self.spread * float(np.abs(n).sum()) + perm
        if self.unit == "bps":
            temp, perm, free = temp / schedule.quantity, perm / schedule.quantity, free / schedule.quantity
        return ScheduleCost(temp, perm, temp + perm, self.unit, model=f"TransientImpact[{self.kernel.describe()}]",
                            horizon_free=free)  # fmt: skip

    def interval_matrix(self, bounds: F64) -> F64:
        """``M_ij``: the kernel averaged over intervals i and j, ``(1/τ_iτ_j)∫_i∫_j G(|s − u|)``, for trading
        at a constant rate within each interval (the transient cost is ``(κ/2) nᵀMn``).

        Exponential kernel, exactly: ``M_ij = e^{−ρ(a_j − b_i)} φ(ρτ_i) φ(ρτ_j)`` for i before j with
        ``φ(x) = (1 − e^{−x})/x``, and ``M_ii = 2(x − 1 + e^{−x})/x²``.  Other kernels: the mean of G over
        16 × 16 midpoints of equal sub-intervals.
        """
        b = np.asarray(bounds, float)
        a, e = b[:-1], b[1:]
        tau = e - a
        if self.kernel.kind == "exponential":
            rho = self.kernel.rate
            x = rho * tau
            with np.errstate(divide="ignore", invalid="ignore"):
                phi = np.where(x > 1e-8, -np.expm1(-x) / np.where(x > 0, x, 1.0), 1.0 - x / 2)
                psi = np.where(x > 1e-4, 2 * (x + np.expm1(-x)) / np.where(x > 0, x, 1.0) ** 2, 1.0 - x / 3 + x**2 / 12)
            gap = np.clip(a[None, :] - e[:, None], 0.0, None)  # start of j minus end of i (i before j)
            m = np.exp(-rho * gap) * phi[:, None] * phi[None, :]
            m = np.triu(m, 1)
            m = m + m.T
            np.fill_diagonal(m, psi)
            return np.asarray(m, dtype=np.float64)
        k = 16
        frac = (np.arange(k) + 0.5) / k
        pts = a[:, None] + tau[:, None] * frac[None, :]
        g = self.kernel(pts.reshape(-1)[:, None] - pts.reshape(-1)[None, :]).reshape(a.size, k, a.size, k)
        return np.asarray(g.mean(axis=(1, 3)), dtype=np.float64)

    # -- optimum -----------------------------------------------------------------------------------------
    def check_no_manipulation(self, times: F64) -> F64:
        """``G`` on these instants, after checking it is positive definite (else warn
        :class:`PriceManipulationWarning` and raise :class:`InfeasibleScheduleError` naming the round trip)."""
        return self._factor(times)[0]

    def _factor(self, times: F64) -> tuple[F64, tuple[F64, bool]]:
        g = self.kernel.matrix(times)
        if not np.allclose(g, g.T) or not np.all(np.isfinite(g)):
            raise InfeasibleScheduleError("the kernel matrix must be finite and symmetric")
        try:
            factor = linalg.cho_factor(g, check_finite=False)
            if np.min(np.abs(np.diag(factor[0]))) > 1e-7:
                return g, factor
        except linalg.LinAlgError:
            pass
        w, v = linalg.eigh(g)
        trip = v[:, 0] / np.max(np.abs(v[:, 0]))
        msg = (
            f"the kernel {self.kernel.describe()} is not positive definite on these {len(g)} trade times "
            f"(smallest eigenvalue {w[0]:.3g}): the round trip {np.round(trip[:6], 3).tolist()}… has "
            "non-positive cost, so repeating it is free money (price manipulation) and no optimal schedule "
            "exists; no schedule is returned"
        )
        warnings.warn(msg, PriceManipulationWarning, stacklevel=4)
        raise InfeasibleScheduleError(msg)

    def optimal(
        self,
        quantity: float,
        times: F64,
        *,
        side: int = 1,
        time_unit: str = "s",
        end: float | None = None,
    ) -> Schedule:
        """The cost-minimising trades at instants ``times`` (the exact quadratic programme).

        ``end`` closes the last interval (default: the last instant, which then holds a block trade).
        A kernel that is not positive definite raises :class:`InfeasibleScheduleError`; an optimum that would
        trade against the order (a round trip that the kernel rewards, 'transaction-triggered' manipulation)
        warns :class:`PriceManipulationWarning` and is replaced by the best schedule that never does.
        """
        if not (math.isfinite(quantity) and quantity > 0):
            raise InfeasibleScheduleError(f"'quantity' must be > 0 shares, got {quantity!r}")
        t = np.asarray(times, float)
        if t.ndim != 1 or t.size < 1 or np.any(np.diff(t) <= 0) or not np.all(np.isfinite(t)):
            raise InfeasibleScheduleError("'times' must be a strictly increasing, finite 1-d array of trade instants")
        g, factor = self._factor(t)
        n: F64
        if self.transient == 0:
            n = np.full(t.size, quantity / t.size)
        else:
            w = linalg.cho_solve(factor, np.ones(t.size))
            n = quantity * w / w.sum()
        constrained = False
        if np.any(n < -1e-9 * quantity):
            warnings.warn(
                f"the unconstrained optimum under {self.kernel.describe()} trades against the order "
                f"(min trade {n.min():.4g} of {quantity:g}): transaction-triggered price manipulation; "
                "returning the best schedule without round trips",
                PriceManipulationWarning,
                stacklevel=2,
            )
            n = _simplex_qp(g, quantity)
            constrained = True
        n = np.asarray(np.clip(n, 0.0, None), dtype=np.float64)
        n = n * (quantity / n.sum())
        stop = t[-1] if end is None else float(end)
        if stop < t[-1]:
            raise InfeasibleScheduleError(f"'end' ({stop:g}) is before the last trade instant ({t[-1]:g})")
        bounds = np.append(t, stop)  # with stop = the last instant, the last trade is a block in a zero-length interval
        return Schedule.from_trades(
            bounds,
            n,
            side=side,
            time_unit=time_unit,
            strategy="transient-optimal",
            params={"kernel": self.kernel.describe(), "no_round_trip_constraint_binds": constrained},
        )


def _simplex_qp(g: F64, quantity: float) -> F64:
    """``min ½nᵀGn`` s.t. ``Σn = X``, ``n ≥ 0`` (convex: G positive definite), by cvxpy/Clarabel in shares
    scaled to fractions."""
    import cvxpy as cp

    m = g.shape[0]
    u = cp.Variable(m, nonneg=True)
    chol = linalg.cholesky(g, lower=False)  # G = RᵀR: ½‖Ru‖² is the quadratic form, DCP without a PSD check
    prob = cp.Problem(cp.Minimize(cp.sum_squares(chol @ u) * m), [cp.sum(u) == 1])
    prob.solve(solver=cp.CLARABEL)
    if u.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        raise InfeasibleScheduleError(f"the no-round-trip programme did not solve: {prob.status}")
    return np.asarray(np.clip(u.value, 0.0, None), float) * quantity


@dataclass(frozen=True)
class ObizhaevaWangSolution:
    """The continuous-time Obizhaeva–Wang optimum for a buy of X₀ over [0, T].

    Attributes
    ----------
    initial_block, final_block
        ``x₀ = x_T = X₀/(ρT + 2)`` shares traded at 0 and at T.
    rate
        ``ρX₀/(ρT + 2)`` shares per time unit in between.
    cost
        ``J₀ = (λ/2)X₀² + κX₀²/(ρT + 2)`` above the pre-trade price (price units).
    half_life
        ``ln 2/ρ``.
    """

    quantity: float
    horizon: float
    initial_block: float
    final_block: float
    rate: float
    cost: float
    half_life: float

    def schedule(self, n_steps: int, *, side: int = 1, time_unit: str = "s") -> Schedule:
        """The optimum on a grid: the two blocks as zero-length intervals at 0 and T and the constant rate
        over N equal intervals in between."""
        if n_steps < 1:
            raise InfeasibleScheduleError(f"'n_steps' must be >= 1, got {n_steps}")
        bounds = np.concatenate([[0.0], np.linspace(0.0, self.horizon, n_steps + 1), [self.horizon]])
        trades = np.concatenate(
            [[self.initial_block], np.full(n_steps, self.rate * self.horizon / n_steps), [self.final_block]]
        )
        return Schedule.from_trades(
            bounds,
            trades,
            side=side,
            time_unit=time_unit,
            strategy="obizhaeva-wang",
            params={"half_life": self.half_life},
        )


def obizhaeva_wang_optimum(
    quantity: float, horizon: float, *, depth: float, resilience: float, permanent: float = 0.0
) -> ObizhaevaWangSolution:
    """The continuous-time optimum of Obizhaeva & Wang (2013), Proposition 3."""
    if not (math.isfinite(quantity) and quantity > 0):
        raise InfeasibleScheduleError(f"'quantity' must be > 0 shares, got {quantity!r}")
    if not (math.isfinite(horizon) and horizon > 0):
        raise InfeasibleScheduleError(f"'horizon' must be > 0, got {horizon!r}")
    model = TransientImpact.obizhaeva_wang(depth=depth, resilience=resilience, permanent=permanent)
    rho = model.kernel.rate
    block = quantity / (rho * horizon + 2)
    return ObizhaevaWangSolution(
        quantity=float(quantity),
        horizon=float(horizon),
        initial_block=block,
        final_block=block,
        rate=rho * block,
        cost=0.5 * permanent * quantity**2 + model.transient * quantity**2 / (rho * horizon + 2),
        half_life=math.log(2) / rho,
    )
