"""Microstructure features: book state, order-flow imbalance, trades, bars, ADV and volatility."""

from impactlab.features.bars import time_bars
from impactlab.features.blocks import BLOCK_FEATURES
from impactlab.features.book import book_features, lobster_l1_features, ofi_events
from impactlab.features.daily import DailyBars, DailyStats, find_daily
from impactlab.features.pipeline import FeatureSet, binance_features, lobster_features
from impactlab.features.trades import adverse_selection_bps, binance_trades, lobster_trades

__all__ = [
    "BLOCK_FEATURES",
    "DailyBars",
    "DailyStats",
    "FeatureSet",
    "adverse_selection_bps",
    "binance_features",
    "binance_trades",
    "book_features",
    "find_daily",
    "lobster_features",
    "lobster_l1_features",
    "lobster_trades",
    "ofi_events",
    "time_bars",
]
