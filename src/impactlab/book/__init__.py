"""Order books: reconstruction from messages (compiled kernels), top-of-book state, walk-the-book cost."""

from impactlab.book.binance import BinanceBook, rebuild_binance
from impactlab.book.cost import WalkResult, walk_the_book
from impactlab.book.lobster import ReplayReport, replay_lobster

__all__ = ["BinanceBook", "ReplayReport", "WalkResult", "rebuild_binance", "replay_lobster", "walk_the_book"]
