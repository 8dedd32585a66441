"""Generic trades, quotes, parent orders and fills from CSV and Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from impactlab.data.tabular import load_fills, load_parent_orders, load_quotes, load_trades
from impactlab.errors import DataValidationError

TRADE_MAP = {"ts_ns": "timestamp", "price": "px", "size": "qty", "sign": "side", "trade_id": "id"}


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_trades_mapping_units_and_quarantine(tmp_path: Path) -> None:
    p = _csv(
        tmp_path / "t.csv",
        "timestamp,px,qty,side,id,venue\n1000,10.5,100,1,1,X\n2000,10.6,50,-1,2,X\n"
        "1500,10.7,10,1,3,X\n3000,-1,10,1,4,X\n4000,10.8,0,1,5,X\n5000,10.9,10,1,5,X\n6000,11,10,2,6,X\n",
    )
    r = load_trades(p, mapping=TRADE_MAP, time_unit="ms")
    assert r.column("ts_ns").tolist() == [1_000_000_000, 2_000_000_000]
    assert r.report.rows_read == 7 and r.report.rows_accepted == 2
    assert r.report.reasons == {
        "duplicate_trade_id": 1,
        "invalid_sign": 1,
        "non_monotone_time": 1,
        "non_positive_price": 1,
        "non_positive_size": 1,
    }
    lines = {x["line"]: x["reason"] for x in r.quarantine.to_arrow().to_pylist()}
    assert lines == {
        4: "non_monotone_time",
        5: "non_positive_price",
        6: "non_positive_size",
        7: "duplicate_trade_id",
        8: "invalid_sign",
    }
    assert r.report.details["ignored_columns"] == ["venue"]


def test_optional_trade_columns_default(tmp_path: Path) -> None:
    p = _csv(tmp_path / "t.csv", "ts_ns,price,size\n1,10,5\n2,10,5\n")
    r = load_trades(p)
    assert r.column("sign").tolist() == [0, 0] and r.column("trade_id").tolist() == [-1, -1]


@pytest.mark.parametrize(
    ("text", "line", "field", "value"),
    [
        ("timestamp,px,qty,side,id\n1,10,5,1,1\n2,10,abc,1,2\n", 3, "qty", "abc"),
        ("timestamp,px,qty,side,id\n1,10,5,1,1\n2,10,5\n", 3, "qty", None),
    ],
)
def test_malformed_cells_name_line_field_value(
    tmp_path: Path, text: str, line: int, field: str, value: str | None
) -> None:
    p = _csv(tmp_path / "t.csv", text)
    with pytest.raises(DataValidationError) as info:
        load_trades(p, mapping=TRADE_MAP)
    assert info.value.line == line and info.value.path == str(p)
    if value is not None:
        assert info.value.field == field and info.value.value == value


def test_missing_column_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="missing column 'price'"):
        load_trades(_csv(tmp_path / "a.csv", "ts_ns,size\n1,2\n"))
    with pytest.raises(DataValidationError, match="empty"):
        load_trades(_csv(tmp_path / "b.csv", "ts_ns,price,size\n"))
    with pytest.raises(DataValidationError, match="not in the trades schema"):
        load_trades(_csv(tmp_path / "c.csv", "ts_ns,price,size\n1,2,3\n"), mapping={"nope": "x"})


def test_quotes_iso_times_and_crossed(tmp_path: Path) -> None:
    p = _csv(
        tmp_path / "q.csv",
        "ts_ns,bid_price,bid_size,ask_price,ask_size\n"
        "2024-01-02T10:00:00Z,10,1,10.1,1\n2024-01-02T10:00:01Z,10.2,1,10.1,1\n",
    )
    r = load_quotes(p, time_unit="iso")
    assert r.column("ts_ns").tolist() == [1_704_189_600_000_000_000]
    assert r.report.reasons == {"crossed_book": 1}


def test_parent_orders_csv_and_parquet_agree(tmp_path: Path) -> None:
    text = (
        "order_id,symbol,side,quantity,start_ns,end_ns,arrival_mid,avg_price,end_mid,post_mid,adv,daily_vol\n"
        "o1,GOOG,1,1000,0,10,100,100.05,100.1,100.08,2e6,0.02\n"
        "o2,GOOG,-1,500,5,15,100,99.9,99.8,99.85,2e6,0.02\n"
        "o3,GOOG,1,500,20,15,100,100,100,100,2e6,0.02\n"
        "o4,GOOG,1,500,20,30,,,,,,\n"
    )
    p = _csv(tmp_path / "o.csv", text)
    r = load_parent_orders(p)
    assert r.column("order_id").tolist() == ["o1", "o2", "o4"] and r.report.reasons == {"end_before_start": 1}
    assert np.isnan(r.column("avg_price")[2])  # an order in flight has no outcome yet
    pq.write_table(r.table, tmp_path / "o.parquet")
    r2 = load_parent_orders(tmp_path / "o.parquet")
    assert r2.table.equals(r.table)


def test_fills(tmp_path: Path) -> None:
    p = _csv(
        tmp_path / "f.csv",
        "fill_id,client_order_id,parent_order_id,symbol,side,quantity,price,ts_ns,venue,liquidity,fee\n"
        "f1,c1,p1,GOOG,1,100,580.1,1,XNAS,taker,0.3\nf1,c1,p1,GOOG,1,100,580.1,2,XNAS,taker,0.3\n"
        "f2,c1,p1,GOOG,1,100,580.1,3,XNAS,other,0.3\n",
    )
    r = load_fills(p)
    assert r.report.reasons == {"duplicate_fill_id": 1, "invalid_liquidity": 1} and r.table.num_rows == 1


def test_parquet_missing_required(tmp_path: Path) -> None:
    pq.write_table(pa.table({"ts_ns": [1], "price": [1.0]}), tmp_path / "t.parquet")
    with pytest.raises(DataValidationError, match="missing column 'size'"):
        load_trades(tmp_path / "t.parquet")


def test_bad_iso_time_names_its_cell(tmp_path: Path) -> None:
    p = _csv(
        tmp_path / "q.csv",
        "ts_ns,bid_price,bid_size,ask_price,ask_size\n2024-01-02T10:00:00Z,10,1,10.1,1\nnot-a-time,10,1,10.1,1\n",
    )
    with pytest.raises(DataValidationError, match="not an ISO-8601 time") as info:
        load_quotes(p, time_unit="iso")
    assert (info.value.line, info.value.field, info.value.value) == (3, "ts_ns", "not-a-time")
