"""Machine-learned impact forecasts with calibrated uncertainty.

Every model here is trained on the earlier rows (in time order) and calibrated on the later
``calibration_fraction`` of them by split conformal prediction, so that its intervals cover their nominal
share of new outcomes:

* :class:`QuantileGBMImpact`: LightGBM point model plus LightGBM quantile models, conformalized quantile
  regression (Romano, Patterson & Candès 2019);
* :class:`ConformalRegressorImpact`: a random forest, Bayesian ridge regression or a small neural net,
  with normalized conformal intervals ``ŷ ± m·σ̂(x)`` (σ̂ the Bayesian predictive sd, else 1).

``baseline="square_root"`` makes either the ML overlay on the parametric model: a square-root law is fitted
first and the learner models its residual.  Models are stored as JSON: LightGBM's text format, ONNX
(base64) for the forest and the net, plain coefficients for the Bayesian model.  Nothing is pickled.
Inputs outside the training range are named in :attr:`ImpactEstimate.extrapolated_features`.
"""

from __future__ import annotations

import dataclasses
import math
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.errors import CalibrationError
from impactlab.features.blocks import BLOCK_FEATURES
from impactlab.impact import _onnx
from impactlab.impact._base import ImpactModel, r2_rmse
from impactlab.impact.results import ImpactEstimate, ImpactResult

__all__ = ["ConformalRegressorImpact", "OnnxForecaster", "QuantileGBMImpact"]

F64 = NDArray[np.float64]
Raw = tuple[F64, dict[float, F64], F64]
"""(point, raw quantiles by probability, interval unit) from a learner on the residual scale."""


def _nest(q: dict[float, Any]) -> dict[float, Any]:
    """Make quantiles monotone by widening outward from the median: each upper quantile at least the one
    inside it, each lower one at most.  Intervals only grow, so no coverage is lost."""
    probs = sorted(q)
    out = dict(q)
    upper = [p for p in probs if p > 0.5]
    lower = [p for p in reversed(probs) if p < 0.5]
    for side, pick in ((upper, np.maximum), (lower, np.minimum)):
        prev = out[0.5]
        for p in side:
            out[p] = pick(out[p], prev)
            prev = out[p]
    return {p: out[p] for p in probs}


class _ConformalImpact(ImpactModel):
    """Shared machinery: baseline, time-ordered split, conformal margins, extrapolation flags, persistence."""

    required_columns: ClassVar[tuple[str, ...]] = ()
    n_params = 1
    _BASELINE_COLUMNS: ClassVar[tuple[str, ...]] = ("quantity", "adv", "daily_vol")
    features: tuple[str, ...]
    coverages: tuple[float, ...]
    calibration_fraction: float
    baseline: str
    seed: int

    def _columns(self) -> tuple[str, ...]:
        extra = self._BASELINE_COLUMNS if self.baseline == "square_root" else ()
        return tuple(dict.fromkeys((*self.features, *extra)))

    def _target(self) -> str:
        return str(self.target)

    def _base(self, df: pd.DataFrame | Mapping[str, Any], params: dict[str, float] | None = None) -> F64:
        """The parametric baseline's prediction (zero without a baseline)."""
        n = len(df) if isinstance(df, pd.DataFrame) else 1
        if self.baseline == "none":
            return np.zeros(n)
        p = params if params is not None else self.baseline_params_
        u = np.asarray(df["quantity"], float) / np.asarray(df["adv"], float)
        return np.atleast_1d(
            np.asarray(p["Y"] * np.asarray(df["daily_vol"], float) * 1e4 * u ** p["delta"], dtype=np.float64)
        )

    def _probs(self) -> list[float]:
        ps = {0.5}
        for c in self.coverages:
            if not 0 < c < 1:
                raise CalibrationError(f"'coverages' must lie in (0, 1), got {c}")
            ps |= {round((1 - c) / 2, 6), round((1 + c) / 2, 6)}
        return sorted(ps)

    # -- learner hooks ------------------------------------------------------------------------------------
    @abstractmethod
    def _train(self, X: F64, r: F64) -> None:
        """Fit the learner on features X and residual target r (sets fitted attributes)."""

    @abstractmethod
    def _raw(self, X: F64, quantiles: bool = True) -> Raw:
        """Point, raw quantiles (empty when the learner has none or ``quantiles`` is false) and interval unit
        on rows X."""

    @abstractmethod
    def _state(self) -> dict[str, Any]:
        """The learner in JSON-safe form."""

    @abstractmethod
    def _load_state(self, extra: dict[str, Any]) -> None:
        """Inverse of :meth:`_state`."""

    # -- fitting --------------------------------------------------------------------------------------------
    def _bounds(self, point: F64, raw: dict[float, F64], c: float) -> tuple[F64, F64]:
        """Raw ends of the interval at coverage c: the quantile models where there are any, else the point."""
        lo, hi = round((1 - c) / 2, 6), round((1 + c) / 2, 6)
        return raw.get(lo, point), raw.get(hi, point)

    def _margins(self, point: F64, raw: dict[float, F64], unit: F64, resid: F64) -> list[float]:
        """Split-conformal margin per coverage: the ⌈(n + 1) c⌉-th smallest score on the held-out rows."""
        n = len(resid)
        out = []
        for c in self.coverages:
            lo, hi = self._bounds(point, raw, c)
            scores = np.maximum(lo - resid, resid - hi) / unit
            out.append(float(np.sort(scores)[min(math.ceil((n + 1) * c), n) - 1]))
        return out

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        if not 0.05 <= self.calibration_fraction <= 0.5:
            raise CalibrationError(f"'calibration_fraction' must be in [0.05, 0.5], got {self.calibration_fraction}")
        if self.baseline not in ("none", "square_root"):
            raise CalibrationError(f"'baseline' must be 'none' or 'square_root', got {self.baseline!r}")
        self._probs()
        X = self._X(df)
        n_cal = max(int(len(y) * self.calibration_fraction), 20)
        split = len(y) - n_cal
        if split < 50:
            raise CalibrationError(f"{type(self).__name__}: too little data: {len(y)} rows")
        base_params: dict[str, float] = {}
        if self.baseline == "square_root":
            from impactlab.impact.parametric import SquareRootImpact

            base_params = SquareRootImpact(delta=None).fit(df.iloc[:split], y[:split]).result_.params_dict()
        self.baseline_params_ = base_params
        base = self._base(df, base_params)
        resid = y - base
        self._train(X[:split], resid[:split])
        xc, yc = X[split:], resid[split:]
        point, raw, unit = self._raw(xc)
        margins = self._margins(point, raw, unit, yc)
        r2, rmse = r2_rmse(yc, point)
        names = tuple(f"conformal_margin_{round(c * 100)}" for c in self.coverages)
        lo_f, hi_f = X.min(axis=0), X.max(axis=0)
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
                "features": list(self.features),
                "feature_range": {f: [float(a), float(b)] for f, a, b in zip(self.features, lo_f, hi_f, strict=True)},
                **self._state(),
            },
        )

    # -- prediction -------------------------------------------------------------------------------------------
    def _X(self, df: pd.DataFrame) -> F64:
        return np.asarray(df[list(self.features)].to_numpy(np.float64), dtype=np.float64)

    def _predict(self, df: pd.DataFrame) -> F64:
        return self._base(df) + self._raw(self._X(df), quantiles=False)[0]

    def _forecast(self, df: pd.DataFrame) -> tuple[F64, dict[float, F64]]:
        """Point forecast and conformalized quantiles, from one pass of the learner."""
        base = self._base(df)
        point, raw, unit = self._raw(self._X(df))
        out = {0.5: base + raw.get(0.5, point)}
        for c, m in zip(self.coverages, self.result_.params, strict=True):
            lo, hi = self._bounds(point, raw, c)
            out[round((1 - c) / 2, 6)] = base + lo - m * unit
            out[round((1 + c) / 2, 6)] = base + hi + m * unit
        return base + point, _nest(out)

    def _conformal_quantiles(self, df: pd.DataFrame) -> dict[float, F64]:
        return self._forecast(df)[1]

    def recalibrate(self, X: Any, y: Any = None) -> _ConformalImpact:
        """Reset the conformal margins on new rows (e.g. another ticker, or the desk's latest fills) without
        refitting the learner; returns ``self``.  The intervals then cover nominally on data like these."""
        self._check_fitted()
        df = self._frame(X)
        yv = self._validate_fit(df, y)
        resid = yv - self._base(df)
        point, raw, unit = self._raw(self._X(df))
        margins = self._margins(point, raw, unit, resid)
        self.result_ = dataclasses.replace(
            self.result_,
            params=np.array(margins),
            extra={**self.result_.extra, "recalibrated_on_rows": len(yv)},
        )
        return self

    def predict_quantiles(self, X: Any) -> dict[float, F64]:
        """Conformalized quantiles (probability → bps per row): the median and both ends of every calibrated
        interval."""
        self._check_fitted()
        return self._conformal_quantiles(self._frame(X))

    def predict_interval(self, X: Any, *, coverage: float = 0.9) -> tuple[F64, F64]:
        """Conformalized central interval at one of the calibrated ``coverages``."""
        self._check_fitted()
        if not any(math.isclose(coverage, c) for c in self.coverages):
            raise CalibrationError(f"coverage {coverage} was not calibrated; choose from {self.coverages}")
        q = self._conformal_quantiles(self._frame(X))
        return q[round((1 - coverage) / 2, 6)], q[round((1 + coverage) / 2, 6)]

    def extrapolated(self, X: Any) -> list[tuple[str, ...]]:
        """Per row, the features outside the range seen in training."""
        self._check_fitted()
        x = self._X(self._frame(X))
        rng = self.result_.extra["feature_range"]
        lo = np.array([rng[f][0] for f in self.features])
        hi = np.array([rng[f][1] for f in self.features])
        out = (x < lo) | (x > hi)
        names = np.array(self.features)
        return [tuple(str(f) for f in names[row]) for row in out]

    def predict_estimate(self, order: Any) -> ImpactEstimate:
        """Point forecast, conformalized quantiles and the cost distribution of one block."""
        self._check_fitted()
        df = self._frame(pd.DataFrame([dict(order)]))
        point, quantiles = self._forecast(df)
        q = {p: float(v[0]) for p, v in quantiles.items()}
        total = float(point[0])
        return ImpactEstimate(
            temporary_bps=total,
            permanent_bps=None,
            total_bps=total,
            std_bps=self.resid_std_bps_,
            model=type(self).__name__,
            quantiles=q,
            quantiles_are_distribution=True,
            extrapolated_features=self.extrapolated(df)[0],
        )

    def _restore(self, doc: dict[str, Any]) -> None:
        super()._restore(doc)
        extra = self.result_.extra
        if list(extra.get("features", [])) != list(self.features):
            raise CalibrationError(
                f"model file's feature list {extra.get('features')} does not match its settings {list(self.features)}"
            )
        self.baseline_params_ = {k: float(v) for k, v in extra["baseline_params"].items()}
        self._load_state(extra)


class QuantileGBMImpact(_ConformalImpact):
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
    quantile_estimators
        Rounds of each quantile model (at most ``n_estimators``; ``None``: ``n_estimators``); fewer rounds
        run at a proportionally higher learning rate.  Seven quantile models dominate the cost of a full
        estimate; on real blocks 100 rounds at twice the rate scored the same pinball loss as 200.
    intervals
        ``"cqr"`` (default): quantile boosters, conformalized quantile regression.  ``"scaled"``: one more
        booster models the absolute residual s(x) and the intervals are ``ŷ ± m_c s(x)`` (locally weighted
        split conformal, Lei et al. 2018): two boosters instead of eight, for the fastest full estimates,
        with symmetric intervals.
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
        quantile_estimators: int | None = 100,
        intervals: Literal["cqr", "scaled"] = "cqr",
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
        self.quantile_estimators = quantile_estimators
        self.intervals = intervals

    def _rounds(self, quantile: bool) -> tuple[int, float]:
        """Boosting rounds and learning rate: the quantile models may use fewer rounds at a proportionally
        higher rate (same total step), which keeps a full estimate fast."""
        if not quantile or self.quantile_estimators is None:
            return self.n_estimators, self.learning_rate
        if int(self.quantile_estimators) < 1:
            raise CalibrationError(f"'quantile_estimators' must be >= 1, got {self.quantile_estimators}")
        q = min(int(self.quantile_estimators), self.n_estimators)
        return q, min(self.learning_rate * self.n_estimators / q, 0.5)

    def _params(self, objective: str, alpha: float | None = None) -> dict[str, Any]:
        p: dict[str, Any] = {
            "objective": objective,
            "learning_rate": self._rounds(alpha is not None)[1],
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

    def _booster(
        self, X: F64, y: F64, objective: str, alpha: float | None = None, *, quantile_rounds: bool = False
    ) -> lgb.Booster:
        """One booster; quantile models (and the scale model) use the quantile rounds and rate."""
        short = alpha is not None or quantile_rounds
        params = self._params(objective, alpha)
        params["learning_rate"] = self._rounds(short)[1]
        data = lgb.Dataset(X, y, feature_name=list(self.features), free_raw_data=False)
        return lgb.train(params, data, num_boost_round=self._rounds(short)[0])

    def _train(self, X: F64, r: F64) -> None:
        if self.intervals not in ("cqr", "scaled"):
            raise CalibrationError(f"'intervals' must be 'cqr' or 'scaled', got {self.intervals!r}")
        self.point_ = self._booster(X, r, "regression")
        if self.intervals == "scaled":
            dev = np.abs(r - self.point_.predict(X, num_threads=1))
            self.scale_ = self._booster(X, dev, "regression", quantile_rounds=True)
            self.scale_floor_ = float(max(np.quantile(dev, 0.05), 1e-6))
            self.quantile_models_ = {}
            return
        # the quantile boosters learn the target itself: on real blocks this scored a lower pinball loss than
        # boosters of the point model's in-sample residual, whose spread is shrunk by overfitting
        self.quantile_models_ = {p: self._booster(X, r, "quantile", p) for p in self._probs()}

    def _raw(self, X: F64, quantiles: bool = True) -> Raw:
        point = np.asarray(self.point_.predict(X, num_threads=1), dtype=np.float64)
        if not quantiles:
            return point, {}, np.ones(len(X))
        if self.intervals == "scaled":
            scale = np.maximum(np.asarray(self.scale_.predict(X, num_threads=1), np.float64), self.scale_floor_)
            return point, {}, scale
        raw = {p: np.asarray(b.predict(X, num_threads=1), dtype=np.float64) for p, b in self.quantile_models_.items()}
        return point, raw, np.ones(len(X))

    def _state(self) -> dict[str, Any]:
        scaled = (
            {"scale_model": self.scale_.model_to_string(), "scale_floor": self.scale_floor_}
            if self.intervals == "scaled"
            else {}
        )
        return {
            **scaled,
            "point_model": self.point_.model_to_string(),
            "quantile_models": {str(p): b.model_to_string() for p, b in self.quantile_models_.items()},
            "gain_importance": dict(zip(self.features, self.point_.feature_importance("gain").tolist(), strict=True)),
        }

    def _load_state(self, extra: dict[str, Any]) -> None:
        if self.intervals == "scaled":
            self.scale_ = lgb.Booster(model_str=extra["scale_model"])
            self.scale_floor_ = float(extra["scale_floor"])
        self.point_ = lgb.Booster(model_str=extra["point_model"])
        self.quantile_models_ = {float(p): lgb.Booster(model_str=s) for p, s in extra["quantile_models"].items()}

    def shap_values(self, X: Any) -> F64:
        """TreeSHAP contributions of each feature to the point forecast (LightGBM's ``pred_contrib``):
        ``(rows, features + 1)``, the last column the expected value; rows sum to the ML part."""
        self._check_fitted()
        return np.asarray(self.point_.predict(self._X(self._frame(X)), pred_contrib=True), dtype=np.float64)

    def to_onnx(self) -> bytes:
        """Point and quantile boosters as one ONNX graph (outputs ``point`` and ``q<p>``)."""
        self._check_fitted()
        boosters = {"point": self.point_, **{f"q{p:g}": b for p, b in self.quantile_models_.items()}}
        if self.intervals == "scaled":
            boosters["scale"] = self.scale_
        return _onnx.lightgbm_graph(boosters, len(self.features))

    def forecaster(self, *, threads: int = 1) -> OnnxForecaster:
        """The fast inference path: this model exported to ONNX and served by onnxruntime."""
        return OnnxForecaster(self, self.to_onnx(), threads=threads)


class OnnxForecaster:
    """A fitted :class:`QuantileGBMImpact` served by onnxruntime: full estimates in one session call.

    Gives the same numbers as the native model up to float32 rounding of the inputs and tree thresholds
    (see the parity test and ``BENCHMARKS.md``).
    """

    def __init__(self, model: QuantileGBMImpact, onnx_model: bytes, *, threads: int = 1) -> None:
        model._check_fitted()
        self.model = model
        self.features = tuple(model.features)
        self._sess = _onnx.session(onnx_model, threads=threads)
        names = [o.name for o in self._sess.get_outputs()]
        self._scaled = model.intervals == "scaled"
        expected = ["point", "scale"] if self._scaled else ["point", *(f"q{p:g}" for p in model.quantile_models_)]
        if names != expected:
            raise CalibrationError(f"ONNX model outputs {names} do not match the model's {expected}")
        n_in = self._sess.get_inputs()[0].shape[1]
        if n_in != len(self.features):
            raise CalibrationError(f"ONNX model reads {n_in} features; the model names {len(self.features)}")
        rng = model.result_.extra["feature_range"]
        self._lo = [float(rng[f][0]) for f in self.features]
        self._hi = [float(rng[f][1]) for f in self.features]
        self._probs = model._probs()
        self._floor = float(getattr(model, "scale_floor_", 0.0))
        self._margins = list(zip(model.coverages, model.result_.params, strict=True))
        # the estimate's hot path works on plain floats: the probabilities in order, the offset each gets
        # (−margin below the median, +margin above), and the nesting order outward from the median
        offset = dict.fromkeys(self._probs, 0.0)
        for c, margin in self._margins:
            offset[round((1 - c) / 2, 6)] = -float(margin)
            offset[round((1 + c) / 2, 6)] = float(margin)
        self._offsets = [offset[p] for p in self._probs]
        mid = self._probs.index(0.5)
        self._upper = list(range(mid + 1, len(self._probs)))
        self._lower = list(range(mid - 1, -1, -1))
        self._mid = mid
        self._std = float(model.resid_std_bps_)
        self._has_base = model.baseline != "none"
        self._input = self._sess.get_inputs()[0].name

    def _check(self, order: Mapping[str, float]) -> None:
        missing = [f for f in self.features if f not in order]
        if missing:
            raise CalibrationError(f"order lacks the model's features {missing}; the model reads {list(self.features)}")

    def estimate(self, order: Mapping[str, float]) -> ImpactEstimate:
        """Point, conformalized quantiles and P(cost > x) of one order (a mapping with the features)."""
        try:
            x = [float(order[f]) for f in self.features]
        except KeyError:
            self._check(order)
            raise
        outs = self._sess.run(None, {self._input: np.array([x], dtype=np.float32)})
        base = float(self.model._base(order)[0]) if self._has_base else 0.0
        point = float(outs[0][0, 0]) + base
        if self._scaled:
            sc = max(float(outs[1][0, 0]), self._floor)
            q = [point + off * sc for off in self._offsets]
        else:
            q = [float(o[0, 0]) + base + off for o, off in zip(outs[1:], self._offsets, strict=True)]
        for side, pick in ((self._upper, max), (self._lower, min)):  # nest outward from the median
            prev = q[self._mid]
            for i in side:
                prev = q[i] = pick(q[i], prev)
        lo, hi = self._lo, self._hi
        bad = tuple(f for f, v, a, b in zip(self.features, x, lo, hi, strict=True) if v < a or v > b)
        return ImpactEstimate(
            temporary_bps=point,
            permanent_bps=None,
            total_bps=point,
            std_bps=self._std,
            model="QuantileGBMImpact[onnx]",
            quantiles=dict(zip(self._probs, q, strict=True)),
            quantiles_are_distribution=True,
            extrapolated_features=bad,
        )

    def predict_batch(self, X: pd.DataFrame) -> dict[str, F64]:
        """Point (``total_bps``) and conformalized quantiles (``q<p>``) for many orders at once."""
        missing = [f for f in self.features if f not in X.columns]
        if missing:
            raise CalibrationError(f"rows lack the model's features {missing}")
        out = _onnx.run(self._sess, X[list(self.features)].to_numpy(np.float32))
        base = self.model._base(X) if self.model.baseline != "none" else 0.0
        point = out["point"] + base
        unit = np.maximum(out["scale"], self._floor) if self._scaled else 1.0
        raw = {p: point for p in self._probs} if self._scaled else {p: out[f"q{p:g}"] + base for p in self._probs}
        q = {0.5: raw[0.5]}
        for c, margin in self._margins:
            lo, hi = round((1 - c) / 2, 6), round((1 + c) / 2, 6)
            q[lo] = raw[lo] - margin * unit
            q[hi] = raw[hi] + margin * unit
        return {"total_bps": out["point"] + base, **{f"q{p:g}": v for p, v in _nest(q).items()}}


class ConformalRegressorImpact(_ConformalImpact):
    """A random forest, Bayesian ridge regression or a small neural net, with normalized conformal intervals.

    Parameters
    ----------
    kind
        ``"random_forest"`` (scikit-learn, 100 trees, leaves of at least ``min_samples_leaf`` rows),
        ``"bayesian_ridge"`` (on the features and their squares, standardized; its predictive sd
        scales the interval) or ``"mlp"`` (standardized inputs, two hidden layers, early stopping).
    features, target, coverages, calibration_fraction, seed, baseline
        As :class:`QuantileGBMImpact`.
    n_estimators, min_samples_leaf
        Forest settings.
    hidden_layers
        Widths of the net's hidden layers.

    Notes
    -----
    Scores on the calibration rows are ``|y − ŷ| / σ̂(x)`` (σ̂ = 1 for the forest and the net); the
    interval at coverage c is ``ŷ ± m_c σ̂(x)`` with ``m_c`` the ``⌈(n + 1) c⌉``-th smallest score.  The
    forest and the net are stored, and always evaluated, as ONNX (skl2onnx, onnxruntime), so a loaded
    model predicts exactly what the fitted one did; the Bayesian model is plain coefficients.
    """

    def __init__(
        self,
        *,
        kind: Literal["random_forest", "bayesian_ridge", "mlp"] = "random_forest",
        features: tuple[str, ...] = BLOCK_FEATURES,
        target: str = "cost_bps",
        coverages: tuple[float, ...] = (0.8, 0.9, 0.95),
        calibration_fraction: float = 0.25,
        seed: int = 0,
        baseline: Literal["none", "square_root"] = "none",
        n_estimators: int = 100,
        min_samples_leaf: int = 50,
        hidden_layers: tuple[int, ...] = (32, 16),
    ) -> None:
        self.kind = kind
        self.features = features
        self.target = target  # type: ignore[misc]
        self.coverages = coverages
        self.calibration_fraction = calibration_fraction
        self.seed = seed
        self.baseline = baseline
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.hidden_layers = hidden_layers

    def _design(self, X: F64) -> F64:
        """Inputs of the learner: the forest reads raw features; the Bayesian model and the net read
        ``sign(x) log(1 + |x|)`` (heavy-tailed ratios and volumes tamed), the Bayesian model also its square."""
        if self.kind == "random_forest":
            return X
        t = np.sign(X) * np.log1p(np.abs(X))
        return np.column_stack([t, t**2]) if self.kind == "bayesian_ridge" else t

    def _train(self, X: F64, r: F64) -> None:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import BayesianRidge
        from sklearn.neural_network import MLPRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.kind == "bayesian_ridge":
            Z = self._design(X)
            self.z_mean_, self.z_scale_ = Z.mean(axis=0), Z.std(axis=0)
            self.z_scale_[self.z_scale_ == 0] = 1.0
            br = BayesianRidge().fit((Z - self.z_mean_) / self.z_scale_, r)
            self.coef_, self.intercept_ = np.asarray(br.coef_, float), float(br.intercept_)
            self.sigma_, self.noise_precision_ = np.asarray(br.sigma_, float), float(br.alpha_)
            return
        if self.kind == "random_forest":
            est: Any = RandomForestRegressor(
                n_estimators=self.n_estimators,
                min_samples_leaf=self.min_samples_leaf,
                max_features=0.5,
                n_jobs=1,
                random_state=self.seed,
            )
        elif self.kind == "mlp":
            est = make_pipeline(
                StandardScaler(),
                MLPRegressor(
                    hidden_layer_sizes=self.hidden_layers,
                    early_stopping=True,
                    max_iter=500,
                    learning_rate_init=1e-3,
                    random_state=self.seed,
                ),
            )
        else:
            raise CalibrationError(f"'kind' must be random_forest, bayesian_ridge or mlp, got {self.kind!r}")
        Z = self._design(X)
        est.fit(Z, r)
        self.onnx_ = _onnx.sklearn_graph(est, Z.shape[1])
        self._sess = _onnx.session(self.onnx_)

    def _raw(self, X: F64, quantiles: bool = True) -> Raw:
        if self.kind == "bayesian_ridge":
            Zs = (self._design(X) - self.z_mean_) / self.z_scale_
            point = Zs @ self.coef_ + self.intercept_
            sd = np.sqrt(1.0 / self.noise_precision_ + np.einsum("ij,jk,ik->i", Zs, self.sigma_, Zs))
            return np.asarray(point, np.float64), {}, np.asarray(sd, np.float64)
        (out,) = _onnx.run(self._sess, self._design(X)).values()
        return out, {}, np.ones(len(X))

    def _state(self) -> dict[str, Any]:
        if self.kind == "bayesian_ridge":
            return {
                "z_mean": self.z_mean_.tolist(),
                "z_scale": self.z_scale_.tolist(),
                "coef": self.coef_.tolist(),
                "intercept": self.intercept_,
                "sigma": self.sigma_.tolist(),
                "noise_precision": self.noise_precision_,
            }
        return {"onnx": _onnx.b64(self.onnx_)}

    def _load_state(self, extra: dict[str, Any]) -> None:
        if self.kind == "bayesian_ridge":
            self.z_mean_ = np.asarray(extra["z_mean"], float)
            self.z_scale_ = np.asarray(extra["z_scale"], float)
            self.coef_ = np.asarray(extra["coef"], float)
            self.intercept_ = float(extra["intercept"])
            self.sigma_ = np.asarray(extra["sigma"], float).reshape(len(self.coef_), len(self.coef_))
            self.noise_precision_ = float(extra["noise_precision"])
            return
        self.onnx_ = _onnx.unb64(extra["onnx"])
        self._sess = _onnx.session(self.onnx_)
        n_in = self._sess.get_inputs()[0].shape[1]
        if n_in != len(self.features):
            raise CalibrationError(f"stored ONNX model reads {n_in} features; the file names {len(self.features)}")
