"""Names of the shared data files, for tests that must cover every one of them."""

from __future__ import annotations

from impactlab.config import data_dir

__all__ = ["shared_files"]


def shared_files(folder: str) -> list[str]:
    """Sorted file names (relative to ``folder``) of every data file under ``IMPACTLAB_DATA/folder``.

    Empty when the data is missing, so a parametrised test collects nothing and the data fixture's
    failure explains why.
    """
    root = data_dir() / folder
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".txt"))
