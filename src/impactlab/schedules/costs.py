"""Cost models that price a :class:`~impactlab.schedules.Schedule`: Almgren–Chriss linear impact, any calibrated
:class:`~impactlab.impact.ImpactModel`, and sums of parts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from impactlab.errors import InfeasibleScheduleError
from impactlab.impact._base import ImpactModel
from impactlab.schedules._schedule import CostModel, Schedule, ScheduleCost
from impactlab.schedules.market import MarketContext

__all__ = ["CombinedCost", "LinearImpact", "ModelCost", "SpreadCost"]


@dataclass(frozen=True)
class LinearImpact:
    """Almgren–Chriss impact in price units: temporary ``h(v) = ε + ηv``, permanent ``g(v) = γv``.

    Notes
    -----
    A trade ``n_k`` over an interval of length ``τ_k`` (rate ``v = n_k/τ_k``) pays ``ε|n_k| + ηn_k²/τ_k``
    of temporary impact and ``γ n_k (X − x_{k−1})`` for the permanent impact of the trades before it:
    in total ``½γ(X² − Σn_k²)``.  With equal steps the sum is the paper's
    ``E = ½γX² + εX + (η̃/τ)Σn_k²``.  A zero-length interval (a block) has no finite rate and is refused.
    """

    eta: float
    gamma: float = 0.0
    epsilon: float = 0.0

    def __post_init__(self) -> None:
        for name in ("eta", "gamma", "epsilon"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise InfeasibleScheduleError(f"'{name}' must be finite and >= 0, got {v!r}")

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Expected cost in currency."""
        n, tau = schedule.trades, schedule.intervals
        if np.any((tau <= 0) & (n != 0)):
            raise InfeasibleScheduleError("linear temporary impact has no finite cost for a block (zero-length) trade")
        with np.errstate(divide="ignore", invalid="ignore"):
            quad = float(np.sum(np.where(tau > 0, n**2 / np.where(tau > 0, tau, 1.0), 0.0)))
        temp = self.epsilon * float(np.abs(n).sum()) + self.eta * quad
        perm = 0.5 * self.gamma * (schedule.quantity**2 - float(n @ n))
        free = self.epsilon * float(np.abs(n).sum()) + (perm if self.eta == 0 else 0.0)
        return ScheduleCost(temp, perm, temp + perm, "currency", model="LinearImpact", horizon_free=free)


@dataclass(frozen=True)
class SpreadCost:
    """Crossing half the spread on every share: ``half_spread_bps``, whatever the schedule's shape or horizon."""

    half_spread_bps: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_spread_bps) and self.half_spread_bps >= 0):
            raise InfeasibleScheduleError(f"'half_spread_bps' must be finite and >= 0, got {self.half_spread_bps!r}")

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """The half-spread, bps (temporary; no permanent part)."""
        return ScheduleCost(
            self.half_spread_bps,
            0.0,
            self.half_spread_bps,
            "bps",
            model="half-spread",
            horizon_free=self.half_spread_bps,
        )


@dataclass(frozen=True)
class ModelCost:
    """A calibrated :class:`~impactlab.impact.ImpactModel` pricing a whole schedule as one parent order.

    Parameters
    ----------
    model
        A fitted model that prices parent orders: square-root, spread-square-root, power-law, I-Star or a
        machine-learned block model.
    role
        ``"total"``: the model's estimate is the order's cost.  ``"permanent"``: the model predicts the
        permanent move I the order causes (e.g. a square-root law fitted on bar returns), of which the
        order pays I/2 while it executes.

    Notes
    -----
    The schedule enters through the columns these models read: ``quantity``, ``adv``, ``daily_vol``,
    ``duration_days`` (the horizon as a fraction of the session), ``pov`` (the quantity over the market
    volume expected over the horizon), ``spread_bps``; machine-learned models also read the book state at
    arrival from the market context, with ``horizon_s``, ``participation`` and the order's size over
    ADV and over the near-side depth.  These models see the schedule's horizon and participation, not its
    shape.
    """

    model: ImpactModel
    role: Literal["total", "permanent"] = "total"
    _memo: dict[tuple[Any, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.model._check_fitted()
        if self.role not in ("total", "permanent"):
            raise InfeasibleScheduleError(f"'role' must be 'total' or 'permanent', got {self.role!r}")

    def row(self, schedule: Schedule, market: MarketContext) -> dict[str, float]:
        """The feature row this schedule gives the model."""
        if schedule.time_unit != "s":
            raise InfeasibleScheduleError(
                f"calibrated models price schedules in seconds, got unit {schedule.time_unit!r}"
            )
        x = schedule.quantity
        horizon_s = max(schedule.horizon, 1.0)
        vol = market.volume_curve.expected_volume(np.array([schedule.times[0], schedule.times[-1]]), market.adv)[0]
        row: dict[str, float] = {
            "quantity": x,
            "adv": market.adv,
            "daily_vol": market.daily_vol,
            "duration_days": horizon_s / market.session_s,
            "pov": min(x / vol, 1.0) if vol > 0 else 1.0,
            "spread_bps": market.spread_bps,
            "permanent_bps": 0.0,  # an input only when fitting a power law
            "horizon_s": horizon_s,
            "participation": x / (market.adv * horizon_s / market.session_s),
            "log_q_over_adv": math.log(x / market.adv),
            "seconds_since_open": float(schedule.times[0]),
        }
        st = dict(market.state)
        for k, v in st.items():
            row.setdefault(k, float(v))
        if "near_depth_1" in st:
            row["q_over_near_depth_1"] = x / max(st["near_depth_1"], 1.0)
        if "near_depth_5" in st:
            row["q_over_near_depth_5"] = x / max(st["near_depth_5"], 1.0)
        return row

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Expected cost in bps of the arrival price; the impact sd is the model's, the timing sd is the
        schedule's risk at the market's volatility."""
        if market is None:
            raise InfeasibleScheduleError(f"{type(self.model).__name__} needs a MarketContext to price a schedule")
        row = self.row(schedule, market)
        missing = [c for c in _columns(self.model) if c not in row]
        if missing:
            raise InfeasibleScheduleError(
                f"{type(self.model).__name__} reads {missing}, which the market context does not give "
                "(machine-learned models need the book state at arrival)"
            )
        # the estimate depends only on the columns the model reads (a square-root law ignores the horizon):
        # memoised on them and on the fit, so a curve of horizons asks the model once per distinct input
        key = (id(getattr(self.model, "result_", None)), *(row[c] for c in _columns(self.model)))
        est = self._memo.get(key)
        if est is None:
            if len(self._memo) > 4096:
                self._memo.clear()
            est = self._memo[key] = self.model.predict_estimate(pd.Series(row))
        timing = schedule.timing_risk_bps(market.daily_vol, unit_per_day=market.session_s)
        name = type(self.model).__name__
        free = not (set(_columns(self.model)) & HORIZON_COLUMNS)
        if self.role == "permanent":
            half = est.total_bps / 2
            return ScheduleCost(0.0, half, half, "bps", est.std_bps / 2, timing, model=f"{name} (permanent)",
                                horizon_free=half if free else 0.0)  # fmt: skip
        qs = dict(est.quantiles) if est.quantiles_are_distribution else {}
        return ScheduleCost(
            est.temporary_bps if est.permanent_bps is not None else est.total_bps,
            None if est.permanent_bps is None else est.permanent_bps / 2,
            est.total_bps,
            "bps",
            est.std_bps,
            timing,
            qs,
            name,
            tuple(est.extrapolated_features),
            horizon_free=est.total_bps if free else 0.0,
        )


HORIZON_COLUMNS = frozenset({"duration_days", "pov", "horizon_s", "participation"})
"""Columns through which a calibrated model sees the horizon or the rate of a schedule."""


def _columns(model: ImpactModel) -> tuple[str, ...]:
    cols: Any = model._columns()
    return tuple(cols)


@dataclass(frozen=True)
class CombinedCost:
    """The sum of independent cost parts (e.g. half-spread and transient impact from the book plus a
    permanent square-root move); standard deviations add in quadrature, and the timing risk is counted once."""

    parts: tuple[CostModel, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise InfeasibleScheduleError("a combined cost needs at least one part")

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Sum of the parts' costs (all in the same unit)."""
        costs = [p.schedule_cost(schedule, market) for p in self.parts]
        units = {c.unit for c in costs}
        if len(units) != 1:
            raise InfeasibleScheduleError(f"cannot add costs in different units: {sorted(units)}")
        perm = [c.permanent for c in costs if c.permanent is not None]
        timing = max(c.timing_std for c in costs)
        if timing == 0 and market is not None and schedule.time_unit == "s":
            timing = schedule.timing_risk_bps(market.daily_vol, unit_per_day=market.session_s)
        extrap = tuple(dict.fromkeys(f for c in costs for f in c.extrapolated_features))
        frees = [c.horizon_free for c in costs]
        return ScheduleCost(
            sum(c.temporary for c in costs),
            sum(perm) if perm else None,
            sum(c.total for c in costs),
            costs[0].unit,
            math.sqrt(sum(c.impact_std**2 for c in costs)),
            timing,
            {},
            " + ".join(c.model for c in costs),
            extrap,
            horizon_free=None if any(f is None for f in frees) else float(sum(f for f in frees if f is not None)),
        )
