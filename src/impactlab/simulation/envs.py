"""Gymnasium environments for execution: ``impactlab/Liquidation-v0`` (the Almgren–Chriss world) and
``impactlab/LOBExecution-v0`` (the queue-reactive simulator or a historical replay).

Both observe ``[time left, inventory left, spread (bps), imbalance, volatility (bps), recent OFI]`` and
pay the negative increment of the implementation shortfall in bps of the order's arrival value, marked to
the mid (so the rewards of an episode add up to minus its shortfall), minus an optional risk penalty on
the inventory still held.  Seeded through ``reset(seed=...)`` and deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from impactlab.errors import SimulationError
from impactlab.simulation.ac_world import AlmgrenChrissWorld
from impactlab.simulation.flow import HawkesParams, QueueReactiveMarket, QueueReactiveParams
from impactlab.simulation.replay import ImpactOverlay, ReplayData, ReplayMarket
from impactlab.simulation.venue import Venue

__all__ = ["OBSERVATION_NAMES", "LOBExecutionConfig", "LOBExecutionEnv", "LiquidationEnv", "lob_observation"]

OBSERVATION_NAMES = ("time_left", "inventory_left", "spread_bps", "imbalance", "volatility_bps", "recent_ofi")
_LOW = np.array([0, 0, 0, -1, 0, -100], dtype=np.float32)
_HIGH = np.array([1, 1, 1e4, 1, 1e4, 100], dtype=np.float32)
NS = 1_000_000_000


def _obs(values: list[float]) -> NDArray[np.float32]:
    return np.clip(np.nan_to_num(np.asarray(values, np.float32)), _LOW, _HIGH)


def lob_observation(
    time_left: float, inventory_left: float, book: Any, mids: Any, recent_ofi: float
) -> NDArray[np.float32]:
    """The observation of :class:`LOBExecutionEnv` (names in ``OBSERVATION_NAMES``), for anyone who plays
    its policies outside it: fractions of time and inventory left, the level-1 ``book``'s spread (bps) and
    imbalance, the volatility (bps) of the log returns of the last 21 decision ``mids``, and the order-flow
    imbalance since the last decision over the order's quantity."""
    m = np.asarray(mids, float)[-21:]
    rets = np.diff(np.log(m)) if m.size > 2 else np.zeros(1)
    vol = float(np.std(rets) * 1e4) if rets.size > 1 else 0.0
    spread = book.spread_bps if np.isfinite(book.spread_bps) else 0.0
    return _obs([time_left, inventory_left, spread, book.imbalance, vol, recent_ofi])


class LiquidationEnv(gym.Env[NDArray[np.float32], NDArray[np.float32]]):
    """Sell ``world.quantity`` in ``world.n_steps`` steps in an :class:`AlmgrenChrissWorld`.

    The action is the fraction of the remaining inventory to sell this step (the last step sells the
    rest).  The reward is ``−(ΔIS + λ σ² τ x_k²) / (X S₀) · 10⁴``: its expected sum is
    ``−(E + λV)/(X S₀)·10⁴``, the Almgren–Chriss objective in bps.

    Parameters
    ----------
    world
        The market (default: the paper's example, X = 10⁶ shares over 5 days).
    risk_aversion
        λ of the penalty (per currency).
    mark_to_market
        True: the shortfall increment marks the inventory left to the new (random) price.  False: to its
        expected value, dropping the zero-mean term ``x_k σ τ^{1/2} ξ_k`` (a control variate for
        training: the expected reward and the optimal policy are the same, the variance is not).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self, world: AlmgrenChrissWorld | None = None, *, risk_aversion: float = 0.0, mark_to_market: bool = True
    ) -> None:
        self.world = world or AlmgrenChrissWorld(1e6, 5.0, 5, 50.0, 0.95, 2.5e-6, 2.5e-7, 0.0625)
        if not (np.isfinite(risk_aversion) and risk_aversion >= 0):
            raise SimulationError(f"'risk_aversion' must be >= 0, got {risk_aversion!r}")
        self.risk_aversion = float(risk_aversion)
        self.mark_to_market = bool(mark_to_market)
        self.observation_space = spaces.Box(_LOW, _HIGH, dtype=np.float32)
        self.action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self._k = 0
        self._x = self.world.quantity
        self._price = self.world.price
        self._last_move = 0.0
        self.trades: list[float] = []
        self.execution_prices: list[float] = []

    def _observe(self) -> NDArray[np.float32]:
        w = self.world
        return _obs(
            [
                1 - self._k / w.n_steps,
                self._x / w.quantity,
                2 * w.epsilon / w.price * 1e4,
                0.0,
                w.sigma * np.sqrt(w.tau) / w.price * 1e4,
                self._last_move / w.price * 1e4,
            ]
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        super().reset(seed=seed)
        self._k = 0
        self._x = self.world.quantity
        self._price = self.world.price
        self._last_move = 0.0
        self.trades = []
        self.execution_prices = []
        return self._observe(), {}

    def step(self, action: NDArray[np.float32]) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        w = self.world
        frac = float(np.clip(np.asarray(action, float).reshape(-1)[0], 0.0, 1.0))
        n = self._x if self._k == w.n_steps - 1 else frac * self._x
        shock = float(self.np_random.standard_normal())
        exec_px, nxt = w.step(self._price, n, shock)
        x_new = self._x - n
        mark = nxt if self.mark_to_market else self._price - w.gamma * n
        d_is = -(n * exec_px + x_new * mark - self._x * self._price)
        penalty = self.risk_aversion * w.sigma**2 * w.tau * x_new**2
        reward = -(d_is + penalty) / (w.quantity * w.price) * 1e4
        self._last_move = nxt - self._price
        self._price, self._x = nxt, x_new
        self._k += 1
        self.trades.append(n)
        self.execution_prices.append(exec_px)
        done = self._k >= w.n_steps
        return self._observe(), float(reward), done, False, {"trade": n, "execution_price": exec_px}


@dataclass(frozen=True)
class LOBExecutionConfig:
    """Settings of :class:`LOBExecutionEnv`.

    Parameters
    ----------
    side
        +1 buy, −1 sell.
    quantity
        Shares to trade.
    horizon_s, step_s
        Episode length and decision interval, seconds.
    limit_offsets_ticks
        Aggression choices after "market": a limit order this many ticks from the trader's own best quote
        (positive: inside the spread).
    size_levels
        Discrete action only: fractions of the remaining inventory to choose from.
    action
        ``"box"`` (size fraction, aggression in [0, 1]²) or ``"discrete"`` (size × aggression).
    risk_penalty_bps
        Per step, ``risk_penalty_bps · (inventory left / quantity)²``.
    seed_offset
        Added to the seed that starts the market (vary it to get other markets for the same episode seeds).
    """

    side: int = 1
    quantity: float = 2_000.0
    horizon_s: float = 600.0
    step_s: float = 10.0
    limit_offsets_ticks: tuple[int, ...] = (1, 0, -1)
    size_levels: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5)
    action: Literal["box", "discrete"] = "box"
    risk_penalty_bps: float = 0.0
    warmup_s: float = 60.0
    seed_offset: int = 0

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise SimulationError(f"'side' must be +1 or -1, got {self.side!r}")
        for f in ("quantity", "horizon_s", "step_s"):
            v = getattr(self, f)
            if not (np.isfinite(v) and v > 0):
                raise SimulationError(f"{f!r} must be > 0, got {v!r}")
        if self.step_s > self.horizon_s:
            raise SimulationError(f"'step_s' ({self.step_s}) must not exceed 'horizon_s' ({self.horizon_s})")
        if self.action not in ("box", "discrete"):
            raise SimulationError(f"'action' must be 'box' or 'discrete', got {self.action!r}")
        if not self.size_levels or any(not 0 <= s <= 1 for s in self.size_levels):
            raise SimulationError(f"'size_levels' must be fractions in [0, 1], got {self.size_levels!r}")
        if self.risk_penalty_bps < 0:
            raise SimulationError(f"'risk_penalty_bps' must be >= 0, got {self.risk_penalty_bps!r}")

    @property
    def n_steps(self) -> int:
        return round(self.horizon_s / self.step_s)


class LOBExecutionEnv(gym.Env[NDArray[np.float32], Any]):
    """Work an order in the queue-reactive simulator (default) or a historical replay.

    Each step cancels the previous child order, sends a new one (size and aggression from the action),
    and lets ``step_s`` seconds pass.  At the horizon whatever is left is sent as a market order.

    Parameters
    ----------
    config
        :class:`LOBExecutionConfig`.
    market
        ``"sim"`` or ``"replay"``.
    params, hawkes
        Flow of the simulator (default: the published CST rates).
    replay_data, overlay
        The day to replay and the impact overlay (``market="replay"``).
    venue_factory
        Advanced: ``f(seed) -> Venue`` replacing both.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 - gymnasium's convention

    def __init__(
        self,
        config: LOBExecutionConfig | None = None,
        *,
        market: Literal["sim", "replay"] = "sim",
        params: QueueReactiveParams | None = None,
        hawkes: HawkesParams | None = None,
        replay_data: ReplayData | None = None,
        overlay: ImpactOverlay | None = None,
        price: float = 100.0,
        venue_factory: Callable[[int, int], Venue] | None = None,
    ) -> None:
        self.config = cfg = config or LOBExecutionConfig()
        if venue_factory is None:
            if market == "sim":
                prm = params or QueueReactiveParams.published()

                def venue_factory(seed: int, start_ns: int) -> Venue:
                    return QueueReactiveMarket(prm, hawkes=hawkes, price=price, seed=seed)

            elif market == "replay":
                if replay_data is None:
                    raise SimulationError("market='replay' needs 'replay_data'")
                data = replay_data
                span = (data.end_ns - data.start_ns) / NS - cfg.horizon_s - cfg.warmup_s - 1
                if span <= 0:
                    raise SimulationError(f"the replay data ({data.source}) is shorter than warmup_s + horizon_s")

                def venue_factory(seed: int, start_ns: int) -> Venue:
                    return ReplayMarket(data, overlay=overlay, start_ns=start_ns, seed=seed)

            else:
                raise SimulationError(f"'market' must be 'sim' or 'replay', got {market!r}")
        self.market = market
        self._factory = venue_factory
        self._replay = replay_data
        self.observation_space = spaces.Box(_LOW, _HIGH, dtype=np.float32)
        n_aggr = 1 + len(cfg.limit_offsets_ticks)
        self._n_aggr = n_aggr
        if cfg.action == "box":
            self.action_space: spaces.Space[Any] = spaces.Box(0.0, 1.0, shape=(2,), dtype=np.float32)
        else:
            self.action_space = spaces.Discrete(len(cfg.size_levels) * n_aggr)
        self.venue: Venue | None = None
        self.fills: list[tuple[int, float, float]] = []
        self._last_mid = float("nan")
        self._mids: list[float] = []
        self._ofi_prev = 0.0
        self._t0 = 0
        self._k = 0
        self._paid = self._filled = self._fees = self._arrival = self._is_prev = 0.0
        self._child: int | None = None

    # -- helpers ------------------------------------------------------------------------------------

    def _decode(self, action: Any) -> tuple[float, int]:
        cfg = self.config
        if cfg.action == "box":
            a = np.clip(np.asarray(action, float).reshape(-1), 0.0, 1.0)
            return float(a[0]), min(int(a[1] * self._n_aggr), self._n_aggr - 1)
        i = int(action)
        return float(cfg.size_levels[i // self._n_aggr]), i % self._n_aggr

    def _mark(self) -> float:
        assert self.venue is not None
        b = self.venue.book(1)
        mid = b.mid
        if not np.isfinite(mid):
            mid = self._last_mid
        self._last_mid = mid
        return mid

    def _shortfall(self, mid: float) -> float:
        """Marked-to-mid shortfall so far, currency."""
        side = self.config.side
        return (
            side * (self._paid - self._arrival * self._filled)
            + self._fees
            + side * (mid - self._arrival) * (self.config.quantity - self._filled)
        )

    def _absorb(self, events: list[Any]) -> None:
        for e in events:
            if e.kind == "fill":
                self._paid += e.price * e.quantity
                self._filled += e.quantity
                self._fees += e.fee
                self.fills.append((e.exchange_ns, e.price, e.quantity))

    def _observe(self) -> NDArray[np.float32]:
        assert self.venue is not None
        cfg = self.config
        ofi = self.venue.order_flow_imbalance
        recent = (ofi - self._ofi_prev) / cfg.quantity
        self._ofi_prev = ofi
        return lob_observation(
            1 - self._k / cfg.n_steps, 1 - self._filled / cfg.quantity, self.venue.book(1), self._mids, recent
        )

    # -- gymnasium API ------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.float32], dict[str, Any]]:
        """Start an episode.

        ``options`` may hold ``start_step`` (begin at decision ``k`` of the episode that ``seed`` draws, its
        market ``k · step_s`` later) and ``inventory`` (fraction of the quantity still to trade, the rest
        counted as done at the arrival mid): what backward induction needs to visit any state.
        """
        super().reset(seed=seed)
        cfg = self.config
        opts = options or {}
        k0 = int(opts.get("start_step", 0))
        inv = float(opts.get("inventory", 1.0))
        if not 0 <= k0 < cfg.n_steps:
            raise SimulationError(f"'start_step' must be in [0, {cfg.n_steps}), got {k0!r}")
        if not 0 <= inv <= 1:
            raise SimulationError(f"'inventory' must be in [0, 1], got {inv!r}")
        venue_seed = int(self.np_random.integers(2**31 - 1)) + cfg.seed_offset
        if self._replay is not None and self.market == "replay":
            d = self._replay
            lo = d.start_ns + int(cfg.warmup_s * NS)
            hi = d.end_ns - int((cfg.horizon_s + 1) * NS)
            start = int(self.np_random.integers(lo, hi))
        else:
            start = int(cfg.warmup_s * NS)
        start_k = start + int(k0 * cfg.step_s * NS)
        self.venue = self._factory(venue_seed, start_k)
        self.venue.run_to(start_k)
        # a one-sided book has no arrival mid: wait (100 ms at a time, a minute at most) for both sides
        for _ in range(600):
            if np.isfinite(self.venue.book(1).mid):
                break
            self.venue.run_to(self.venue.now_ns + NS // 10)
        else:
            raise SimulationError(f"the book stayed one-sided for a minute after {start_k} ns (seed {venue_seed})")
        self._t0 = self.venue.now_ns - int(k0 * cfg.step_s * NS)
        self._k = k0
        self._child = None
        self._last_mid = float("nan")
        self._arrival = self._mark()
        self._filled = round((1 - inv) * cfg.quantity, 9)
        self._paid = self._filled * self._arrival
        self._fees = 0.0
        self._mids = [self._arrival]
        self._ofi_prev = self.venue.order_flow_imbalance
        self._is_prev = 0.0
        self.fills = []
        return self._observe(), {"arrival_mid": self._arrival, "start_ns": self._t0}

    def step(self, action: Any) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        cfg = self.config
        frac, aggr = self._decode(action)
        left = cfg.quantity - self._filled
        return self.trade(float(np.floor(frac * left)), aggr)

    @property
    def steps_taken(self) -> int:
        """Decisions made so far in this episode."""
        return self._k

    @property
    def inventory_left(self) -> float:
        """Shares still to trade."""
        return self.config.quantity - self._filled

    def trade(
        self, shares: float, aggression: int, *, keep_resting: bool = False
    ) -> tuple[NDArray[np.float32], float, bool, bool, dict[str, Any]]:
        """One decision in shares rather than as an action (what rule-based strategies call).

        Parameters
        ----------
        shares
            Size of the new child order (clipped to what is left; the last decision sends all of it).
        aggression
            0: market order; ``i >= 1``: limit order ``limit_offsets_ticks[i − 1]`` ticks from the own best.
        keep_resting
            Leave the previous child resting (submit-and-leave) instead of cancelling it first.
        """
        if self.venue is None:
            raise SimulationError("call reset() before step()")
        if not 0 <= aggression < self._n_aggr:
            raise SimulationError(f"'aggression' must be in [0, {self._n_aggr}), got {aggression!r}")
        cfg = self.config
        v = self.venue
        t = v.now_ns
        last = self._k == cfg.n_steps - 1
        if self._child is not None and self._child in v.open_orders and (last or not keep_resting):
            v.cancel(self._child, local_ns=t)
            self._absorb(v.step(t))
            self._child = None
        left = cfg.quantity - self._filled
        resting = 0.0
        if self._child is not None and self._child in v.open_orders:
            resting = float(v.order(self._child)["remaining"])
        qty = left if last else float(np.clip(np.floor(shares), 0.0, max(left - resting, 0.0)))
        if qty > 0:
            if last or aggression == 0:
                self._child = v.submit(cfg.side, float(qty), order_type="market", local_ns=t)
            else:
                b = v.book(1)
                own_best = b.bid_price[0] if cfg.side == 1 else b.ask_price[0]
                if np.isfinite(own_best):
                    off = cfg.limit_offsets_ticks[aggression - 1]
                    px = round(own_best / v.tick_size + cfg.side * off) * v.tick_size
                    self._child = v.submit(cfg.side, float(qty), order_type="limit", price=round(px, 10), local_ns=t)
        t_next = self._t0 + int((self._k + 1) * cfg.step_s * NS)
        self._absorb(v.step(t_next))
        self._k += 1
        mid = self._mark()
        self._mids.append(mid)
        shortfall = self._shortfall(mid)
        notional = cfg.quantity * self._arrival
        left_frac = 1 - self._filled / cfg.quantity
        reward = -(shortfall - self._is_prev) / notional * 1e4 - cfg.risk_penalty_bps * left_frac**2
        self._is_prev = shortfall
        terminated = self._k >= cfg.n_steps
        info = {"shortfall_bps": shortfall / notional * 1e4, "filled": self._filled}
        if terminated and self._filled < cfg.quantity - 1e-9:
            info["unfilled"] = cfg.quantity - self._filled  # marked at the mid: the book had no more
        return self._observe(), float(reward), terminated, False, info
