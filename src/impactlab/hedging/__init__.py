"""Automated hedging: the options book's greeks, the risk monitor and circuit breaker, the hedging engine
that prices, schedules, executes and journals each hedge, and recalibration of its impact model from its
own fills (see ``docs/hedging.md``)."""

from impactlab.hedging.engine import (
    CircuitBreaker,
    HedgeDecision,
    HedgeOutcome,
    HedgingConfig,
    HedgingEngine,
    MarketUpdate,
    parse_market,
    parse_position,
)
from impactlab.hedging.greeks import BookGreeks, OptionPosition, Portfolio, black_scholes, book_greeks
from impactlab.hedging.model import CostProfile, cost_profile, gamma_risk_usd2, hedge_schedule

__all__ = [
    "BookGreeks",
    "CircuitBreaker",
    "CostProfile",
    "HedgeDecision",
    "HedgeOutcome",
    "HedgingConfig",
    "HedgingEngine",
    "MarketUpdate",
    "OptionPosition",
    "Portfolio",
    "black_scholes",
    "book_greeks",
    "cost_profile",
    "gamma_risk_usd2",
    "hedge_schedule",
    "parse_market",
    "parse_position",
]
