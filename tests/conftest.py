from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from impactlab.config import data_dir

# the suite's own home (stores by default, the trusted-models list, kill switches): never the user's
os.environ.setdefault("IMPACTLAB_HOME", tempfile.mkdtemp(prefix="impactlab-test-home-"))

DATA = data_dir()


@pytest.fixture(scope="session")
def data() -> Path:
    """The shared market data; its absence is a failure, not a skip (CI always has it)."""
    if not (DATA / "lobster").is_dir():
        pytest.fail(f"market data not found at {DATA}; set IMPACTLAB_DATA")
    return DATA


def lobster_pairs() -> list[tuple[str, int]]:
    """(symbol, levels) of every LOBSTER pair in the data README."""
    return [("GOOG", 1), ("GOOG", 5), ("GOOG", 10), ("AMZN", 1), ("AMZN", 5)]


def lobster_path(data: Path, symbol: str, levels: int, kind: str = "message") -> Path:
    return data / "lobster" / f"{symbol}_2012-06-21_34200000_57600000_{kind}_{levels}.csv.gz"


AAPL_MSG = "lobster/fixtures/AAPL_2012-06-21_34200000_57600000_message_10.csv"


@pytest.fixture(scope="session")
def pg_server():  # type: ignore[no-untyped-def]
    """A PostgreSQL server on loopback for the session (skipped, and says so, where none is installed)."""
    from tests import pg

    if not pg.available():
        pytest.skip(
            "PostgreSQL is not installed (apt-get install postgresql; .ci/run does): shared-store tests skipped"
        )
    server = pg.PgServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:  # type: ignore[no-untyped-def]
    """A fresh database on the session's server."""
    return str(pg_server.database())
