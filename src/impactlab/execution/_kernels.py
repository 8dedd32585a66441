"""Kernels of the Cont–Kukanov router: the per-venue quantile conditions with the multiplier of the
no-over-fill constraint found by bisection (``ck_limits``), and the choice of each venue's price level
(``ck_levels``).  Each ``*_py`` function is the plain-Python source of the compiled one; the tests check they
agree."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from impactlab.book._kernels import _compile_with

F64 = NDArray[np.float64]


def _ascending_py(x: F64) -> F64:
    """``x`` sorted; samples already in order (callers may pass them sorted: only their set matters) are
    returned as they are, after one pass to check."""
    for i in range(1, x.shape[0]):
        if x[i] < x[i - 1]:
            return np.sort(x)
    return x


_ascending = _ascending_py


def ck_limits_py(target: float, market_cost: float, gain: F64, free_outflow: F64, under_penalty: float) -> F64:
    """Limit quantities per venue: ``F̃_k(L_k) = (g_k + c − μ)/(g_k + u)``, μ >= 0 the smallest value with
    ``Σ L_k <= target`` (bisection, 50 steps).  ``free_outflow`` is (samples, venues).  This is the
    Python source of the compiled :data:`ck_limits`."""
    n, k = free_outflow.shape
    xs = np.empty((n, k))
    for v in range(k):
        xs[:, v] = _ascending(free_outflow[:, v])
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


def ck_levels_py(
    target: float, market_cost: float, gain: F64, free_outflow: F64, gain_in: F64, outflow_in: F64,
    can_improve: NDArray[np.bool_], under_penalty: float,
) -> NDArray[np.int64]:  # fmt: skip
    """Per venue, 1 where resting one tick inside the spread (``gain_in``, ``outflow_in``) has a lower own
    optimum of ``(u − c)L − (g + u) E min(L, ξ)`` over ``0 <= L <= target`` than the own best, else 0.
    Python source of the compiled :data:`ck_levels`."""
    n, k = free_outflow.shape
    out = np.zeros(k, np.int64)
    for v in range(k):
        if not can_improve[v]:
            continue
        best = np.inf
        for level in range(2):
            g = gain[v] if level == 0 else gain_in[v]
            xs = _ascending(free_outflow[:, v] if level == 0 else outflow_in[:, v])
            den = g + under_penalty
            p = (g + market_cost) / den if den > 0 else 0.0
            if p >= 1.0:
                lim = target
            elif p <= 0.0:
                lim = 0.0
            else:
                lim = min(xs[min(max(math.ceil(p * n) - 1, 0), n - 1)], target)
            filled = 0.0
            for i in range(n):
                filled += min(lim, xs[i])
            value = (under_penalty - market_cost) * lim - den * filled / n
            if value < best - 1e-12:
                best = value
                out[v] = level
    return out


def ck_route_py(
    target: float, market_cost: float, gain: F64, free_outflow: F64, gain_in: F64, outflow_in: F64,
    can_improve: NDArray[np.bool_], under_penalty: float,
) -> tuple[F64, NDArray[np.int64]]:  # fmt: skip
    """Each venue's level (:data:`ck_levels`), then the limit quantities at those levels (:data:`ck_limits`):
    ``(limits, levels)``.  ``gain`` and ``free_outflow`` are updated in place to the chosen levels'.
    Python source of the compiled :data:`ck_route`."""
    level = ck_levels_py(target, market_cost, gain, free_outflow, gain_in, outflow_in, can_improve, under_penalty)
    for v in range(gain.shape[0]):
        if level[v] == 1:
            gain[v] = gain_in[v]
            free_outflow[:, v] = outflow_in[:, v]
    return ck_limits_py(target, market_cost, gain, free_outflow, under_penalty), level


# the same functions compiled (with the compiled helper): the tests check each pair agrees
_ascending_nb = _compile_with(_ascending_py)
ck_limits = _compile_with(ck_limits_py, _ascending=_ascending_nb)
ck_levels = _compile_with(ck_levels_py, _ascending=_ascending_nb)
ck_route = _compile_with(ck_route_py, ck_levels_py=ck_levels, ck_limits_py=ck_limits)
