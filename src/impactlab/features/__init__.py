"""Microstructure features: book state, order-flow imbalance, trades, bars, ADV and volatility."""

from impactlab.features.bars import time_bars
from impactlab.features.blocks import BLOCK_FEATURES
from impactlab.features.book import book_features, l1_features, ofi_events
from impactlab.features.daily import DailyBars, DailyStats, find_daily
from impactlab.features.pipeline import FeatureSet, market_features
from impactlab.features.trades import adverse_selection_bps, pre_trade_state, trade_state

__all__ = [
    "BLOCK_FEATURES",
    "DailyBars",
    "DailyStats",
    "FeatureSet",
    "adverse_selection_bps",
    "book_features",
    "find_daily",
    "l1_features",
    "market_features",
    "ofi_events",
    "pre_trade_state",
    "time_bars",
    "trade_state",
]
