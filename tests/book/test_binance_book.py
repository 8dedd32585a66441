"""Binance book rebuild: exact against book tickers, gaps unsync the book, twin parity."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from impactlab.data._binance_book import KIND_REPLAYED, KIND_SNAPSHOT, rebuild_binance
from impactlab.data.binance import read_binance as load_binance

PAIRS = [
    ("spot", "btcusdt_20240808", "btcusdt_20240809"),
    ("usdm", "btcusdt_20240718", "btcusdt_20240719"),
    ("usdm", "ethusdt_20240718", "ethusdt_20240719"),
]


@pytest.mark.parametrize(("market", "first", "second"), PAIRS)
def test_snapshot_plus_diffs_matches_every_comparable_ticker(data: Path, market: str, first: str, second: str) -> None:
    cap = load_binance([data / "binance" / market / f"{first}.gz", data / "binance" / market / f"{second}.gz"])
    book = rebuild_binance(cap)
    ck = book.checks
    assert ck["snapshots_applied"] == 1 and ck["sequence_gaps"] == 0
    assert ck["tickers_compared_synced"] > 100
    assert ck["tickers_agree_synced"] == ck["tickers_compared_synced"]
    assert ck["tickers_agree"] == ck["tickers_compared"]
    # after the snapshot the book stays synchronised to the end
    first_snap = int(np.flatnonzero(book.kind == KIND_SNAPSHOT)[0])
    assert book.synced[first_snap:].all() and not book.synced[:first_snap].any()
    assert (book.kind == KIND_REPLAYED).sum() >= 1
    ok = np.isfinite(book.bid_price[:, 0]) & np.isfinite(book.ask_price[:, 0])
    assert np.all(book.bid_price[ok & book.synced, 0] < book.ask_price[ok & book.synced, 0])
    assert np.all(np.diff(book.bid_price[ok, :3], axis=1)[np.isfinite(book.bid_price[ok, 1:3])] < 0)


def test_diffs_alone(data: Path) -> None:
    cap = load_binance(data / "binance/usdm/btcusdt_20240719.gz")
    book = rebuild_binance(cap)
    assert book.checks["snapshots_applied"] == 0 and not book.synced.any()
    assert book.checks["tickers_compared"] > 100
    assert book.checks["tickers_agree"] >= 0.95 * book.checks["tickers_compared"]


def test_missing_diff_unsyncs_the_book(data: Path, tmp_path: Path) -> None:
    raw = gzip.decompress((data / "binance/spot/btcusdt_20240808.gz").read_bytes()).splitlines()
    depth = [i for i, ln in enumerate(raw) if b"@depth" in ln]
    del raw[depth[500]]
    p = tmp_path / "gap.txt"
    p.write_bytes(b"\n".join(raw) + b"\n")
    book = rebuild_binance(load_binance(p))
    assert book.checks["sequence_gaps"] == 1
    first_unsynced = int(np.flatnonzero(~book.synced & (np.arange(len(book)) > 10))[0])
    assert not book.synced[first_unsynced:].any()


def test_compiled_and_python_twin_agree(data: Path, tmp_path: Path) -> None:
    raw = gzip.decompress((data / "binance/usdm/btcusdt_20240718.gz").read_bytes()).splitlines()[:3000]
    p = tmp_path / "part.txt"
    p.write_bytes(b"\n".join(raw) + b"\n")
    cap = load_binance(p)
    a = rebuild_binance(cap, depth=5)
    b = rebuild_binance(cap, depth=5, compiled=False)
    for name in ("bid_price", "bid_size", "ask_price", "ask_size"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True)
    assert a.checks["unknown_level_deletions"] == b.checks["unknown_level_deletions"]
