"""Transaction cost analysis: implementation shortfall decomposed into delay, temporary and permanent
impact (from post-trade reversion), timing and opportunity cost plus fees; benchmarks against arrival,
interval VWAP and close; reports; realised against predicted cost stored for recalibration."""

from impactlab.tca.market import MarketPath, RecordedPath
from impactlab.tca.report import record_tca, tca_html, tca_json, tca_table
from impactlab.tca.shortfall import TCAResult, aggregate, analyse

__all__ = [
    "MarketPath",
    "RecordedPath",
    "TCAResult",
    "aggregate",
    "analyse",
    "record_tca",
    "tca_html",
    "tca_json",
    "tca_table",
]
