"""Generic tables from CSV or Parquet: trades, quotes, parent orders and fills.

Each loader maps source columns onto an impactlab schema (``mapping`` is ``{schema_name: source_name}``,
identity where absent), converts them, validates every row and quarantines the rows that break a rule.
A cell that cannot be converted (text in a numeric field) or a file that cannot be parsed raises
:class:`~impactlab.errors.DataValidationError` naming the file, line, field and value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from impactlab.data.schemas import FILLS, PARENT_ORDERS, QUOTES, TRADES
from impactlab.data.validation import LoadReport, Quarantine, diagnose_csv, row_lines
from impactlab.errors import DataValidationError

__all__ = ["TableLoad", "load_fills", "load_parent_orders", "load_quotes", "load_table", "load_trades"]

TimeUnit = Literal["ns", "us", "ms", "s", "iso"]
_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_DEFAULTS: dict[str, Any] = {"sign": 0, "trade_id": -1, "liquidity": "taker", "fee": 0.0}


@dataclass(frozen=True, eq=False)
class TableLoad:
    """A validated table in its schema, with the quarantine and the load report."""

    table: pa.Table
    report: LoadReport
    quarantine: Quarantine

    def column(self, name: str) -> NDArray[Any]:
        """A column as a NumPy array."""
        return np.asarray(self.table.column(name).to_numpy(zero_copy_only=False))


_FORMATS = (
    ({"action", "order_id", "side", "price", "size"}, "an order-by-order (MBO) file, not a table of trades or quotes"),
    (
        {"DT", "EX", "SYMBOL", "COND", "SIZE", "PRICE", "CORR"},
        "a raw TAQ trades file: load it with its quotes file (load_taq)",
    ),
    ({"DT", "EX", "BID", "BIDSIZ", "OFR", "OFRSIZ"}, "a raw TAQ quotes file: load it with its trades file (load_taq)"),
)


def sniff(path: Path) -> None:
    """Refuse files that are not tables: binary (a DBN file, compressed or not), a LOBSTER file with no
    header, or a known vendor format that has its own loader."""
    if not path.exists():
        raise DataValidationError("file not found", path=path)
    if path.suffix == ".parquet":
        return
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:3] == b"DBN" or head[:4] == b"\x28\xb5\x2f\xfd":
        raise DataValidationError(
            "a Databento DBN file (binary), not a CSV table: use load_databento", path=path, line=1
        )
    if head[:2] == b"\x1f\x8b":
        import gzip

        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(4096)
        except (OSError, EOFError) as exc:
            raise DataValidationError(f"corrupt or truncated gzip stream: {exc}", path=path) from exc
    if b"\0" in head:
        raise DataValidationError("a binary file, not a CSV table", path=path, line=1)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
    if re.match(r"^\d+ \{", first):
        raise DataValidationError(
            "a Binance capture (<ns> <json> lines), not a CSV table: use load_binance",
            path=path,
            line=1,
            value=first[:60],
        )
    cols = {c.strip() for c in first.split(",")}
    if first and all(_is_number(c) for c in cols):
        raise DataValidationError(
            "no header row (a LOBSTER file? use load_lobster)", path=path, line=1, value=first[:60]
        )
    for needed, what in _FORMATS:
        if needed <= cols:
            raise DataValidationError(f"{what}", path=path, line=1, value=first[:80])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_raw(path: Path) -> tuple[pa.Table, int]:
    """All columns as strings (CSV) or as stored (Parquet); returns the table and the header offset."""
    sniff(path)
    if path.suffix == ".parquet":
        try:
            return pq.read_table(path), 0
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataValidationError(f"cannot read Parquet: {exc}", path=path) from exc
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = stream.read(1 << 16).split(b"\n", 1)[0]
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise DataValidationError(f"cannot read the file: truncated or corrupt ({exc})", path=path) from exc
    try:
        names = [c.strip() for c in head.decode("utf-8").strip("\r").split(",")]
    except UnicodeDecodeError as exc:
        raise DataValidationError(f"the header is not UTF-8 text (byte {exc.start})", path=path, line=1,
                                  value=head[max(exc.start - 10, 0) : exc.start + 10]) from exc  # fmt: skip
    if not any(names):
        raise DataValidationError("empty file: no header", path=path, line=1)
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            table = pacsv.read_csv(
                stream,
                convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
            )
    except (pa.ArrowInvalid, OSError, EOFError, UnicodeDecodeError) as exc:
        diagnose_csv(path, names, ["str"] * len(names), header=True)
        raise DataValidationError(f"cannot parse CSV: {exc}", path=path) from exc
    if table.num_rows == 0:
        raise DataValidationError("empty file: no data rows", path=path, line=2)
    return table, 1


def _convert(
    col: pa.ChunkedArray, typ: pa.DataType, path: Path, lines: NDArray[np.int64], name: str, what: str | None = None
) -> pa.ChunkedArray:
    """Cast a column; if the cast fails, name the first cell that cannot be converted."""
    if col.type == typ:
        return col
    try:
        return pc.cast(col, typ)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for i, v in enumerate(col.to_pylist()):
            try:
                pc.cast(pa.array([v]), typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataValidationError(
                    f"not {what or f'a valid {typ}'}", path=path, line=int(lines[i]), field=name, value=v
                ) from exc
        raise


def _time_ns(
    col: pa.ChunkedArray, unit: TimeUnit, path: Path, lines: NDArray[np.int64], name: str, tz: str | None = None
) -> pa.ChunkedArray:
    utc_ns = pa.timestamp("ns", tz="UTC")
    if unit == "iso" and tz is not None and not pa.types.is_timestamp(col.type):
        naive = _convert(col, pa.timestamp("ns"), path, lines, name, f"an ISO-8601 time without offset (in {tz})")
        try:
            local = pc.assume_timezone(naive, tz, ambiguous="earliest", nonexistent="earliest")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise DataValidationError(f"cannot place times in {tz!r}: {exc}", path=path, field=name) from exc
        return pc.cast(pc.cast(local, utc_ns), pa.int64())
    if unit == "iso":
        ts = col if pa.types.is_timestamp(col.type) else _convert(col, utc_ns, path, lines, name, "an ISO-8601 time")
        return pc.cast(pc.cast(ts, utc_ns), pa.int64())
    if pa.types.is_timestamp(col.type):
        return pc.cast(pc.cast(col, utc_ns), pa.int64())
    factor = _UNIT_NS[unit]
    if factor == 1:
        return _convert(col, pa.int64(), path, lines, name)
    as_float = _convert(col, pa.float64(), path, lines, name).to_numpy(zero_copy_only=False).astype(float)
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.rint(as_float * factor)
        ok = np.isfinite(scaled) & (np.abs(scaled) < 9.2e18)  # NaN, inf, 1e30: no time (quarantined by range)
    return pa.chunked_array([pa.array(np.where(ok, scaled, _NO_TIME).astype(np.int64))])


Rule = tuple[str, str, Callable[[Mapping[str, NDArray[Any]]], NDArray[np.bool_]]]
_NO_TIME = np.iinfo(np.int64).min
TIME_RANGE_NS = (0, 4_102_444_800 * 10**9)
"""Times a table may hold: the epoch to 2100-01-01 UTC (outside, or not a number: ``time_out_of_range``)."""


def load_table(
    path: str | Path,
    schema: pa.Schema,
    kind: str,
    rules: list[Rule],
    *,
    mapping: Mapping[str, str] | None = None,
    time_unit: TimeUnit = "ns",
    unique: str | None = None,
    monotone: str | None = None,
    tz: str | None = None,
) -> TableLoad:
    """Load ``path`` into ``schema``: map, convert, validate, quarantine.

    Parameters
    ----------
    rules
        ``(reason, field, bad_mask_fn)``; the first rule a row fails is its quarantine reason.
    unique
        A column whose repeated values are quarantined as ``duplicate_<column>``.
    monotone
        A time column that must not decrease (``non_monotone_time``).
    """
    p = Path(path)
    raw, offset = _read_raw(p)
    mapping = dict(mapping or {})
    unknown = set(mapping) - set(schema.names)
    if unknown:
        raise DataValidationError(f"mapping names fields not in the {kind} schema: {sorted(unknown)}", path=p)
    cols: dict[str, pa.ChunkedArray] = {}
    n = raw.num_rows
    lines = row_lines(p, n, header=offset) if offset else np.arange(1, n + 1, dtype=np.int64)
    for fld in schema:
        src = mapping.get(fld.name, fld.name)
        if src not in raw.column_names:
            if fld.name in _DEFAULTS:
                cols[fld.name] = pa.chunked_array([pa.array([_DEFAULTS[fld.name]] * n, fld.type)])
                continue
            if fld.nullable:
                cols[fld.name] = pa.chunked_array([pa.nulls(n, fld.type)])
                continue
            raise DataValidationError(
                f"missing column {src!r} for {kind} field {fld.name!r}; columns are {raw.column_names}",
                path=p,
                line=1,
                field=fld.name,
            )
        col = raw.column(src)
        if fld.name.endswith("_ns") and pa.types.is_integer(fld.type):
            cols[fld.name] = _time_ns(col, time_unit, p, lines, src, tz)
        elif pa.types.is_string(fld.type):
            cols[fld.name] = pc.cast(col, pa.string())
        else:
            if pa.types.is_string(col.type):
                col = pc.utf8_trim_whitespace(col)
                col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
            cols[fld.name] = _convert(col, fld.type, p, lines, src)
    table = pa.table(cols, schema=schema.with_metadata(None).remove_metadata())
    arrays = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    q = Quarantine(source=str(p))
    bad = np.zeros(n, dtype=bool)
    for fld in schema:
        if not fld.nullable and table.column(fld.name).null_count:
            mask = table.column(fld.name).is_null().to_numpy(zero_copy_only=False)
            bad = q.reject(mask, lines, fld.name, arrays[fld.name], f"missing_{fld.name}", bad)
    for fld in schema:
        if fld.name.endswith("_ns") and pa.types.is_integer(fld.type) and fld.name in arrays:
            v = arrays[fld.name]
            if v.dtype.kind in "iu":
                lo, hi = TIME_RANGE_NS
                bad = q.reject((v < lo) | (v > hi), lines, fld.name, v, "time_out_of_range", bad)
    for reason, fname, fn in rules:
        with np.errstate(invalid="ignore"):
            mask = np.asarray(fn(arrays), dtype=bool)
        bad = q.reject(mask, lines, fname, arrays[fname], reason, bad)
    if monotone is not None:
        t = np.where(bad, -np.inf, arrays[monotone].astype(np.float64))  # refused rows do not set the pace
        prev = np.maximum.accumulate(np.concatenate(([-np.inf], t[:-1])))
        bad = q.reject(t < prev, lines, monotone, arrays[monotone], "non_monotone_time", bad)
    if unique is not None:
        vals = arrays[unique]
        keep_ids = vals != -1 if vals.dtype.kind in "iu" else np.ones(n, bool)
        _, first = np.unique(vals.astype(str) if vals.dtype == object else vals, return_index=True)
        dup = np.ones(n, dtype=bool)
        dup[first] = False
        bad = q.reject(dup & keep_ids, lines, unique, vals, f"duplicate_{unique}", bad)
    report = LoadReport.build(
        kind, str(p), n, q, ignored_columns=sorted(set(raw.column_names) - set(mapping.get(f, f) for f in schema.names))
    )
    return TableLoad(table=table.filter(pa.array(~bad)), report=report, quarantine=q)


MAX_PRICE, MAX_SIZE = 1e9, 1e12  # above: implausible (a 1e308 price is a unit or a parsing error)


def _not_pos(name: str, upper: float | None = None) -> Callable[[Mapping[str, NDArray[Any]]], NDArray[np.bool_]]:
    cap = upper if upper is not None else (MAX_PRICE if "price" in name else MAX_SIZE)
    return lambda a: ~(np.isfinite(a[name].astype(float)) & (a[name].astype(float) > 0) & (a[name].astype(float) < cap))


def _present_not_pos(name: str) -> Callable[[Mapping[str, NDArray[Any]]], NDArray[np.bool_]]:
    return lambda a: ~np.isnan(a[name].astype(float)) & ~(np.isfinite(a[name].astype(float)) & (a[name] > 0))


def _bad_side(name: str = "side") -> Callable[[Mapping[str, NDArray[Any]]], NDArray[np.bool_]]:
    return lambda a: ~np.isin(a[name], (1, -1))


def load_trades(
    path: str | Path, *, mapping: Mapping[str, str] | None = None, time_unit: TimeUnit = "ns", tz: str | None = None
) -> TableLoad:
    """Trades into :data:`~impactlab.data.schemas.TRADES`; ``sign`` and ``trade_id`` are optional."""
    rules: list[Rule] = [
        ("non_positive_price", "price", _not_pos("price")),
        ("non_positive_size", "size", _not_pos("size")),
        ("invalid_sign", "sign", lambda a: ~np.isin(a["sign"], (-1, 0, 1))),
    ]
    return load_table(
        path, TRADES, "trades", rules, mapping=mapping, time_unit=time_unit, unique="trade_id", monotone="ts_ns", tz=tz
    )


def load_quotes(
    path: str | Path, *, mapping: Mapping[str, str] | None = None, time_unit: TimeUnit = "ns", tz: str | None = None
) -> TableLoad:
    """Top-of-book quotes into :data:`~impactlab.data.schemas.QUOTES`."""
    rules: list[Rule] = [
        ("non_positive_price", "bid_price", _not_pos("bid_price")),
        ("non_positive_price", "ask_price", _not_pos("ask_price")),
        ("negative_size", "bid_size", lambda a: ~(a["bid_size"] >= 0)),
        ("negative_size", "ask_size", lambda a: ~(a["ask_size"] >= 0)),
        ("crossed_book", "bid_price", lambda a: a["bid_price"] >= a["ask_price"]),
    ]
    return load_table(path, QUOTES, "quotes", rules, mapping=mapping, time_unit=time_unit, monotone="ts_ns", tz=tz)


def load_parent_orders(
    path: str | Path, *, mapping: Mapping[str, str] | None = None, time_unit: TimeUnit = "ns"
) -> TableLoad:
    """Parent orders (outcome columns optional) into :data:`~impactlab.data.schemas.PARENT_ORDERS`."""
    rules: list[Rule] = [
        ("invalid_side", "side", _bad_side()),
        ("non_positive_size", "quantity", _not_pos("quantity")),
        ("end_before_start", "end_ns", lambda a: a["end_ns"] < a["start_ns"]),
        *[("non_positive_price", c, _present_not_pos(c)) for c in ("arrival_mid", "avg_price", "end_mid", "post_mid")],
        ("non_positive_adv", "adv", _present_not_pos("adv")),
        ("non_positive_volatility", "daily_vol", _present_not_pos("daily_vol")),
    ]
    return load_table(
        path, PARENT_ORDERS, "parent_orders", rules, mapping=mapping, time_unit=time_unit, unique="order_id"
    )


def load_fills(path: str | Path, *, mapping: Mapping[str, str] | None = None, time_unit: TimeUnit = "ns") -> TableLoad:
    """Fills of the system's own child orders into :data:`~impactlab.data.schemas.FILLS`."""
    rules: list[Rule] = [
        ("invalid_side", "side", _bad_side()),
        ("non_positive_size", "quantity", _not_pos("quantity")),
        ("non_positive_price", "price", _not_pos("price")),
        ("invalid_liquidity", "liquidity", lambda a: ~np.isin(a["liquidity"].astype(str), ("maker", "taker"))),
        ("non_finite_fee", "fee", lambda a: ~np.isfinite(a["fee"].astype(float))),
    ]
    return load_table(path, FILLS, "fills", rules, mapping=mapping, time_unit=time_unit, unique="fill_id")
