"""The hedging engine's cost profile in one compiled pass (plain-Python twin ``*_py``, tested against the
object path): for each candidate horizon, the Almgren–Chriss problem linearised from the instrument model at
the hedge's own TWAP, its trajectory at risk aversion λ, and the model's price and risk of that trajectory.

It is :func:`impactlab.hedging.cost_profile` for an :class:`~impactlab.calibration.InstrumentModel` without
building a schedule per horizon (the decision path is hot: the engine prices five horizons per update).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

from impactlab.schedules._kernels import ac_holdings_py, exp_interval_quadratic_py

F64 = NDArray[np.float64]

_quad = numba.njit(cache=True, nogil=True)(exp_interval_quadratic_py)
_hold = numba.njit(cache=True, nogil=True)(ac_holdings_py)


def profile_py(
    quantity: float, horizons: F64, step_s: float, risk_aversion: float, start_s: float, price: float,
    daily_vol: float, adv: float, session_s: float, half: float, kappa: float, rho: float, sqrt_coef: float,
    delta: float, mult: F64, cov: F64, resid: float, gamma_shares: float,
    cost_usd: F64, risk_usd2: F64, cost_bps: F64, std_bps: F64,
) -> None:  # fmt: skip
    """Fill the four output arrays (one value per horizon).  ``kappa < 0`` means no transient part (a top-of-book
    instrument: the square-root part is all of the order's cost); ``mult`` and ``cov`` follow the model's
    parts (spread, transient, sqrt) or (spread, sqrt)."""
    has_t = kappa >= 0.0
    k = 3 if has_t else 2
    sq = sqrt_coef * daily_vol * 1e4 * (quantity / adv) ** delta
    usd = quantity * price / 1e4
    sigma = daily_vol * price / math.sqrt(session_s)
    sig_bps = daily_vol * 1e4 / math.sqrt(session_s)
    base = np.empty(k)
    for i in range(horizons.size):
        h = horizons[i]
        st = min(step_s, h)
        n = max(1, round(h / max(st, 1e-9)))
        tau = h / n
        t = np.empty(n + 1)
        for j in range(n + 1):
            t[j] = start_s + j * tau
        # the linearised problem at the TWAP
        tw = np.full(n, quantity / n)
        if has_t:
            trans_p = mult[1] * 0.5 * kappa * _quad(tw, t[:-1], t[1:], rho) / quantity
            perm = mult[2] * sq
        else:  # the square-root part is all temporary and horizon-free: it does not enter η or γ
            trans_p = 0.0
            perm = 0.0
        gamma = 2.0 * perm * usd / (quantity * quantity)
        eta = max(trans_p, 0.0) * usd * h / (quantity * quantity) + 0.5 * gamma * tau
        eta = max(eta, 0.5 * gamma * tau + 1e-12 * price, 1e-12)
        eta_t = eta - 0.5 * gamma * tau
        x = np.empty(n + 1)
        if n > 1:
            z = 0.5 * risk_aversion * sigma * sigma * tau * tau / eta_t
            kap = math.log1p(z + math.sqrt(z * (z + 2.0))) / tau if math.isfinite(z) else math.inf
            _hold(quantity, h, n, kap, x)
        else:
            x[0] = quantity
            x[1] = 0.0
        x[n] = 0.0
        # the model's price of the trajectory
        tr = x[:-1] - x[1:]
        base[0] = half
        if has_t:
            base[1] = 0.5 * kappa * _quad(tr, t[:-1], t[1:], rho) / quantity
            base[2] = sq
        else:
            base[1] = sq
        total = 0.0
        for j in range(k):
            total += mult[j] * base[j]
        var = resid * resid
        for a in range(k):
            for b in range(k):
                var += base[a] * cov[a, b] * base[b]
        hold2 = 0.0
        for j in range(1, n + 1):
            hold2 += tau * x[j] * x[j]
        timing = sig_bps * math.sqrt(hold2) / quantity
        cost_bps[i] = total
        std_bps[i] = math.sqrt(var + timing * timing)
        cost_usd[i] = total * usd
        risk_usd2[i] = sigma * sigma * hold2 + 0.5 * gamma_shares**2 * sigma**4 * h * h


profile = numba.njit(cache=True, nogil=True)(profile_py)
