"""Row validation with quarantine, load reports, and precise errors for malformed files.

A batch load never drops a row silently: a row that breaks a rule goes to a quarantine table with the
rule's name, and the :class:`LoadReport` counts what was read, kept and set aside.  A file that cannot be
parsed at all (wrong column count, text in a numeric field, a truncated line or stream, an empty file)
raises :class:`~impactlab.errors.DataValidationError` naming the file, line, field and value: the fast
parsers (pyarrow, orjson) find that something is wrong, and :func:`diagnose_csv` then walks the file
once to say exactly where.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from impactlab.data.schemas import LOAD_REPORTS, QUARANTINE
from impactlab.errors import DataValidationError

__all__ = ["LoadReport", "Quarantine", "diagnose_csv", "open_text"]

NumericKind = Literal["int", "float", "str"]


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a plain or gzip-compressed text file for reading (by magic number, not by name)."""
    p = Path(path)
    if not p.exists():
        raise DataValidationError("file not found", path=p)
    with open(p, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(p, "rb"), encoding="utf-8", newline="")
    return open(p, encoding="utf-8", newline="")


def read_bytes(path: str | Path) -> bytes:
    """Whole file as bytes, decompressing gzip; a truncated stream is a :class:`DataValidationError`."""
    p = Path(path)
    if not p.exists():
        raise DataValidationError("file not found", path=p)
    raw = p.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataValidationError(f"corrupt or truncated gzip stream: {exc}", path=p) from exc
    return raw


def _first_non_utf8(data: bytes) -> int:
    """Offset of the first byte that is not valid UTF-8 (len(data) if all is)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return int(exc.start)
    return len(data)


def _check_value(text: str, kind: NumericKind) -> bool:
    if kind == "str":
        return True
    try:
        if kind == "int":
            int(text)
        else:
            float(text)
    except ValueError:
        return False
    return True


def diagnose_csv(
    path: str | Path,
    columns: Sequence[str],
    kinds: Sequence[NumericKind],
    *,
    header: bool,
) -> None:
    """Walk a CSV file and raise :class:`DataValidationError` at its first malformed line.

    Called after a fast parser has failed, so the error can name the line, field and value.  Returns
    normally when nothing is wrong with the file's shape.
    """
    p = Path(path)
    try:
        with open_text(p) as fh:
            reader = csv.reader(fh)
            lineno = 0
            first = True
            for lineno, row in enumerate(reader, start=1):
                if first and header:
                    first = False
                    continue
                first = False
                if len(row) != len(columns):
                    raise DataValidationError(
                        f"expected {len(columns)} columns, got {len(row)}",
                        path=p,
                        line=lineno,
                        field=columns[min(len(row), len(columns) - 1)],
                        value=",".join(row),
                    )
                for name, kind, text in zip(columns, kinds, row, strict=True):
                    if not _check_value(text, kind):
                        raise DataValidationError(f"not a valid {kind}", path=p, line=lineno, field=name, value=text)
            if lineno == 0 or (header and lineno == 1):
                raise DataValidationError("empty file: no data rows", path=p, line=lineno or None)
    except UnicodeDecodeError as exc:  # name the line, not the byte offset
        data = read_bytes(p)
        bad = _first_non_utf8(data)
        line = data.count(b"\n", 0, bad) + 1
        start = data.rfind(b"\n", 0, bad) + 1
        stop = data.find(b"\n", bad)
        raw = data[start : stop if stop >= 0 else len(data)]
        raise DataValidationError("not UTF-8 text", path=p, line=line, value=raw[:80].decode(errors="replace")) from exc
    except (EOFError, OSError, zlib.error) as exc:
        raise DataValidationError(f"unreadable or truncated file: {exc}", path=p) from exc


@dataclass
class Quarantine:
    """Rows set aside by a load, one record per bad row, first failing rule wins."""

    source: str
    load_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    _lines: list[NDArray[np.int64]] = field(default_factory=list)
    _fields: list[str] = field(default_factory=list)
    _values: list[list[str]] = field(default_factory=list)
    _reasons: list[str] = field(default_factory=list)
    _sources: list[str | None] = field(default_factory=list)

    def reject(
        self,
        bad: NDArray[np.bool_],
        lines: NDArray[np.int64],
        field_name: str,
        values: NDArray[Any] | Sequence[Any],
        reason: str,
        already: NDArray[np.bool_],
    ) -> NDArray[np.bool_]:
        """Quarantine rows where ``bad`` holds and no earlier rule already fired; return the new mask."""
        new = bad & ~already
        idx = np.flatnonzero(new)
        if idx.size:
            self._lines.append(np.asarray(lines)[idx].astype(np.int64))
            self._values.append([str(v) for v in np.asarray(values)[idx]])
            self._fields.append(field_name)
            self._reasons.append(reason)
            self._sources.append(None)
        return already | new

    def add_record(self, line: int, field_name: str, value: object, reason: str, *, source: str | None = None) -> None:
        """Quarantine one row found outside a vectorised rule (streaming parsers, multi-file loads)."""
        self._lines.append(np.array([line], dtype=np.int64))
        self._values.append([str(value)])
        self._fields.append(field_name)
        self._reasons.append(reason)
        self._sources.append(source)

    def __len__(self) -> int:
        return int(sum(a.size for a in self._lines))

    def counts(self) -> dict[str, int]:
        """Quarantined rows per reason."""
        c: Counter[str] = Counter()
        for lines, reason in zip(self._lines, self._reasons, strict=True):
            c[reason] += int(lines.size)
        return dict(sorted(c.items()))

    def to_arrow(self) -> pa.Table:
        """The quarantine as a table in the :data:`~impactlab.data.schemas.QUARANTINE` schema."""
        n = len(self)
        lines = np.concatenate(self._lines) if self._lines else np.zeros(0, np.int64)
        fields: list[str] = []
        reasons: list[str] = []
        values: list[str] = []
        sources: list[str] = []
        for arr, fname, vals, reason, src in zip(
            self._lines, self._fields, self._values, self._reasons, self._sources, strict=True
        ):
            fields += [fname] * arr.size
            reasons += [reason] * arr.size
            sources += [src or self.source] * arr.size
            values += vals
        order = np.argsort(lines, kind="stable")
        return pa.table(
            {
                "load_id": pa.array([self.load_id] * n, pa.string()),
                "source": pa.array([sources[i] for i in order], pa.string()),
                "line": pa.array(lines[order], pa.int64()),
                "field": pa.array([fields[i] for i in order], pa.string()),
                "value": pa.array([values[i] for i in order], pa.string()),
                "reason": pa.array([reasons[i] for i in order], pa.string()),
            },
            schema=QUARANTINE,
        )

    def lines(self) -> NDArray[np.int64]:
        """Sorted source lines of every quarantined row."""
        return np.sort(np.concatenate(self._lines)) if self._lines else np.zeros(0, np.int64)


@dataclass(frozen=True)
class LoadReport:
    """What a batch load read, kept and set aside.

    Attributes
    ----------
    kind
        ``lobster``, ``binance``, ``trades``, ``quotes``, ``parent_orders`` or ``fills``.
    source
        The file(s) read.
    rows_read, rows_accepted, rows_quarantined
        Counts; ``rows_read == rows_accepted + rows_quarantined``.
    reasons
        Quarantined rows per rule.
    details
        Loader-specific facts (sequence gaps, snapshot count, levels…).
    """

    load_id: str
    kind: str
    source: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    reasons: dict[str, int]
    details: dict[str, Any] = field(default_factory=dict)
    loaded_ns: int = field(default_factory=time.time_ns)

    def __post_init__(self) -> None:
        if self.rows_read != self.rows_accepted + self.rows_quarantined:
            raise ValueError(
                f"load report does not add up: read {self.rows_read} != accepted {self.rows_accepted}"
                f" + quarantined {self.rows_quarantined}"
            )

    @classmethod
    def build(cls, kind: str, source: str, rows_read: int, quarantine: Quarantine, **details: Any) -> LoadReport:
        """Report for a load whose rejected rows are all in ``quarantine``."""
        q = len(quarantine)
        return cls(
            load_id=quarantine.load_id,
            kind=kind,
            source=source,
            rows_read=rows_read,
            rows_accepted=rows_read - q,
            rows_quarantined=q,
            reasons=quarantine.counts(),
            details=details,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return {
            "load_id": self.load_id,
            "kind": self.kind,
            "source": self.source,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "reasons": self.reasons,
            "details": self.details,
        }

    def to_arrow(self) -> pa.Table:
        """One row in the :data:`~impactlab.data.schemas.LOAD_REPORTS` schema."""
        return pa.table(
            {
                "load_id": [self.load_id],
                "kind": [self.kind],
                "source": [self.source],
                "rows_read": [self.rows_read],
                "rows_accepted": [self.rows_accepted],
                "rows_quarantined": [self.rows_quarantined],
                "reasons_json": [json.dumps({"reasons": self.reasons, "details": self.details}, default=str)],
                "loaded_ns": [self.loaded_ns],
            },
            schema=LOAD_REPORTS,
        )


def row_lines(path: str | Path, rows: int, *, header: int = 0) -> NDArray[np.int64]:
    """The 1-based file line of each of ``rows`` CSV data rows: ``header + 1 …`` unless the file has blank
    lines (which CSV readers skip), whose lines are then counted so that errors name the line an editor
    shows."""
    plain = np.arange(1, rows + 1, dtype=np.int64) + header
    try:
        data = read_bytes(path)
    except DataValidationError:
        return plain
    if b"\n\n" not in data and b"\n\r\n" not in data and not data.startswith((b"\n", b"\r\n")):
        return plain
    lines = data.split(b"\n")
    nonblank = np.flatnonzero([bool(x.strip()) for x in lines]) + 1
    out = nonblank[header:]
    return out[:rows] if out.size >= rows else plain


def iter_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(1-based line number, line)`` for every non-empty line of a byte buffer."""
    for i, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield i, line
