"""Synthetic LOBSTER-style days with a known, consistent book.

The generator keeps the *full* book (every resting order) and writes LOBSTER's two files for a chosen
depth L: a message is written only when it touches the L visible levels, exactly as LOBSTER filters its
message file, so levels enter the visible range from beyond the depth as they do in real files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from impactlab.data.lobster import DUMMY_ASK, DUMMY_BID

__all__ = ["SyntheticDay", "write_synthetic_lobster"]


@dataclass(frozen=True)
class SyntheticDay:
    """Paths of the files written and facts about them."""

    message_path: Path
    book_path: Path
    messages: int
    levels: int


def write_synthetic_lobster(
    directory: str | Path,
    *,
    seed: int,
    n_events: int = 2_000,
    levels: int = 5,
    symbol: str = "SYNT",
    date: dt.date = dt.date(2012, 6, 21),
    mid_e4: int = 1_000_000,
    tick_e4: int = 100,
    gzip_files: bool = False,
    seed_levels: int | None = None,
) -> SyntheticDay:
    """Simulate an order book and write a LOBSTER message/order-book pair for its first ``levels`` levels.

    Events: limit submissions at 0–9 ticks from the touch, partial and full cancellations of random
    resting orders, visible executions at the best price, and hidden executions; times are increasing
    from 09:30.

    Parameters
    ----------
    seed
        Seed of the generator (no global random state is used).
    n_events
        Simulated events; fewer messages are written, as events beyond the depth are left out.
    seed_levels
        Price levels per side in the initial book (default ``levels + 6``, so some lie beyond the depth).
    """
    rng = np.random.default_rng(seed)
    orders: dict[int, tuple[int, int, int]] = {}  # id -> (side, price, size)
    books: dict[int, dict[int, int]] = {1: {}, -1: {}}
    next_id = 1

    def levels_of(side: int) -> list[tuple[int, int]]:
        lv = sorted(books[side].items(), reverse=(side == 1))
        return lv

    def visible_prices(side: int) -> list[int]:
        return [p for p, _ in levels_of(side)[:levels]]

    def snapshot() -> list[int]:
        row: list[int] = []
        a = levels_of(-1)[:levels]
        b = levels_of(1)[:levels]
        for k in range(levels):
            row += [a[k][0], a[k][1]] if k < len(a) else [DUMMY_ASK, 0]
            row += [b[k][0], b[k][1]] if k < len(b) else [DUMMY_BID, 0]
        return row

    def add(side: int, price: int, size: int) -> int:
        nonlocal next_id
        oid = next_id
        next_id += 1
        orders[oid] = (side, price, size)
        books[side][price] = books[side].get(price, 0) + size
        return oid

    def remove(oid: int, size: int) -> None:
        side, price, left = orders[oid]
        books[side][price] -= size
        if books[side][price] == 0:
            del books[side][price]
        if left - size == 0:
            del orders[oid]
        else:
            orders[oid] = (side, price, left - size)

    # seed the book: levels on each side, several orders each
    for side in (1, -1):
        for k in range(levels + 6 if seed_levels is None else seed_levels):
            for _ in range(int(rng.integers(1, 4))):
                add(side, mid_e4 - side * (tick_e4 * (k + 1)), int(rng.integers(1, 10)) * 100)

    msgs: list[tuple[float, int, int, int, int, int]] = []
    rows: list[list[int]] = []
    t = 34_200.0
    for _ in range(n_events):
        t += float(rng.exponential(0.05)) + 1e-9
        u = rng.random()
        if u < 0.45 or len(orders) < 4:
            side = 1 if rng.random() < 0.5 else -1
            best_other = levels_of(-side)[0][0] if books[-side] else mid_e4 + side * tick_e4
            best_own = levels_of(side)[0][0] if books[side] else best_other - side * 2 * tick_e4
            off = int(rng.integers(0, 10))
            price = best_own - side * off * tick_e4
            if side * (best_other - price) <= 0:  # never cross the book
                price = best_other - side * tick_e4
            vis = visible_prices(side)
            shown = len(vis) < levels or side * (price - vis[-1]) >= 0
            size = int(rng.integers(1, 10)) * 100
            oid = add(side, price, size)
            if shown:
                msgs.append((t, 1, oid, size, price, side))
        elif u < 0.85:
            oid = int(rng.choice(list(orders)))
            side, price, left = orders[oid]
            full = rng.random() < 0.6 or left <= 100
            size = left if full else int(rng.integers(1, left // 100)) * 100
            shown = price in visible_prices(side)
            remove(oid, size)
            if shown:
                msgs.append((t, 3 if full else 2, oid, size, price, side))
        elif u < 0.97:
            side = 1 if rng.random() < 0.5 else -1
            if not books[side]:
                continue
            price = levels_of(side)[0][0]
            oid = min(o for o, (s, p, _) in orders.items() if s == side and p == price)  # time priority
            left = orders[oid][2]
            size = min(left, int(rng.integers(1, 6)) * 100)
            remove(oid, size)
            msgs.append((t, 4, oid, size, price, side))
        else:
            side = 1 if rng.random() < 0.5 else -1
            price = levels_of(side)[0][0] if books[side] else mid_e4
            msgs.append((t, 5, 0, int(rng.integers(1, 5)) * 100, price, side))
        if len(rows) < len(msgs):
            rows.append(snapshot())

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{symbol}_{date.isoformat()}_34200000_57600000"
    suffix = ".csv.gz" if gzip_files else ".csv"
    mpath = directory / f"{stem}_message_{levels}{suffix}"
    bpath = directory / f"{stem}_orderbook_{levels}{suffix}"
    mtext = "".join(f"{m[0]:.9f},{m[1]},{m[2]},{m[3]},{m[4]},{m[5]}\n" for m in msgs)
    btext = "".join(",".join(map(str, r)) + "\n" for r in rows)
    if gzip_files:
        import gzip

        mpath.write_bytes(gzip.compress(mtext.encode()))
        bpath.write_bytes(gzip.compress(btext.encode()))
    else:
        mpath.write_text(mtext)
        bpath.write_text(btext)
    return SyntheticDay(mpath, bpath, len(msgs), levels)
