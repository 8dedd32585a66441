"""The :class:`Schedule` every optimiser returns and the :class:`ScheduleCost` a cost model prices it at."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from impactlab.errors import InfeasibleScheduleError

if TYPE_CHECKING:
    from impactlab.schedules.market import MarketContext

__all__ = ["CostModel", "Schedule", "ScheduleCost"]

F64 = NDArray[np.float64]
CostUnit = Literal["currency", "bps"]


def _frozen(a: Any) -> F64:
    arr = np.array(a, dtype=np.float64)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, eq=False)
class Schedule:
    """An execution schedule: when to hold how much of the order, and what to trade in each interval.

    Attributes
    ----------
    times
        ``N + 1`` interval boundaries ``t_0 <= … <= t_N`` in ``time_unit`` (``t_0`` is the start; schedules
        on a session clock count from the open).  Interval k's trade is executed from its start ``t_{k−1}``
        (the Almgren–Chriss convention); a zero-length interval is a block trade at that instant.
    holdings
        ``N + 1`` shares still to trade at each boundary, in the order's direction: ``x_0 = X`` … ``x_N = 0``.
    trades
        ``N`` shares traded in each interval, ``n_k = x_{k−1} − x_k`` (positive: in the order's direction).
    participation
        ``N`` shares traded over the market's expected volume in each interval, or ``None`` without a
        volume forecast.
    side
        +1 to buy, −1 to sell.
    time_unit
        Unit of ``times`` (``"s"``, ``"min"``, ``"day"``); rates and volatilities passed to the schedule's
        methods are per this unit.
    strategy
        Which optimiser or rule made it (``"almgren-chriss"``, ``"vwap"`` …).
    params
        The settings that made it (risk aversion, κ, participation cap …), for reports.
    """

    times: F64
    holdings: F64
    trades: F64
    participation: F64 | None = None
    side: int = 1
    time_unit: str = "s"
    strategy: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t, x, n = _frozen(self.times), _frozen(self.holdings), _frozen(self.trades)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "holdings", x)
        object.__setattr__(self, "trades", n)
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if self.participation is not None:
            object.__setattr__(self, "participation", _frozen(self.participation))
        if t.ndim != 1 or t.size < 2 or x.shape != t.shape or n.shape != (t.size - 1,):
            raise InfeasibleScheduleError(
                f"a schedule needs N+1 times and holdings and N trades; got {t.shape}, {x.shape}, {n.shape}"
            )
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(x)) and np.all(np.isfinite(n))):
            raise InfeasibleScheduleError("schedule times, holdings and trades must be finite")
        if np.any(np.diff(t) < 0):
            raise InfeasibleScheduleError(f"'times' must not decrease; got {t[:6].tolist()}…")
        if self.side not in (1, -1):
            raise InfeasibleScheduleError(f"'side' must be +1 or -1, got {self.side!r}")
        scale = max(abs(float(x[0])), 1.0)
        if abs(float(x[-1])) > 1e-9 * scale or np.max(np.abs(x[:-1] - x[1:] - n)) > 1e-9 * scale:
            raise InfeasibleScheduleError("holdings must end at 0 and trades must equal the drop in holdings")

    @classmethod
    def from_trades(
        cls,
        times: Any,
        trades: Any,
        *,
        side: int = 1,
        time_unit: str = "s",
        strategy: str = "",
        params: Mapping[str, Any] | None = None,
        expected_volume: Any = None,
    ) -> Schedule:
        """A schedule from its trade list (holdings are the shares left); ``expected_volume`` per interval
        gives the participation."""
        n = np.asarray(trades, dtype=np.float64)
        x = np.concatenate([[n.sum()], n.sum() - np.cumsum(n)])
        x[-1] = 0.0
        part = None if expected_volume is None else _participation(n, np.asarray(expected_volume, float))
        return cls(times, x, n, part, side, time_unit, strategy, params or {})

    # -- shape --------------------------------------------------------------------------------------------
    @property
    def quantity(self) -> float:
        """Shares to trade, X."""
        return float(self.holdings[0])

    @property
    def horizon(self) -> float:
        """``t_N − t_0`` in ``time_unit``."""
        return float(self.times[-1] - self.times[0])

    @property
    def n_steps(self) -> int:
        """Number of intervals, N."""
        return int(self.trades.size)

    @property
    def intervals(self) -> F64:
        """Interval lengths ``τ_k = t_k − t_{k−1}``."""
        return np.diff(self.times)

    def with_participation(self, expected_volume: Any) -> Schedule:
        """The same schedule with participation against ``expected_volume`` shares per interval."""
        part = _participation(self.trades, np.asarray(expected_volume, float))
        return Schedule(
            self.times, self.holdings, self.trades, part, self.side, self.time_unit, self.strategy, self.params
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per interval: start, end, shares to trade, shares left after it, cumulative fraction done
        and participation (NaN without a volume forecast)."""
        x = self.holdings
        return pd.DataFrame(
            {
                f"start_{self.time_unit}": self.times[:-1],
                f"end_{self.time_unit}": self.times[1:],
                "trade_shares": self.trades,
                "holdings_after": x[1:],
                "done_fraction": 1.0 - x[1:] / x[0] if x[0] else np.zeros(self.n_steps),
                "participation": self.participation if self.participation is not None else np.nan,
            }
        )

    # -- risk and cost ---------------------------------------------------------------------------------------
    def variance(self, sigma: float) -> float:
        """Variance of the cost from price moves while shares are held, ``σ² Σ_k τ_k x_k²``.

        ``sigma`` is the price volatility per √``time_unit`` (price units per share); the result is in
        price units² (e.g. $²).  This is the Almgren–Chriss ``V = σ²τ Σ x_k²`` for equal intervals: the
        ``x_k`` shares still held after interval k's trade carry that interval's price move.
        """
        if not (math.isfinite(sigma) and sigma >= 0):
            raise InfeasibleScheduleError(f"'sigma' must be finite and >= 0, got {sigma}")
        return float(sigma**2 * np.dot(self.intervals, self.holdings[1:] ** 2))

    def timing_risk_bps(self, daily_vol: float, *, unit_per_day: float) -> float:
        """Standard deviation of the cost from price moves, in bps of the arrival price, for a daily
        volatility (a fraction) and ``unit_per_day`` schedule time units in a trading day (23,400 for
        seconds of a 6.5-hour session)."""
        sigma = daily_vol * 1e4 / math.sqrt(unit_per_day)
        return math.sqrt(self.variance(sigma)) / self.quantity if self.quantity else 0.0

    def cost(self, model: CostModel, market: MarketContext | None = None) -> ScheduleCost:
        """Temporary, permanent and total cost of this schedule under ``model`` (see :class:`CostModel`)."""
        return model.schedule_cost(self, market)

    def expected_cost(self, model: CostModel, market: MarketContext | None = None) -> float:
        """Expected total cost under ``model``, in the model's unit: currency (price × shares) for the
        absolute-unit models (:class:`~impactlab.schedules.LinearImpact`,
        :class:`~impactlab.schedules.TransientImpact`), bps of the arrival price for calibrated
        :class:`~impactlab.impact.ImpactModel` s (through :class:`~impactlab.schedules.ModelCost`)."""
        return self.cost(model, market).total

    def summary(self) -> dict[str, Any]:
        """Plain-JSON form: times, holdings, trades, participation, side, unit, strategy and settings."""
        return {
            "strategy": self.strategy,
            "side": self.side,
            "time_unit": self.time_unit,
            "times": self.times.tolist(),
            "holdings": self.holdings.tolist(),
            "trades": self.trades.tolist(),
            "participation": None if self.participation is None else self.participation.tolist(),
            "params": {k: v for k, v in self.params.items() if isinstance(v, int | float | str | bool)},
        }


def _participation(n: F64, vol: F64) -> F64:
    if vol.shape != n.shape:
        raise InfeasibleScheduleError(f"'expected_volume' needs one value per interval ({n.size}), got {vol.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(vol > 0, n / np.where(vol > 0, vol, 1.0), np.where(n > 0, np.inf, 0.0))


@dataclass(frozen=True)
class ScheduleCost:
    """What a schedule is expected to cost, split into temporary and permanent parts.

    Attributes
    ----------
    temporary, permanent, total
        Expected cost in ``unit`` (``total = temporary + permanent``; the permanent part is what the
        order's own permanent impact costs it while it executes).  ``permanent`` is ``None`` when the
        model does not separate it.
    unit
        ``"currency"`` (price × shares) or ``"bps"`` (of the arrival price).
    impact_std
        Standard deviation of the impact forecast itself (model and parameter uncertainty), in ``unit``.
    timing_std
        Standard deviation from price moves while the order is worked, in ``unit`` (0 when no volatility
        was given).
    quantiles
        ``{probability: cost}`` of the impact forecast, when the model gives calibrated ones.
    model
        The model that priced it.
    extrapolated_features
        Inputs outside the range the model was fitted on.
    horizon_free
        The part of ``total`` that is the same at every horizon and trading rate (a half-spread, a
        square-root metaorder law); ``None`` when the model does not say.
    parts
        The cost of each named part of a model that sums several, in ``unit``.
    """

    temporary: float
    permanent: float | None
    total: float
    unit: CostUnit
    impact_std: float = 0.0
    timing_std: float = 0.0
    quantiles: Mapping[float, float] = field(default_factory=dict)
    model: str = ""
    extrapolated_features: tuple[str, ...] = ()
    horizon_free: float | None = None
    parts: Mapping[str, float] = field(default_factory=dict)

    @property
    def horizon_dependent(self) -> bool | None:
        """Whether any of the cost depends on the horizon or the rate (``None`` when the model does not say)."""
        if self.horizon_free is None:
            return None
        return abs(self.total - self.horizon_free) > 1e-9 * max(1.0, abs(self.total))

    def quantile(self, p: float) -> float:
        """The ``p`` quantile of the realised cost: the model's own where it gives it, else normal with sd
        :attr:`std`."""
        if p in self.quantiles:
            return float(self.quantiles[p])
        return float(self.total + stats.norm.ppf(p) * self.std)

    @property
    def std(self) -> float:
        """Standard deviation of the realised cost: impact uncertainty and timing risk, independent."""
        return math.hypot(self.impact_std, self.timing_std)

    def prob_exceeds(self, threshold: float) -> float:
        """P(realised cost > ``threshold``), normal around ``total`` with sd :attr:`std`."""
        if self.std <= 0:
            return float(self.total > threshold)
        return float(stats.norm.sf(threshold, loc=self.total, scale=self.std))


@runtime_checkable
class CostModel(Protocol):
    """Anything that prices a :class:`Schedule`: ``schedule_cost(schedule, market) -> ScheduleCost``."""

    def schedule_cost(self, schedule: Schedule, market: MarketContext | None = None) -> ScheduleCost:
        """Expected cost of ``schedule``; ``market`` supplies the context a calibrated model needs."""
        ...
