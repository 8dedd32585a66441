"""Walk-the-book cost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from impactlab.book.cost import walk_the_book
from impactlab.errors import InsufficientDepthError

BOOK = {
    "ask_price": [10.01, 10.02, 10.05],
    "ask_size": [100, 200, 300],
    "bid_price": [9.99, 9.98, np.nan],
    "bid_size": [50, 150, 0],
}


def test_hand_computed_buy() -> None:
    r = walk_the_book(250, 1, **BOOK)
    avg = (100 * 10.01 + 150 * 10.02) / 250
    assert r.avg_price == pytest.approx(avg) and r.levels_consumed == 2 and r.worst_price == 10.02
    assert r.cost_bps == pytest.approx((avg - 10.0) / 10.0 * 1e4) and r.complete


def test_depth_runs_out() -> None:
    with pytest.raises(InsufficientDepthError, match="exceeds the visible depth of 200"):
        walk_the_book(300, -1, **BOOK)
    r = walk_the_book(300, -1, **BOOK, allow_partial=True)
    assert not r.complete and r.filled == 200 and r.avg_price == pytest.approx((50 * 9.99 + 150 * 9.98) / 200)
    assert r.cost_bps > 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'quantity'"):
        walk_the_book(0, 1, **BOOK)
    with pytest.raises(ValueError, match="'side'"):
        walk_the_book(1, 2, **BOOK)


levels = st.lists(st.tuples(st.integers(1, 50), st.integers(1, 1000)), min_size=1, max_size=8)


@given(asks=levels, bids=levels, qty=st.integers(1, 5000), scale=st.floats(0.01, 1000))
def test_mirror_symmetry_and_scale_invariance(asks, bids, qty, scale) -> None:  # type: ignore[no-untyped-def]
    mid = 1000.0
    a_px = mid + 0.5 + np.cumsum([a[0] for a in asks]) * 0.01
    b_px = mid - 0.5 - np.cumsum([b[0] for b in bids]) * 0.01
    a_sz = [a[1] for a in asks]
    b_sz = [b[1] for b in bids]
    buy = walk_the_book(qty, 1, ask_price=a_px, ask_size=a_sz, bid_price=b_px, bid_size=b_sz, allow_partial=True)
    # the mirror book: asks become bids reflected through the book's mid
    m = 0.5 * (a_px[0] + b_px[0])
    sell = walk_the_book(
        qty, -1, ask_price=2 * m - b_px, ask_size=b_sz, bid_price=2 * m - a_px, bid_size=a_sz, allow_partial=True
    )
    assert buy.cost_bps == pytest.approx(sell.cost_bps, rel=1e-9, abs=1e-9)
    scaled = walk_the_book(
        qty, 1, ask_price=a_px * scale, ask_size=a_sz, bid_price=b_px * scale, bid_size=b_sz, allow_partial=True
    )
    assert scaled.cost_bps == pytest.approx(buy.cost_bps, rel=1e-9, abs=1e-9)
    assert buy.cost_bps > 0 and buy.filled == min(qty, sum(a_sz))
