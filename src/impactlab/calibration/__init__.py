"""Calibration: datasets, walk-forward validation, metrics and model comparison."""

from impactlab.calibration.datasets import (
    TRADING_DAY_NS,
    bar_flows,
    lobster_impact_events,
    lobster_trade_series,
    order_outcomes,
    outcomes_from_store,
    trade_series,
)
from impactlab.calibration.runner import MODELS, DataSource, calibrate, load_source
from impactlab.calibration.validation import compare_models, evaluate, metrics, walk_forward_splits

__all__ = [
    "MODELS",
    "TRADING_DAY_NS",
    "DataSource",
    "bar_flows",
    "calibrate",
    "compare_models",
    "evaluate",
    "load_source",
    "lobster_impact_events",
    "lobster_trade_series",
    "metrics",
    "order_outcomes",
    "outcomes_from_store",
    "trade_series",
    "walk_forward_splits",
]
