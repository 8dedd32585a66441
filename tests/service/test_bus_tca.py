"""The service on the bus: the live engine's finished hedges are analysed as ``POST /tca`` would, once each,
and a bad message is counted and skipped."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from impactlab.bus import InMemoryBus, NatsBus, NatsServer
from impactlab.bus.feed import day_quotes, replay_feed
from impactlab.bus.server import find_nats_server
from impactlab.data import Store
from impactlab.service.bus import tca_from_bus


@pytest.fixture(scope="module")
def engine_bus(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[InMemoryBus, list[Any], list[bytes]]:
    """An in-process bus after the live engine hedged GOOG on it, the engine's journal of hedges, and the
    finished hedges' messages as the engine published them."""
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.hedging.live import run_live
    from impactlab.hedging.scenario import ReplaySource
    from impactlab.rl.tasks import load_day
    from tests.hedging.killable_run import BOOK, CONFIG, WINDOW

    day = load_day("GOOG")
    o = day.start_ns
    quotes = day_quotes(day).window(o + int(WINDOW["start_s"]) * 10**9, o + int(WINDOW["end_s"]) * 10**9)
    bus = InMemoryBus()
    store = tmp_path_factory.mktemp("live") / "live.duckdb"

    async def go() -> None:
        await replay_feed(bus, quotes, frame=16)
        await run_live(bus, ReplaySource(day, **WINDOW), CONFIG, store, model=calibrate_instrument(day),
                       book=BOOK, idle_timeout_s=0.5)  # fmt: skip

    asyncio.run(go())
    with Store(store, read_only=True) as s:
        hedges = s.read("hedges").to_pylist()
    done = [m.data for m in bus._log.messages if m.subject == "hedge.GOOG" and orjson.loads(m.data)["done"]]
    return bus, hedges, done


def test_every_finished_hedge_is_analysed_once_and_bad_messages_are_skipped(make_client, engine_bus) -> None:  # type: ignore[no-untyped-def]
    bus, hedges, done_msgs = engine_bus
    client, state = make_client()

    async def consume(durable: str) -> Any:
        return await tca_from_bus(state, bus, durable=durable, idle_timeout_s=0.4, poll_s=0.1)

    first = asyncio.run(consume("tca"))
    assert len(hedges) >= 3 and first.analysed == len(hedges) and not first.refused
    assert first.open_hedges == first.received - first.analysed  # the "open" announcements carry no fills
    rows = client.get("/tca/recent", params={"limit": 100}).json()["orders"]
    parents = state.store.read("parent_orders").to_pylist()
    assert sorted(p["order_id"] for p in parents) == sorted(h["parent_order_id"] for h in hedges)
    fills = state.store.read("fills").to_pylist()
    for h in hedges:  # the service recorded every share the engine filled
        got = sum(f["quantity"] for f in fills if f["parent_order_id"] == h["parent_order_id"])
        assert got == pytest.approx(h["quantity"])
    assert len(rows) == len(hedges)  # each with the service's prediction beside the realised cost
    assert asyncio.run(consume("tca")).received == 0  # acknowledged: a restarted consumer has nothing to redo
    again = asyncio.run(consume("replayed"))  # a new consumer replays the whole subject: nothing twice
    assert again.analysed == 0 and again.duplicates == len(hedges)

    done = orjson.loads(done_msgs[0])

    async def bad() -> Any:
        await bus.publish("hedge.GOOG", b"{not json")
        await bus.publish("hedge.GOOG", orjson.dumps({**done, "fills": [{"fill_id": "x"}]}))  # no price etc.
        late = {**done, "parent_order_id": "P-late", "ts_ns": done["ts_ns"] + 10 * 86_400 * 10**9,
                "fills": [{**f, "ts_ns": f["ts_ns"] + 10 * 86_400 * 10**9} for f in done["fills"]]}  # fmt: skip
        await bus.publish("hedge.GOOG", orjson.dumps(late))  # outside the recorded day: no market to compare
        await bus.publish("hedge.GOOG", orjson.dumps({**done, "parent_order_id": "P-after"}))
        return await consume("tca")

    st = asyncio.run(bad())
    assert st.received == 4 and st.analysed == 1  # the good one after three bad ones
    assert st.refused == {"bad message": 2, "validation_error": 1} and "seq" in (st.last_error or "")


@pytest.mark.skipif(find_nats_server() is None, reason="no nats-server")
def test_the_service_started_with_a_bus_analyses_hedges_as_they_finish(make_client, engine_bus,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:  # fmt: skip
    _, hedges, done = engine_bus
    with NatsServer(tmp_path / "js") as server:
        client, state = make_client(bus_url=server.url)
        with client:  # runs the app's lifespan: the consumer starts with it

            async def publish() -> None:
                nb = await NatsBus.connect(server.url)
                for d in done:
                    await nb.publish("hedge.GOOG", d)
                await nb.close()

            asyncio.run(publish())
            deadline = time.monotonic() + 20
            status: dict[str, Any] = {}
            while time.monotonic() < deadline:
                status = client.get("/hedging/status").json()["bus_tca"]
                if status["analysed"] == len(done):
                    break
                time.sleep(0.1)
            assert status["analysed"] == len(done) == len(hedges) and not status["refused"]
        assert state.store.read("parent_orders").num_rows == len(hedges)
