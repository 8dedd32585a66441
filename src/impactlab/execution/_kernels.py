"""Kernel of the Cont–Kukanov router (per-venue quantile conditions with the multiplier of the no-over-fill
constraint found by bisection): ``ck_limits_py`` is the plain-Python source, ``ck_limits`` the same function
compiled by numba; the tests check they agree."""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def ck_limits_py(target: float, market_cost: float, gain: F64, free_outflow: F64, under_penalty: float) -> F64:
    """Limit quantities per venue: ``F̃_k(L_k) = (g_k + c − μ)/(g_k + u)``, μ >= 0 the smallest value with
    ``Σ L_k <= target`` (bisection, 50 steps).  ``free_outflow`` is (samples, venues).  This is the
    Python source of the compiled :data:`ck_limits`."""
    n, k = free_outflow.shape
    xs = np.empty((n, k))
    for v in range(k):
        xs[:, v] = np.sort(free_outflow[:, v])
    out = np.empty(k)

    def total_at(mu: float) -> float:
        s = 0.0
        for v in range(k):
            den = gain[v] + under_penalty
            p = (gain[v] + market_cost - mu) / den if den > 0 else 0.0
            if p >= 1.0:
                x = target
            elif p <= 0.0:
                x = 0.0
            else:
                i = math.ceil(p * n) - 1
                x = xs[min(max(i, 0), n - 1), v]
            out[v] = min(x, target)
            s += out[v]
        return s

    if total_at(0.0) <= target:
        return out.copy()
    lo = 0.0
    hi = 1.0
    for v in range(k):
        hi = max(hi, gain[v] + market_cost + 1.0)  # at hi every p <= 0: no limit orders
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if total_at(mid) > target:
            lo = mid
        else:
            hi = mid
    total_at(hi)
    return out.copy()


# the same function compiled: the tests check the two agree
ck_limits = njit(cache=True)(ck_limits_py)
