"""Estimator base for impact models: validation, fitting helpers, persistence.

Models follow the scikit-learn contract: ``__init__`` only stores keyword-only settings, ``fit`` validates
and returns ``self``, fitted values end in ``_``, ``predict`` returns bps.  ``X`` is a
:class:`pandas.DataFrame` with the columns a model names in ``required_columns``; ``y`` defaults to the
model's ``target`` column.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize, stats
from sklearn.base import BaseEstimator

from impactlab.errors import CalibrationError, ConvergenceWarning
from impactlab.impact.results import ImpactEstimate, ImpactResult

__all__ = ["ImpactModel", "load_model"]

F64 = NDArray[np.float64]
MODEL_FILE_VERSION = 1
_REGISTRY: dict[str, type[ImpactModel]] = {}


def _fingerprint(arrays: list[NDArray[Any]]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


def sandwich_cov(jac: F64, resid: F64, *, cov_type: str, groups: NDArray[np.int64] | None = None) -> F64:
    """Covariance of least-squares estimates from the Jacobian of the fitted values and the residuals.

    ``nonrobust``: ``s² (JᵀJ)⁻¹``.  ``HC1``: ``n/(n−k) · (JᵀJ)⁻¹ Jᵀ diag(r²) J (JᵀJ)⁻¹``.  With ``groups``
    (several residuals per observation), the meat sums the scores within each group (cluster-robust).
    """
    n, k = jac.shape
    bread = np.linalg.pinv(jac.T @ jac)
    if cov_type == "nonrobust":
        return bread * float(resid @ resid) / max(n - k, 1)
    if cov_type != "HC1":
        raise ValueError(f"'cov_type' must be 'HC1' or 'nonrobust', got {cov_type!r}")
    scores = jac * resid[:, None]
    if groups is not None:
        m = int(groups.max()) + 1
        scores = np.column_stack([np.bincount(groups, weights=scores[:, j], minlength=m) for j in range(k)])
        n = m
    meat = scores.T @ scores
    return bread @ meat @ bread * n / max(n - k, 1)


def nls(
    fun: Callable[[F64], tuple[F64, F64]],
    x0: F64,
    *,
    names: tuple[str, ...],
    bounds: tuple[Any, Any] = (-np.inf, np.inf),
    cov_type: str = "HC1",
    groups: NDArray[np.int64] | None = None,
    model: str = "",
) -> tuple[F64, F64]:
    """Non-linear least squares with an analytic Jacobian (scipy ``least_squares``: MINPACK's
    Levenberg–Marquardt when unbounded, trust-region reflective with bounds).

    ``fun(theta)`` returns ``(residuals, jacobian_of_fitted_values)``.  Returns ``(theta, cov)``.
    A fit that stops without converging warns :class:`ConvergenceWarning` with the reason and keeps the
    last iterate; non-finite estimates raise :class:`CalibrationError`.
    """
    cache: dict[bytes, tuple[F64, F64]] = {}

    def both(t: F64) -> tuple[F64, F64]:  # least_squares asks for residuals and Jacobian separately
        key = np.asarray(t, float).tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = fun(t)
        return cache[key]

    unbounded = bool(np.all(np.isinf(np.asarray(bounds[0], float))) and np.all(np.isinf(np.asarray(bounds[1], float))))
    res = optimize.least_squares(
        lambda t: both(t)[0],
        x0,
        jac=lambda t: -both(t)[1],
        bounds=bounds,
        method="lm" if unbounded else "trf",
        x_scale="jac",
        max_nfev=200 * (len(x0) + 1),
    )
    if not np.all(np.isfinite(res.x)):
        raise CalibrationError(
            f"{model}: the optimisation produced non-finite parameters {dict(zip(names, res.x, strict=True))}"
        )
    if res.status <= 0:
        warnings.warn(f"{model}: least squares did not converge ({res.message})", ConvergenceWarning, stacklevel=3)
    r, jac = both(res.x)
    return res.x, sandwich_cov(jac, r, cov_type=cov_type, groups=groups)


def r2_rmse(y: F64, yhat: F64) -> tuple[float, float]:
    """In-sample R² (against the mean) and RMSE."""
    resid = y - yhat
    sst = float(((y - y.mean()) ** 2).sum())
    return (1.0 - float(resid @ resid) / sst if sst > 0 else float("nan")), float(np.sqrt(np.mean(resid**2)))


class ImpactModel(BaseEstimator, ABC):  # type: ignore[misc]
    """Base class of every impact model.

    Subclasses set ``required_columns`` and ``target`` and implement ``_fit`` (returning an
    :class:`ImpactResult`), ``_predict`` and, where the model separates them, ``_components``.
    """

    required_columns: ClassVar[tuple[str, ...]] = ()
    positive_columns: ClassVar[tuple[str, ...]] = ()
    varying_columns: ClassVar[tuple[str, ...]] = ()
    """Columns whose effect is estimated: a constant one is a :class:`CalibrationError`.  Context columns
    (ADV, volatility, depth) may be constant, e.g. within one day."""
    target: ClassVar[str] = "cost_bps"
    n_params: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # -- validation ------------------------------------------------------------------------------------
    def _columns(self) -> tuple[str, ...]:
        """Columns the model reads (a class constant for parametric models, a setting for ML models)."""
        return self.required_columns

    def _target(self) -> str:
        return self.target

    def _frame(self, X: Any) -> pd.DataFrame:
        df = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        missing = [c for c in self._columns() if c not in df.columns]
        if missing:
            raise CalibrationError(f"{type(self).__name__} needs columns {missing}; got {list(df.columns)}")
        return df

    def _validate_fit(self, df: pd.DataFrame, y: Any) -> F64:
        name = type(self).__name__
        yv = np.asarray(df[self._target()] if y is None else y, dtype=np.float64)
        if yv.shape != (len(df),):
            raise CalibrationError(f"{name}: y has shape {yv.shape}, expected ({len(df)},)")
        need = max(10, 5 * self.n_params)
        if len(df) < need:
            raise CalibrationError(f"{name}: too little data: need at least {need} rows, got {len(df)}")
        bad = ~np.isfinite(yv)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise CalibrationError(f"{name}: target has {int(bad.sum())} NaN or infinite values (first at row {first})")
        for col in self._columns():
            v = np.asarray(df[col], dtype=np.float64)
            if not np.all(np.isfinite(v)):
                raise CalibrationError(f"{name}: column {col!r} has NaN or infinite values")
            if col in self.positive_columns and np.any(v <= 0):
                raise CalibrationError(f"{name}: column {col!r} must be > 0, got min {v.min():g}")
            if col in self.varying_columns and np.ptp(v) == 0:
                raise CalibrationError(f"{name}: column {col!r} is constant ({v[0]:g}); its effect cannot be fitted")
        return yv

    # -- public API ---------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> ImpactModel:
        """Fit on ``X`` (and ``y``, default ``X[self.target]``); returns ``self``."""
        df = self._frame(X)
        yv = self._validate_fit(df, y)
        result = self._fit(df, yv)
        if not np.all(np.isfinite(result.params)):
            raise CalibrationError(f"{type(self).__name__}: fit produced non-finite parameters {result.params_dict()}")
        self.result_ = result
        self.n_features_in_ = len(self._columns())
        resid = yv - self._predict(df)
        self.resid_std_bps_ = float(np.std(resid, ddof=min(len(resid) - 1, len(result.params))))
        cols = [np.asarray(df[c], dtype=np.float64) for c in self._columns()] + [yv]
        self.data_fingerprint_ = _fingerprint(cols)
        ts = [c for c in ("start_ns", "ts_ns", "bar_start_ns") if c in df.columns]
        self.fitted_window_ = (int(df[ts[0]].min()), int(df[ts[0]].max())) if ts else None
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "result_"):
            raise CalibrationError(f"{type(self).__name__} is not fitted; call fit first")

    def predict(self, X: Any) -> F64:
        """Predicted target in bps for each row of ``X``."""
        self._check_fitted()
        return self._predict(self._frame(X))

    def predict_interval(self, X: Any, *, coverage: float = 0.9) -> tuple[F64, F64]:
        """Central prediction interval of the given coverage, normal around the prediction with the
        residual standard deviation of the fit."""
        if not 0 < coverage < 1:
            raise ValueError(f"'coverage' must be in (0, 1), got {coverage}")
        yhat = self.predict(X)
        z = float(stats.norm.ppf(0.5 + coverage / 2))
        return yhat - z * self.resid_std_bps_, yhat + z * self.resid_std_bps_

    def predict_estimate(self, order: Mapping[str, float] | pd.Series) -> ImpactEstimate:
        """Temporary, permanent and total cost of one order (a mapping with the required columns)."""
        self._check_fitted()
        df = self._frame(pd.DataFrame([dict(order)]))
        temp, perm, total = self._components(df)
        qs = {p: float(total[0] + self.resid_std_bps_ * stats.norm.ppf(p)) for p in (0.05, 0.5, 0.95)}
        return ImpactEstimate(
            temporary_bps=float(temp[0]),
            permanent_bps=None if perm is None else float(perm[0]),
            total_bps=float(total[0]),
            std_bps=self.resid_std_bps_,
            model=type(self).__name__,
            quantiles=qs,
        )

    def _components(self, df: pd.DataFrame) -> tuple[F64, F64 | None, F64]:
        total = self._predict(df)
        return total, None, total

    def _nls_result(
        self,
        names: tuple[str, ...],
        theta: F64,
        cov: F64,
        y: F64,
        yhat: F64,
        *,
        fixed: dict[str, float] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ImpactResult:
        """The results object of a least-squares fit: R², RMSE and residual degrees of freedom from the data."""
        r2, rmse = r2_rmse(y, yhat)
        return ImpactResult(
            model=type(self).__name__,
            param_names=names,
            params=np.asarray(theta, float),
            cov=cov,
            n=len(y),
            r2=r2,
            rmse_bps=rmse,
            fixed=fixed or {},
            dof_resid=len(y) - len(names),
            cov_type=getattr(self, "cov_type", "HC1"),
            extra=extra or {},
        )

    # -- subclass hooks -------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        """Estimate the parameters."""

    @abstractmethod
    def _predict(self, df: pd.DataFrame) -> F64:
        """Predicted target in bps, from ``self.result_``."""

    # -- persistence ----------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The fitted model as plain JSON: settings, result, window, fingerprint, versions."""
        self._check_fitted()
        from impactlab import __version__

        return {
            "format": "impactlab-model",
            "format_version": MODEL_FILE_VERSION,
            "impactlab_version": __version__,
            "class": type(self).__name__,
            "settings": self.get_params(),
            "result": self.result_.to_dict(),
            "resid_std_bps": self.resid_std_bps_,
            "fitted_window_ns": list(self.fitted_window_) if self.fitted_window_ else None,
            "data_fingerprint": self.data_fingerprint_,
            "instrument": getattr(self, "instrument_", None),
            "market_data": getattr(self, "market_data_", None),
            "units": {
                "cost": "bps of the arrival mid",
                "quantity": (getattr(self, "instrument_", None) or {}).get("size_unit", "shares"),
            },
            "saved_at": dt.datetime.now(dt.UTC).isoformat(),
        }

    def set_market(self, day: Any) -> ImpactModel:
        """Record the instrument and the market data the model was fitted on (saved in its file, checked by
        ``pretrade --model``); returns self."""
        self.instrument_: dict[str, Any] | None = day.spec.to_dict()
        self.market_data_: dict[str, Any] | None = {
            "label": day.label,
            "source": day.source,
            "files": [str(p) for p in day.paths],
            "span_ns": [int(day.first_ns), int(day.last_ns)],
            "fingerprint": _fingerprint([day.ts_ns, day.mid, day.trades.price, day.trades.size]),
        }
        return self

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (never a pickle)."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(), indent=2, allow_nan=False)
        p.write_text(text)
        _trust(text.encode())  # written here: loaded again without the sandboxed check
        return p

    def _restore(self, doc: dict[str, Any]) -> None:
        self.result_ = ImpactResult.from_dict(doc["result"])
        self.resid_std_bps_ = float(doc["resid_std_bps"])
        self.fitted_window_ = tuple(doc["fitted_window_ns"]) if doc["fitted_window_ns"] else None
        self.data_fingerprint_ = doc["data_fingerprint"]
        self.instrument_ = doc.get("instrument")
        self.market_data_ = doc.get("market_data")
        self.n_features_in_ = len(self._columns())


def _trust_file() -> Path:
    import os

    return Path(os.environ.get("IMPACTLAB_HOME", "~/.impactlab")).expanduser() / "trusted-models.txt"


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _trust(data: bytes) -> None:
    """Add a file's SHA-256 to the allow-list (a model this installation wrote itself)."""
    try:
        f = _trust_file()
        f.parent.mkdir(parents=True, exist_ok=True)
        with f.open("a") as out:
            out.write(_digest(data) + "\n")
    except OSError:  # a read-only home: the file is then checked in a child process when loaded
        pass


def _trusted(data: bytes) -> bool:
    try:
        return _digest(data) in set(_trust_file().read_text().split())
    except OSError:
        return False


def _limits() -> None:  # pragma: no cover - runs in the child
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


_PROBE = """
import sys
from impactlab.impact._base import _build, _exercise
m = _build(sys.argv[1])
_exercise(m)
print("ok")
"""


def _build(path: str | Path) -> ImpactModel:
    """Read and build a model file in this process (no safety check: see :func:`load_model`)."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"cannot read model file {p}: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("format") != "impactlab-model"
        or (doc.get("format_version") != MODEL_FILE_VERSION)
    ):
        raise CalibrationError(f"{p} is not an impactlab model file of version {MODEL_FILE_VERSION}")
    cls = _REGISTRY.get(str(doc.get("class", "")))
    if cls is None:
        raise CalibrationError(f"{p}: unknown model class {doc.get('class')!r}")
    try:
        model = cls(**doc["settings"])
        model._restore(doc)
    except CalibrationError:
        raise
    except Exception as exc:  # a field missing or of the wrong type, a model string the library refuses
        raise CalibrationError(f"{p}: malformed {cls.__name__} model file ({type(exc).__name__}: {exc})") from exc
    return model


def _exercise(model: ImpactModel) -> None:
    """Price one ordinary order with the model (what a crafted file would crash)."""
    order = {c: 1.0 for c in model._columns()}
    model.predict_estimate(order)


def load_model(path: str | Path, *, timeout_s: float = 120.0) -> ImpactModel:
    """Load a model saved by :meth:`ImpactModel.save`; only JSON is read, only registered classes built.

    A file this installation saved (its SHA-256 is in ``$IMPACTLAB_HOME/trusted-models.txt``) loads at
    once.  Any other is first parsed and made to price an order in a child process with memory and CPU
    limits: an embedded LightGBM model or ONNX graph crafted to crash its parser kills only the child, and
    the load is refused with :class:`~impactlab.errors.CalibrationError`.
    """
    import subprocess
    import sys

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"cannot read model file {p}: {exc}") from exc
    if not _trusted(data):
        try:
            proc = subprocess.run([sys.executable, "-c", _PROBE, str(p)], capture_output=True, text=True,
                                  timeout=timeout_s, preexec_fn=_limits, check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise CalibrationError(f"model file {p}: parsing it took over {timeout_s:g} s; refused") from exc
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or [""])[-1]
            if proc.returncode < 0 or "CalibrationError" not in last:
                why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}: {last[:200]}"
                raise CalibrationError(f"model file {p} is not a model this installation can load safely: its "
                                       f"parser failed in a sandboxed process ({why})")  # fmt: skip
            raise CalibrationError(last.split("CalibrationError: ", 1)[-1])
    model = _build(p)
    return model
