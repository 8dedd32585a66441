"""Black–Scholes greeks of an options book and its position in the underlying.

Prices in currency, times in ns since the epoch (year fraction ``(expiry − now) / YEAR_NS``), volatility
and rate per year.  Delta is in shares of the underlying (``contracts × multiplier × N(d1)``), gamma in
shares per currency unit of the spot.  An option at or past expiry carries no greeks and is reported, not
priced: a hedger must never trade on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from impactlab.errors import HedgingError

__all__ = ["YEAR_NS", "BookGreeks", "OptionPosition", "Portfolio", "black_scholes", "book_greeks"]

F64 = NDArray[np.float64]
YEAR_NS = 365.25 * 86_400 * 1e9
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class OptionPosition:
    """``contracts`` European options (negative: short) on ``underlying``, each on ``multiplier`` shares.

    ``implied_vol`` is the annual implied volatility the desk marks it at (an input, not solved for).
    """

    option_id: str
    underlying: str
    kind: Literal["call", "put"]
    strike: float
    expiry_ns: int
    contracts: float
    implied_vol: float
    multiplier: float = 100.0

    def __post_init__(self) -> None:
        if self.kind not in ("call", "put"):
            raise HedgingError(f"option {self.option_id!r}: 'kind' must be call or put, got {self.kind!r}")
        for name in ("strike", "implied_vol", "multiplier"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise HedgingError(f"option {self.option_id!r}: {name!r} must be finite and > 0, got {v!r}")
        if not (isinstance(self.contracts, (int, float)) and math.isfinite(self.contracts)):
            raise HedgingError(f"option {self.option_id!r}: 'contracts' must be finite, got {self.contracts!r}")


@dataclass
class Portfolio:
    """The options on one underlying and the shares held in it (what the hedges change)."""

    underlying: str
    options: dict[str, OptionPosition] = field(default_factory=dict)
    shares: float = 0.0

    def upsert(self, option: OptionPosition) -> None:
        """Add an option position or replace the one with the same id (zero contracts removes it)."""
        if option.underlying != self.underlying:
            raise HedgingError(
                f"option {option.option_id!r} is on {option.underlying!r}, this book hedges {self.underlying!r}"
            )
        if option.contracts == 0:
            self.options.pop(option.option_id, None)
        else:
            self.options[option.option_id] = option


def black_scholes(
    spot: float, strike: F64, years: F64, vol: F64, rate: float, is_call: NDArray[np.bool_]
) -> tuple[F64, F64, F64]:
    """(price, delta, gamma) per unit of underlying for arrays of European options (no dividends)."""
    sq = vol * np.sqrt(years)
    d1 = (np.log(spot / strike) + (rate + 0.5 * vol**2) * years) / sq
    d2 = d1 - sq
    disc = np.exp(-rate * years)
    call = spot * ndtr(d1) - strike * disc * ndtr(d2)
    price = np.where(is_call, call, call - spot + strike * disc)  # put–call parity
    delta = np.where(is_call, ndtr(d1), ndtr(d1) - 1.0)
    gamma = np.exp(-0.5 * d1**2) * _INV_SQRT_2PI / (spot * sq)
    return price, delta, gamma


@dataclass(frozen=True)
class BookGreeks:
    """The book's value and greeks at one spot and time (shares, shares per currency unit, currency)."""

    ts_ns: int
    spot: float
    option_value: float
    option_delta_shares: float
    gamma_shares_per_unit: float
    shares: float
    expired: tuple[str, ...] = ()

    @property
    def delta_shares(self) -> float:
        """Net delta: the options' plus the shares held."""
        return self.option_delta_shares + self.shares

    @property
    def delta_notional(self) -> float:
        return self.delta_shares * self.spot


def book_greeks(portfolio: Portfolio, spot: float, now_ns: int, *, rate: float = 0.0) -> BookGreeks:
    """The book's greeks at ``spot``; options at or past expiry are left out and named in ``expired``.

    Raises :class:`HedgingError` on a spot that is not finite and positive, or on a greek that comes out
    NaN (a position the monitor must not act on).
    """
    if not (math.isfinite(spot) and spot > 0):
        raise HedgingError(f"spot must be finite and > 0, got {spot!r}")
    live = [o for o in portfolio.options.values() if o.expiry_ns > now_ns]
    expired = tuple(o.option_id for o in portfolio.options.values() if o.expiry_ns <= now_ns)
    if not live:
        return BookGreeks(now_ns, spot, 0.0, 0.0, 0.0, portfolio.shares, expired)
    k = np.array([o.strike for o in live])
    t = np.array([(o.expiry_ns - now_ns) / YEAR_NS for o in live])
    v = np.array([o.implied_vol for o in live])
    is_call = np.array([o.kind == "call" for o in live])
    units = np.array([o.contracts * o.multiplier for o in live])
    price, delta, gamma = black_scholes(spot, k, t, v, rate, is_call)
    value, d, g = float(units @ price), float(units @ delta), float(units @ gamma)
    if not (math.isfinite(value) and math.isfinite(d) and math.isfinite(g)):
        raise HedgingError(f"a greek is not finite at spot {spot}: value {value}, delta {d}, gamma {g}")
    return BookGreeks(now_ns, spot, value, d, g, portfolio.shares, expired)
