"""Property tests of the book kernels (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impactlab.book import _kernels as k
from impactlab.book.check import replay_check
from impactlab.data.lobster import load_lobster
from impactlab.data.market import EventFlag, EventKind
from impactlab.testing import write_synthetic_lobster


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), levels=st.integers(1, 6), n=st.integers(20, 600))
def test_rebuilt_books_are_exact_uncrossed_ordered_and_conserve_quantity(seed: int, levels: int, n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        syn = write_synthetic_lobster(Path(tmp), seed=seed, n_events=n, levels=levels)
        if syn.messages == 0:
            return
        day = load_lobster(syn.message_path)
    assert replay_check(day).mismatched_rows == 0
    assert np.all(np.diff(day.ts_ns) >= 0)  # time ordered
    b = day.book
    real = np.isfinite(b.ask_price[:, 0]) & np.isfinite(b.bid_price[:, 0])
    assert np.all(b.bid_price[real, 0] < b.ask_price[real, 0])  # never crossed
    assert not (b.ask_price > 1e6).any() and not (b.bid_price < 0).any()  # no vendor dummies in the model
    # quantity conserved: an event at a price visible before and after changes that level by its size
    ev = day.events
    hidden = (ev.flags & np.uint8(EventFlag.HIDDEN)) != 0
    sign = {EventKind.ADD: 1, EventKind.CANCEL: -1, EventKind.FILL: -1}
    bid_t, ask_t = b.ticks(day.tick_size)
    for i in range(1, len(day)):
        kind, sd, px, sz = int(ev.kind[i]), int(ev.side[i]), int(ev.price_ticks[i]), float(ev.size[i])
        pt, szs = (bid_t, b.bid_size) if sd == 1 else (ask_t, b.ask_size)
        before = {int(pt[i - 1, j]): float(szs[i - 1, j]) for j in range(levels) if szs[i - 1, j] > 0}
        after = {int(pt[i, j]): float(szs[i, j]) for j in range(levels) if szs[i, j] > 0}
        if hidden[i]:
            assert np.array_equal(b.bid_size[i - 1], b.bid_size[i]) and np.array_equal(b.ask_size[i - 1], b.ask_size[i])
        elif kind in sign and px in before and px in after:
            assert after[px] - before[px] == sign[EventKind(kind)] * sz


ops = st.lists(
    st.tuples(st.sampled_from([1, -1]), st.integers(0, 30), st.sampled_from([0.0, 0.5, 1.0, 2.5])),
    min_size=1,
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, depth=st.integers(1, 5))
def test_ladder_matches_a_dict_book(ops: list[tuple[int, int, float]], depth: int) -> None:
    n_rank = 31
    side = np.array([o[0] for o in ops], np.int8)
    rank = np.array([o[1] for o in ops], np.int64)
    qty = np.array([o[2] for o in ops], np.float64)
    n_ev = len(ops)
    clear = np.zeros(n_ev, bool)
    start = np.arange(n_ev, dtype=np.int64)
    stop = start + 1
    res = {}
    for name, fn in (("jit", k.ladder_replay), ("py", k.ladder_replay_py)):
        q = np.zeros((2, n_rank))
        top_r = np.zeros((n_ev, 2 * depth), np.int64)
        top_q = np.zeros((n_ev, 2 * depth))
        unknown = fn(
            clear, start, stop, side, rank, qty, q, np.array([-1, n_rank]), np.zeros(2, np.int64), depth, top_r, top_q
        )
        res[name] = (unknown, top_r, top_q)
    assert res["jit"][0] == res["py"][0]
    assert np.array_equal(res["jit"][1], res["py"][1]) and np.array_equal(res["jit"][2], res["py"][2])
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    for e, (s, r, q_) in enumerate(ops):
        d = bids if s == 1 else asks
        if q_ == 0.0:
            d.pop(r, None)
        else:
            d[r] = q_
        want_b = sorted(bids.items(), reverse=True)[:depth]
        want_a = sorted(asks.items())[:depth]
        got_b = [(int(res["jit"][1][e, j]), res["jit"][2][e, j]) for j in range(depth) if res["jit"][1][e, j] >= 0]
        got_a = [
            (int(res["jit"][1][e, depth + j]), res["jit"][2][e, depth + j])
            for j in range(depth)
            if res["jit"][1][e, depth + j] >= 0
        ]
        assert got_b == want_b and got_a == want_a
