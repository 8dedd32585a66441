"""Obizhaeva–Wang impact with exponential resilience, estimated from the book's recovery after large trades."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.errors import CalibrationError
from impactlab.impact._base import ImpactModel, nls
from impactlab.impact.results import ImpactResult

__all__ = ["ObizhaevaWangImpact"]

F64 = NDArray[np.float64]


class ObizhaevaWangImpact(ImpactModel):
    """Block-shaped book of depth q, permanent fraction and exponential resilience ρ.

    Parameters
    ----------
    control_later_flow
        Add ``φ · later_signed_volume`` (the flow that followed the event within τ) so that the decay is
        that of the event's own impact, not masked by the orders that followed it.
    cov_type
        ``"HC1"`` (default; clustered by event) or ``"nonrobust"``.

    Notes
    -----
    A trade of x shares moves the price by ``x/q``: ``λx`` stays (permanent) and ``κx`` decays at rate ρ,
    so the mid τ seconds later has moved by ``m(τ) = x (λ + κ e^{−ρτ})``.  Fitted on
    :func:`impactlab.calibration.large_order_events` rows (target ``move_bps``), with λ and κ in bps
    per share; ``1/q = λ + κ``.  ``result_.extra`` gives the depth in shares per bps, the permanent
    fraction ``λ/(λ+κ)`` and the half-life ``ln 2 / ρ`` when resilience is identified (κ's 95% interval
    above zero); otherwise ``resilience_identified`` is false and ``diagnosis`` says why.  For an order of
    Q shares at once, the estimate is the cost of walking a book of depth q: ``total = (λ+κ) Q / 2``,
    ``permanent = λQ``.

    References
    ----------
    Obizhaeva, A. A. & Wang, J. (2013). Optimal trading strategy and supply/demand dynamics. Journal of
    Financial Markets 16(1), 1–32.
    """

    required_columns = ("signed_quantity", "tau_s")
    varying_columns = ("signed_quantity", "tau_s")
    target = "move_bps"
    n_params = 3

    def __init__(self, *, control_later_flow: bool = True, cov_type: str = "HC1") -> None:
        self.control_later_flow = control_later_flow
        self.cov_type = cov_type

    def _later(self, df: pd.DataFrame) -> F64:
        if not self.control_later_flow:
            return np.zeros(len(df))
        if "later_signed_volume" not in df:
            raise CalibrationError("ObizhaevaWangImpact(control_later_flow=True) needs 'later_signed_volume'")
        return np.asarray(df["later_signed_volume"], float)

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        x = np.asarray(df["signed_quantity"], float)
        tau = np.asarray(df["tau_s"], float)
        groups = np.unique(np.asarray(df["event"]), return_inverse=True)[1] if "event" in df else None

        later = self._later(df)
        names = ("lambda_bps", "kappa_bps", "rho_per_s", *(("phi_bps",) if self.control_later_flow else ()))

        def fun(t: F64) -> tuple[F64, F64]:
            decay = np.exp(-t[2] * tau)
            phi = t[3] if self.control_later_flow else 0.0
            f = x * (t[0] + t[1] * decay) + phi * later
            cols = [x, x * decay, -x * t[1] * tau * decay, *([later] if self.control_later_flow else [])]
            return y - f, np.column_stack(cols)

        immediate = tau == tau.min()
        slope0 = float(np.dot(x[immediate], y[immediate]) / max(np.dot(x[immediate], x[immediate]), 1e-300))
        x0 = np.array([slope0 / 2, slope0 / 2, 0.1, *([0.0] if self.control_later_flow else [])])
        lo = [-np.inf, -np.inf, 1e-6, *([-np.inf] if self.control_later_flow else [])]
        hi = [np.inf, np.inf, 100.0, *([np.inf] if self.control_later_flow else [])]
        theta, cov = nls(
            fun, x0, names=names, bounds=(lo, hi), cov_type=self.cov_type, groups=groups, model=type(self).__name__
        )
        inv_q = theta[0] + theta[1]
        se_kappa = float(np.sqrt(max(cov[1, 1], 0.0)))
        identified = bool(theta[1] - 1.96 * se_kappa > 0 and inv_q > 0)
        extra: dict[str, object] = {
            "resilience_identified": identified,
            "depth_shares_per_bps": float(1 / inv_q) if identified else None,
            "permanent_fraction": float(theta[0] / inv_q) if identified else None,
            "half_life_s": float(np.log(2) / theta[2]) if identified else None,
            "events": int(groups.max() + 1) if groups is not None else None,
            "diagnosis": ""
            if identified
            else (
                "no resilience identified: the transient part κ is not significantly positive, so the mid does "
                "not revert after the events; depth, permanent fraction and half-life are not reported"
            ),
        }
        return self._nls_result(names, theta, cov, y, y - fun(theta)[0], extra=extra)

    @classmethod
    def from_estimates(
        cls,
        *,
        depth_shares_per_bps: float,
        permanent_fraction: float,
        rho_per_s: float,
        cov: F64,
        n: int,
        resid_std_bps: float,
        r2: float,
        fitted_window_ns: tuple[int, int] | None = None,
        data_fingerprint: str = "",
        extra: dict[str, object] | None = None,
    ) -> ObizhaevaWangImpact:
        """A fitted model from depth q, permanent fraction f and ρ measured elsewhere (e.g. from the book by
        :func:`impactlab.calibration.calibrate_ow_book`): ``λ = f/q``, ``κ = (1 − f)/q``.

        ``cov`` is the 3×3 covariance of (q, f, ρ); λ and κ get theirs by the delta method.  ``r2`` and
        ``resid_std_bps`` describe the fit that gave f (the near quote's path).
        """
        q, f, rho = float(depth_shares_per_bps), float(permanent_fraction), float(rho_per_s)
        if not (q > 0 and 0 <= f <= 1 and rho > 0):
            raise CalibrationError(f"OW needs q > 0, 0 <= f <= 1 and ρ > 0; got q={q:g}, f={f:g}, ρ={rho:g}")
        jac = np.array([[-f / q**2, 1 / q, 0.0], [-(1 - f) / q**2, -1 / q, 0.0], [0.0, 0.0, 1.0]])
        model = cls(control_later_flow=False)
        model.result_ = ImpactResult(
            model=cls.__name__,
            param_names=("lambda_bps", "kappa_bps", "rho_per_s"),
            params=np.array([f / q, (1 - f) / q, rho]),
            cov=jac @ np.asarray(cov, float) @ jac.T,
            n=int(n),
            r2=float(r2),
            rmse_bps=float(resid_std_bps),
            fixed={},
            dof_resid=max(int(n) - 3, 1),
            cov_type="HC1",
            extra={
                "resilience_identified": True,
                "depth_shares_per_bps": q,
                "permanent_fraction": f,
                **(extra or {}),
            },
        )
        model.resid_std_bps_ = float(resid_std_bps)
        model.fitted_window_ = fitted_window_ns
        model.data_fingerprint_ = data_fingerprint
        model.n_features_in_ = len(model._columns())
        return model

    def _predict(self, df: pd.DataFrame) -> F64:
        t = self.result_.params
        own = np.asarray(df["signed_quantity"], float) * (t[0] + t[1] * np.exp(-t[2] * np.asarray(df["tau_s"], float)))
        return np.asarray(own + (t[3] * self._later(df) if self.control_later_flow else 0.0), dtype=np.float64)

    def _components(self, df: pd.DataFrame) -> tuple[F64, F64 | None, F64]:
        lam, kap = self.result_.params[:2]
        q = np.abs(np.asarray(df["signed_quantity"], float))
        total = (lam + kap) * q / 2
        perm = lam * q
        return total - perm / 2, perm, total
