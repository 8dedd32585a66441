"""Order books: replay-and-check of order events against recorded states, walk-the-book cost.

The loaders rebuild books into the :class:`~impactlab.data.MarketDay` (price ladder for Binance,
order-by-order for Databento MBO); this package checks and uses them.
"""

from impactlab.book.check import ReplayReport, replay_check
from impactlab.book.cost import WalkResult, walk_the_book

__all__ = ["ReplayReport", "WalkResult", "replay_check", "walk_the_book"]
