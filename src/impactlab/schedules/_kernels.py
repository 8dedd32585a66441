"""Compiled Almgren–Chriss trajectory kernels (plain-Python twins ``*_py``, tested against each other).

The trajectory ``x_j = X sinh(κ(T − t_j)) / sinh(κT)`` is evaluated as
``X e^{−κ t_j} (1 − e^{−2κ(T − t_j)}) / (1 − e^{−2κT})``, which never overflows: at any κ (any risk
aversion) every term is a number in [0, 1].  κ = 0 is the linear (TWAP) trajectory.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def sinh_ratio_py(kappa: float, remaining: float, horizon: float) -> float:
    """``sinh(κ · remaining) / sinh(κ · horizon)`` for ``0 <= remaining <= horizon``, overflow-free; the
    κ → 0 limit ``remaining / horizon`` at κ = 0."""
    if remaining <= 0.0:
        return 0.0
    if remaining >= horizon:
        return 1.0
    if kappa * horizon < 1e-12:
        return remaining / horizon
    if kappa == math.inf:
        return 0.0
    return (
        math.exp(-kappa * (horizon - remaining))
        * (-math.expm1(-2.0 * kappa * remaining))
        / (-math.expm1(-2.0 * kappa * horizon))
    )


def ac_holdings_py(quantity: float, horizon: float, n_steps: int, kappa: float, out: F64) -> None:
    """Fill ``out`` (``N + 1``) with the optimal holdings ``x_0 = X … x_N = 0`` on equal steps.

    ``x_j = X q^j s_{N−j} / s_N`` with ``q = e^{−κτ}``, ``s_m = 1 − e^{−2κτm}`` from the recurrence
    ``s_{m+1} = r s_m + e`` (``e = 1 − e^{−2κτ}`` by ``expm1``, ``r = 1 − e``): only products and sums of
    positive numbers, so no cancellation, no overflow, and no transcendental call per element.
    """
    n = n_steps
    if kappa * horizon < 1e-12:  # linear to within (κT)² ~ 1e-24; also keeps subnormal κ from dividing by zero
        for j in range(n + 1):
            out[j] = quantity * (n - j) / n
        return
    if kappa == math.inf:
        for j in range(n + 1):
            out[j] = 0.0
        out[0] = quantity
        return
    tau = horizon / n
    e = -math.expm1(-2.0 * kappa * tau)
    r = 1.0 - e
    q = math.exp(-kappa * tau)
    s = 0.0
    for j in range(n, -1, -1):
        out[j] = s
        s = r * s + e
    scale = quantity / -math.expm1(-2.0 * kappa * horizon)
    for j in range(n + 1):
        out[j] *= scale
        scale *= q
    out[0] = quantity
    out[n] = 0.0


def ac_frontier_py(
    quantity: float,
    horizon: float,
    n_steps: int,
    kappas: F64,
    sigma: float,
    eta_tilde: float,
    fixed_cost: float,
    holdings: F64,
    expected: F64,
    variance: F64,
) -> None:
    """Holdings (one row per κ), expected cost ``fixed + (η̃/τ) Σ n_k²`` and variance ``σ²τ Σ x_k²``.

    Calls the compiled :func:`ac_holdings` (itself tested against its twin), so that this function compiles
    as it stands."""
    tau = horizon / n_steps
    for i in range(kappas.size):
        ac_holdings(quantity, horizon, n_steps, kappas[i], holdings[i])
        sq_trades = 0.0
        sq_hold = 0.0
        for j in range(1, n_steps + 1):
            d = holdings[i, j - 1] - holdings[i, j]
            sq_trades += d * d
            sq_hold += holdings[i, j] * holdings[i, j]
        expected[i] = fixed_cost + eta_tilde / tau * sq_trades
        variance[i] = sigma * sigma * tau * sq_hold


sinh_ratio = numba.njit(cache=True, nogil=True)(sinh_ratio_py)


ac_holdings = numba.njit(cache=True, nogil=True)(ac_holdings_py)


ac_frontier = numba.njit(cache=True, nogil=True)(ac_frontier_py)


def exp_interval_quadratic_py(n: F64, a: F64, b: F64, rho: float) -> float:
    """``nᵀMn`` for the exponential kernel averaged over intervals ``[a_k, b_k]`` (constant-rate trading
    within each), in O(N) by the decaying running sum ``D_j = Σ_{i<j} n_i φ_i e^{−ρ(a_j − b_i)}``:
    ``nᵀMn = Σ_j n_j² ψ_j + 2 Σ_j n_j φ_j D_j`` with ``φ(x) = (1 − e^{−x})/x`` and
    ``ψ(x) = 2(x − 1 + e^{−x})/x²`` at ``x = ρτ_j`` (their limits 1 for a block)."""
    total = 0.0
    d = 0.0
    phi_prev = 1.0
    for j in range(n.size):
        x = rho * (b[j] - a[j])
        phi = -math.expm1(-x) / x if x > 1e-8 else 1.0 - 0.5 * x
        psi = 2.0 * (x + math.expm1(-x)) / (x * x) if x > 1e-4 else 1.0 - x / 3.0 + x * x / 12.0
        if j > 0:
            d = d * math.exp(-rho * (a[j] - a[j - 1])) + n[j - 1] * phi_prev * math.exp(-rho * (a[j] - b[j - 1]))
        total += n[j] * n[j] * psi + 2.0 * n[j] * phi * d
        phi_prev = phi
    return total


exp_interval_quadratic = numba.njit(cache=True, nogil=True)(exp_interval_quadratic_py)
