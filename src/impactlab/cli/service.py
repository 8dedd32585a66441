"""``impactlab serve``: the pre-trade service under uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    symbols: Annotated[
        str,
        typer.Option(
            help="Instruments to calibrate and serve, comma separated (SYMBOL, SYMBOL@VENUE, SYMBOL:YYYY-MM-DD)."
        ),
    ] = "GOOG",
    store: Annotated[
        Path | None, typer.Option(help="The service's store [default: ~/.impactlab/service.duckdb].")
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Market data directory.")] = None,
    hedging_dir: Annotated[Path | None, typer.Option(help="Hedging stores whose status is served.")] = None,
    keys_for_reads: Annotated[bool, typer.Option(help="Require the API key on read endpoints too.")] = False,
    bus: Annotated[
        str | None, typer.Option(help="NATS URL: run TCA on every hedge the live engine finishes (hedge.>).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int, typer.Option(help="Threads for the requests' CPU work, off the event loop (0: on the loop).")
    ] = 4,
) -> None:
    """Serve impact estimates, pre-trade reports, schedules, TCA, models, drift, hedging status, Prometheus
    metrics and the dashboard (http://HOST:PORT/dashboard).  API keys come from IMPACTLAB_API_KEYS (comma
    separated, 16+ characters each, optionally scoped: read:KEY, trade:KEY, model-admin:KEY, read+trade:KEY);
    without one, the endpoints that change state are refused."""
    import uvicorn

    from impactlab.cli.main import _errors
    from impactlab.service import ServiceConfig, create_app

    with _errors():
        cfg = ServiceConfig.from_env(host=host, port=port, symbols=tuple(s.strip() for s in symbols.split(",")),
                                     store_path=store, data_dir=data, hedging_dir=hedging_dir,
                                     keys_for_reads=keys_for_reads, bus_url=bus, workers=workers)  # fmt: skip
    if host not in ("127.0.0.1", "localhost", "::1") and not cfg.api_keys:
        typer.echo(f"warning: listening on {host} without API keys: reads are open, writes are refused", err=True)
    uvicorn.run(create_app(cfg), host=cfg.host, port=cfg.port, log_level=log_level, access_log=False)
