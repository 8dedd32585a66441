"""Calibration: datasets, walk-forward validation, metrics and model comparison."""

from impactlab.calibration.datasets import TRADING_DAY_NS, bar_flows, order_outcomes, outcomes_from_store
from impactlab.calibration.validation import compare_models, evaluate, metrics, walk_forward_splits

__all__ = [
    "TRADING_DAY_NS",
    "bar_flows",
    "compare_models",
    "evaluate",
    "metrics",
    "order_outcomes",
    "outcomes_from_store",
    "walk_forward_splits",
]
