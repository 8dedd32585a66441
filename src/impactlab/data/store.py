"""The store: orders, fills, breaks, quarantine, load reports, model versions and engine state; Parquet for
market-data caches.

Two backends behind one interface.  A DuckDB file (the default) is embedded: one process writes it at a
time.  A PostgreSQL database (``Store("postgresql://user@host/db")``) is shared: the engine, the service
and TCA read and write it at once, each statement committed as it runs.

Tables are created from the schemas in :mod:`impactlab.data.schemas`, with the indexes the order path
reads by.  Orders and fills carry a primary key (``order_id``, ``client_order_id``, ``fill_id``) and are
inserted ignoring rows whose key exists, so writing the same record twice (a retry after a crash) never
duplicates it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from impactlab.config import default_store_path
from impactlab.data.schemas import (
    BREAKS,
    CHILD_ORDERS,
    COST_PREDICTIONS,
    ENGINE_STATE,
    FILLS,
    HEDGE_EVENTS,
    HEDGES,
    LOAD_REPORTS,
    MODEL_VERSIONS,
    ORDER_EVENTS,
    PARENT_ORDERS,
    QUARANTINE,
    UNIVERSE_FITS,
    UNIVERSE_RUNS,
    ChildOrder,
    Fill,
    ParentOrder,
)
from impactlab.data.validation import LoadReport, Quarantine
from impactlab.errors import DataValidationError

__all__ = ["PostgresStore", "Store", "is_url", "read_parquet", "write_parquet"]

_TABLES: dict[str, tuple[pa.Schema, str | None]] = {
    "parent_orders": (PARENT_ORDERS, "order_id"),
    "child_orders": (CHILD_ORDERS, "client_order_id"),
    "fills": (FILLS, "fill_id"),
    "order_events": (ORDER_EVENTS, "event_id"),
    "breaks": (BREAKS, "break_id"),
    "cost_predictions": (COST_PREDICTIONS, "prediction_id"),
    "model_versions": (MODEL_VERSIONS, "version"),
    "hedges": (HEDGES, "hedge_id"),
    "hedge_events": (HEDGE_EVENTS, "event_id"),
    "engine_state": (ENGINE_STATE, "key"),
    "quarantine": (QUARANTINE, None),
    "load_reports": (LOAD_REPORTS, "load_id"),
    "universe_runs": (UNIVERSE_RUNS, "run_id"),
    "universe_fits": (UNIVERSE_FITS, "version"),
}
_INDEXES = {  # the reads the order path and the service make by key other than the primary one
    "child_orders": ("parent_order_id",),
    "fills": ("parent_order_id", "client_order_id", "ts_ns"),
    "order_events": ("client_order_id",),
    "cost_predictions": ("parent_order_id", "ts_ns"),
    "hedge_events": ("hedge_id",),
    "breaks": ("parent_order_id",),
}
_OUTCOME_COLUMNS = ("arrival_mid", "avg_price", "end_mid", "post_mid", "adv", "daily_vol", "spread_bps",
                    "executed_end_ns", "post_s")  # fmt: skip
_SQL_TYPES = {
    pa.int8(): "TINYINT",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
}


def _holder(message: str) -> str:
    """The process DuckDB names as holding a file's lock, with its command line where the system shows it."""
    import re

    m = re.search(r"PID (\d+)", message)
    if m is None:
        return "another process"
    pid = m.group(1)
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmd = ""
    short = " ".join(Path(w).name if i == 0 else w for i, w in enumerate(cmd.split()[:8]))
    return f"process {pid}" + (f" ({short[:80]})" if short else "") + "; open it when that process ends"


def _ddl(name: str, schema: pa.Schema, key: str | None, types: dict[pa.DataType, str] = _SQL_TYPES) -> str:
    cols = []
    for f in schema:
        col = f"{f.name} {types[f.type]}"
        if not f.nullable:
            col += " NOT NULL"
        if f.name == key:
            col += " PRIMARY KEY"
        cols.append(col)
    return f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(cols)})"


def is_url(path: str | Path | None) -> bool:
    """Whether ``path`` names a PostgreSQL database (``postgresql://…``, also as a ``Path`` mangled it)."""
    return path is not None and str(path).startswith(("postgresql:/", "postgres:/"))


def _url(path: str | Path) -> str:
    import re

    return re.sub(r"^(postgres(?:ql)?):/+", "postgresql://", str(path))


class Store:
    """The store: a DuckDB file, or a PostgreSQL database when ``path`` is a ``postgresql://`` URL.

    Parameters
    ----------
    path
        Database file (default :func:`impactlab.config.default_store_path`; ``":memory:"`` for tests), or
        ``postgresql://[user[:password]@]host[:port]/dbname`` for the shared store.
    read_only
        Open without write access (several readers may share a DuckDB file while no one writes it; a
        PostgreSQL store is read by anyone at any time).
    """

    def __new__(cls, path: str | Path | None = None, *, read_only: bool = False) -> Store:
        if cls is Store and is_url(path):
            return super().__new__(PostgresStore)
        return super().__new__(cls)

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        target = default_store_path() if path is None else path
        if str(target) != ":memory:":
            Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)
            target = str(Path(target).expanduser())
        self.path = str(target)
        if read_only and self.path != ":memory:" and not Path(self.path).exists():
            raise DataValidationError("store not found (run a command that writes it first, e.g. execute)",
                                      path=self.path)  # fmt: skip
        try:
            self._con = duckdb.connect(self.path, read_only=read_only)
        except (duckdb.IOException, duckdb.Error) as exc:
            lock = "lock" in str(exc).lower()
            if lock:
                raise DataValidationError(f"cannot open the store: held open for writing by {_holder(str(exc))}",
                                          path=self.path) from exc  # fmt: skip
            raise DataValidationError(f"cannot open the store: not a DuckDB store, or unreadable "
                                      f"({str(exc).splitlines()[0]})", path=self.path) from exc  # fmt: skip
        if not read_only:
            self._create()

    def _create(self) -> None:
        for name, (schema, key) in _TABLES.items():
            self._run(_ddl(name, schema, key, self._types))
            have = self._columns(name)
            for f in schema:  # a store of an older release: its tables gain the new (nullable) columns
                if f.name not in have and f.nullable:
                    self._run(f"ALTER TABLE {name} ADD COLUMN {f.name} {self._types[f.type]}")
            for col in _INDEXES.get(name, ()):
                self._run(f"CREATE INDEX IF NOT EXISTS ix_{name}_{col} ON {name} ({col})")

    _types = _SQL_TYPES

    def _columns(self, name: str) -> set[str]:
        rows = self._run("SELECT column_name FROM information_schema.columns WHERE table_name = ?", [name])
        return {str(r[0]) for r in rows}

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Execute and consume the result (DuckDB refuses new work while a result is open)."""
        return self._con.execute(sql, list(params)).fetchall()

    def _select(self, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
        return self._con.sql(sql, params=list(params) or None).to_arrow_table()

    def _insert(self, name: str, table: pa.Table, key: str | None, replace: bool) -> int:
        schema = _TABLES[name][0]
        before = self.count(name)
        self._con.register("_incoming", table)
        try:
            verb = ("INSERT OR REPLACE INTO" if replace else "INSERT OR IGNORE INTO") if key else "INSERT INTO"
            self._run(f"{verb} {name} SELECT {', '.join(schema.names)} FROM _incoming")
        finally:
            self._con.unregister("_incoming")
        return self.count(name) - before

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._run("BEGIN TRANSACTION")
        try:
            yield
            self._run("COMMIT")
        except Exception:
            self._run("ROLLBACK")
            raise

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; the file keeps everything committed."""
        self._con.close()

    @staticmethod
    def tables() -> list[str]:
        """Names of the store's tables."""
        return sorted(_TABLES)

    def write(self, name: str, table: pa.Table, *, replace: bool = False) -> int:
        """Append ``table`` to ``name``; rows whose key already exists are ignored (``replace``: overwritten).
        Returns rows added."""
        if name not in _TABLES:
            raise ValueError(f"'name' must be one of {self.tables()}, got {name!r}")
        schema, key = _TABLES[name]
        try:
            table = table.select(schema.names).cast(schema.remove_metadata())
        except (KeyError, pa.ArrowInvalid, ValueError) as exc:
            raise DataValidationError(f"table does not fit the {name} schema: {exc}", field=name) from exc
        return self._insert(name, table, key, replace)

    def read(self, name: str, *, where: str | None = None, params: Sequence[Any] = (), order_by: str | None = None,
             limit: int | None = None) -> pa.Table:  # fmt: skip
        """Rows of ``name`` (optionally filtered by a parameterised ``where`` clause) in insertion order, or
        by ``order_by`` (``"COLUMN"`` or ``"COLUMN DESC"``), at most ``limit`` of them."""
        if name not in _TABLES:
            raise ValueError(f"'name' must be one of {self.tables()}, got {name!r}")
        sql = f"SELECT * FROM {name}" + (f" WHERE {where}" if where else "")
        if order_by is not None:
            col, _, way = order_by.partition(" ")
            if col not in _TABLES[name][0].names or way.upper() not in ("", "ASC", "DESC"):
                raise ValueError(f"'order_by' must be a column of {name} and ASC or DESC, got {order_by!r}")
            sql += f" ORDER BY {col} {way.upper()}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._select(sql, params, _TABLES[name][0])

    def update(self, name: str, key_value: Any, **values: Any) -> bool:
        """Set columns of the row of keyed table ``name`` whose key is ``key_value``; False if there is none."""
        if name not in _TABLES or _TABLES[name][1] is None:
            raise ValueError(f"'name' must be a keyed table, got {name!r}")
        schema, key = _TABLES[name]
        unknown = sorted((set(values) - set(schema.names)) | ({str(key)} & set(values)))
        if unknown or not values:
            raise ValueError(f"columns to set must be non-key columns of {name}, got {sorted(values)}")
        sets = ", ".join(f"{k} = ?" for k in values)  # names checked against the schema, values bound
        rows = self._run(f"UPDATE {name} SET {sets} WHERE {key} = ? RETURNING {key}", [*values.values(), key_value])
        return bool(rows)

    def count(self, name: str) -> int:
        """Number of rows in ``name``."""
        return int(self._run(f"SELECT count(*) FROM {name}")[0][0])

    def record_load(self, report: LoadReport, quarantine: Quarantine) -> None:
        """Write a load report and its quarantined rows in one transaction."""
        with self._transaction():
            self.write("load_reports", report.to_arrow())
            self.write("quarantine", quarantine.to_arrow())

    def put_state(self, key: str, value: Any, *, ts_ns: int) -> None:
        """Set the named state entry ``key`` to ``value`` (JSON), replacing what was there."""
        import json

        row = pa.table({"key": [key], "value_json": [json.dumps(value)], "ts_ns": [int(ts_ns)]})
        self.write("engine_state", row, replace=True)

    def get_state(self, key: str, default: Any = None) -> Any:
        """The named state entry ``key`` (``default`` if never set)."""
        import json

        rows = self._run("SELECT value_json FROM engine_state WHERE key = ?", [key])
        return json.loads(rows[0][0]) if rows else default

    def record_outcome(self, order_id: str, **values: float | None) -> bool:
        """Fill in a parent order's outcome columns (``arrival_mid``, ``avg_price``, ``end_mid``, ``post_mid``,
        ``adv``, ``daily_vol``, ``spread_bps``) once it is executed; returns False for an unknown order."""
        unknown = set(values) - set(_OUTCOME_COLUMNS)
        if unknown:
            raise ValueError(f"outcome columns are {list(_OUTCOME_COLUMNS)}, got {sorted(unknown)}")
        if not values:
            return False
        sets = ", ".join(f"{k} = ?" for k in values)  # names from the fixed list above, values bound
        rows = self._run(
            f"UPDATE parent_orders SET {sets} WHERE order_id = ? RETURNING order_id", [*values.values(), order_id]
        )
        return bool(rows)

    def add_records(self, records: Iterable[ParentOrder | ChildOrder | Fill]) -> int:
        """Write domain records (parent orders, child orders, fills); returns rows added."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for rec in records:
            row = {f.name: getattr(rec, f.name) for f in dataclasses.fields(rec) if f.name != "extra"}
            row = {k: (int(v) if k == "side" else str(v) if k == "order_type" else v) for k, v in row.items()}
            name = {ParentOrder: "parent_orders", ChildOrder: "child_orders", Fill: "fills"}[type(rec)]
            groups.setdefault(name, []).append(row)
        added = 0
        for name, rows in groups.items():
            schema = _TABLES[name][0]
            cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
            added += self.write(name, pa.table(cols, schema=schema.remove_metadata()))
        return added


_PG_TYPES = {pa.int8(): "SMALLINT", pa.int64(): "BIGINT", pa.float64(): "DOUBLE PRECISION", pa.string(): "TEXT"}


class PostgresStore(Store):
    """The shared store on PostgreSQL (``psycopg``): the same tables, keys and indexes as the DuckDB file,
    every statement committed as it runs (autocommit), so the engine, the service and TCA see each other's
    writes at once.  Made by ``Store("postgresql://…")``."""

    _types = _PG_TYPES

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        import psycopg

        assert path is not None
        self.path = _url(path)
        safe = self.path.split("@")[-1] if "@" in self.path else self.path.split("//", 1)[-1]
        try:
            self._pgc = psycopg.connect(self.path, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            first = (str(exc).strip().splitlines() or [""])[0]
            raise DataValidationError(f"cannot open the store: PostgreSQL at {safe} refused ({first})",
                                      path=safe) from exc  # fmt: skip
        self._pg = psycopg
        if read_only:
            self._run("SET default_transaction_read_only = on")
        else:
            self._run("SELECT pg_advisory_lock(7250426)")  # one creator at a time: CREATE … IF NOT EXISTS races
            try:
                self._create()
            finally:
                self._run("SELECT pg_advisory_unlock(7250426)")

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._pgc.cursor() as cur:
            cur.execute(self._sql(sql), list(params))  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []

    def _select(self, sql: str, params: Sequence[Any], schema: pa.Schema) -> pa.Table:
        with self._pgc.cursor() as cur:
            cur.execute(self._sql(sql), list(params))  # type: ignore[arg-type]
            rows = cur.fetchall()
        plain = schema.remove_metadata()
        return pa.table({f.name: pa.array([r[i] for r in rows], type=f.type) for i, f in enumerate(plain)},
                        schema=plain)  # fmt: skip

    def _insert(self, name: str, table: pa.Table, key: str | None, replace: bool) -> int:
        cols = table.schema.names
        marks = ", ".join(["%s"] * len(cols))
        sql = f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({marks})"
        if key and replace:
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != key)
            sql += f" ON CONFLICT ({key}) DO UPDATE SET {sets}"
        elif key:
            sql += " ON CONFLICT DO NOTHING"
        rows = [tuple(r.values()) for r in table.to_pylist()]
        if not rows:
            return 0
        added = 0
        with self._pgc.cursor() as cur:
            for r in rows:  # one statement per row: rowcount says whether it was new
                cur.execute(sql, r)  # type: ignore[arg-type]
                added += max(cur.rowcount, 0)
        return added

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._pgc.transaction():
            yield

    def close(self) -> None:
        self._pgc.close()


def write_parquet(table: pa.Table, path: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Write a market-data table to Parquet (zstd), atomically, keeping ``metadata`` in the file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(table.schema.metadata or {})
    meta.update({k.encode(): v.encode() for k, v in (metadata or {}).items()})
    tmp = p.with_suffix(p.suffix + ".tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp, compression="zstd")
    tmp.replace(p)
    return p


def read_parquet(path: str | Path) -> pa.Table:
    """Read a Parquet file written by :func:`write_parquet`."""
    p = Path(path)
    if not p.exists():
        raise DataValidationError("file not found", path=p)
    return pq.read_table(p)
