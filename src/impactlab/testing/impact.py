"""Simulated calibration data with known parameters, for parameter-recovery tests and benchmarks."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.calibration.datasets import TRADING_DAY_NS

__all__ = [
    "fractional_gaussian_noise",
    "simulate_bars",
    "simulate_book_resilience",
    "simulate_impact_events",
    "simulate_parent_orders",
    "simulate_trades",
]

OrderModel = Literal["square_root", "power_law", "istar"]
DEFAULTS: dict[str, dict[str, float]] = {
    "square_root": {"Y": 0.8, "delta": 0.5},
    "power_law": {"gamma": 0.314, "alpha": 1.0, "eta": 0.142, "beta": 0.6, "delta": 0.25},
    "istar": {"a1": 708.0, "a2": 0.55, "a3": 0.71, "a4": 0.5, "b1": 0.98},
}


def simulate_parent_orders(
    n: int,
    *,
    seed: int,
    model: OrderModel = "square_root",
    params: dict[str, float] | None = None,
    noise_bps: float = 5.0,
    permanent_noise_bps: float | None = None,
    with_shares_outstanding: bool = False,
) -> pd.DataFrame:
    """Parent orders in the ``PARENT_ORDERS`` layout whose outcomes follow ``model`` plus normal noise.

    Order sizes are log-uniform between 0.01% and 10% of ADV (ADV log-normal around 2M shares), daily
    volatility uniform in [1%, 4%], durations uniform in [0.05, 1] session, sides ±1 at random.  The
    realised cost in bps gets noise of sd ``noise_bps``; the permanent move (``post_mid``) gets
    ``permanent_noise_bps`` (default: the same).  Costs become prices around an arrival mid near $50.
    """
    rng = np.random.default_rng(seed)
    p = {**DEFAULTS[model], **(params or {})}
    adv = np.exp(rng.normal(np.log(2e6), 0.5, n))
    q = adv * np.exp(rng.uniform(np.log(1e-4), np.log(0.1), n))
    vol = rng.uniform(0.01, 0.04, n)
    t = rng.uniform(0.05, 1.0, n)
    side = rng.choice([-1, 1], n)
    theta = adv * rng.uniform(50, 500, n)
    u = q / (adv * t)
    if model == "square_root":
        cost = p["Y"] * vol * (q / adv) ** p["delta"] * 1e4
        perm = 0.5 * cost
    elif model == "power_law":
        turn = (theta / adv) ** p["delta"] if with_shares_outstanding else 1.0
        perm = p["gamma"] * vol * t * u ** p["alpha"] * turn * 1e4
        cost = perm / 2 + p["eta"] * vol * u ** p["beta"] * 1e4
    else:
        pov = q / (q + adv * t)
        istar = p["a1"] * (q / adv) ** p["a2"] * (vol * np.sqrt(252)) ** p["a3"]
        cost = p["b1"] * istar * pov ** p["a4"] + (1 - p["b1"]) * istar
        perm = (1 - p["b1"]) * istar
    cost_obs = cost + rng.normal(0, noise_bps, n)
    perm_obs = perm + rng.normal(0, noise_bps if permanent_noise_bps is None else permanent_noise_bps, n)
    arrival = 50 * np.exp(rng.normal(0, 0.2, n))
    start = 1_340_285_400_000_000_000 + np.sort(rng.integers(0, 200 * TRADING_DAY_NS, n))
    df = pd.DataFrame(
        {
            "order_id": [f"o{seed}-{i}" for i in range(n)],
            "symbol": "SIM",
            "side": side.astype(np.int8),
            "quantity": q,
            "start_ns": start,
            "end_ns": start + (t * TRADING_DAY_NS).astype(np.int64),
            "arrival_mid": arrival,
            "avg_price": arrival * (1 + side * cost_obs / 1e4),
            "end_mid": arrival * (1 + side * perm_obs / 1e4),
            "post_mid": arrival * (1 + side * perm_obs / 1e4),
            "adv": adv,
            "daily_vol": vol,
        }
    )
    if with_shares_outstanding:
        df["shares_outstanding"] = theta
    return df


def simulate_bars(
    n: int,
    *,
    seed: int,
    slope: float,
    intercept: float = 0.0,
    regressor: Literal["ofi", "signed_volume"] = "ofi",
    noise_bps: float = 2.0,
    depth_normalised: bool = True,
) -> pd.DataFrame:
    """Bars whose ``return_bps`` is linear in OFI (optionally over depth) or signed volume, plus noise."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(200, 2000, n)
    flow = rng.normal(0, 800, n)
    x = flow / depth if (regressor == "ofi" and depth_normalised) else flow
    ret = intercept + slope * x + rng.normal(0, noise_bps, n)
    return pd.DataFrame(
        {
            "bar_start_ns": np.arange(n, dtype=np.int64) * 10_000_000_000,
            regressor: flow,
            "depth_1_mean": depth,
            "return_bps": ret,
        }
    )


def fractional_gaussian_noise(n: int, hurst: float, *, seed: int) -> NDArray[np.float64]:
    """Exact fractional Gaussian noise by circulant embedding (Davies & Harte 1987).

    Its autocorrelation decays as ``H(2H − 1) ℓ^{2H − 2}``, and so does, asymptotically, that of its
    signs: signs of fGn with Hurst H have the sign-correlation exponent ``γ = 2 − 2H``.
    """
    if not 0.5 <= hurst < 1:
        raise ValueError(f"'hurst' must be in [0.5, 1), got {hurst}")
    rng = np.random.default_rng(seed)
    k = np.arange(n + 1, dtype=float)
    acov = 0.5 * (np.abs(k + 1) ** (2 * hurst) - 2 * k ** (2 * hurst) + np.abs(k - 1) ** (2 * hurst))
    circ = np.concatenate([acov, acov[-2:0:-1]])
    lam = np.clip(np.fft.fft(circ).real, 0.0, None)
    m = circ.size
    z = rng.standard_normal(m) + 1j * rng.standard_normal(m)
    return np.asarray(np.fft.fft(np.sqrt(lam / m) * z).real[:n], dtype=np.float64)


def simulate_trades(
    n: int,
    *,
    seed: int,
    hurst: float = 0.75,
    g0_bps: float = 1.0,
    beta: float = 0.25,
    max_lag: int = 100,
    noise_bps: float = 1.0,
) -> pd.DataFrame:
    """Trades from the propagator model with a known kernel.

    Signs are those of fractional Gaussian noise (sign exponent ``γ = 2 − 2H``); the log-mid before each
    trade is ``p_n = Σ_{n'<n} G(min(n − n', L)) ε_{n'} + Σ noise`` with ``G(ℓ) = g₀ ℓ^{−β}``, the kernel
    held at G(L) beyond L as :class:`impactlab.impact.PropagatorModel` assumes.
    """
    from scipy import signal

    rng = np.random.default_rng(seed + 1)
    e = np.sign(fractional_gaussian_noise(n, hurst, seed=seed))
    e[e == 0] = 1.0
    g = g0_bps * np.arange(1, max_lag + 1, dtype=float) ** (-beta)
    h = np.diff(np.concatenate([[0.0], g]))
    dp = signal.fftconvolve(e, h)[:n] + rng.normal(0, noise_bps, n)
    p = 1e4 * np.log(100.0) + np.concatenate([[0.0], np.cumsum(dp[:-1])])
    return pd.DataFrame({"sign": e, "mid_bps": p, "next_return_bps": dp})


def simulate_impact_events(
    n_events: int,
    *,
    seed: int,
    lambda_bps: float = 0.002,
    kappa_bps: float = 0.004,
    rho_per_s: float = 0.2,
    phi_bps: float = 0.001,
    noise_bps: float = 2.0,
    horizons_s: tuple[float, ...] = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0),
) -> pd.DataFrame:
    """Event-study rows from the Obizhaeva–Wang model: ``move = x (λ + κ e^{−ρτ}) + φ · later + noise``.

    Event sizes are 200–2,000 shares with random sign; the later signed volume is a random walk in τ.
    The noise is shared within an event (a common shock) plus independent parts, as in real data.
    """
    rng = np.random.default_rng(seed)
    x = rng.choice([-1, 1], n_events) * rng.uniform(200, 2000, n_events)
    rows = []
    later: NDArray[np.float64] = np.zeros(n_events)
    shock = rng.normal(0, noise_bps / 2, n_events)
    prev_tau = 0.0
    for tau in horizons_s:
        later = later + rng.normal(0, 300 * np.sqrt(max(tau - prev_tau, 0.0)), n_events)
        prev_tau = tau
        move = x * (lambda_bps + kappa_bps * np.exp(-rho_per_s * tau)) + phi_bps * later
        move += shock + rng.normal(0, noise_bps, n_events)
        rows.append(
            pd.DataFrame(
                {
                    "event": np.arange(n_events),
                    "tau_s": tau,
                    "signed_quantity": x,
                    "later_signed_volume": later,
                    "move_bps": move,
                }
            )
        )
    return pd.concat(rows).sort_values(["event", "tau_s"]).reset_index(drop=True)


def simulate_book_resilience(
    *,
    seed: int,
    depth_shares_per_bps: float = 140.0,
    permanent_fraction: float = 0.6,
    rho_per_s: float = 0.15,
    n_snapshots: int = 3600,
    levels: int = 5,
    n_events: int = 400,
    spread_floor_bps: float = 0.2,
    phi_bps: float = 0.002,
    noise_bps: float = 1.0,
    horizons_s: tuple[float, ...] = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A depth profile and resilience events from a block book of density q with OW recovery.

    Profile: one snapshot a second; gaps between levels are exponential (mean 0.7 bps) and the size of
    each level is ``q × gap × ε`` with ε log-normal of mean 1, so the *average* book is linear with slope q
    while single snapshots are not.  Events: near-quote jumps J exponential (mean 1.5 bps); the spread
    excess is ``J e^{−ρτ} + c`` and the near quote ``J (f + (1 − f) e^{−ρτ}) + φ · later``, each plus noise
    (a per-event shock and independent parts).  Columns as :func:`impactlab.calibration.depth_profile`
    and :func:`impactlab.calibration.resilience_events`.
    """
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(0.7, (n_snapshots, levels - 1))
    eps = rng.lognormal(-0.125, 0.5, (n_snapshots, levels - 1))
    shares = np.cumsum(depth_shares_per_bps * gaps * eps, axis=1)
    dist = np.cumsum(gaps, axis=1)
    snap = np.repeat(np.arange(n_snapshots), levels - 1)
    profile = pd.DataFrame(
        {
            "snapshot": snap,
            "ts_ns": snap.astype(np.int64) * 1_000_000_000,
            "side": 1,
            "level": np.tile(np.arange(1, levels), n_snapshots),
            "distance_bps": dist.ravel(),
            "shares": shares.ravel(),
        }
    )
    jump = rng.exponential(1.5, n_events) + 0.2
    shock = rng.normal(0, noise_bps / 2, n_events)
    later: NDArray[np.float64] = np.zeros(n_events)
    prev = 0.0
    rows = []
    for tau in horizons_s:
        later = later + rng.normal(0, 200 * np.sqrt(max(tau - prev, 0.0)), n_events)
        prev = tau
        decay = np.exp(-rho_per_s * tau)
        rows.append(
            pd.DataFrame(
                {
                    "event": np.arange(n_events),
                    "ts_ns": np.arange(n_events, dtype=np.int64) * 10_000_000_000,
                    "tau_s": tau,
                    "signed_quantity": 100.0,
                    "jump_bps": jump,
                    "near_move_bps": jump * (permanent_fraction + (1 - permanent_fraction) * decay)
                    + phi_bps * later
                    + shock
                    + rng.normal(0, noise_bps, n_events),
                    "spread_excess_bps": jump * decay + spread_floor_bps + shock + rng.normal(0, noise_bps, n_events),
                    "later_signed_volume": later,
                }
            )
        )
    return profile, pd.concat(rows).sort_values(["event", "tau_s"]).reset_index(drop=True)
