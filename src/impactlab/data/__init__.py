"""Data layer: schemas, loaders with validation and quarantine, and the embedded store."""

from impactlab.data.binance import BinanceCapture, DepthEvents, DepthSnapshot, load_binance
from impactlab.data.lobster import LobsterDay, find_lobster_pairs, load_lobster, parse_lobster_name
from impactlab.data.schemas import ChildOrder, Fill, LobsterEventType, OrderType, ParentOrder, Side
from impactlab.data.store import Store, read_parquet, write_parquet
from impactlab.data.tabular import TableLoad, load_fills, load_parent_orders, load_quotes, load_trades
from impactlab.data.validation import LoadReport, Quarantine

__all__ = [
    "BinanceCapture",
    "ChildOrder",
    "DepthEvents",
    "DepthSnapshot",
    "Fill",
    "LoadReport",
    "LobsterDay",
    "LobsterEventType",
    "OrderType",
    "ParentOrder",
    "Quarantine",
    "Side",
    "Store",
    "TableLoad",
    "find_lobster_pairs",
    "load_binance",
    "load_fills",
    "load_lobster",
    "load_parent_orders",
    "load_quotes",
    "load_trades",
    "parse_lobster_name",
    "read_parquet",
    "write_parquet",
]
