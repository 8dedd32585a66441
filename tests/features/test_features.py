"""Book features, OFI, bars, ADV and the adverse-selection proxy."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from impactlab.data.lobster import load_lobster
from impactlab.data.market import EventKind
from impactlab.features import DailyBars, book_features, find_daily, market_features, ofi_events, time_bars
from impactlab.features.trades import adverse_selection_bps, state_at
from tests.conftest import AAPL_MSG, lobster_path

nan = np.nan


def test_book_features_by_hand() -> None:
    bp = np.array([[9.99, 9.98], [nan, nan]])
    bz = np.array([[300.0, 100.0], [0.0, 0.0]])
    ap = np.array([[10.01, 10.02], [10.01, nan]])
    az = np.array([[100.0, 200.0], [100.0, 0.0]])
    f = book_features(bp, bz, ap, az, tick_size=0.01, depth_levels=2)
    assert f["mid"][0] == pytest.approx(10.0) and np.isnan(f["mid"][1])
    assert f["microprice"][0] == pytest.approx((10.01 * 300 + 9.99 * 100) / 400)
    assert f["spread_ticks"][0] == pytest.approx(2.0) and f["spread_bps"][0] == pytest.approx(20.0)
    assert f["bid_depth_2"][0] == 400 and f["ask_depth_2"][0] == 300
    assert f["imbalance_1"][0] == pytest.approx(0.5) and f["imbalance_2"][0] == pytest.approx(100 / 700)
    assert f["imbalance_1"][1] == pytest.approx(-1.0)


def test_ofi_cases_of_cont_kukanov_stoikov() -> None:
    # rows: start; bid size +50; bid price up (new level 30); ask price down (new ask 20); ask size -40
    pb = np.array([10.0, 10.0, 10.01, 10.01, 10.01])
    qb = np.array([100.0, 150.0, 30.0, 30.0, 30.0])
    pa = np.array([10.03, 10.03, 10.03, 10.02, 10.02])
    qa = np.array([80.0, 80.0, 80.0, 20.0, 60.0])
    qa[4], qa[3] = 20.0, 60.0  # ask size falls by 40 between rows 3 and 4
    e = ofi_events(pb, qb, pa, qa)
    assert e.tolist() == [0.0, 50.0, 30.0, -60.0, 40.0]
    # an empty side that refills contributes its whole size
    assert (
        ofi_events(np.array([nan, 10.0]), np.array([0.0, 70.0]), np.array([10.1, 10.1]), np.array([5.0, 5.0]))[1]
        == 70.0
    )


def test_bars_conserve_volume_flow_and_price_change() -> None:
    ts = np.array([0, 1, 2, 12, 25, 26], dtype=np.int64) * 10**9
    mid = np.array([10.0, 10.01, 10.02, 10.0, 9.99, 10.03])
    ofi = np.array([0.0, 5.0, -2.0, 4.0, 1.0, -3.0])
    tts = np.array([1, 12, 26], dtype=np.int64) * 10**9
    b = time_bars(
        state_ts=ts,
        mid=mid,
        spread_bps=np.full(6, 2.0),
        depth_1=np.full(6, 100.0),
        ofi=ofi,
        trade_ts=tts,
        trade_size=np.array([10.0, 20.0, 30.0]),
        trade_sign=np.array([1, -1, 1]),
        bar_s=10,
        origin_ns=0,
        end_ns=29 * 10**9,
        adv=1000.0,
    ).to_pydict()
    assert len(b["bar_start_ns"]) == 3
    assert b["ofi"] == [3.0, 4.0, -2.0] and b["volume"] == [10.0, 20.0, 30.0]
    assert b["signed_volume"] == [10.0, -20.0, 30.0] and b["participation"] == [0.01, 0.02, 0.03]
    assert b["mid_open"][0] == 10.0 and b["mid_close"][0] == pytest.approx(10.02)
    assert sum(b["d_mid"]) == pytest.approx(mid[-1] - mid[0])


def test_adverse_selection_by_hand() -> None:
    ts = np.array([0, 5, 10], dtype=np.int64) * 10**9
    mid = np.array([100.0, 100.1, 99.9])
    out = adverse_selection_bps(
        np.array([1, -1, 1]), np.array([0, 0, 2]), ts, mid, np.array([1, 2, 9], dtype=np.int64) * 10**9, horizon_s=5.0
    )
    assert out[0] == pytest.approx(10.0)  # buy at mid 100, mid 100.1 five seconds later
    assert out[1] == pytest.approx(-10.0)  # sell, price rose: the seller's counterparty lost nothing
    assert np.isnan(out[2])  # horizon past the data
    assert state_at(ts, np.array([5 * 10**9]), strict=True)[0] == 0


def test_goog_adv_is_put_on_the_lobster_share_basis(data: Path) -> None:
    path = find_daily("GOOG")
    assert path is not None and find_daily("AMZN") is None
    stats = DailyBars.load(path).stats(dt.date(2012, 6, 21), reference_price=562.0)
    # Yahoo's series is adjusted for GOOG's 2.002:1 split of 2014
    assert stats.split_factor == pytest.approx(2.0, abs=0.05)
    raw = DailyBars.load(path).stats(dt.date(2012, 6, 21))
    assert stats.adv == pytest.approx(raw.adv / stats.split_factor)
    assert 0.005 < stats.daily_vol < 0.05


def test_lobster_feature_set_is_consistent(data: Path) -> None:
    day = load_lobster(lobster_path(data, "GOOG", 5))
    fs = market_features(day, bar_s=60)
    assert fs.events.num_rows == len(day) and fs.bars.num_rows == 390
    tr = fs.trades.to_pydict()
    execs = day.events.kind == EventKind.FILL  # LOBSTER types 4 and 5
    assert len(tr["size"]) == execs.sum() and sum(tr["size"]) == day.events.size[execs].sum()
    bars = fs.bars.to_pydict()
    assert sum(bars["volume"]) == pytest.approx(day.events.size[execs].sum())
    assert sum(bars["ofi"]) == pytest.approx(float(np.sum(fs.events.column("ofi").to_numpy())))
    assert fs.meta["split_factor"] == pytest.approx(2.0, abs=0.05)
    part = np.array(bars["participation"])
    assert part.sum() == pytest.approx(sum(bars["volume"]) / fs.meta["adv"])
    # buyer-initiated trades move the mid up on average over the next seconds
    adverse = fs.trades.column("adverse_selection_5s_bps").to_numpy()
    assert np.nanmean(adverse) > 0
    # OFI explains a real share of mid changes (Cont–Kukanov–Stoikov)
    x, y = np.array(bars["ofi"]), np.array(bars["d_mid"])
    assert np.corrcoef(x, y)[0, 1] > 0.2


def test_amzn_has_no_adv_and_says_so(data: Path) -> None:
    fs = market_features(load_lobster(lobster_path(data, "AMZN", 1)), bar_s=600)
    assert fs.meta["adv_source"].startswith("none") and fs.bars.column("participation").null_count == 39


def test_write_parquet(data: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    fs = market_features(load_lobster(data / AAPL_MSG), bar_s=1, adv=1e7)
    paths = fs.write(tmp_path)
    back = pq.read_table(paths["bars"])
    assert back.num_rows == fs.bars.num_rows and back.schema.metadata[b"adv"] == b"10000000.0"


def test_l1_kernel_equals_the_vectorised_definitions(data: Path) -> None:
    from impactlab.features import l1_features

    day = load_lobster(lobster_path(data, "AMZN", 5))
    fast = l1_features(day)
    bp, bz = day.bid()
    ap, az = day.ask()
    ref = book_features(bp, bz, ap, az, tick_size=day.tick_size, depth_levels=1)
    ref["ofi"] = ofi_events(bp[:, 0], bz[:, 0], ap[:, 0], az[:, 0])
    for name, values in fast.items():
        assert np.allclose(values, ref[name], rtol=1e-12, atol=1e-9, equal_nan=True), name
    small = load_lobster(data / AAPL_MSG)
    twin = l1_features(small, compiled=False)
    for name, values in l1_features(small).items():
        assert np.array_equal(values, twin[name], equal_nan=True), name
