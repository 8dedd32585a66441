"""Book replay and L1 features on GOOG level 10, against plain Python and lobster-reconstructor."""

from __future__ import annotations

import resource

import numpy as np
import pandas as pd

from benchmarks._common import DATA, Section, fmt_rate, peak_traced_mb, timed
from impactlab.book.check import replay_check
from impactlab.data.lobster import load_lobster
from impactlab.features.book import l1_features
from impactlab.testing import reference_replay

STEM = "GOOG_2012-06-21_34200000_57600000"


def _l1_features(day):  # type: ignore[no-untyped-def]
    return l1_features(day)


def _pandas_l1(day):  # type: ignore[no-untyped-def]
    """The same L1 features written the obvious pandas way (the baseline)."""
    b = day.book
    df = pd.DataFrame(
        {"ap": b.ask_price[:, 0], "az": b.ask_size[:, 0], "bp": b.bid_price[:, 0], "bz": b.bid_size[:, 0]}
    )
    out = pd.DataFrame({"mid": (df.ap + df.bp) / 2})
    out["spread_bps"] = (df.ap - df.bp) / out.mid * 1e4
    out["microprice"] = (df.ap * df.bz + df.bp * df.az) / (df.az + df.bz)
    out["imbalance_1"] = (df.bz - df.az) / (df.bz + df.az)
    prev = df.shift(1)
    e = (
        (df.bp >= prev.bp) * df.bz
        - (df.bp <= prev.bp) * prev.bz
        - (df.ap <= prev.ap) * df.az
        + (df.ap >= prev.ap) * prev.az
    )
    out["ofi"] = e.fillna(0.0)
    return out


def run(quick: bool = False) -> Section:
    msg = DATA / "lobster" / f"{STEM}_message_10.csv.gz"
    day = load_lobster(msg)
    n = len(day)
    # check before timing
    rep = replay_check(day)
    assert rep.mismatched_rows == 0, rep
    ours = _l1_features(day)
    base = _pandas_l1(day)
    for col in ("mid", "spread_bps", "microprice", "ofi"):
        assert np.allclose(ours[col], base[col].to_numpy(), equal_nan=True), col
    ref = reference_replay(day)
    assert ref == (rep.mismatched_rows, rep.rows_with_level_from_beyond_depth), ref

    sec = Section(
        title="Book replay and L1 features — GOOG 2012-06-21, level 10 (147,916 messages)",
        command="make bench  (benchmarks/bench_book.py)",
        baseline="a plain-Python dict replay (impactlab.testing.reference_replay) with the same L1 "
        "features in pandas, and lobster-reconstructor 0.1.3 (PyPI), all in the same run on one pinned core",
        columns=["implementation", "what", "median s", "messages/s", "vs ours", "peak traced MB"],
    )
    kernel_only = float(np.median([replay_check(day).seconds for _ in range(9)]))
    both_s, _, _ = timed(lambda: (replay_check(day), _l1_features(day)), repeat=15)
    mem = peak_traced_mb(lambda: (replay_check(day), _l1_features(day)))
    sec.add(
        "impactlab (numba kernel)",
        "replay + check every row, kernel only",
        f"{kernel_only:.4f}",
        fmt_rate(n / kernel_only),
        "1.0×",
        "-",
    )
    sec.add(
        "impactlab (numba kernel)",
        "replay + check + L1 features + OFI",
        f"{both_s:.4f}",
        fmt_rate(n / both_s),
        "1.0×",
        f"{mem:.1f}",
    )
    ref_s, _, _ = timed(lambda: (reference_replay(day), _pandas_l1(day)), repeat=1 if quick else 2, warmup=0)
    ref_mem = peak_traced_mb(lambda: (reference_replay(day), _pandas_l1(day)))
    sec.add(
        "plain Python dicts + pandas",
        "replay + check + L1 features + OFI",
        f"{ref_s:.3f}",
        fmt_rate(n / ref_s),
        f"{ref_s / both_s:,.0f}× slower",
        f"{ref_mem:.1f}",
    )
    twin_s, _, _ = timed(lambda: replay_check(day, compiled=False), repeat=1, warmup=0)
    sec.add(
        "impactlab kernel, plain-Python twin",
        "replay + check",
        f"{twin_s:.3f}",
        fmt_rate(n / twin_s),
        f"{twin_s / kernel_only:,.0f}× slower",
        "-",
    )
    try:
        from lobster_reconstructor import LobsterSim, Orderbook

        def peer() -> object:
            sim = LobsterSim(Orderbook(10, "GOOG", 0.01), str(msg))
            sim.simulate_until(60_000.0)
            return sim.orderbook

        peer_s, _, book = timed(peer, repeat=1, warmup=0)
        sec.add(
            "lobster-reconstructor 0.1.3",
            "replay (order-level book, no check, no features)",
            f"{peer_s:.3f}",
            fmt_rate(n / peer_s),
            f"{peer_s / kernel_only:,.0f}× slower",
            "-",
        )
        sec.notes.append(
            "lobster-reconstructor keeps every order (L3) and reads the CSV itself; its time includes "
            "that parse. Its book is not compared row by row: it cannot know orders resting before "
            "09:30, so its levels differ from LOBSTER's file."
        )
        del book
    except ImportError:
        sec.notes.append("lobster-reconstructor is not installed (pip install -e '.[bench]').")
    sec.notes.append(
        f"Checked before timing: 0 mismatched rows of {n:,}; the dict replay gives the same counts "
        f"({ref[1]:,} rows with a level from beyond depth); L1 features equal pandas' to rounding."
    )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    met = "met" if n / kernel_only >= 1e7 else "NOT met"
    sec.notes.append(
        f"Target ≥ 10 M messages/s for replay: {met}. Replay plus L1 features (one compiled pass each): "
        f"{fmt_rate(n / both_s)} end to end, including the Python around the kernels. "
        f"Process peak RSS {rss_mb:,.0f} MB."
    )
    return sec
