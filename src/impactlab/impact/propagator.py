"""Propagator (transient-impact) model of Bouchaud, Gefen, Potters & Wyart (2004).

Trades are indexed in trade time n.  With ε_n the sign of trade n and p_n the log-mid (bps) just
before it, the model is ``p_n = Σ_{n'<n} G(n − n') ε_{n'} + noise``.  The sign autocorrelation
``C(ℓ) = E[ε_n ε_{n+ℓ}] − E[ε]²`` and the response ``R(ℓ) = E[(p_{n+ℓ} − p_n) ε_n]`` are estimated with
FFTs, and the kernel solves

    R(ℓ) = Σ_{m≥1} G(m) [C(ℓ − m) − C(m)],  ℓ = 1..L,

non-parametrically (a linear system) or within a parametric family (power law ``G = g₀ ℓ^{−β}``,
exponential ``G = g₀ e^{−ℓ/τ}``) by least squares on R.  Intervals come from a jackknife over
contiguous blocks of trades, since neighbouring lags of C and R are far from independent.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import optimize, signal, stats

from impactlab.errors import CalibrationError
from impactlab.impact._base import ImpactModel, r2_rmse
from impactlab.impact.results import ImpactEstimate, ImpactResult

__all__ = ["PropagatorModel", "power_law_exponent", "response_function", "sign_autocorrelation"]

F64 = NDArray[np.float64]
Kernel = Literal["power_law", "exponential", "nonparametric"]


def _xcorr_sum(a: F64, b: F64, max_lag: int) -> F64:
    """``S(ℓ) = Σ_{n < N−ℓ} a_n b_{n+ℓ}`` for ℓ = 0..max_lag, by FFT."""
    n = a.size
    size = 1 << int(np.ceil(np.log2(2 * n)))
    fa = np.fft.rfft(a, size)
    fb = np.fft.rfft(b, size)
    return np.fft.irfft(np.conj(fa) * fb, size)[: max_lag + 1]


def sign_autocorrelation(signs: F64, max_lag: int) -> F64:
    """``C(ℓ)`` for ℓ = 0..max_lag (``C(0)`` is the variance of the signs), FFT-based, O(N log N)."""
    e = np.asarray(signs, float)
    if e.size <= max_lag + 1:
        raise CalibrationError(f"too little data: {e.size} trades for {max_lag} lags")
    mu = e.mean()
    x = e - mu
    return _xcorr_sum(x, x, max_lag) / (e.size - np.arange(max_lag + 1))


def response_function(signs: F64, price_bps: F64, max_lag: int) -> F64:
    """``R(ℓ) = E[(p_{n+ℓ} − p_n) ε_n]`` for ℓ = 0..max_lag (``R(0) = 0``), FFT-based."""
    e = np.asarray(signs, float)
    p = np.asarray(price_bps, float)
    n = e.size
    counts = n - np.arange(max_lag + 1)
    forward = _xcorr_sum(e, p, max_lag) / counts  # mean of e_n p_{n+l}
    ep = np.cumsum(e * p)
    same = ep[n - 1 - np.arange(max_lag + 1)] / counts  # mean of e_n p_n over n < N - l
    return np.asarray(forward - same, dtype=np.float64)


def power_law_exponent(lags: F64, values: F64) -> float:
    """Slope of ``−log values`` on ``log lags`` over positive values (the exponent of ``ℓ^{−x}``)."""
    ok = values > 0
    if ok.sum() < 3:
        return float("nan")
    return float(-np.polyfit(np.log(lags[ok]), np.log(values[ok]), 1)[0])


def _design(c: F64, max_lag: int) -> F64:
    """``A[ℓ−1, m−1] = C(|ℓ − m|) − C(m)`` (C normalised so that ``C(0) = 1``), with the kernel held at
    G(L) beyond lag L: the tail ``G(L) Σ_{m>L} [C(m − ℓ) − C(m)]`` telescopes to ``G(L) Σ_{j=L+1−ℓ}^{L} C(j)``
    and is added to the last column, exactly, from C up to lag L."""
    lag = np.arange(1, max_lag + 1)
    a = c[np.abs(lag[:, None] - lag[None, :])] - c[lag][None, :]
    tail = np.cumsum(c[1 : max_lag + 1][::-1])  # tail[ℓ−1] = Σ_{j=L+1−ℓ}^{L} C(j)
    a[:, -1] += tail
    return np.asarray(a, dtype=np.float64)


def _kernel(kind: Kernel, theta: F64, lags: F64) -> tuple[F64, F64]:
    """G(ℓ) and dG/dθ (columns) for a parametric family."""
    if kind == "power_law":
        g = theta[0] * lags ** (-theta[1])
        return g, np.column_stack([g / theta[0], -g * np.log(lags)])
    g = theta[0] * np.exp(-lags / theta[1])
    return g, np.column_stack([g / theta[0], g * lags / theta[1] ** 2])


class PropagatorModel(ImpactModel):
    """Transient impact in trade time, fitted from trade signs and mids.

    Parameters
    ----------
    kernel
        ``"power_law"``, ``"exponential"`` or ``"nonparametric"``.
    max_lag
        Lags L of C, R and the kernel.
    fit_lags
        Lags over which the sign-autocorrelation exponent γ (``C ∝ ℓ^{−γ}``) is fitted, ``(lo, hi)``.
    n_blocks
        Contiguous blocks for the jackknife intervals.

    Notes
    -----
    ``X`` holds trades in time order with ``sign`` (±1) and ``mid_bps`` (10⁴·ln mid just before the
    trade); the target ``next_return_bps`` is ``mid_bps[n+1] − mid_bps[n]``, predicted as
    ``Σ_k [G(k+1) − G(k)] ε_{n−k}`` (G(0) = 0, and G stays at G(L) beyond the last lag, in estimation and
    prediction alike).  ``result_.extra`` holds C, R, the kernel and γ.
    With a kernel that never decays the model is permanent (linear, Kyle-like) impact.

    References
    ----------
    Bouchaud, J.-P., Gefen, Y., Potters, M. & Wyart, M. (2004). Fluctuations and response in financial
    markets: the subtle nature of 'random' price changes. Quantitative Finance 4(2), 176–190.
    """

    required_columns = ("sign", "mid_bps")
    varying_columns = ("sign",)
    target = "next_return_bps"
    n_params = 2

    def __init__(
        self,
        *,
        kernel: Kernel = "power_law",
        max_lag: int = 200,
        fit_lags: tuple[int, int] = (1, 100),
        n_blocks: int = 20,
    ) -> None:
        self.kernel = kernel
        self.max_lag = max_lag
        self.fit_lags = fit_lags
        self.n_blocks = n_blocks

    # -- estimation on one sample ------------------------------------------------------------------------
    def estimate(self, signs: F64, mid_bps: F64) -> dict[str, Any]:
        """The kernel from one sample, without the jackknife: ``params``, ``kernel_bps``,
        ``sign_autocorrelation``, ``response_bps`` and ``gamma`` (what :meth:`fit` does once per block)."""
        theta, g, c, r, gamma = self._estimate(np.asarray(signs, float), np.asarray(mid_bps, float))
        return {
            "params": dict(zip(self._names(), theta.tolist(), strict=True)),
            "kernel_bps": g,
            "sign_autocorrelation": c,
            "response_bps": r,
            "gamma": gamma,
        }

    def _estimate(self, e: F64, p: F64) -> tuple[F64, F64, F64, F64, float]:
        L = self.max_lag
        c_raw = sign_autocorrelation(e, L)
        if c_raw[0] <= 0:
            raise CalibrationError("PropagatorModel: trade signs are constant; the kernel cannot be fitted")
        c = c_raw / c_raw[0]
        r = response_function(e, p, L) / c_raw[0]
        a = _design(c, L)
        lags = np.arange(1, L + 1, dtype=float)
        lo, hi = self.fit_lags
        gamma = power_law_exponent(lags[lo - 1 : hi], c[lo : hi + 1])
        if self.kernel == "nonparametric":
            g = np.linalg.lstsq(a, r[1:], rcond=None)[0]
            theta = np.array([g[0], power_law_exponent(lags, g)])
        else:

            def resid(th: F64) -> F64:
                return np.asarray(r[1:] - a @ _kernel(self.kernel, th, lags)[0], dtype=np.float64)

            def jac(th: F64) -> F64:
                return -(a @ _kernel(self.kernel, th, lags)[1])

            if self.kernel == "power_law":
                bounds, starts = ([-np.inf, 0.0], [np.inf, 5.0]), [0.1, 0.3, 0.6, 1.0]
            else:
                bounds, starts = ([-np.inf, 0.1], [np.inf, 1e6]), [1.0, L / 10, L, 10.0 * L]
            best = None
            for s0 in starts:  # several starts: R is smooth but the families are not convex in their scale
                res = optimize.least_squares(
                    resid, np.array([r[1] if r[1] != 0 else 1e-3, s0]), jac=jac, bounds=bounds, method="trf"
                )
                if best is None or res.cost < best.cost:
                    best = res
            assert best is not None
            theta = best.x
            g = _kernel(self.kernel, theta, lags)[0]
        return theta, g, c, r, gamma

    def _names(self) -> tuple[str, str]:
        return {
            "power_law": ("g0_bps", "beta"),
            "exponential": ("g0_bps", "tau_trades"),
            "nonparametric": ("g1_bps", "beta"),
        }[self.kernel]

    def _fit(self, df: pd.DataFrame, y: F64) -> ImpactResult:
        e = np.asarray(df["sign"], float)
        p = np.asarray(df["mid_bps"], float)
        if len(e) < self.n_blocks * (self.max_lag + 2):
            raise CalibrationError(
                f"PropagatorModel: too little data: {len(e)} trades for {self.n_blocks} blocks of {self.max_lag} lags"
            )
        theta, g, c, r, gamma = self._estimate(e, p)
        # jackknife over contiguous blocks: leave one block out, join the rest
        edges = np.linspace(0, len(e), self.n_blocks + 1).astype(int)
        reps, gammas = [], []
        for b in range(self.n_blocks):
            keep = np.r_[0 : edges[b], edges[b + 1] : len(e)]
            th, _, _, _, gm = self._estimate(e[keep], p[keep])
            reps.append(th)
            gammas.append(gm)
        k = self.n_blocks
        reps_a = np.array(reps)
        dev = reps_a - reps_a.mean(axis=0)
        cov = (k - 1) / k * dev.T @ dev
        gvar = (k - 1) / k * float(np.sum((np.array(gammas) - np.mean(gammas)) ** 2))
        self.kernel_ = g
        yhat = self._predict_from(g, e)
        r2, rmse = r2_rmse(y, yhat)
        q = float(stats.t.ppf(0.975, k - 1))
        return ImpactResult(
            model=type(self).__name__,
            param_names=self._names(),
            params=theta,
            cov=cov,
            n=len(e),
            r2=r2,
            rmse_bps=rmse,
            dof_resid=k - 1,
            cov_type=f"jackknife over {k} contiguous blocks",
            extra={
                "kernel_bps": g,
                "sign_autocorrelation": c,
                "response_bps": r,
                "gamma": gamma,
                "gamma_stderr": float(np.sqrt(gvar)),
                "gamma_conf_int": [gamma - q * float(np.sqrt(gvar)), gamma + q * float(np.sqrt(gvar))],
            },
        )

    @staticmethod
    def _predict_from(g: F64, e: F64) -> F64:
        h = np.diff(np.concatenate([[0.0], g]))  # h(k) = G(k+1) − G(k), k = 0..L−1
        return np.asarray(signal.fftconvolve(e, h)[: e.size], dtype=np.float64)

    def _predict(self, df: pd.DataFrame) -> F64:
        return self._predict_from(np.asarray(self.result_.extra["kernel_bps"], float), np.asarray(df["sign"], float))

    def predict_schedule(self, signed_volumes: F64, *, unit_volume: float | None = None) -> dict[str, Any]:
        """Transient impact of a schedule of child orders placed one per trade-time step.

        Each child of signed volume v moves later prices by ``G(ℓ) · v / v̄`` (``v̄ = unit_volume``,
        default the mean absolute child size).  Returns the impact path (bps) in force before each
        child and the size-weighted average impact paid, ``cost_bps`` (positive for a buy programme).
        """
        self._check_fitted()
        v = np.asarray(signed_volumes, float)
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise CalibrationError("'signed_volumes' must be a non-empty finite array")
        unit = float(unit_volume) if unit_volume else float(np.mean(np.abs(v)))
        g = np.asarray(self.result_.extra["kernel_bps"], float)
        full = np.concatenate([[0.0], g, np.full(max(0, v.size - g.size), g[-1])])  # G beyond L stays at G(L)
        path = signal.fftconvolve(v / unit, full)[: v.size]  # path[k] = Σ_{j<k} G(k − j) v_j / v̄
        side = np.sign(v.sum()) or 1.0
        return {"impact_path_bps": path, "cost_bps": float(side * (np.abs(v) @ path) / np.abs(v).sum())}

    def predict_estimate(self, order: Any) -> ImpactEstimate:
        """Cost of ``n_children`` equal child orders (``side`` ±1) in consecutive trade-time steps, each of
        typical trade size.  ``total`` is the average impact paid per child, ``permanent`` the price shift
        still in force L steps after the last child, and ``temporary = total − permanent/2``."""
        self._check_fitted()
        n = int(order["n_children"])
        side = float(order["side"])
        if n < 1 or side not in (1.0, -1.0):
            raise CalibrationError(f"'n_children' must be >= 1 and 'side' ±1, got {n}, {side}")
        v = np.concatenate([np.full(n, side), np.zeros(self.max_lag)])
        path = self.predict_schedule(v[:n], unit_volume=1.0)["impact_path_bps"]
        total = float(side * path.mean())
        g = np.asarray(self.result_.extra["kernel_bps"], float)
        full = np.concatenate([[0.0], g, np.full(v.size, g[-1])])
        perm = float(side * np.sum(full[v.size - np.arange(n)] * v[:n]))  # shift in force L steps after the end
        return ImpactEstimate(
            temporary_bps=total - perm / 2,
            permanent_bps=perm,
            total_bps=total,
            std_bps=self.resid_std_bps_ * float(np.sqrt(n)),
            model=type(self).__name__,
        )

    def _restore(self, doc: dict[str, Any]) -> None:
        super()._restore(doc)
        self.kernel_ = np.asarray(self.result_.extra["kernel_bps"], float)
