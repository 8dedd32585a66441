"""``impactlab bus serve``, ``impactlab feed`` and ``impactlab hedge live``: a NATS server, market data onto it,
and the hedging engine on it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer


def feed_cmd(
    bus: Annotated[str, typer.Option(help="NATS server URL, e.g. nats://127.0.0.1:4222.")],
    lobster: Annotated[list[Path] | None, typer.Option(help="LOBSTER message file (and optionally its book).")] = None,
    trades: Annotated[list[Path] | None, typer.Option(help="Binance capture file(s) of one symbol.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol, through the data catalog.")] = None,
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD.")] = None,
    file: Annotated[list[Path] | None, typer.Option("--file", help="Market-data file(s) in any format.")] = None,
    speed: Annotated[
        float | None, typer.Option(help="1 = recorded pace, 60 = a minute per second; default: max.")
    ] = None,
    start: Annotated[str | None, typer.Option(help="Only from this long after the first quote, e.g. 10m.")] = None,
    end: Annotated[str | None, typer.Option(help="Only until this long after the first quote.")] = None,
    frame: Annotated[
        int, typer.Option(min=1, max=10_000, help="Quotes per bus message at most (1: one each, as objects).")
    ] = 32,
) -> None:
    """Replay any market day (LOBSTER, Binance, Databento, TAQ, generic) onto the bus as a top-of-book feed
    (md.SYMBOL)."""
    from impactlab.bus import NatsBus
    from impactlab.bus.feed import day_quotes, replay_feed
    from impactlab.cli.main import _errors, out, parse_duration_s
    from impactlab.cli.market import resolve_market
    from impactlab.errors import BusError

    with _errors():
        given = [x for x in (lobster, trades, file) if x]
        if len(given) > 1 or (not given and symbol is None):
            raise BusError(
                "give one market: --symbol S [--date D], --file FILE..., --lobster FILE [BOOK] or --trades FILE..."
            )
        files = list(given[0]) if given else None
        q = day_quotes(resolve_market(symbol=None if files else symbol, date=date, files=files))
        t0 = int(q.ts_ns[0])
        lo = t0 + int(parse_duration_s(start) * 1e9) if start else t0
        hi = t0 + int(parse_duration_s(end) * 1e9) if end else int(q.ts_ns[-1]) + 1
        q = q.window(lo, hi)

        async def go() -> None:
            b = await NatsBus.connect(bus)
            try:
                s = await replay_feed(b, q, speed=speed, frame=frame)
            finally:
                await b.close()
            out.print(f"{s.quotes:,} quotes of {q.symbol} in {s.messages:,} messages on md.{q.symbol} in "
                      f"{s.wall_s:.2f} s ({s.per_s:,.0f} quotes/s), seq {s.first_seq}–{s.last_seq}")  # fmt: skip

        asyncio.run(go())


def hedge_live_cmd(
    bus: Annotated[str, typer.Option(help="NATS server URL.")],
    store: Annotated[Path, typer.Option(help="The engine's journal (run again on it to resume).")],
    symbol: Annotated[
        str, typer.Option(help="Symbol hedged (its replay is the venue; see `impactlab data catalog`).")
    ] = "GOOG",
    date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD.")] = None,
    contracts: Annotated[float, typer.Option(help="Calls held (negative: short).")] = -400.0,
    threshold: Annotated[float, typer.Option(help="Hedge when |delta| passes this many shares.")] = 400.0,
    risk_aversion: Annotated[float, typer.Option(help="λ of the impact-aware policy.")] = 1e-3,
    start: Annotated[str, typer.Option(help="Venue replay window start after the open.")] = "10m",
    end: Annotated[str, typer.Option(help="Venue replay window end after the open.")] = "375m",
    idle: Annotated[str, typer.Option(help="Stop after this long without market data.")] = "30s",
) -> None:
    """Run the hedging engine on md.SYMBOL from the bus; hedges, orders and fills go to hedge./orders./fills."""
    from impactlab.bus import NatsBus
    from impactlab.calibration.costmodel import calibrate_instrument
    from impactlab.cli.main import _emit, _errors, parse_duration_s
    from impactlab.hedging import HedgingConfig
    from impactlab.hedging.live import run_live
    from impactlab.hedging.scenario import BookSpec, ReplaySource

    with _errors():
        from impactlab.cli.market import resolve_market

        day = resolve_market(symbol=symbol, date=date)
        model = calibrate_instrument(day)
        cfg = HedgingConfig(symbol, threshold_shares=threshold, risk_aversion=risk_aversion)
        src = ReplaySource(day, start_s=parse_duration_s(start), end_s=parse_duration_s(end), md_step_s=5.0)

        async def go() -> None:
            b = await NatsBus.connect(bus)
            try:
                s = await run_live(b, src, cfg, store, model=model, book=BookSpec(contracts=contracts),
                                   idle_timeout_s=parse_duration_s(idle))  # fmt: skip
            finally:
                await b.close()
            _emit({"received": s.received, "quotes": s.quotes, "skipped_seen": s.skipped_seen, "hedges": s.hedges,
                   "published": s.published, "last_seq": s.last_seq, "finished": s.finished,
                   "wall_s": s.wall_s})  # fmt: skip

        asyncio.run(go())


bus_app = typer.Typer(no_args_is_help=True, help="The message bus: run a NATS JetStream server.")


@bus_app.command("serve")
def bus_serve_cmd(
    store: Annotated[Path, typer.Option(help="JetStream storage folder (streams and consumers survive restarts).")],
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 4222,
    binary: Annotated[str | None, typer.Option(help="nats-server to run (default: the pinned one).")] = None,
) -> None:
    """Run nats-server with JetStream on loopback until interrupted (Ctrl-C or SIGTERM stop it cleanly)."""
    import signal

    from impactlab.bus import NatsServer
    from impactlab.bus.server import nats_server_version
    from impactlab.cli.main import _errors, err

    with _errors():
        server = NatsServer(store, port=port, binary=binary).start()
        err.print(f"nats-server {nats_server_version(binary)} (JetStream) on {server.url}, storing under {store}")

        def _interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _interrupt)
        try:
            assert server.proc is not None
            server.proc.wait()
            raise typer.Exit(1)  # the server ended by itself
        except KeyboardInterrupt:
            server.stop()
