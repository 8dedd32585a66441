"""Parsing and validating Binance raw websocket captures (depth diffs, REST snapshots, trades, book
tickers) into typed arrays; :mod:`impactlab.data.binance` turns them into a
:class:`~impactlab.data.market.MarketDay`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import orjson
from numpy.typing import NDArray

from impactlab.data.validation import LoadReport, Quarantine, iter_lines, read_bytes
from impactlab.errors import DataValidationError

__all__ = ["PRICE_SCALE", "BinanceCapture", "DepthEvents", "DepthSnapshot", "read_binance"]

PRICE_SCALE = 100_000_000
"""Binance prices have at most 8 decimals: ``round(price × 10⁸)`` is an exact integer key."""


@dataclass(frozen=True, eq=False)
class DepthEvents:
    """Depth-diff events, with their level updates flattened.

    Event ``e`` updates levels ``start[e]:stop[e]`` of the ``level_*`` arrays.  ``prev_id`` is ``pu`` on
    futures and −1 on spot.  ``level_side`` is +1 for a bid level, −1 for an ask level.
    """

    local_ns: NDArray[np.int64]
    exch_ns: NDArray[np.int64]
    first_id: NDArray[np.int64]
    last_id: NDArray[np.int64]
    prev_id: NDArray[np.int64]
    start: NDArray[np.int64]
    stop: NDArray[np.int64]
    order: NDArray[np.int64]
    level_side: NDArray[np.int8]
    level_price: NDArray[np.float64]
    level_qty: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.local_ns.size)

    @property
    def level_key(self) -> NDArray[np.int64]:
        """Exact integer price keys (price × 10⁸)."""
        return np.rint(self.level_price * PRICE_SCALE).astype(np.int64)


@dataclass(frozen=True, eq=False)
class DepthSnapshot:
    """A REST depth snapshot; ``order`` is its position in the stream (line order across files)."""

    local_ns: int
    last_update_id: int
    order: int
    bid_price: NDArray[np.float64]
    bid_qty: NDArray[np.float64]
    ask_price: NDArray[np.float64]
    ask_qty: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class BinanceCapture:
    """One validated Binance capture (one symbol, one market), possibly spread over several files.

    ``trades`` and ``tickers`` are dicts of equal-length arrays: trades ``local_ns, exch_ns, trade_id,
    price, size, sign``; tickers ``local_ns, update_id, bid_price, bid_size, ask_price, ask_size``.
    """

    symbol: str
    market: Literal["spot", "usdm", "coinm"]
    paths: tuple[Path, ...]
    depth: DepthEvents
    snapshots: tuple[DepthSnapshot, ...]
    trades: dict[str, NDArray[Any]]
    tickers: dict[str, NDArray[Any]]
    report: LoadReport
    quarantine: Quarantine
    sequence_gaps: tuple[int, ...] = field(default=())


def _num(value: Any, path: Path, line: int, name: str) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise DataValidationError("not a number", path=path, line=line, field=name, value=value) from exc
    return out


def _int(value: Any, path: Path, line: int, name: str, *, low: int = 0) -> int:
    """An id, sequence number or millisecond time: a JSON integer (or its digits) in [``low``, 2⁶³)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DataValidationError("not an integer", path=path, line=line, field=name, value=value)
    try:
        out = int(value)
    except ValueError as exc:
        raise DataValidationError("not an integer", path=path, line=line, field=name, value=value) from exc
    if not low <= out < 2**63:
        raise DataValidationError(f"out of range [{low}, 2^63)", path=path, line=line, field=name, value=value)
    return out


def _ms(value: Any, path: Path, line: int, name: str) -> int:
    """An exchange time in ms since the epoch, as ns, within 1971–2100."""
    ms = _int(value, path, line, name)
    if not ms <= 4_102_444_800_000:
        raise DataValidationError("time out of range (ms since the epoch, up to 2100)", path=path, line=line,
                                  field=name, value=value)  # fmt: skip
    return ms * 1_000_000


class _Builder:
    """Accumulates parsed messages; validation happens as each message is read."""

    def __init__(self, quarantine: Quarantine) -> None:
        self.q = quarantine
        self.ev: dict[str, list[int]] = {k: [] for k in ("local", "exch", "U", "u", "pu", "start", "stop", "order")}
        self.lv_side: list[int] = []
        self.lv_px: list[float] = []
        self.lv_qty: list[float] = []
        self.snaps: list[DepthSnapshot] = []
        self.tr: dict[str, list[Any]] = {
            k: [] for k in ("local_ns", "exch_ns", "trade_id", "price", "size", "sign", "order")
        }
        self.tk: dict[str, list[Any]] = {
            k: [] for k in ("local_ns", "update_id", "bid_price", "bid_size", "ask_price", "ask_size")
        }
        self.trade_ids: set[int] = set()
        self.symbols: set[str] = set()
        self.streams: set[str] = set()
        self.last_local = -1
        self.order = 0
        self.rows = 0

    def levels(self, rows: Any, side: int, path: Path, line: int, key: str) -> list[tuple[int, float, float]] | str:
        out = []
        for item in rows:
            if not isinstance(item, list) or len(item) < 2:
                raise DataValidationError("a level must be [price, qty]", path=path, line=line, field=key, value=item)
            px = _num(item[0], path, line, key)
            qty = _num(item[1], path, line, key)
            if not math.isfinite(px) or px <= 0:
                return "non_positive_price"
            if not math.isfinite(qty) or qty < 0:
                return "invalid_quantity"
            out.append((side, px, qty))
        return out

    def add(self, local_ns: int, msg: dict[str, Any], path: Path, line: int) -> None:
        self.rows += 1
        src = str(path)
        if local_ns < self.last_local:
            self.q.add_record(line, "local_ns", local_ns, "non_monotone_time", source=src)
            return
        self.last_local = local_ns
        self.order += 1
        if "lastUpdateId" in msg:
            bids = self.levels(msg.get("bids", []), 1, path, line, "bids")
            asks = self.levels(msg.get("asks", []), -1, path, line, "asks")
            if isinstance(bids, str):
                self.q.add_record(line, "bids", "", bids, source=src)
                return
            if isinstance(asks, str):
                self.q.add_record(line, "asks", "", asks, source=src)
                return
            b = np.array(bids, dtype=np.float64).reshape(-1, 3)
            a = np.array(asks, dtype=np.float64).reshape(-1, 3)
            self.snaps.append(
                DepthSnapshot(
                    local_ns,
                    _int(msg["lastUpdateId"], path, line, "lastUpdateId"),
                    self.order,
                    b[:, 1],
                    b[:, 2],
                    a[:, 1],
                    a[:, 2],
                )
            )
            return
        stream = msg.get("stream")
        data = msg.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            self.q.add_record(line, "stream", stream, "unknown_message", source=src)
            return
        self.streams.add(stream.split("@", 1)[-1])
        if "s" in data:
            self.symbols.add(str(data["s"]))
        try:
            if "@depth" in stream:
                self._depth(local_ns, data, path, line)
            elif stream.endswith("@trade"):
                self._trade(local_ns, data, path, line)
            elif stream.endswith("@bookTicker"):
                self._ticker(local_ns, data, path, line)
            else:
                self.q.add_record(line, "stream", stream, "unknown_stream", source=src)
        except KeyError as exc:
            raise DataValidationError("missing field", path=path, line=line, field=str(exc.args[0])) from exc

    def _depth(self, local_ns: int, d: dict[str, Any], path: Path, line: int) -> None:
        first, last = _int(d["U"], path, line, "U"), _int(d["u"], path, line, "u")
        if last < first:
            self.q.add_record(line, "u", last, "invalid_update_range", source=str(path))
            return
        lv_b = self.levels(d.get("b", []), 1, path, line, "b")
        lv_a = self.levels(d.get("a", []), -1, path, line, "a")
        if isinstance(lv_b, str):
            self.q.add_record(line, "b", "", lv_b, source=str(path))
            return
        if isinstance(lv_a, str):
            self.q.add_record(line, "a", "", lv_a, source=str(path))
            return
        start = len(self.lv_px)
        for side, px, qty in (*lv_b, *lv_a):
            self.lv_side.append(side)
            self.lv_px.append(px)
            self.lv_qty.append(qty)
        for k, v in (
            ("local", local_ns),
            ("exch", _ms(d["E"], path, line, "E")),
            ("U", first),
            ("u", last),
            ("pu", _int(d.get("pu", -1), path, line, "pu", low=-1)),
            ("start", start),
            ("stop", len(self.lv_px)),
            ("order", self.order),
        ):
            self.ev[k].append(v)

    def _trade(self, local_ns: int, d: dict[str, Any], path: Path, line: int) -> None:
        tid = _int(d["t"], path, line, "t")
        px = _num(d["p"], path, line, "p")
        qty = _num(d["q"], path, line, "q")
        src = str(path)
        if not math.isfinite(px) or px <= 0:
            self.q.add_record(line, "p", d["p"], "non_positive_price", source=src)
        elif not math.isfinite(qty) or qty <= 0:
            self.q.add_record(line, "q", d["q"], "non_positive_size", source=src)
        elif tid in self.trade_ids:
            self.q.add_record(line, "t", tid, "duplicate_trade_id", source=src)
        else:
            self.trade_ids.add(tid)
            for k, v in (
                ("local_ns", local_ns),
                ("exch_ns", _ms(d["T"], path, line, "T")),
                ("trade_id", tid),
                ("price", px),
                ("size", qty),
                ("sign", -1 if d["m"] else 1),
                ("order", self.order),
            ):
                self.tr[k].append(v)

    def _ticker(self, local_ns: int, d: dict[str, Any], path: Path, line: int) -> None:
        bp, bq = _num(d["b"], path, line, "b"), _num(d["B"], path, line, "B")
        ap, aq = _num(d["a"], path, line, "a"), _num(d["A"], path, line, "A")
        src = str(path)
        if not (math.isfinite(bp) and math.isfinite(ap)) or bp <= 0 or ap <= 0:
            self.q.add_record(line, "b", d["b"], "non_positive_price", source=src)
        elif bq < 0 or aq < 0 or not (math.isfinite(bq) and math.isfinite(aq)):
            self.q.add_record(line, "B", d["B"], "invalid_quantity", source=src)
        elif bp >= ap:
            self.q.add_record(line, "b", d["b"], "crossed_book", source=src)
        else:
            for k, v in (
                ("local_ns", local_ns),
                ("update_id", _int(d["u"], path, line, "u")),
                ("bid_price", bp),
                ("bid_size", bq),
                ("ask_price", ap),
                ("ask_size", aq),
            ):
                self.tk[k].append(v)


def read_binance(
    paths: str | Path | Sequence[str | Path],
    *,
    on_malformed: Literal["raise", "quarantine"] = "raise",
) -> BinanceCapture:
    """Parse and validate one or more consecutive Binance capture files of one symbol (no book yet).

    Parameters
    ----------
    paths
        File(s) in time order; a later file continues the earlier's sequence.
    on_malformed
        A line that is not ``<int ns> <JSON>`` raises :class:`DataValidationError` (default), or is
        quarantined as ``malformed_line``.

    Returns
    -------
    BinanceCapture
        Typed arrays; rows breaking a rule are quarantined, and sequence gaps between consecutive depth
        diffs are counted in ``report.details`` and listed (as event indices) in ``sequence_gaps``.
    """
    plist = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    if not plist:
        raise DataValidationError("no files given")
    q = Quarantine(source=" + ".join(str(p) for p in plist))
    b = _Builder(q)
    for path in plist:
        data = read_bytes(path)
        if not data.strip():
            raise DataValidationError("empty file: no data rows", path=path, line=1)
        for lineno, raw in iter_lines(data):
            head, sep, body = raw.partition(b" ")
            try:
                local_ns = int(head)
                if not 0 <= local_ns <= 4_102_444_800 * 10**9:
                    raise ValueError(f"receive time {head[:24]!r} is not ns since the epoch, up to 2100")
                if not sep:
                    raise ValueError("no JSON after the timestamp")
                msg = orjson.loads(body)
                if not isinstance(msg, dict):
                    raise ValueError("JSON is not an object")
            except (ValueError, orjson.JSONDecodeError) as exc:
                if on_malformed == "quarantine":
                    b.rows += 1
                    q.add_record(lineno, "line", raw[:80].decode(errors="replace"), "malformed_line", source=str(path))
                    continue
                fld = "local_ns" if not head.isdigit() else "json"
                raise DataValidationError(
                    f"malformed line: {exc}", path=path, line=lineno, field=fld, value=raw[:80].decode(errors="replace")
                ) from exc
            b.add(local_ns, msg, path, lineno)

    if len(b.symbols) > 1:
        raise DataValidationError(f"one capture must hold one symbol, got {sorted(b.symbols)}", path=plist[0])
    futures = any(s.startswith("depth@0ms") for s in b.streams) or any(v != -1 for v in b.ev["pu"])
    ev = {k: np.asarray(v, dtype=np.int64) for k, v in b.ev.items()}
    depth = DepthEvents(
        local_ns=ev["local"],
        exch_ns=ev["exch"],
        first_id=ev["U"],
        last_id=ev["u"],
        prev_id=ev["pu"],
        start=ev["start"],
        stop=ev["stop"],
        order=ev["order"],
        level_side=np.asarray(b.lv_side, dtype=np.int8),
        level_price=np.asarray(b.lv_px, dtype=np.float64),
        level_qty=np.asarray(b.lv_qty, dtype=np.float64),
    )
    gap = depth.prev_id[1:] != depth.last_id[:-1] if futures else depth.first_id[1:] != depth.last_id[:-1] + 1
    gaps = tuple(int(i) + 1 for i in np.flatnonzero(gap))
    trades = {
        k: np.asarray(v, dtype=np.float64 if k in ("price", "size") else np.int8 if k == "sign" else np.int64)
        for k, v in b.tr.items()
    }
    tickers = {
        k: np.asarray(v, dtype=np.int64 if k in ("local_ns", "update_id") else np.float64) for k, v in b.tk.items()
    }
    symbol = next(iter(b.symbols)) if b.symbols else plist[0].name.split("_")[0].upper()
    market: Literal["spot", "usdm", "coinm"] = "coinm" if _is_coinm(symbol) else "usdm" if futures else "spot"
    report = LoadReport.build(
        "binance",
        q.source,
        b.rows,
        q,
        symbol=symbol,
        market=market,
        depth_events=len(depth),
        level_updates=int(depth.level_side.size),
        snapshots=len(b.snaps),
        trades=int(trades["trade_id"].size),
        tickers=int(tickers["update_id"].size),
        sequence_gaps=len(gaps),
    )
    return BinanceCapture(
        symbol=symbol,
        market=market,
        paths=tuple(plist),
        depth=depth,
        snapshots=tuple(b.snaps),
        trades=trades,
        tickers=tickers,
        report=report,
        quarantine=q,
        sequence_gaps=gaps,
    )


def _is_coinm(symbol: str) -> bool:
    """COIN-M symbols: ``BTCUSD_PERP`` or a dated ``BTCUSD_240927`` (USD-M and spot have no underscore)."""
    head, sep, tail = symbol.upper().partition("_")
    return bool(sep) and head.endswith("USD") and (tail == "PERP" or tail.isdigit())
