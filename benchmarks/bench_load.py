"""Loading a full LOBSTER day from .csv.gz into typed arrays, against pyarrow.csv on the same files."""

from __future__ import annotations

import gzip

import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks._common import DATA, Section, timed
from impactlab.data.lobster import load_lobster

STEM = "GOOG_2012-06-21_34200000_57600000"


def _pyarrow_read(msg, book):  # type: ignore[no-untyped-def]
    out = []
    for p in (msg, book):
        with pa.input_stream(str(p), compression="detect") as s:
            out.append(pacsv.read_csv(s, read_options=pacsv.ReadOptions(autogenerate_column_names=True)))
    return out


def run(quick: bool = False) -> Section:
    sec = Section(
        title="Loading a LOBSTER day from .csv.gz into validated typed arrays",
        command="make bench  (benchmarks/bench_load.py)",
        baseline="pyarrow.csv.read_csv of the same two files (type inference, no validation), same run",
        columns=["file", "implementation", "median s", "MB/s (uncompressed)", "ratio to pyarrow"],
    )
    for levels in (10,) if quick else (10, 5):
        msg = DATA / "lobster" / f"{STEM}_message_{levels}.csv.gz"
        book = DATA / "lobster" / f"{STEM}_orderbook_{levels}.csv.gz"
        raw_mb = sum(len(gzip.decompress(p.read_bytes())) for p in (msg, book)) / 1e6
        day = load_lobster(msg)
        tables = _pyarrow_read(msg, book)
        assert tables[0].num_rows == len(day) == tables[1].num_rows  # both read every row
        ours, _, _ = timed(lambda m=msg: load_lobster(m), repeat=5)
        base, _, _ = timed(lambda m=msg, b=book: _pyarrow_read(m, b), repeat=5)
        sec.add(
            f"GOOG L{levels} (message + book)",
            "impactlab.load_lobster",
            f"{ours:.3f}",
            f"{raw_mb / ours:,.0f}",
            f"{ours / base:.2f}×",
        )
        sec.add(f"GOOG L{levels} (message + book)", "pyarrow.csv", f"{base:.3f}", f"{raw_mb / base:,.0f}", "1.00×")
    sec.notes.append(
        "load_lobster parses with pyarrow (explicit int/float column types, gzip by magic number), "
        "then converts times to epoch ns and runs every validation rule; target ≤ 2× pyarrow."
    )
    return sec
