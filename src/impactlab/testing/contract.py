"""The shared contract every impact model passes (the ``check_estimator`` of impactlab)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from impactlab.errors import CalibrationError
from impactlab.impact._base import ImpactModel, load_model

__all__ = ["check_impact_model"]


def check_impact_model(model: ImpactModel, X: pd.DataFrame, order: dict[str, Any]) -> None:
    """Assert the estimator contract on ``model`` with data ``X`` and one ``order`` to price.

    Checks: ``__init__`` stores settings only (no fitted attribute before ``fit``) and ``clone`` keeps
    them; an unfitted model refuses to predict; ``fit`` returns ``self`` and sets ``result_`` with
    finite parameters, a symmetric positive semi-definite covariance and intervals around the estimates;
    ``predict`` gives one finite value per row and the interval brackets it; ``predict_estimate``
    returns finite costs with ``P(cost > x)`` decreasing in x; a JSON round trip predicts the same; too
    little data and non-finite targets raise :class:`CalibrationError`.  Raises ``AssertionError``.
    """
    fresh = clone(model)
    assert fresh.get_params() == model.get_params(), "clone changed the settings"
    assert not [a for a in vars(fresh) if a.endswith("_") and not a.startswith("_")], "fitted state before fit"
    try:
        fresh.predict(X)
    except CalibrationError:
        pass
    else:
        raise AssertionError("an unfitted model predicted")
    assert fresh.fit(X) is fresh, "fit must return self"
    res = fresh.result_
    assert np.all(np.isfinite(res.params)), "non-finite parameters"
    tol = 1e-12 * max(float(np.abs(res.cov).max()), 1e-300)
    assert np.allclose(res.cov, res.cov.T) and np.all(np.linalg.eigvalsh(res.cov) >= -tol), "covariance not PSD"
    for name, (lo, hi) in res.conf_int().items():
        assert lo <= res.params_dict()[name] <= hi, f"interval of {name} does not contain its estimate"
    assert "results" in res.summary()
    yhat = fresh.predict(X)
    assert yhat.shape == (len(X),) and np.all(np.isfinite(yhat))
    lo, hi = fresh.predict_interval(X, coverage=0.9)
    assert np.all(lo <= yhat) and np.all(yhat <= hi)
    est = fresh.predict_estimate(order)
    assert np.isfinite(est.total_bps) and np.isfinite(est.temporary_bps)
    assert est.permanent_bps is None or np.isfinite(est.permanent_bps)
    p = [est.prob_exceeds(est.total_bps + d) for d in (-5.0, 0.0, 5.0)]
    assert p[0] >= p[1] >= p[2] and 0 <= p[2] <= p[0] <= 1
    with tempfile.TemporaryDirectory() as tmp:
        back = load_model(fresh.save(Path(tmp) / "model.json"))
    assert type(back) is type(fresh) and np.allclose(back.predict(X), yhat)
    assert back.data_fingerprint_ == fresh.data_fingerprint_
    for bad in (X.head(3), X.assign(**{fresh._target(): np.nan})):
        try:
            clone(model).fit(bad)
        except CalibrationError:
            continue
        raise AssertionError("bad input was accepted")
