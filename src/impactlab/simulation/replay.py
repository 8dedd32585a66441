"""Historical replay in which the trader's own orders interact with the real book and move later prices.

Assumptions (also in ``docs/simulation.md``)
--------------------------------------------
* **Market orders walk the real book** level by level, at the prices the data show (moved by the
  overlay, below).
* **Consumed liquidity does not reappear.**  What the trader took from a level is remembered (``cons``):
  the trader sees ``max(historical − consumed, 0)``.  Historical decreases of the level come out of what
  is left, and the memory shrinks to the level's historical size when that falls below it (the orders the
  trader took were at the front of the queue, so later historical takers consumed the rest).
* **Limit orders join the queue at the real position**: behind everything resting at that price when they
  arrive.  On LOBSTER data the queue ahead is exact: a cancellation or execution of an order that arrived
  earlier (or was in the book when the file began) moves ours forward; one that arrived later does not,
  and an execution of a later order means the aggressor went through ours, so ours fills first.  On
  Binance (level quantities, no order ids) the queue ahead shrinks by trades at the price and never
  exceeds what the level still holds (hftbacktest's risk-averse queue model).
* **Trade-through.**  An execution at a worse price than one of the trader's resting orders (a sale
  below our bid, a purchase above our ask) means the aggressor went through ours: ours fills first, best
  price first, at its own price.  Likewise a new historical limit order priced through one of ours (a
  sell at or below our bid) would have traded with it: ours fills first, at its own price, as maker.
* The trader's resting orders do not change the historical flow (nobody reacts to them): a historical
  order that filled ours still rests, or trades, as it did.  Hidden executions (LOBSTER type 5) do not
  fill them.
* **The impact overlay**: each of the trader's fills adds ``λ q`` (permanent) and ``κ q`` (transient,
  decaying at rate ρ) to a price shift; the whole book the trader sees is moved by the shift rounded to
  ticks, so later prices carry the trader's own impact (Obizhaeva–Wang with the parameters calibrated on
  the same day, or any propagator with an exponential kernel).  By default only aggressive fills move it
  (``passive_fraction`` sets how much a passive fill counts).  When the rounded shift changes, a resting
  order keeps its price, so it now sits at another historical level, and joins the back of that queue.
* A LOBSTER file shows only its visible levels: liquidity that drops below the visible depth keeps its last
  known size, and a level that comes into view is set from the book file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from impactlab.data.binance import BinanceCapture
from impactlab.data.lobster import LobsterDay
from impactlab.errors import SimulationError
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.simulation import _kernels as k
from impactlab.simulation.venue import Venue

__all__ = ["ImpactOverlay", "ReplayData", "ReplayMarket"]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
_DUMMY = 9_000_000_000


@dataclass(frozen=True)
class ImpactOverlay:
    """The trader's own impact on the replayed prices.

    Parameters
    ----------
    permanent_per_share
        λ, currency per share traded (buys up, sells down), forever.
    transient_per_share
        κ, currency per share, decaying as ``e^{−ρ t}``.
    resilience_per_s
        ρ, 1/s (0: the transient part never decays).
    passive_fraction
        How much of a passive (resting-order) fill counts, in [0, 1].
    """

    permanent_per_share: float
    transient_per_share: float
    resilience_per_s: float
    passive_fraction: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        for f in ("permanent_per_share", "transient_per_share", "resilience_per_s"):
            v = float(getattr(self, f))
            if not np.isfinite(v) or v < 0:
                raise SimulationError(f"{f!r} must be >= 0 and finite, got {v!r}")
        if not 0 <= self.passive_fraction <= 1:
            raise SimulationError(f"'passive_fraction' must be in [0, 1], got {self.passive_fraction!r}")

    @classmethod
    def from_model(cls, model: ObizhaevaWangImpact, *, price: float, passive_fraction: float = 0.0) -> ImpactOverlay:
        """From a fitted Obizhaeva–Wang model (λ, κ in bps per share of ``price``; ρ per second)."""
        p = model.result_.params_dict()
        scale = float(price) * 1e-4
        return cls(
            max(float(p["lambda_bps"]), 0.0) * scale,
            max(float(p["kappa_bps"]), 0.0) * scale,
            max(float(p["rho_per_s"]), 0.0),
            passive_fraction,
            source=f"Obizhaeva–Wang fit ({model.result_.n} events)",
        )

    def kernel_params(self, tick_size: float) -> F64:
        return np.array(
            [
                self.permanent_per_share / tick_size,
                self.transient_per_share / tick_size,
                self.resilience_per_s,
                self.passive_fraction,
            ]
        )


@dataclass(frozen=True, eq=False)
class ReplayData:
    """Historical events in the replay kernel's form (read-only; shared by every replay of the day)."""

    symbol: str
    source: str
    tick_size: float
    base_tick: int
    ladder_ticks: int
    init_q: F64
    ev_t: I64
    ev_kind: NDArray[np.int8]
    ev_side: NDArray[np.int8]
    ev_px: I64
    ev_qty: F64
    ev_arr: I64
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ev_t.size)

    @property
    def start_ns(self) -> int:
        return int(self.ev_t[0])

    @property
    def end_ns(self) -> int:
        return int(self.ev_t[-1])

    @classmethod
    def from_lobster(cls, day: LobsterDay, *, margin_ticks: int = 2000) -> ReplayData:
        """Messages of a LOBSTER day (the book file supplies the first state and levels that come into view)."""
        tick_e4 = round(day.tick_size * 1e4)
        book = day.book
        px_all = np.concatenate([day.price_e4, book[:, 0::2].ravel()])
        px_all = px_all[np.abs(px_all) < _DUMMY]
        lo, hi = int(px_all.min() // tick_e4), int(px_all.max() // tick_e4)
        base = lo - margin_ticks
        n_lad = hi - lo + 1 + 2 * margin_ticks
        init = np.zeros((2, n_lad))
        row0 = book[0]
        for j in range(day.levels):
            for s, off in ((1, 0), (0, 2)):
                p, q = row0[4 * j + off], row0[4 * j + off + 1]
                if abs(p) < _DUMMY and q > 0:
                    init[s, p // tick_e4 - base] = q
        et = day.event_type
        keep = np.zeros(len(day), dtype=bool)
        keep[1:] = np.isin(et[1:], (1, 2, 3, 4))
        kind_map = np.zeros(8, dtype=np.int8)
        kind_map[1], kind_map[2], kind_map[3], kind_map[4] = k.K_ADD, k.K_CANCEL, k.K_CANCEL, k.K_EXEC
        # arrival time of each order id (adds in the file; −1 for orders resting before it began)
        adds = et == 1
        first_add = pd.Series(day.ts_ns[adds], index=day.order_id[adds])
        first_add = first_add[~first_add.index.duplicated()]
        arr = pd.Series(day.order_id).map(first_add).fillna(-1).to_numpy(np.int64)
        rows = np.flatnonzero(keep)
        t = day.ts_ns[rows]
        kind = kind_map[et[rows]]
        side = day.side[rows].astype(np.int8)
        px = day.price_e4[rows] // tick_e4 - base
        qty = day.size[rows].astype(float)
        arrs = arr[rows]
        order = rows.astype(np.float64)
        # levels entering the visible range from beyond it: the deepest non-empty visible level moved
        # outward (set it from the book file, and empty what the ladder still holds between the two)
        sync_t, sync_side, sync_px, sync_q, sync_o, sync_prev = [], [], [], [], [], []
        rows_all = np.arange(len(day))
        for s_sign, off in ((1, 2), (-1, 0)):
            pxs = book[:, off::4]
            szs = book[:, off + 1 :: 4]
            ok = (np.abs(pxs) < _DUMMY) & (szs > 0)
            has: NDArray[np.bool_] = np.asarray(ok.any(axis=1), dtype=bool)
            last = np.where(has, day.levels - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
            dp = np.where(has, pxs[rows_all, last], 0)
            dq = np.where(has, szs[rows_all, last], 0)
            prev = np.r_[dp[0], dp[:-1]]
            prev_has = np.asarray(np.r_[has[0], has[:-1]], dtype=bool)
            outward = np.asarray((dp < prev) if s_sign == 1 else (dp > prev), dtype=bool)
            moved = has & prev_has & outward
            moved[0] = False
            idx = np.flatnonzero(moved)
            sync_t.append(day.ts_ns[idx])
            sync_side.append(np.full(idx.size, s_sign, np.int8))
            sync_px.append(dp[idx] // tick_e4 - base)
            sync_q.append(dq[idx].astype(float))
            sync_o.append(idx + 0.5)  # just after the message that exposed it
            sync_prev.append(prev[idx] // tick_e4 - base)
        st = np.concatenate(sync_t)
        all_o = np.concatenate([order, *sync_o])
        perm = np.argsort(all_o, kind="stable")
        ev_t = np.concatenate([t, st])[perm]
        ev_kind = np.concatenate([kind, np.full(st.size, k.K_SYNC, np.int8)])[perm]
        ev_side = np.concatenate([side, *sync_side])[perm]
        ev_px = np.concatenate([px, *sync_px])[perm].astype(np.int64)
        ev_qty = np.concatenate([qty, *sync_q])[perm]
        ev_arr = np.concatenate([arrs, *sync_prev])[perm].astype(np.int64)
        counts = {
            "messages": len(day),
            "replayed": int(rows.size),
            "level_syncs": int(st.size),
            "hidden_executions_skipped": int((et == 5).sum()),
            "halts_skipped": int((et == 7).sum()),
        }
        return cls(
            day.symbol, f"LOBSTER {day.symbol} {day.date} L{day.levels}", day.tick_size, base, n_lad, init,
            ev_t, ev_kind, ev_side, ev_px, ev_qty, ev_arr, counts,
        )  # fmt: skip

    @classmethod
    def from_binance(
        cls,
        cap: BinanceCapture,
        *,
        tick_size: float | None = None,
        margin_ticks: int = 2000,
        band_fraction: float = 0.1,
    ) -> ReplayData:
        """Depth diffs (absolute level sizes) and trades of a Binance capture, on the exchange clock.

        The ladder spans the traded price range widened by ``band_fraction`` on each side; level updates
        outside it (resting orders tens of percent away, which Binance's diff stream carries) are left
        out of the replay and counted in ``counts["levels_outside_band"]``.
        """
        if not 0 < band_fraction <= 10:
            raise SimulationError(f"'band_fraction' must be in (0, 10], got {band_fraction!r}")
        d = cap.depth
        lp = d.level_price
        tr_px = np.asarray(cap.trades["price"], float)
        if tr_px.size == 0:
            raise SimulationError(f"{cap.symbol}: the capture has no trades to place the price band")
        lo_px, hi_px = float(tr_px.min()) * (1 - band_fraction), float(tr_px.max()) * (1 + band_fraction)
        in_band = (lp >= lo_px) & (lp <= hi_px)
        if tick_size is None:
            u = np.unique(np.concatenate([lp[in_band], tr_px]))
            gaps = np.diff(u)
            tick_size = float(np.round(gaps[gaps > 0].min(), 10))
        tick = float(tick_size)
        lvl_tick = np.rint(lp[in_band] / tick).astype(np.int64)
        tr_tick = np.rint(tr_px / tick).astype(np.int64)
        ticks = np.concatenate([lvl_tick, tr_tick])
        lo, hi = int(ticks.min()), int(ticks.max())
        base = lo - margin_ticks
        n_lad = hi - lo + 1 + 2 * margin_ticks
        if n_lad > 20_000_000:
            raise SimulationError(f"{cap.symbol}: price range of {n_lad:,} ticks is too wide for a dense ladder")
        ev_of_level = np.repeat(np.arange(len(d)), d.stop - d.start)[in_band]
        lt = d.exch_ns[ev_of_level]
        snaps_t, snaps_side, snaps_px, snaps_q = [], [], [], []
        outside = int((~in_band).sum())
        for sn in cap.snapshots:
            for sgn, pxs, qs in ((1, sn.bid_price, sn.bid_qty), (-1, sn.ask_price, sn.ask_qty)):
                keep = (pxs >= lo_px) & (pxs <= hi_px)
                outside += int((~keep).sum())
                snaps_t.append(np.full(int(keep.sum()), sn.local_ns, np.int64))
                snaps_side.append(np.full(int(keep.sum()), sgn, np.int8))
                snaps_px.append(np.rint(pxs[keep] / tick).astype(np.int64))
                snaps_q.append(np.asarray(qs, float)[keep])
        t = np.concatenate([lt, np.asarray(cap.trades["exch_ns"], np.int64), *snaps_t])
        kind = np.concatenate(
            [np.full(lt.size, k.K_SET, np.int8), np.full(tr_px.size, k.K_PRINT, np.int8)]
            + [np.full(a.size, k.K_SET, np.int8) for a in snaps_t]
        )
        side = np.concatenate([d.level_side[in_band], (-np.asarray(cap.trades["sign"])).astype(np.int8), *snaps_side])
        px = np.concatenate([lvl_tick, tr_tick, *snaps_px]) - base
        qty = np.concatenate([d.level_qty[in_band], np.asarray(cap.trades["size"], float), *snaps_q])
        perm = np.argsort(t, kind="stable")
        counts = {
            "level_updates": int(lt.size),
            "trades": int(tr_px.size),
            "snapshot_levels": int(sum(map(len, snaps_t))),
            "levels_outside_band": outside,
        }
        return cls(
            cap.symbol, f"Binance {cap.market} {cap.symbol}", tick, base, n_lad, np.zeros((2, n_lad)),
            t[perm], kind[perm], side[perm].astype(np.int8), px[perm].astype(np.int64), qty[perm],
            np.full(t.size, k.ARR_UNKNOWN, np.int64), counts,
        )  # fmt: skip


class ReplayMarket(Venue):
    """A venue that replays :class:`ReplayData` and lets the trader's orders interact with it.

    Parameters
    ----------
    data
        The day's events.
    overlay
        The trader's own impact on later prices (``None``: off; consumed liquidity still does not reappear).
    start_ns
        Exchange time to start at (the book is replayed up to it first); default the first event.
    **venue
        Latency, fee and seed settings of :class:`~impactlab.simulation.Venue`.
    """

    def __init__(
        self, data: ReplayData, *, overlay: ImpactOverlay | None = None, start_ns: int | None = None, **venue: Any
    ) -> None:
        t0 = data.start_ns if start_ns is None else int(start_ns)
        if not data.start_ns <= t0 <= data.end_ns:
            raise SimulationError(f"'start_ns' {t0} is outside the data ({data.start_ns}..{data.end_ns})")
        super().__init__(
            ladder_ticks=data.ladder_ticks, tick_size=data.tick_size, replay=True, base_tick=data.base_tick,
            start_ns=data.start_ns, **venue,
        )  # fmt: skip
        self.data = data
        self.overlay = overlay
        self._q[:] = data.init_q
        for s in (0, 1):
            nz = np.flatnonzero(self._q[s] > 0)
            if nz.size:
                self._top[s] = nz[-1] if s == 0 else nz[0]
        if overlay is not None:
            self._overlay = overlay.kernel_params(data.tick_size)
            self._sf[k.SF_RHO] = overlay.resilience_per_s
        self.run_to(t0)

    def _run_flow(self, t_ns: int) -> None:
        d = self.data
        k.replay_run(
            self._q, self._top, self._own, self._cons, self._oi, self._of, self._fi, self._ff, self._st, self._sf,
            d.ev_t, d.ev_kind, d.ev_side, d.ev_px, d.ev_qty, d.ev_arr, int(t_ns), self._overlay,
        )  # fmt: skip
        # the overlay's shift at the clock itself, not only at the last historical event
        if t_ns >= self._sf[k.SF_TNEXT] and k.overlay_shift(self._st, self._sf, int(t_ns)):
            k.remap_own(self._q, self._own, self._cons, self._oi, self._of, self._st, int(t_ns))

    @property
    def finished(self) -> bool:
        """True once every historical event has been replayed."""
        return int(self._st[k.ST_EV_I]) >= len(self.data)
