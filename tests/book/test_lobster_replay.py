"""LOBSTER book reconstruction: zero mismatches on real data, faults detected, twin and reference agree."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from impactlab.book import _kernels as k
from impactlab.book.check import initial_state, replay_check
from impactlab.data.lobster import load_lobster
from impactlab.data.market import EventKind
from impactlab.testing import reference_replay, write_synthetic_lobster
from tests.conftest import AAPL_MSG, lobster_pairs, lobster_path


@pytest.mark.parametrize(("symbol", "levels"), lobster_pairs())
def test_every_shared_pair_rebuilds_with_zero_mismatches(data: Path, symbol: str, levels: int) -> None:
    day = load_lobster(lobster_path(data, symbol, levels))
    rep = replay_check(day)
    assert rep.rows == len(day)
    assert rep.mismatched_rows == 0 and rep.unmatched_messages == 0
    # levels do enter from beyond the depth on a real day; the file is the only source for them
    assert 0 < rep.rows_with_level_from_beyond_depth < rep.rows


def test_reference_and_twin_agree_on_real_fixture(data: Path) -> None:
    day = load_lobster(data / AAPL_MSG)
    fast = replay_check(day)
    slow = replay_check(day, compiled=False)
    ref = reference_replay(day)
    assert (
        (fast.mismatched_rows, fast.rows_with_level_from_beyond_depth)
        == ref
        == (slow.mismatched_rows, slow.rows_with_level_from_beyond_depth)
    )
    assert ref[1] > 0


@pytest.mark.parametrize("seed", range(6))
def test_synthetic_days_rebuild_exactly(tmp_path: Path, seed: int) -> None:
    syn = write_synthetic_lobster(tmp_path, seed=seed, n_events=1500, levels=1 + seed % 4)
    day = load_lobster(syn.message_path)
    rep = replay_check(day)
    assert rep.mismatched_rows == 0
    assert (rep.mismatched_rows, rep.rows_with_level_from_beyond_depth) == reference_replay(day)


def test_a_wrong_message_is_caught_at_its_line(data: Path) -> None:
    day = load_lobster(data / AAPL_MSG)
    size = day.events.size.copy()
    i = int(np.flatnonzero(day.events.kind == EventKind.ADD)[100])
    size[i] += 1  # one share more than the book file shows
    bad = dataclasses.replace(day, events=dataclasses.replace(day.events, size=size))
    rep = replay_check(bad)
    assert rep.mismatched_rows >= 1 and rep.first_mismatches[0] == day.events.line[i]
    assert reference_replay(bad)[0] == rep.mismatched_rows


def test_a_wrong_book_row_is_caught_and_does_not_cascade(data: Path) -> None:
    day = load_lobster(data / AAPL_MSG)
    ask_size = day.book.ask_size.copy()
    ask_size[500, 0] += 7  # ask size at level 1 on row 500
    rep = replay_check(dataclasses.replace(day, book=dataclasses.replace(day.book, ask_size=ask_size)))
    # row 500 disagrees with the messages, and so does row 501 (which the file shows without the 7)
    assert rep.mismatched_rows == 2 and rep.first_mismatches == [501, 502]


def test_initial_state_undoes_the_first_message(data: Path) -> None:
    day = load_lobster(data / AAPL_MSG)
    s = initial_state(day)
    # message 0 submits 18 shares at 585.33 on the bid; before it, that level did not exist
    assert day.events.kind[0] == EventKind.ADD and day.book.bid_price[0, 0] == day.events.price[0] == 585.33
    assert s[2] != day.events.price_ticks[0] == 58533  # the state is in integer ticks


def test_kernel_helpers_parity_on_random_sequences() -> None:
    rng = np.random.default_rng(0)
    levels = 4
    for _ in range(50):
        a = np.array([101, 5, 99, 5, 102, 5, 98, 5, 103, 5, 97, 5, 104, 5, 96, 5], dtype=np.int64)
        b = a.copy()
        for _ in range(40):
            side = int(rng.choice([1, -1]))
            price = int(rng.integers(94, 108))
            qty = int(rng.integers(1, 8))
            et = int(rng.choice([1, 2, 3, 4, 5]))
            assert k.lob_apply(a, levels, et, side, price, qty) == k.lob_apply_py(b, levels, et, side, price, qty)
            assert np.array_equal(a, b)
