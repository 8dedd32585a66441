"""NYSE TAQ trades and quotes (raw, every exchange) into one :class:`MarketDay` per symbol and date.

The usual TAQ work, each step counted by rule in ``report.details['cleaning']``:

1. split by symbol and by trading date (New York);
2. keep regular-hours prints (09:30–16:00 by the calendar); quotes before the open seed the NBBO;
3. drop corrected prints (``CORR`` ≠ 0) and prints whose sale condition is not a regular one (``COND``,
   spaces removed, outside ``'', '@', 'E', '@E', 'F', 'FI', '@F', '@FI', 'I', '@I'`` — the rule of the
   R package ``highfrequency``'s ``tradesCondition``), counted per condition;
4. build the national best bid and offer from each exchange's latest quote (sizes at the best price
   summed over exchanges; quote sizes are round lots of ``lot`` shares);
5. sign trades by Lee & Ready (1991): above the prevailing NBBO mid (the state in force just before the
   print) buyer-initiated, below seller-initiated, at the mid by the tick test (the last different price
   before it), 0 when neither decides.

Rows that cannot be used at all (a non-positive price or size, a crossed or one-sided exchange quote, an
unparsable time) are quarantined with file, line, field and value.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from numpy.typing import NDArray

from impactlab.data import _kernels as k
from impactlab.data.market import (
    BookStates,
    Events,
    InstrumentSpec,
    MarketDay,
    SessionCalendar,
    Trades,
)
from impactlab.data.validation import LoadReport, Quarantine, diagnose_csv
from impactlab.errors import DataValidationError

__all__ = ["QUOTE_COLUMNS", "REGULAR_CONDITIONS", "TRADE_COLUMNS", "TaqFiles", "lee_ready", "load_taq", "taq_days"]

REGULAR_CONDITIONS = ("", "@", "E", "@E", "F", "FI", "@F", "@FI", "I", "@I")
TRADE_COLUMNS = ("DT", "EX", "SYMBOL", "COND", "SIZE", "PRICE", "CORR")
QUOTE_COLUMNS = ("DT", "EX", "BID", "BIDSIZ", "OFR", "OFRSIZ", "SYMBOL")
NS = 1_000_000_000


@dataclass(frozen=True)
class TaqFiles:
    """A TAQ trades file and its quotes file."""

    trades: Path
    quotes: Path


def _read(path: Path, columns: tuple[str, ...], kinds: list[str]) -> pa.Table:
    if not path.exists():
        raise DataValidationError("file not found", path=path)
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            head = bytes(stream.read(1 << 16)).split(b"\n", 1)[0].decode("utf-8").strip()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"unreadable file: {exc}", path=path, line=1) from exc
    names = [c.strip() for c in head.split(",")]
    missing = [c for c in columns if c not in names]
    if missing:
        raise DataValidationError(f"not a TAQ file: missing column(s) {missing}", path=path, line=1, value=head[:120])
    types = {c: pa.string() for c in names}
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            return pacsv.read_csv(
                stream, convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
            )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        diagnose_csv(path, names, ["str"] * len(names), header=True)  # type: ignore[list-item]
        raise DataValidationError(f"cannot parse CSV: {exc}", path=path) from exc


def _num(
    t: pa.Table, name: str, q: Quarantine, line: NDArray[np.int64], bad: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    col = pc.cast(pc.if_else(pc.equal(pc.utf8_trim_whitespace(t.column(name)), ""), None, t.column(name)), pa.string())
    try:
        out = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    except pa.ArrowInvalid:
        vals = col.to_pylist()
        out = np.full(t.num_rows, np.nan)
        for i, v in enumerate(vals):
            try:
                out[i] = float(v) if v is not None else np.nan
            except ValueError:
                out[i] = np.nan
    bad_rows = ~np.isfinite(out)
    if bad_rows.any():  # the values, as written, of the rows set aside
        shown = np.full(t.num_rows, "", dtype=object)
        idx = np.flatnonzero(bad_rows)
        shown[idx] = [str(v) for v in col.take(pa.array(idx)).to_pylist()]
        bad = q.reject(bad_rows, line, name, shown, "not_a_number", bad)
    return out, bad


def _codes(col: pa.ChunkedArray) -> tuple[NDArray[np.int64], NDArray[np.object_]]:
    """Dictionary codes of a string column and the distinct values (vectorised comparisons on ints)."""
    enc = pc.dictionary_encode(col).combine_chunks()
    return np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64), np.asarray(
        enc.dictionary.to_pylist(), dtype=object
    )


def _local_dates(ts: NDArray[np.int64], tz: str) -> NDArray[np.int64]:
    """Local calendar day numbers (days since 1970-01-01 in ``tz``) of UTC times, vectorised by UTC day."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(tz)
    utc_day = ts // (86_400 * NS)
    out = np.empty(ts.size, np.int64)
    for d in np.unique(utc_day):  # a few distinct days: the offset at noon UTC of each one
        noon = dt.datetime.fromtimestamp(int(d) * 86_400 + 43_200, dt.UTC).astimezone(zone)
        off = noon.utcoffset()
        assert off is not None
        sel = utc_day == d
        out[sel] = (ts[sel] + int(off.total_seconds()) * NS) // (86_400 * NS)
    return out


def _times(
    t: pa.Table, q: Quarantine, line: NDArray[np.int64], bad: NDArray[np.bool_]
) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    col = t.column("DT")
    try:
        ts = pc.cast(pc.cast(col, pa.timestamp("ns", tz="UTC")), pa.int64()).to_numpy(zero_copy_only=False)
        return np.asarray(ts, dtype=np.int64), bad
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = np.zeros(t.num_rows, np.int64)
        ok = np.ones(t.num_rows, bool)
        for i, v in enumerate(col.to_pylist()):
            try:
                out[i] = pc.cast(pc.cast(pa.array([v]), pa.timestamp("ns", tz="UTC")), pa.int64())[0].as_py()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                ok[i] = False
        return out, q.reject(~ok, line, "DT", np.array(col.to_pylist(), dtype=object), "bad_time", bad)


def _code_of(names: NDArray[np.object_], value: str) -> int:
    hit = np.flatnonzero(names == value)
    return int(hit[0]) if hit.size else -1


def lee_ready(price: NDArray[np.float64], mid_before: NDArray[np.float64]) -> tuple[NDArray[np.int8], dict[str, int]]:
    """Lee–Ready signs: the quote rule against the prevailing mid, the tick test at the mid.

    Returns the signs and how many each rule decided (``quote``, ``tick``, ``unsigned``).
    """
    sign = np.zeros(price.size, np.int8)
    with np.errstate(invalid="ignore"):
        sign[price > mid_before] = 1
        sign[price < mid_before] = -1
    quote = sign != 0
    # tick test: compare with the last different price before each trade
    change = np.concatenate(([False], price[1:] != price[:-1]))
    step = np.zeros(price.size, np.int8)
    step[1:][change[1:]] = np.sign(price[1:] - price[:-1])[change[1:]].astype(np.int8)
    idx = np.where(change, np.arange(price.size), -1)
    last = np.maximum.accumulate(idx)
    tick = np.where(last >= 0, step[np.clip(last, 0, None)], 0).astype(np.int8)
    at_mid = ~quote
    sign[at_mid] = tick[at_mid]
    counts = {"quote": int(quote.sum()), "tick": int((at_mid & (tick != 0)).sum()), "unsigned": int((sign == 0).sum())}
    return sign, counts


def _prepare(trades_path: Path, quotes_path: Path) -> dict[str, Any]:
    tq = Quarantine(source=str(trades_path))
    qq = Quarantine(source=str(quotes_path))
    tt = _read(trades_path, TRADE_COLUMNS, [])
    qt = _read(quotes_path, QUOTE_COLUMNS, [])
    tline = np.arange(2, tt.num_rows + 2, dtype=np.int64)
    qline = np.arange(2, qt.num_rows + 2, dtype=np.int64)
    tbad = np.zeros(tt.num_rows, bool)
    qbad = np.zeros(qt.num_rows, bool)
    t_ts, tbad = _times(tt, tq, tline, tbad)
    q_ts, qbad = _times(qt, qq, qline, qbad)
    size, tbad = _num(tt, "SIZE", tq, tline, tbad)
    price, tbad = _num(tt, "PRICE", tq, tline, tbad)
    corr, tbad = _num(tt, "CORR", tq, tline, tbad)
    tbad = tq.reject(price <= 0, tline, "PRICE", price, "non_positive_price", tbad)
    tbad = tq.reject(size <= 0, tline, "SIZE", size, "non_positive_size", tbad)
    bid, qbad = _num(qt, "BID", qq, qline, qbad)
    ofr, qbad = _num(qt, "OFR", qq, qline, qbad)
    bsz, qbad = _num(qt, "BIDSIZ", qq, qline, qbad)
    osz, qbad = _num(qt, "OFRSIZ", qq, qline, qbad)
    tbad = tq.reject((price >= 1e9) | (size >= 1e12), tline, "PRICE", price, "implausible_value", tbad)
    qbad = qq.reject((bid < 0) | (bsz < 0), qline, "BID", bid, "negative_bid", qbad)
    qbad = qq.reject((ofr < 0) | (osz < 0), qline, "OFR", ofr, "negative_offer", qbad)
    qbad = qq.reject((bid >= 1e9) | (ofr >= 1e9) | (bsz >= 1e12) | (osz >= 1e12), qline, "BID", bid,
                     "implausible_value", qbad)  # fmt: skip
    qbad = qq.reject((bid > 0) & (ofr > 0) & (bid > ofr), qline, "BID", bid, "crossed_quote", qbad)
    return {
        "tq": tq,
        "qq": qq,
        "t_rows": tt.num_rows,
        "q_rows": qt.num_rows,
        "t": {
            "ts": t_ts,
            "sym_code": _codes(tt.column("SYMBOL")),
            "cond_code": _codes(pc.replace_substring(tt.column("COND"), " ", "")),
            "size": size,
            "price": price,
            "corr": corr,
            "line": tline,
            "ok": ~tbad,
        },
        "q": {
            "ts": q_ts,
            "ex_code": _codes(qt.column("EX")),
            "sym_code": _codes(qt.column("SYMBOL")),
            "bid": bid,
            "ofr": ofr,
            "bsz": bsz,
            "osz": osz,
            "line": qline,
            "ok": ~qbad,
        },
    }


_CACHE: dict[tuple[str, str, float, float], dict[str, Any]] = {}


def _prepared(files: TaqFiles) -> dict[str, Any]:
    key = (str(files.trades), str(files.quotes), files.trades.stat().st_mtime, files.quotes.stat().st_mtime)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = _prepare(files.trades, files.quotes)
    return _CACHE[key]


def taq_days(trades_path: str | Path, quotes_path: str | Path) -> list[tuple[str, dt.date, int, int]]:
    """``(symbol, trading date, trades, quotes)`` for every symbol-date in a TAQ pair."""
    files = TaqFiles(Path(trades_path), Path(quotes_path))
    d = _prepared(files)
    tz = SessionCalendar.us_equities().tz
    counts: list[Counter[tuple[str, dt.date]]] = []
    for part in (d["t"], d["q"]):
        codes, names = part["sym_code"]
        ok = part["ok"]
        days = _local_dates(part["ts"][ok], tz)
        keys, n = np.unique(codes[ok] * 1_000_000 + days, return_counts=True)  # days < 10⁶ after 1970
        epoch = dt.date(1970, 1, 1)
        counts.append(Counter({(str(names[kk // 1_000_000]), epoch + dt.timedelta(days=int(kk % 1_000_000))): int(c)
                               for kk, c in zip(keys.tolist(), n.tolist(), strict=True)}))  # fmt: skip
    out, outq = counts
    return [(s, day, out[(s, day)], outq[(s, day)]) for s, day in sorted(set(out) | set(outq))]


def load_taq(
    trades_path: str | Path,
    quotes_path: str | Path,
    *,
    symbol: str | None = None,
    date: dt.date | None = None,
    lot: float = 100.0,
    tick_size: float = 0.01,
    quote_ttl_s: float = 1.0,
    compiled: bool = True,
) -> MarketDay:
    """One symbol-day of a TAQ trades + quotes pair, cleaned, with the NBBO and signed trades.

    Parameters
    ----------
    trades_path, quotes_path
        The raw files (CSV, plain or gzip) with the columns of :data:`TRADE_COLUMNS` / :data:`QUOTE_COLUMNS`.
    symbol, date
        Which symbol-day; required when the files hold several (see :func:`taq_days`).
    lot
        Shares per quoted size unit (TAQ quotes sizes in round lots of 100).
    quote_ttl_s
        An exchange's quote stops counting towards the NBBO once it is this old without an update
        (0: never, the SIP rule).  On the shared sample, where quotes are thinned and some exchanges'
        quotes go stale for hours, the plain rule leaves the NBBO crossed 55% of the time; 1 s leaves 1.3%
        (``benchmarks/bench_data.py`` prints both).  Crossed states are marked unsynced.
    """
    if not (np.isfinite(quote_ttl_s) and quote_ttl_s >= 0):
        raise DataValidationError("'quote_ttl_s' must be >= 0", field="quote_ttl_s", value=quote_ttl_s)
    files = TaqFiles(Path(trades_path), Path(quotes_path))
    days = taq_days(files.trades, files.quotes)
    if not days:
        raise DataValidationError("no usable trades or quotes", path=files.trades)
    chosen = [d for d in days if (symbol is None or d[0].upper() == symbol.upper()) and (date is None or d[1] == date)]
    if not chosen:
        have = ", ".join(f"{s} {d}" for s, d, *_ in days)
        raise DataValidationError(
            f"no {symbol or ''} {date or ''} in the files (they hold {have})".replace("  ", " "),
            path=files.trades,
            field="symbol/date",
            value=f"{symbol} {date}",
        )
    if len(chosen) > 1:
        have = ", ".join(f"{s} {d}" for s, d, *_ in chosen)
        raise DataValidationError(
            f"the files hold several symbol-days ({have}): choose one with symbol= and date=",
            path=files.trades,
            field="symbol/date",
        )
    sym, day, _, _ = chosen[0]
    d = _prepared(files)
    cal = SessionCalendar.us_equities()
    open_ns, close_ns = cal.bounds_ns(day)
    midnight = cal._wall_ns(day, 0)
    cleaning: dict[str, int] = {}
    # quotes of the symbol on the day (before the open too: they seed the NBBO)
    qd = d["q"]
    q_is = qd["sym_code"][0] == _code_of(qd["sym_code"][1], sym)
    qsel = qd["ok"] & q_is & (qd["ts"] >= midnight) & (qd["ts"] < close_ns)
    cleaning["quotes_after_close"] = int(
        (qd["ok"] & q_is & (qd["ts"] >= close_ns) & (qd["ts"] < midnight + 86_400 * NS)).sum()
    )
    qi = np.flatnonzero(qsel)
    qi = qi[np.argsort(qd["ts"][qi], kind="stable")]
    ex_all, ex_names = qd["ex_code"]
    used, ex_code = np.unique(ex_all[qi], return_inverse=True)
    exch = ex_names[used]
    out = np.empty((qi.size, 4))
    emit = np.zeros(qi.size, bool)
    (k.nbbo if compiled else k.nbbo_py)(
        qd["ts"][qi],
        ex_code.astype(np.int64),
        qd["bid"][qi],
        qd["bsz"][qi] * lot,
        qd["ofr"][qi],
        qd["osz"][qi] * lot,
        max(int(exch.size), 1),
        round(quote_ttl_s * NS),
        out,
        emit,
    )
    rows = np.flatnonzero(emit)
    st_ts = qd["ts"][qi][rows]
    nb = out[rows]
    crossed_nbbo = int((np.isfinite(nb[:, 0]) & np.isfinite(nb[:, 2]) & (nb[:, 0] > nb[:, 2])).sum())
    locked_nbbo = int((nb[:, 0] == nb[:, 2]).sum())
    # trades of the symbol on the day
    td = d["t"]
    t_is = td["sym_code"][0] == _code_of(td["sym_code"][1], sym)
    mine = td["ok"] & t_is & (td["ts"] >= midnight) & (td["ts"] < midnight + 86_400 * NS)
    regular = (td["ts"] >= open_ns) & (td["ts"] < close_ns)
    cleaning["trades_outside_regular_hours"] = int((mine & ~regular).sum())
    corrected = td["corr"] != 0
    cleaning["trades_corrected"] = int((mine & regular & corrected).sum())
    c_codes, c_names = td["cond_code"]
    regular_codes = np.flatnonzero(np.isin(c_names, np.array(REGULAR_CONDITIONS, dtype=object)))
    irregular = ~np.isin(c_codes, regular_codes)
    for code, cnt in Counter(c_codes[mine & regular & ~corrected & irregular].tolist()).most_common():
        cond = str(c_names[code])
        cleaning[f"trades_condition_{cond or 'blank'}"] = int(cnt)
    keep = np.flatnonzero(mine & regular & ~corrected & ~irregular)
    keep = keep[np.argsort(td["ts"][keep], kind="stable")]
    t_ts, t_px, t_sz = td["ts"][keep], td["price"][keep], td["size"][keep]
    if t_ts.size == 0 or rows.size == 0:
        raise DataValidationError(
            f"{sym} {day}: no regular-hours trades or quotes left after cleaning", path=files.trades
        )
    pre = np.searchsorted(st_ts, t_ts, side="left") - 1  # the NBBO in force just before each print
    mid_pre = np.where(pre >= 0, (nb[np.clip(pre, 0, None), 0] + nb[np.clip(pre, 0, None), 2]) / 2.0, np.nan)
    sign, sign_counts = lee_ready(t_px, mid_pre)
    trades = Trades(
        ts_ns=t_ts,
        exch_ns=t_ts,
        price=t_px,
        size=t_sz,
        sign=sign,
        trade_id=td["line"][keep],
        event_index=np.arange(keep.size, dtype=np.int64),
        hidden=np.zeros(keep.size, bool),
    )
    # book states: the NBBO from the open (the state in force at the open first)
    first = max(int(np.searchsorted(st_ts, open_ns, side="right")) - 1, 0)
    sl = slice(first, None)
    ts_states = st_ts[sl].copy()
    ts_states[0] = max(ts_states[0], open_ns)
    book = BookStates(
        ts_ns=ts_states,
        bid_price=nb[sl, 0:1],
        bid_size=np.where(np.isfinite(nb[sl, 0:1]), nb[sl, 1:2], 0.0),
        ask_price=nb[sl, 2:3],
        ask_size=np.where(np.isfinite(nb[sl, 2:3]), nb[sl, 3:4], 0.0),
        event_index=-np.ones(ts_states.size, np.int64),
        synced=~(nb[sl, 0] > nb[sl, 2]),
    )
    events = Events.prints(t_ts, sign, t_px, t_sz, tick_size, td["line"][keep])
    spec = InstrumentSpec(symbol=sym, venue="TAQ", asset_class="equity", tick_size=tick_size, calendar=cal)
    q = d["tq"]
    report = LoadReport.build(
        "taq",
        f"{files.trades} + {files.quotes.name}",
        d["t_rows"],
        q,
        symbol=sym,
        date=day.isoformat(),
        quotes_read=d["q_rows"],
        quotes_quarantined=len(d["qq"]),
        quote_quarantine=d["qq"].counts(),
        trades_kept=int(keep.size),
        nbbo_states=len(book),
        exchanges=[str(e) for e in exch],
        cleaning=cleaning,
        signs=sign_counts,
        nbbo_crossed=crossed_nbbo,
        nbbo_locked=locked_nbbo,
    )
    notes = (
        f"TAQ consolidated: {keep.size} regular-hours prints kept of {int(mine.sum())} ({sum(cleaning.values())} "
        "set aside by cleaning rules, counted in the report)",
        f"NBBO over {exch.size} exchanges (quotes expire after {quote_ttl_s:g} s without an update; "
        f"{crossed_nbbo} crossed states marked unsynced), top of book only: depth beyond level 1 is unknown",
        f"Lee–Ready signs: {sign_counts['quote']} by the quote rule, {sign_counts['tick']} by the tick test, "
        f"{sign_counts['unsigned']} unsigned",
    )
    return MarketDay(
        spec=spec,
        date=day,
        source="taq",
        events=events,
        book=book,
        trades=trades,
        paths=(files.trades, files.quotes),
        report=report,
        quarantine=q,
        has_order_ids=False,
        notes=notes,
        extras={"quote_quarantine": d["qq"]},
    )
