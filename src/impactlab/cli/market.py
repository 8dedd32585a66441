"""Choosing the market of a command: ``--symbol S [--date D]`` through the catalog, or explicit files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from impactlab.errors import DataValidationError

SymbolOpt = Annotated[
    str | None, typer.Option("--symbol", help="Instrument, found through the data catalog (case-insensitive).")
]
DateOpt = Annotated[str | None, typer.Option("--date", help="Trading date YYYY-MM-DD [default: the first one].")]
DepthOpt = Annotated[int | None, typer.Option("--depth", help="Book depth to choose [default: the deepest].")]
VenueOpt = Annotated[str | None, typer.Option("--venue", help="Venue, where the symbol trades on several.")]
FileOpt = Annotated[
    list[Path] | None,
    typer.Option("--file", help="Explicit market-data file(s) in any format (repeat the option), instead of --symbol."),
]
DataOpt = Annotated[
    Path | None, typer.Option("--data", help="Market data folder [default: $IMPACTLAB_DATA or ../shared/data].")
]


def parse_date(text: str | None) -> dt.date | None:
    """``YYYY-MM-DD`` (``None`` passes through)."""
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise DataValidationError("--date: expected YYYY-MM-DD", field="date", value=text) from exc


def resolve_market(
    *,
    symbol: str | None = None,
    date: str | None = None,
    depth: int | None = None,
    venue: str | None = None,
    files: list[Path] | None = None,
    data: Path | None = None,
    default_symbol: str | None = None,
) -> Any:
    """The :class:`~impactlab.data.MarketDay` a command works on."""
    from impactlab.data.catalog import load_files, load_market

    if files:
        if symbol is not None:
            raise DataValidationError("give --symbol or --file, not both", field="symbol", value=symbol)
        return load_files(files, date=parse_date(date))
    sym = symbol or default_symbol
    if sym is None:
        raise DataValidationError(
            "say which market: --symbol S [--date D] (see `impactlab data catalog`) or --file", field="symbol"
        )
    return load_market(sym, parse_date(date), data=data, depth=depth, venue=venue)
