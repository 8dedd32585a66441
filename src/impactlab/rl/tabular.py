"""Backward-induction tabular Q-learning for execution, after Nevmyvaka, Feng & Kearns (2006).

State: decisions left, inventory left (``inventory_levels`` buckets), the spread and the book imbalance
(each cut at quantiles of what the training episodes showed).  Action: the limit-price offset for the
whole remaining inventory (or a market order), resubmitted at each decision; the environment sweeps what
is left at the horizon.

Backward induction: for the last decision back to the first, for every training episode, every inventory
level and every action, the market is started afresh at that decision with that inventory (the episode's
market is the same for every action: common random numbers), one decision is played, and

    Q(t, i, s, a) ← mean of [ r + max_a' Q(t + 1, i', s', a') ]

over the samples, where ``r`` is the environment's reward (minus the shortfall increment, bps) and the
next state's value comes from the table already learned for ``t + 1``.

References
----------
Nevmyvaka, Y., Feng, Y. & Kearns, M. (2006). Reinforcement learning for optimized trade execution.
ICML 2006, 673–680.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import PolicyError
from impactlab.rl.policies import Decision, Policy
from impactlab.simulation import LOBExecutionEnv

__all__ = ["TabularConfig", "TabularQAgent"]

F64 = NDArray[np.float64]
_SPREAD, _IMB = 2, 3  # positions in the observation


@dataclass(frozen=True)
class TabularConfig:
    """Settings of :class:`TabularQAgent`.

    Parameters
    ----------
    inventory_levels
        I: inventory is bucketed to ``0, 1/I, …, 1`` of the order.
    spread_buckets, imbalance_buckets
        Number of quantile buckets of each market variable (1 leaves it out of the state).
    episodes
        Training episodes (seeds ``seed, seed + 1, …``), each visited at every decision, inventory
        level and action.
    seed
        First training seed.
    """

    inventory_levels: int = 4
    spread_buckets: int = 2
    imbalance_buckets: int = 3
    episodes: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        for f in ("inventory_levels", "spread_buckets", "imbalance_buckets", "episodes"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1 or v > 10_000:
                raise PolicyError(f"{f!r} must be an integer in [1, 10000], got {v!r}")


class TabularQAgent(Policy):
    """The transparent baseline agent (see the module docstring)."""

    def __init__(self, config: TabularConfig | None = None) -> None:
        self.config = config or TabularConfig()
        self.name = "tabular Q (NFK)"
        self.q_: F64 | None = None
        self.counts_: NDArray[np.int64] | None = None
        self.spread_edges_: F64 = np.zeros(0)
        self.imbalance_edges_: F64 = np.zeros(0)
        self.task_: dict[str, Any] = {}

    # -- state ----------------------------------------------------------------------------------------

    def _inv(self, frac: float) -> int:
        return int(np.clip(round(frac * self.config.inventory_levels), 0, self.config.inventory_levels))

    def _state(self, obs: NDArray[np.float32]) -> tuple[int, int]:
        s = int(np.searchsorted(self.spread_edges_, float(obs[_SPREAD]), side="right"))
        m = int(np.searchsorted(self.imbalance_edges_, float(obs[_IMB]), side="right"))
        return s, m

    # -- training -------------------------------------------------------------------------------------

    def fit(self, env: LOBExecutionEnv, *, progress: Callable[[int, int], None] | None = None) -> TabularQAgent:
        """Learn the table on ``env`` (its market and order) by backward induction."""
        cfg = self.config
        ecfg = env.config
        n_t = ecfg.n_steps
        n_a = 1 + len(ecfg.limit_offsets_ticks)
        seeds = [cfg.seed + e for e in range(cfg.episodes)]
        # market-variable buckets from the states the episodes visit (decision starts, full inventory)
        sp, im = [], []
        for s in seeds:
            for t in range(0, n_t, max(n_t // 4, 1)):
                o, _ = env.reset(seed=s, options={"start_step": t})
                sp.append(float(o[_SPREAD]))
                im.append(float(o[_IMB]))
        self.spread_edges_ = _cuts(np.asarray(sp), cfg.spread_buckets)
        self.imbalance_edges_ = _cuts(np.asarray(im), cfg.imbalance_buckets)
        n_s, n_m = self.spread_edges_.size + 1, self.imbalance_edges_.size + 1
        n_i = cfg.inventory_levels + 1
        q = np.zeros((n_t, n_i, n_s, n_m, n_a))
        cnt = np.zeros((n_t, n_i, n_s, n_m, n_a), dtype=np.int64)
        total = n_t * cfg.inventory_levels * n_a * len(seeds)
        done = 0
        for t in range(n_t - 1, -1, -1):
            last = t == n_t - 1
            for i in range(1, n_i):
                for s in seeds:
                    for a in range(1 if last else n_a):
                        obs, _ = env.reset(seed=s, options={"start_step": t, "inventory": i / cfg.inventory_levels})
                        si, mi = self._state(obs)
                        obs2, r, term, _, _ = env.trade(env.inventory_left, a)
                        target = r
                        if not term:
                            i2 = self._inv(env.inventory_left / ecfg.quantity)
                            s2, m2 = self._state(obs2)
                            target += self._value(q, cnt, t + 1, i2, s2, m2)
                        acts = range(n_a) if last else (a,)  # at the horizon every action is the sweep
                        for aa in acts:
                            cnt[t, i, si, mi, aa] += 1
                            q[t, i, si, mi, aa] += (target - q[t, i, si, mi, aa]) / cnt[t, i, si, mi, aa]
                    done += n_a
                    if progress is not None:
                        progress(done, total)
        self.q_, self.counts_ = q, cnt
        self.task_ = {"config": asdict(ecfg)}
        return self

    @staticmethod
    def _action_values(q: F64, cnt: NDArray[np.int64], t: int, i: int, s: int, m: int) -> F64:
        """Q over actions at a state (−inf where never tried); a market state never seen falls back to the
        inventory level's visit-weighted mean over market states."""
        seen = cnt[t, i, s, m] > 0
        if seen.any():
            return np.where(seen, q[t, i, s, m], -np.inf)
        w = cnt[t, i].sum(axis=(0, 1))
        pooled = (q[t, i] * cnt[t, i]).sum(axis=(0, 1)) / np.maximum(w, 1)
        return np.where(w > 0, pooled, -np.inf)

    @classmethod
    def _value(cls, q: F64, cnt: NDArray[np.int64], t: int, i: int, s: int, m: int) -> float:
        """max_a Q at the next state (0 once nothing is left or nothing was learned there)."""
        if i == 0:
            return 0.0
        v = cls._action_values(q, cnt, t, i, s, m)
        return float(v.max()) if np.isfinite(v).any() else 0.0

    # -- acting ---------------------------------------------------------------------------------------

    def greedy(self, t: int, inventory: float, obs: NDArray[np.float32]) -> int:
        """The action the table prefers (pooled over market states it has not seen)."""
        if self.q_ is None or self.counts_ is None:
            raise PolicyError("the agent is not trained: call fit() or load()")
        i = max(self._inv(inventory), 1)
        s, m = self._state(obs)
        v = self._action_values(self.q_, self.counts_, t, i, s, m)
        return int(np.argmax(v)) if np.isfinite(v).any() else 0

    def act(self, obs: NDArray[np.float32], env: LOBExecutionEnv) -> Decision:
        a = self.greedy(env.steps_taken, env.inventory_left / env.config.quantity, obs)
        return Decision(env.inventory_left, a)

    # -- persistence (JSON + npz, nothing pickled) ---------------------------------------------------------

    def save(self, directory: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        if self.q_ is None or self.counts_ is None:
            raise PolicyError("the agent is not trained: nothing to save")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "weights.npz", q=self.q_, counts=self.counts_)
        meta = {
            "format": "impactlab-policy/1",
            "algo": "tabular",
            "config": asdict(self.config),
            "spread_edges": self.spread_edges_.tolist(),
            "imbalance_edges": self.imbalance_edges_.tolist(),
            "env": self.task_,
            **(extra or {}),
        }
        (d / "policy.json").write_text(json.dumps(meta, indent=2))
        return d

    @classmethod
    def from_saved(cls, meta: dict[str, Any], weights: dict[str, NDArray[Any]]) -> TabularQAgent:
        agent = cls(TabularConfig(**meta["config"]))
        agent.spread_edges_ = np.asarray(meta["spread_edges"], float)
        agent.imbalance_edges_ = np.asarray(meta["imbalance_edges"], float)
        q, c = np.asarray(weights["q"], float), np.asarray(weights["counts"], np.int64)
        want = (agent.spread_edges_.size + 1, agent.imbalance_edges_.size + 1)
        if q.ndim != 5 or q.shape != c.shape or q.shape[2:4] != want or q.shape[1] != agent.config.inventory_levels + 1:
            raise PolicyError(f"the Q table's shape {q.shape} does not match the saved config")
        agent.q_, agent.counts_ = q, c
        agent.task_ = {**meta.get("env", {}), "task": meta.get("task")}
        return agent


def _cuts(x: F64, buckets: int) -> F64:
    """Interior quantile cut points (distinct) for ``buckets`` buckets."""
    x = x[np.isfinite(x)]
    if buckets <= 1 or x.size == 0:
        return np.zeros(0)
    return np.asarray(np.unique(np.quantile(x, np.linspace(0, 1, buckets + 1)[1:-1])), dtype=np.float64)
