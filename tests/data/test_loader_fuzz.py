"""Every loader, fed files mutated by hypothesis (fields replaced by NaN, inf, 1e308, huge integers, text,
non-UTF-8 bytes; lines deleted, repeated, blanked; files truncated; gzip cut short), either loads or refuses
with one :class:`~impactlab.errors.ImpactLabError` naming the file: never another exception, so the CLI
always answers exit 2 with file, line, field and value, and never a traceback."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from impactlab.errors import ImpactLabError

VALUES = ["", "NaN", "inf", "-inf", "1e308", "-1", "1.5", "99999999999999999999999", "abc", "\xff\xfe", "1e12", "0",
          '"', "1,2"]  # fmt: skip
T0 = 1_700_000_000 * 10**9
MSG, BOOK = "GOOG_2012-06-21_34200000_57600000_message_1.csv", "GOOG_2012-06-21_34200000_57600000_orderbook_1.csv"
JSON_VALUES: list[Any] = [10**30, -1, 1.5, "1.5", None, "abc", 2**63, 1e308, [], {}, 0, True]

edit = st.tuples(
    st.sampled_from(["field", "del", "dup", "blank", "flip", "bytes", "json"]),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.sampled_from(VALUES),
    st.sampled_from(range(len(JSON_VALUES))),
)
mutations = st.tuples(st.lists(edit, min_size=1, max_size=3), st.sampled_from(["plain", "gzip", "cut-gzip"]),
                      st.floats(0.0, 1.0), st.booleans())  # fmt: skip


def _json_edit(line: bytes, pick: int, k: int) -> bytes:
    head, sep, body = line.partition(b" ")
    try:
        d = json.loads(body)
    except ValueError:
        return str(JSON_VALUES[k]).encode() + sep + body
    node: Any = d
    for _ in range(3):  # walk down a few levels by the drawn index, then replace there
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        if not keys:
            break
        key = keys[pick % len(keys)]
        if not isinstance(node[key], dict | list) or pick % 3 == 0:
            node[key] = JSON_VALUES[k]
            break
        node = node[key]
    return head + sep + json.dumps(d).encode()


def _mutate(data: bytes, m: Any) -> bytes:
    edits, _, cut, truncate = m
    lines = data.split(b"\n")
    for op, i, j, value, k in edits:
        i %= len(lines)
        if op == "field":
            sep = b"," if b"," in lines[i] else b" "
            f = lines[i].split(sep)
            f[j % len(f)] = value.encode("latin-1")
            lines[i] = sep.join(f)
        elif op == "del" and len(lines) > 1:
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "blank":
            lines.insert(i, b"")
        elif op == "flip" and lines[i]:
            b = bytearray(lines[i])
            b[j % len(b)] = j % 256
            lines[i] = bytes(b)
        elif op == "bytes":
            lines.insert(i, bytes((j * 7 + n) % 256 for n in range(1 + j % 40)))
        elif op == "json":
            lines[i] = _json_edit(lines[i], j, k)
    out = b"\n".join(lines)
    return out[: int(len(out) * cut)] if truncate else out


def _write(path: Path, data: bytes, m: Any) -> Path:
    mode, cut = m[1], m[2]
    if mode == "plain":
        path.write_bytes(data)
        return path
    z = gzip.compress(data)
    if mode == "cut-gzip":
        z = z[: max(1, int(len(z) * cut))]
    out = path.with_name(path.name + ".gz")
    out.write_bytes(z)
    return out


def _check(load: Any, *paths: Path) -> None:
    try:
        load()
    except ImpactLabError as exc:
        msg = str(exc)
        assert "\n" not in msg.strip() and any(p.name in msg for p in paths), msg
    # any other exception fails the test with its traceback: exactly the bug this test looks for


@pytest.fixture(scope="module")
def samples(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    def head(p: Path, n: int) -> bytes:
        return b"\n".join(gzip.decompress(p.read_bytes()).split(b"\n")[:n])

    lob = data / "lobster"
    return {
        "msg": head(lob / "GOOG_2012-06-21_34200000_57600000_message_1.csv.gz", 300),
        "book": head(lob / "GOOG_2012-06-21_34200000_57600000_orderbook_1.csv.gz", 300),
        "binance": head(data / "binance" / "spot" / "btcusdt_20240808.gz", 1500),
        "taq_t": head(data / "taq" / "sampleTDataRaw.csv.gz", 300),
        "taq_q": head(data / "taq" / "sampleQDataRaw.csv.gz", 300),
        "trades": b"ts_ns,price,size,side\n" + b"\n".join(
            f"{T0 + i * 10**9},{100 + i % 7 * 0.01:.2f},{10 + i},{'buy' if i % 2 else 'sell'}".encode()
            for i in range(60)),
        "fills": b"fill_id,client_order_id,parent_order_id,symbol,side,quantity,price,ts_ns,venue,liquidity,fee\n"
        + b"\n".join(f"f{i},c{i},P,GOOG,1,10,100.5,{T0 + i},X,taker,0.01".encode() for i in range(60)),
    }  # fmt: skip


# the fixture of samples is large: hypothesis need not print it with a failing example
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(m=mutations, which=st.sampled_from(["msg", "book"]))
def test_lobster(samples: dict[str, bytes], tmp_path: Path, m: Any, which: str) -> None:
    from impactlab.data.lobster import load_lobster

    d = Path(tempfile.mkdtemp(dir=tmp_path))
    mp, bp = (
        d / "GOOG_2012-06-21_34200000_57600000_message_1.csv",
        d / "GOOG_2012-06-21_34200000_57600000_orderbook_1.csv",
    )
    mp.write_bytes(_mutate(samples["msg"], m) if which == "msg" else samples["msg"])
    bp.write_bytes(_mutate(samples["book"], m) if which == "book" else samples["book"])
    _check(lambda: load_lobster(mp, bp), mp, bp)


@FUZZ
@given(m=mutations, quarantine=st.booleans())
def test_binance(samples: dict[str, bytes], tmp_path: Path, m: Any, quarantine: bool) -> None:
    from impactlab.data.binance import load_binance

    d = Path(tempfile.mkdtemp(dir=tmp_path))
    p = _write(d / "btcusdt_20240808", _mutate(samples["binance"], m), m)
    _check(lambda: load_binance([p], on_malformed="quarantine" if quarantine else "raise"), p)


@FUZZ
@given(m=mutations, which=st.sampled_from(["taq_t", "taq_q"]))
def test_taq(samples: dict[str, bytes], tmp_path: Path, m: Any, which: str) -> None:
    from impactlab.data.taq import load_taq

    d = Path(tempfile.mkdtemp(dir=tmp_path))
    t = _write(d / "t.csv", _mutate(samples["taq_t"], m), m) if which == "taq_t" else d / "t.csv"
    q = _write(d / "q.csv", _mutate(samples["taq_q"], m), m) if which == "taq_q" else d / "q.csv"
    if which != "taq_t":
        t.write_bytes(samples["taq_t"])
    if which != "taq_q":
        q.write_bytes(samples["taq_q"])
    _check(lambda: load_taq(t, q, symbol="XXX"), t, q)


@FUZZ
@given(m=mutations, which=st.sampled_from(["trades", "fills"]), unit=st.sampled_from(["ns", "ms", "s", "iso"]))
def test_tables(samples: dict[str, bytes], tmp_path: Path, m: Any, which: str, unit: str) -> None:
    from impactlab.data import tabular

    d = Path(tempfile.mkdtemp(dir=tmp_path))
    p = _write(d / f"{which}.csv", _mutate(samples[which], m), m)
    load = tabular.load_trades if which == "trades" else tabular.load_fills
    _check(lambda: load(p, time_unit=unit), p)  # type: ignore[arg-type]


def test_a_time_far_outside_the_day_is_quarantined_alone(samples: dict[str, bytes], tmp_path: Path) -> None:
    """The red team's LOBSTER time of 1e12 (year 1720): it alone is refused, not the 298 good rows after it."""
    from impactlab.data.lobster import load_lobster

    lines = samples["msg"].split(b"\n")
    f = lines[1].split(b",")
    f[0] = b"1000000000000"
    lines[1] = b",".join(f)
    mp, bp = (
        tmp_path / "GOOG_2012-06-21_34200000_57600000_message_1.csv",
        tmp_path / "GOOG_2012-06-21_34200000_57600000_orderbook_1.csv",
    )
    mp.write_bytes(b"\n".join(lines))
    bp.write_bytes(samples["book"])
    day = load_lobster(mp, bp)
    assert day.report.rows_quarantined == 1 and day.quarantine.counts() == {"time_out_of_range": 1}


@pytest.mark.parametrize("value", ["NaN", "inf", "1e30"])
def test_a_non_finite_table_time_is_quarantined_not_the_minimum_int64(tmp_path: Path, value: str) -> None:
    from impactlab.data.tabular import load_trades

    p = tmp_path / "t.csv"
    p.write_text(f"ts_ns,price,size\n{value},100.0,10\n1700000001,100.0,10\n1700000002,100.1,5\n")
    got = load_trades(p, time_unit="s")
    assert got.table.num_rows == 2 and got.quarantine.counts() == {"time_out_of_range": 1}
    assert got.table.column("ts_ns").to_pylist()[0] == 1_700_000_001 * 10**9


@pytest.mark.parametrize(
    ("args", "says"),
    [(["--mapping", "{not json"], "--mapping"), (["--mapping", "[1, 2]"], "--mapping")],
)
def test_bad_cli_input_is_exit_2_without_a_traceback(tmp_path: Path, args: list[str], says: str) -> None:
    from typer.testing import CliRunner

    from impactlab.cli.main import app

    p = tmp_path / "t.csv"
    p.write_text("ts_ns,price,size\n1,100.0,10\n")
    r = CliRunner().invoke(
        app, ["data", "load", str(p), "--kind", "trades", *args, "--store", str(tmp_path / "s.duckdb")]
    )
    assert r.exit_code == 2 and says in r.output and "Traceback" not in r.output


def test_blank_lines_do_not_shift_the_line_an_error_names(tmp_path: Path) -> None:
    from impactlab.data.tabular import load_trades

    p = tmp_path / "t.csv"
    p.write_text("ts_ns,price,size\n1,100.0,10\n\n\n2,-5,10\n3,abc,1\n")
    with pytest.raises(ImpactLabError, match="line 6") as e:  # the editor's line of 'abc', past two blank lines
        load_trades(p)
    assert "abc" in str(e.value)
    p.write_text("ts_ns,price,size\n1,100.0,10\n\n2,-5,10\n")
    got = load_trades(p)
    assert got.quarantine.lines().tolist() == [4]


def test_a_non_utf8_byte_is_named_by_its_line_not_its_offset(tmp_path: Path) -> None:
    from impactlab.data.tabular import load_trades

    p = tmp_path / "t.csv"
    p.write_bytes(b"ts_ns,price,size,side\n1,100.0,10,buy\n2,100.0,10,b\xffy\n")
    with pytest.raises(ImpactLabError, match=r"not UTF-8 text .*line 3") as e:
        load_trades(p)
    assert "position" not in str(e.value)
