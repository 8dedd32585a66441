"""What the market looks like when the order arrives: the context a calibrated model needs to price it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from impactlab.errors import InfeasibleScheduleError
from impactlab.schedules.volume import VolumeCurve

__all__ = ["MarketContext"]


@dataclass(frozen=True)
class MarketContext:
    """The market an order arrives into.

    Attributes
    ----------
    symbol
        Instrument.
    price
        Arrival mid (currency per share).
    adv
        Average daily volume, shares.
    daily_vol
        Daily volatility of returns (a fraction: 0.015 is 1.5%).
    spread_bps
        Quoted spread at arrival, bps of the mid.
    volume_curve
        Intraday volume profile.
    start_s
        Arrival time, seconds since the open.
    state
        Book and flow features at arrival, by the names machine-learned models read
        (:data:`impactlab.features.blocks.BLOCK_FEATURES`, signed for a buy); empty when not known.
    sources
        Where each input came from.
    """

    symbol: str
    price: float
    adv: float
    daily_vol: float
    spread_bps: float
    volume_curve: VolumeCurve = field(default_factory=VolumeCurve.uniform)
    start_s: float = 0.0
    state: Mapping[str, float] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("price", "adv", "daily_vol"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise InfeasibleScheduleError(f"market '{name}' must be > 0, got {v!r}")
        if not (math.isfinite(self.spread_bps) and self.spread_bps >= 0):
            raise InfeasibleScheduleError(f"market 'spread_bps' must be >= 0, got {self.spread_bps!r}")
        if not (0 <= self.start_s < self.session_s):
            raise InfeasibleScheduleError(
                f"'start_s' must be within the session [0, {self.session_s:g}), got {self.start_s}"
            )
        object.__setattr__(self, "state", MappingProxyType(dict(self.state)))
        object.__setattr__(self, "sources", MappingProxyType(dict(self.sources)))

    @property
    def session_s(self) -> float:
        """Session length, seconds (from the volume curve)."""
        return self.volume_curve.session_s

    @property
    def sigma_bps_per_sqrt_s(self) -> float:
        """Volatility in bps per √second of the session."""
        return self.daily_vol * 1e4 / math.sqrt(self.session_s)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the curve as its source list)."""
        return {
            "symbol": self.symbol,
            "price": self.price,
            "adv": self.adv,
            "daily_vol": self.daily_vol,
            "spread_bps": self.spread_bps,
            "start_s": self.start_s,
            "volume_curve": {"n_days": self.volume_curve.n_days, "sources": list(self.volume_curve.sources)},
            "state": dict(self.state),
            "sources": dict(self.sources),
        }
