"""Named, swappable latency and fee models (the hftbacktest pattern), and the events a venue reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np

from impactlab.errors import SimulationError

__all__ = [
    "ConstantLatency",
    "FeeModel",
    "LatencyModel",
    "LognormalLatency",
    "OrderEvent",
]


def _check(name: str, value: float, *, low: float = 0.0, strict: bool = False) -> float:
    v = float(value)
    if not np.isfinite(v) or (v <= low if strict else v < low):
        raise SimulationError(f"{name!r} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return v


class LatencyModel(Protocol):
    """A latency model: nanoseconds for one crossing, drawn from the venue's seeded generator."""

    name: str

    def sample_ns(self, rng: np.random.Generator) -> int:
        """One latency, ns."""
        ...


@dataclass(frozen=True)
class ConstantLatency:
    """The same latency every time.

    Parameters
    ----------
    latency_ns
        Nanoseconds, >= 0.
    """

    latency_ns: int = 0
    name: str = "constant"

    def __post_init__(self) -> None:
        _check("latency_ns", self.latency_ns)

    def sample_ns(self, rng: np.random.Generator) -> int:
        return int(self.latency_ns)


@dataclass(frozen=True)
class LognormalLatency:
    """Lognormal latency with the given median and log-scale spread, floored at ``floor_ns``.

    Parameters
    ----------
    median_ns
        Median latency, ns (> 0).
    sigma
        Standard deviation of the log latency (>= 0).
    floor_ns
        Minimum latency, ns.
    """

    median_ns: int
    sigma: float = 0.5
    floor_ns: int = 0
    name: str = "lognormal"

    def __post_init__(self) -> None:
        _check("median_ns", self.median_ns, strict=True)
        _check("sigma", self.sigma)
        _check("floor_ns", self.floor_ns)

    def sample_ns(self, rng: np.random.Generator) -> int:
        return max(int(self.floor_ns), int(self.median_ns * np.exp(self.sigma * rng.standard_normal())))


@dataclass(frozen=True)
class FeeModel:
    """Fees in basis points of notional: positive is paid, negative is a rebate.

    Parameters
    ----------
    maker_bps
        Charged on fills of resting orders (negative: a rebate).
    taker_bps
        Charged on fills of orders that take liquidity.
    """

    maker_bps: float = 0.0
    taker_bps: float = 0.0
    name: str = "bps"

    def __post_init__(self) -> None:
        for f in ("maker_bps", "taker_bps"):
            v = float(getattr(self, f))
            if not np.isfinite(v) or abs(v) > 1000:
                raise SimulationError(f"{f!r} must be a finite number of bps within ±1000, got {v!r}")

    def fee(self, price: float, quantity: float, maker: bool) -> float:
        """Fee in currency for one fill."""
        return price * quantity * (self.maker_bps if maker else self.taker_bps) * 1e-4


@dataclass(frozen=True)
class OrderEvent:
    """One thing a venue tells the trader about an order.

    ``kind`` is ``accepted``, ``rejected`` (``reason`` says why), ``fill``, ``cancelled`` (``reason``:
    requested, IOC remainder, no liquidity, off the book) or ``done`` (filled in full).  ``price`` and
    ``quantity`` are the fill's for a fill, else the order's (or what was left).  Every event carries the
    exchange time and the time the trader receives it.
    """

    kind: Literal["accepted", "rejected", "fill", "cancelled", "done"]
    order_id: int
    side: int
    price: float
    quantity: float
    exchange_ns: int
    local_ns: int
    fee: float = 0.0
    liquidity: Literal["maker", "taker", ""] = ""
    reason: str = ""
