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
from impactlab.calibration.regimes import RegimeDetector, fit_by_regime, lobster_regimes, plot_regime_timeline
from impactlab.calibration.resilience import (
    BookResilience,
    calibrate_ow_book,
    fit_book_resilience,
    lobster_depth_profile,
    lobster_resilience_events,
)
from impactlab.calibration.runner import MODELS, DataSource, calibrate, load_source
from impactlab.calibration.validation import compare_models, evaluate, metrics, walk_forward_splits

__all__ = [
    "MODELS",
    "TRADING_DAY_NS",
    "BookResilience",
    "DataSource",
    "RegimeDetector",
    "bar_flows",
    "calibrate",
    "calibrate_ow_book",
    "compare_models",
    "evaluate",
    "fit_book_resilience",
    "fit_by_regime",
    "load_source",
    "lobster_depth_profile",
    "lobster_impact_events",
    "lobster_regimes",
    "lobster_resilience_events",
    "lobster_trade_series",
    "metrics",
    "order_outcomes",
    "outcomes_from_store",
    "plot_regime_timeline",
    "trade_series",
    "walk_forward_splits",
]
