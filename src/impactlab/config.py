"""Where impactlab finds its data and keeps its store."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["data_dir", "default_store_path"]

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Directory of the shared market data.

    Reads ``IMPACTLAB_DATA``; defaults to ``../shared/data`` beside the project checkout.
    """
    env = os.environ.get("IMPACTLAB_DATA")
    if env:
        return Path(env).expanduser()
    return (_PROJECT_ROOT.parent / "shared" / "data").resolve()


def default_store_path() -> Path:
    """Default DuckDB store file: ``$IMPACTLAB_HOME/impactlab.duckdb`` (``~/.impactlab`` by default)."""
    home = Path(os.environ.get("IMPACTLAB_HOME", "~/.impactlab")).expanduser()
    return home / "impactlab.duckdb"
