"""The ML overlay on a schedule: a policy keeps a baseline schedule (Almgren–Chriss by default) and
adjusts each child order (delay it, scale it, send it as a market or a limit order) from real-time
features.  :class:`ScheduleOverlayEnv` trains it; :class:`impactlab.execution.OverlayChildPolicy` plays a
trained one inside the execution engine (slicer, order manager, risk gate, venue) on any schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from impactlab.errors import PolicyError
from impactlab.simulation import LOBExecutionEnv

__all__ = ["ScheduleOverlayEnv"]

F64 = NDArray[np.float64]


class ScheduleOverlayEnv(gym.Env[NDArray[np.float32], np.int64]):
    """Work an order along a baseline schedule, adjusting each child.

    At decision ``k`` the baseline asks for what is behind its cumulative target ``cumulative[k + 1]``
    (so a delayed or unfilled child is carried into the next). The action picks a size multiplier of
    that child (``0`` delays it) and its aggression (market, or one of the environment's limit offsets).
    The observation is the environment's plus the schedule deviation ``(done − target) / quantity``;
    rewards are the environment's.

    Parameters
    ----------
    env
        The execution environment (its decision grid must match the schedule's).
    cumulative
        Baseline cumulative fraction traded after each decision, ``0 … 1`` (``n_steps + 1`` values).
    size_multipliers
        Choices of the child's size relative to the baseline's (each in ``[0, 3]``).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        env: LOBExecutionEnv,
        cumulative: Sequence[float] | F64,
        *,
        size_multipliers: Sequence[float] = (0.0, 0.5, 1.0, 1.5),
    ) -> None:
        c = np.asarray(cumulative, float)
        if c.shape != (env.config.n_steps + 1,) or abs(c[0]) > 1e-12 or abs(c[-1] - 1) > 1e-9:
            raise PolicyError(f"the baseline needs {env.config.n_steps + 1} cumulative fractions from 0 to 1")
        m = tuple(float(x) for x in size_multipliers)
        if not m or any(not 0 <= x <= 3 for x in m):
            raise PolicyError(f"'size_multipliers' must be in [0, 3], got {size_multipliers!r}")
        self.env = env
        self.cumulative = c
        self.size_multipliers = m
        self._n_aggr = 1 + len(env.config.limit_offsets_ticks)
        self._n_actions = len(m) * self._n_aggr
        self.action_space = spaces.Discrete(self._n_actions)
        box = env.observation_space
        assert isinstance(box, spaces.Box)
        lo = np.append(box.low, -1.0).astype(np.float32)
        hi = np.append(box.high, 1.0).astype(np.float32)
        self.observation_space = spaces.Box(lo, hi, dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """What a saved policy needs to act again (the ``overlay`` entry of its metadata): the baseline, the
        size multipliers and the limit offsets behind the aggression choices."""
        return {
            "cumulative": self.cumulative.tolist(),
            "size_multipliers": list(self.size_multipliers),
            "limit_offsets_ticks": list(self.env.config.limit_offsets_ticks),
        }

    def _obs(self, base: NDArray[np.float32]) -> NDArray[np.float32]:
        q = self.env.config.quantity
        done = q - self.env.inventory_left
        dev = (done - self.cumulative[self.env.steps_taken] * q) / q
        return np.append(base, np.float32(np.clip(dev, -1, 1))).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), info

    def decode(self, action: Any) -> tuple[float, int]:
        i = int(action)
        if not 0 <= i < self._n_actions:
            raise PolicyError(f"action {i} outside [0, {self._n_actions})")
        return self.size_multipliers[i // self._n_aggr], i % self._n_aggr

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        mult, aggr = self.decode(action)
        e = self.env
        q = e.config.quantity
        owed = self.cumulative[e.steps_taken + 1] * q - (q - e.inventory_left)
        obs, r, term, trunc, info = e.trade(mult * max(owed, 0.0), aggr)
        return self._obs(obs), r, term, trunc, info
