"""Scoring probabilistic impact forecasts: point error, pinball loss, interval coverage and Brier scores.

Every model is scored through the same quantiles: the machine-learned ones give their conformalized
quantiles, a parametric model a normal distribution around its prediction with its residual sd.  Walk-
forward within one dataset, or train on one (e.g. GOOG) and test on another (AMZN).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats
from sklearn.base import clone

from impactlab.calibration.validation import metrics, walk_forward_splits
from impactlab.errors import CalibrationError
from impactlab.impact import (
    QuantileGBMImpact,
)
from impactlab.impact._base import ImpactModel
from impactlab.impact.registry import MODELS as _CATALOGUE

__all__ = [
    "FORECAST_MODELS",
    "best_of",
    "brier_score",
    "evaluate_forecasts",
    "feature_importance",
    "forecast_metrics",
    "pinball_loss",
    "prob_exceeds",
    "quantile_forecasts",
]

F64 = NDArray[np.float64]
PROBS = (0.025, 0.05, 0.1, 0.5, 0.9, 0.95, 0.975)
COVERAGES = (0.8, 0.9, 0.95)


def quantile_forecasts(model: ImpactModel, X: pd.DataFrame) -> tuple[F64, dict[float, F64], bool]:
    """``(point, quantiles, calibrated)``: the model's own quantiles where it has them, else normal ones."""
    yhat = model.predict(X)
    own = getattr(model, "predict_quantiles", None)
    if own is not None:
        return yhat, own(X), True
    sd = float(model.resid_std_bps_)
    return yhat, {p: yhat + sd * float(stats.norm.ppf(p)) for p in PROBS}, False


def prob_exceeds(quantiles: Mapping[float, F64], threshold_bps: float, total: F64, std_bps: float) -> F64:
    """P(cost > threshold) per row, read off the quantiles as :meth:`ImpactEstimate.prob_exceeds` does
    (linear between quantiles, a normal tail of sd ``std_bps`` beyond them, capped by the outer probability)."""
    probs = np.array(sorted(quantiles))
    vals = np.maximum.accumulate(np.column_stack([quantiles[p] for p in probs]), axis=1)
    n, k = vals.shape
    normal = stats.norm.sf(threshold_bps, loc=total, scale=max(std_bps, 1e-12))
    j = np.clip((vals <= threshold_bps).sum(axis=1), 1, k - 1)
    rows = np.arange(n)
    v0, v1 = vals[rows, j - 1], vals[rows, j]
    w = np.where(v1 > v0, (threshold_bps - v0) / np.where(v1 > v0, v1 - v0, 1.0), 1.0)
    inside = 1.0 - (probs[j - 1] + np.clip(w, 0, 1) * (probs[j] - probs[j - 1]))
    below = np.maximum(1.0 - probs[0], normal)
    above = np.minimum(1.0 - probs[-1], normal)
    out = np.where(threshold_bps < vals[:, 0], below, np.where(threshold_bps > vals[:, -1], above, inside))
    return np.asarray(out, dtype=np.float64)


def pinball_loss(y: F64, quantiles: Mapping[float, F64]) -> float:
    """Mean pinball (quantile) loss over the given probabilities, bps."""
    losses = []
    for p, q in quantiles.items():
        d = y - q
        losses.append(np.mean(np.maximum(p * d, (p - 1) * d)))
    return float(np.mean(losses))


def brier_score(y: F64, prob: F64, threshold_bps: float) -> float:
    """Mean squared error of P(cost > threshold) against the outcome."""
    return float(np.mean((prob - (y > threshold_bps)) ** 2))


def forecast_metrics(
    y: F64,
    yhat: F64,
    quantiles: Mapping[float, F64],
    *,
    std_bps: float,
    thresholds_bps: Sequence[float],
    base_rates: Sequence[float],
) -> dict[str, float]:
    """Point metrics, pinball loss, coverage of the 80/90/95% intervals and, per threshold x, the Brier
    score of P(cost > x) with its skill against always forecasting the training base rate."""
    out = metrics(y, yhat)
    out["pinball_bps"] = pinball_loss(y, quantiles)
    for c in COVERAGES:
        lo, hi = quantiles.get(round((1 - c) / 2, 6)), quantiles.get(round((1 + c) / 2, 6))
        if lo is not None and hi is not None:
            out[f"coverage_{round(c * 100)}"] = float(np.mean((y >= lo) & (y <= hi)))
    for x, rate in zip(thresholds_bps, base_rates, strict=True):
        b = brier_score(y, prob_exceeds(quantiles, x, yhat, std_bps), x)
        ref = brier_score(y, np.full(len(y), rate), x)
        out[f"brier_{x:g}bps"] = b
        out[f"brier_skill_{x:g}bps"] = 1.0 - b / ref if ref > 0 else float("nan")
    return out


def evaluate_forecasts(
    models: Mapping[str, ImpactModel],
    data: pd.DataFrame,
    *,
    target: str,
    test: pd.DataFrame | None = None,
    n_splits: int = 5,
    thresholds_bps: Sequence[float] | None = None,
    recalibrate_fraction: float = 0.0,
) -> dict[str, dict[str, Any]]:
    """Score every model out of sample on the same rows.

    Without ``test``: walk-forward over ``data`` (time-ordered; each block predicted by a model fitted on
    the rows before it).  With ``test``: fit on all of ``data``, score on ``test`` (another ticker or
    day); with ``recalibrate_fraction`` > 0 the first part of ``test`` resets the conformal margins of the
    models that have them (:meth:`recalibrate`), and every model is scored on the rest.  Thresholds
    default to the training target's median and 90th percentile.  Returns, per model,
    :func:`forecast_metrics` plus ``calibrated_quantiles`` (whether the quantiles are the model's own).
    """
    if target not in data:
        raise CalibrationError(f"target column {target!r} not in the data")
    if not 0 <= recalibrate_fraction < 1:
        raise CalibrationError(f"'recalibrate_fraction' must be in [0, 1), got {recalibrate_fraction}")
    recal: pd.DataFrame | None = None
    if test is not None:
        n_recal = int(len(test) * recalibrate_fraction)
        recal = test.iloc[:n_recal] if n_recal else None
        folds = [(data, test.iloc[n_recal:])]
    else:
        folds = [(data.iloc[tr], data.iloc[te]) for tr, te in walk_forward_splits(len(data), n_splits=n_splits)]
    if not folds:
        raise CalibrationError("no walk-forward split: too little data")
    train0 = folds[0][0][target].to_numpy(float)
    xs = list(thresholds_bps) if thresholds_bps is not None else [float(np.quantile(train0, q)) for q in (0.5, 0.9)]
    rates = [float(np.mean(train0 > x)) for x in xs]
    out: dict[str, dict[str, Any]] = {}
    for name, proto in models.items():
        ys, ps, qs, sds = [], [], [], []
        calibrated = False
        for tr, te in folds:
            m = clone(proto).fit(tr, tr[target].to_numpy(float))
            if recal is not None and hasattr(m, "recalibrate"):
                m.recalibrate(recal, recal[target].to_numpy(float))
            yhat, q, calibrated = quantile_forecasts(m, te)
            ys.append(te[target].to_numpy(float))
            ps.append(yhat)
            qs.append(q)
            sds.append(np.full(len(te), float(m.resid_std_bps_)))
        q_all = {p: np.concatenate([q[p] for q in qs]) for p in qs[0]}
        y, yhat = np.concatenate(ys), np.concatenate(ps)
        sd = float(np.mean(np.concatenate(sds)))
        res = forecast_metrics(y, yhat, q_all, std_bps=sd, thresholds_bps=xs, base_rates=rates)
        out[name] = {**res, "calibrated_quantiles": calibrated}
    return out


FORECAST_MODELS: dict[str, Callable[[str], ImpactModel]] = {
    **{n: _CATALOGUE[n].build for n in ("gbm", "gbm-scaled", "hybrid", "rf", "bayes", "mlp")},
    "sqrt": lambda t: _CATALOGUE["sqrt-free"].build(),
    "spread-sqrt": lambda t: _CATALOGUE["spread-sqrt"].build(),
}
"""The block-forecast models, from the catalogue (:data:`impactlab.impact.registry.MODELS`): name → factory
taking the target column (``sqrt`` here is the free-exponent law)."""
PARAMETRIC = ("sqrt", "spread-sqrt")


def best_of(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The best parametric and the best machine-learned model by out-of-sample RMSE, and the ML model's
    RMSE improvement over the parametric one (a fraction; positive is better)."""
    par = {k: v for k, v in results.items() if k in PARAMETRIC}
    ml = {k: v for k, v in results.items() if k not in PARAMETRIC}
    out: dict[str, Any] = {}
    if par:
        out["best_parametric"] = min(par, key=lambda k: par[k]["rmse_bps"])
    if ml:
        out["best_ml"] = min(ml, key=lambda k: ml[k]["rmse_bps"])
    if par and ml:
        p, m = par[out["best_parametric"]]["rmse_bps"], ml[out["best_ml"]]["rmse_bps"]
        out["rmse_improvement"] = 1.0 - m / p
    return out


def feature_importance(
    model: ImpactModel, X: pd.DataFrame, y: F64, *, n_repeats: int = 5, seed: int = 0
) -> pd.DataFrame:
    """Importance of each feature of a fitted forecast on rows ``X`` (ideally held out), sorted.

    ``permutation_rmse_bps``: the rise in RMSE when the feature is shuffled (scikit-learn's
    ``permutation_importance``, mean over ``n_repeats``); for LightGBM models also ``gain_share`` (the
    booster's split gain, as a share) and ``mean_abs_shap_bps`` (TreeSHAP contributions).
    """
    from sklearn.inspection import permutation_importance

    feats = list(getattr(model, "features", model.required_columns))
    pi = permutation_importance(
        model, X, np.asarray(y, float), scoring="neg_root_mean_squared_error", n_repeats=n_repeats, random_state=seed
    )
    cols = list(X.columns)
    out = pd.DataFrame(
        {"permutation_rmse_bps": [float(pi.importances_mean[cols.index(f)]) for f in feats]},
        index=pd.Index(feats, name="feature"),
    )
    if isinstance(model, QuantileGBMImpact):
        gain = model.point_.feature_importance("gain")
        out["gain_share"] = gain / gain.sum() if gain.sum() > 0 else gain
        out["mean_abs_shap_bps"] = np.abs(model.shap_values(X)[:, :-1]).mean(axis=0)
    return out.sort_values("permutation_rmse_bps", ascending=False)
