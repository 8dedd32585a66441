"""Calibration: datasets, walk-forward validation, metrics and model comparison."""

from impactlab.calibration.costmodel import InstrumentModel, ModelVersions, accuracy, calibrate_instrument
from impactlab.calibration.datasets import (
    TRADING_DAY_NS,
    bar_flows,
    large_order_events,
    market_trade_series,
    order_outcomes,
    outcomes_from_store,
    trade_series,
)
from impactlab.calibration.regimes import RegimeDetector, fit_by_regime, market_regimes, plot_regime_timeline
from impactlab.calibration.resilience import (
    BookResilience,
    calibrate_ow_book,
    depth_profile,
    fit_book_resilience,
    resilience_events,
)
from impactlab.calibration.runner import MODELS, DataSource, calibrate, day_source, load_source
from impactlab.calibration.validation import compare_models, evaluate, metrics, walk_forward_splits

__all__ = [
    "MODELS",
    "TRADING_DAY_NS",
    "BookResilience",
    "DataSource",
    "InstrumentModel",
    "ModelVersions",
    "RegimeDetector",
    "accuracy",
    "bar_flows",
    "calibrate",
    "calibrate_instrument",
    "calibrate_ow_book",
    "compare_models",
    "day_source",
    "depth_profile",
    "evaluate",
    "fit_book_resilience",
    "fit_by_regime",
    "large_order_events",
    "load_source",
    "market_regimes",
    "market_trade_series",
    "metrics",
    "order_outcomes",
    "outcomes_from_store",
    "plot_regime_timeline",
    "resilience_events",
    "trade_series",
    "walk_forward_splits",
]
