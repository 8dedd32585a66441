"""The format-neutral market-data model: every source's loader, the catalog, the L3 book, TAQ, COIN-M."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from impactlab.data import (
    EventFlag,
    EventKind,
    InstrumentSpec,
    SessionCalendar,
    load_binance,
    load_databento,
    load_files,
    load_generic,
    load_lobster,
    load_taq,
    scan,
)
from impactlab.data import _kernels as dk
from impactlab.data._l3 import L3Book, l3_replay, l3_replay_py
from impactlab.errors import DataValidationError
from impactlab.testing import ReferenceL3Book
from tests.conftest import lobster_path

DB = "databento"
MBO = f"{DB}/esm4-glbx-mdp3-20240508T000000-000002.mbo.dbn.zst"
MBP = f"{DB}/esu4-glbx-mdp3-20240701T2358-20240702T0002.mbp-1.dbn.zst"
TRADES = f"{DB}/esu4-glbx-mdp3-20240701T2358-20240702T0002.trades.dbn.zst"
TAQ_T, TAQ_Q = "taq/sampleTDataRaw.csv.gz", "taq/sampleQDataRaw.csv.gz"


@pytest.fixture(scope="module")
def catalog(data: Path):  # type: ignore[no-untyped-def]
    return scan(data)


def test_catalog_lists_every_instrument_day_of_every_format(catalog, data: Path) -> None:  # type: ignore[no-untyped-def]
    keys = {e.key for e in catalog.entries}
    assert len(keys) == len(catalog.entries) == 20
    by_source: dict[str, int] = {}
    for e in catalog.entries:
        by_source[e.source] = by_source.get(e.source, 0) + 1
        assert e.first_ns < e.last_ns and e.rows > 0 and e.depth >= 1
    assert by_source == {"lobster": 6, "binance": 10, "databento-mbo": 1, "databento-mbp-1": 1, "taq": 2}
    # every market-data file is read by some entry (definitions give the instrument, daily files the ADV)
    used = {p for e in catalog.entries for p in e.paths}
    for p in data.rglob("*"):
        if p.is_file() and p.parent.name not in ("daily",) and "definition" not in p.name and p.suffix != ".txt":
            if p.name == "README.md":
                continue
            assert p in used or p.name.replace("_orderbook_", "_message_") in {u.name for u in used}, p
    assert catalog.find("goog").depth == 10 and catalog.find("GOOG", depth=1).depth == 1
    assert catalog.find("XXX", dt.date(2018, 1, 3)).source == "taq"
    with pytest.raises(DataValidationError, match="several venues"):
        catalog.find("BTCUSDT")
    with pytest.raises(DataValidationError, match="no NOPE"):
        catalog.find("NOPE")


def test_session_calendars_have_no_hard_coded_open() -> None:
    us = SessionCalendar.us_equities()
    o, c = us.bounds_ns(dt.date(2012, 6, 21))
    assert (o, c) == (1_340_285_400 * 10**9, 1_340_308_800 * 10**9)  # 09:30 and 16:00 EDT
    cme = SessionCalendar.cme_globex()
    o, c = cme.bounds_ns(dt.date(2024, 5, 8))
    assert dt.datetime.fromtimestamp(o / 1e9, dt.UTC).isoformat() == "2024-05-07T22:00:00+00:00"  # 17:00 CDT
    assert (c - o) / 1e9 == 23 * 3600 and cme.trading_date(o + 1) == dt.date(2024, 5, 8)
    assert SessionCalendar.always().length_s() == 86_400


def test_coin_m_sizes_are_contracts_of_100_usd(data: Path) -> None:
    day = load_binance(data / "binance/cm/btcusd_perp_20240808.gz")
    spec = day.spec
    assert day.venue == "BINANCE-COINM" and spec.inverse and spec.contract_value == 100.0
    assert spec.size_unit == "contracts" and spec.settlement_currency == "BTC" and spec.quote_currency == "USD"
    px = day.first_mid()
    # one contract is 100 USD whatever the price, and 100/price BTC
    assert spec.notional(1.0, px) == 100.0 and spec.notional(1.0, 2 * px) == 100.0
    assert spec.notional_settlement(1.0, px) == pytest.approx(100.0 / px)
    # a coin-margined long of 1,000 contracts gains 1000·100·(1/p − 1/(p+Δ)) BTC
    assert spec.money(100.0, 1000.0, px) == pytest.approx(1e5 * (1 / px - 1 / (px + 100)))
    # read as coins (the old bug) the day's traded notional would be ~600× too large
    usd = float(spec.notional(day.trades.size, day.trades.price).sum())
    naive = float((day.trades.size * day.trades.price).sum())
    assert naive / usd == pytest.approx(px / 100, rel=0.01)
    usdm = load_binance(data / "binance/usdm/btcusdt_20240718.gz")
    assert not usdm.spec.inverse and usdm.spec.size_unit == "BTC" and usdm.venue == "BINANCE-USDM"
    assert usdm.spec.notional(2.0, 60_000.0) == 120_000.0


def test_binance_day_is_split_by_date_with_the_book_warmed_up(data: Path) -> None:
    files = [data / "binance/spot/btcusdt_20240808.gz", data / "binance/spot/btcusdt_20240809.gz"]
    whole = load_binance(files)
    d9 = load_binance(files, date=dt.date(2024, 8, 9))
    midnight = 1_723_161_600 * 10**9
    assert d9.date == dt.date(2024, 8, 9) and d9.first_ns == midnight and d9.book.synced.all()
    i = int(np.searchsorted(whole.ts_ns, midnight, side="right")) - 1
    assert np.array_equal(d9.book.bid_price[0], whole.book.bid_price[i], equal_nan=True)
    assert (d9.trades.ts_ns >= midnight).all() and len(d9.trades) == int((whole.trades.ts_ns >= midnight).sum())
    kinds = set(np.unique(whole.events.kind).tolist())
    assert {EventKind.LEVEL, EventKind.SNAPSHOT, EventKind.CLEAR, EventKind.TRADE} <= kinds


def test_lobster_level_1_is_a_first_class_day(data: Path) -> None:
    day = load_lobster(lobster_path(data, "GOOG", 1))
    assert day.depth == 1 and any("depth beyond level 1 is unknown" in n for n in day.notes)
    from impactlab.calibration import calibrate, day_source
    from impactlab.errors import InsufficientDepthError

    src = day_source(day)
    assert "book" not in src.builders and "level" in src.missing["book"]
    with pytest.raises(InsufficientDepthError, match="needs at least 2"):
        calibrate("ow-book", src)
    assert calibrate("sqrt", src)["n"] > 100


# -- Databento -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mbo(data: Path):  # type: ignore[no-untyped-def]
    return load_databento(data / MBO)


def _mbo_inputs(data: Path):  # type: ignore[no-untyped-def]
    import databento as db

    rec = db.DBNStore.from_bytes((data / MBO).read_bytes()).to_ndarray()
    return rec


def test_mbo_loads_with_the_definition_and_a_consistent_book(mbo) -> None:  # type: ignore[no-untyped-def]
    assert mbo.source == "databento-mbo" and mbo.has_order_ids and mbo.depth == 10
    s = mbo.spec
    assert (s.symbol, s.venue, s.tick_size, s.multiplier, s.asset_class) == ("ESM4", "XCME", 0.25, 50.0, "future")
    assert s.expiry_ns is not None and dt.datetime.fromtimestamp(s.expiry_ns / 1e9, dt.UTC).date() == dt.date(
        2024, 6, 21
    )
    assert mbo.report.rows_read == 13_796 and mbo.report.rows_quarantined == 0
    d = mbo.report.details
    assert d["cancel_of_unknown_order"] == 0 and d["add_of_live_order"] == 0  # the README's promise
    kinds = np.bincount(mbo.events.kind, minlength=10)
    assert kinds[EventKind.CLEAR] == 1 and kinds[EventKind.TRADE] == 5 and kinds[EventKind.FILL] == 5
    assert kinds[EventKind.SNAPSHOT] > 13_000 and kinds[EventKind.MODIFY] == 27
    b = mbo.book
    ok = b.synced & np.isfinite(b.bid_price[:, 0]) & np.isfinite(b.ask_price[:, 0])
    assert ok.sum() > 100 and np.all(b.bid_price[ok, 0] < b.ask_price[ok, 0])  # never crossed after the snapshot
    # tick grid and depth ordering
    assert np.allclose(np.nan_to_num(b.bid_price / 0.25) % 1, 0)
    fin = np.isfinite(b.bid_price[:, :2]).all(axis=1)
    assert np.all(b.bid_price[fin, 0] > b.bid_price[fin, 1])
    # trades carry the aggressor's side (the five T records here are buys)
    assert len(mbo.trades) == 5 and (mbo.trades.sign == 1).all()


def test_mbo_l3_book_equals_a_plain_python_reference_queue_by_queue(mbo) -> None:  # type: ignore[no-untyped-def]
    ev = mbo.events
    ref = ReferenceL3Book()
    code = {
        EventKind.ADD: 1,
        EventKind.SNAPSHOT: 1,
        EventKind.CANCEL: 2,
        EventKind.MODIFY: 3,
        EventKind.TRADE: 4,
        EventKind.FILL: 5,
        EventKind.CLEAR: 6,
    }
    for k, s, p, q, o in zip(ev.kind, ev.side, ev.price, ev.size, ev.order_id, strict=True):
        ref.apply(code.get(EventKind(int(k)), 0), int(s), float(p), float(q), int(o))
    book: L3Book = mbo.extras["l3"]
    for side in (1, -1):
        assert [(p, float(q), n) for p, q, n in book.levels(side)] == ref.levels(side)
        for p, _, _ in ref.levels(side)[:5]:
            assert [(o, float(q)) for o, q in book.queue(side, p)] == ref.queue(side, p)
    # the recorded top of book after the last record is the book's
    top = ref.levels(1)[0]
    assert mbo.book.bid_price[-1, 0] == top[0] and mbo.book.bid_size[-1, 0] == top[1]
    # FIFO position: the size ahead of the last order at the best ask
    ask_q = ref.queue(-1, ref.levels(-1)[0][0])
    assert book.queue_ahead(ask_q[-1][0]) == sum(q for _, q in ask_q[:-1])


def _l3_case(ops: list[tuple[int, int, int, int, int]]):  # type: ignore[no-untyped-def]
    action = np.array([o[0] for o in ops], np.int8)
    side = np.array([o[1] for o in ops], np.int8)
    price = np.array([o[2] for o in ops], np.int64)
    size = np.array([o[3] for o in ops], np.int64)
    oid = np.array([o[4] for o in ops], np.int64)
    prices, rank = np.unique(price, return_inverse=True)
    ids, slot = np.unique(oid, return_inverse=True)
    return action, side, price, size, oid, prices.astype(float), rank.astype(np.int64), ids, slot.astype(np.int64)


l3_ops = st.lists(
    st.tuples(
        st.sampled_from([1, 1, 1, 2, 3, 4, 5, 6]),  # add-heavy, with cancels, modifies, prints and a rare clear
        st.sampled_from([1, -1]),
        st.integers(95, 105),
        st.integers(0, 9),
        st.integers(1, 25),
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=80, deadline=None)
@given(ops=l3_ops)
def test_l3_kernel_is_fifo_exact_and_conserves_quantity(ops: list[tuple[int, int, int, int, int]]) -> None:
    # keep the book uncrossed by construction: bids below 100, asks above
    ops = [(a, s, (min(p, 99) if s == 1 else max(p, 101)), q, o) for a, s, p, q, o in ops]
    action, side, _price, size, _oid, prices, rank, ids, slot = _l3_case(ops)
    record = np.ones(action.size, bool)
    a = L3Book(prices, ids)
    _, ta, qa, sa = a.replay(action, side, rank, size, slot, record, depth=3)
    b = L3Book(prices, ids)
    _, tb, qb, sb = b.replay(action, side, rank, size, slot, record, depth=3, compiled=False)
    assert np.array_equal(ta, tb) and np.array_equal(qa, qb) and np.array_equal(sa, sb)  # kernel = twin
    # the kernel's whole book after every event (depth = every price), for conservation
    full = L3Book(prices, ids)
    _, _, qf, _ = full.replay(action, side, rank, size, slot, record, depth=len(prices))
    kernel_total = qf.sum(axis=1)
    ref = ReferenceL3Book()
    live: dict[int, float] = {}
    total_before = 0.0
    for i, (ac, s, p, q, o) in enumerate(ops):
        # quantity conserved per event, from the event's own semantics
        if ac == 6:
            expected = 0.0
            live.clear()
        elif ac == 1:
            expected = total_before + (q if o not in live else 0)
            if o not in live and q > 0:
                live[o] = q
        elif ac == 2:
            cut = min(q, live.get(o, 0))
            expected = total_before - cut
            if o in live:
                live[o] -= cut
                if live[o] <= 0:
                    del live[o]
        elif ac == 3:
            expected = total_before - live.get(o, 0) + q
            if q > 0:
                live[o] = q
            else:
                live.pop(o, None)
        else:
            expected = total_before  # prints change nothing
        ref.apply(ac, s, float(p), float(q), o)
        assert kernel_total[i] == expected
        total_before = expected
        best_b = ref.levels(1)[0][0] if ref.levels(1) else None
        got_b = prices[ta[i, 0]] if ta[i, 0] >= 0 else None
        assert got_b == best_b
    for s in (1, -1):
        assert [(p, float(q), n) for p, q, n in a.levels(s)] == ref.levels(s)
        for p, _, _ in ref.levels(s):
            assert [(o, float(q)) for o, q in a.queue(s, p)] == ref.queue(s, p)
    assert l3_replay is not l3_replay_py


def test_mbp1_states_and_the_trades_file(data: Path) -> None:
    day = load_databento(data / MBP, trades_path=data / TRADES)
    assert day.source == "databento-mbp" and day.depth == 1 and day.spec.multiplier == 50.0
    assert day.date == dt.date(2024, 7, 2)  # 18:58 Chicago on 07-01 belongs to the 07-02 Globex session
    assert len(day.trades) == 120
    alone = load_databento(data / MBP)
    # the MBP-1 file's own T records are the same prints as the trades file
    assert np.array_equal(alone.trades.price, day.trades.price) and np.array_equal(alone.trades.sign, day.trades.sign)
    b = day.book
    ok = np.isfinite(b.bid_price[:, 0]) & np.isfinite(b.ask_price[:, 0])
    assert ok.all() and np.all(b.bid_price[:, 0] < b.ask_price[:, 0])


def test_binary_and_wrong_kind_files_are_clear_errors(data: Path, tmp_path: Path) -> None:
    from impactlab.data import load_trades

    with pytest.raises(DataValidationError, match="DBN"):
        load_trades(data / MBO)
    with pytest.raises(DataValidationError, match="no header row"):
        load_trades(lobster_path(data, "GOOG", 1))
    mbo_csv = tmp_path / "mbo.csv"
    mbo_csv.write_text("ts_recv,action,side,price,size,order_id\n1,A,B,100,1,7\n")
    with pytest.raises(DataValidationError, match="order-by-order"):
        load_trades(mbo_csv)
    with pytest.raises(DataValidationError, match="TAQ trades"):
        load_trades(data / TAQ_T)
    with pytest.raises(DataValidationError, match="Binance"):
        load_trades(data / "binance/usdm/btcusdt_20240718.gz")
    with pytest.raises(DataValidationError, match="not a Databento DBN file"):
        load_databento(data / TAQ_T)


# -- TAQ -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def taq(data: Path):  # type: ignore[no-untyped-def]
    return load_taq(data / TAQ_T, data / TAQ_Q, date=dt.date(2018, 1, 2))


def test_taq_cleaning_is_counted_by_rule_and_loses_nothing(data: Path, taq) -> None:  # type: ignore[no-untyped-def]
    import pandas as pd

    raw = pd.read_csv(data / TAQ_T)
    local = pd.to_datetime(raw["DT"], utc=True).dt.tz_convert("America/New_York")
    mine = raw[local.dt.date == dt.date(2018, 1, 2)]  # the trading date is New York's
    d = taq.report.details
    set_aside = sum(d["cleaning"].values()) - d["cleaning"]["quotes_after_close"]
    assert d["trades_kept"] + set_aside == len(mine)  # every print is kept or counted under a rule
    assert d["cleaning"]["trades_outside_regular_hours"] > 0 and d["cleaning"]["trades_condition_4B"] > 0
    o, c = SessionCalendar.us_equities().bounds_ns(dt.date(2018, 1, 2))
    assert (taq.trades.ts_ns >= o).all() and (taq.trades.ts_ns < c).all()
    assert taq.depth == 1 and taq.start_ns == o and taq.covers_session


def _brute_nbbo(ts, ex, bid, bsz, ask, asz, ttl):  # type: ignore[no-untyped-def]
    """Each exchange's latest quote, recomputed from scratch at every quote (O(n·E), no shared code)."""
    latest: dict[str, tuple[int, float, float, float, float]] = {}
    out = []
    for i in range(len(ts)):
        latest[ex[i]] = (ts[i], bid[i], bsz[i], ask[i], asz[i])
        live = [v for v in latest.values() if ttl <= 0 or ts[i] - v[0] <= ttl]
        bids = [(v[1], v[2]) for v in live if v[1] > 0 and v[2] > 0]
        asks = [(v[3], v[4]) for v in live if v[3] > 0 and v[4] > 0]
        bb = max((p for p, _ in bids), default=np.nan)
        ba = min((p for p, _ in asks), default=np.nan)
        out.append((bb, sum(s for p, s in bids if p == bb), ba, sum(s for p, s in asks if p == ba)))
    return out


@pytest.mark.parametrize("ttl_s", [0.0, 1.0])
def test_nbbo_kernel_equals_a_brute_force_reference(data: Path, ttl_s: float) -> None:
    import pandas as pd

    q = pd.read_csv(data / TAQ_Q, nrows=6000)
    ts = pd.to_datetime(q["DT"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    order = np.argsort(ts, kind="stable")
    q, ts = q.iloc[order].reset_index(drop=True), ts[order]
    exch, code = np.unique(q["EX"].astype(str), return_inverse=True)
    args = [q[c].to_numpy(float) for c in ("BID", "BIDSIZ", "OFR", "OFRSIZ")]
    out = np.empty((len(q), 4))
    emit = np.zeros(len(q), bool)
    dk.nbbo(ts, code.astype(np.int64), *args, len(exch), int(ttl_s * 1e9), out, emit)
    ref = np.array(_brute_nbbo(ts, q["EX"].astype(str).to_numpy(), *args, int(ttl_s * 1e9)))
    assert np.allclose(out, ref, equal_nan=True)
    twin = np.empty_like(out)
    dk.nbbo_py(ts, code.astype(np.int64), *args, len(exch), int(ttl_s * 1e9), twin, emit.copy())
    assert np.array_equal(out, twin, equal_nan=True)
    assert emit[-1] and not emit[np.flatnonzero(np.diff(ts) == 0)].any()  # one state per time stamp


def test_lee_ready_quote_rule_then_tick_test(taq) -> None:  # type: ignore[no-untyped-def]
    from impactlab.data import lee_ready

    px = np.array([10.0, 10.02, 10.01, 10.01, 10.005, 10.01, 9.99])
    mid = np.array([np.nan, 10.01, 10.01, 10.0, 10.005, 10.01, 10.0])
    sign, n = lee_ready(px, mid)
    # 1: no quote, first print: unsigned; 2: above the mid; 3, 6: at the mid, down/up tick; 4: above; 5: at, downtick
    assert sign.tolist() == [0, 1, -1, 1, -1, 1, -1] and n == {"quote": 3, "tick": 3, "unsigned": 1}
    # on the real day nearly every print is signed and the signs lean on the quote rule
    s = taq.report.details["signs"]
    assert s["unsigned"] == 0 and s["quote"] > 10 * s["tick"]


# -- generic -------------------------------------------------------------------------------------------


def test_generic_quotes_and_trades_with_a_mapping_and_a_time_zone(tmp_path: Path) -> None:
    q = tmp_path / "ACME_quotes.csv"
    q.write_text(
        "time,b,bs,a,as\n2024-03-01 09:30:00,10.00,500,10.02,300\n2024-03-01 09:30:01,10.01,200,10.02,300\n"
        "2024-03-01 09:30:02,10.01,-5,10.02,300\n2024-03-01 15:59:59,10.03,100,10.05,100\n"
    )
    t = tmp_path / "ACME_trades.csv"
    t.write_text("time,px,qty\n2024-03-01 09:30:00.5,10.02,100\n2024-03-01 09:30:01.5,10.01,50\n")
    day = load_generic(
        quotes=q, trades=t, time_unit="iso", tz="America/New_York",
        quote_mapping={"ts_ns": "time", "bid_price": "b", "bid_size": "bs", "ask_price": "a", "ask_size": "as"},
        trade_mapping={"ts_ns": "time", "price": "px", "size": "qty"},
    )  # fmt: skip
    assert day.symbol == "ACME" and day.date == dt.date(2024, 3, 1) and day.depth == 1
    assert day.first_ns == 1_709_303_400 * 10**9  # 09:30 EST = 14:30 UTC
    assert day.report.rows_quarantined == 1 and day.report.reasons == {"negative_size": 1}
    assert day.tick_size == pytest.approx(0.01)
    # unsigned prints signed by Lee–Ready against the quotes: at the ask a buy, at the bid a sell
    assert day.trades.sign.tolist() == [1, -1]
    native = tmp_path / "ZED_quotes.csv"
    native.write_text(
        "ts_ns,bid_price,bid_size,ask_price,ask_size\n1709303400000000000,5.0,10,5.1,10\n"
        "1709303401000000000,5.0,12,5.1,10\n"
    )
    z = load_files([native])  # impactlab's own column names: no mapping needed
    assert z.symbol == "ZED" and len(z.book) == 2 and len(z.trades) == 0 and any("no trades" in n for n in z.notes)


def test_every_market_format_loads_through_load_files(data: Path) -> None:
    days = [
        load_files([lobster_path(data, "AMZN", 1)]),
        load_files([data / "binance/usdm/ethusdt_20240718.gz"]),
        load_files([data / MBP, data / TRADES]),
        load_files([data / TAQ_T, data / TAQ_Q], date=dt.date(2018, 1, 3)),
    ]
    assert [d.source for d in days] == ["lobster", "binance", "databento-mbp", "taq"]
    for d in days:
        assert isinstance(d.spec, InstrumentSpec) and len(d.book) > 0 and len(d.trades) > 0
        assert np.all(np.diff(d.ts_ns) >= 0)
        assert not (d.book.ask_price > 1e8).any()  # no vendor dummies
    with pytest.raises(DataValidationError, match="several symbol-days"):
        load_files([data / TAQ_T, data / TAQ_Q])


def test_truncated_dbn_is_a_clear_error(data: Path, tmp_path: Path) -> None:
    p = tmp_path / "cut.mbo.dbn.zst"
    p.write_bytes((data / MBO).read_bytes()[:5000])
    with pytest.raises(DataValidationError, match=r"cut\.mbo\.dbn\.zst"):
        load_databento(p)


def test_events_flags_mark_lobster_hidden_executions(data: Path) -> None:
    day = load_lobster(lobster_path(data, "GOOG", 5))
    hidden = (day.events.flags & np.uint8(EventFlag.HIDDEN)) != 0
    assert hidden.sum() == day.trades.hidden.sum() > 0
    assert (day.events.kind[hidden] == EventKind.FILL).all()


def test_gzip_and_plain_binance_give_the_same_day(data: Path, tmp_path: Path) -> None:
    p = tmp_path / "eth.txt"
    p.write_bytes(gzip.decompress((data / "binance/usdm/ethusdt_20240718.gz").read_bytes()))
    a, b = load_binance(p), load_binance(data / "binance/usdm/ethusdt_20240718.gz")
    assert np.array_equal(a.book.bid_price, b.book.bid_price, equal_nan=True) and a.spec == b.spec


def test_split_levels_kernel_and_twin_agree(data: Path) -> None:
    from impactlab.data.lobster import DUMMY_ASK, DUMMY_BID
    from impactlab.data.market import EMPTY_ASK_TICK, EMPTY_BID_TICK

    raw = np.loadtxt(data / "lobster/fixtures/AAPL_2012-06-21_34200000_57600000_orderbook_10.csv", delimiter=",",
                     dtype=np.int64)  # fmt: skip
    raw[5, 0], raw[6, 2], raw[7, 3] = DUMMY_ASK, DUMMY_BID, 0  # empty levels of each kind
    outs = []
    for fn in (dk.split_levels, dk.split_levels_py):
        arrs = [np.empty((raw.shape[0], 10)) for _ in range(2)] + [np.empty((raw.shape[0], 10), np.int64)]
        arrs += [np.empty((raw.shape[0], 10)) for _ in range(2)] + [np.empty((raw.shape[0], 10), np.int64)]
        fn(raw, 10, 1e4, 100, DUMMY_ASK, DUMMY_BID, EMPTY_ASK_TICK, EMPTY_BID_TICK, *arrs)
        outs.append(arrs)
    for a, b in zip(*outs, strict=True):
        assert np.array_equal(a, b, equal_nan=True)
    ap, _az, at, bp, bz, bt = outs[0]
    assert np.isnan(ap[5, 0]) and at[5, 0] == EMPTY_ASK_TICK and np.isnan(bp[6, 0]) and bt[6, 0] == EMPTY_BID_TICK
    assert np.isnan(bp[7, 0]) and bz[7, 0] == 0
    assert at[0, 0] == raw[0, 0] // 100 and ap[0, 0] == raw[0, 0] / 1e4
