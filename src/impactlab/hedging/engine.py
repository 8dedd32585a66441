"""The hedging engine: a risk monitor on the options book, a circuit breaker on the market, a hedge decision
priced by the impact model, execution through the slicer/router/venue, the journal, and recalibration.

The loop, for every market-data update::

    message ─► validate ─► breaker (vol spike, spread blow-out, data gap) ─► greeks ─► |delta| past threshold?
        ─► cost profile over horizons (model version v) ─► min E + λV ─► journal the hedge ─► execute
        ─► fills in the store ─► TCA ─► realised vs predicted ─► recalibrate (schedule or drift) ─► version v+1

Nothing the loop is given can crash it: a bad message, a NaN greek, an expired option or an absurd hedge
size is logged, counted in :meth:`HedgingEngine.status` and skipped, and no order is sent.  Hedge ids are
derived from the market-data message that triggered them, so re-reading messages after a restart finds
the hedge already journalled and resumes it instead of deciding it twice.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from impactlab.data import Store
from impactlab.data.schemas import HEDGE_EVENTS, HEDGES
from impactlab.errors import HedgingError
from impactlab.hedging.greeks import BookGreeks, OptionPosition, Portfolio, book_greeks
from impactlab.hedging.model import CostProfile, cost_profile, gamma_risk_usd2, hedge_schedule
from impactlab.schedules import Schedule

__all__ = [
    "CircuitBreaker",
    "HedgeDecision",
    "HedgeOutcome",
    "HedgingConfig",
    "HedgingEngine",
    "MarketUpdate",
    "parse_market",
    "parse_position",
]

log = logging.getLogger(__name__)
NS = 1_000_000_000
Policy = Literal["impact", "immediate", "twap"]
Action = Literal["slow", "pause", "approve"]


@dataclass(frozen=True)
class HedgingConfig:
    """Everything the hedging engine is told; frozen, and :meth:`from_dict` refuses unknown keys.

    Parameters
    ----------
    underlying
        The symbol hedged.
    threshold_shares, threshold_notional
        Hedge when |net delta| passes either (shares; currency).  ``None`` turns one off.
    policy
        ``impact``: the horizon (and Almgren–Chriss trajectory) minimising expected cost + λ · risk of the
        unhedged exposure; ``immediate``: all at once at market; ``twap``: evenly over ``twap_horizon_s``.
    risk_aversion
        λ per currency unit (the cost of variance, currency⁻¹).
    horizons_s
        Candidate horizons for the ``impact`` policy.
    step_s
        Schedule interval (one child decision per interval).
    max_hedge_shares
        A hedge larger than this is refused as absurd (never sent; the execution risk limits are a second
        fence).
    max_stale_s
        No hedge starts on a price older than this.
    vol_spike, spread_blowout, max_gap_s
        Extreme regimes: realised volatility above ``vol_spike`` × the model's σ, spread above
        ``spread_blowout`` × its baseline, or no data for ``max_gap_s``.
    on_extreme
        What an extreme regime does: ``slow`` (horizons × ``slow_factor``, no immediate hedge), ``pause``
        (no new hedges) or ``approve`` (hedges are held until :meth:`HedgingEngine.approve`).
    calm_s
        Seconds of normal data before an extreme regime is declared over.
    recalibrate_every
        Recalibrate after this many completed hedges since the last version (0: never on schedule).
    drift_bound, drift_window
        Recalibrate when |Σ(realised − predicted)| / Σ predicted over the last ``drift_window`` hedges
        passes ``drift_bound``.
    approve_above
        A recalibration that moves the model's cost of the reference order by more than this fraction is
        held for a person's approval (``impactlab models approve``); the live version keeps pricing.
    """

    underlying: str
    threshold_shares: float | None = 1_000.0
    threshold_notional: float | None = None
    policy: Policy = "impact"
    risk_aversion: float = 1e-6
    horizons_s: tuple[float, ...] = (30.0, 60.0, 120.0, 300.0, 600.0)
    immediate_s: float = 1.0
    twap_horizon_s: float = 300.0
    step_s: float = 30.0
    lot: float = 1.0
    max_hedge_shares: float = 50_000.0
    max_stale_s: float = 5.0
    vol_window_s: float = 120.0
    vol_spike: float = 4.0
    spread_blowout: float = 5.0
    max_gap_s: float = 30.0
    on_extreme: Action = "pause"
    slow_factor: float = 3.0
    calm_s: float = 60.0
    recalibrate_every: int = 5
    drift_bound: float = 0.5
    drift_window: int = 5
    rate: float = 0.0
    approve_above: float = 0.5

    def __post_init__(self) -> None:
        if self.policy not in ("impact", "immediate", "twap"):
            raise HedgingError(f"'policy' must be impact, immediate or twap, got {self.policy!r}")
        if self.on_extreme not in ("slow", "pause", "approve"):
            raise HedgingError(f"'on_extreme' must be slow, pause or approve, got {self.on_extreme!r}")
        if self.threshold_shares is None and self.threshold_notional is None:
            raise HedgingError("give 'threshold_shares' or 'threshold_notional'")
        for name in ("risk_aversion", "immediate_s", "twap_horizon_s", "step_s", "lot", "max_hedge_shares",
                     "max_stale_s", "vol_window_s", "vol_spike", "spread_blowout", "max_gap_s", "slow_factor",
                     "calm_s", "drift_bound", "approve_above"):  # fmt: skip
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise HedgingError(f"{name!r} must be finite and >= 0, got {v!r}")
        if not (isinstance(self.recalibrate_every, int) and self.recalibrate_every >= 0):
            raise HedgingError(f"'recalibrate_every' must be an integer >= 0, got {self.recalibrate_every!r}")
        if not (isinstance(self.drift_window, int) and self.drift_window >= 2):
            raise HedgingError(f"'drift_window' must be an integer >= 2, got {self.drift_window!r}")
        if not self.horizons_s or any(not (math.isfinite(h) and h > 0) for h in self.horizons_s):
            raise HedgingError(f"'horizons_s' must be positive, got {self.horizons_s!r}")
        for name in ("threshold_shares", "threshold_notional"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v > 0):
                raise HedgingError(f"{name!r} must be > 0 or None, got {v!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HedgingConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HedgingError(f"unknown hedging config keys {unknown}; known: {sorted(known)}")
        v = dict(values)
        if "horizons_s" in v:
            v["horizons_s"] = tuple(float(h) for h in v["horizons_s"])
        return cls(**v)


# -- messages ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketUpdate:
    """One market-data update: best bid and ask at ``ts_ns``; ``offset`` is its place in the stream."""

    ts_ns: int
    bid: float
    ask: float
    offset: int = -1

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)

    @property
    def spread(self) -> float:
        return self.ask - self.bid


def _number(msg: Mapping[str, Any], key: str, where: str) -> float:
    if key not in msg:
        raise HedgingError(f"{where}: field {key!r} missing")
    v = msg[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise HedgingError(f"{where}: field {key!r} must be a finite number, got {v!r}")
    return float(v)


def parse_market(msg: Any) -> MarketUpdate:
    """A :class:`MarketUpdate` from a mapping ``{ts_ns, bid, ask[, offset]}``; raises :class:`HedgingError`
    naming the field and value on anything else (a crossed or non-positive quote included)."""
    if not isinstance(msg, Mapping):
        raise HedgingError(f"market-data message must be a mapping, got {type(msg).__name__}")
    where = f"market-data message at offset {msg.get('offset', '?')}"
    ts = msg.get("ts_ns")
    if isinstance(ts, bool) or not isinstance(ts, int) or ts <= 0:
        raise HedgingError(f"{where}: field 'ts_ns' must be a positive integer, got {ts!r}")
    bid, ask = _number(msg, "bid", where), _number(msg, "ask", where)
    if not (0 < bid < ask):
        raise HedgingError(f"{where}: needs 0 < bid < ask, got bid {bid!r}, ask {ask!r}")
    return MarketUpdate(ts, bid, ask, int(msg.get("offset", -1)))


def parse_position(msg: Any) -> OptionPosition:
    """An :class:`OptionPosition` from a mapping (the fields of the dataclass); raises :class:`HedgingError`."""
    if not isinstance(msg, Mapping):
        raise HedgingError(f"position message must be a mapping, got {type(msg).__name__}")
    known = {f.name for f in dataclasses.fields(OptionPosition)}
    unknown = sorted(set(msg) - known)
    if unknown:
        raise HedgingError(f"position message: unknown fields {unknown}")
    where = f"position {msg.get('option_id', '?')!r}"
    for key in ("option_id", "underlying", "kind"):
        if not isinstance(msg.get(key), str) or not msg.get(key):
            raise HedgingError(f"{where}: field {key!r} must be a non-empty string, got {msg.get(key)!r}")
    exp = msg.get("expiry_ns")
    if isinstance(exp, bool) or not isinstance(exp, int):
        raise HedgingError(f"{where}: field 'expiry_ns' must be an integer, got {exp!r}")
    vals = {k: _number(msg, k, where) for k in ("strike", "contracts", "implied_vol")}
    mult = _number(msg, "multiplier", where) if "multiplier" in msg else 100.0
    return OptionPosition(msg["option_id"], msg["underlying"], msg["kind"], vals["strike"], exp, vals["contracts"],
                          vals["implied_vol"], mult)  # fmt: skip


# -- circuit breaker -----------------------------------------------------------------------------------


class CircuitBreaker:
    """Detects extreme regimes from the stream: a volatility spike (realised σ over a window against the
    model's), a spread blow-out (against the spread's running median at calm times) or a data gap.

    ``regime`` is ``normal`` or the reason; it returns to normal after ``calm_s`` seconds without a trigger.
    """

    def __init__(self, config: HedgingConfig, sigma_per_sqrt_s: float, baseline_spread: float) -> None:
        self.config = config
        self.sigma = float(sigma_per_sqrt_s)
        self.baseline_spread = float(baseline_spread)
        self._moves: deque[tuple[int, float]] = deque()  # (ts, squared mid change)
        self._last: MarketUpdate | None = None
        self.regime = "normal"
        self._tripped_ns = 0
        self.trips: Counter[str] = Counter()

    def realised_sigma(self) -> float:
        """σ per √s over the window (NaN until the window has 10 moves)."""
        if len(self._moves) < 10:
            return float("nan")
        span = (self._moves[-1][0] - self._moves[0][0]) / NS
        return math.sqrt(sum(m for _, m in self._moves) / span) if span > 0 else float("nan")

    def update(self, u: MarketUpdate) -> str:
        c = self.config
        reason = ""
        last = self._last
        if last is not None:
            dt_s = (u.ts_ns - last.ts_ns) / NS
            if dt_s > c.max_gap_s:
                reason = "data gap"
                self._moves.clear()
            else:
                self._moves.append((u.ts_ns, (u.mid - last.mid) ** 2))
                while self._moves and self._moves[0][0] < u.ts_ns - c.vol_window_s * NS:
                    self._moves.popleft()
        self._last = u
        s = self.realised_sigma()
        if not reason and math.isfinite(s) and s > c.vol_spike * self.sigma:
            reason = "volatility spike"
        if not reason and u.spread > c.spread_blowout * self.baseline_spread:
            reason = "spread blow-out"
        if reason:
            if self.regime != reason:
                self.trips[reason] += 1
                log.warning("circuit breaker: %s at %d", reason, u.ts_ns)
            self.regime, self._tripped_ns = reason, u.ts_ns
        elif self.regime != "normal" and u.ts_ns - self._tripped_ns >= c.calm_s * NS:
            self.regime = "normal"
        return self.regime


# -- decisions and outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HedgeDecision:
    """A hedge the engine decided: shares, side, schedule, and the model version and profile behind it."""

    hedge_id: str
    ts_ns: int
    delta_shares: float
    side: int
    quantity: float
    policy: str
    horizon_s: float
    step_s: float
    schedule: Schedule
    model_version: str
    expected_cost_usd: float
    risk_usd2: float
    arrival_mid: float
    regime: str
    profile: CostProfile | None = None
    forecast: Mapping[str, Any] = field(default_factory=dict)
    """What the model forecast (bps; :meth:`~impactlab.calibration.InstrumentModel.forecast`), recorded with
    the hedge's TCA so that accuracy and the next refit read it."""

    @property
    def parent_order_id(self) -> str:
        return f"{self.hedge_id}-P"


@dataclass(frozen=True)
class HedgeOutcome:
    """What executing a hedge did: shares filled, their cost against the arrival mid (fees in), the
    temporary-impact part of it (fills against the mid when each child was sent, TCA's ``temporary``), and
    the time execution finished.  Unfilled shares are not a cost here: they stay in the book's delta."""

    hedge_id: str
    filled: float
    realised_cost_usd: float
    temporary_cost_usd: float
    end_ns: int


Executor = Callable[[HedgeDecision, bool], HedgeOutcome]
"""Executes a hedge's parent order to its end: ``executor(decision, resume)``; ``resume`` after a restart."""


@dataclass
class _Counters:
    bad_market: Counter[str] = field(default_factory=Counter)
    bad_position: Counter[str] = field(default_factory=Counter)
    refused_hedges: Counter[str] = field(default_factory=Counter)
    expired_options: set[str] = field(default_factory=set)


class HedgingEngine:
    """The closed loop on one underlying.

    Parameters
    ----------
    config
        :class:`HedgingConfig`.
    portfolio
        The options book and the shares held before any hedge of this engine (its fills are added).
    store
        Journal, fills, model versions.
    model
        The instrument's calibrated cost model (:class:`~impactlab.calibration.InstrumentModel`); the store's
        live version of it is resumed where there is one, else it is recorded as the first.
    executor
        Runs a hedge's parent order (slicer, router, venue): see :data:`Executor`.
    baseline_spread
        The spread the breaker compares against (currency); default the model's mean spread.
    """

    def __init__(
        self,
        config: HedgingConfig,
        portfolio: Portfolio,
        store: Store,
        *,
        model: Any,
        executor: Executor | None = None,
        baseline_spread: float | None = None,
    ) -> None:
        if portfolio.underlying != config.underlying:
            raise HedgingError(f"portfolio is on {portfolio.underlying!r}, config on {config.underlying!r}")
        self.config = config
        self.portfolio = portfolio
        self.store = store
        from impactlab.calibration.costmodel import ModelVersions

        if model.symbol.upper() != config.underlying.upper():
            raise HedgingError(f"the cost model is of {model.symbol!r}, the config hedges {config.underlying!r}")
        self.registry = ModelVersions(store, approve_above=config.approve_above,
                                      clock=self._now_ns)  # fmt: skip
        self.model = self.registry.resume(model)
        self.executor = executor
        mk = self.model.market(1)
        spread = 2 * self.model.fit.half_spread_bps * mk.price / 1e4
        self.breaker = CircuitBreaker(config, self.model.sigma(mk), baseline_spread or spread)
        self.counts = _Counters()
        self.base_shares = float(portfolio.shares)
        self.last: MarketUpdate | None = None
        self.greeks: BookGreeks | None = None
        self.held: dict[str, HedgeDecision] = {}
        self.hedges_done = 0
        self.latency_ns: deque[int] = deque(maxlen=10_000)
        self.portfolio.shares = self.base_shares + self._hedged_shares()

    def _now_ns(self) -> int:
        last = getattr(self, "last", None)
        return int(last.ts_ns) if last is not None else 0

    # -- inputs ------------------------------------------------------------------------------------------

    def on_position(self, msg: Any) -> bool:
        """Apply a position message; a bad one is counted and refused (False)."""
        try:
            self.portfolio.upsert(parse_position(msg))
            return True
        except (HedgingError, TypeError, ValueError) as exc:
            self.counts.bad_position[_reason(exc)] += 1
            log.warning("refused position message: %s", exc)
            return False

    def on_market(self, msg: Any, *, decide: bool = True) -> HedgeDecision | None:
        """Process one market-data message; returns the hedge it decided (not yet executed), if any.
        ``decide=False`` updates the monitor and the breaker only (while a hedge is working)."""
        t0 = time.perf_counter_ns()
        try:
            u = parse_market(msg)
        except HedgingError as exc:
            self.counts.bad_market[_reason(exc)] += 1
            log.warning("refused market-data message: %s", exc)
            return None
        if self.last is not None and u.ts_ns <= self.last.ts_ns:
            self.counts.bad_market["out of order"] += 1
            return None
        self.breaker.update(u)
        self.last = u
        if not decide:
            return None
        try:
            decision = self._decide(u)
        except Exception as exc:  # one bad update never stops the loop: counted, logged, nothing sent
            self.counts.refused_hedges[f"decision failed: {type(exc).__name__}"] += 1
            log.exception("no hedge decision at %d", u.ts_ns)
            return None
        self.latency_ns.append(time.perf_counter_ns() - t0)
        return decision

    # -- the decision ----------------------------------------------------------------------------------

    def _decide(self, u: MarketUpdate) -> HedgeDecision | None:
        c = self.config
        try:
            g = book_greeks(self.portfolio, u.mid, u.ts_ns, rate=c.rate)
        except HedgingError as exc:
            self.counts.refused_hedges["greeks not finite"] += 1
            log.warning("no hedge: %s", exc)
            return None
        for oid in g.expired:
            if oid not in self.counts.expired_options:
                self.counts.expired_options.add(oid)
                log.warning("option %s is past expiry: left out of the greeks", oid)
        self.greeks = g
        d = g.delta_shares
        breach = (c.threshold_shares is not None and abs(d) > c.threshold_shares) or (
            c.threshold_notional is not None and abs(d) * u.mid > c.threshold_notional
        )
        if not breach:
            return None
        qty = math.floor(abs(d) / c.lot + 1e-9) * c.lot
        if qty <= 0:
            return None
        if qty > c.max_hedge_shares:
            self.counts.refused_hedges["hedge larger than max_hedge_shares"] += 1
            log.error("refused an absurd hedge of %.0f shares (limit %.0f)", qty, c.max_hedge_shares)
            return None
        regime = self.breaker.regime
        if regime != "normal" and c.on_extreme == "pause":
            self.counts.refused_hedges[f"paused: {regime}"] += 1
            return None
        side = -1 if d > 0 else 1
        slow = regime != "normal" and c.on_extreme == "slow"
        mk = self.model.market_at(side, mid=u.mid, spread=u.spread, ts_ns=u.ts_ns)
        policy, horizon, step, profile = self._choose(qty, side, g.gamma_shares_per_unit, mk, slow=slow)
        sch, cost, e, v = hedge_schedule(self.model, policy, qty, horizon, step, side, c.risk_aversion, mk)
        v += gamma_risk_usd2(self.model.sigma(mk), g.gamma_shares_per_unit, horizon)
        return HedgeDecision(
            f"H-{c.underlying}-{u.ts_ns}", u.ts_ns, d, side, qty, policy, horizon, step, sch, self.model.version,
            float(e), float(v), u.mid, regime, profile, self.model.forecast(sch, mk, cost=cost),
        )  # fmt: skip

    def _choose(
        self, qty: float, side: int, gamma: float, market: Any, *, slow: bool
    ) -> tuple[str, float, float, CostProfile | None]:
        c = self.config
        if c.policy == "immediate" and not slow:
            return "immediate", c.immediate_s, c.immediate_s, None
        if c.policy == "twap" or (c.policy == "immediate" and slow):
            h = c.twap_horizon_s * (c.slow_factor if slow else 1.0)
            return "twap", h, min(c.step_s, h), None
        horizons = tuple(h * c.slow_factor for h in c.horizons_s) if slow else c.horizons_s
        profile = cost_profile(self.model, qty, side, horizons, c.step_s, c.risk_aversion, market=market,
                               gamma_shares_per_unit=gamma)  # fmt: skip
        h = horizons[profile.best()]
        return "almgren-chriss", h, min(c.step_s, h), profile

    # -- execution and the journal -----------------------------------------------------------------------

    def _event(self, hedge_id: str, kind: str, ts_ns: int, *, filled: float = 0.0, cost: float | None = None,
               temporary: float | None = None, detail: str = "") -> None:  # fmt: skip
        row = {"event_id": f"{hedge_id}:{kind}", "hedge_id": hedge_id, "ts_ns": int(ts_ns), "kind": kind,
               "filled": float(filled), "realised_cost_usd": _finite_or_none(cost),
               "temporary_cost_usd": _finite_or_none(temporary), "detail": detail}  # fmt: skip
        self.store.write("hedge_events", pa.Table.from_pylist([row], schema=HEDGE_EVENTS.remove_metadata()))

    def journal(self, d: HedgeDecision) -> bool:
        """Write the decision (before anything is sent); False if this hedge id is already journalled."""
        row = {
            "hedge_id": d.hedge_id, "ts_ns": d.ts_ns, "underlying": self.config.underlying,
            "delta_shares": d.delta_shares, "side": d.side, "quantity": d.quantity, "policy": d.policy,
            "horizon_s": d.horizon_s, "step_s": d.step_s, "model_version": d.model_version,
            "expected_cost_usd": d.expected_cost_usd, "risk_usd2": d.risk_usd2, "arrival_mid": d.arrival_mid,
            "regime": d.regime, "parent_order_id": d.parent_order_id,
        }  # fmt: skip
        added = self.store.write("hedges", pa.Table.from_pylist([row], schema=HEDGES.remove_metadata()))
        if added:
            self._event(d.hedge_id, "decided", d.ts_ns, detail=f"model {d.model_version}")
        return bool(added)

    def handle(self, d: HedgeDecision) -> HedgeOutcome | None:
        """Journal ``d`` and execute it (or hold it for approval); an already journalled hedge is resumed."""
        fresh = self.journal(d)
        state = self.hedge_state(d.hedge_id)
        if state in ("done", "failed"):
            return None
        if fresh and d.regime != "normal" and self.config.on_extreme == "approve":
            self._event(d.hedge_id, "held", d.ts_ns, detail=f"manual approval needed: {d.regime}")
            self.held[d.hedge_id] = d
            return None
        if state == "held":
            self.held[d.hedge_id] = d
            return None
        return self._execute(d, resume=not fresh)

    def approve(self, hedge_id: str) -> HedgeOutcome | None:
        """Release a held hedge to execution."""
        d = self.held.pop(hedge_id, None)
        if d is None:
            raise HedgingError(f"no hedge {hedge_id!r} awaiting approval")
        self._event(hedge_id, "approved", self.last.ts_ns if self.last else d.ts_ns)
        return self._execute(d, resume=False)

    def _execute(self, d: HedgeDecision, *, resume: bool) -> HedgeOutcome | None:
        if self.executor is None:
            raise HedgingError("the engine has no executor")
        if self.last is not None and (self.last.ts_ns - d.ts_ns) > self.config.max_stale_s * NS and not resume:
            self.counts.refused_hedges["stale price"] += 1
            return None
        self._event(d.hedge_id, "executing", d.ts_ns)
        try:
            out = self.executor(d, resume)
        except Exception as exc:  # the loop carries on: what filled is in the store, the rest stays in delta
            self.counts.refused_hedges[f"execution failed: {type(exc).__name__}"] += 1
            log.exception("hedge %s: execution failed", d.hedge_id)
            filled = self._hedged_shares(d.parent_order_id)
            self.portfolio.shares = self.base_shares + self._hedged_shares()
            t = self.last.ts_ns if self.last else d.ts_ns
            self._event(d.hedge_id, "failed", t, filled=abs(filled), detail=f"execution failed: {exc}")
            return None
        self.portfolio.shares = self.base_shares + self._hedged_shares()
        self._event(d.hedge_id, "done", out.end_ns, filled=out.filled, cost=out.realised_cost_usd,
                    temporary=out.temporary_cost_usd)  # fmt: skip
        self.hedges_done += 1
        self._maybe_recalibrate(out.end_ns)
        return out

    # -- recalibration -----------------------------------------------------------------------------------

    def _own_rows(self) -> list[dict[str, Any]]:
        """The completed hedges' forecasts against their realised costs (the store's ``cost_predictions``
        rows of this engine's parent orders, in the order they were recorded)."""
        parents = set(self.store.read("hedges").column("parent_order_id").to_pylist())
        rows = [r for r in self.store.read("cost_predictions").to_pylist()
                if r["parent_order_id"] in parents and r.get("parts_json")]  # fmt: skip
        rows.sort(key=lambda r: (r["ts_ns"], r["prediction_id"]))
        return rows

    def _maybe_recalibrate(self, ts_ns: int) -> None:
        """Refit the model on the hedges done (every part's multiplier, with the day's calibration as the
        prior: :meth:`~impactlab.calibration.InstrumentModel.refit`) after ``recalibrate_every`` hedges at
        the live version or when its forecasts drift; a large change waits for approval."""
        c = self.config
        rows = self._own_rows()
        mine = [r for r in rows if r["model"] == self.model.version]
        pred = np.array([r["predicted_bps"] for r in mine[-c.drift_window :]], float)
        real = np.array([r["realised_bps"] for r in mine[-c.drift_window :]], float)
        drift = 0.0
        if len(pred) >= c.drift_window:
            drift = abs(float(np.sum(real - pred))) / max(float(np.sum(np.abs(pred))), 1e-9)
        reason = ""
        if c.recalibrate_every and len(mine) >= c.recalibrate_every:
            reason = "schedule"
        elif len(mine) >= 2 and drift > c.drift_bound:
            reason = f"drift {drift:.2f}"
        if not reason:
            return
        held = self.registry.pending_row(self.model.symbol)
        if held is not None:  # one change waits for a person at a time: no new proposal until it is decided
            if self._waiting != held["version"]:
                log.warning("recalibration (%s) waits: %s is held for approval", reason, held["version"])
                self._waiting = held["version"]
            return
        try:
            new = self.model.recalibrated(rows, reason=reason)
        except Exception as exc:  # too few priced hedges, a singular fit: the live version carries on
            log.warning("recalibration skipped: %s", exc)
            return
        rec = self.registry.propose(self.model, new)
        if rec.status == "live":
            self.model = rec
        log.info("model %s (%s): %s", rec.version, rec.status, reason)

    _waiting = ""

    def reload_model(self) -> bool:
        """Switch to the store's live version if it changed (after an approval); True if it did."""
        row = self.registry.live_row(self.model.symbol)
        if row is None or row["version"] == self.model.version:
            return False
        self.model = self.model.restored(row)
        return True

    # -- state -------------------------------------------------------------------------------------------

    def _hedged_shares(self, parent_order_id: str | None = None) -> float:
        """Signed shares the hedges (or one hedge's parent order) have filled, from the store."""
        t = self.store.read("hedges")
        if not t.num_rows:
            return 0.0
        parents = {parent_order_id} if parent_order_id else set(t.column("parent_order_id").to_pylist())
        fills = self.store.read("fills").to_pylist()
        return float(sum(f["side"] * f["quantity"] for f in fills if f["parent_order_id"] in parents))

    def hedge_state(self, hedge_id: str) -> str | None:
        rows = self.store.read("hedge_events", where="hedge_id = ?", params=[hedge_id]).to_pylist()
        order = {"decided": 0, "held": 1, "approved": 2, "executing": 3, "done": 4, "failed": 4}
        return max((r["kind"] for r in rows), key=order.__getitem__) if rows else None

    def open_hedges(self) -> list[HedgeDecision]:
        """Journalled hedges that are not done (after a restart: the ones to resume)."""
        out = []
        for h in self.store.read("hedges").to_pylist():
            if self.hedge_state(h["hedge_id"]) in ("done", "failed"):  # failed: final, what filled is in delta
                continue
            side = int(h["side"])
            m = self.model_for(h["model_version"])
            mk = m.market_at(side, mid=h["arrival_mid"], ts_ns=h["ts_ns"])
            sch, _, _, _ = hedge_schedule(m, h["policy"], h["quantity"], h["horizon_s"], h["step_s"], side,
                                          self.config.risk_aversion, mk)  # fmt: skip
            out.append(HedgeDecision(
                h["hedge_id"], h["ts_ns"], h["delta_shares"], side, h["quantity"], h["policy"], h["horizon_s"],
                h["step_s"], sch, h["model_version"], h["expected_cost_usd"], h["risk_usd2"], h["arrival_mid"],
                h["regime"], None, m.forecast(sch, mk),
            ))  # fmt: skip
        return out

    def model_for(self, version: str) -> Any:
        """The model at ``version`` (the live one, or an earlier version restored from the store)."""
        if version == self.model.version:
            return self.model
        row = self.registry._row(version)
        return self.model.restored(row)

    def status(self) -> dict[str, Any]:
        """What the desk sees: exposure, regime, model version, counts of everything refused and why."""
        lat = np.array(self.latency_ns, float) / 1e3
        g = self.greeks
        return {
            "underlying": self.config.underlying,
            "last_update_ns": self.last.ts_ns if self.last else None,
            "mid": self.last.mid if self.last else None,
            "delta_shares": g.delta_shares if g else None,
            "gamma_shares_per_unit": g.gamma_shares_per_unit if g else None,
            "shares": self.portfolio.shares,
            "regime": self.breaker.regime,
            "breaker_trips": dict(self.breaker.trips),
            "model_version": self.model.version,
            "hedges_done": self.hedges_done,
            "held_for_approval": sorted(self.held),
            "bad_market_messages": dict(self.counts.bad_market),
            "bad_position_messages": dict(self.counts.bad_position),
            "refused_hedges": dict(self.counts.refused_hedges),
            "expired_options": sorted(self.counts.expired_options),
            "decision_latency_us": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))}
            if lat.size
            else None,
        }


def _finite_or_none(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _reason(exc: Exception) -> str:
    """A short count key for an error: the field it names, else its type."""
    text = str(exc)
    if "field '" in text:
        return "bad field " + text.split("field '")[1].split("'")[0]
    if "bid < ask" in text:
        return "crossed or non-positive quote"
    return type(exc).__name__
