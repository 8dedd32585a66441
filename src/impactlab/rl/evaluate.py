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


def _cluster_ci(x: F64, groups: NDArray[np.int64], level: float = 0.95) -> tuple[float, float, int]:
    """CI of the mean of ``x`` robust to correlation inside each group (CR1 cluster-robust variance, t with
    G − 1 degrees of freedom); returns (low, high, number of groups)."""
    labels, g = np.unique(groups, return_inverse=True)
    n_groups = labels.size
    if n_groups < 2:
        return float("nan"), float("nan"), int(n_groups)
    m = float(x.mean())
    sums = np.bincount(g, weights=x - m)
    var = n_groups / (n_groups - 1) * float(np.sum(sums**2)) / x.size**2
    half = float(stats.t.ppf(0.5 + level / 2, n_groups - 1) * np.sqrt(var))
    return m - half, m + half, int(n_groups)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Shortfalls (bps) of one policy over a set of episodes, its inventory paths, and each episode's start.

    Replay episodes that start within one horizon of each other trade through the same market, so their
    shortfalls are correlated and the i.i.d. interval :attr:`ci95_bps` is too narrow;
    :meth:`cluster_ci95_bps` groups episodes by start window and is the honest one there.
    """

    name: str
    seeds: tuple[int, ...]
    shortfall_bps: F64
    inventory: F64
    start_ns: NDArray[np.int64] | None = None

    def clusters(self, window_s: float) -> NDArray[np.int64]:
        """Group label of each episode: its start time in disjoint windows of ``window_s`` seconds."""
        if self.start_ns is None:
            raise PolicyError(f"{self.name!r} has no episode start times to cluster on")
        if not window_s > 0:
            raise PolicyError(f"'window_s' must be > 0, got {window_s!r}")
        return np.asarray((self.start_ns - self.start_ns.min()) // int(window_s * 1e9), dtype=np.int64)

    def cluster_ci95_bps(self, window_s: float) -> tuple[float, float, int]:
        """95% CI of the mean shortfall, cluster-robust over start windows; (low, high, clusters)."""
        return _cluster_ci(self.shortfall_bps, self.clusters(window_s))

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
    sf, inv, start = [], [], []
    for j, s in enumerate(seeds):
        r = policy.episode(env, int(s))
        sf.append(r.shortfall_bps)
        inv.append(r.inventory)
        start.append(r.start_ns)
        if progress is not None:
            progress(j + 1, len(seeds))
    return Evaluation(
        policy.name, tuple(int(s) for s in seeds), np.asarray(sf), np.asarray(inv), np.asarray(start, dtype=np.int64)
    )


def compare(
    evaluations: Sequence[Evaluation], *, baseline: str = "TWAP", cluster_window_s: float | None = None
) -> pd.DataFrame:
    """One row per policy: mean, standard deviation and 95% CI of the shortfall; the improvement on
    ``baseline``'s mean; and the paired difference (policy − baseline, same episodes) with its 95% CI.

    With ``cluster_window_s`` (replay: the horizon), every interval is also given cluster-robust over
    episodes grouped by start window (columns ``*_cluster_*``, and ``clusters``), and
    ``ci_overlaps_baseline`` uses those intervals.
    """
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
        groups = e.clusters(cluster_window_s) if cluster_window_s is not None else None
        if groups is not None:
            clo, chi, n_groups = _cluster_ci(e.shortfall_bps, groups)
            row |= {"clusters": n_groups, "ci95_cluster_low_bps": clo, "ci95_cluster_high_bps": chi}
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
            }
            if groups is not None:
                blo, bhi, _ = _cluster_ci(base.shortfall_bps, groups)
                plo, phi, _ = _cluster_ci(d, groups)
                row |= {"paired_diff_cluster_ci95_low": plo, "paired_diff_cluster_ci95_high": phi}
                lo, hi = row["ci95_cluster_low_bps"], row["ci95_cluster_high_bps"]
            row["ci_overlaps_baseline"] = not (hi < blo or lo > bhi)
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
