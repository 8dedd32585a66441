"""Find every instrument-day under a folder, in any supported format, and load one by symbol and date.

Recognised (by content, not only by name):

* LOBSTER message/order-book pairs (``TICKER_DATE_START_END_message_L.csv[.gz]``), one entry per depth;
* Binance raw captures (``<ns> <json>`` lines): one entry per symbol, market and UTC date; a file without
  a REST snapshot is loaded after the earlier files of the same capture, so its book starts synchronised;
* Databento DBN files (MBO, MBP-1/10, trades; definitions give the instrument): a trades file whose
  window matches an MBP file is attached to it;
* TAQ trades + quotes pairs (``DT, EX, SYMBOL, COND, SIZE, PRICE, CORR`` and ``DT, EX, BID, BIDSIZ, OFR,
  OFRSIZ, SYMBOL``): one entry per symbol and trading date;
* generic pairs ``NAME_quotes.{csv,parquet}`` + ``NAME_trades.{csv,parquet}`` in impactlab's own column
  names (see :func:`impactlab.data.generic.load_generic`).
"""

from __future__ import annotations

import datetime as dt
import gzip
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from impactlab.data.market import NS, MarketDay
from impactlab.errors import DataValidationError

__all__ = ["Catalog", "CatalogEntry", "catalog", "data_root", "load_files", "load_market", "scan"]

_LOBSTER = re.compile(
    r"^(?P<symbol>[A-Za-z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_message_(?P<levels>\d+)\.csv(\.gz)?$"
)


def data_root(path: str | Path | None = None) -> Path:
    """``path``, else ``$IMPACTLAB_DATA``, else ``../shared/data``."""
    return Path(path or os.environ.get("IMPACTLAB_DATA") or "../shared/data")


@dataclass(frozen=True)
class CatalogEntry:
    """One instrument-day a loader can read.

    ``load_kwargs`` are what :meth:`load` passes to the format's loader.
    """

    symbol: str
    venue: str
    date: dt.date
    source: str
    depth: int
    rows: int
    first_ns: int
    last_ns: int
    paths: tuple[Path, ...]
    notes: tuple[str, ...] = ()
    load_kwargs: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """``SYMBOL@VENUE:DATE:Ldepth``."""
        return f"{self.symbol}@{self.venue}:{self.date.isoformat()}:L{self.depth}"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (what ``impactlab data catalog --json`` prints)."""
        return {
            "symbol": self.symbol,
            "venue": self.venue,
            "date": self.date.isoformat(),
            "source": self.source,
            "depth": self.depth,
            "rows": self.rows,
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "span_s": round((self.last_ns - self.first_ns) / NS, 3),
            "first_utc": _iso(self.first_ns),
            "last_utc": _iso(self.last_ns),
            "paths": [str(p) for p in self.paths],
            "notes": list(self.notes),
        }

    def load(self) -> MarketDay:
        """Load this instrument-day into the model."""
        if self.source == "lobster":
            from impactlab.data.lobster import load_lobster

            return load_lobster(self.paths[0], self.paths[1])
        if self.source == "binance":
            from impactlab.data.binance import load_binance

            return load_binance(list(self.paths), date=self.date)
        if self.source.startswith("databento"):
            from impactlab.data.databento import load_databento

            return load_databento(self.paths[0], **self.load_kwargs)
        if self.source == "taq":
            from impactlab.data.taq import load_taq

            return load_taq(self.paths[0], self.paths[1], symbol=self.symbol, date=self.date)
        if self.source == "generic":
            from impactlab.data.generic import load_generic

            return load_generic(
                quotes=self.paths[0], trades=self.paths[1] if len(self.paths) > 1 else None, **self.load_kwargs
            )
        raise DataValidationError(f"no loader for source {self.source!r}", field="source", value=self.source)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / NS, tz=dt.UTC).isoformat(timespec="milliseconds")


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read(n)
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                return gz.read(n)
        except (OSError, EOFError):
            return b""
    return raw


def _lobster(paths: Iterable[Path], notes: list[str]) -> list[CatalogEntry]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from impactlab.data.lobster import midnight_ns

    out = []
    for msg in paths:
        m = _LOBSTER.match(msg.name)
        if m is None:
            continue
        book = msg.with_name(msg.name.replace("_message_", "_orderbook_"))
        if not book.exists():
            notes.append(f"{msg}: LOBSTER message file without its order-book file")
            continue
        try:
            with pa.input_stream(str(msg), compression="detect") as stream:
                t = pacsv.read_csv(
                    stream,
                    read_options=pacsv.ReadOptions(autogenerate_column_names=True),
                    convert_options=pacsv.ConvertOptions(include_columns=["f0"]),
                )
        except (pa.ArrowInvalid, OSError) as exc:
            notes.append(f"{msg}: unreadable ({exc})")
            continue
        col = t.column(0).to_numpy()
        date = dt.date.fromisoformat(m["date"])
        base = midnight_ns(date)
        out.append(CatalogEntry(
            symbol=m["symbol"], venue="XNAS", date=date, source="lobster", depth=int(m["levels"]), rows=int(col.size),
            first_ns=base + round(float(col[0]) * 1e9), last_ns=base + round(float(col[-1]) * 1e9), paths=(msg, book),
            notes=("test fixture",) if "fixtures" in msg.parts else (),
        ))  # fmt: skip
    return out


def _binance(paths: Iterable[Path], notes: list[str]) -> list[CatalogEntry]:
    from impactlab.data._binance_parse import _is_coinm
    from impactlab.data.validation import read_bytes

    files = []
    for p in paths:
        try:
            data = read_bytes(p)
        except DataValidationError as exc:
            notes.append(str(exc))
            continue
        lines = [ln for ln in data.split(b"\n") if ln.strip()]
        if not lines:
            continue
        sym, futures, snapshot = None, False, False
        for ln in lines[:200]:
            _, _, body = ln.partition(b" ")
            try:
                msg = orjson.loads(body)
            except orjson.JSONDecodeError:
                continue
            if "lastUpdateId" in msg:
                snapshot = True
            d = msg.get("data") if isinstance(msg, dict) else None
            if isinstance(d, dict):
                sym = sym or d.get("s")
                futures = futures or "pu" in d
        snapshot = snapshot or any(b"lastUpdateId" in ln[:200] for ln in lines)
        if sym is None:
            notes.append(f"{p}: no symbol in the first messages")
            continue
        first, last = int(lines[0].split(b" ", 1)[0]), int(lines[-1].split(b" ", 1)[0])
        market = "coinm" if _is_coinm(sym) else "usdm" if futures else "spot"
        files.append((str(sym).upper(), market, first, last, len(lines), p, snapshot))
    groups: dict[tuple[str, str], list[tuple[Any, ...]]] = defaultdict(list)
    for f in files:
        groups[(f[0], f[1])].append(f)
    venue = {"spot": "BINANCE", "usdm": "BINANCE-USDM", "coinm": "BINANCE-COINM"}
    out = []
    for (sym, market), fl in sorted(groups.items()):
        fl.sort(key=lambda f: f[2])
        for i, f in enumerate(fl):
            date = dt.datetime.fromtimestamp(f[2] / NS, tz=dt.UTC).date()
            # a file without a snapshot is loaded after the earlier files of the capture (book warm-up)
            start = i
            while start > 0 and not fl[start][6]:
                start -= 1
            chain = tuple(g[5] for g in fl[start : i + 1])
            note = () if len(chain) == 1 else (f"book warmed up on {', '.join(c.name for c in chain[:-1])}",)
            if not any(g[6] for g in fl[start : i + 1]):
                note = (*note, "no REST snapshot: levels are known once updated")
            out.append(CatalogEntry(
                symbol=sym, venue=venue[market], date=date, source="binance", depth=10, rows=f[4], first_ns=f[2],
                last_ns=f[3], paths=chain, notes=note,
            ))  # fmt: skip
    return out


def _databento(paths: Iterable[Path], notes: list[str]) -> list[CatalogEntry]:
    from impactlab.data.databento import _records, _store

    found = []
    for p in paths:
        try:
            store = _store(p)
        except DataValidationError as exc:
            notes.append(str(exc))
            continue
        schema = str(store.schema)
        if schema == "definition":
            continue
        rec = _records(store, p)
        if rec.size == 0:
            continue
        sym = str((store.symbols or ["?"])[0])
        found.append((schema, sym, int(rec["ts_recv"][0]), int(rec["ts_recv"][-1]), int(rec.size), p))
    out = []
    trades = [f for f in found if f[0] == "trades"]
    used: set[Path] = set()
    for schema, sym, first, last, rows, p in found:
        if schema == "trades":
            continue
        kwargs: dict[str, Any] = {}
        extra: tuple[Path, ...] = ()
        if schema.startswith("mbp") or schema == "tbbo":
            match = [t for t in trades if t[1] == sym and t[2] < last and t[3] > first]
            if match:
                kwargs["trades_path"] = match[0][5]
                extra = (match[0][5],)
                used.add(match[0][5])
        depth = 10 if schema in ("mbo", "mbp-10") else 1
        from impactlab.data.databento import find_definition

        d = find_definition(p, sym)
        venue = d[0].venue if d else "GLBX"
        cal_date = d[0].calendar.trading_date(last) if d else dt.datetime.fromtimestamp(last / NS, tz=dt.UTC).date()
        out.append(CatalogEntry(
            symbol=sym, venue=venue, date=cal_date, source=f"databento-{schema}", depth=depth, rows=rows,
            first_ns=first, last_ns=last, paths=(p, *extra), load_kwargs=kwargs,
            notes=("trades from the trades file of the same window",) if extra else (),
        ))  # fmt: skip
    for *_, p in trades:
        if p not in used:
            notes.append(f"{p}: trades without a book file of the same window (not an instrument-day on its own)")
    return out


def _taq(paths: Iterable[Path], notes: list[str]) -> list[CatalogEntry]:
    from impactlab.data.market import SessionCalendar
    from impactlab.data.taq import taq_days

    tfiles, qfiles = [], []
    for p in paths:
        head = _head(p, 512).split(b"\n", 1)[0].decode("utf-8", errors="replace").replace(" ", "")
        cols = set(head.strip().split(","))
        if {"DT", "EX", "SYMBOL", "COND", "SIZE", "PRICE", "CORR"} <= cols:
            tfiles.append(p)
        elif {"DT", "EX", "BID", "BIDSIZ", "OFR", "OFRSIZ", "SYMBOL"} <= cols:
            qfiles.append(p)
    out = []
    cal = SessionCalendar.us_equities()
    for t in tfiles:
        q = next((x for x in qfiles if x.parent == t.parent), None)
        if q is None:
            notes.append(f"{t}: TAQ trades file without a quotes file beside it")
            continue
        try:
            days = taq_days(t, q)
        except DataValidationError as exc:
            notes.append(str(exc))
            continue
        for sym, day, n_t, n_q in days:
            o, c = cal.bounds_ns(day)
            out.append(
                CatalogEntry(
                    symbol=sym,
                    venue="TAQ",
                    date=day,
                    source="taq",
                    depth=1,
                    rows=n_t + n_q,
                    first_ns=o,
                    last_ns=c,
                    paths=(t, q),
                    notes=(f"{n_t} prints and {n_q} quotes before cleaning",),
                )
            )
    return out


def _generic(paths: list[Path], notes: list[str]) -> list[CatalogEntry]:
    out = []
    by_stem = {p.name: p for p in paths}
    for p in paths:
        m = re.match(r"^(?P<stem>.+)_quotes\.(csv|csv\.gz|parquet)$", p.name)
        if not m:
            continue
        trades = next(
            (
                by_stem[n]
                for n in (f"{m['stem']}_trades.csv", f"{m['stem']}_trades.csv.gz", f"{m['stem']}_trades.parquet")
                if n in by_stem
            ),
            None,
        )
        try:
            from impactlab.data.generic import load_generic

            day = load_generic(quotes=p, trades=trades)
        except DataValidationError as exc:
            notes.append(f"{p}: {exc}")
            continue
        out.append(
            CatalogEntry(
                symbol=day.symbol,
                venue=day.venue,
                date=day.date,
                source="generic",
                depth=day.depth,
                rows=len(day.book) + len(day.trades),
                first_ns=day.first_ns,
                last_ns=day.last_ns,
                paths=(p, trades) if trades else (p,),
            )
        )
    return out


@dataclass(frozen=True)
class Catalog:
    """The instrument-days found under a folder, and what was seen but not usable (``notes``)."""

    root: Path
    entries: tuple[CatalogEntry, ...]
    notes: tuple[str, ...] = ()

    def symbols(self) -> list[str]:
        """Distinct symbols."""
        return sorted({e.symbol for e in self.entries})

    def find(
        self,
        symbol: str,
        date: dt.date | None = None,
        *,
        depth: int | None = None,
        source: str | None = None,
        venue: str | None = None,
    ) -> CatalogEntry:
        """The entry for ``symbol`` (case-insensitive) on ``date``; among several, the deepest (then the
        most rows).  Test fixtures are chosen only when nothing else matches."""
        sym = symbol.upper()
        cands = [
            e
            for e in self.entries
            if e.symbol.upper() == sym
            and (date is None or e.date == date)
            and (depth is None or e.depth == depth)
            and (source is None or e.source.startswith(source))
            and (venue is None or e.venue.upper() == venue.upper())
        ]
        if not cands:
            have = ", ".join(f"{e.symbol} {e.date}" for e in self.entries if e.symbol.upper() == sym) or "none"
            what = f"{symbol}" + (f" on {date}" if date else "") + (f" at depth {depth}" if depth else "")
            raise DataValidationError(
                f"no {what} under {self.root} (that symbol has: {have}; `impactlab data catalog` lists everything)",
                field="symbol",
                value=symbol,
            )
        venues = {e.venue for e in cands}
        if len(venues) > 1 and venue is None:
            raise DataValidationError(
                f"{symbol} trades on several venues here ({sorted(venues)}): choose one with --venue",
                field="venue",
                value=None,
            )
        real = [e for e in cands if "test fixture" not in e.notes] or cands
        dates = sorted({e.date for e in real})
        if date is None and len(dates) > 1:
            real = [e for e in real if e.date == dates[0]]
        return max(real, key=lambda e: (e.depth, e.rows))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {"root": str(self.root), "entries": [e.to_dict() for e in self.entries], "notes": list(self.notes)}


def scan(root: str | Path | None = None) -> Catalog:
    """Every instrument-day under ``root`` (default :func:`data_root`), in every supported format."""
    base = data_root(root)
    if not base.is_dir():
        raise DataValidationError("not a folder", path=base)
    files = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    notes: list[str] = []
    lob = [p for p in files if _LOBSTER.match(p.name)]
    dbn = [p for p in files if ".dbn" in p.name]
    rest = [
        p
        for p in files
        if p not in set(lob)
        and p not in set(dbn)
        and not p.name.endswith(("_orderbook_1.csv.gz", ".txt", ".md"))
        and "_orderbook_" not in p.name
    ]
    binance = [p for p in rest if re.match(rb"^\d{15,20} \{", _head(p, 64))]
    other = [p for p in rest if p not in set(binance)]
    entries = [
        *_lobster(lob, notes),
        *_binance(binance, notes),
        *_databento(dbn, notes),
        *_taq(other, notes),
        *_generic(other, notes),
    ]
    entries.sort(key=lambda e: (e.source, e.symbol, e.date, e.depth))
    return Catalog(base, tuple(entries), tuple(notes))


_SCANS: dict[str, Catalog] = {}


def catalog(root: str | Path | None = None) -> Catalog:
    """:func:`scan`, cached per folder for the life of the process."""
    base = str(data_root(root).resolve())
    if base not in _SCANS:
        _SCANS[base] = scan(base)
    return _SCANS[base]


_LOADED: dict[tuple[str, str], MarketDay] = {}


def load_market(
    symbol: str,
    date: dt.date | str | None = None,
    *,
    data: str | Path | None = None,
    depth: int | None = None,
    venue: str | None = None,
    source: str | None = None,
) -> MarketDay:
    """The instrument-day of ``symbol`` (on ``date``; the deepest file when there are several) found through
    the catalog of ``data`` (default ``$IMPACTLAB_DATA``), loaded once per process."""
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError as exc:
            raise DataValidationError("expected a date YYYY-MM-DD", field="date", value=date) from exc
    entry = catalog(data).find(symbol, date, depth=depth, venue=venue, source=source)
    key = (str(data_root(data).resolve()), entry.key + entry.source)
    if key not in _LOADED:
        if len(_LOADED) > 8:
            _LOADED.clear()
        _LOADED[key] = entry.load()
    return _LOADED[key]


def load_files(paths: Iterable[str | Path], *, date: dt.date | None = None) -> MarketDay:
    """An instrument-day from explicit files of any supported format, told apart by content.

    One LOBSTER message file (its order book beside it, or given second); Binance capture files of one
    symbol in time order; one DBN file (MBO, MBP, with a trades file of the same window second); a TAQ
    trades file and its quotes file; or a generic ``*_quotes`` file (and its ``*_trades`` file).
    """
    plist = [Path(p) for p in paths]
    if not plist:
        raise DataValidationError("no files given", field="file")
    for p in plist:
        if not p.exists():
            raise DataValidationError("file not found", path=p)
    first = plist[0]
    if _LOBSTER.match(first.name) or "_message_" in first.name:
        from impactlab.data.lobster import load_lobster

        return load_lobster(first, plist[1] if len(plist) > 1 else None)
    from impactlab.data.databento import is_dbn

    if is_dbn(first):
        from impactlab.data.databento import load_databento

        return load_databento(first, trades_path=plist[1] if len(plist) > 1 else None)
    head = _head(first, 64)
    if re.match(rb"^\d{15,20} \{", head):
        from impactlab.data.binance import load_binance

        return load_binance(plist, date=date)
    found = _taq(plist, [])
    if found:
        if len({(e.symbol, e.date) for e in found}) > 1 and date is None:
            have = ", ".join(f"{e.symbol} {e.date}" for e in found)
            raise DataValidationError(
                f"the TAQ files hold several symbol-days ({have}): pass --date", path=first, field="date"
            )
        e = next(e for e in found if date is None or e.date == date)
        return e.load()
    from impactlab.data.generic import load_generic

    quotes = next((p for p in plist if "quote" in p.name.lower()), first)
    trades = next((p for p in plist if p != quotes), None)
    return load_generic(quotes=quotes, trades=trades)
