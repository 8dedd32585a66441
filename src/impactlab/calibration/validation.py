"""Walk-forward splits and out-of-sample metrics."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.base import clone

from impactlab.errors import CalibrationError
from impactlab.impact._base import ImpactModel

__all__ = ["compare_models", "evaluate", "metrics", "walk_forward_splits"]

F64 = NDArray[np.float64]


def walk_forward_splits(
    n: int, *, n_splits: int = 5, min_train_fraction: float = 0.5, gap: int = 0
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.int64]]]:
    """Blocked, expanding-window splits with no look-ahead.

    The first ``min_train_fraction`` of the rows train the first model; the rest is cut into
    ``n_splits`` contiguous test blocks, each predicted by a model trained on every row before it (less a
    ``gap`` of rows, to keep autocorrelated neighbours out of training).  Rows must be in time order.
    """
    if n_splits < 1 or not 0 < min_train_fraction < 1 or gap < 0:
        raise ValueError(f"bad split settings: n_splits={n_splits}, min_train_fraction={min_train_fraction}, gap={gap}")
    start = int(n * min_train_fraction)
    edges = np.linspace(start, n, n_splits + 1).astype(int)
    for a, b in itertools.pairwise(edges):
        if b > a and a - gap > 0:
            yield np.arange(0, a - gap), np.arange(a, b)


def metrics(y: F64, yhat: F64, lo: F64 | None = None, hi: F64 | None = None) -> dict[str, float]:
    """``rmse_bps``, ``mae_bps``, ``r2`` (1 − SSE/SST around the evaluated set's mean), ``bias_bps``
    (mean of prediction − outcome), ``n`` and, with an interval, ``coverage``."""
    y = np.asarray(y, float)
    e = np.asarray(yhat, float) - y
    sst = float(((y - y.mean()) ** 2).sum())
    out = {
        "rmse_bps": float(np.sqrt(np.mean(e**2))),
        "mae_bps": float(np.mean(np.abs(e))),
        "r2": 1.0 - float(e @ e) / sst if sst > 0 else float("nan"),
        "bias_bps": float(e.mean()),
        "n": float(y.size),
    }
    if lo is not None and hi is not None:
        out["coverage"] = float(np.mean((y >= lo) & (y <= hi)))
    return out


def evaluate(
    model: ImpactModel,
    X: pd.DataFrame,
    y: Any = None,
    *,
    n_splits: int = 5,
    coverage: float = 0.9,
    gap: int = 0,
    extra_coverages: tuple[float, ...] = (),
) -> dict[str, Any]:
    """In-sample fit on all rows and walk-forward out-of-sample predictions, with metrics for both.

    Returns ``{"model", "fitted" (the in-sample model), "in_sample", "out_of_sample", "splits"}``; the
    interval coverage is that of :meth:`ImpactModel.predict_interval` at ``coverage``, and each of
    ``extra_coverages`` adds ``coverage_<c>`` to the out-of-sample metrics from the same fits.
    """
    yv = np.asarray(X[model._target()] if y is None else y, float)
    fitted = clone(model).fit(X, yv)
    lo, hi = fitted.predict_interval(X, coverage=coverage)
    ins = metrics(yv, fitted.predict(X), lo, hi)
    preds, truth = [], []
    bounds: dict[float, tuple[list[F64], list[F64]]] = {c: ([], []) for c in (coverage, *extra_coverages)}
    n_done = 0
    for tr, te in walk_forward_splits(len(X), n_splits=n_splits, gap=gap):
        m = clone(model).fit(X.iloc[tr], yv[tr])
        for c, (los, his) in bounds.items():
            p_lo, p_hi = m.predict_interval(X.iloc[te], coverage=c)
            los.append(p_lo)
            his.append(p_hi)
        preds.append(m.predict(X.iloc[te]))
        truth.append(yv[te])
        n_done += 1
    if not n_done:
        raise CalibrationError("too little data for a walk-forward split")
    t_all = np.concatenate(truth)
    los, his = bounds[coverage]
    oos = metrics(t_all, np.concatenate(preds), np.concatenate(los), np.concatenate(his))
    for c in extra_coverages:
        lo_c, hi_c = (np.concatenate(b) for b in bounds[c])
        oos[f"coverage_{c:g}"] = float(np.mean((t_all >= lo_c) & (t_all <= hi_c)))
    return {"model": type(model).__name__, "fitted": fitted, "in_sample": ins, "out_of_sample": oos, "splits": n_done}


def compare_models(
    models: Mapping[str, ImpactModel], X: pd.DataFrame, y: Any = None, *, n_splits: int = 5
) -> pd.DataFrame:
    """One row per model: in-sample and out-of-sample RMSE, MAE, R², bias and 90% coverage, same splits."""
    rows = []
    for name, model in models.items():
        ev = evaluate(model, X, y, n_splits=n_splits)
        rows.append(
            {
                "model": name,
                **{f"is_{k}": v for k, v in ev["in_sample"].items() if k != "n"},
                **{f"oos_{k}": v for k, v in ev["out_of_sample"].items()},
            }
        )
    return pd.DataFrame(rows).set_index("model")
