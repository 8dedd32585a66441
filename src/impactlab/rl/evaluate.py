"""Judging execution policies: shortfall over held-out episodes with confidence intervals, paired
comparisons on the same episodes, trajectory plots, and the Almgren–Chriss-world sanity check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from impactlab.errors import PolicyError
from impactlab.rl.policies import Policy
from impactlab.schedules import AlmgrenChriss
from impactlab.simulation import LiquidationEnv, LOBExecutionEnv

__all__ = ["Evaluation", "compare", "evaluate", "liquidation_check", "trajectories_figure"]

F64 = NDArray[np.float64]


def _ci(x: F64, level: float = 0.95) -> tuple[float, float]:
    n = x.size
    if n < 2:
        return float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    m = float(x.mean())
    return m - half, m + half


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Shortfalls (bps) of one policy over a set of episodes, and its inventory paths."""

    name: str
    seeds: tuple[int, ...]
    shortfall_bps: F64
    inventory: F64

    @property
    def mean_bps(self) -> float:
        return float(self.shortfall_bps.mean())

    @property
    def std_bps(self) -> float:
        return float(self.shortfall_bps.std(ddof=1)) if self.shortfall_bps.size > 1 else float("nan")

    @property
    def ci95_bps(self) -> tuple[float, float]:
        return _ci(self.shortfall_bps)

    def summary(self) -> dict[str, Any]:
        lo, hi = self.ci95_bps
        return {
            "policy": self.name,
            "episodes": int(self.shortfall_bps.size),
            "mean_bps": self.mean_bps,
            "std_bps": self.std_bps,
            "ci95_low_bps": lo,
            "ci95_high_bps": hi,
            "mean_inventory_path": self.inventory.mean(axis=0).tolist(),
        }


def evaluate(
    policy: Policy,
    env: LOBExecutionEnv,
    seeds: Sequence[int],
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Run ``policy`` on one episode of ``env`` per seed (the same seeds give every policy the same markets)."""
    if not seeds:
        raise PolicyError("need at least one episode seed")
    sf, inv = [], []
    for j, s in enumerate(seeds):
        r = policy.episode(env, int(s))
        sf.append(r.shortfall_bps)
        inv.append(r.inventory)
        if progress is not None:
            progress(j + 1, len(seeds))
    return Evaluation(policy.name, tuple(int(s) for s in seeds), np.asarray(sf), np.asarray(inv))


def compare(evaluations: Sequence[Evaluation], *, baseline: str = "TWAP") -> pd.DataFrame:
    """One row per policy: mean, standard deviation and 95% CI of the shortfall; the improvement on
    ``baseline``'s mean; and the paired difference (policy − baseline, same episodes) with its 95% CI."""
    base = next((e for e in evaluations if e.name == baseline), None)
    rows = []
    for e in evaluations:
        lo, hi = e.ci95_bps
        row: dict[str, Any] = {
            "policy": e.name,
            "episodes": e.shortfall_bps.size,
            "mean_bps": e.mean_bps,
            "std_bps": e.std_bps,
            "ci95_low_bps": lo,
            "ci95_high_bps": hi,
        }
        if base is not None:
            if base.seeds != e.seeds:
                raise PolicyError(f"{e.name!r} and {baseline!r} were evaluated on different episodes")
            d = e.shortfall_bps - base.shortfall_bps
            dlo, dhi = _ci(d)
            blo, bhi = base.ci95_bps
            row |= {
                "improvement_vs_baseline_pct": (base.mean_bps - e.mean_bps) / abs(base.mean_bps) * 100,
                "paired_diff_bps": float(d.mean()),
                "paired_diff_ci95_low": dlo,
                "paired_diff_ci95_high": dhi,
                "ci_overlaps_baseline": not (hi < blo or lo > bhi),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def trajectories_figure(evaluations: Sequence[Evaluation], path: str | Path, *, title: str = "") -> Path:
    """Mean inventory path (with its 10–90% band) of each policy, and the shortfall distributions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(13, 4.5))
    for e in evaluations:
        k = np.arange(e.inventory.shape[1])
        m = e.inventory.mean(axis=0)
        (line,) = ax[0].plot(k, m, marker="o", ms=3, label=e.name)
        lo, hi = np.quantile(e.inventory, [0.1, 0.9], axis=0)
        ax[0].fill_between(k, lo, hi, color=line.get_color(), alpha=0.12)
        ax[1].hist(e.shortfall_bps, bins=40, histtype="step", label=f"{e.name} ({e.mean_bps:.2f} bps)")
    ax[0].set_xlabel("decision")
    ax[0].set_ylabel("inventory left (fraction)")
    ax[0].set_title("inventory paths: mean and 10–90% band")
    ax[1].set_xlabel("implementation shortfall (bps)")
    ax[1].set_title("shortfall per episode")
    ax[0].legend(fontsize=7)
    ax[1].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def liquidation_check(
    act: Callable[[NDArray[np.float32]], Any], env: LiquidationEnv, *, episodes: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Mean cost + λ·variance of a policy in the Almgren–Chriss world against the closed-form optimum.

    ``act(obs)`` gives the action.  The shortfall of each episode is measured in currency; the objective
    ``E + λV`` is estimated from the episodes (with its standard error by the delta method) and compared
    with the optimum of :class:`~impactlab.schedules.AlmgrenChriss` at the same parameters.
    """
    w = env.world
    lam = env.risk_aversion
    ac = AlmgrenChriss(w.quantity, w.horizon, w.n_steps, w.sigma, w.eta, w.gamma, w.epsilon)
    e_opt, v_opt = ac.moments(ac.trajectory(lam))
    costs = np.empty(episodes)
    for j in range(episodes):
        obs, _ = env.reset(seed=seed + j)
        done = False
        while not done:
            obs, _, done, trunc, _ = env.step(act(obs))
            done = done or trunc
        costs[j] = w.quantity * w.price - float(np.dot(env.trades, env.execution_prices))
    m, v = float(costs.mean()), float(costs.var(ddof=1))
    # delta-method standard error of mean + λ·var
    c = costs - m
    influence = c + lam * (c**2 - v)
    se = float(influence.std(ddof=1) / np.sqrt(episodes))
    obj, opt = m + lam * v, e_opt + lam * v_opt
    return {
        "episodes": episodes,
        "risk_aversion": lam,
        "mean_cost": m,
        "variance": v,
        "objective": obj,
        "objective_se": se,
        "optimum": opt,
        "optimum_mean_cost": e_opt,
        "optimum_variance": v_opt,
        "gap_pct": (obj - opt) / abs(opt) * 100,
        "within_3pct": bool(abs(obj - opt) <= 0.03 * abs(opt)),
    }
