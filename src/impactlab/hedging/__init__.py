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
from impactlab.hedging.model import (
    CostProfile,
    HedgeCostModel,
    ModelRegistry,
    Recalibration,
    cost_profile,
    gamma_risk_usd2,
    recalibrate,
)

__all__ = [
    "BookGreeks",
    "CircuitBreaker",
    "CostProfile",
    "HedgeCostModel",
    "HedgeDecision",
    "HedgeOutcome",
    "HedgingConfig",
    "HedgingEngine",
    "MarketUpdate",
    "ModelRegistry",
    "OptionPosition",
    "Portfolio",
    "Recalibration",
    "black_scholes",
    "book_greeks",
    "cost_profile",
    "gamma_risk_usd2",
    "parse_market",
    "parse_position",
    "recalibrate",
]
