"""The parametric "Almgren–Chriss world": arithmetic Brownian motion with linear permanent and temporary
impact, in which a schedule's cost has exactly the mean E and variance V of Almgren & Chriss (2000).

A sell program of X shares in N steps of length τ trades ``n_k``; holdings ``x_k = X − Σ_{j≤k} n_j``.

``S_k = S_{k−1} + σ τ^{1/2} ξ_k − γ n_k`` and the k-th trade executes at ``S̃_k = S_{k−1} − ε − η n_k / τ``,
so the implementation shortfall ``X S_0 − Σ n_k S̃_k`` has mean ``½γX² + εX + (η̃/τ) Σ n_k²`` with
``η̃ = η − ½γτ`` and variance ``σ² τ Σ_{k≥1} x_k²`` (eqs. 5–8 of the paper).

References
----------
Almgren, R. & Chriss, N. (2000). Optimal execution of portfolio transactions. Journal of Risk 3(2), 5–39.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import SimulationError

__all__ = ["AlmgrenChrissWorld"]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class AlmgrenChrissWorld:
    """Arithmetic Brownian motion with linear impact.

    Parameters
    ----------
    quantity
        X, shares to sell (> 0).
    horizon
        T, in the time unit of ``sigma`` (e.g. days).
    n_steps
        N, number of trading intervals.
    price
        S₀.
    sigma
        Price volatility, currency per √time unit.
    eta
        Temporary impact, currency per (share per time unit).
    gamma
        Permanent impact, currency per share.
    epsilon
        Fixed cost per share (half the spread plus fees).
    """

    quantity: float
    horizon: float
    n_steps: int
    price: float
    sigma: float
    eta: float
    gamma: float = 0.0
    epsilon: float = 0.0

    def __post_init__(self) -> None:
        for name in ("quantity", "horizon", "price", "eta"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v <= 0:
                raise SimulationError(f"{name!r} must be > 0, got {v!r}")
        for name in ("sigma", "gamma", "epsilon"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise SimulationError(f"{name!r} must be >= 0, got {v!r}")
        if int(self.n_steps) < 1:
            raise SimulationError(f"'n_steps' must be >= 1, got {self.n_steps!r}")
        if self.eta - 0.5 * self.gamma * self.tau <= 0:
            raise SimulationError(f"'eta' must exceed γτ/2 = {0.5 * self.gamma * self.tau:g} (η̃ > 0), got {self.eta!r}")

    @property
    def tau(self) -> float:
        return self.horizon / self.n_steps

    def moments(self, trades: F64) -> tuple[float, float]:
        """Exact ``(E, V)`` of the shortfall of ``trades`` (currency, currency²)."""
        n = self._check(trades)
        x = self.quantity - np.cumsum(n)
        eta_t = self.eta - 0.5 * self.gamma * self.tau
        e = (
            0.5 * self.gamma * self.quantity**2
            + self.epsilon * float(np.abs(n).sum())
            + eta_t / self.tau * float(n @ n)
        )
        return e, self.sigma**2 * self.tau * float(x @ x)

    def _check(self, trades: F64) -> F64:
        n = np.asarray(trades, float)
        if n.shape != (self.n_steps,):
            raise SimulationError(f"'trades' needs {self.n_steps} values, got shape {n.shape}")
        if not np.isclose(n.sum(), self.quantity, rtol=1e-9, atol=1e-9 * self.quantity):
            raise SimulationError(f"'trades' must sum to the quantity {self.quantity:g}, got {n.sum():g}")
        return n

    def step(self, price: float, trade: float, shock: float) -> tuple[float, float]:
        """One interval: ``(execution price of the trade, next price)`` given the standard normal ``shock``."""
        exec_price = price - self.epsilon * (trade > 0) - self.eta * trade / self.tau
        return exec_price, price + self.sigma * np.sqrt(self.tau) * shock - self.gamma * trade

    def simulate(self, trades: F64, *, n_paths: int, seed: int) -> F64:
        """Implementation shortfall (currency) of ``trades`` on ``n_paths`` independent price paths."""
        n = self._check(trades)
        rng = np.random.default_rng(seed)
        xi = rng.standard_normal((int(n_paths), self.n_steps))
        s_prev = (
            self.price
            + np.cumsum(np.c_[np.zeros(int(n_paths)), self.sigma * np.sqrt(self.tau) * xi[:, :-1]], axis=1)
            - self.gamma * np.r_[0.0, np.cumsum(n)[:-1]]
        )
        exec_px = s_prev - self.epsilon * (n > 0) - self.eta * n / self.tau
        return np.asarray(self.quantity * self.price - exec_px @ n, dtype=np.float64)
