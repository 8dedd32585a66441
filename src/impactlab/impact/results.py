"""Fitted-model results and the impact estimate handed to later stages."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = ["ImpactEstimate", "ImpactResult"]


@dataclass(frozen=True, eq=False)
class ImpactResult:
    """Parameters of a fitted impact model with their uncertainty (the statsmodels results pattern).

    Attributes
    ----------
    model
        Class name of the model.
    param_names
        Names of the free parameters, in the order of ``params`` and ``cov``.
    params
        Point estimates.
    cov
        Covariance matrix of the estimates (heteroskedasticity-robust unless the model says otherwise).
    n
        Observations used.
    r2, rmse_bps
        In-sample goodness of fit on the model's target.
    fixed
        Parameters held fixed during the fit, with their values.
    dof_resid
        Residual degrees of freedom, for t-based intervals.
    cov_type
        How ``cov`` was computed.
    extra
        Model-specific outputs (e.g. an estimated kernel).
    """

    model: str
    param_names: tuple[str, ...]
    params: NDArray[np.float64]
    cov: NDArray[np.float64]
    n: int
    r2: float
    rmse_bps: float
    fixed: dict[str, float] = field(default_factory=dict)
    dof_resid: int = 0
    cov_type: str = "HC1"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bse(self) -> NDArray[np.float64]:
        """Standard errors."""
        return np.sqrt(np.clip(np.diag(self.cov), 0.0, None))

    def params_dict(self) -> dict[str, float]:
        """Free and fixed parameters by name."""
        out = {k: float(v) for k, v in zip(self.param_names, self.params, strict=True)}
        out.update(self.fixed)
        return out

    def stderr_dict(self) -> dict[str, float]:
        """Standard errors of the free parameters by name."""
        return {k: float(v) for k, v in zip(self.param_names, self.bse, strict=True)}

    def conf_int(self, alpha: float = 0.05) -> dict[str, tuple[float, float]]:
        """Two-sided ``1 − alpha`` intervals (Student t with ``dof_resid`` degrees of freedom)."""
        if not 0 < alpha < 1:
            raise ValueError(f"'alpha' must be in (0, 1), got {alpha}")
        q = stats.t.ppf(1 - alpha / 2, max(self.dof_resid, 1))
        return {
            k: (float(p - q * s), float(p + q * s))
            for k, p, s in zip(self.param_names, self.params, self.bse, strict=True)
        }

    def summary(self) -> str:
        """A plain-text table: parameter, estimate, std err, t, 95% interval; then n, R², RMSE."""
        ci = self.conf_int()
        lines = [
            f"{self.model} results",
            f"{'parameter':<22}{'estimate':>14}{'std err':>12}{'t':>9}{'[0.025':>13}{'0.975]':>13}",
        ]
        for name, p, s in zip(self.param_names, self.params, self.bse, strict=True):
            t = p / s if s > 0 else math.inf
            lo, hi = ci[name]
            lines.append(f"{name:<22}{p:>14.6g}{s:>12.4g}{t:>9.2f}{lo:>13.6g}{hi:>13.6g}")
        for name, v in self.fixed.items():
            lines.append(f"{name:<22}{v:>14.6g}{'(fixed)':>12}")
        lines.append(f"n = {self.n:,}   R² = {self.r2:.4f}   RMSE = {self.rmse_bps:.4g} bps   cov: {self.cov_type}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (the ``extra`` arrays as lists)."""
        return {
            "model": self.model,
            "params": self.params_dict(),
            "stderr": self.stderr_dict(),
            "conf_int": {k: list(v) for k, v in self.conf_int().items()},
            "cov": self.cov.tolist(),
            "param_names": list(self.param_names),
            "fixed": self.fixed,
            "n": self.n,
            "r2": self.r2,
            "rmse_bps": self.rmse_bps,
            "dof_resid": self.dof_resid,
            "cov_type": self.cov_type,
            "extra": {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.extra.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ImpactResult:
        """Inverse of :meth:`to_dict`."""
        names = tuple(d["param_names"])
        return cls(
            model=d["model"],
            param_names=names,
            params=np.array([d["params"][k] for k in names], dtype=np.float64),
            cov=np.array(d["cov"], dtype=np.float64).reshape(len(names), len(names)),
            n=int(d["n"]),
            r2=float(d["r2"]),
            rmse_bps=float(d["rmse_bps"]),
            fixed={k: float(v) for k, v in d["fixed"].items()},
            dof_resid=int(d["dof_resid"]),
            cov_type=d["cov_type"],
            extra={k: (np.asarray(v) if isinstance(v, list) else v) for k, v in d["extra"].items()},
        )


@dataclass(frozen=True)
class ImpactEstimate:
    """Expected cost of one order, in bps of the arrival mid (positive is a cost).

    Attributes
    ----------
    temporary_bps
        The part that decays after the order (spread, transient impact).
    permanent_bps
        The part that stays in the price; ``None`` when the model was not fitted with data that
        separate it (e.g. a square-root law fitted on realised cost alone).
    total_bps
        Expected realised cost against the arrival mid.
    std_bps
        Standard deviation of the realised cost around ``total_bps`` (from the fit's residuals).
    quantiles
        Optional ``{probability: bps}``.
    quantiles_are_distribution
        Whether ``quantiles`` are calibrated forecasts of the cost distribution (then
        :meth:`prob_exceeds` uses them).
    model
        The model that priced it.
    extrapolated_features
        Features of the order outside the range the model was trained on: the estimate is an
        extrapolation there and should not be trusted as much (empty when inside).
    """

    temporary_bps: float
    permanent_bps: float | None
    total_bps: float
    std_bps: float
    model: str
    quantiles: dict[float, float] = field(default_factory=dict)
    quantiles_are_distribution: bool = False
    extrapolated_features: tuple[str, ...] = ()

    def prob_exceeds(self, threshold_bps: float) -> float:
        """P(cost > threshold).

        With ``quantiles_are_distribution`` (machine-learned models with calibrated quantiles), the
        distribution function is interpolated linearly between the quantiles, and a normal tail matched to
        ``std_bps`` is used beyond the outermost ones; otherwise a normal distribution around
        ``total_bps`` of sd ``std_bps``.
        """
        normal = (
            float(threshold_bps < self.total_bps)
            if self.std_bps <= 0
            else float(stats.norm.sf(threshold_bps, loc=self.total_bps, scale=self.std_bps))
        )
        if not self.quantiles_are_distribution or len(self.quantiles) < 2:
            return normal
        probs = np.array(sorted(self.quantiles))
        values = np.maximum.accumulate(np.array([self.quantiles[p] for p in probs]))
        if values[0] <= threshold_bps <= values[-1]:
            return float(1.0 - np.interp(threshold_bps, values, probs))
        if threshold_bps < values[0]:
            return float(max(1.0 - probs[0], normal))
        return float(min(1.0 - probs[-1], normal))
