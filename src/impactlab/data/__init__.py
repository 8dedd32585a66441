"""Data layer: the one market-data model, its loaders (every source), validation with quarantine, the store."""

from impactlab.data.binance import BinanceCapture, DepthEvents, DepthSnapshot, load_binance, read_binance
from impactlab.data.catalog import Catalog, CatalogEntry, catalog, load_files, load_market, scan
from impactlab.data.databento import load_databento, read_definitions
from impactlab.data.generic import load_generic
from impactlab.data.lobster import find_lobster_pairs, load_lobster, parse_lobster_name
from impactlab.data.market import (
    BookStates,
    EventFlag,
    EventKind,
    Events,
    InstrumentSpec,
    MarketDay,
    SessionCalendar,
    Trades,
)
from impactlab.data.schemas import ChildOrder, Fill, LobsterEventType, OrderType, ParentOrder, Side
from impactlab.data.store import Store, read_parquet, write_parquet
from impactlab.data.tabular import TableLoad, load_fills, load_parent_orders, load_quotes, load_trades
from impactlab.data.taq import lee_ready, load_taq, taq_days
from impactlab.data.validation import LoadReport, Quarantine

__all__ = [
    "BinanceCapture",
    "BookStates",
    "Catalog",
    "CatalogEntry",
    "ChildOrder",
    "DepthEvents",
    "DepthSnapshot",
    "EventFlag",
    "EventKind",
    "Events",
    "Fill",
    "InstrumentSpec",
    "LoadReport",
    "LobsterEventType",
    "MarketDay",
    "OrderType",
    "ParentOrder",
    "Quarantine",
    "SessionCalendar",
    "Side",
    "Store",
    "TableLoad",
    "Trades",
    "catalog",
    "find_lobster_pairs",
    "lee_ready",
    "load_binance",
    "load_databento",
    "load_files",
    "load_fills",
    "load_generic",
    "load_lobster",
    "load_market",
    "load_parent_orders",
    "load_quotes",
    "load_taq",
    "load_trades",
    "parse_lobster_name",
    "read_binance",
    "read_definitions",
    "read_parquet",
    "scan",
    "taq_days",
    "write_parquet",
]
