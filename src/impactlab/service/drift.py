"""Drift monitoring: feature drift (population stability index and Kolmogorov–Smirnov) and prediction-error
drift of the orders a model prices, each measured against the model version's training window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = ["DriftReport", "FeatureDrift", "drift_report", "psi"]

F64 = NDArray[np.float64]


def psi(reference: Any, current: Any, *, bins: int = 10, eps: float = 1e-4) -> float:
    """Population stability index of ``current`` against ``reference``: Σ (c − r) ln(c / r) over the
    reference's ``bins`` quantile bins and one bin each below its minimum and above its maximum (so a
    current window outside the training range counts in full), with shares floored at ``eps``.

    By the usual rule of thumb, < 0.1 is stable, 0.1–0.25 a moderate shift, > 0.25 a major one.
    """
    r = np.asarray(reference, float)
    c = np.asarray(current, float)
    r, c = r[np.isfinite(r)], c[np.isfinite(c)]
    if r.size < 2 or c.size < 1:
        return float("nan")
    inner = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)[1:-1]))
    lo, hi = float(r.min()), float(r.max())

    def shares(x: F64) -> F64:
        # the reference's quantile bins, plus one bin below its minimum and one above its maximum
        k = np.searchsorted(inner, x, side="right") + 1
        k = np.where(x < lo, 0, np.where(x > hi, inner.size + 2, k))
        return np.bincount(k, minlength=inner.size + 3) / x.size

    rs, cs = shares(r), shares(c)
    rs, cs = np.maximum(rs, eps), np.maximum(cs, eps)
    return float(np.sum((cs - rs) * np.log(cs / rs)))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: PSI, the two-sample KS statistic and p-value, the sizes, and whether it alerts."""

    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    n_reference: int
    n_current: int
    alert: bool


@dataclass(frozen=True)
class DriftReport:
    """Feature drift and prediction-error drift of one model version.

    ``error_bias`` is |Σ(realised − predicted)| / Σ|predicted| over the current window; ``error_ks_pvalue``
    compares the current window's errors with the training window's.
    """

    features: tuple[FeatureDrift, ...]
    error_bias: float
    error_mean_bps: float
    error_ks_pvalue: float
    n_reference: int
    n_current: int
    error_alert: bool
    reasons: tuple[str, ...]

    @property
    def alert(self) -> bool:
        return bool(self.reasons)

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "alert": self.alert,
            "reasons": list(self.reasons),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "features": [
                {
                    "feature": f.feature,
                    "psi": num(f.psi),
                    "ks_statistic": num(f.ks_statistic),
                    "ks_pvalue": num(f.ks_pvalue),
                    "n_reference": f.n_reference,
                    "n_current": f.n_current,
                    "alert": f.alert,
                }
                for f in self.features
            ],
            "prediction_error": {
                "bias": num(self.error_bias),
                "mean_bps": num(self.error_mean_bps),
                "ks_pvalue": num(self.error_ks_pvalue),
                "alert": self.error_alert,
            },
        }


def drift_report(
    reference: Mapping[str, Any],
    current: Mapping[str, Any],
    *,
    reference_errors: Any = (),
    predicted_bps: Any = (),
    realised_bps: Any = (),
    min_orders: int = 20,
    psi_alert: float = 0.25,
    ks_alpha: float = 0.01,
    error_bias_alert: float = 0.5,
) -> DriftReport:
    """Drift of the ``current`` window against the training window ``reference`` (feature → values).

    A feature alerts when both windows hold at least ``min_orders`` values and its PSI passes ``psi_alert``
    or its KS p-value falls below ``ks_alpha``.  Prediction error alerts when the current window holds at
    least ``min_orders`` priced orders and its relative bias passes ``error_bias_alert`` or, with at least
    ``min_orders`` training-window errors too, the KS test of the errors rejects at ``ks_alpha``.
    """
    feats = []
    reasons = []
    for name in sorted(set(reference) & set(current)):
        r = np.asarray(reference[name], float)
        c = np.asarray(current[name], float)
        r, c = r[np.isfinite(r)], c[np.isfinite(c)]
        if r.size >= 2 and c.size >= 2:
            ks = stats.ks_2samp(r, c)
            stat, p = float(ks.statistic), float(ks.pvalue)
        else:
            stat = p = float("nan")
        value = psi(r, c)
        enough = r.size >= min_orders and c.size >= min_orders
        alert = bool(enough and (value > psi_alert or p < ks_alpha))
        if alert:
            reasons.append(f"feature drift: {name} (PSI {value:.2f}, KS p {p:.3g})")
        feats.append(FeatureDrift(name, value, stat, p, int(r.size), int(c.size), alert))
    pred = np.asarray(predicted_bps, float)
    real = np.asarray(realised_bps, float)
    ok = np.isfinite(pred) & np.isfinite(real)
    err = real[ok] - pred[ok]
    ref_err = np.asarray(reference_errors, float)
    ref_err = ref_err[np.isfinite(ref_err)]
    denom = float(np.sum(np.abs(pred[ok])))
    bias = abs(float(np.sum(err))) / denom if denom > 0 else float("nan")
    mean = float(np.mean(err)) if err.size else float("nan")
    p_err = float(stats.ks_2samp(ref_err, err).pvalue) if ref_err.size >= 2 and err.size >= 2 else float("nan")
    error_alert = bool(
        err.size >= min_orders
        and ((np.isfinite(bias) and bias > error_bias_alert) or (ref_err.size >= min_orders and p_err < ks_alpha))
    )
    if error_alert:
        reasons.append(f"prediction-error drift: bias {bias:.2f}, mean {mean:+.2f} bps, KS p {p_err:.3g}")
    n_ref = max((f.n_reference for f in feats), default=int(ref_err.size))
    return DriftReport(tuple(feats), bias, mean, p_err, n_ref, int(err.size), error_alert, tuple(reasons))
