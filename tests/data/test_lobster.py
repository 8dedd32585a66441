"""LOBSTER loader: every shared file, exact conversions, malformed files, quarantine accounting."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pytest

from impactlab.data.lobster import DUMMY_ASK, load_lobster, midnight_ns, parse_lobster_name
from impactlab.data.market import EventKind
from impactlab.errors import DataValidationError
from impactlab.testing import write_synthetic_lobster
from tests.conftest import AAPL_MSG, lobster_pairs, lobster_path

# message counts from ../shared/data/README.md
EXPECTED_ROWS = {
    ("GOOG", 1): 49_482,
    ("GOOG", 5): 112_673,
    ("GOOG", 10): 147_916,
    ("AMZN", 1): 57_515,
    ("AMZN", 5): 155_935,
}


@pytest.mark.parametrize(("symbol", "levels"), lobster_pairs())
def test_every_shared_pair_loads_clean(data: Path, symbol: str, levels: int) -> None:
    day = load_lobster(lobster_path(data, symbol, levels))
    assert len(day) == EXPECTED_ROWS[(symbol, levels)]
    assert day.depth == levels and day.symbol == symbol and day.date == dt.date(2012, 6, 21)
    assert day.report.rows_read == len(day) and day.report.rows_quarantined == 0
    assert np.all(np.diff(day.ts_ns) >= 0)
    # 09:30 to 16:00 New York (EDT, UTC-4) on 2012-06-21
    assert day.ts_ns[0] >= 1_340_285_400_000_000_000 and day.ts_ns[-1] <= 1_340_308_800_000_000_000
    bp, _ = day.bid()
    ap, _ = day.ask()
    both = np.isfinite(bp[:, 0]) & np.isfinite(ap[:, 0])
    assert np.all(bp[both, 0] < ap[both, 0])


def test_aapl_fixture_and_exact_time(data: Path) -> None:
    day = load_lobster(data / AAPL_MSG)
    assert len(day) == 999 and day.depth == 10 and day.source == "lobster" and day.has_order_ids
    # first message: 34200.004241176 s after midnight EDT
    assert day.ts_ns[0] == 1_340_285_400_004_241_176
    assert day.events.price[0] == pytest.approx(585.33) and day.events.price_ticks[0] == 58533
    assert day.events.side[3] == -1 and day.events.kind[0] == EventKind.ADD
    assert day.spec.venue == "XNAS" and day.spec.tick_size == 0.01 and day.spec.calendar.tz == "America/New_York"
    assert day.start_ns == 1_340_285_400 * 10**9  # 09:30 New York: offsets count from the open


def test_midnight_uses_wall_clock_offset() -> None:
    # winter (EST, UTC-5) and summer (EDT, UTC-4)
    assert midnight_ns(dt.date(2012, 1, 3)) == 1_325_566_800 * 10**9
    assert midnight_ns(dt.date(2012, 6, 21)) == 1_340_251_200 * 10**9


def test_dummy_levels_become_nan(tmp_path: Path) -> None:
    syn = write_synthetic_lobster(tmp_path, seed=3, n_events=50, levels=10, seed_levels=3)
    day = load_lobster(syn.message_path)
    raw = np.loadtxt(syn.book_path, delimiter=",", dtype=np.int64)
    assert (raw[:, 0::4] == DUMMY_ASK).any()  # the file has vendor dummies; the model never shows them
    ap, az = day.ask()
    assert not (ap > 1e6).any()
    assert np.isnan(ap).any() and np.all(az[np.isnan(ap)] == 0)


def test_name_parsing_and_bad_name(tmp_path: Path) -> None:
    n = parse_lobster_name("AMZN_2012-06-21_34200000_57600000_orderbook_5.csv.gz")
    assert (n.symbol, n.kind, n.levels) == ("AMZN", "orderbook", 5)
    with pytest.raises(DataValidationError, match="not a LOBSTER file name"):
        parse_lobster_name(tmp_path / "foo.csv")


def _pair(tmp_path: Path, seed: int = 1, n: int = 300, gz: bool = False) -> tuple[Path, Path]:
    syn = write_synthetic_lobster(tmp_path, seed=seed, n_events=n, levels=3, gzip_files=gz)
    return syn.message_path, syn.book_path


def _edit_line(path: Path, line: int, new: str | None) -> None:
    lines = path.read_text().splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("edit", "field", "message"),
    [
        (lambda s: s.rsplit(",", 1)[0], "direction", "expected 6 columns"),  # truncated line
        (lambda s: s + ",7", "direction", "expected 6 columns"),  # extra column
        (lambda s: s.replace(",", ",abc,", 1).rsplit(",", 1)[0], "type", "not a valid int"),  # text in a number
    ],
)
def test_malformed_message_line_names_file_line_field(tmp_path: Path, edit, field: str, message: str) -> None:  # type: ignore[no-untyped-def]
    msg, _ = _pair(tmp_path)
    line = msg.read_text().splitlines()[41]
    _edit_line(msg, 42, edit(line))
    with pytest.raises(DataValidationError, match=message) as info:
        load_lobster(msg)
    assert info.value.path == str(msg) and info.value.line == 42 and info.value.field == field


def test_empty_and_short_files(tmp_path: Path) -> None:
    msg, book = _pair(tmp_path)
    book_text = book.read_text()
    msg.write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        load_lobster(msg)
    _pair(tmp_path)  # restore
    _edit_line(book, 10, None)
    with pytest.raises(DataValidationError, match="rows but order-book file has"):
        load_lobster(msg)
    book.write_text(book_text)
    assert len(load_lobster(msg)) > 0


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    msg, _ = _pair(tmp_path, gz=True)
    raw = msg.read_bytes()
    msg.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataValidationError) as info:
        load_lobster(msg)
    assert info.value.path == str(msg)


def test_quarantine_catches_each_rule_and_loses_nothing(tmp_path: Path) -> None:
    msg, book = _pair(tmp_path, n=600)
    day0 = load_lobster(msg)
    lines = msg.read_text().splitlines()
    book_lines = book.read_text().splitlines()
    n = len(lines)

    def set_field(i: int, col: int, value: str) -> None:
        parts = lines[i - 1].split(",")
        parts[col] = value
        lines[i - 1] = ",".join(parts)

    set_field(10, 3, "-5")  # non-positive size
    set_field(20, 1, "9")  # unknown type
    set_field(30, 0, "34100.0")  # time goes backwards
    set_field(40, 5, "0")  # invalid side
    sub = [i for i, ln in enumerate(lines, 1) if ln.split(",")[1] == "1" and i > 60]
    first_id = lines[sub[0] - 1].split(",")[2]
    set_field(sub[1], 2, first_id)  # duplicated submission id
    bparts = book_lines[49].split(",")
    bparts[2] = str(int(bparts[0]) + 100)  # bid above ask: crossed
    book_lines[49] = ",".join(bparts)
    msg.write_text("\n".join(lines) + "\n")
    book.write_text("\n".join(book_lines) + "\n")

    day = load_lobster(msg)
    rep = day.report
    assert rep.rows_read == n == len(day0)
    assert rep.rows_read == rep.rows_accepted + rep.rows_quarantined
    assert rep.reasons == {
        "crossed_book": 1,
        "duplicate_order_id": 1,
        "invalid_side": 1,
        "non_monotone_time": 1,
        "non_positive_size": 1,
        "unknown_event_type": 1,
    }
    q = day.quarantine.to_arrow().to_pylist()
    assert sorted(r["line"] for r in q) == sorted([10, 20, 30, 40, 50, sub[1]])
    assert {r["line"]: r["value"] for r in q}[10] == "-5"
    assert len(day) == n - 6 and not np.isin(day.events.line, [10, 20, 30, 40, 50, sub[1]]).any()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="not found"):
        load_lobster(tmp_path / "X_2012-06-21_1_2_message_1.csv")


def test_gz_and_plain_give_identical_arrays(tmp_path: Path) -> None:
    msg, book = _pair(tmp_path / "a", seed=9)
    gz_dir = tmp_path / "b"
    gz_dir.mkdir()
    (gz_dir / (msg.name + ".gz")).write_bytes(gzip.compress(msg.read_bytes()))
    (gz_dir / (book.name + ".gz")).write_bytes(gzip.compress(book.read_bytes()))
    a = load_lobster(msg)
    b = load_lobster(gz_dir / (msg.name + ".gz"))
    assert np.array_equal(a.ts_ns, b.ts_ns) and np.array_equal(a.book.ask_price, b.book.ask_price, equal_nan=True)


# -- property tests: malformed input gives a clear error; bad values are quarantined, nothing lost ---------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from impactlab.testing import shared_files  # noqa: E402

_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_SETTINGS
@given(
    row=st.integers(1, 120),
    col=st.integers(0, 5),
    junk=st.sampled_from(["x", "1.5.2", "", "--", "1e"]),
    how=st.sampled_from(["replace", "drop_field", "extra_field"]),
)
def test_any_malformed_line_names_its_line(tmp_path: Path, row: int, col: int, junk: str, how: str) -> None:
    msg, _ = _pair(tmp_path, seed=row, n=400)
    lines = msg.read_text().splitlines()
    row = min(row, len(lines))
    parts = lines[row - 1].split(",")
    if how == "replace":
        if col == 0 and junk in ("",):
            junk = "x"
        parts[col] = junk
    elif how == "drop_field":
        del parts[col]
    else:
        parts.insert(col, "7")
    lines[row - 1] = ",".join(parts)
    msg.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError) as info:
        load_lobster(msg)
    assert info.value.line == row and info.value.path == str(msg)


@_SETTINGS
@given(
    seed=st.integers(0, 10_000), picks=st.sets(st.integers(1, 150), min_size=1, max_size=12), bad=st.integers(-1000, 0)
)
def test_bad_values_are_quarantined_and_nothing_is_lost(tmp_path: Path, seed: int, picks: set[int], bad: int) -> None:
    msg, _ = _pair(tmp_path, seed=seed, n=400)
    lines = msg.read_text().splitlines()
    rows = sorted(p for p in picks if p <= len(lines))
    for r in rows:
        parts = lines[r - 1].split(",")
        parts[3] = str(bad)  # size
        lines[r - 1] = ",".join(parts)
    msg.write_text("\n".join(lines) + "\n")
    day = load_lobster(msg)
    rep = day.report
    assert rep.rows_read == len(lines) == rep.rows_accepted + rep.rows_quarantined == len(day) + len(day.quarantine)
    assert day.quarantine.lines().tolist() == rows
    assert rep.reasons == ({"non_positive_size": len(rows)} if rows else {})
    assert sorted(set(day.events.line.tolist()) | set(rows)) == list(range(1, len(lines) + 1))


def test_shared_lobster_files_are_all_covered(data: Path) -> None:
    names = {n.split("/")[-1] for n in shared_files("lobster")}
    covered = {lobster_path(data, s, lv, k).name for s, lv in lobster_pairs() for k in ("message", "orderbook")}
    covered |= {Path(AAPL_MSG).name, Path(AAPL_MSG).name.replace("message", "orderbook")}
    assert names == covered
