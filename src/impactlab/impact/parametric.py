"""Parametric impact models fitted by (non-)linear least squares.

Bar models (fitted on :func:`impactlab.calibration.bar_flows` tables, target ``return_bps`` or
``cost_bps``) and order models (fitted on :func:`impactlab.calibration.order_outcomes` tables, target
``cost_bps``).  Costs are in bps of the arrival mid and positive when the trader pays.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import statsmodels.api as sm
from numpy.typing import NDArray

from impactlab.errors import CalibrationError
from impactlab.impact._base import ImpactModel, nls, r2_rmse
from impactlab.impact.results import ImpactResult

__all__ = [
    "IStarImpact",
    "KyleLambdaImpact",
    "OFIImpact",
    "PowerLawImpact",
    "SpreadSquareRootImpact",
    "SquareRootImpact",
]

F64 = NDArray[np.float64]
BPS = 1e4


def _ols(name: str, X: F64, y: F64, names: tuple[str, ...], cov_type: str, **extra: object) -> ImpactResult:
    """OLS through statsmodels, with heteroskedasticity-robust (HC1) or classical covariance."""
    res = sm.OLS(y, X).fit(cov_type=cov_type if cov_type != "nonrobust" else "nonrobust")
    r2, rmse = r2_rmse(y, X @ res.params)
    return ImpactResult(
        model=name,
        param_names=names,
        params=np.asarray(res.params, float),
        cov=np.asarray(res.cov_params(), float),
        n=len(y),
        r2=r2,
        rmse_bps=rmse,
        dof_resid=int(res.df_resid),
        cov_type=cov_type,
        extra=dict(extra),
    )


def _col(df: pd.DataFrame, name: str) -> F64:
    return np.asarray(df[name], dtype=np.float64)


class KyleLambdaImpact(ImpactModel):
    """Linear (Kyle) impact: bar return = λ · signed volume (+ intercept).

    Parameters
    ----------
    fit_intercept
        Fit a constant drift per bar.
    cov_type
        ``"HC1"`` (robust, default) or ``"nonrobust"``.

    Notes
    -----
    ``return_bps_k = c + λ · V_k`` with ``V_k`` the signed traded volume of bar k (shares).  A Kyle
    price move is permanent, so :meth:`predict_estimate` of an order of ``quantity`` shares gives
    ``permanent = total = λ · quantity`` and no temporary part.

    References
    ----------
    Kyle, A. S. (1985). Continuous auctions and insider trading. Econometrica 53(6), 1315–1335.
    """

    required_columns = ("signed_volume",)
    varying_columns = ("signed_volume",)
    target = "return_bps"

    def __init__(self, *, fit_intercept: bool = True, cov_type: str = "HC1") -> None:
        self.fit_intercept = fit_intercept
        self.cov_type = cov_type

    def _design(self, df: pd.DataFrame) -> F64:
        x = _col(df, "signed_volume")[:, None]
        return np.hstack([np.ones_like(x), x]) if self.fit_intercept else x

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        names = ("intercept_bps", "lambda_bps_per_share") if self.fit_intercept else ("lambda_bps_per_share",)
        return _ols(type(self).__name__, self._design(df), y, names, self.cov_type)

    def _predict(self, df: pd.DataFrame) -> F64:
        return self._design(df) @ self.result_.params

    def _components(self, df: pd.DataFrame) -> tuple[F64, F64 | None, F64]:
        lam = self.result_.params_dict()["lambda_bps_per_share"]
        total = lam * np.abs(_col(df, "signed_volume"))
        return np.zeros_like(total), total, total


class OFIImpact(ImpactModel):
    """Order-flow-imbalance impact (Cont, Kukanov & Stoikov 2014): bar return = β · OFI.

    Parameters
    ----------
    depth_normalised
        Model β as inversely proportional to depth: ``return_bps = c · OFI / D`` with D the bar's mean
        L1 depth (``depth_1_mean``, bid plus ask), so ``c`` is dimensionless in bps.  Otherwise β is one
        constant (bps per share).
    fit_intercept, cov_type
        As for :class:`KyleLambdaImpact`.

    Notes
    -----
    CKS regress ``ΔP_k = α + β OFI_k + ε_k`` with ``β = c / AD^λ`` (λ ≈ 1); the normalised form here is
    λ = 1.  An order of Q shares executed at once is an OFI of Q (it depletes the opposite queue), so its
    cost is ``c · Q / D`` (permanent, like any mid move).

    References
    ----------
    Cont, R., Kukanov, A. & Stoikov, S. (2014). The price impact of order book events. Journal of
    Financial Econometrics 12(1), 47–88.
    """

    required_columns = ("ofi", "depth_1_mean")
    varying_columns = ("ofi",)
    positive_columns = ("depth_1_mean",)
    target = "return_bps"

    def __init__(self, *, depth_normalised: bool = True, fit_intercept: bool = True, cov_type: str = "HC1") -> None:
        self.depth_normalised = depth_normalised
        self.fit_intercept = fit_intercept
        self.cov_type = cov_type

    def _x(self, df: pd.DataFrame, flow: str = "ofi") -> F64:
        x = _col(df, flow)
        return x / _col(df, "depth_1_mean") if self.depth_normalised else x

    def _design(self, df: pd.DataFrame) -> F64:
        x = self._x(df)[:, None]
        return np.hstack([np.ones_like(x), x]) if self.fit_intercept else x

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        slope = "c_bps" if self.depth_normalised else "beta_bps_per_share"
        names = ("intercept_bps", slope) if self.fit_intercept else (slope,)
        return _ols(type(self).__name__, self._design(df), y, names, self.cov_type)

    def _predict(self, df: pd.DataFrame) -> F64:
        return self._design(df) @ self.result_.params

    def _components(self, df: pd.DataFrame) -> tuple[F64, F64 | None, F64]:
        p = self.result_.params
        q = np.abs(_col(df, "quantity")) if "quantity" in df else np.abs(_col(df, "ofi"))
        d = _col(df, "depth_1_mean")
        total = p[-1] * (q / d if self.depth_normalised else q)
        return np.zeros_like(total), total, total


class SquareRootImpact(ImpactModel):
    """Square-root law: ``cost_bps = Y · σ · (Q/V)^δ · 10⁴``, δ free or fixed (½ by default).

    Parameters
    ----------
    delta
        Fixed exponent, or ``None`` to fit it.
    cov_type
        ``"HC1"`` (default) or ``"nonrobust"``.

    Notes
    -----
    Q is the order (or the bar's net flow) in shares, V the average daily volume, σ the daily
    volatility as a fraction.  With δ fixed the model is linear in Y (OLS through the origin); with δ
    free it is fitted by non-linear least squares from the δ = ½ solution.  The law predicts the
    realised cost only: the estimate's ``permanent_bps`` is ``None``.

    References
    ----------
    Tóth, B. et al. (2011). Anomalous price impact and the critical nature of liquidity in financial
    markets. Physical Review X 1, 021006.  Gatheral, J. (2010). No-dynamic-arbitrage and market impact.
    Quantitative Finance 10(7), 749–759.
    """

    required_columns = ("quantity", "adv", "daily_vol")
    varying_columns = ("quantity",)
    positive_columns = ("quantity", "adv", "daily_vol")
    n_params = 2

    def __init__(self, *, delta: float | None = 0.5, cov_type: str = "HC1") -> None:
        self.delta = delta
        self.cov_type = cov_type

    @staticmethod
    def _uz(df: pd.DataFrame) -> tuple[F64, F64]:
        return _col(df, "quantity") / _col(df, "adv"), _col(df, "daily_vol") * BPS

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        u, s = self._uz(df)
        name = type(self).__name__
        if self.delta is not None:
            res = _ols(name, (s * u**self.delta)[:, None], y, ("Y",), self.cov_type)
            return dataclasses.replace(res, fixed={"delta": float(self.delta)})
        y0 = float(_ols(name, (s * u**0.5)[:, None], y, ("Y",), "nonrobust").params[0])
        lu = np.log(u)

        def fun(t: F64) -> tuple[F64, F64]:
            f = t[0] * s * u ** t[1]
            return y - f, np.column_stack([f / t[0], f * lu])

        theta, cov = nls(
            fun, np.array([y0 if y0 > 0 else 1.0, 0.5]), names=("Y", "delta"), cov_type=self.cov_type, model=name
        )
        return self._nls_result(("Y", "delta"), theta, cov, y, theta[0] * s * u ** theta[1])

    def _predict(self, df: pd.DataFrame) -> F64:
        p = self.result_.params_dict()
        u, s = self._uz(df)
        return p["Y"] * s * u ** p["delta"]


class SpreadSquareRootImpact(ImpactModel):
    """Half-spread plus the square-root law: ``cost_bps = c · spread_bps/2 + Y · σ · (Q/V)^δ · 10⁴``.

    The parametric baseline for the cost of an order that crosses the spread: the square-root law alone
    has no spread term, so it misprices small orders, whose cost is mostly the half-spread.  c, Y and δ
    are fitted by non-linear least squares (δ = ½ start); the estimate's ``temporary_bps`` is the whole
    cost and ``permanent_bps`` is ``None``.
    """

    required_columns = ("quantity", "adv", "daily_vol", "spread_bps")
    varying_columns = ("quantity", "spread_bps")
    positive_columns = ("quantity", "adv", "daily_vol")
    n_params = 3

    def __init__(self, *, cov_type: str = "HC1") -> None:
        self.cov_type = cov_type

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        u, s = SquareRootImpact._uz(df)
        half = _col(df, "spread_bps") / 2
        name = type(self).__name__
        lin = _ols(name, np.column_stack([half, s * u**0.5]), y, ("c", "Y"), "nonrobust").params
        lu = np.log(u)

        def fun(t: F64) -> tuple[F64, F64]:
            g = s * u ** t[2]
            return y - (t[0] * half + t[1] * g), np.column_stack([half, g, t[1] * g * lu])

        x0 = np.array([lin[0], lin[1] if lin[1] > 0 else 1.0, 0.5])
        theta, cov = nls(fun, x0, names=("c", "Y", "delta"), cov_type=self.cov_type, model=name)
        return self._nls_result(("c", "Y", "delta"), theta, cov, y, y - fun(theta)[0])

    def _predict(self, df: pd.DataFrame) -> F64:
        c, big_y, d = self.result_.params
        u, s = SquareRootImpact._uz(df)
        return np.asarray(c * _col(df, "spread_bps") / 2 + big_y * s * u**d, dtype=np.float64)


class PowerLawImpact(ImpactModel):
    """Power-law temporary and permanent impact (Almgren, Thum, Hauptmann & Li 2005).

    Parameters
    ----------
    alpha, beta
        Permanent and temporary exponents; a number fixes one (the paper fixes α = 1 and β = 3/5),
        ``None`` fits it.
    delta
        Exponent of turnover ``Θ/V`` (fixed, ¼ in the paper); used when the data carry
        ``shares_outstanding``, else the factor is 1.
    cov_type
        ``"HC1"`` (default; clustered by order across the two equations) or ``"nonrobust"``.

    Notes
    -----
    With X shares over T days, V the ADV, σ the daily volatility and Θ the shares outstanding:

    - permanent ``I = γ σ T (X/(VT))^α (Θ/V)^δ``, observed as the move from arrival to ``post_mid``;
    - temporary ``K = η σ (X/(VT))^β``;
    - realised cost ``J = I/2 + K`` (half the permanent impact is paid during a linear execution).

    Both equations are fitted jointly: residuals ``I_obs − I(θ)`` and ``J_obs − I(θ)/2 − K(θ)`` are
    stacked, and the robust covariance sums each order's two scores.  :meth:`predict` gives ``J``.

    References
    ----------
    Almgren, R., Thum, C., Hauptmann, E. & Li, H. (2005). Direct estimation of equity market impact.
    Risk 18(7), 58–62.
    """

    required_columns = ("quantity", "adv", "daily_vol", "duration_days", "permanent_bps")
    varying_columns = ("quantity",)
    positive_columns = ("quantity", "adv", "daily_vol", "duration_days")
    n_params = 4

    def __init__(
        self, *, alpha: float | None = 1.0, beta: float | None = 0.6, delta: float = 0.25, cov_type: str = "HC1"
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.delta = delta
        self.cov_type = cov_type

    def _names(self) -> tuple[str, ...]:
        return ("gamma", *(("alpha",) if self.alpha is None else ()), "eta", *(("beta",) if self.beta is None else ()))

    def _parts(self, df: pd.DataFrame) -> tuple[F64, F64, F64, F64]:
        q, v, s, t = (_col(df, c) for c in ("quantity", "adv", "daily_vol", "duration_days"))
        turnover = (_col(df, "shares_outstanding") / v) ** self.delta if "shares_outstanding" in df else 1.0
        return q / (v * t), s * BPS, t, np.broadcast_to(turnover, q.shape).astype(float)

    def _unpack(self, theta: F64) -> dict[str, float]:
        d = dict(zip(self._names(), (float(x) for x in theta), strict=True))
        d.setdefault("alpha", float(self.alpha if self.alpha is not None else 1.0))
        d.setdefault("beta", float(self.beta if self.beta is not None else 0.6))
        return d

    def _ik(self, df: pd.DataFrame, p: dict[str, float]) -> tuple[F64, F64]:
        u, s, t, turn = self._parts(df)
        return p["gamma"] * s * t * u ** p["alpha"] * turn, p["eta"] * s * u ** p["beta"]

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        if "shares_outstanding" in df and not np.all(np.asarray(df["shares_outstanding"], float) > 0):
            raise CalibrationError("PowerLawImpact: shares_outstanding must be > 0 where given")
        i_obs = _col(df, "permanent_bps")
        names = self._names()
        lu = np.log(self._parts(df)[0])
        n = len(y)

        def fun(th: F64) -> tuple[F64, F64]:
            p = self._unpack(th)
            i, k = self._ik(df, p)
            cols1, cols2 = [i / p["gamma"]], [i / (2 * p["gamma"])]
            if self.alpha is None:
                cols1.append(i * lu)
                cols2.append(i * lu / 2)
            cols1.append(np.zeros(n))
            cols2.append(k / p["eta"])
            if self.beta is None:
                cols1.append(np.zeros(n))
                cols2.append(k * lu)
            jac = np.vstack([np.column_stack(cols1), np.column_stack(cols2)])
            return np.concatenate([i_obs - i, y - i / 2 - k]), jac

        x0 = np.array([{"gamma": 0.3, "alpha": 1.0, "eta": 0.1, "beta": 0.6}[nm] for nm in names])
        groups = np.concatenate([np.arange(n), np.arange(n)])
        theta, cov = nls(fun, x0, names=names, cov_type=self.cov_type, groups=groups, model=type(self).__name__)
        p = self._unpack(theta)
        i, k = self._ik(df, p)
        fixed = {nm: p[nm] for nm in ("alpha", "beta") if nm not in names}
        if "shares_outstanding" in df:
            fixed["delta"] = float(self.delta)
        return self._nls_result(names, theta, cov, y, i / 2 + k, fixed=fixed)

    def _predict(self, df: pd.DataFrame) -> F64:
        i, k = self._ik(df, self.result_.params_dict())
        return i / 2 + k

    def _components(self, df: pd.DataFrame) -> tuple[F64, F64 | None, F64]:
        i, k = self._ik(df, self.result_.params_dict())
        return k, i, i / 2 + k


class IStarImpact(ImpactModel):
    """Kissell's I-Star model with its parameter bounds.

    Notes
    -----
    ``I* = a₁ (Q/ADV)^{a₂} σ^{a₃}`` (σ annualised, ``daily_vol · √252``) and market impact
    ``MI = b₁ I* POV^{a₄} + (1 − b₁) I*``, with POV the order's share of the volume traded while it
    executes.  Bounds 100 ≤ a₁ ≤ 1000, 0.1 ≤ a₂, a₃, a₄ ≤ 1, 0.7 ≤ b₁ ≤ 1.  The ``b₁`` part is temporary,
    the ``1 − b₁`` part permanent.  A parameter at a bound has no meaningful interval.

    References
    ----------
    Kissell, R., Glantz, M. & Malamut, R. (2004). A practical framework for estimating transaction
    costs and developing optimal trading strategies. Journal of Trading.  Kissell, R. (2013). The
    Science of Algorithmic Trading and Portfolio Management. Academic Press.
    """

    required_columns = ("quantity", "adv", "daily_vol", "pov")
    varying_columns = ("quantity", "pov")
    positive_columns = ("quantity", "adv", "daily_vol", "pov")
    n_params = 5
    LOWER = np.array([100.0, 0.1, 0.1, 0.1, 0.7])
    UPPER = np.array([1000.0, 1.0, 1.0, 1.0, 1.0])

    def __init__(self, *, cov_type: str = "HC1") -> None:
        self.cov_type = cov_type

    @staticmethod
    def _mi(df: pd.DataFrame, a: F64) -> tuple[F64, F64, F64, F64, F64]:
        u = _col(df, "quantity") / _col(df, "adv")
        sig = _col(df, "daily_vol") * np.sqrt(252.0)
        pov = _col(df, "pov")
        istar = a[0] * u ** a[1] * sig ** a[2]
        pa = pov ** a[3]
        return istar, a[4] * istar * pa + (1 - a[4]) * istar, u, sig, pov

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        names = ("a1", "a2", "a3", "a4", "b1")

        def fun(a: F64) -> tuple[F64, F64]:
            istar, mi, u, sig, pov = self._mi(df, a)
            pa = pov ** a[3]
            jac = np.column_stack(
                [mi / a[0], mi * np.log(u), mi * np.log(sig), a[4] * istar * pa * np.log(pov), istar * (pa - 1)]
            )
            return y - mi, jac

        theta, cov = nls(
            fun,
            np.array([708.0, 0.55, 0.71, 0.5, 0.98]),
            names=names,
            bounds=(self.LOWER, self.UPPER),
            cov_type=self.cov_type,
            model=type(self).__name__,
        )
        at_bound = [
            nm
            for nm, x, lo, hi in zip(names, theta, self.LOWER, self.UPPER, strict=True)
            if np.isclose(x, lo) or np.isclose(x, hi)
        ]
        return self._nls_result(names, theta, cov, y, self._mi(df, theta)[1], extra={"at_bound": at_bound})

    def _predict(self, df: pd.DataFrame) -> F64:
        return self._mi(df, self.result_.params)[1]

    def _components(self, df: pd.DataFrame) -> tuple[F64, F64 | None, F64]:
        a = self.result_.params
        istar, mi, _, _, pov = self._mi(df, a)
        return a[4] * istar * pov ** a[3], (1 - a[4]) * istar, mi
