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

from impactlab.data.market import EventFlag, EventKind, MarketDay
from impactlab.errors import SimulationError
from impactlab.impact.obizhaeva_wang import ObizhaevaWangImpact
from impactlab.simulation import _kernels as k
from impactlab.simulation.venue import Venue

__all__ = ["ImpactOverlay", "ReplayData", "ReplayMarket"]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]


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
    def from_day(cls, day: MarketDay, *, margin_ticks: int = 2000, band_fraction: float = 0.1) -> ReplayData:
        """The replay of any day, from the richest events its source has.

        * Order events with one recorded state per event (LOBSTER): every message, with the exact queue
          ahead; the recorded states supply the first book and levels that come into view.
        * Level updates (Binance depth diffs and snapshots): absolute level sizes and the trades, on the
          exchange clock, within ``band_fraction`` of the traded price range.
        * Anything else (Databento MBO / MBP, TAQ, generic quotes): the recorded book states as absolute
          level sizes (a level that leaves the visible depth is taken as empty: depth beyond what the
          source shows is unknown) and the trades as prints.
        """
        if len(day.book) == 0:
            raise SimulationError(f"{day.label}: no book states to replay")
        if EventKind.LEVEL in set(np.unique(day.events.kind).tolist()):
            return cls._from_levels(day, margin_ticks=margin_ticks, band_fraction=band_fraction)
        if (
            day.has_order_ids
            and len(day.events) == len(day.book)
            and np.array_equal(day.book.event_index, np.arange(len(day.book)))
        ):
            return cls._from_order_events(day, margin_ticks=margin_ticks)
        return cls._from_states(day, margin_ticks=margin_ticks)

    @classmethod
    def _from_order_events(cls, day: MarketDay, *, margin_ticks: int) -> ReplayData:
        ev = day.events
        bid_t, ask_t = day.book.ticks(day.tick_size)
        bz, az = day.book.bid_size, day.book.ask_size
        bid_ok, ask_ok = np.isfinite(day.book.bid_price) & (bz > 0), np.isfinite(day.book.ask_price) & (az > 0)
        visible = ev.kind != EventKind.STATUS
        px_all = np.concatenate([ev.price_ticks[visible], bid_t[bid_ok], ask_t[ask_ok]])
        lo, hi = int(px_all.min()), int(px_all.max())
        base = lo - margin_ticks
        n_lad = hi - lo + 1 + 2 * margin_ticks
        init = np.zeros((2, n_lad))
        for j in range(day.depth):
            if ask_ok[0, j]:
                init[1, ask_t[0, j] - base] = az[0, j]
            if bid_ok[0, j]:
                init[0, bid_t[0, j] - base] = bz[0, j]
        hidden = (ev.flags & np.uint8(EventFlag.HIDDEN)) != 0
        code = np.zeros(len(ev), dtype=np.int8)
        code[ev.kind == EventKind.ADD] = k.K_ADD
        code[ev.kind == EventKind.CANCEL] = k.K_CANCEL
        code[(ev.kind == EventKind.FILL) & ~hidden] = k.K_EXEC
        keep = code != 0
        keep[0] = False
        # arrival time of each order id (adds in the file; −1 for orders resting before it began)
        adds = ev.kind == EventKind.ADD
        first_add = pd.Series(ev.ts_ns[adds], index=ev.order_id[adds])
        first_add = first_add[~first_add.index.duplicated()]
        arr = pd.Series(ev.order_id).map(first_add).fillna(-1).to_numpy(np.int64)
        rows = np.flatnonzero(keep)
        t = ev.ts_ns[rows]
        kind = code[rows]
        side = ev.side[rows].astype(np.int8)
        px = ev.price_ticks[rows] - base
        qty = ev.size[rows].astype(float)
        arrs = arr[rows]
        order = rows.astype(np.float64)
        # levels entering the visible range from beyond it: the deepest non-empty visible level moved
        # outward (set it from the recorded state, and empty what the ladder still holds between the two)
        sync_t, sync_side, sync_px, sync_q, sync_o, sync_prev = [], [], [], [], [], []
        rows_all = np.arange(len(day))
        for s_sign, pxs, szs, ok in ((1, bid_t, bz, bid_ok), (-1, ask_t, az, ask_ok)):
            has: NDArray[np.bool_] = np.asarray(ok.any(axis=1), dtype=bool)
            last = np.where(has, day.depth - 1 - np.argmax(ok[:, ::-1], axis=1), 0)
            dp = np.where(has, pxs[rows_all, last], 0)
            dq = np.where(has, szs[rows_all, last], 0)
            prev = np.r_[dp[0], dp[:-1]]
            prev_has = np.asarray(np.r_[has[0], has[:-1]], dtype=bool)
            outward = np.asarray((dp < prev) if s_sign == 1 else (dp > prev), dtype=bool)
            moved = has & prev_has & outward
            moved[0] = False
            idx = np.flatnonzero(moved)
            sync_t.append(ev.ts_ns[idx])
            sync_side.append(np.full(idx.size, s_sign, np.int8))
            sync_px.append(dp[idx] - base)
            sync_q.append(dq[idx].astype(float))
            sync_o.append(idx + 0.5)  # just after the message that exposed it
            sync_prev.append(prev[idx] - base)
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
            "hidden_executions_skipped": int(((ev.kind == EventKind.FILL) & hidden).sum()),
            "halts_skipped": int((ev.kind == EventKind.STATUS).sum()),
        }
        return cls(
            day.symbol, f"{day.source} {day.label}", day.tick_size, base, n_lad, init,
            ev_t, ev_kind, ev_side, ev_px, ev_qty, ev_arr, counts,
        )  # fmt: skip

    @classmethod
    def _from_levels(cls, day: MarketDay, *, margin_ticks: int, band_fraction: float) -> ReplayData:
        """Absolute level updates (and snapshot levels) plus trades, within a band around the traded range.

        Level updates outside the band (resting orders tens of percent away, which Binance's diff stream
        carries) are left out of the replay and counted in ``counts["levels_outside_band"]``.
        """
        if not 0 < band_fraction <= 10:
            raise SimulationError(f"'band_fraction' must be in (0, 10], got {band_fraction!r}")
        ev = day.events
        lvl = (ev.kind == EventKind.LEVEL) | (ev.kind == EventKind.SNAPSHOT)
        trd = ev.kind == EventKind.TRADE
        tr_px = ev.price[trd]
        if tr_px.size == 0:
            raise SimulationError(f"{day.label}: no trades to place the price band")
        lo_px, hi_px = float(tr_px.min()) * (1 - band_fraction), float(tr_px.max()) * (1 + band_fraction)
        in_band = lvl & (ev.price >= lo_px) & (ev.price <= hi_px)
        use = in_band | trd
        tick = day.tick_size
        ticks = np.rint(ev.price[use] / tick).astype(np.int64)
        lo, hi = int(ticks.min()), int(ticks.max())
        base = lo - margin_ticks
        n_lad = hi - lo + 1 + 2 * margin_ticks
        if n_lad > 20_000_000:
            raise SimulationError(f"{day.label}: price range of {n_lad:,} ticks is too wide for a dense ladder")
        rows = np.flatnonzero(use)
        t = ev.exch_ns[rows]
        kind = np.where(trd[rows], k.K_PRINT, k.K_SET).astype(np.int8)
        side = np.where(trd[rows], -ev.side[rows], ev.side[rows]).astype(np.int8)
        perm = np.argsort(t, kind="stable")
        counts = {
            "level_updates": int((in_band & (ev.kind == EventKind.LEVEL)).sum()),
            "trades": int(trd.sum()),
            "snapshot_levels": int((in_band & (ev.kind == EventKind.SNAPSHOT)).sum()),
            "levels_outside_band": int((lvl & ~in_band).sum()),
        }
        return cls(
            day.symbol, f"{day.source} {day.label}", tick, base, n_lad, np.zeros((2, n_lad)),
            t[perm], kind[perm], side[perm], (ticks - base)[perm].astype(np.int64), ev.size[rows][perm],
            np.full(rows.size, k.ARR_UNKNOWN, np.int64), counts,
        )  # fmt: skip

    @classmethod
    def _from_states(cls, day: MarketDay, *, margin_ticks: int) -> ReplayData:
        """Recorded book states as absolute level sizes, plus the trades as prints."""
        b = day.book
        bid_t, ask_t = b.ticks(day.tick_size)
        bid_ok = np.isfinite(b.bid_price) & (b.bid_size > 0)
        ask_ok = np.isfinite(b.ask_price) & (b.ask_size > 0)
        tr = day.trades
        tr_t = np.rint(tr.price / day.tick_size).astype(np.int64)
        px_all = np.concatenate([bid_t[bid_ok], ask_t[ask_ok], tr_t])
        lo, hi = int(px_all.min()), int(px_all.max())
        base = lo - margin_ticks
        n_lad = hi - lo + 1 + 2 * margin_ticks
        if n_lad > 20_000_000:
            raise SimulationError(f"{day.label}: price range of {n_lad:,} ticks is too wide for a dense ladder")
        init = np.zeros((2, n_lad))
        t_l, s_l, p_l, q_l = [], [], [], []
        prev: list[dict[int, float]] = [{}, {}]
        for r in range(len(b)):
            for s, (pt, sz, ok) in enumerate(((bid_t, b.bid_size, bid_ok), (ask_t, b.ask_size, ask_ok))):
                cur = {int(pt[r, j]) - base: float(sz[r, j]) for j in np.flatnonzero(ok[r])}
                if r == 0:
                    for p, q in cur.items():
                        init[0 if s == 0 else 1, p] = q
                else:
                    for p, q in cur.items():
                        if prev[s].get(p) != q:
                            t_l.append(int(b.ts_ns[r]))
                            s_l.append(1 if s == 0 else -1)
                            p_l.append(p)
                            q_l.append(q)
                    for p in prev[s].keys() - cur.keys():  # left the visible depth: taken as empty
                        t_l.append(int(b.ts_ns[r]))
                        s_l.append(1 if s == 0 else -1)
                        p_l.append(p)
                        q_l.append(0.0)
                prev[s] = cur
        lt = np.asarray(t_l, np.int64)
        t = np.concatenate([lt, tr.ts_ns])
        kind = np.concatenate([np.full(lt.size, k.K_SET, np.int8), np.full(len(tr), k.K_PRINT, np.int8)])
        side = np.concatenate([np.asarray(s_l, np.int8), (-tr.sign).astype(np.int8)])
        px = np.concatenate([np.asarray(p_l, np.int64), tr_t - base])
        qty = np.concatenate([np.asarray(q_l, float), tr.size])
        signed = np.concatenate([np.ones(lt.size, bool), tr.sign != 0])
        t, kind, side, px, qty = t[signed], kind[signed], side[signed], px[signed], qty[signed]
        perm = np.argsort(t, kind="stable")
        counts = {
            "book_states": len(b),
            "level_updates": int(lt.size),
            "trades": int((tr.sign != 0).sum()),
            "unsigned_trades_skipped": int((tr.sign == 0).sum()),
            "depth": day.depth,
        }
        return cls(
            day.symbol, f"{day.source} {day.label} (book states; depth beyond L{day.depth} unknown)", day.tick_size,
            base, n_lad, init, t[perm], kind[perm], side[perm], px[perm].astype(np.int64), qty[perm],
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
