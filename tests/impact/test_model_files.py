"""Model files from elsewhere cannot crash the process: a file this installation did not write is parsed,
and made to price an order, in a sandboxed child process first; one whose embedded LightGBM text was
tampered with is refused with a clear error (the red team's mutations aborted or segfaulted the process)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from impactlab.errors import CalibrationError
from impactlab.impact import QuantileGBMImpact, load_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x1, x2 = rng.uniform(0, 1, 1000), rng.uniform(0, 1, 1000)
    df = pd.DataFrame({"x1": x1, "x2": x2, "y": 5 * np.sqrt(x1) + 2 * x2 + rng.normal(0, 1, 1000)})
    m = QuantileGBMImpact(features=("x1", "x2"), target="y", n_estimators=20, num_leaves=7, min_child_samples=20)
    return m.fit(df).save(tmp_path_factory.mktemp("models") / "gbm.json")


def _mutants(path: Path, n: int, seed: int) -> list[Path]:
    doc = json.loads(path.read_text())
    lines = doc["result"]["extra"]["point_model"].split("\n")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        mut = list(lines)
        for _ in range(3):  # three numbers in the tree text replaced by random integers
            j = int(rng.integers(len(mut)))
            if "=" in mut[j]:
                key, value = mut[j].split("=", 1)
                toks = value.split(" ")
                toks[int(rng.integers(len(toks)))] = str(int(rng.integers(-5000, 5000)))
                mut[j] = key + "=" + " ".join(toks)
        doc["result"]["extra"]["point_model"] = "\n".join(mut)
        p = path.with_name(f"mutant-{seed}-{i}.json")
        p.write_text(json.dumps(doc))
        out.append(p)
    return out


def test_a_model_this_installation_saved_loads_without_the_sandbox(
    saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_child(*a: object, **k: object) -> None:
        raise AssertionError("a trusted file was sent to the sandbox")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert load_model(saved).predict_estimate({"x1": 0.5, "x2": 0.5}).total_bps > 0


def test_a_foreign_file_is_checked_in_a_child_and_then_loads_the_same(saved: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "from-a-colleague.json"
    foreign.write_text(json.dumps(json.loads(saved.read_text())))  # the same model, other bytes: not trusted
    a, b = load_model(saved), load_model(foreign)
    order = {"x1": 0.3, "x2": 0.7}
    assert a.predict_estimate(order).total_bps == b.predict_estimate(order).total_bps


def test_tampered_lightgbm_text_is_refused_and_never_crashes_the_process(saved: Path) -> None:
    refused, crashed_child = 0, 0
    for p in _mutants(saved, 6, seed=1):
        try:
            load_model(p).predict_estimate({"x1": 0.5, "x2": 0.5})  # survived the check: safe to use here
        except CalibrationError as exc:
            refused += 1
            crashed_child += "signal" in str(exc)
            assert str(p) in str(exc) and "\n" not in str(exc)
    assert refused >= 3 and crashed_child >= 1  # the parser did crash, in the child, and this process lives on


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda d: d.pop("settings"), "malformed"),
        (lambda d: d["result"].update(params="x"), "malformed"),
        (lambda d: d.update(format="pickle"), "not an impactlab model file"),
    ],
)
def test_malformed_model_files_are_one_clear_error(saved: Path, tmp_path: Path, edit: object, why: str) -> None:
    doc = json.loads(saved.read_text())
    edit(doc)  # type: ignore[operator]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match=why):
        load_model(bad)
