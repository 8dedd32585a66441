"""Bus throughput and latency: GOOG top-of-book quotes (JSON) through NATS JetStream on loopback, the
publisher and the consumer in separate processes (a durable push consumer that decodes every message and
acknowledges every 10,000), against the in-process bus in one process as the baseline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks._common import Section

ROOT = Path(__file__).resolve().parents[1]
N_THROUGHPUT = 1_000_000
RATE = 50_000.0
LAT_SECONDS = 10.0

_CONSUMER = r"""
import asyncio, json, sys, time, orjson
from impactlab.bus import NatsBus
async def main(url, n, name):
    bus = await NatsBus.connect(url)
    sub = await bus.subscribe("md.BENCH", durable=name)
    print("ready", flush=True)
    lat = []; first = None; got = 0
    while got < n:
        m = await sub.next(30.0)
        if m is None: break
        now = time.monotonic_ns()
        q = orjson.loads(m.data)
        if first is None: first = now
        lat.append(now - q["due_ns"])
        got += 1
        if got % 10000 == 0 or got == n: await sub.ack(m)
    await bus.close()
    import numpy as np
    print(json.dumps({"got": got, "last_ns": time.monotonic_ns(), "lat_us": (np.array(lat) / 1e3).tolist()}))
asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
"""

_PUBLISHER = r"""
import asyncio, json, sys, time, orjson
from impactlab.bus import NatsBus
from impactlab.bus.feed import lobster_quotes
from impactlab.rl.tasks import load_day
async def main(url, n, rate):
    q = lobster_quotes(load_day("GOOG"))
    base = [json.loads(m) for _, m in zip(range(len(q)), q.messages())]
    bus = await NatsBus.connect(url)
    print("ready", flush=True); sys.stdin.readline()
    t0 = time.monotonic_ns()
    step = 1e9 / rate if rate > 0 else 0.0
    for i in range(n):
        due = t0 + int(i * step)
        if step:
            ahead = due - time.monotonic_ns()
            if ahead > 200_000:  # more than 0.2 ms early: sleep (a busy wait would take the consumer's core)
                await asyncio.sleep(ahead / 1e9)
        msg = dict(base[i % len(base)], due_ns=due if step else time.monotonic_ns())
        await bus.publish_nowait("md.BENCH", orjson.dumps(msg))
        if i % 2048 == 0: await asyncio.sleep(0)
    await bus.flush()
    print(json.dumps({"t0_ns": t0, "end_ns": time.monotonic_ns()}))
    await bus.close()
asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
"""


def _run_pair(url: str, n: int, rate: float, name: str, cpus: tuple[int, int]) -> tuple[dict, dict]:  # type: ignore[type-arg]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cons = subprocess.Popen([sys.executable, "-c", _CONSUMER, url, str(n), name], stdout=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    pub = subprocess.Popen([sys.executable, "-c", _PUBLISHER, url, str(n), str(rate)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert cons.stdout is not None and pub.stdout is not None and pub.stdin is not None
    os.sched_setaffinity(cons.pid, {cpus[0]})
    os.sched_setaffinity(pub.pid, {cpus[1]})
    assert cons.stdout.readline().strip() == "ready" and pub.stdout.readline().strip() == "ready"
    pub.stdin.write("go\n")
    pub.stdin.flush()
    p = json.loads(pub.stdout.readline())
    c = json.loads(cons.stdout.read())
    pub.wait(60)
    cons.wait(60)
    return p, c


def _baseline(n: int) -> float:
    import asyncio

    import orjson

    from impactlab.bus import InMemoryBus

    async def go() -> float:
        bus = InMemoryBus()
        msg = {"symbol": "GOOG", "ts_ns": 1, "bid": 580.1, "ask": 580.2, "bid_size": 100.0, "ask_size": 200.0}
        sub = await bus.subscribe("md.BENCH", durable="base")
        t0 = time.perf_counter()
        for i in range(n):
            await bus.publish_nowait("md.BENCH", orjson.dumps(dict(msg, due_ns=i)))
        got = 0
        while got < n:
            m = await sub.next(1.0)
            assert m is not None
            orjson.loads(m.data)
            got += 1
        return n / (time.perf_counter() - t0)

    return asyncio.run(go())


def run(quick: bool = False) -> Section:
    from impactlab.bus import NatsServer

    n = 200_000 if quick else N_THROUGHPUT
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    pair = (cpus[0], cpus[-1])
    with NatsServer() as server:
        p, c = _run_pair(server.url, n, 0.0, "tput", pair)
        tput = c["got"] / ((c["last_ns"] - p["t0_ns"]) / 1e9)
        n_lat = int(RATE * (2.0 if quick else LAT_SECONDS))
        p2, c2 = _run_pair(server.url, n_lat, RATE, "lat", pair)
    lat = np.array(c2["lat_us"])
    achieved = c2["got"] / ((p2["end_ns"] - p2["t0_ns"]) / 1e9)
    base = _baseline(min(n, 200_000))
    sec = Section(
        title="Message bus — NATS JetStream throughput and publish-to-consume latency (loopback)",
        command="make bench ONLY=bench_bus  (benchmarks/bench_bus.py); nats-server -js started by the benchmark",
        baseline="the in-process bus (InMemoryBus) in one process, publishing then consuming the same JSON quotes",
        columns=["test", "messages", "lost", "rate msg/s", "p50 µs", "p99 µs", "p99.9 µs", "target"],
    )
    sec.add("NATS, as fast as possible (publisher ∥ consumer)", f"{n:,}", n - c["got"], f"{tput:,.0f}", "–", "–", "–",
            "≥ 200,000 msg/s")  # fmt: skip
    sec.add(f"NATS, paced at {RATE:,.0f} msg/s", f"{n_lat:,}", n_lat - c2["got"], f"{achieved:,.0f}",
            f"{np.percentile(lat, 50):,.0f}", f"{np.percentile(lat, 99):,.0f}", f"{np.percentile(lat, 99.9):,.0f}",
            "p99 < 2,000 µs")  # fmt: skip
    sec.add("in-process bus (baseline)", f"{min(n, 200_000):,}", 0, f"{base:,.0f}", "–", "–", "–", "–")
    sec.notes.append(
        f"Messages: GOOG 2012-06-21 top-of-book changes as the feed handler publishes them (JSON, about 130 bytes), "
        f"cycled. Publisher and consumer are separate processes pinned to CPUs {pair[1]} and {pair[0]}; "
        f"nats-server (JetStream, file storage) shares the machine's 2 cores. Throughput is messages consumed "
        f"(decoded) over the time from the first publish to the last consume. Latency is from each message's due "
        f"time on the publisher's schedule (so a late publisher counts) to its decode in the consumer, on the "
        f"shared monotonic clock. Targets: ≥ 200,000 msg/s "
        f"({'met' if tput >= 200_000 else 'NOT met'}); p99 < 2 ms at 50,000 msg/s "
        f"({'met' if np.percentile(lat, 99) < 2000 else 'NOT met'})."
    )
    return sec
