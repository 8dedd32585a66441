"""The intraday volume curve, estimated from LOBSTER days, and the TWAP, VWAP and POV schedules built on it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data.market import MarketDay
from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules._schedule import Schedule

__all__ = ["SESSION_S", "VolumeCurve", "pov", "twap", "vwap"]

F64 = NDArray[np.float64]
SESSION_S = 23_400.0
"""Seconds in NASDAQ's continuous session, 09:30–16:00."""


@dataclass(frozen=True, eq=False)
class VolumeCurve:
    """Expected share of a session's volume traded in each bin, on a clock of seconds since the open.

    Attributes
    ----------
    edges_s
        Bin edges from 0 to the session length.
    fractions
        Share of the day's volume in each bin (sums to 1).
    n_days
        Days it was averaged over.
    sources
        Where it came from.

    Notes
    -----
    Time past the close continues into the next session: ``cumulative(session + t) = 1 + cumulative(t)``,
    so horizons longer than what is left of the day carry over.
    """

    edges_s: F64
    fractions: F64
    n_days: int = 0
    sources: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        e = np.asarray(self.edges_s, float)
        f = np.asarray(self.fractions, float)
        if e.ndim != 1 or f.shape != (e.size - 1,) or e[0] != 0 or np.any(np.diff(e) <= 0):
            raise InfeasibleScheduleError("a volume curve needs increasing edges from 0 and one fraction per bin")
        if np.any(f < 0) or not math.isclose(float(f.sum()), 1.0, rel_tol=1e-9):
            raise InfeasibleScheduleError(f"volume fractions must be >= 0 and sum to 1, got sum {f.sum():.6g}")
        object.__setattr__(self, "edges_s", e)
        object.__setattr__(self, "fractions", f)
        object.__setattr__(self, "_cum", np.concatenate([[0.0], np.cumsum(f)]))

    @property
    def session_s(self) -> float:
        """Session length in seconds."""
        return float(self.edges_s[-1])

    @classmethod
    def uniform(cls, *, session_s: float = SESSION_S, bin_s: float = 300.0) -> VolumeCurve:
        """Flat volume over the session."""
        edges = np.arange(0.0, session_s + bin_s / 2, bin_s, dtype=np.float64)
        edges[-1] = session_s
        w = np.diff(edges)
        return cls(edges, w / w.sum(), 0, ("uniform",))

    @classmethod
    def from_days(cls, days: Sequence[MarketDay], *, bin_s: float = 300.0) -> VolumeCurve:
        """Average over ``days`` of each day's traded volume (visible and hidden) per bin, each day
        normalised to sum to one.

        The curve spans the first day's :attr:`MarketDay.session_s` from :attr:`MarketDay.start_ns` (the
        regular session for a full equity day, the capture itself for a few minutes of crypto); bins are
        shortened to a tenth of a span shorter than ten bins.  Where some bins saw no trade at all (a few seconds
        of a thin market) every bin gets half a median print, so that no interval is expected to trade nothing.
        """
        if not days:
            raise InfeasibleScheduleError("need at least one market day to estimate a volume curve")
        span = float(days[0].session_s)
        if span <= 0:
            raise InfeasibleScheduleError(f"{days[0].label}: the data span no time")
        bin_s = min(bin_s, span / 10.0) if span < 10 * bin_s else bin_s
        grid = np.arange(0.0, span + bin_s / 2, bin_s, dtype=np.float64)
        edges: F64 = np.append(grid[grid < span], span).astype(np.float64)
        profiles = []
        for day in days:
            tr = day.trades
            t = (tr.ts_ns - day.start_ns) / 1e9
            vol, _ = np.histogram(np.clip(t, 0, span - 1e-9), bins=edges, weights=tr.size)
            if vol.sum() > 0 and (vol == 0).any():  # sparse data: half a median print in every bin (Laplace)
                vol = vol + 0.5 * float(np.median(tr.size))
            if vol.sum() <= 0:
                raise InfeasibleScheduleError(f"{day.symbol} {day.date}: no executions to estimate volume from")
            profiles.append(vol / vol.sum())
        f = np.mean(profiles, axis=0)
        return cls(edges, f / f.sum(), len(days), tuple(f"{d.symbol} {d.date}" for d in days))

    def cumulative(self, t_s: F64 | float) -> F64:
        """Expected fraction of one day's volume traded from the open to ``t_s`` (linear within a bin,
        adding one per full session past the close)."""
        t = np.asarray(t_s, float)
        if np.any(t < 0) or not np.all(np.isfinite(t)):
            raise InfeasibleScheduleError("times on the volume curve must be finite and >= 0 s since the open")
        days, rem = np.divmod(t, self.session_s)
        cum: F64 = self._cum  # type: ignore[attr-defined]
        return np.asarray(days + np.interp(rem, self.edges_s, cum), dtype=np.float64)

    def expected_volume(self, times_s: F64, daily_volume: float) -> F64:
        """Expected market volume in each interval between consecutive ``times_s``."""
        return np.diff(self.cumulative(times_s)) * float(daily_volume)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "edges_s": self.edges_s.tolist(),
            "fractions": self.fractions.tolist(),
            "n_days": self.n_days,
            "sources": list(self.sources),
        }


def _grid(start_s: float, horizon_s: float, step_s: float) -> F64:
    if not (math.isfinite(horizon_s) and math.isfinite(step_s) and step_s > 0):
        raise InfeasibleScheduleError(f"'horizon_s' and 'step_s' must be finite, step > 0; got {horizon_s}, {step_s}")
    if horizon_s < step_s:
        raise InfeasibleScheduleError(
            f"the horizon ({horizon_s:g} s) is shorter than one step ({step_s:g} s): give a longer horizon or a "
            "shorter step"
        )
    if not (math.isfinite(start_s) and start_s >= 0):
        raise InfeasibleScheduleError(f"'start_s' must be >= 0 s since the open, got {start_s!r}")
    n = max(1, round(horizon_s / step_s))
    return np.asarray(start_s + np.linspace(0.0, horizon_s, n + 1), dtype=np.float64)


def _check_quantity(quantity: float) -> None:
    if not (math.isfinite(quantity) and quantity > 0):
        raise InfeasibleScheduleError(f"'quantity' must be > 0 shares, got {quantity!r}")


def twap(
    quantity: float,
    horizon_s: float,
    *,
    step_s: float = 60.0,
    start_s: float = 0.0,
    side: int = 1,
    curve: VolumeCurve | None = None,
    daily_volume: float | None = None,
) -> Schedule:
    """Equal trades in equal steps over ``horizon_s`` from ``start_s`` (seconds since the open); with a
    volume ``curve`` and ``daily_volume`` the schedule carries its participation."""
    _check_quantity(quantity)
    t = _grid(start_s, horizon_s, step_s)
    n = np.full(t.size - 1, quantity / (t.size - 1))
    vol = curve.expected_volume(t, daily_volume) if curve is not None and daily_volume else None
    return Schedule.from_trades(t, n, side=side, strategy="twap", params={"step_s": step_s}, expected_volume=vol)


def vwap(
    quantity: float,
    horizon_s: float,
    *,
    curve: VolumeCurve,
    daily_volume: float,
    step_s: float = 60.0,
    start_s: float = 0.0,
    side: int = 1,
) -> Schedule:
    """Trades in proportion to the expected market volume in each step (constant participation)."""
    _check_quantity(quantity)
    if not (math.isfinite(daily_volume) and daily_volume > 0):
        raise InfeasibleScheduleError(f"'daily_volume' must be > 0 shares, got {daily_volume!r}")
    t = _grid(start_s, horizon_s, step_s)
    vol = curve.expected_volume(t, daily_volume)
    if vol.sum() <= 0:
        raise InfeasibleScheduleError("the volume curve expects no volume over this horizon")
    n = quantity * vol / vol.sum()
    return Schedule.from_trades(
        t,
        n,
        side=side,
        strategy="vwap",
        params={"step_s": step_s, "participation": quantity / vol.sum()},
        expected_volume=vol,
    )


def pov(
    quantity: float,
    rate: float,
    *,
    curve: VolumeCurve,
    daily_volume: float,
    step_s: float = 60.0,
    start_s: float = 0.0,
    max_horizon_s: float | None = None,
    side: int = 1,
) -> Schedule:
    """Trade a fixed fraction ``rate`` of the expected market volume until done.

    The horizon is what it takes; ``max_horizon_s`` (default: to the close) bounds it, and a rate too low
    to finish within it is an :class:`InfeasibleScheduleError` that says how much would be left.
    """
    _check_quantity(quantity)
    if not (0 < rate <= 1):
        raise InfeasibleScheduleError(f"participation 'rate' must be in (0, 1], got {rate!r}")
    limit = curve.session_s - start_s if max_horizon_s is None else float(max_horizon_s)
    if limit <= 0:
        raise InfeasibleScheduleError(f"no time left to trade: start {start_s:g} s, limit {limit:g} s")
    t = _grid(start_s, limit, step_s)
    vol = curve.expected_volume(t, daily_volume)
    cap = rate * vol
    done = np.cumsum(cap)
    if done[-1] < quantity * (1 - 1e-12):
        raise InfeasibleScheduleError(
            f"participation cap too low to finish: {rate:.2%} of the {vol.sum():,.0f} shares expected in "
            f"{limit:g} s is {done[-1]:,.0f} < {quantity:,.0f}; raise the rate or the horizon"
        )
    k = int(np.searchsorted(done, quantity * (1 - 1e-12)))
    prior = done[k - 1] if k else 0.0
    frac = (quantity - prior) / cap[k]  # the last step is only partly needed
    end = t[k] + frac * (t[k + 1] - t[k])
    times = np.append(t[: k + 1], end)
    n = np.append(cap[:k], quantity - prior)
    v_last = curve.expected_volume(times[-2:], daily_volume)
    return Schedule.from_trades(
        times,
        n,
        side=side,
        strategy="pov",
        params={"rate": rate, "step_s": step_s},
        expected_volume=np.append(vol[:k], v_last),
    )
