"""Execution policies on :class:`~impactlab.simulation.LOBExecutionEnv`: the classical schedules (TWAP, VWAP,
Almgren–Chriss, submit-and-leave) and the episode loop every policy, learned or not, is judged by."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import PolicyError
from impactlab.simulation import LOBExecutionEnv

__all__ = [
    "AlmgrenChrissPolicy",
    "Decision",
    "EpisodeResult",
    "Policy",
    "SchedulePolicy",
    "SubmitAndLeave",
    "TWAPPolicy",
    "VWAPPolicy",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Decision:
    """One child order in shares: ``aggression`` 0 is a market order, ``i >= 1`` a limit order at the
    environment's ``limit_offsets_ticks[i − 1]``; ``keep_resting`` leaves the previous child in the book."""

    shares: float
    aggression: int = 0
    keep_resting: bool = False


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode cost: shortfall (bps of the arrival value), the sum of rewards, and the inventory
    left (fraction) at the start and after each decision."""

    shortfall_bps: float
    reward_sum: float
    inventory: F64
    start_ns: int


class Policy(ABC):
    """A way of working the order, judged by :meth:`episode`."""

    name: str = "policy"

    def begin(self, env: LOBExecutionEnv, info: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called after ``reset`` with its info (arrival mid, start time)."""

    @abstractmethod
    def act(self, obs: NDArray[np.float32], env: LOBExecutionEnv) -> Decision | Any:
        """A :class:`Decision`, or an action of ``env.action_space``."""

    def episode(self, env: LOBExecutionEnv, seed: int) -> EpisodeResult:
        """Run one episode of ``env`` from ``reset(seed=seed)`` to the horizon."""
        obs, info = env.reset(seed=seed)
        self.begin(env, info)
        q = env.config.quantity
        inv = [env.inventory_left / q]
        total = 0.0
        done = False
        step_info: dict[str, Any] = {}
        while not done:
            a = self.act(obs, env)
            if isinstance(a, Decision):
                obs, r, done, trunc, step_info = env.trade(a.shares, a.aggression, keep_resting=a.keep_resting)
            else:
                obs, r, done, trunc, step_info = env.step(a)
            done = done or trunc
            total += r
            inv.append(env.inventory_left / q)
        return EpisodeResult(float(step_info["shortfall_bps"]), total, np.asarray(inv), int(info["start_ns"]))


class SchedulePolicy(Policy):
    """Follow a schedule: after decision ``k`` the cumulative share traded should be ``cumulative[k + 1]``.

    Each child is what is behind that target, sent as ``aggression`` (default market); what a limit
    child left unfilled is added to the next one, and the environment sweeps the rest at the horizon.
    """

    def __init__(self, name: str, cumulative: Sequence[float] | F64 | None = None, *, aggression: int = 0) -> None:
        self.name = name
        self.aggression = int(aggression)
        self._cum = None if cumulative is None else self._check(np.asarray(cumulative, float))

    @staticmethod
    def _check(c: F64) -> F64:
        if c.ndim != 1 or c.size < 2 or abs(c[0]) > 1e-12 or abs(c[-1] - 1) > 1e-9 or np.any(np.diff(c) < -1e-12):
            raise PolicyError("a schedule's cumulative fractions must rise from 0 to 1")
        return c

    def cumulative(self, env: LOBExecutionEnv, info: dict[str, Any]) -> F64:
        if self._cum is None:
            raise PolicyError(f"{self.name}: no schedule")
        return self._cum

    def begin(self, env: LOBExecutionEnv, info: dict[str, Any]) -> None:
        c = self.cumulative(env, info)
        if c.size != env.config.n_steps + 1:
            raise PolicyError(f"{self.name}: schedule of {c.size - 1} steps for an episode of {env.config.n_steps}")
        self._cur = c

    def act(self, obs: NDArray[np.float32], env: LOBExecutionEnv) -> Decision:
        q = env.config.quantity
        k = env.steps_taken
        done = q - env.inventory_left
        return Decision(max(self._cur[k + 1] * q - done, 0.0), self.aggression)


class TWAPPolicy(SchedulePolicy):
    """Equal slices, one per decision."""

    def __init__(self, *, aggression: int = 0) -> None:
        super().__init__("TWAP", aggression=aggression)

    def cumulative(self, env: LOBExecutionEnv, info: dict[str, Any]) -> F64:
        return np.linspace(0.0, 1.0, env.config.n_steps + 1, dtype=np.float64)


class VWAPPolicy(SchedulePolicy):
    """Slices in proportion to the expected market volume over each interval.

    ``clock(start_ns)`` gives seconds since the open at the episode's start (a replay's time of day).
    """

    def __init__(self, curve: Any, clock: Any, *, aggression: int = 0) -> None:
        super().__init__("VWAP", aggression=aggression)
        self.curve = curve
        self.clock = clock

    def cumulative(self, env: LOBExecutionEnv, info: dict[str, Any]) -> F64:
        cfg = env.config
        t0 = float(self.clock(int(info["start_ns"])))
        v = self.curve.cumulative(t0 + np.linspace(0.0, cfg.horizon_s, cfg.n_steps + 1))
        span = float(v[-1] - v[0])
        if span <= 0:
            return np.linspace(0.0, 1.0, cfg.n_steps + 1, dtype=np.float64)
        return np.asarray((v - v[0]) / span, dtype=np.float64)


class AlmgrenChrissPolicy(SchedulePolicy):
    """The Almgren–Chriss optimal holdings of ``problem`` at ``risk_aversion`` (per currency)."""

    def __init__(self, problem: Any, risk_aversion: float, *, aggression: int = 0) -> None:
        hold = np.asarray(problem.trajectory(risk_aversion), float)
        super().__init__("Almgren–Chriss", 1.0 - hold / hold[0], aggression=aggression)
        self.risk_aversion = float(risk_aversion)


class SubmitAndLeave(Policy):
    """Nevmyvaka–Feng–Kearns' benchmark: post the whole order once as a limit order at ``aggression`` and
    leave it; what is unfilled at the last decision is sent as a market order."""

    def __init__(self, aggression: int = 1) -> None:
        if aggression < 1:
            raise PolicyError(f"submit-and-leave needs a limit aggression (>= 1), got {aggression!r}")
        self.aggression = int(aggression)
        self.name = f"submit-and-leave ({aggression})"

    def act(self, obs: NDArray[np.float32], env: LOBExecutionEnv) -> Decision:
        if env.steps_taken == 0:
            return Decision(env.inventory_left, self.aggression)
        return Decision(0.0, self.aggression, keep_resting=True)

    @classmethod
    def optimised(cls, env: LOBExecutionEnv, seeds: Sequence[int]) -> SubmitAndLeave:
        """The limit offset with the lowest mean shortfall over ``seeds`` (the training episodes)."""
        n_aggr = 1 + len(env.config.limit_offsets_ticks)
        best = min(
            range(1, n_aggr),
            key=lambda a: float(np.mean([cls(a).episode(env, s).shortfall_bps for s in seeds])),
        )
        out = cls(best)
        out.name = f"submit-and-leave (offset {env.config.limit_offsets_ticks[best - 1]:+d} ticks, optimised)"
        return out
