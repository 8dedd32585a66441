"""Calibration: datasets, walk-forward validation, metrics and model comparison."""

from impactlab.calibration.datasets import (
    TRADING_DAY_NS,
    bar_flows,
    lobster_trade_series,
    order_outcomes,
    outcomes_from_store,
    trade_series,
)
from impactlab.calibration.validation import compare_models, evaluate, metrics, walk_forward_splits

__all__ = [
    "TRADING_DAY_NS",
    "bar_flows",
    "compare_models",
    "evaluate",
    "lobster_trade_series",
    "metrics",
    "order_outcomes",
    "outcomes_from_store",
    "trade_series",
    "walk_forward_splits",
]
