"""Binance loader: every capture, signs, snapshots, sequence gaps, malformed lines, quarantine."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from impactlab.data.binance import read_binance as load_binance
from impactlab.errors import DataValidationError

CAPTURES = [
    "spot/btcusdt_20240808.gz",
    "spot/btcusdt_20240809.gz",
    "usdm/btcusdt_20240718.gz",
    "usdm/btcusdt_20240719.gz",
    "usdm/ethusdt_20240718.gz",
    "usdm/ethusdt_20240719.gz",
]
LINES = {"spot/btcusdt_20240808.gz": 41_249, "spot/btcusdt_20240809.gz": 58_325}


@pytest.mark.parametrize("name", CAPTURES)
def test_every_capture_loads(data: Path, name: str) -> None:
    path = data / "binance" / name
    cap = load_binance(path)
    raw = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert cap.report.rows_read == len(raw) == LINES.get(name, len(raw))
    assert cap.report.rows_quarantined == 0
    assert cap.market == name.split("/")[0]
    assert cap.sequence_gaps == ()
    n = len(cap.depth) + len(cap.snapshots) + cap.trades["trade_id"].size + cap.tickers["update_id"].size
    assert n == len(raw)
    assert len(cap.snapshots) == (1 if name.endswith(("0808.gz", "0718.gz")) else 0)
    assert np.all(np.diff(cap.depth.local_ns) >= 0) and np.all(cap.depth.level_qty >= 0)


def test_trade_sign_from_maker_flag(data: Path) -> None:
    path = data / "binance/spot/btcusdt_20240808.gz"
    cap = load_binance(path)
    msgs = [orjson.loads(ln.split(b" ", 1)[1]) for ln in gzip.decompress(path.read_bytes()).splitlines()]
    m = np.array([x["data"]["m"] for x in msgs if x.get("stream", "").endswith("@trade")])
    assert np.array_equal(cap.trades["sign"], np.where(m, -1, 1))


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _spot_lines(data: Path, n: int = 2000) -> list[bytes]:
    return gzip.decompress((data / "binance/spot/btcusdt_20240808.gz").read_bytes()).splitlines()[:n]


def test_sequence_gap_is_detected(data: Path, tmp_path: Path) -> None:
    lines = _spot_lines(data)
    depth_idx = [i for i, ln in enumerate(lines) if b"@depth" in ln]
    del lines[depth_idx[20]]
    cap = load_binance(_write(tmp_path / "gap.txt", lines))
    assert len(cap.sequence_gaps) == 1 and cap.report.details["sequence_gaps"] == 1


def test_malformed_line_raises_with_line_or_quarantines(data: Path, tmp_path: Path) -> None:
    lines = _spot_lines(data)
    lines[99] = lines[99][:60]  # truncated JSON
    path = _write(tmp_path / "bad.txt", lines)
    with pytest.raises(DataValidationError, match="malformed line") as info:
        load_binance(path)
    assert info.value.line == 100 and info.value.path == str(path) and info.value.field == "json"
    cap = load_binance(path, on_malformed="quarantine")
    assert cap.report.reasons == {"malformed_line": 1}
    assert cap.report.rows_read == len(lines) == cap.report.rows_accepted + 1
    lines[99] = b"notanumber {}"
    with pytest.raises(DataValidationError) as info:
        load_binance(_write(tmp_path / "bad2.txt", lines))
    assert info.value.field == "local_ns" and info.value.line == 100


def test_bad_values_are_quarantined(data: Path, tmp_path: Path) -> None:
    lines = _spot_lines(data)
    t_idx = [i for i, ln in enumerate(lines) if b"@trade" in ln]
    k_idx = [i for i, ln in enumerate(lines) if b"@bookTicker" in ln]

    def patch(i: int, fn) -> None:  # type: ignore[no-untyped-def]
        ts, body = lines[i].split(b" ", 1)
        msg = orjson.loads(body)
        fn(msg["data"])
        lines[i] = ts + b" " + orjson.dumps(msg)

    patch(t_idx[3], lambda d: d.update(q="0"))
    patch(t_idx[5], lambda d: d.update(t=orjson.loads(lines[t_idx[4]].split(b" ", 1)[1])["data"]["t"]))
    patch(k_idx[2], lambda d: d.update(b="99999999.0"))
    _ts, body = lines[k_idx[7]].split(b" ", 1)
    lines[k_idx[7]] = b"1 " + body  # time goes backwards
    cap = load_binance(_write(tmp_path / "q.txt", lines))
    assert cap.report.reasons == {
        "crossed_book": 1,
        "duplicate_trade_id": 1,
        "non_monotone_time": 1,
        "non_positive_size": 1,
    }
    q = {r["line"]: r["reason"] for r in cap.quarantine.to_arrow().to_pylist()}
    assert q == {
        t_idx[3] + 1: "non_positive_size",
        t_idx[5] + 1: "duplicate_trade_id",
        k_idx[2] + 1: "crossed_book",
        k_idx[7] + 1: "non_monotone_time",
    }


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "e.gz"
    p.write_bytes(gzip.compress(b""))
    with pytest.raises(DataValidationError, match="empty"):
        load_binance(p)


def test_two_symbols_refused(data: Path) -> None:
    with pytest.raises(DataValidationError, match="one symbol"):
        load_binance([data / "binance/usdm/btcusdt_20240718.gz", data / "binance/usdm/ethusdt_20240718.gz"])


@pytest.mark.parametrize(
    ("value", "why"),
    [(1.5, "not an integer"), (2**63, "out of range"), (10**30, "not an integer"), ("abc", "not an integer")],
)
def test_an_id_that_is_not_an_integer_is_refused_not_truncated(tmp_path: Path, value: object, why: str) -> None:
    import json as _json

    from impactlab.data.binance import load_binance
    from impactlab.errors import DataValidationError

    msg = {"stream": "btcusdt@trade", "data": {"e": "trade", "E": 1723161255208, "s": "BTCUSDT", "t": value,
                                               "p": "61800.0", "q": "0.01", "T": 1723161255207, "m": True}}  # fmt: skip
    p = tmp_path / "btcusdt_20240808"
    p.write_text(f"1723161253937085768 {_json.dumps(msg)}\n")
    with pytest.raises(DataValidationError, match=why) as e:
        load_binance([p])
    assert "field 't'" in str(e.value) and "line 1" in str(e.value)
