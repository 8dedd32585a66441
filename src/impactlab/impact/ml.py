"""Machine-learned impact forecasts with calibrated uncertainty.

:class:`QuantileGBMImpact` fits a LightGBM point model and LightGBM quantile models, and calibrates
their intervals by split conformal prediction (conformalized quantile regression, Romano, Patterson &
Candès 2019): the quantile models are trained on the earlier rows, and the later ``calibration_fraction``
of rows (in time order) sets, for each nominal coverage, the margin that makes the interval cover that
share of held-out outcomes.  Boosters are stored in LightGBM's own text format inside the JSON model
file; nothing is pickled.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.errors import CalibrationError
from impactlab.features.blocks import BLOCK_FEATURES
from impactlab.impact._base import ImpactModel, r2_rmse
from impactlab.impact.results import ImpactEstimate, ImpactResult

__all__ = ["QuantileGBMImpact"]

F64 = NDArray[np.float64]


class QuantileGBMImpact(ImpactModel):
    """Gradient-boosted impact forecast with split-conformal quantiles.

    Parameters
    ----------
    features
        Columns of ``X`` the model reads (default: :data:`impactlab.features.blocks.BLOCK_FEATURES`).
    target
        Column predicted (bps).
    coverages
        Nominal central-interval coverages to calibrate; the quantile models fit
        ``(1 ± c)/2`` for each, plus the median.
    n_estimators, learning_rate, num_leaves, min_child_samples
        LightGBM settings, shared by the point and quantile models.
    calibration_fraction
        Share of the (time-ordered) rows held back to calibrate the intervals.
    seed
        Seed of LightGBM's randomness.
    baseline
        ``"square_root"``: the ML overlay on the parametric model.  A square-root law (δ free) is fitted
        on the training rows (which then need ``quantity``, ``adv`` and ``daily_vol``), and the boosters
        learn its residual; predictions and quantiles are the baseline plus the boosters.

    Notes
    -----
    For coverage c with quantile models ``q̂_lo, q̂_hi`` and calibration scores
    ``s_i = max(q̂_lo(x_i) − y_i, y_i − q̂_hi(x_i))``, the margin is the ``⌈(n + 1) c⌉``-th smallest
    score, and the interval ``[q̂_lo − margin, q̂_hi + margin]`` covers a new exchangeable outcome with
    probability at least c.  The estimate's quantiles are the conformalized ones, and
    :meth:`ImpactEstimate.prob_exceeds` reads the cost distribution from them.  ``result_.params`` holds
    the margins (there are no standard errors).
    """

    required_columns: ClassVar[tuple[str, ...]] = ()
    n_params = 1

    def __init__(
        self,
        *,
        features: tuple[str, ...] = BLOCK_FEATURES,
        target: str = "cost_bps",
        coverages: tuple[float, ...] = (0.8, 0.9, 0.95),
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        calibration_fraction: float = 0.25,
        seed: int = 0,
        baseline: Literal["none", "square_root"] = "none",
    ) -> None:
        self.features = features
        self.target = target  # type: ignore[misc]
        self.coverages = coverages
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.calibration_fraction = calibration_fraction
        self.seed = seed
        self.baseline = baseline

    _BASELINE_COLUMNS: ClassVar[tuple[str, ...]] = ("quantity", "adv", "daily_vol")

    def _columns(self) -> tuple[str, ...]:
        extra = self._BASELINE_COLUMNS if self.baseline == "square_root" else ()
        return tuple(dict.fromkeys((*self.features, *extra)))

    def _base(self, df: pd.DataFrame, params: dict[str, float] | None = None) -> F64:
        """The parametric baseline's prediction (zero without a baseline)."""
        if self.baseline == "none":
            return np.zeros(len(df))
        p = params if params is not None else self.baseline_params_
        u = np.asarray(df["quantity"], float) / np.asarray(df["adv"], float)
        return np.asarray(p["Y"] * np.asarray(df["daily_vol"], float) * 1e4 * u ** p["delta"], dtype=np.float64)

    def _target(self) -> str:
        return self.target

    def _probs(self) -> list[float]:
        ps = {0.5}
        for c in self.coverages:
            if not 0 < c < 1:
                raise CalibrationError(f"'coverages' must lie in (0, 1), got {c}")
            ps |= {round((1 - c) / 2, 6), round((1 + c) / 2, 6)}
        return sorted(ps)

    def _params(self, objective: str, alpha: float | None = None) -> dict[str, Any]:
        p: dict[str, Any] = {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": 1,
            "verbosity": -1,
        }
        if alpha is not None:
            p["alpha"] = alpha
        return p

    def _train(self, X: F64, y: F64, objective: str, alpha: float | None = None) -> lgb.Booster:
        data = lgb.Dataset(X, y, feature_name=list(self.features), free_raw_data=False)
        return lgb.train(self._params(objective, alpha), data, num_boost_round=self.n_estimators)

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        if not 0.05 <= self.calibration_fraction <= 0.5:
            raise CalibrationError(f"'calibration_fraction' must be in [0.05, 0.5], got {self.calibration_fraction}")
        X = df[list(self.features)].to_numpy(np.float64)
        n_cal = max(int(len(y) * self.calibration_fraction), 20)
        split = len(y) - n_cal
        if split < 50:
            raise CalibrationError(f"QuantileGBMImpact: too little data: {len(y)} rows")
        if self.baseline not in ("none", "square_root"):
            raise CalibrationError(f"'baseline' must be 'none' or 'square_root', got {self.baseline!r}")
        base_params: dict[str, float] = {}
        if self.baseline == "square_root":
            from impactlab.impact.parametric import SquareRootImpact

            base_params = SquareRootImpact(delta=None).fit(df.iloc[:split], y[:split]).result_.params_dict()
        base = self._base(df, base_params)
        resid = y - base
        point = self._train(X[:split], resid[:split], "regression")
        quantile = {p: self._train(X[:split], resid[:split], "quantile", p) for p in self._probs()}
        self.baseline_params_ = base_params
        xc, yc, bc = X[split:], resid[split:], base[split:]
        margins = []
        for c in self.coverages:
            lo, hi = round((1 - c) / 2, 6), round((1 + c) / 2, 6)
            scores = np.maximum(quantile[lo].predict(xc) - yc, yc - quantile[hi].predict(xc))
            k = min(math.ceil((n_cal + 1) * c), n_cal)
            margins.append(float(np.sort(scores)[k - 1]))
        self.point_ = point
        self.quantile_models_ = quantile
        r2, rmse = r2_rmse(yc + bc, bc + np.asarray(point.predict(xc), dtype=np.float64))
        names = tuple(f"conformal_margin_{round(c * 100)}_bps" for c in self.coverages)
        return ImpactResult(
            model=type(self).__name__,
            param_names=names,
            params=np.array(margins),
            cov=np.zeros((len(names),) * 2),
            n=len(y),
            r2=r2,
            rmse_bps=rmse,
            dof_resid=max(n_cal - 1, 1),
            cov_type="none: margins of split-conformal calibration (R², RMSE on the calibration block)",
            extra={
                "calibration_rows": n_cal,
                "baseline_params": base_params,
                "point_model": point.model_to_string(),
                "quantile_models": {str(p): b.model_to_string() for p, b in quantile.items()},
                "gain_importance": dict(zip(self.features, point.feature_importance("gain").tolist(), strict=True)),
            },
        )

    def _X(self, df: pd.DataFrame) -> F64:
        return np.asarray(df[list(self.features)].to_numpy(np.float64), dtype=np.float64)

    def _predict(self, df: pd.DataFrame) -> F64:
        return self._base(df) + np.asarray(self.point_.predict(self._X(df)), dtype=np.float64)

    def _conformal_quantiles(self, df: pd.DataFrame) -> dict[float, F64]:
        X, base = self._X(df), self._base(df)
        out = {0.5: base + np.asarray(self.quantile_models_[0.5].predict(X), float)}
        for c, m in zip(self.coverages, self.result_.params, strict=True):
            lo, hi = round((1 - c) / 2, 6), round((1 + c) / 2, 6)
            out[lo] = base + self.quantile_models_[lo].predict(X) - m
            out[hi] = base + self.quantile_models_[hi].predict(X) + m
        return out

    def predict_interval(self, X: Any, *, coverage: float = 0.9) -> tuple[F64, F64]:
        """Conformalized central interval at one of the calibrated ``coverages``."""
        self._check_fitted()
        if not any(math.isclose(coverage, c) for c in self.coverages):
            raise CalibrationError(f"coverage {coverage} was not calibrated; choose from {self.coverages}")
        q = self._conformal_quantiles(self._frame(X))
        return q[round((1 - coverage) / 2, 6)], q[round((1 + coverage) / 2, 6)]

    def predict_estimate(self, order: Any) -> ImpactEstimate:
        """Point forecast, conformalized quantiles and the cost distribution of one block."""
        self._check_fitted()
        df = self._frame(pd.DataFrame([dict(order)]))
        q = {p: float(v[0]) for p, v in self._conformal_quantiles(df).items()}
        total = float(self._predict(df)[0])
        return ImpactEstimate(
            temporary_bps=total,
            permanent_bps=None,
            total_bps=total,
            std_bps=self.resid_std_bps_,
            model=type(self).__name__,
            quantiles=q,
            quantiles_are_distribution=True,
        )

    def _restore(self, doc: dict[str, Any]) -> None:
        super()._restore(doc)
        extra = self.result_.extra
        self.baseline_params_ = {k: float(v) for k, v in extra["baseline_params"].items()}
        self.point_ = lgb.Booster(model_str=extra["point_model"])
        self.quantile_models_ = {float(p): lgb.Booster(model_str=s) for p, s in extra["quantile_models"].items()}
