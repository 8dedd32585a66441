"""A trained RL overlay as the execution engine's child policy (:class:`~impactlab.execution.ChildPolicy`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.errors import PolicyError
from impactlab.execution.engine import ChildChoice, ChildContext
from impactlab.simulation import LOBExecutionConfig, lob_observation

__all__ = ["OverlayChildPolicy"]


class OverlayChildPolicy:
    """A trained overlay (a :class:`~impactlab.rl.LearnedPolicy` of kind ``"overlay"``) as the execution
    engine's child policy: at each slice it sees what :class:`~impactlab.rl.ScheduleOverlayEnv` showed it in training,
    measured on ``market`` — time and inventory left, spread, imbalance, volatility of the decision mids,
    recent order-flow imbalance, and the deviation from the schedule being worked (whatever schedule the
    engine was handed, e.g. the hedging engine's Almgren–Chriss trajectory) — and its action scales the
    slicer's child and picks market or a limit offset.

    One instance per parent order: it keeps the mids and the order-flow imbalance between decisions.  An
    order on the side the policy was not trained on sees the mirrored book (imbalance and order-flow
    imbalance change sign), so a policy trained on buys works sells.

    Parameters
    ----------
    policy
        The trained overlay (``policy.kind == "overlay"``); its metadata holds the size multipliers and the
        limit offsets it was trained with.
    market
        The venue's market (a :class:`~impactlab.simulation.Venue`): ``book(1)`` and ``order_flow_imbalance``.
    """

    def __init__(self, policy: Any, market: Any) -> None:
        if getattr(policy, "kind", None) != "overlay":
            raise PolicyError(
                f"an overlay child policy needs a policy of kind 'overlay', got {getattr(policy, 'kind', None)!r}"
            )
        o = policy.meta["overlay"]
        self.policy = policy
        self.market = market
        self.size_multipliers = tuple(float(x) for x in o["size_multipliers"])
        default = LOBExecutionConfig().limit_offsets_ticks
        self.limit_offsets_ticks = tuple(int(x) for x in o.get("limit_offsets_ticks", default))
        self._n_aggr = 1 + len(self.limit_offsets_ticks)
        self.trained_side = int(policy.meta.get("task", {}).get("side", 1))
        self._mids: list[float] = []
        self._ofi_prev: float | None = None
        self.actions: list[tuple[float, int]] = []  # (multiplier, aggression) at each decision

    def observe(self, ctx: ChildContext) -> NDArray[np.float32]:
        """The observation at this decision (updates the mids and the order-flow imbalance it tracks)."""
        b = self.market.book(1)
        if np.isfinite(b.mid) or not self._mids:
            self._mids.append(float(b.mid) if np.isfinite(b.mid) else float("nan"))
        else:
            self._mids.append(self._mids[-1])
        ofi = float(self.market.order_flow_imbalance)
        recent = 0.0 if self._ofi_prev is None else (ofi - self._ofi_prev) / ctx.quantity
        self._ofi_prev = ofi
        q = ctx.quantity
        base = lob_observation(1 - ctx.slice_index / ctx.n_slices, 1 - ctx.filled / q, b, self._mids, recent)
        if ctx.side != self.trained_side:  # the mirrored book: the other side's order sees what it was trained on
            base[3], base[5] = -base[3], -base[5]
        dev = float(np.clip((ctx.filled - ctx.target_start) / q, -1, 1))
        return np.append(base, np.float32(dev)).astype(np.float32)

    def choose(self, ctx: ChildContext) -> ChildChoice:
        i = int(np.asarray(self.policy.predict(self.observe(ctx))).reshape(-1)[0])
        if not 0 <= i < len(self.size_multipliers) * self._n_aggr:
            raise PolicyError(
                f"the overlay answered action {i}, outside its {len(self.size_multipliers) * self._n_aggr}"
            )
        mult, aggr = self.size_multipliers[i // self._n_aggr], i % self._n_aggr
        self.actions.append((mult, aggr))
        owed = max(ctx.target_end - ctx.filled, 0.0)
        return ChildChoice(mult * owed, None if aggr == 0 else self.limit_offsets_ticks[aggr - 1])
