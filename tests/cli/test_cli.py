"""The impactlab command, as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from impactlab.cli.main import app, parse_duration_s
from impactlab.data.store import Store
from tests.conftest import AAPL_MSG, lobster_path

runner = CliRunner()


def test_book_replay_check_json(data: Path) -> None:
    msg = lobster_path(data, "GOOG", 1)
    book = lobster_path(data, "GOOG", 1, "orderbook")
    r = runner.invoke(app, ["book", "replay", str(msg), str(book), "--check", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["rows"] == 49_482 and out["mismatched_rows"] == 0
    assert out["rows_with_level_from_beyond_depth"] > 0 and out["messages_per_s"] > 0


def test_book_replay_check_fails_on_a_bad_book(data: Path, tmp_path: Path) -> None:
    src = data / AAPL_MSG
    msg = tmp_path / src.name
    msg.write_text(src.read_text())
    book_src = src.with_name(src.name.replace("message", "orderbook"))
    rows = book_src.read_text().splitlines()
    parts = rows[300].split(",")
    parts[1] = str(int(parts[1]) + 1)
    rows[300] = ",".join(parts)
    (tmp_path / book_src.name).write_text("\n".join(rows) + "\n")
    r = runner.invoke(app, ["book", "replay", str(msg), "--check", "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["mismatched_rows"] == 2


def test_data_load_writes_the_store(data: Path, tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    r = runner.invoke(
        app,
        [
            "data",
            "load",
            str(data / AAPL_MSG),
            str(data / "binance/usdm/btcusdt_20240718.gz"),
            "--store",
            str(db),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    loads = json.loads(r.stdout)["loads"]
    assert [x["kind"] for x in loads] == ["lobster", "binance"]
    with Store(db, read_only=True) as st:
        assert st.count("load_reports") == 2


def _load_trades(csv: Path, db: Path, *extra: str) -> list[str]:
    mapping = '{"ts_ns": "t", "price": "p", "size": "q"}'
    return ["data", "load", str(csv), "--kind", "trades", "--mapping", mapping, "--store", str(db), *extra]


def test_data_load_tables_and_errors(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("t,p,q\n1,10,5\n2,10,-5\n")
    db = tmp_path / "s.duckdb"
    r = runner.invoke(app, _load_trades(csv, db, "--json"))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["loads"][0]["reasons"] == {"non_positive_size": 1}
    with Store(db, read_only=True) as st:
        assert st.read("quarantine").to_pylist()[0]["line"] == 3
    csv.write_text("t,p,q\n1,10,x\n")
    r = runner.invoke(app, _load_trades(csv, db))
    assert r.exit_code == 2 and "line 2" in r.stderr and "'q'" in r.stderr


def test_features_command(data: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["features", str(data / AAPL_MSG), "--bar", "1s", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["rows"]["events"] == 999 and Path(out["files"]["bars"]).exists()


def test_book_binance_command(data: Path) -> None:
    r = runner.invoke(app, ["book", "binance", str(data / "binance/usdm/ethusdt_20240718.gz"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["tickers_compared"] > 0 and out["tickers_agree"] == out["tickers_compared"]


def test_demo_prints_the_summary(data: Path, tmp_path: Path) -> None:
    r = runner.invoke(app, ["demo", "--store", str(tmp_path / "d.duckdb")])
    assert r.exit_code == 0, r.output
    for text in ("Book reconstruction", "GOOG L10", "AMZN L5", "Features", "Impact models", "Binance books", "ETHUSDT"):
        assert text in r.stdout
    # OW from the book on GOOG: depth (shares/bps), half-life (s) and a permanent fraction inside (0, 1)
    assert re.search(r"GOOG .* (\d{2,4}), (\d+\.\d), 0\.\d\d", r.stdout), r.stdout
    with Store(tmp_path / "d.duckdb", read_only=True) as st:
        assert st.count("load_reports") == 8  # five LOBSTER pairs and three Binance captures
    assert (tmp_path / "features" / "GOOG_bars.parquet").exists()


def test_demo_without_data_runs_on_synthetic(tmp_path: Path) -> None:
    r = runner.invoke(app, ["demo", "--data", str(tmp_path / "none"), "--store", str(tmp_path / "d.duckdb")])
    assert r.exit_code == 0, r.output
    assert "synthetic" in r.stderr and "SYNT" in r.stdout


def test_parse_duration() -> None:
    assert parse_duration_s("10s") == 10 and parse_duration_s("500ms") == 0.5 and parse_duration_s("2m") == 120
    assert parse_duration_s("6h15m") == 22_500 and parse_duration_s("1m30s") == 90 and parse_duration_s("1h 5m") == 3900
    assert parse_duration_s("90") == 90
    for bad in ("6h15", "h", "1x", "", "0s"):
        with pytest.raises(Exception, match="positive duration"):
            parse_duration_s(bad)
    import typer

    with pytest.raises(typer.BadParameter):
        parse_duration_s("-1s")


def test_version_flag() -> None:
    from impactlab import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"impactlab {__version__}"
