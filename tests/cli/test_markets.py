"""The CLI on every market: --symbol/--date through the catalog, any file format, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from impactlab.cli.main import app
from tests.conftest import lobster_path

runner = CliRunner()
MBO = "databento/esm4-glbx-mdp3-20240508T000000-000002.mbo.dbn.zst"


def _ok(args: list[str]) -> dict:  # type: ignore[type-arg]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_data_catalog_lists_every_instrument_day(data: Path) -> None:
    out = _ok(["data", "catalog", "--data", str(data), "--json"])
    rows = out["entries"]
    assert len(rows) == 20
    assert {r["source"] for r in rows} == {"lobster", "binance", "databento-mbo", "databento-mbp-1", "taq"}
    for r in rows:
        assert {"symbol", "venue", "date", "source", "depth", "rows", "first_ns", "last_ns", "span_s"} <= set(r)
    assert {(r["symbol"], r["date"]) for r in rows if r["source"] == "taq"} == {
        ("XXX", "2018-01-02"),
        ("XXX", "2018-01-03"),
    }
    table = runner.invoke(app, ["data", "catalog", "--data", str(data)])
    assert table.exit_code == 0 and "BTCUSD_PERP" in table.stdout and "databento-mbo" in table.stdout


def test_pretrade_prices_futures_and_inverse_contracts_in_money(data: Path) -> None:
    es = _ok(["pretrade", "--symbol", "esu4", "--side", "buy", "--qty", "5", "--json"])
    px = es["market"]["price"]
    assert es["instrument"]["multiplier"] == 50.0 and es["notional"] == pytest.approx(5 * px * 50)
    s = es["strategies"][0]
    assert s["total_currency"] == pytest.approx(s["total_bps"] * 5 * px * 50 / 1e4)
    cm = _ok(["pretrade", "--symbol", "BTCUSD_PERP", "--date", "2024-08-08", "--side", "sell", "--qty", "1000",
              "--json"])  # fmt: skip
    assert cm["instrument"]["contract_type"] == "inverse" and cm["notional"] == pytest.approx(100_000.0)
    assert any("contract value 100 USD" in n for n in cm["notes"])


def test_level_1_day_calibrates_what_it_can_and_says_why_it_skips_the_rest(data: Path) -> None:
    out = _ok(["calibrate", "compare", "--symbol", "GOOG", "--depth", "1", "--json"])
    names = {r["model"] for r in out["models"]}
    assert {"sqrt", "ofi", "propagator"} <= names and "ow-book" not in names
    skipped = {s["model"]: s["reason"] for s in out["skipped"]}
    assert "at least 2" in skipped["ow-book"] and "level" in skipped["ow-book"]
    assert "orders" in skipped["power-law"]
    pre = _ok(["pretrade", "--symbol", "GOOG", "--depth", "1", "--side", "buy", "--qty", "5000", "--json"])
    assert "square-root" in pre["model"] and "top of book only" in pre["model"]


def test_execute_and_tca_on_a_taq_day(data: Path, tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    out = _ok(["execute", "--symbol", "XXX", "--date", "2018-01-02", "--qty", "1000", "--horizon", "5m", "--step", "1m",
               "--store", str(store), "--json"])  # fmt: skip
    assert out["source_format"] == "taq" and out["orders"][0]["filled"] > 0
    tca = _ok(["tca", "--orders", str(store), "--json"])
    assert tca["orders"][0]["order_id"] == out["order_id"]


def test_features_and_load_any_format_by_content(data: Path, tmp_path: Path) -> None:
    f = _ok(["features", "--symbol", "ESM4", "--bar", "100ms", "--out", str(tmp_path / "f"), "--json"])
    assert f["market"]["source"] == "databento-mbo" and f["rows"]["bars"] > 0
    f2 = _ok(["features", str(data / "taq/sampleTDataRaw.csv.gz"), str(data / "taq/sampleQDataRaw.csv.gz"),
              "--date", "2018-01-03", "--out", str(tmp_path / "g"), "--json"])  # fmt: skip
    assert f2["market"]["source"] == "taq" and f2["market"]["date"] == "2018-01-03"
    loaded = _ok(["data", "load", str(data / MBO), "--store", str(tmp_path / "s.duckdb"), "--json"])
    assert loaded["loads"][0]["kind"] == "databento-mbo" and loaded["loads"][0]["rows_read"] == 13_796


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["data", "load", "--kind", "trades", "{data}/" + MBO], "DBN"),
        (["data", "load", "--kind", "trades", "{data}/taq/sampleTDataRaw.csv.gz"], "TAQ trades"),
        (["pretrade", "--symbol", "NOPE", "--side", "buy", "--qty", "1"], "data catalog"),
        (["pretrade", "--symbol", "BTCUSDT", "--side", "buy", "--qty", "1"], "several venues"),
        (["pretrade", "--symbol", "GOOG", "--date", "2012-13-01", "--side", "buy", "--qty", "1"], "YYYY-MM-DD"),
        (["execute", "--symbol", "ESM4", "--qty", "1", "--horizon", "10m"], "leaves no"),
    ],
)
def test_wrong_inputs_are_one_line_errors_without_a_traceback(data: Path, args: list[str], needle: str) -> None:
    r = runner.invoke(app, [a.replace("{data}", str(data)) for a in args])
    assert r.exit_code == 2, r.output
    flat = " ".join(r.output.split())  # the console wraps long lines
    assert needle in flat and "Traceback" not in r.output


def test_book_replay_on_a_level_1_day(data: Path) -> None:
    out = _ok(["book", "replay", str(lobster_path(data, "AMZN", 1)), "--check", "--json"])
    assert out["levels"] == 1 and out["mismatched_rows"] == 0


def test_stores_that_cannot_be_read_are_one_line_errors(tmp_path: Path) -> None:
    r = runner.invoke(app, ["tca", "--orders", str(tmp_path / "missing.duckdb")])
    assert r.exit_code == 2 and "store not found" in r.output and "Traceback" not in r.output
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    r = runner.invoke(app, ["tca", "--orders", str(junk)])
    assert r.exit_code == 2 and "not a DuckDB store" in " ".join(r.output.split())


def test_symbols_and_sides_in_any_case(data: Path) -> None:
    out = _ok(["pretrade", "--symbol", "esu4", "--side", "BUY", "--qty", "1", "--json"])
    assert out["symbol"] == "ESU4" and out["side"] == "buy"
