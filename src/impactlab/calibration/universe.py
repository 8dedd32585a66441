"""Calibrate a whole universe: every instrument-day of a partitioned dataset
(:mod:`impactlab.data.universe`), fitted in parallel on local processes or a Dask cluster.

``calibrate_universe`` sends one task per instrument-day; each task reads its partition, builds the bars
and the trade series, and fits every model asked for with :func:`~impactlab.calibration.runner.calibrate`
(walk-forward validation included), so an instrument-day fitted here gives the same numbers as
``impactlab calibrate MODEL`` on its files.  Results reach the store as each task finishes:

- ``universe_runs``: one row per run (models, executor, counts, time);
- ``universe_fits``: one row per instrument-day and model, keyed by its model version
  ``MODEL:SYMBOL:DATE:RUN``, with the parameters, standard errors and out-of-sample metrics as JSON, or
  the error.

A task that raises (a worker killed, an unreadable file) is retried up to ``retries`` times and, if it
still fails, recorded as failed with its error; the other partitions go on.  A model that cannot be fitted
on a partition (too little data) is a deterministic failure: recorded for that model, not retried.  A run
interrupted half-way is finished with ``resume=RUN_ID``: partitions already recorded are skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from impactlab.calibration.datasets import trade_series
from impactlab.calibration.runner import MODELS, DataSource, _bars_with_flows, calibrate
from impactlab.data import Store
from impactlab.data.schemas import UNIVERSE_FITS, UNIVERSE_RUNS
from impactlab.data.universe import InstrumentDay, PartitionKey, list_partitions, read_instrument_day
from impactlab.errors import CalibrationError
from impactlab.features.bars import time_bars
from impactlab.features.book import book_features, ofi_events

__all__ = [
    "UNIVERSE_MODELS",
    "FitTask",
    "UniverseRun",
    "calibrate_universe",
    "fit_instrument_day",
    "universe_fits",
]

log = logging.getLogger(__name__)
NS = 1_000_000_000
UNIVERSE_MODELS = ("sqrt", "ofi", "propagator", "kyle", "sqrt-free")
"""Models a universe run can fit: those fitted on bars or trades (what every instrument-day has)."""


@dataclass(frozen=True)
class FitTask:
    """What one worker is sent: a partition, the models and the settings (small and picklable)."""

    root: str
    symbol: str
    date: str
    models: tuple[str, ...]
    bar_s: float = 10.0
    n_splits: int = 5

    @property
    def key(self) -> PartitionKey:
        return PartitionKey(self.symbol, dt.date.fromisoformat(self.date))


def _source(day: InstrumentDay, bar_s: float) -> DataSource:
    """The bars and trade series of an instrument-day, as the single-day runner builds them."""
    b, t = day.book, day.trades
    shape = (-1, 1)
    feats = book_features(b["bid_price"].reshape(shape), b["bid_size"].reshape(shape),
                          b["ask_price"].reshape(shape), b["ask_size"].reshape(shape), tick_size=day.tick_size,
                          depth_levels=1)  # fmt: skip
    ofi = ofi_events(b["bid_price"], b["bid_size"], b["ask_price"], b["ask_size"])
    bar_ns = round(bar_s * NS)
    origin = day.session_open_ns if day.session_open_ns > 0 else int(b["ts_ns"][0] // bar_ns * bar_ns)
    src = DataSource("universe", f"{day.key.symbol} {day.key.date}", {})

    def bars() -> pd.DataFrame:
        tb = time_bars(
            state_ts=b["ts_ns"], mid=feats["mid"], spread_bps=feats["spread_bps"],
            depth_1=feats["bid_depth_1"] + feats["ask_depth_1"], ofi=ofi, trade_ts=t["ts_ns"],
            trade_size=t["size"], trade_sign=t["sign"], bar_s=bar_s, origin_ns=origin,
            end_ns=day.session_close_ns - 1 if day.session_close_ns > 0 else None, adv=day.adv,
        )  # fmt: skip
        src.notes.append(f"bars of {bar_s:g} s")
        return _bars_with_flows(tb.to_pandas(), day.adv, day.daily_vol, src.notes)

    def trades() -> pd.DataFrame:
        pre = t["pre_state"]
        mid_before = np.where(pre >= 0, feats["mid"][np.clip(pre, 0, None)], np.nan)
        return trade_series(t["ts_ns"], t["sign"], t["size"], mid_before)

    src.builders = {"bars": bars, "trades": trades}
    return src


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        return _clean(x.item())
    return x


def fit_instrument_day(task: FitTask) -> dict[str, Any]:
    """Fit ``task.models`` on one instrument-day.  Raises on a partition that cannot be read (the caller
    retries); a model that cannot be fitted is reported in its entry (``error``) and the others go on.

    Returns ``{"symbol", "date", "n_states", "n_trades", "worker", "elapsed_s", "fits": {model: result}}``,
    each result the JSON object of :func:`~impactlab.calibration.runner.calibrate` (or ``{"error": ...}``).
    """
    t0 = time.perf_counter()
    day = read_instrument_day(task.root, task.key)
    src = _source(day, task.bar_s)
    fits: dict[str, Any] = {}
    for m in task.models:
        try:
            fits[m] = _clean(calibrate(m, src, n_splits=task.n_splits))
        except (CalibrationError, ValueError, np.linalg.LinAlgError) as exc:
            fits[m] = {"error": f"{type(exc).__name__}: {exc}"}
    return {"symbol": task.symbol, "date": task.date, "n_states": day.n_states, "n_trades": day.n_trades,
            "worker": f"{os.uname().nodename}:{os.getpid()}", "elapsed_s": time.perf_counter() - t0,
            "fits": fits}  # fmt: skip


Fit = Callable[[FitTask], dict[str, Any]]


@dataclass
class UniverseRun:
    """What a run did: ids, counts, failures and the throughput."""

    run_id: str
    executor: str
    workers: int
    partitions: int
    ok: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    model_failures: int = 0
    wall_s: float = 0.0

    @property
    def per_minute(self) -> float:
        """Instrument-days fitted per minute of wall time."""
        done = self.ok + len(self.failed)
        return done / self.wall_s * 60.0 if self.wall_s > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "executor": self.executor, "workers": self.workers,
                "partitions": self.partitions, "ok": self.ok, "failed": self.failed, "retried": self.retried,
                "skipped": self.skipped, "model_failures": self.model_failures, "wall_s": self.wall_s,
                "instrument_days_per_minute": self.per_minute}  # fmt: skip


def _die_with_parent(parent_pid: int) -> None:
    """In a worker: ask Linux to end this process when the one that started it dies (a killed ``calibrate
    universe`` leaves no idle workers behind), and end now if it already has (it died while this worker was
    still starting); elsewhere nothing."""
    import contextlib
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(0)


class _Pool:
    """Local processes or a Dask client behind one submit/wait interface."""

    def __init__(self, scheduler: Any, workers: int | None) -> None:
        self.client: Any = None
        self.pool: ProcessPoolExecutor | None = None
        self.workers = workers or os.cpu_count() or 1
        if scheduler is None:
            self.kind = "local-processes"
            self._new_pool()
            return
        from distributed import Client

        self.client = scheduler if isinstance(scheduler, Client) else Client(scheduler, timeout="30s")
        self.own_client = not isinstance(scheduler, Client)
        self.workers = max(1, len(self.client.scheduler_info(n_workers=-1)["workers"]))
        self.kind = f"dask {self.client.scheduler.address}"

    def _new_pool(self) -> None:
        import multiprocessing as mp

        self.pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"), initializer=_die_with_parent,
                                        initargs=(os.getpid(),))  # fmt: skip

    def submit(self, fn: Fit, task: FitTask) -> Any:
        if self.client is not None:
            return self.client.submit(fn, task, pure=False, key=f"fit-{task.symbol}-{task.date}-{time.time_ns()}")
        assert self.pool is not None
        return self.pool.submit(fn, task)

    def wait_any(self, futures: Iterable[Any]) -> list[Any]:
        if self.client is not None:
            from distributed import wait as dwait

            return list(dwait(list(futures), return_when="FIRST_COMPLETED").done)
        return list(wait(list(futures), return_when=FIRST_COMPLETED).done)

    def result(self, fut: Any) -> dict[str, Any]:
        out: dict[str, Any] = fut.result()
        return out

    def broken(self, exc: BaseException) -> bool:
        """A local pool whose process died is replaced (every task in it is then retried)."""
        if isinstance(exc, BrokenProcessPool) and self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self._new_pool()
            return True
        return False

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        if self.client is not None and self.own_client:
            self.client.close()


def _rows(run_id: str, res: dict[str, Any], attempts: int, now_ns: int) -> list[dict[str, Any]]:
    rows = []
    for model, r in res["fits"].items():
        ok = "error" not in r
        oos = r.get("metrics", {}).get("out_of_sample", {}) if ok else {}
        rows.append({
            "version": f"{model}:{res['symbol']}:{res['date']}:{run_id}", "run_id": run_id,
            "symbol": res["symbol"], "date": res["date"], "model": model, "status": "ok" if ok else "model-failed",
            "n_obs": r.get("n") if ok else None, "params_json": json.dumps(r["params"]) if ok else None,
            "stderr_json": json.dumps(r["stderr"]) if ok else None, "oos_rmse_bps": oos.get("rmse_bps"),
            "oos_r2": oos.get("r2"), "result_json": json.dumps(r) if ok else None, "error": r.get("error"),
            "attempts": attempts, "elapsed_s": float(res["elapsed_s"]), "worker": res["worker"], "created_ns": now_ns,
        })  # fmt: skip
    return rows


def _failed_rows(run_id: str, task: FitTask, error: str, attempts: int, now_ns: int) -> list[dict[str, Any]]:
    return [{"version": f"{m}:{task.symbol}:{task.date}:{run_id}", "run_id": run_id, "symbol": task.symbol,
             "date": task.date, "model": m, "status": "failed", "n_obs": None, "params_json": None,
             "stderr_json": None, "oos_rmse_bps": None, "oos_r2": None, "result_json": None, "error": error,
             "attempts": attempts, "elapsed_s": 0.0, "worker": "", "created_ns": now_ns}
            for m in task.models]  # fmt: skip


def calibrate_universe(
    data_dir: str | Path,
    models: Sequence[str],
    store: Store,
    *,
    scheduler: Any = None,
    workers: int | None = None,
    bar_s: float = 10.0,
    n_splits: int = 5,
    retries: int = 2,
    symbols: Sequence[str] | None = None,
    resume: str | None = None,
    fit: Fit = fit_instrument_day,
    clock: Callable[[], int] = time.time_ns,
    on_done: Callable[[str, str], None] | None = None,
) -> UniverseRun:
    """Fit ``models`` on every instrument-day under ``data_dir`` and record them in ``store``.

    Parameters
    ----------
    scheduler
        ``None``: local processes (``workers`` of them, default one per core); a scheduler address
        (``tcp://host:8786``) or a ``distributed.Client``: that Dask cluster.
    retries
        Extra attempts for a partition whose task raised.
    symbols
        Only these symbols (default all).
    resume
        A run id to finish: its recorded partitions are skipped and new results join it.
    fit
        The per-partition function (a top-level, picklable callable; tests inject faults here).
    on_done
        Called with ``(partition, status)`` as each partition finishes (a progress bar).
    """
    unknown = [m for m in models if m not in UNIVERSE_MODELS]
    if unknown or not models:
        raise CalibrationError(f"universe models are {list(UNIVERSE_MODELS)}, got {list(models)}")
    for m in models:
        assert m in MODELS
    if retries < 0:
        raise CalibrationError(f"'retries' must be >= 0, got {retries}")
    keys = list_partitions(data_dir)
    if symbols:
        keys = [k for k in keys if k.symbol in set(symbols)]
    if not keys:
        raise CalibrationError(f"no instrument-days under {data_dir}")
    done: set[tuple[str, str]] = set()
    if resume is not None:
        prev = store.read("universe_runs", where="run_id = ?", params=[resume])
        if not prev.num_rows:
            raise CalibrationError(f"no universe run {resume!r} in the store")
        run_id = resume
        fits = store.read("universe_fits", where="run_id = ?", params=[resume]).to_pylist()
        done = {(r["symbol"], r["date"]) for r in fits if r["status"] != "failed"}
    else:
        run_id = f"U{store.count('universe_runs') + 1:04d}"
    pool = _Pool(scheduler, workers)
    run = UniverseRun(run_id, pool.kind, pool.workers, len(keys))
    t0 = time.perf_counter()
    if resume is None:
        _write(store, "universe_runs", [{
            "run_id": run_id, "started_ns": clock(), "finished_ns": None, "data_dir": str(data_dir),
            "models": ",".join(models), "executor": pool.kind, "workers": pool.workers, "partitions": len(keys),
            "partitions_ok": None, "partitions_failed": None, "wall_s": None,
        }])  # fmt: skip
    tasks = [FitTask(str(data_dir), k.symbol, k.date.isoformat(), tuple(models), bar_s, n_splits) for k in keys]
    todo = [t for t in tasks if (t.symbol, t.date) not in done]
    run.skipped = len(tasks) - len(todo)
    attempts: dict[FitTask, int] = {}
    try:
        running: dict[Any, FitTask] = {}
        queue = list(reversed(todo))
        suspects: list[FitTask] = []  # in flight when a local process died: rerun one at a time to find the culprit
        limit = max(2 * pool.workers, 4)  # a bounded window: a thousand partitions never sit in memory at once
        while queue or running or suspects:
            if suspects:
                if not running:
                    task = suspects.pop()
                    attempts[task] = attempts.get(task, 0) + 1
                    running[pool.submit(fit, task)] = task
            else:
                while queue and len(running) < limit:
                    task = queue.pop()
                    attempts[task] = attempts.get(task, 0) + 1
                    running[pool.submit(fit, task)] = task
            for fut in pool.wait_any(list(running)):
                task_or_none = running.pop(fut, None)
                if task_or_none is None:
                    continue  # belonged to a pool that died and was replaced
                task = task_or_none
                name = f"{task.symbol}/{task.date}"
                try:
                    res = pool.result(fut)
                except Exception as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    if pool.broken(exc):
                        inflight = [task, *running.values()]
                        running.clear()
                        if len(inflight) > 1:  # any of them may have killed it: none is charged, each reruns alone
                            for t in inflight:
                                attempts[t] -= 1
                            suspects.extend(inflight)
                            log.warning("a worker process died with %d partitions in flight; rerunning them one by "
                                        "one", len(inflight))  # fmt: skip
                            break
                    if attempts[task] <= retries:
                        run.retried[name] = attempts[task]
                        log.warning("partition %s failed (attempt %d), retrying: %s", name, attempts[task], reason)
                        (suspects if isinstance(exc, BrokenProcessPool) else queue).append(task)
                        continue
                    run.failed[name] = reason
                    log.error("partition %s failed after %d attempts: %s", name, attempts[task], reason)
                    _write(store, "universe_fits", _failed_rows(run_id, task, reason, attempts[task], clock()))
                    if on_done:
                        on_done(name, "failed")
                    continue
                rows = _rows(run_id, res, attempts[task], clock())
                run.model_failures += sum(r["status"] != "ok" for r in rows)
                _write(store, "universe_fits", rows)
                run.ok += 1
                if on_done:
                    on_done(name, "ok")
    finally:
        pool.close()
    run.wall_s = time.perf_counter() - t0
    fits = store.read("universe_fits", where="run_id = ?", params=[run_id]).to_pylist()
    failed = {(r["symbol"], r["date"]) for r in fits if r["status"] == "failed"}
    fitted = {(r["symbol"], r["date"]) for r in fits} - failed
    store.update("universe_runs", run_id, finished_ns=clock(), partitions_ok=len(fitted),
                 partitions_failed=len(failed), wall_s=run.wall_s)  # fmt: skip
    return run


def _write(store: Store, name: str, rows: list[dict[str, Any]]) -> None:
    schema = UNIVERSE_RUNS if name == "universe_runs" else UNIVERSE_FITS
    # a partition fitted after it failed (a resumed run) replaces its failure rows
    store.write(name, pa.Table.from_pylist(rows, schema=schema.remove_metadata()), replace=name == "universe_fits")


def universe_fits(store: Store, run_id: str | None = None) -> pd.DataFrame:
    """The fits of ``run_id`` (default the latest run) as a frame, one row per instrument-day and model,
    with the parameters spread into columns ``param_NAME``."""
    if run_id is None:
        runs = store.read("universe_runs").to_pylist()
        if not runs:
            raise CalibrationError("the store holds no universe run")
        run_id = max(runs, key=lambda r: r["started_ns"])["run_id"]
    df = store.read("universe_fits", where="run_id = ?", params=[run_id]).to_pandas()
    params = [json.loads(p) if isinstance(p, str) else {} for p in df["params_json"]]
    for name in sorted({k for p in params for k in p}):
        df[f"param_{name}"] = [p.get(name, np.nan) for p in params]
    return df.sort_values(["symbol", "date", "model"]).reset_index(drop=True)
