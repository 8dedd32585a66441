"""Rebuild Binance books from a REST snapshot plus depth diffs, or from diffs alone (for
:func:`impactlab.data.load_binance`).

Synchronisation follows Binance's documented procedure.  Diffs received before the snapshot are kept;
when the snapshot arrives the book is emptied and set to it, diffs already received that end after
``lastUpdateId`` are applied again, and from then on each diff must continue the sequence (spot:
``U == previous u + 1``; futures: ``pu == previous u``).  The first diff applied after a snapshot must
straddle it (spot ``U <= lastUpdateId + 1 <= u``; futures ``U <= lastUpdateId <= u``).  A gap marks the
book unsynchronised until the next snapshot.  Without a snapshot the book is built from diffs alone: a
level is known once it has been updated, so the top of book may be wrong until the levels near the
touch have all changed once; the check against the book-ticker stream measures that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from impactlab.data import _kernels as k
from impactlab.data._binance_parse import PRICE_SCALE, BinanceCapture

__all__ = ["BinanceBook", "rebuild_binance"]

KIND_DIFF, KIND_SNAPSHOT, KIND_REPLAYED = 0, 1, 2


@dataclass(frozen=True, eq=False)
class BinanceBook:
    """The rebuilt book after every applied operation.

    Attributes
    ----------
    local_ns
        Receive time of each operation (a diff applied again after a snapshot takes the snapshot's time).
    kind
        0 diff, 1 snapshot, 2 diff applied again after a snapshot.
    last_id
        Last update id covered by the book after the operation.
    synced
        True where the book is exact (a snapshot plus an unbroken run of diffs).
    bid_price, bid_size, ask_price, ask_size
        ``(n_ops, depth)`` top levels; NaN / 0 where empty.
    checks
        Counts: operations, level updates, snapshots applied, gaps, unknown-level deletions, book tickers
        compared against the rebuilt top of book and how many agreed.
    """

    symbol: str
    local_ns: NDArray[np.int64]
    order: NDArray[np.int64]
    kind: NDArray[np.int8]
    last_id: NDArray[np.int64]
    synced: NDArray[np.bool_]
    bid_price: NDArray[np.float64]
    bid_size: NDArray[np.float64]
    ask_price: NDArray[np.float64]
    ask_size: NDArray[np.float64]
    checks: dict[str, Any]

    def __len__(self) -> int:
        return int(self.local_ns.size)


def _plan(cap: BinanceCapture, use_snapshot: bool) -> tuple[list[tuple[int, int, bool, int]], int]:
    """Operations ``(kind, index, synced, last_id)`` in application order, and the gap count."""
    d = cap.depth
    futures = cap.market in ("usdm", "coinm")
    snaps = sorted(cap.snapshots, key=lambda s: s.order) if use_snapshot else []
    ops: list[tuple[int, int, bool, int]] = []
    si = 0
    synced = False
    prev_u: int | None = None
    gaps = 0
    applied = np.zeros(len(d), dtype=bool)
    first = False
    lid = -1

    def continues(e: int) -> bool:
        if prev_u is None:
            return True
        return bool(d.prev_id[e] == prev_u) if futures else bool(d.first_id[e] == prev_u + 1)

    for e in range(len(d)):
        while si < len(snaps) and snaps[si].order < d.order[e]:
            snap = snaps[si]
            lid = snap.last_update_id
            ops.append((KIND_SNAPSHOT, si, True, lid))
            synced, prev_u = True, lid
            first = True
            # diffs received before the snapshot whose range ends after it are applied again
            for r in np.flatnonzero(applied):
                if (d.last_id[r] >= lid) if futures else (d.last_id[r] > lid):
                    if not _straddles_or_continues(d, r, prev_u, lid, futures, first=first):
                        synced = False
                    first = False
                    ops.append((KIND_REPLAYED, int(r), synced, int(d.last_id[r])))
                    prev_u = int(d.last_id[r])
            si += 1
        if synced and prev_u is not None:
            stale = (d.last_id[e] < prev_u) if futures else (d.last_id[e] <= prev_u)
            if stale and first:
                continue
            if not _straddles_or_continues(d, e, prev_u, lid, futures, first=first):
                gaps += 1
                synced = False
            first = False
        elif prev_u is not None and not continues(e):
            gaps += 1
        ops.append((KIND_DIFF, e, synced, int(d.last_id[e])))
        applied[e] = True
        prev_u = int(d.last_id[e])
    return ops, gaps


def _straddles_or_continues(d: Any, e: int, prev_u: int, lid: int, futures: bool, *, first: bool) -> bool:
    if first:
        return bool(d.first_id[e] <= lid <= d.last_id[e]) if futures else bool(d.first_id[e] <= lid + 1 <= d.last_id[e])
    return bool(d.prev_id[e] == prev_u) if futures else bool(d.first_id[e] == prev_u + 1)


def rebuild_binance(
    cap: BinanceCapture, *, depth: int = 10, use_snapshot: bool = True, compiled: bool = True
) -> BinanceBook:
    """Rebuild the book of a capture and check its top against the book-ticker stream.

    Parameters
    ----------
    cap
        A loaded capture.
    depth
        Levels per side recorded after each operation.
    use_snapshot
        Use the REST snapshot(s) in the capture; ``False`` rebuilds from diffs alone.
    compiled
        numba kernel (default) or its plain-Python twin.
    """
    d = cap.depth
    ops, gaps = _plan(cap, use_snapshot)
    n_ops = len(ops)
    # Flatten: depth levels first, then each snapshot's levels.
    sides = [d.level_side]
    keys = [d.level_key]
    qtys = [d.level_qty]
    snap_range = []
    base = int(d.level_side.size)
    for s in cap.snapshots:
        sides += [np.ones(s.bid_price.size, np.int8), -np.ones(s.ask_price.size, np.int8)]
        keys += [
            np.rint(s.bid_price * PRICE_SCALE).astype(np.int64),
            np.rint(s.ask_price * PRICE_SCALE).astype(np.int64),
        ]
        qtys += [s.bid_qty, s.ask_qty]
        n = s.bid_price.size + s.ask_price.size
        snap_range.append((base, base + n))
        base += n
    lvl_side = np.concatenate(sides)
    lvl_key = np.concatenate(keys)
    lvl_qty = np.concatenate(qtys)
    kind = np.array([o[0] for o in ops], dtype=np.int8)
    idx = np.array([o[1] for o in ops], dtype=np.int64)
    clear = kind == KIND_SNAPSHOT
    start = np.empty(n_ops, np.int64)
    stop = np.empty(n_ops, np.int64)
    diff_like = ~clear
    start[diff_like] = d.start[idx[diff_like]]
    stop[diff_like] = d.stop[idx[diff_like]]
    for j in np.flatnonzero(clear):
        start[j], stop[j] = snap_range[idx[j]]
    local_ns = np.where(clear, 0, d.local_ns[np.where(diff_like, idx, 0)] if len(d) else 0).astype(np.int64)
    for j in np.flatnonzero(clear):
        local_ns[j] = cap.snapshots[idx[j]].local_ns
    order = np.where(diff_like, d.order[np.where(diff_like, idx, 0)] if len(d) else 0, 0).astype(np.int64)
    for j in np.flatnonzero(clear):
        order[j] = cap.snapshots[idx[j]].order
    # a replayed diff becomes visible when the snapshot arrives
    last_snap_t = 0
    last_snap_o = 0
    for j in range(n_ops):
        if kind[j] == KIND_SNAPSHOT:
            last_snap_t = local_ns[j]
            last_snap_o = order[j]
        elif kind[j] == KIND_REPLAYED:
            local_ns[j] = last_snap_t
            order[j] = last_snap_o

    fn = k.ladder_replay if compiled else k.ladder_replay_py
    t0 = time.perf_counter()
    prices, lvl_rank = np.unique(lvl_key, return_inverse=True)
    rank_secs = time.perf_counter() - t0
    n_rank = max(int(prices.size), 1)
    ladder = np.zeros((2, n_rank), np.float64)
    best = np.array([-1, n_rank], np.int64)
    nlev = np.zeros(2, np.int64)
    top_rank = np.zeros((n_ops, 2 * depth), np.int64)
    top_qty = np.zeros((n_ops, 2 * depth), np.float64)
    if compiled:  # JIT warm-up on scratch arrays
        fn(
            clear[:1].copy(),
            start[:1].copy(),
            stop[:1].copy(),
            lvl_side,
            lvl_rank,
            lvl_qty,
            ladder.copy(),
            best.copy(),
            nlev.copy(),
            depth,
            top_rank[:1].copy(),
            top_qty[:1].copy(),
        )
    t0 = time.perf_counter()
    unknown = fn(clear, start, stop, lvl_side, lvl_rank, lvl_qty, ladder, best, nlev, depth, top_rank, top_qty)
    secs = time.perf_counter() - t0
    level_updates = int((stop - start).sum())

    px = (
        np.where(top_rank >= 0, prices[np.clip(top_rank, 0, None)] / PRICE_SCALE, np.nan)
        if prices.size
        else (np.full(top_qty.shape, np.nan))
    )
    book = BinanceBook(
        symbol=cap.symbol,
        local_ns=local_ns,
        order=order,
        kind=kind,
        last_id=np.array([o[3] for o in ops], dtype=np.int64),
        synced=np.array([o[2] for o in ops], dtype=bool),
        bid_price=px[:, :depth],
        bid_size=top_qty[:, :depth],
        ask_price=px[:, depth:],
        ask_size=top_qty[:, depth:],
        checks={},
    )
    checks = {
        "operations": n_ops,
        "level_updates": level_updates,
        "snapshots_applied": int(clear.sum()),
        "diffs_replayed_after_snapshot": int((kind == KIND_REPLAYED).sum()),
        "sequence_gaps": gaps,
        "unknown_level_deletions": int(unknown),
        "seconds": secs,
        "ranking_seconds": rank_secs,
        "level_updates_per_s": level_updates / secs if secs > 0 else float("inf"),
        **_ticker_check(cap, book),
    }
    object.__setattr__(book, "checks", checks)
    return book


def _ticker_check(cap: BinanceCapture, book: BinanceBook) -> dict[str, Any]:
    """Compare book tickers with the rebuilt top of book where the update ids line up exactly.

    A ticker with update id ``t`` is comparable with the book after an operation whose last id is ``t``
    (the diff that ends at ``t`` includes every change up to it).
    """
    tk = cap.tickers
    if tk["update_id"].size == 0 or len(book) == 0:
        return {"tickers_compared": 0, "tickers_agree": 0, "tickers_compared_synced": 0, "tickers_agree_synced": 0}
    # last operation for each update id
    ids = book.last_id
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    pos = np.searchsorted(sorted_ids, tk["update_id"], side="right") - 1
    ok = pos >= 0
    match = np.zeros(tk["update_id"].size, dtype=bool)
    match[ok] = sorted_ids[pos[ok]] == tk["update_id"][ok]
    op = order[np.clip(pos, 0, None)]
    agree = (
        np.isclose(book.bid_price[op, 0], tk["bid_price"])
        & np.isclose(book.ask_price[op, 0], tk["ask_price"])
        & np.isclose(book.bid_size[op, 0], tk["bid_size"])
        & np.isclose(book.ask_size[op, 0], tk["ask_size"])
    )
    synced = book.synced[op]
    return {
        "tickers_compared": int(match.sum()),
        "tickers_agree": int((match & agree).sum()),
        "tickers_compared_synced": int((match & synced).sum()),
        "tickers_agree_synced": int((match & synced & agree).sum()),
    }
